"""khugepaged and MADV_COLLAPSE on file THP (mm/khugepaged.c): the two paths that retract a PTE
table from a file VMA once the huge folio has replaced the small ones in the page cache.

``Retract``: collapse_file() -> retract_page_tables(). No mmap lock and no VMA lock at all: only
i_mmap_rwsem for read, the pml, the ptl nested inside it, and the huge folio locked by
collapse_file() all along, which keeps refaults of those file indices (shmem_fault() takes the
page cache folio locked) from refilling the table. The pmd is read locklessly
(find_pmd_or_thp_or_none()), rechecked under pml (check_pmd_state(): only its state, not
pmd_same(): a different table that replaced the first is as empty, for the same reason), the
VMA checked twice (file_backed_vma_is_retractable(), again under the ptl), the pmd cleared with a
synchronous TLB flush (pmdp_collapse_flush()) and the table freed through RCU (pte_free_defer()).

``Collapse``: collapse_pte_mapped_thp() (try_collapse_pte_mapped_thp()), under mmap_lock for
read with the huge folio locked: the scan under the ptl, the clearing of the entries (under pml
from the start in a private uffd-armed VMA), pml + ptl + pmd_same() before
pmdp_collapse_flush(), pte_free_defer(), and optionally the huge pmd (set_huge_pmd()).

Steps follow the 2026 tree (file_backed_vma_is_retractable(), check_pmd_state() under pml from
Qi Zheng's "mm: khugepaged: recheck pmd state in retract_page_tables()", v6.14). The
mmu_notifier calls have no model (no secondary MMU), so they are left out;
pmdp_get_lockless_sync() is a no-op except on 32-bit PAE, which this model does not cover
(no torn pmd reads).
"""
from __future__ import annotations

from ..kernel.folio import folio_mapcount, folio_trylock, folio_unlock, page_folio
from ..kernel.pgtable import (is_pmd_migration_entry, mm_dec_nr_ptes, pmd_clear, pmd_lock,
                              pmd_lockptr, pmd_present, pmd_table, pmd_trans_huge, pmdp_get_lockless,
                              pte_free, pte_lockptr, ptrs_per_pte)
from ..kernel.rcu import RCU_GRACE_PERIOD, call_rcu
from ..kernel.spinlock import spin_lock_nested, spin_unlock
from ..kernel.tlb import flush_tlb_range, slot_range
from ..kernel.vma import (Vma, i_mmap_lock_read, i_mmap_unlock_read, userfaultfd_wp,
                          vma_has_anon_vma)
from ..model import DONE, Guard, step
from .rmap import TryToUnmapOne

# check_pmd_state() results (enum scan_result)
SCAN_SUCCEED, SCAN_NO_PTE_TABLE, SCAN_PMD_MAPPED = "succeed", "no_pte_table", "pmd_mapped"


def check_pmd_state(pmdval) -> str:
    """mm/khugepaged.c:check_pmd_state() of a pmd value read once: a PTE table, or why not."""
    if pmdval is None:
        return SCAN_NO_PTE_TABLE
    if is_pmd_migration_entry(pmdval):
        return SCAN_PMD_MAPPED
    if not pmd_present(pmdval):
        return SCAN_NO_PTE_TABLE
    if pmd_trans_huge(pmdval):
        return SCAN_PMD_MAPPED
    return SCAN_SUCCEED


def pte_free_now(s, table) -> None:
    """mm/pgtable-generic.c:pte_free_now(): the RCU callback pte_free_defer() queues."""
    pte_free(s, table)


def pte_free_defer(s, table) -> None:
    """mm/pgtable-generic.c:pte_free_defer(): call_rcu() on the table's own rcu_head (its ptdesc's
    pt_rcu_head), so that a pte_offset_map() user that found it before the pmd was cleared can
    finish with it (the grace period: ``--without rcu_grace_period`` frees it at once)."""
    call_rcu(s, table.field("rcu_head"), pte_free_now, table)


