"""munmap() and the page-table walker that races it (protocol.md K7), from mm/vma.c, mm/memory.c,
mm/pagewalk.c and fs/proc/task_mmu.c.

Munmap of the whole PMD range of the slot ``slot`` (VMA ``vma``): __vm_munmap() takes mmap_lock
for write; do_vmi_align_munmap() -> vms_gather_munmap_vmas() write-locks the VMA
(vma_start_write(): waits for per-VMA readers) and detaches it (vma_mark_detached(), then the
maple tree range is cleared: the point of no return); vms_complete_munmap_vmas() downgrades
mmap_lock to read (the syscall passes unlock=true), then vms_clear_ptes() -> unmap_region():
tlb_gather_mmu(), unmap_vmas() zapping every entry under the ptl (no reclaim_pt),
free_pgtables(): unlink_anon_vmas() under the anon_vma write lock, then free_pgd_range() ->
free_pmd_range() (pmd_none_or_clear_bad()) -> free_pte_range(): pmd_clear() without any lock,
pte_free_tlb(), mm_dec_nr_ptes(); and tlb_finish_mmu(); finally mmap_read_unlock(). No table
lock is needed because nobody can find the range any more: every mmap_lock user that comes
after the downgrade looks the VMA up and misses it.

The pagemap walker (pagemap_read() -> walk_page_range() under mmap_read_lock()) looks the range's
VMA up first (walk_page_range_mm(): find_vma()); with the VMA detached the range is a hole
(ops->pte_hole), and no page table is walked. The historical code (protocol.md K7: the pagemap UAF Jann Horn cites from Project Zero)
walked the page tables of the range without its VMA while munmap freed them under its
downgraded read lock; as all walkers of that era, it mapped the table with pte_offset_map_lock()
without RCU (kmap_atomic(): the mmap lock was what kept a table alive), so nothing held the free
off. Both are guards of the walker (``walk_vma_lookup``, ``pte_offset_map_rcu``); the historical
code is the walker without both (a guard pair, not a model variant). Without the VMA lookup alone
the walk holds today: RCU keeps the freed table's memory until the walker's pte_unmap().

Left out: need_resched() and a full batch in unmap_vmas() (the reclaim zap explores those),
markers a file VMA's zap keeps (the model refuses shmem: every entry of an anonymous VMA is
cleared), mmu notifiers, the higher page-table levels, remove_vma().
"""
from ..kernel.folio import folio_remove_rmap_ptes, page_folio
from ..kernel.mmap_lock import MmapReader, mmap_read_unlock, mmap_write_downgrade, mmap_write_lock
from ..kernel.mmu_gather import MmuGather
from ..kernel.pgtable import (PteOffsetMapLock, address, mm_dec_nr_ptes, pmd_clear, pmd_table, pmdp_get,
                              pte_lockptr, pte_unmap_unlock, ptep_get, ptep_get_and_clear, ptrs_per_pte)
from ..kernel.pte import pte_none, pte_present
from ..kernel.rwsem import down_write, up_write
from ..kernel.spinlock import spin_lock, spin_unlock
from ..kernel.vma import Vma, vma_has_anon_vma, vma_lookup, vma_mark_detached, vma_start_write
from ..model import DONE, Guard, step


