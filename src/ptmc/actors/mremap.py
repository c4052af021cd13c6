"""mremap(): move_vma() -> copy_vma_and_data() -> move_page_tables() -> move_pgt_entry(NORMAL_PMD)
-> move_normal_pmd(), from mm/mremap.c, moving the whole PTE table of the pmd slot ``old`` into
the slot ``new`` of the new VMA.

Under mmap_lock for write and the old VMA write-locked (move_vma(): "we don't want racing
faults"), so no fault, zap, walker or UFFDIO_* thread runs meanwhile: the race partners are
the ones that take no mmap lock (khugepaged's retract_page_tables(), rmap walkers, GUP-fast, the
MMU). get_old_pmd() reads the old pmd without a lock; the extent is a whole PMD, so
move_pgt_entry() takes the rmap locks (take_rmap_locks(): i_mmap_rwsem and the anon_vma for
write) and move_normal_pmd() checks that the new pmd is none, takes the old pml and then, when
it is a different lock, the new one nested, reads the old pmd again and bails if it is no longer
a table (the K4 fix, ``move_normal_pmd_recheck``), clears the old pmd, populates the new one
with the same table and flushes the old range (flush_tlb_range()), then unlocks. Afterwards
move_vma() unmaps the old range (unmap_source_vma(): its pmd is none, there is nothing to
free) and the mmap lock is released.

Left out: the move_ptes() fallback (reached only when the new pmd is not none, or for a
uffd VMA without UFFD_FEATURE_EVENT_REMAP: the model refuses uffd with mremap), huge pmds
(refused), mmu notifiers, the PUD level.
"""
from ..kernel.mmap_lock import mmap_write_lock, mmap_write_unlock
from ..kernel.pgtable import (address, pmd_clear, pmd_leaf, pmd_lock, pmd_lockptr, pmd_none,
                              pmd_populate, pmd_present, pmdp_get, ptrs_per_pte)
from ..kernel.spinlock import spin_lock_nested, spin_unlock
from ..kernel.tlb import flush_tlb_range
from ..kernel.vma import (Vma, anon_vma_lock_write, anon_vma_unlock_write, i_mmap_lock_write,
                          i_mmap_unlock_write, vma_has_anon_vma, vma_is_anonymous, vma_mark_detached,
                          vma_start_write)
from ..model import DONE, Guard, Thread, step


