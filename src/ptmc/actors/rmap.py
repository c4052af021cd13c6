"""Reverse-map walkers (mm/rmap.c, mm/page_vma_mapped.c): threads that reach a page's mapping
through the folio, not through the mm, and so hold neither the mmap lock nor a VMA lock.

``TryToUnmap``: reclaim's try_to_unmap() of one small folio mapped by one entry of the table
(shrink_folio_list() holds the folio lock: a file folio's is modelled, an anonymous one's, which
no other actor takes, is not). rmap_walk() takes the anon_vma's rwsem (folio_lock_anon_vma_read(), an
anonymous folio) or the file's i_mmap_rwsem (rmap_walk_file()) for read, and try_to_unmap_one()
runs page_vma_mapped_walk(): a lockless read of the pmd (a huge pmd under pml), map_pte()
(pte_offset_map_rw_nolock(): RCU and one more read of the pmd; the entry read locklessly; the
ptl; pmd_same() against the pmd value the map used, retrying the map if it changed), then
check_pte() under the ptl. A match is unmapped: ptep_clear_flush() (the entry cleared and the
page flushed from every TLB), then for an anonymous folio a swap entry written in its place
(the folio is in the swap cache), for a file folio nothing (a uffd-wp marker in a uffd-wp VMA),
and the rmap and rss dropped; page_vma_mapped_walk_done() unlocks and unmaps, and rmap_walk()
drops its lock.

The model's walker unmaps one folio at one entry (the page ``page`` the table mapped there at the
start), the way shrink_folio_list() reclaims one folio at a time; the deferred TLB flush of
TTU_BATCH_FLUSH (try_to_unmap_flush()) is not modelled: ptep_clear_flush() flushes at once,
which only shortens the window a stale translation lives (a data page's, not a table's).
"""
from __future__ import annotations

from ..kernel.folio import folio_remove_rmap_ptes, folio_trylock, folio_unlock, page_folio
from ..kernel.pgtable import (address, is_pmd_migration_entry, pmd_lock, pmd_lockptr, pmd_none,
                              pmd_same, pmd_table, pmd_trans_huge, pmdp_get_lockless,
                              pte_offset_map_nolock, pte_unmap, pte_unmap_unlock, ptep_get,
                              ptep_get_and_clear, set_pte_at)
from ..kernel.pte import pte_present, swap_pte, uffd_wp_marker, pte_uffd_wp
from ..kernel.spinlock import spin_lock, spin_unlock
from ..kernel.tlb import flush_tlb_range
from ..kernel.vma import (Vma, anon_vma_lock_read, anon_vma_unlock_read, i_mmap_lock_read,
                          i_mmap_unlock_read, userfaultfd_wp, vma_is_anonymous)
from ..model import DONE, Guard, Procedure, Thread, step