class Munmap(MmuGather, PteOffsetMapLock):
    """munmap() of the whole PMD range of ``slot`` (the VMA ``vma``)."""

    writer = True  # takes mmap_lock for write (configuration)
    first_step = "mmap_write_lock"

    i: int = 0  # unmap_vmas(): the next entry

    munmap_vma_start_write = Guard(
        "vms_gather_munmap_vmas(): vma_start_write() waits for the per-VMA lock readers (faults, madvise "
        "under lock_vma_under_rcu()) still inside the VMA before it is detached",
        without="detach the VMA without write-locking it",
        against="a per-VMA-lock reader (the model's readers take mmap_lock, which the write lock excludes)")
    munmap_detach = Guard(
        "vms_gather_munmap_vmas(): the VMA leaves the tree before the mmap lock is downgraded, so the "
        "readers that come after find no VMA: that is why free_pte_range() may clear pmds without a lock",
        without="downgrade with the VMA still in the tree (it goes at remove_vma())",
        against="a fault, zap or walker under mmap_read_lock()")
    unlink_anon_vmas_lock = Guard(
        "free_pgtables() -> unlink_anon_vmas(): the anon_vma write lock; rmap walkers (no mmap lock) stop "
        "finding the VMA before its tables go",
        without="unlink without the anon_vma lock", against="an rmap walker holding the anon_vma for read")

    def __init__(self, name, slot: str, vma: Vma):
        super().__init__(name)
        self.slot, self.vma = slot, vma
        self.batch_alloc_can_fail = True

    @step("mm/mmap.c:__vm_munmap")
    def mmap_write_lock(self, s):
        mmap_write_lock(s)
        if not self.munmap_vma_start_write:
            return "vma_mark_detached" if self.munmap_detach else "mmap_write_downgrade"

    @step("mm/vma.c:vms_gather_munmap_vmas")
    def vma_start_write(self, s):
        vma_start_write(s, self.vma)
        if not self.munmap_detach:
            return "mmap_write_downgrade"

    @step("mm/vma.c:vms_gather_munmap_vmas")
    def vma_mark_detached(self, s):
        vma_mark_detached(s, self.vma)  # and vma_iter_clear_gfp(): the point of no return

    @step("mm/vma.c:vms_complete_munmap_vmas")
    def mmap_write_downgrade(self, s):
        mmap_write_downgrade(s)  # also ends the VMA write lock (vma_end_write_all())
        self.tlb_gather_mmu(s)  # unmap_region(): tlb_gather_mmu() (CPU-local, folded)
        self.i = 0

    # unmap_vmas() -> zap_pmd_range() -> zap_pte_range(), without reclaim_pt
    @step("mm/memory.c:zap_pmd_range")
    def unmap_vmas(self, s):
        if not pmd_table(pmdp_get(s, self.slot)):
            return "free_pmd_range"
        return self.pte_offset_map_lock(self.slot, then=self.unmap_mapped)

    def unmap_mapped(self, table):
        return "unmap_vmas" if table is None else "unmap_pte"

    @step("mm/memory.c:do_zap_pte_range")
    def unmap_pte(self, s):
        pte = ptep_get_and_clear(s, self.pmdval, self.i)  # zap_present_ptes() / zap_nonpresent_ptes()
        if pte_present(pte):
            folio = page_folio(s, pte[0])
            if folio is not None:
                folio_remove_rmap_ptes(s, folio)
        if not pte_none(pte):
            self.tlb_remove_tlb_entries(s, self.i, slot=self.slot)
        self.i += 1
        if self.i < ptrs_per_pte(s):
            return "unmap_pte"

    @step("include/linux/mm.h:pte_unmap_unlock")
    def unmap_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)

    # free_pgtables()
    @step("mm/rmap.c:unlink_anon_vmas")
    def free_pmd_range(self, s):
        # unlink_anon_vmas() under the anon_vma write lock (taken and released in this step: the
        # model has no thread that holds it across others' steps but UFFDIO_MOVE)
        if self.unlink_anon_vmas_lock and vma_has_anon_vma(s, self.vma):
            down_write(s, self.vma.anon_vma_lock)
            up_write(s, self.vma.anon_vma_lock)

    @step("mm/memory.c:free_pmd_range")
    def pmd_none_or_clear_bad(self, s):
        if not pmd_table(pmdp_get(s, self.slot)):
            return self.tlb_finish_mmu("mmap_read_unlock")

    @step("mm/memory.c:free_pte_range")
    def free_pte_range(self, s):
        # The table is taken from the pmd and the pmd cleared, with no lock at all: nobody can reach the range.
        table = pmd_clear(s, self.slot)
        if not pmd_table(table):  # (only without munmap_detach can anybody have changed it)
            s.report("use-after-free", f"{s.actor} frees pmd_pgtable() of pmd value {table or 'none'}, "
                                       "which is no page table")
            return self.munmap_finish()
        mm_dec_nr_ptes(s)
        return self.pte_free_tlb(s, table, address(s, 0, self.slot), then=self.munmap_finish)

    def munmap_finish(self, _=None):
        return self.tlb_finish_mmu("mmap_read_unlock")

    @step("mm/vma.c:vms_complete_munmap_vmas")
    def mmap_read_unlock(self, s):
        if not self.munmap_detach:
            vma_mark_detached(s, self.vma)  # (without the guard: the VMA goes at remove_vma())
        mmap_read_unlock(s)  # after remove_vma()
        return DONE