class Mremap(Thread):
    """mremap(MREMAP_MAYMOVE|MREMAP_FIXED) of the whole PMD range of ``old`` (VMA ``vma``) to the
    PMD range of ``new`` (the new VMA ``new_vma``)."""

    writer = True  # takes mmap_lock for write (configuration)
    first_step = "mmap_write_lock"

    anon_vma_locked: bool = False  # take_rmap_locks() took vma->anon_vma
    pmdval: object = None  # pmd = *old_pmd under the locks

    take_rmap_locks = Guard(
        "move_pgt_entry(): i_mmap_rwsem and the anon_vma for write, so an rmap walk sees the table either "
        "at the old or at the new address, never neither",
        without="move the table without the rmap locks",
        against="an rmap walker or retract_page_tables() (i_mmap_rwsem for read, no mmap lock)")
    move_normal_pmd_pml = Guard(
        "move_normal_pmd(): the old pml (and the new one, nested, when different) serialise the move "
        "against every pml holder: retract_page_tables(), pmd_install(), reclaim",
        without="read, clear and populate the pmds holding no pml",
        against="retract_page_tables(), which takes no mmap lock")
    move_normal_pmd_recheck = Guard(
        "move_normal_pmd(): between get_old_pmd() and the pml, retract_page_tables() (no mmap lock) may "
        "have cleared the old pmd: a none (or leaf) pmd must not be moved, or the new pmd gets a bogus "
        "table (protocol.md K4, Jann Horn's fix of Oct 2024)",
        without="clear the old pmd and populate the new one with whatever it held",
        against="retract_page_tables() clearing the old pmd (khugepaged, no mmap lock)")
    move_normal_pmd_flush = Guard(
        "move_normal_pmd(): flush_tlb_range() of the old range after the move: no CPU may keep using "
        "translations (or cached walks) of the old addresses",
        without="no flush after the move", against="a CPU caching walks of the old range")

    def __init__(self, name, old: str, new: str, vma: Vma, new_vma: Vma):
        super().__init__(name)
        self.old, self.new, self.vma, self.new_vma = old, new, vma, new_vma

    @step("mm/mremap.c:SYSCALL_DEFINE5(mremap)")
    def mmap_write_lock(self, s):
        mmap_write_lock(s)

    @step("mm/mremap.c:move_vma")
    def vma_start_write(self, s):
        vma_start_write(s, self.vma)  # we don't want racing faults

    @step("mm/mremap.c:get_old_pmd")
    def get_old_pmd(self, s):
        # No lock: the mmap write lock keeps every mmap-lock user away, not retract.
        if pmd_none(pmdp_get(s, self.old)):
            return "unmap_source_vma"  # nothing to move at this extent
        # (alloc_new_pmd(): the new pmd slot exists; the old pmd is no huge pmd here, and the extent
        # is PMD_SIZE: move_pgt_entry(NORMAL_PMD, ..., need_rmap_locks = true))
        return self.take_rmap_locks_next(s)

    def take_rmap_locks_next(self, s):
        if not self.take_rmap_locks:
            return "move_normal_pmd"
        return "take_i_mmap" if not vma_is_anonymous(self.vma) else "take_anon_vma"

    @step("mm/mremap.c:take_rmap_locks")
    def take_i_mmap(self, s):
        i_mmap_lock_write(s, self.vma)

    @step("mm/mremap.c:take_rmap_locks")
    def take_anon_vma(self, s):
        if vma_has_anon_vma(s, self.vma):
            anon_vma_lock_write(s, self.vma)
            self.anon_vma_locked = True

    @step("mm/mremap.c:move_normal_pmd")
    def move_normal_pmd(self, s):
        # The new pmd should be none (free_pgtables() released it): otherwise WARN and "not
        # moved" (the move_ptes() fallback, not reached here).
        if not pmd_none(pmdp_get(s, self.new)):
            raise AssertionError("Mremap: the new pmd is not none (move_ptes() is not modelled)")
        if not self.move_normal_pmd_pml:
            return "mnp_clear"
        pmd_lock(s, self.old)  # old_ptl = pmd_lock(mm, old_pmd)
        if pmd_lockptr(s, self.new) == pmd_lockptr(s, self.old):
            return "mnp_clear"

    @step("mm/mremap.c:move_normal_pmd")
    def mnp_lock_new(self, s):
        spin_lock_nested(s, pmd_lockptr(s, self.new))  # spin_lock_nested(new_ptl, SINGLE_DEPTH_NESTING)

    @step("mm/mremap.c:move_normal_pmd")
    def mnp_clear(self, s):
        self.pmdval = pmdp_get(s, self.old)  # pmd = *old_pmd
        if self.move_normal_pmd_recheck and (not pmd_present(self.pmdval) or pmd_leaf(self.pmdval)):
            return self.mnp_unlock_next()  # racing with collapse: not moved
        pmd_clear(s, self.old, keeps_entries=True)

    @step("mm/mremap.c:move_normal_pmd")
    def mnp_populate(self, s):
        pmd_populate(s, self.pmdval, self.new)  # pmd_populate(mm, new_pmd, pmd_pgtable(pmd))
        if not self.move_normal_pmd_flush:
            return self.mnp_unlock_next()

    @step("mm/mremap.c:move_normal_pmd")
    def mnp_flush(self, s):
        start = address(s, 0, self.old)
        flush_tlb_range(s, start, start + ptrs_per_pte(s))  # flush_tlb_range(vma, old_addr, +PMD_SIZE)
        return self.mnp_unlock_next()

    def mnp_unlock_next(self):
        if self.move_normal_pmd_pml:
            return "mnp_unlock"
        return "drop_rmap_locks" if self.take_rmap_locks else "unmap_source_vma"

    @step("mm/mremap.c:move_normal_pmd")
    def mnp_unlock(self, s):
        # new_ptl (when different) then old_ptl: two unlocks, folded (unlocking never blocks)
        if pmd_lockptr(s, self.new) != pmd_lockptr(s, self.old):
            spin_unlock(s, pmd_lockptr(s, self.new))
        spin_unlock(s, pmd_lockptr(s, self.old))
        if not self.take_rmap_locks:
            return "unmap_source_vma"

    @step("mm/mremap.c:drop_rmap_locks")
    def drop_rmap_locks(self, s):
        if self.anon_vma_locked:
            anon_vma_unlock_write(s, self.vma)
            self.anon_vma_locked = False
        if not vma_is_anonymous(self.vma):
            i_mmap_unlock_write(s, self.vma)

    @step("mm/mremap.c:unmap_source_vma")
    def unmap_source_vma(self, s):
        # do_vmi_munmap() of the old range: the VMA is detached; its pmd is none after the move
        # (or held nothing), so there is no table to free. (Were it not moved, the unmap would
        # zap and free it: munmap's path, ptmc.actors.munmap.)
        vma_mark_detached(s, self.vma)

    @step("mm/mremap.c:SYSCALL_DEFINE5(mremap)")
    def mmap_write_unlock(self, s):
        mmap_write_unlock(s)
        return DONE