class TryToUnmapOne(Procedure):
    """try_to_unmap() of the folio of data page ``rmap_page``, mapped (at the start) by entry
    ``rmap_entry`` of the table: rmap_walk() -> try_to_unmap_one() -> page_vma_mapped_walk().
    Callers: reclaim (the ``TryToUnmap`` thread) and collapse_file() (``Retract``); call it as
    ``self.call(TryToUnmapOne, then=..., rmap_entry=i, rmap_page=page)``.

    ``pre_rcu`` (a class attribute of the caller): the walker of kernels before Hugh Dickins'
    2023 rework (v6.5): pte_offset_map() is a kmap, no RCU reader, and map_pte() takes the ptl
    of the pmd it read without pmd_same() (every actor that changed a pmd pointing to a table
    then held the rmap locks for write: protocol.md K3)."""

    rmap_entry: int = 0  # argument: the entry
    rmap_page: int = 0  # argument: the folio's page
    pmdval: object = None  # the pmd value map_pte() used (pte_offset_map_rw_nolock()'s pmdvalp)
    ptl: object = None  # the ptl of that value
    pteval: object = None  # what ptep_clear_flush() cleared

    pre_rcu = False

    rmap_lock = Guard(
        "rmap_walk(): the anon_vma rwsem or i_mmap_rwsem for read keeps the VMA and its page tables from "
        "being torn down (free_pgtables() unlinks the VMA from the rmap, under those locks for write, "
        "before it frees its tables) and, before 2023, every table retraction out",
        without="walk the VMA's page tables without the rmap lock",
        against="a table freed by a holder of the rmap lock for write (free_pgtables(); K3's collapse)")
    rmap_pmd_same = Guard(
        "map_pte(): since pte_offset_map_rw_nolock()'s pmd read the table may have been unlinked (reclaim, "
        "retract, collapse) or moved with its entries (mremap), and only a table the pmd still links may "
        "be written (I2; Qi Zheng's pmd_same() in map_pte(), v6.13)",
        without="unmap through the table mapped from the lockless read, locked but unchecked",
        against="a table detached with its entries still in it (mremap's move_normal_pmd(), not in this model)")

    def rmap_unlock(self, s) -> None:
        if not self.rmap_lock:
            return
        if vma_is_anonymous(self.vma):
            anon_vma_unlock_read(s, self.vma)
        else:
            i_mmap_unlock_read(s, self.vma)

    @step("mm/rmap.c:rmap_walk")
    def rmap_walk(self, s):
        if not self.rmap_lock:
            return
        if vma_is_anonymous(self.vma):
            anon_vma_lock_read(s, self.vma)  # folio_lock_anon_vma_read()
        else:
            i_mmap_lock_read(s, self.vma)  # rmap_walk_file()

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk")
    def pvmw_pmd(self, s):
        # restart: pmdp_get_lockless(), so the value is read once and not cached by the compiler.
        pmde = pmdp_get_lockless(s)
        if pmd_trans_huge(pmde) or is_pmd_migration_entry(pmde):
            return "pvmw_pmd_lock"
        if not pmd_table(pmde):
            return "rmap_walk_done"  # !pmd_present(): step_forward() past the end: not found
        return "map_pte"

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk")
    def pvmw_pmd_lock(self, s):
        pmd_lock(s)

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk")
    def pvmw_pmd_locked(self, s):
        pmde = pmdp_get_lockless(s)
        spin_unlock(s, pmd_lockptr(s))
        if pmd_table(pmde):
            return "map_pte"  # the THP pmd was split under us: handle on pte level
        # Not present (PVMW_MIGRATION not asked), or a huge pmd: check_pmd() fails, as the
        # walker's small folio is not that huge folio. not_found() -> page_vma_mapped_walk_done().
        return "rmap_walk_done"

    @step("mm/page_vma_mapped.c:map_pte")
    def map_pte(self, s):
        # pte_offset_map_rw_nolock(): RCU, one more read of the pmd, and the ptl it implies;
        # before 2023 pte_offset_map() was no RCU reader and pte_lockptr() read the pmd.
        pmdval, ptl = pte_offset_map_nolock(s)
        if self.pre_rcu and ptl is not None:
            from ..kernel.rcu import rcu_read_unlock
            rcu_read_unlock(s)  # (pre_rcu) kmap_atomic() only: no read-side section
        if ptl is None:
            return "pvmw_pmd"  # !pvmw->pte: goto restart
        self.pmdval, self.ptl = pmdval, ptl

    @step("mm/page_vma_mapped.c:map_pte")
    def map_pte_read(self, s):
        ptent = ptep_get(s, self.pmdval, self.rmap_entry)
        if not pte_present(ptent):
            # none: next_pte steps past the end; a swap, migration entry or marker: not a
            # device entry, so not this walk's. not_found() -> page_vma_mapped_walk_done().
            if not self.pre_rcu:
                pte_unmap(s)
            return "rmap_walk_done"

    @step("mm/page_vma_mapped.c:map_pte")
    def map_pte_lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/page_vma_mapped.c:check_pte")
    def check_pte(self, s):
        # map_pte(): the pmd may have changed since pte_offset_map_rw_nolock() read it (the
        # table unlinked, another installed): only the table the pmd still links may be written.
        if self.rmap_pmd_same and not self.pre_rcu and not pmd_same(self.pmdval, pmdp_get_lockless(s)):
            pte_unmap_unlock(s, self.ptl)
            self.pmdval = self.ptl = None
            return "map_pte"  # goto again
        # check_pte() under the ptl: the entry still maps this folio's page?
        ptent = ptep_get(s, self.pmdval, self.rmap_entry)
        if not (pte_present(ptent) and ptent[0] == self.rmap_page):
            return "pvmw_done"  # next_pte past the end: not_found()

    @step("mm/rmap.c:try_to_unmap_one")
    def ptep_clear_flush(self, s):
        # ptep_clear_flush(): the entry cleared, then the page flushed from every TLB (an IPI
        # flush waits for CPUs with IRQs off).
        self.pteval = ptep_get_and_clear(s, self.pmdval, self.rmap_entry)
        flush_tlb_range(s, address(s, self.rmap_entry), address(s, self.rmap_entry) + 1)
        if not vma_is_anonymous(self.vma):
            # A file folio: nothing replaces the entry (a uffd-wp marker keeps a protected one's
            # protection: pte_install_uffd_wp_if_needed()), and the rmap goes.
            if userfaultfd_wp(self.vma) and pte_uffd_wp(self.pteval):
                set_pte_at(s, self.pmdval, self.rmap_entry, uffd_wp_marker())
            folio_remove_rmap_ptes(s, page_folio(s, self.rmap_page))  # and dec_mm_counter()
            self.pteval = None
            return "pvmw_done"

    @step("mm/rmap.c:try_to_unmap_one")
    def set_swap_pte(self, s):
        # An anonymous folio in the swap cache: its swap entry (folio_dup_swap()) replaces the
        # mapping, carrying the uffd-wp bit; then the rmap and the rss go.
        set_pte_at(s, self.pmdval, self.rmap_entry, swap_pte(self.rmap_page, pte_uffd_wp(self.pteval)))
        folio_remove_rmap_ptes(s, page_folio(s, self.rmap_page))
        self.pteval = None

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk_done")
    def pvmw_done(self, s):
        if self.pre_rcu:
            spin_unlock(s, self.ptl)  # pte_unmap_unlock(): kunmap_atomic() is no RCU exit
        else:
            pte_unmap_unlock(s, self.ptl)
        self.pmdval = self.ptl = None

    @step("mm/rmap.c:rmap_walk")
    def rmap_walk_done(self, s):
        self.rmap_unlock(s)
        self.pmdval = self.ptl = None
        self.rmap_entry = self.rmap_page = 0
        return self.ret()