class Retract(TryToUnmapOne):
    """collapse_file() -> retract_page_tables() for the one VMA of the mapping: retract the PTE
    table of a file range whose small folios collapse_file() has replaced by a huge folio.

    collapse_file() first locks the page cache folio of every index of the range
    (folio_trylock(): one a fault holds makes the collapse fail, SCAN_PAGE_LOCK, and roll back)
    and unmaps a mapped one (try_to_unmap(), the rmap walk of ptmc.actors.rmap); copies them into
    the new huge folio, locked, and stores that in the page cache (no shared state of this
    model). The old folios' locks stand for the page cache lock of their indices from then on:
    the huge folio that replaced them stays locked until collapse_file() unlocks it after
    retract_page_tables() returned, so a refault of those indices (shmem_fault()) blocks.

    Then, with i_mmap_rwsem held for read and no mmap or VMA lock: the lockless pmd read, the
    VMA checks, pml, the pmd state rechecked under pml, the ptl nested inside pml (not when they
    are the same lock), the VMA checks again under the ptl, pmdp_collapse_flush(), the unlocks,
    mm_dec_nr_ptes() and pte_free_defer().

    Configuration (constructor): the VMA; ``maybe_guard``: the VMA has VMA_MAYBE_GUARD set (guard
    regions were installed, so it is not retractable)."""

    pmdval: object = None  # the pmd read locklessly (find_pmd_or_thp_or_none())
    ptl: object = None  # pte_lockptr(mm, pmd) under pml
    table: object = None  # pgt_pmd: the table pmdp_collapse_flush() cleared
    success: bool = False
    index: int = 0  # collapse_file(): the next index of the range to lock
    locked: tuple = ()  # the page cache folios collapse_file() holds locked (their pages)

    retract_folio_lock = Guard(
        "collapse_file(): the page cache folio of the range stays locked until retract_page_tables() "
        "returns, so a refault of those indices (shmem_fault()) blocks on it and the table stays empty",
        without="retract while a fault may map the page cache folio again (no folio lock taken)",
        against="a shmem fault refilling the table (ShmemFault)")
    retract_pml = Guard(
        "retract_page_tables(): pml serialises the pmd against pmd_install(), reclaim's clears and "
        "other retracts; the state recheck and pte_lockptr() are only valid under it",
        without="recheck, look up the ptl and clear the pmd without taking pml",
        against="a zap reclaiming the table, a fault installing one (pmd_install())")
    retract_pmd_recheck = Guard(
        "check_pmd_state() under pml: since the lockless read the table may have been unlinked "
        "(reclaim, another retract), and pte_lockptr() of a none pmd is a pointer into nothing",
        without="go on from the lockless pmd read",
        against="a zap reclaiming the table between the lockless read and pml")
    retract_ptl = Guard(
        "retract_page_tables(): the ptl, nested in pml, serialises against whatever inserts entries "
        "or markers under it without the folio lock (UFFDIO_COPY, madvise_guard_install()), so the "
        "VMA recheck under it is stable",
        without="clear the pmd holding only pml",
        against="a zap's fast path, which clears the pmd holding the ptl and a trylock of pml and relies on "
                "nobody changing the pmd under its ptl (I4); UFFDIO_COPY, madvise_guard_install() (not here)")
    retractable_recheck = Guard(
        "file_backed_vma_is_retractable() again under the ptl: the first check was lockless, and an "
        "anon_vma, a uffd-wp registration or a guard region may have appeared meanwhile",
        without="clear the pmd after the lockless check only",
        against="a VMA that gains an anon_vma, uffd-wp or guard regions meanwhile (fixed in this model)")
    collapse_tlb_flush = Guard(
        "pmdp_collapse_flush(): flush_tlb_range() of the PMD range right after the clear, before the "
        "table is handed to RCU: no CPU's paging-structure cache still walks it (invariant H)",
        without="clear the pmd without flushing the TLB")
    rcu_grace_period = RCU_GRACE_PERIOD

    def __init__(self, name, vma: Vma, *, maybe_guard: bool = False):
        super().__init__(name)
        self.vma, self.maybe_guard = vma, maybe_guard

    def retractable(self, s) -> bool:
        """mm/khugepaged.c:file_backed_vma_is_retractable()."""
        vma = self.vma
        if vma_has_anon_vma(s, vma):  # READ_ONCE(vma->anon_vma): a private mapping written to
            return False
        if userfaultfd_wp(vma):  # userfaultfd_protected(): uffd-wp markers may be in the table
            return False
        return not self.maybe_guard  # vma_test_atomic_flag(VMA_MAYBE_GUARD_BIT)

    @step("mm/khugepaged.c:collapse_file")
    def collapse_file(self, s):
        n = ptrs_per_pte(s)
        while self.index < n and page_folio(s, self.index + 1) is None:
            self.index += 1  # a hole of the page cache (nr_none): no folio to lock
        if self.index == n:
            return "retract_page_tables"
        i, folio = self.index, page_folio(s, self.index + 1)
        self.index += 1
        if self.retract_folio_lock:
            if not folio_trylock(s, folio):
                # SCAN_PAGE_LOCK: a fault holds it; roll back (unlock what was locked)
                return "collapse_file_unlock" if self.locked else DONE
            self.locked += (folio.head,)
        if folio_mapcount(s, folio):  # folio_mapped(): try_to_unmap(TTU_IGNORE_MLOCK | TTU_BATCH_FLUSH)
            return self.call(TryToUnmapOne, then="collapse_file", rmap_entry=i, rmap_page=folio.head)
        return "collapse_file"

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_page_tables(self, s):
        i_mmap_lock_read(s, self.vma)

    @step("mm/khugepaged.c:find_pmd_or_thp_or_none")
    def find_pmd(self, s):
        # Lockless: no mmap or VMA lock keeps this pmd from changing.
        self.pmdval = pmdp_get_lockless(s)
        if check_pmd_state(self.pmdval) != SCAN_SUCCEED or not self.retractable(s):
            self.pmdval = None
            return "retract_unlock_i_mmap"  # continue: the next VMA (there is none)
        return "retract_pmd_lock" if self.retract_pml else "retract_recheck"

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_pmd_lock(self, s):
        pmd_lock(s)

    @step("mm/khugepaged.c:check_pmd_state")
    def retract_recheck(self, s):
        # Only the pmd's state: a table installed meanwhile is as empty as the first (the folio
        # lock keeps faults out), so it may be retracted as well; no pmd_same() needed.
        if self.retract_pmd_recheck:
            if check_pmd_state(pmdp_get_lockless(s)) != SCAN_SUCCEED:
                return "retract_unlock_pml" if self.retract_pml else "retract_unlock_i_mmap"  # drop_pml
        # pte_lockptr(mm, pmd) reads the pmd again: its table's lock (or mm->page_table_lock).
        self.ptl = pte_lockptr(s, pmdp_get_lockless(s))
        return "retract_lock_ptl" if self.takes_ptl(s) else "retract_collapse"

    def takes_ptl(self, s) -> bool:
        """The ptl is a lock of its own (not pml, which is held already)."""
        return self.retract_ptl and not (self.retract_pml and self.ptl == pmd_lockptr(s))

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_lock_ptl(self, s):
        spin_lock_nested(s, self.ptl)  # spin_lock_nested(ptl, SINGLE_DEPTH_NESTING)

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def retract_collapse(self, s):
        # Racing userfaultfd ioctls or madvise may have inserted ptes or markers since the
        # lockless check: under the ptl the check is stable.
        if self.retractable_recheck and not self.retractable(s):
            return self.after_collapse(s)
        self.table, self.success = pmd_clear(s), True
        if self.collapse_tlb_flush:
            start, end = slot_range(s, 0)
            flush_tlb_range(s, start, end)  # synchronous; pmdp_get_lockless_sync(): PAE only
        return self.after_collapse(s)

    def after_collapse(self, s) -> str:
        if self.takes_ptl(s):
            return "retract_unlock_ptl"
        return "retract_unlock_pml" if self.retract_pml else self.after_unlock()

    def after_unlock(self) -> str:
        return "retract_free" if self.success else "retract_unlock_i_mmap"

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_unlock_ptl(self, s):
        spin_unlock(s, self.ptl)
        if not self.retract_pml:
            return self.after_unlock()

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return self.after_unlock()

    @step("mm/pgtable-generic.c:pte_free_defer")
    def retract_free(self, s):
        table, self.table, self.success, self.ptl, self.pmdval = self.table, None, False, None, None
        mm_dec_nr_ptes(s)
        if not pmd_table(table):  # (only without the guards) pmd_pgtable() of what is no table
            s.report("use-after-free", f"{s.actor} frees pmd_pgtable() of pmd value {table or 'none'}, "
                                       "which is no page table")
            return "retract_unlock_i_mmap"
        pte_free_defer(s, table)

    @step("mm/khugepaged.c:retract_page_tables")
    def retract_unlock_i_mmap(self, s):
        i_mmap_unlock_read(s, self.vma)
        self.ptl = self.pmdval = None
        if not self.locked:
            self.index = 0
            return DONE

    @step("mm/khugepaged.c:collapse_file")
    def collapse_file_unlock(self, s):
        # folio_unlock(new_folio): every index of the range can be faulted again (or, on a
        # rollback, the old folios unlocked).
        for head in self.locked:
            folio_unlock(s, page_folio(s, head))
        self.locked, self.index = (), 0
        return DONE
