"""khugepaged's anonymous collapse: collapse_huge_page() (mm/khugepaged.c) replaces a PTE table of
small anonymous pages by one PMD-sized THP.

Under mmap_lock for write (mmap_write_lock(), hugepage_vma_revalidate()), the VMA write lock
(vma_start_write(), which waits for per-VMA readers) and the pmd rechecked
(check_pmd_still_valid()), it takes the anon_vma for write (rmap walkers hold it for read), and
under pml pmdp_collapse_flush() clears the pmd and flushes the TLB of the range: with an IPI
flush that waits for every IRQs-off GUP-fast, with a broadcast flush for nobody. Then
tlb_remove_table_sync_one() (2ba99c5e0881: an IPI with MMU_GATHER_RCU_TABLE_FREE, nothing
otherwise) waits for IRQs-off walkers again. pte_offset_map_lock() of the old pmd value (the
local copy: its pmd_same() cannot fail) locks the unlinked table and
__collapse_huge_page_isolate() checks each entry: none and zero-page entries count towards
max_ptes_none (PTRS_PER_PTE - 1 by default), anything else not present aborts
(SCAN_PTE_NON_PRESENT), and a page whose refcount is not what its mappings explain
(folio_expected_ref_count(): a GUP pin, any other reference) aborts (SCAN_PAGE_COUNT); the others
are isolated from the LRU (a reference each). On failure the pages go back and the old table is
linked again (pmd_populate() under pml). On success the anon_vma is unlocked,
__collapse_huge_page_copy() copies each page into the THP and clears its entry under the ptl
(the old page is released: replaced by the copy, the ghost ``discarded``), the old table is
deposited with the huge pmd (pgtable_trans_huge_deposit()) and the huge pmd installed under pml.

Folded: the scan (hpage_collapse_scan_pmd() under mmap_read_lock decides to collapse; every
fact it saw is rechecked under the write lock), the THP's allocation and charge, the
mmu_notifier calls (no secondary MMU here), the data copy (no data is modelled: each entry's copy
is folded into its clearing, which only this thread can do once the table is unlinked under
mmap_lock and the VMA lock), the folio lock of each page (PG_locked: nobody else locks anonymous
folios here, and a trylock that fails only aborts), and the uptodate barrier before the install.
Left out: pte-mapped large folios (compound_pagelist) and swap-in (__collapse_huge_page_swapin()).
"""
from ..model import DONE, Guard, Thread, step
from ..kernel.config import config
from ..kernel.folio import (folio_add_rmap_pmd, folio_get, folio_mapcount, folio_mark_discarded,
                            folio_put, folio_ref_count, folio_remove_rmap_ptes, page_folio)
from ..kernel.irq import smp_call_function_wait
from ..kernel.mmap_lock import mmap_write_lock, mmap_write_unlock
from ..kernel.pgtable import (huge_pmd, pgtable_trans_huge_deposit, pmd_clear, pmd_lock, pmd_lockptr,
                              pmd_populate, pmd_table, pmdp_get, pmdp_get_lockless, ptep_get,
                              ptep_get_and_clear, pte_lockptr, ptrs_per_pte, set_pmd_at)
from ..kernel.pte import is_zero_pte, pte_none, pte_present
from ..kernel.rcu import rcu_read_lock, rcu_read_unlock
from ..kernel.spinlock import spin_lock, spin_unlock
from ..kernel.tlb import flush_tlb_range, slot_range
from ..kernel.vma import Vma, anon_vma_lock_write, anon_vma_unlock_write, vma_start_write

EVENTS = {
    "collapse-bug-on": "collapse_huge_page()'s BUG_ON(!pmd_none(*pmd)): the pmd it cleared changed before "
                       "it linked the old table again or installed the huge pmd",
}