class TryToUnmap(TryToUnmapOne):
    """Reclaim unmapping one small folio: shrink_folio_list() takes the folio lock
    (folio_trylock(): a folio locked by someone else is skipped), then try_to_unmap() of the folio
    of data page ``page``, which entry ``entry`` maps at the start, or (a folio the table does not
    map, e.g. an old page cache folio a collapse replaced) would map if it were there: the walk
    still maps the table, takes its ptl and finds nothing.

    Configuration (constructor): the VMA, ``entry``, ``page`` and ``pre_rcu`` (see TryToUnmapOne)."""

    first_step = "shrink_folio_list"

    folio_locked: bool = False

    def __init__(self, name, vma: Vma, *, entry: int, page: int, pre_rcu: bool = False):
        super().__init__(name)
        self.vma, self.entry, self.page, self.pre_rcu = vma, entry, page, pre_rcu

    @step("mm/vmscan.c:shrink_folio_list")
    def shrink_folio_list(self, s):
        folio = page_folio(s, self.page)
        if folio.field("lock") in s.layout.index:  # (an anonymous folio's lock no actor here takes)
            if not folio_trylock(s, folio):
                return DONE  # keep_locked: someone else holds it
            self.folio_locked = True
        return self.call(TryToUnmapOne, then="shrink_folio_unlock", rmap_entry=self.entry, rmap_page=self.page)

    @step("mm/vmscan.c:shrink_folio_list")
    def shrink_folio_unlock(self, s):
        if self.folio_locked:
            folio_unlock(s, page_folio(s, self.page))
            self.folio_locked = False
        return DONE
