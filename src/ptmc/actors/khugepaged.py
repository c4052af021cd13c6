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

from ..kernel.folio import (folio_add_rmap_pmd, folio_lock, folio_mapcount, folio_remove_rmap_ptes,
                           folio_trylock, folio_unlock, page_folio)
from ..kernel.mmap_lock import mmap_read_lock, mmap_read_unlock, mmap_write_lock, mmap_write_unlock
from ..kernel.pgtable import (PteOffsetMapLock, huge_pmd, is_pmd_migration_entry, mm_dec_nr_ptes,
                              pmd_clear, pmd_lock, pmd_lockptr, pmd_none, pmd_present, pmd_same,
                              pmd_table, pmd_trans_huge, pmdp_get_lockless, pte_free, pte_lockptr,
                              pte_offset_map_nolock, pte_unmap_unlock, ptep_get, ptep_get_and_clear,
                              ptrs_per_pte, set_pmd_at)
from ..kernel.pte import pte_none, pte_present
from ..kernel.rcu import RCU_GRACE_PERIOD, call_rcu
from ..kernel.spinlock import holds, spin_lock, spin_lock_nested, spin_unlock
from ..kernel.tlb import flush_tlb_mm, flush_tlb_range, slot_range
from ..kernel.vma import (Vma, i_mmap_lock_read, i_mmap_lock_write, i_mmap_unlock_read,
                          i_mmap_unlock_write, userfaultfd_armed, userfaultfd_wp, vma_has_anon_vma)
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

    retract_i_mmap_lock = Guard(
        "retract_page_tables(): i_mmap_rwsem for read keeps the mapping's VMA tree, and so each VMA and its "
        "page tables, from being torn down under the walk (unlink_file_vma() takes it for write before "
        "free_pgtables())",
        without="walk the mapping's VMAs without i_mmap_rwsem",
        against="munmap/exit unlinking the VMA and freeing its tables (not in this model)")
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
        if self.retract_i_mmap_lock:
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
        if self.retract_i_mmap_lock:
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