class PagemapWalker(PteOffsetMapLock, MmapReader):
    """pagemap_read() -> walk_page_range() of the whole PMD range of ``slot`` under mmap_read_lock(),
    reading every entry through pagemap_pmd_range() (pte_offset_map_lock()). The historical code
    of K7 is the walker without both its guards: ``--without walk_vma_lookup --without
    pte_offset_map_rcu``."""

    first_step = "walk_page_range"

    j: int = 0

    walk_vma_lookup = Guard(
        "walk_page_range_mm(): the range is walked VMA by VMA (find_vma() under the mmap lock); a range "
        "munmap detached is a hole (ops->pte_hole), its page tables are not walked: munmap frees them "
        "under its downgraded read lock, with no table lock",
        without="walk the page tables of the range whether or not a VMA covers it",
        against="munmap freeing the tables after mmap_write_downgrade()")
    pte_offset_map_rcu = Guard(
        "__pte_offset_map(): rcu_read_lock() from the pmd read to pte_unmap(): a table freed meanwhile (by "
        "RCU table free) stays memory until the walker leaves (Hugh Dickins' 2023 rework; before it, "
        "kmap_atomic() and the mmap lock were all a walker had)",
        without="map the table with no RCU read-side section (the pre-6.5 pte_offset_map_lock())",
        against="a table freed while the walker has it mapped")

    def __init__(self, name, slot: str, vma: Vma):
        super().__init__(name)
        self.slot, self.vma = slot, vma
        self.mmap_read_locked = True  # pagemap_read() always takes it

    @step("mm/pagewalk.c:walk_page_range_mm")
    def walk_page_range(self, s):
        if self.walk_vma_lookup and not vma_lookup(s, self.vma):
            return self.done()  # find_vma() misses it: the range is a hole (ops->pte_hole)
        if not self.pte_offset_map_rcu:
            return "walk_pmd_nolock"
        return self.pte_offset_map_lock(self.slot, then=self.walk_mapped)

    def walk_mapped(self, table):
        self.j = 0
        return self.done() if table is None else "walk_pte"

    @step("fs/proc/task_mmu.c:pagemap_pmd_range")
    def walk_pte(self, s):
        ptep_get(s, self.pmdval, self.j)  # pte_to_pagemap_entry()
        self.j += 1
        if self.j < ptrs_per_pte(s):
            return "walk_pte"
        pte_unmap_unlock(s, self.ptl)
        return self.done()

    # without pte_offset_map_rcu: pte_offset_map_lock() of the pre-6.5 era (no RCU, no pmd_same())
    @step("mm/pagewalk.c:walk_pmd_range")
    def walk_pmd_nolock(self, s):
        self.pmdval = pmdp_get(s, self.slot)
        if not pmd_table(self.pmdval):
            return self.done()  # pmd_none(): a hole
        self.ptl, self.j = pte_lockptr(s, self.pmdval), 0

    @step("mm/pagewalk.c:walk_pte_range")
    def walk_lock_nolock(self, s):
        spin_lock(s, self.ptl)  # pte_offset_map_lock(): kmap_atomic() and the ptl, no RCU

    @step("fs/proc/task_mmu.c:pagemap_pmd_range")
    def walk_pte_nolock(self, s):
        ptep_get(s, self.pmdval, self.j)
        self.j += 1
        if self.j < ptrs_per_pte(s):
            return "walk_pte_nolock"
        spin_unlock(s, self.ptl)
        return self.done()