class CollapseHugePage(Thread):
    """collapse_huge_page() of the one pmd slot into the THP whose first page is ``new_page``."""

    old: object = None  # _pmd: the pmd value pmdp_collapse_flush() cleared (the old table)
    ptl: object = None  # pte_ptl: the old table's ptl
    i: int = 0  # the entry being isolated or copied
    none_or_zero: int = 0
    isolated: tuple = ()  # heads of the folios isolated so far
    failed: bool = False  # result != SCAN_SUCCEED after the isolate

    collapse_anon_vma_lock = Guard(
        "collapse_huge_page(): anon_vma_lock_write() excludes the rmap walkers (try_to_unmap_one(), "
        "migration) that hold the anon_vma for read and not mmap_lock",
        without="change the page tables without the anon_vma lock",
        against="an rmap walker of the same anon_vma")
    collapse_tlb_flush = Guard(
        "pmdp_collapse_flush(): flush_tlb_range() of the range right after clearing the pmd; with an IPI "
        "flush it also waits for every IRQs-off GUP-fast that may have read the old pmd",
        without="clear the pmd without flushing the TLB",
        against="GUP-fast (with tlb_flush=ipi), a CPU caching the old walk")
    collapse_table_sync = Guard(
        "collapse_huge_page(): tlb_remove_table_sync_one() (2ba99c5e0881) IPIs every CPU with "
        "MMU_GATHER_RCU_TABLE_FREE, so no IRQs-off GUP-fast still walks the old table when the "
        "references are checked",
        without="check the references right after the flush (the code before 2ba99c5e0881)",
        against="GUP-fast with a broadcast TLB flush and without its pmd recheck")
    collapse_isolate_refcount = Guard(
        "__collapse_huge_page_isolate(): a page with more references than its mappings (a GUP pin) "
        "may be written through them after the copy: abort (SCAN_PAGE_COUNT)",
        without="collapse pages whatever their refcount",
        against="GUP-fast pinning a page of the table")

    def __init__(self, name, vma: Vma, *, new_page: int):
        super().__init__(name)
        self.vma, self.new_page = vma, new_page

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_mmap_write_lock(self, s):
        # After the scan under mmap_read_lock and the THP's allocation without any lock:
        # hugepage_vma_revalidate() finds the same anonymous VMA (its attributes are fixed here).
        mmap_write_lock(s)

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_vma_start_write(self, s):
        vma_start_write(s, self.vma)

    @step("mm/khugepaged.c:check_pmd_still_valid")
    def collapse_check_pmd(self, s):
        # find_pmd_or_thp_or_none(): a none pmd (reclaimed), a huge one (already collapsed, or a THP
        # fault) or a migration entry: nothing to collapse.
        if not pmd_table(pmdp_get_lockless(s)):
            return "collapse_mmap_write_unlock"
        return "collapse_anon_vma_lock_write" if self.collapse_anon_vma_lock else "collapse_pmd_lock"

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_anon_vma_lock_write(self, s):
        anon_vma_lock_write(s, self.vma)

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_pmd_lock(self, s):
        pmd_lock(s)  # "probably unnecessary": mmap_lock excludes every other pmd writer here

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def collapse_pmd_clear(self, s):
        # pmdp_huge_get_and_clear(): the table leaves the page tables with its entries, which this
        # thread copies and then deposits with the huge pmd.
        self.old = pmd_clear(s, keeps_entries=True)
        if not self.collapse_tlb_flush:
            return "collapse_pmd_unlock"

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def collapse_flush(self, s):
        flush_tlb_range(s, *slot_range(s, 0))  # an IPI flush waits for IRQs-off GUP-fast

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_pmd_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))  # then mmu_notifier_invalidate_range_end()
        if not self.collapse_table_sync:
            return "collapse_pte_lock"

    @step("mm/mmu_gather.c:tlb_remove_table_sync_one")
    def collapse_table_sync_one(self, s):
        # An IPI to every CPU with MMU_GATHER_RCU_TABLE_FREE (a no-op without it: there the TLB
        # flush is an IPI already). It waits for IRQs-off walkers only.
        if config(s).mmu_gather_rcu_table_free:
            smp_call_function_wait(s)

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def collapse_pte_lock(self, s):
        # pte_offset_map_lock(mm, &_pmd, ...): maps the local copy, so its pmd_same() compares the
        # copy with itself; the table is unlinked but not freed (it is ours).
        rcu_read_lock(s)
        self.ptl = pte_lockptr(s, self.old)
        spin_lock(s, self.ptl)
        self.i = 0

    @step("mm/khugepaged.c:__collapse_huge_page_isolate")
    def collapse_isolate(self, s):
        pte = ptep_get(s, self.old, self.i)
        if pte_none(pte) or is_zero_pte(pte):
            self.none_or_zero += 1
            if self.none_or_zero > ptrs_per_pte(s) - 1:  # khugepaged_max_ptes_none
                return self._isolate_failed(s)  # SCAN_EXCEED_NONE_PTE
        elif not pte_present(pte):
            return self._isolate_failed(s)  # SCAN_PTE_NON_PRESENT: a swap or migration entry, a marker
        else:
            folio = page_folio(s, pte[0])
            # folio_expected_ref_count(): one reference per mapping of an anonymous folio that is
            # not in the swap cache. Anything more is a pin (GUP) or another user: abort.
            if self.collapse_isolate_refcount and folio_ref_count(s, folio) != folio_mapcount(s, folio):
                return self._isolate_failed(s)  # SCAN_PAGE_COUNT
            folio_get(s, folio)  # folio_isolate_lru()
            self.isolated += (folio.head,)
        self.i += 1
        return "collapse_isolate" if self.i < ptrs_per_pte(s) else "collapse_isolate_unlock"

    def _isolate_failed(self, s) -> str:
        """release_pte_pages(): the folios isolated so far go back to the LRU."""
        for head in self.isolated:
            folio_put(s, page_folio(s, head))  # folio_putback_lru()
        self.isolated, self.failed = (), True
        return "collapse_isolate_unlock"

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_isolate_unlock(self, s):
        spin_unlock(s, self.ptl)
        self.i = 0  # __collapse_huge_page_copy() starts at the first entry
        if self.failed:
            rcu_read_unlock(s)  # pte_unmap()
            return "collapse_restore_lock"
        return "collapse_anon_vma_unlock" if self.collapse_anon_vma_lock else "collapse_copy"

    # The failure path: the old table goes back.
    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_restore_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_restore(self, s):
        # BUG_ON(!pmd_none(*pmd)): nobody else may have changed it. pmd_populate(), not set_pmd_at():
        # this is a table, not a huge pmd.
        if pmdp_get(s) is not None:
            s.report("collapse-bug-on", f"{s.actor}: the pmd changed while collapse_huge_page() had it cleared")
        pmd_populate(s, self.old)

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_restore_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return "collapse_anon_vma_unlock" if self.collapse_anon_vma_lock else "collapse_mmap_write_unlock"

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_anon_vma_unlock(self, s):
        # On success: every page is isolated, so the anon_vma rmap cannot reach them any more.
        anon_vma_unlock_write(s, self.vma)
        if self.failed:
            return "collapse_mmap_write_unlock"

    @step("mm/khugepaged.c:__collapse_huge_page_copy_succeeded")
    def collapse_copy(self, s):
        # The copy of entry i, then, under the (uncontended) ptl, ptep_clear() and the release of the
        # old page: release_pte_folio() puts the isolation reference, folio_put_refs() the mapping's.
        pte = ptep_get_and_clear(s, self.old, self.i)
        if pte_present(pte) and not is_zero_pte(pte):
            folio = page_folio(s, pte[0])
            folio_remove_rmap_ptes(s, folio)
            folio_put(s, folio)  # folio_putback_lru()
            folio_put(s, folio)  # folio_put_refs(src, 1)
            folio_mark_discarded(s, folio)  # replaced by its copy, whoever still holds a reference
        self.i += 1
        if self.i < ptrs_per_pte(s):
            return "collapse_copy"
        rcu_read_unlock(s)  # pte_unmap()
        self.isolated = ()

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_install_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_install(self, s):
        if pmdp_get(s) is not None:  # BUG_ON(!pmd_none(*pmd))
            s.report("collapse-bug-on", f"{s.actor}: the pmd changed while collapse_huge_page() had it cleared")
        folio_add_rmap_pmd(s, page_folio(s, self.new_page))  # folio_add_new_anon_rmap(RMAP_EXCLUSIVE)
        pgtable_trans_huge_deposit(s, self.old)  # the old table, for a later split
        set_pmd_at(s, huge_pmd(self.new_page))
        self.old = None

    @step("mm/khugepaged.c:collapse_huge_page")
    def collapse_install_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))

    @step("include/linux/mmap_lock.h:mmap_write_unlock")
    def collapse_mmap_write_unlock(self, s):
        mmap_write_unlock(s)  # also ends the VMA write lock (vma_end_write_all())
        return DONE