class Collapse(PteOffsetMapLock):
    """collapse_pte_mapped_thp() -> try_collapse_pte_mapped_thp(): a PMD-sized folio is in the page
    cache (data pages ``folio_page`` .. of the range) but mapped by the table's ptes; retract the
    table so the range refaults (or, ``install_pmd``, is mapped now) as one huge pmd.

    Under mmap_lock for read (no writer of this model's mm takes it, so it excludes nobody here)
    and with the huge folio locked (filemap_lock_folio(): sleeps while a fault holds it, and
    keeps refaults of the range out from then on): the pmd read locklessly (a huge one: done
    already), the scan under the ptl (pte_offset_map_lock()) that every entry maps the matching
    page of the folio, the ptl dropped; then in a private uffd-armed VMA pml taken first (a
    UFFDIO_COPY could otherwise insert an anonymous pte the folio lock does not stop); the table
    mapped again (pte_offset_map_rw_nolock()), its ptl, pmd_same(), every entry rechecked and
    cleared with its rmap; the ptl dropped unless pml is held, then pml, the ptl nested and
    pmd_same() again (only when ptl and pml differ: the code has it inside that branch), and
    pmdp_collapse_flush(), the unlocks, mm_dec_nr_ptes() and pte_free_defer(); maybe_install_pmd:
    set_huge_pmd() -> do_set_pmd() under pml if the pmd is still none.

    Configuration (constructor): the VMA, ``folio_page`` (its first data page), ``install_pmd``.
    ``pre_8d3c106e19e8``: the code before Jann Horn's 8d3c106e19e8 (v6.1) and Hugh Dickins'
    1d65b771bc08 (v6.6): under mmap_lock for *write* alone, the scan under the ptl, then
    collapse_and_free_pmd(): pml, pmdp_collapse_flush(), pte_free() at once; no i_mmap_rwsem, no
    RCU. ``i_mmap_write``: with 8d3c106e19e8's fix on that code: i_mmap_lock_write() around it."""

    pgt_pmd: object = None  # the pmd value the second map used
    pml_held: bool = False  # pml held (the code's pml != NULL)
    i: int = 0  # the entry being scanned or cleared
    nr_mapped: int = 0  # nr_mapped_ptes: entries cleared
    table: object = None  # the table pmdp_collapse_flush() cleared
    folio_locked: bool = False

    collapse_mmap_lock = Guard(
        "try_collapse_pte_mapped_thp(): mmap_lock (for read; for write before 8d3c106e19e8) keeps the VMA "
        "and its page tables from being torn down (munmap, exit_mmap()) while it works on them",
        without="collapse without mmap_lock",
        against="munmap/exit freeing the page tables (not in this model)")
    collapse_folio_lock = Guard(
        "try_collapse_pte_mapped_thp(): the huge folio stays locked (filemap_lock_folio()) from the scan to "
        "the end: a refault of the range blocks on it, so the table cannot be refilled while no lock is held "
        "between the clearing of the entries and pmdp_collapse_flush()",
        without="collapse without locking the huge folio",
        against="a shmem fault mapping the range again")
    collapse_pmd_same = Guard(
        "try_collapse_pte_mapped_thp(): pmd_same() after pte_offset_map_rw_nolock() and the ptl: the table "
        "may have been reclaimed (or replaced) since",
        without="clear the entries of the table mapped from the lockless read, unchecked",
        against="a zap reclaiming the table")
    collapse_pml_recheck = Guard(
        "try_collapse_pte_mapped_thp() step 4: the ptl was dropped; under pml and the ptl again the pmd must "
        "still be that table (the code rechecks only when ptl != pml)",
        without="clear the pmd without pmd_same()",
        against="a zap reclaiming the now empty table in the window")
    collapse_pml = Guard(
        "try_collapse_pte_mapped_thp(): pml serialises the pmd against pmd_install(), reclaim and retract",
        without="clear the pmd holding only the ptl",
        against="a zap's slow-path reclaim (under pml)")
    collapse_tlb_flush = Guard(
        "pmdp_collapse_flush(): flush_tlb_range() of the PMD range before the table goes to RCU (invariant H)",
        without="clear the pmd without flushing the TLB")
    set_huge_pmd_none = Guard(
        "do_set_pmd(): under pml the pmd must still be none (a fault may have installed a table)",
        without="install the huge pmd over whatever the pmd holds",
        against="a fault installing a table after the retraction")
    rcu_grace_period = RCU_GRACE_PERIOD

    def __init__(self, name, vma: Vma, *, folio_page: int = 1, install_pmd: bool = True,
                 pre_8d3c106e19e8: bool = False, i_mmap_write: bool = False):
        super().__init__(name)
        self.vma, self.folio_page, self.install_pmd = vma, folio_page, install_pmd
        self.historical, self.i_mmap_write = pre_8d3c106e19e8, i_mmap_write

    def folio(self, s):
        return page_folio(s, self.folio_page)

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_pte_mapped_thp(self, s):
        if self.historical:
            if self.collapse_mmap_lock:
                mmap_write_lock(s)  # khugepaged_collapse_pte_mapped_thps(): mmap_write_trylock()
            return "collapse_i_mmap_lock" if self.i_mmap_write else "collapse_find_pmd_fast"
        if self.collapse_mmap_lock:
            mmap_read_lock(s)  # collapse_single_pmd(): mmap_read_lock(); mmap_assert_locked()
        if userfaultfd_wp(self.vma):  # userfaultfd_protected(): keep the table (markers)
            return "collapse_drop_folio"
        return "collapse_find_pmd_fast"

    @step("mm/khugepaged.c:collapse_pte_mapped_thp")
    def collapse_i_mmap_lock(self, s):
        i_mmap_lock_write(s, self.vma)  # (i_mmap_write) 8d3c106e19e8: exclude the file's rmap walkers

    @step("mm/khugepaged.c:find_pmd_or_thp_or_none")
    def collapse_find_pmd_fast(self, s):
        if check_pmd_state(pmdp_get_lockless(s)) == SCAN_PMD_MAPPED:
            return "collapse_drop_folio"  # fast check before locking the folio: PMD-mapped already

    @step("mm/filemap.c:filemap_lock_folio")
    def collapse_lock_folio(self, s):
        if self.collapse_folio_lock:
            folio_lock(s, self.folio(s))
            self.folio_locked = True

    @step("mm/khugepaged.c:find_pmd_or_thp_or_none")
    def collapse_find_pmd(self, s):
        state = check_pmd_state(pmdp_get_lockless(s))
        if state == SCAN_NO_PTE_TABLE:
            return "collapse_install"  # all entries removed and the pmd cleared: maybe_install_pmd
        if state != SCAN_SUCCEED:
            return "collapse_drop_folio"
        self.i = 0
        return self.call(PteOffsetMapLock, then=self.collapse_mapped)

    def collapse_mapped(self, table):
        """step 1's pte_offset_map_lock(): NULL ("mmap_lock + page lock should prevent this")."""
        return "collapse_drop_folio" if table is None else "collapse_scan"

    def matches(self, pte, i) -> bool:
        """vm_normal_page() is folio_page(folio, i)."""
        return pte_present(pte) and pte[0] == self.folio_page + i

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_scan(self, s):
        # step 1: every mapped entry maps the matching page of the huge folio
        pte = ptep_get(s, self.pmdval, self.i)
        if not pte_none(pte) and not self.matches(pte, self.i):
            return "collapse_abort"  # swapped out (SCAN_PTE_NON_PRESENT), or another page
        self.i += 1
        if self.i < ptrs_per_pte(s):
            return "collapse_scan"
        pte_unmap_unlock(s, self.ptl)
        self.pmdval = self.ptl = None
        self.i = 0
        if self.historical:
            return "collapse_old_rmap"
        # mmu_notifier_invalidate_range_start(); a private uffd-armed VMA takes pml now
        if userfaultfd_armed(self.vma) and not self.vma.shared:
            return "collapse_uffd_pml"
        return "collapse_map_nolock"

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_uffd_pml(self, s):
        # mfill_atomic_pte() inserts an as-if-CoWed pte without looking at the page cache: the
        # folio lock does not stop it, so the ptl may not be dropped before the pmd is cleared.
        pmd_lock(s)
        self.pml_held = True

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def collapse_map_nolock(self, s):
        pgt_pmd, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return "collapse_abort"  # "mmap_lock + page lock should prevent this"
        self.pgt_pmd, self.ptl = pgt_pmd, ptl
        if self.pml_held and ptl == pmd_lockptr(s):
            return "collapse_pmd_same_check"

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_lock_ptl(self, s):
        spin_lock(s, self.ptl)  # spin_lock(), or spin_lock_nested() inside pml

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_pmd_same_check(self, s):
        if self.collapse_pmd_same and not pmd_same(self.pgt_pmd, pmdp_get_lockless(s)):
            return "collapse_abort"

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_clear(self, s):
        # step 2: the ptl was dropped after the scan: the folio lock keeps new ptes of the folio
        # out, but not their swap-out or migration, so check again; then clear with the rmap.
        pte = ptep_get(s, self.pgt_pmd, self.i)
        if not pte_none(pte):
            if not self.matches(pte, self.i):
                return "collapse_abort"
            ptep_get_and_clear(s, self.pgt_pmd, self.i)  # clear_ptes(); the TLB flush waits
            folio_remove_rmap_ptes(s, self.folio(s))
            self.nr_mapped += 1
        self.i += 1
        if self.i < ptrs_per_pte(s):
            return "collapse_clear"
        self.i = 0
        if self.pml_held:
            return "collapse_flush"

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_unlock_ptl(self, s):
        spin_unlock(s, self.ptl)  # still inside RCU: pte_unmap() comes with the final unlock

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_pmd_lock(self, s):
        # step 4: remove the empty table. (Step 3, folio_ref_sub() and the rss, is local.)
        if self.collapse_pml:
            pmd_lock(s)
            self.pml_held = True
        if not self.takes_ptl(s):
            return "collapse_flush"  # ptl == pml: the code rechecks nothing here

    def takes_ptl(self, s) -> bool:
        return not (self.pml_held and self.ptl == pmd_lockptr(s))

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_relock_ptl(self, s):
        spin_lock_nested(s, self.ptl)
        if self.collapse_pml_recheck and not pmd_same(self.pgt_pmd, pmdp_get_lockless(s)):
            flush_tlb_mm(s)  # entries were cleared: flush them; goto unlock
            return "collapse_abort"

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def collapse_flush(self, s):
        self.table = pmd_clear(s)
        if self.collapse_tlb_flush:
            start, end = slot_range(s, 0)
            flush_tlb_range(s, start, end)  # synchronous; pmdp_get_lockless_sync(): PAE only

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)  # pte_unmap_unlock(start_pte, ptl)
        if self.pml_held and self.ptl != pmd_lockptr(s):
            spin_unlock(s, pmd_lockptr(s))
        self.pml_held, self.ptl, self.pgt_pmd = False, None, None

    @step("mm/pgtable-generic.c:pte_free_defer")
    def collapse_free(self, s):
        table, self.table, self.nr_mapped = self.table, None, 0
        mm_dec_nr_ptes(s)
        if not pmd_table(table):  # pmd_pgtable() of a pmd that is no longer a table
            s.report("use-after-free", f"{s.actor} frees pmd_pgtable() of pmd value {table or 'none'}, "
                                       "which is no page table")
            return "collapse_drop_folio"
        pte_free_defer(s, table)
        return "collapse_install"

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_abort(self, s):
        if self.nr_mapped:
            flush_tlb_mm(s)
        # unlock: the ptl if it is held, then pml if held and distinct; pte_unmap()
        if self.ptl is not None and holds(s, self.ptl):
            spin_unlock(s, self.ptl)
        if self.pml_held and holds(s, pmd_lockptr(s)):
            spin_unlock(s, pmd_lockptr(s))
        if self.pgt_pmd is not None or self.pmdval is not None:
            from ..kernel.rcu import rcu_read_unlock
            rcu_read_unlock(s)
        self.pml_held, self.ptl, self.pgt_pmd, self.pmdval, self.nr_mapped, self.i = False, None, None, None, 0, 0
        return "collapse_drop_folio"

    # maybe_install_pmd: step 5
    @step("mm/memory.c:do_set_pmd")
    def collapse_install(self, s):
        if not self.install_pmd:
            return "collapse_drop_folio"
        pmd_lock(s)  # vmf->ptl = pmd_lock()

    @step("mm/memory.c:do_set_pmd")
    def set_huge_pmd(self, s):
        if not self.set_huge_pmd_none or pmd_none(pmdp_get_lockless(s)):
            if pmd_table(pmdp_get_lockless(s)):
                pmd_clear(s)  # (without the recheck) the table is overwritten: unlinked
            set_pmd_at(s, huge_pmd(self.folio_page))
            folio_add_rmap_pmd(s, self.folio(s))  # folio_add_file_rmap_pmd()
        spin_unlock(s, pmd_lockptr(s))

    @step("mm/khugepaged.c:try_collapse_pte_mapped_thp")
    def collapse_drop_folio(self, s):
        if self.folio_locked:
            folio_unlock(s, self.folio(s))
            self.folio_locked = False
        if self.historical and self.i_mmap_write:
            i_mmap_unlock_write(s, self.vma)
        if not self.collapse_mmap_lock:
            pass
        elif self.historical:
            mmap_write_unlock(s)
        else:
            mmap_read_unlock(s)
        return DONE

    # --- before 8d3c106e19e8: step 2 dropped the rmap only, step 4 collapse_and_free_pmd()
    @step("mm/khugepaged.c:collapse_pte_mapped_thp")
    def collapse_old_rmap(self, s):
        # step 2 (then): page_remove_rmap() of every mapped entry, the entries left as they are
        for i in range(ptrs_per_pte(s)):
            if pmd_table(s.pmd) and self.matches(ptep_get(s, s.pmd, i), i):
                folio_remove_rmap_ptes(s, self.folio(s))

    @step("mm/khugepaged.c:collapse_and_free_pmd")
    def collapse_and_free_pmd(self, s):
        pmd_lock(s)

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def old_collapse_flush(self, s):
        self.table = _clear_unchecked(s)
        start, end = slot_range(s, 0)
        flush_tlb_range(s, start, end)

    @step("mm/khugepaged.c:collapse_and_free_pmd")
    def old_unlock_and_free(self, s):
        spin_unlock(s, pmd_lockptr(s))
        mm_dec_nr_ptes(s)
        table, self.table = self.table, None
        pte_free(s, table)  # at once: every walker was thought excluded by the locks held
        return "collapse_drop_folio"


def _clear_unchecked(s):
    """pmdp_collapse_flush() of a table whose entries collapse_pte_mapped_thp() left in place
    (before 8d3c106e19e8 it freed the table without clearing them): no lost-mapping ghost check,
    the mappings were dropped from the rmap just before."""
    old = s.load("pmd")
    s.store("pmd", None)
    from ..kernel.tlb import tlb_unlinked
    tlb_unlinked(s, old[0], 0)
    return old
