"""The merged reclaim protocol: MADV_DONTNEED frees empty PTE pages (CONFIG_PT_RECLAIM, v6.14+).

Qi Zheng, "synchronously scan and reclaim empty user PTE pages" (seed 002 is its RFC), merged
as 6375e95f381e with 718b13861d22 (x86: free page tables by RCU instead of semi-RCU). There is
no per-page count: zap_pte_range() scans the table under its ptl and, when the zap covered the
whole PMD range, left every entry none and skipped nothing (no marker kept, no uffd-wp marker
re-installed: ``any_skipped``), unlinks it (fast path: spin_trylock of the pmd lock while
holding the ptl; slow path: pmd lock, then the ptl, then a recheck of every entry) and frees it
through the mmu_gather: TLB flush first, then an RCU grace period. Everybody else finds the
table through RCU-protected pte_offset_map*() and rechecks what it read: pte_offset_map_lock()
users with pmd_same() under the ptl, handle_pte_fault() with pte_same() against a non-none
entry.

One VMA covers the one pmd slot: private anonymous memory (``vma=anon``) or a shared shmem
mapping (``vma=shmem``), optionally registered with userfaultfd (``uffd``). What the table holds
at the start is a parameter (``ptes``: present pages, dirty ones, uffd-wp protected ones, the
zero page, swap and migration entries, uffd-wp and guard markers), or a huge pmd
(``huge_pmd``); ``thp`` lets faults install huge pmds; ``fault`` chooses what the faults do
(a write, a read of the zero page, an mTHP of two entries, or any of them). Zap, fault, walker
and reader hold mmap_lock (or the VMA lock) for read, which excludes none of them, so the lock
is left out unless a thread takes it for write (``mmap_writers()``: the anon collapse, mremap,
munmap); GUP-fast takes no lock at all, retract and the rmap walker only i_mmap_rwsem or the
anon_vma lock. The other actors (khugepaged, the rmap walker, userfaultfd, mremap, munmap,
pagemap, GUP-fast) are in ptmc.actors, 0 of each by default; the movers give the model a second
pmd slot, ``pmd2``.

Steps follow mm/memory.c, mm/pt_reclaim.c, mm/pgtable-generic.c, mm/mmu_gather.c,
mm/huge_memory.c and mm/pagewalk.c of v6.14-v6.18. Purely CPU-local operations are folded into
the adjacent shared access: rcu_read_lock() into the pmd read that follows it,
rcu_read_unlock() into the unlock before it (an earlier unlock or later lock only lets grace
periods end sooner, so this can add behaviours, never hide one); rss and mapcount accounting
into the entry write they account; tlb_gather_mmu()'s inc_tlb_flush_pending() into the zap's
first pmd read (a later increment only makes another gather's tlb_finish_mmu() flush less, so
again it can only add stale translations, never remove one). Without THP the fault starts at
handle_pte_fault(): __handle_mm_fault()'s lockless read of the pmd before it only chooses the
huge-pmd handlers, and no pmd can be huge then.
"""
import dataclasses

from ptmc import DONE, Model, Param, Thread, Variant, numbered, step
from ptmc.model import Guard
from ptmc.errors import PtmcError
from ptmc.actors import gup, khugepaged_anon
from ptmc.actors.gup import GupFast
from ptmc.actors.khugepaged_anon import CollapseHugePage
from ptmc.kernel.config import config
from ptmc.kernel.folio import (declare_folio, declare_folio_fields, folio_add_new_anon_rmap, folio_add_rmap_pmd,
                               folio_add_rmap_ptes, folio_lock, folio_remove_rmap_pmd,
                               folio_remove_rmap_ptes, folio_unlock, page_folio)
from ptmc.kernel.hw import HardwareWalker
from ptmc.kernel.mmap_lock import MmapReader, mmap_lock_init
from ptmc.kernel.mmu_gather import MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, PmdInstall, PteOffsetMapLock, address, huge_pmd,
                                 is_pmd_migration_entry, is_swap_pmd, mm_dec_nr_ptes, mm_inc_nr_ptes,
                                 pgtable_trans_huge_deposit, pgtable_trans_huge_withdraw, pmd_clear,
                                 pmd_lock, pmd_lockptr, pmd_none, pmd_populate, pmd_same, pmd_table,
                                 pmd_trans_huge, pmdp_get_lockless, pte_alloc_one, pte_free,
                                 pte_offset_map_nolock, pte_unmap, pte_unmap_unlock, ptep_get,
                                 ptep_get_and_clear, ptep_get_lockless, ptrs_per_pte, set_pmd_at,
                                 set_pte_at, set_ptes)
from ptmc.kernel.pte import (ZERO_PAGE, is_guard_pte_marker, is_zero_pte,
                             migration_pte, parse_kinds, present, pte_dirty, pte_marker_uffd_wp,
                             pte_none, pte_present, pte_swp_uffd_wp, pte_uffd_wp, pte_write, swap_pte,
                             uffd_wp_marker, zero_pte, KINDS)
from ptmc.kernel.rcu import RcuCallbacks, rcu_init, rcu_read_lock, rcu_read_unlock
from ptmc.kernel.spinlock import spin_lock, spin_lock_nested, spin_trylock, spin_unlock
from ptmc.kernel.tlb import cpu_caches_init, flush_tlb_range, slot_range
from ptmc.kernel.vma import (Vma, declare_vma, vma_detach_init, userfaultfd_armed, userfaultfd_missing,
                             userfaultfd_pte_wp, userfaultfd_wp, vma_is_anonymous)
from ptmc.properties import reachable
from ptmc.actors.khugepaged import Collapse, Retract
from ptmc.actors.rmap import TryToUnmap
from ptmc.actors.mremap import Mremap
from ptmc.actors.munmap import Munmap, PagemapWalker
from ptmc.actors.uffd import UffdCopy, UffdMove


def pte_install_uffd_wp_if_needed(s, vma: Vma, table, i: int, pteval) -> bool:
    """include/linux/mm_inline.h: a uffd-wp protected entry (a present pte with the bit, a swap
    entry with it, a uffd-wp marker) of a file-backed uffd-wp VMA leaves a uffd-wp marker behind
    when it is cleared, so the protection survives the zap."""
    if vma_is_anonymous(vma) or not userfaultfd_wp(vma):
        return False
    if (pte_present(pteval) and pte_uffd_wp(pteval)) or pte_swp_uffd_wp(pteval) or pte_marker_uffd_wp(pteval):
        set_pte_at(s, table, i, uffd_wp_marker())
        return True
    return False


class Zap(MmuGather, PteOffsetMapLock, MmapReader):
    """madvise(MADV_DONTNEED) -> zap_page_range_single() -> zap_pte_range() with reclaim_pt.

    zap_pmd_range() finds the table (a huge pmd goes to zap_huge_pmd() under the pml);
    zap_pte_range() maps and locks it (pte_offset_map_lock, with the pmd_same() retry) and
    zaps one entry per step: a present one with zap_present_ptes() (a dirty page of a file
    folio delays its rmap removal until after the TLB flush: force_flush, but no break), a
    non-present one with zap_nonpresent_ptes() (swap and migration entries are cleared, guard
    markers and a file VMA's uffd-wp markers kept: any_skipped), and a uffd-wp protected entry
    of a file VMA leaves a uffd-wp marker (any_skipped again). need_resched() and a full page
    batch (force_break) may end the loop early; then the ptl is dropped, the gather flushed if
    forced, and the rest of the range retried, and the table can only be reclaimed by the slow
    path. If the whole range was zapped without a break or a skip, the fast path
    try_get_and_clear_pmd() trylocks pml under the ptl and clears the pmd. Otherwise, if this
    call covered the whole PMD range and skipped nothing, try_to_free_pte() takes pml then the
    ptl (nested only when they differ), rechecks every entry and clears the pmd. Either way
    free_pte() puts the table into the mmu_gather, and tlb_finish_mmu() flushes the TLB and
    hands the batch to call_rcu().

    Configuration (constructor): the VMA; ``need_resched``, ``force_break``,
    ``batch_alloc_fail``: explore need_resched() breaking the loop, the page batch filling up,
    the batch page allocation failing; ``table_free_fallback`` (see ptmc.kernel.mmu_gather).
    """

    i: int = 0  # addr: the next entry to zap
    can_reclaim: bool = False  # can_reclaim_pt: this zap_pte_range() covers the whole PMD range
    direct_reclaim: bool = True  # no break since the scan started: the fast path may run
    force_flush: bool = False
    table: object = None  # the table unlinked by this thread, to be freed
    j: int = 0  # try_to_free_pte(): the entry being rechecked
    delayed_rmap: tuple = ()  # tlb->delayed_rmap: folios whose rmap goes after the TLB flush

    any_skipped_check = Guard(
        "zap_pte_range(): an entry the zap kept (a guard marker, a file VMA's uffd-wp marker) makes "
        "the table non-empty, and the fast path clears the pmd without looking at the entries again",
        without="reclaim the table even when the scan kept an entry (any_skipped ignored)")
    fast_path_pml = Guard(
        "try_get_and_clear_pmd(): pml serialises the pmd against pmd_install(), the huge-pmd paths and "
        "retract; ptl -> pml is the reverse order, hence only a trylock",
        without="clear the pmd holding only the ptl",
        against="a thread changing the pmd under pml only (pmd_install(), a huge pmd install)")
    slow_path_pml = Guard(
        "try_to_free_pte(): pml keeps the pmd from changing, so no pmd_same() is needed after the map",
        without="map and lock the table holding only its ptl, no pmd_same(), then clear the pmd")
    slow_path_ptl = Guard(
        "try_to_free_pte(): the entries are rechecked under the ptl every writer of them holds",
        without="recheck the entries and clear the pmd holding only pml",
        against="a fault refilling the table under its ptl")
    slow_path_recheck = Guard(
        "try_to_free_pte(): the ptl was dropped since the scan: a fault may have refilled the table",
        without="clear the pmd without rechecking the entries",
        against="a fault refilling the table between the scan and the slow path")

    def __init__(self, name, vma: Vma, *, need_resched=True, force_break=True, batch_alloc_fail=True,
                 table_free_fallback=None):
        super().__init__(name)
        self.vma = vma
        self.need_resched, self.force_break = need_resched, force_break
        self.batch_alloc_can_fail, self.table_free_fallback = batch_alloc_fail, table_free_fallback

    @step("mm/memory.c:zap_pmd_range")
    def zap_pmd_range(self, s):
        if not self.tlb_active:
            self.tlb_gather_mmu(s)  # zap_page_range_single(): tlb_gather_mmu()
        pmdval = s.pmd
        if is_swap_pmd(pmdval) or pmd_trans_huge(pmdval):
            return "zap_huge_pmd"  # (HugeZap) the zap covers the whole PMD: no split
        if not pmd_table(pmdval):
            return self.tlb_finish_mmu(self.done())
        # reclaim_pt_is_enabled(): only a zap of the whole PMD range may reclaim the table.
        self.can_reclaim = config(s).pt_reclaim and self.i == 0
        self.direct_reclaim = True
        return self.call(PteOffsetMapLock, then=self.zap_pte_range)

    def zap_pte_range(self, table):
        """pte_offset_map_lock() returned: NULL means the pmd changed, so zap_pmd_range()
        looks at it again; otherwise zap under the ptl."""
        return "zap_pmd_range" if table is None else "zap_pte"

    @step("mm/memory.c:do_zap_pte_range")
    def zap_pte(self, s):
        if self.need_resched and s.maybe("need_resched()"):
            self.direct_reclaim = False
            return self.after_scan(s)
        table, i = self.pmdval, self.i
        pte = ptep_get(s, table, i)
        force_break = any_skipped = False
        if pte_present(pte):
            any_skipped, force_break = self.zap_present_ptes(s, table, i, pte)
        elif not pte_none(pte):
            any_skipped = self.zap_nonpresent_ptes(s, table, i, pte)
        if any_skipped and self.any_skipped_check:
            self.can_reclaim = False
        self.i += 1
        if force_break:
            self.direct_reclaim = False
            return self.after_scan(s)
        return "zap_pte" if self.i < ptrs_per_pte(s) else self.after_scan(s)

    def zap_present_ptes(self, s, table, i, pte) -> tuple[bool, bool]:
        """zap_present_ptes() / zap_present_folio_ptes(): (any_skipped, force_break)."""
        vma, any_skipped = self.vma, False
        if is_zero_pte(pte):  # vm_normal_page() is NULL: no folio, no rmap
            ptep_get_and_clear(s, table, i)
            self.tlb_remove_tlb_entries(s, i)
            if userfaultfd_pte_wp(vma, pte):
                any_skipped = pte_install_uffd_wp_if_needed(s, vma, table, i, pte)
            return any_skipped, False
        folio = page_folio(s, pte[0])  # should_zap_folio(): reclaim_pt zaps every folio
        delay_rmap = False
        ptep_get_and_clear(s, table, i)  # get_and_clear_full_ptes() / clear_full_ptes()
        if not folio.anon and pte_dirty(pte):
            # folio_mark_dirty(); tlb_delay_rmap(): the rmap stays until the TLB is flushed, so
            # nobody may write the folio back while a CPU can still write to it.
            delay_rmap = self.force_flush = True
        self.tlb_remove_tlb_entries(s, i)
        if userfaultfd_pte_wp(vma, pte):
            any_skipped = pte_install_uffd_wp_if_needed(s, vma, table, i, pte)
        if delay_rmap:
            self.delayed_rmap += (folio.head,)
        else:
            folio_remove_rmap_ptes(s, folio)
        if self.force_break and s.maybe("__tlb_remove_folio_pages(): batch full"):
            self.force_flush = True
            return any_skipped, True
        return any_skipped, False

    def zap_nonpresent_ptes(self, s, table, i, pte) -> bool:
        """zap_nonpresent_ptes(): any_skipped unless the entry was cleared and no uffd-wp
        marker had to replace it."""
        if pte_marker_uffd_wp(pte):
            if not vma_is_anonymous(self.vma):  # file VMA: only ZAP_FLAG_DROP_MARKER drops it
                return True
        elif is_guard_pte_marker(pte):
            return True  # MADV_DONTNEED keeps guard regions (no ZAP_FLAG_DROP_MARKER)
        # A genuine swap entry (free_swap_and_cache_nr()) or a migration entry: cleared.
        ptep_get_and_clear(s, table, i)  # clear_not_present_full_ptes()
        return pte_install_uffd_wp_if_needed(s, self.vma, table, i, pte)

    def after_scan(self, s) -> str:
        if self.can_reclaim and self.direct_reclaim and self.i == ptrs_per_pte(s):
            return "try_get_and_clear_pmd"
        return self.before_unlock()

    def before_unlock(self) -> str:
        """A forced flush happens while the ptl is still held; then the unlock."""
        return "zap_tlb_flush" if self.force_flush else "zap_unlock"

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def try_get_and_clear_pmd(self, s):
        # We hold the ptl; ptl -> pml is the reverse of the usual order, so only a trylock.
        # With ptl == pml it always fails: that lock is already ours.
        if not self.fast_path_pml:
            return "clear_pmd"  # (without the guard: the step is only the branch)
        if not spin_trylock(s, pmd_lockptr(s)):
            self.direct_reclaim = False
            return self.before_unlock()

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def clear_pmd(self, s):
        # No recheck of the pmd: it cannot change while we hold the table's ptl (I4), and
        # every entry was seen none under that same ptl.
        self.table = pmd_clear(s)
        if not pmd_table(self.table):  # only when another thread broke I4 (a guard ablation)
            s.report("use-after-free", f"{s.actor} unlinks pmd value {self.table or 'none'} as its table: "
                                       "the pmd changed under the ptl")
        if not self.fast_path_pml:
            return self.before_unlock()

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return self.before_unlock()

    @step("include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly")
    def zap_tlb_flush(self, s):
        self._tlb_flush(s)  # still under the ptl: no refault can see a stale TLB entry
        for head in self.delayed_rmap:  # tlb_flush_rmaps(): now that no CPU can write through it
            folio_remove_rmap_ptes(s, page_folio(s, head))
        self.delayed_rmap = ()

    @step("include/linux/mm.h:pte_unmap_unlock")
    def zap_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)
        flush, self.force_flush = self.force_flush, False
        if self.i != ptrs_per_pte(s):  # the rest of the range
            return self.tlb_flush_mmu(then=self.zap_retry) if flush else self.zap_retry()
        return self.tlb_flush_mmu(then=self.zap_end) if flush else self.zap_end()

    def zap_retry(self, _=None):
        """addr != end: cond_resched(); goto retry."""
        return self.call(PteOffsetMapLock, then=self.zap_pte_range)

    def zap_end(self, _=None):
        """The whole range is zapped: reclaim the table if this call may, else finish."""
        if not self.can_reclaim:
            return self.tlb_finish_mmu(self.done())
        return "free_pte" if self.direct_reclaim else "try_to_free_pte"

    # The slow path, try_to_free_pte(): the usual lock order, and every entry rechecked.
    @step("mm/pt_reclaim.c:try_to_free_pte")
    def try_to_free_pte(self, s):
        if self.slow_path_pml:
            pmd_lock(s)

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def slow_map(self, s):
        pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return "slow_unlock_pml" if self.slow_path_pml else self.tlb_finish_mmu(self.done())
        self.pmdval, self.ptl, self.j = pmdval, ptl, 0
        # No pmd_same() needed: the pmd cannot change while we hold pml.
        return "slow_lock_ptl" if self.took_ptl(s) else self.slow_checked()

    def took_ptl(self, s) -> bool:
        """The slow path takes the ptl as a lock of its own (not when it is pml, held already)."""
        return self.slow_path_ptl and not (self.slow_path_pml and self.ptl == pmd_lockptr(s))

    def slow_checked(self) -> str:
        return "slow_check" if self.slow_path_recheck else "slow_clear_pmd"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_lock_ptl(self, s):
        spin_lock_nested(s, self.ptl)  # spin_lock_nested(ptl, SINGLE_DEPTH_NESTING)
        return self.slow_checked()

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_check(self, s):
        if not pte_none(ptep_get(s, self.pmdval, self.j)):
            # Refilled since the scan: give up. With ptl == pml this unlock releases pml too.
            if self.took_ptl(s):
                pte_unmap_unlock(s, self.ptl)
                return "slow_unlock_pml" if self.slow_path_pml else self.tlb_finish_mmu(self.done())
            if self.slow_path_pml:
                pte_unmap_unlock(s, pmd_lockptr(s))
            else:
                pte_unmap(s)
            return self.tlb_finish_mmu(self.done())
        self.j += 1
        return "slow_check" if self.j < ptrs_per_pte(s) else "slow_clear_pmd"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_clear_pmd(self, s):
        pte_unmap(s)  # both locks still held
        self.table = pmd_clear(s)
        if not pmd_table(self.table):  # only when another thread changed the pmd (a guard ablation)
            s.report("use-after-free", f"{s.actor} unlinks pmd value {self.table or 'none'} as its table: "
                                       "the pmd changed under pml")
        if self.took_ptl(s):
            return "slow_unlock_ptl"
        return "slow_unlock_pml" if self.slow_path_pml else "free_pte"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_unlock_ptl(self, s):
        spin_unlock(s, self.ptl)
        if not self.slow_path_pml:
            return "free_pte"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return "free_pte" if self.table is not None else self.tlb_finish_mmu(self.done())

    @step("mm/pt_reclaim.c:free_pte")
    def free_pte(self, s):
        table, self.table = self.table, None
        # pte_free_tlb(tlb, pmd_pgtable(pmdval), start) into the gather, then mm_dec_nr_ptes();
        # this pmd is done and tlb_finish_mmu() follows.
        mm_dec_nr_ptes(s)
        return self.pte_free_tlb(s, table, address(s, 0), then=self.zap_finished)

    def zap_finished(self, _=None):
        """A continuation: tlb_finish_mmu(), then the zap returns (through mmap_read_unlock())."""
        return self.tlb_finish_mmu(self.done())


class HugeZap(Zap):
    """A zap that may meet a huge pmd: zap_pmd_range() hands it to zap_huge_pmd() (the zap
    covers the whole PMD range, so no split): under the pml (__pmd_trans_huge_lock(), which
    rechecks that it is still huge) the pmd is cleared, its PMD_SIZE range goes into the gather,
    the folio's rmap is dropped and an anonymous THP's deposited table freed (zap_deposited_table());
    the folio itself waits in the page batch for the flush."""

    first_step = "zap_pmd_range"

    huge_pmd_recheck = Guard(
        "__pmd_trans_huge_lock(): under pml the pmd may no longer be huge (a walker split it into a "
        "table) since zap_pmd_range()'s lockless read",
        without="clear the pmd as if it were still huge",
        against="a walker splitting the huge pmd (HugeWalker)")

    @step("mm/huge_memory.c:zap_huge_pmd")
    def zap_huge_pmd(self, s):
        pmd_lock(s)  # __pmd_trans_huge_lock()

    @step("mm/huge_memory.c:zap_huge_pmd")
    def zap_huge_pmd_locked(self, s):
        pmdval = s.pmd
        if not (is_swap_pmd(pmdval) or pmd_trans_huge(pmdval)):
            if self.huge_pmd_recheck:
                spin_unlock(s, pmd_lockptr(s))  # no longer huge: zap_pmd_range() looks again
                return "zap_pmd_range"
            if pmdval is not None:
                pmd_clear(s)  # a table taken for a huge pmd: unlinked with what it maps
            return "zap_huge_pmd_unlock"
        pmd_clear(s)  # pmdp_huge_get_and_clear_full()
        self.tlb_remove_pmd_tlb_entry(s)
        folio = page_folio(s, pmdval[0])
        if pmd_trans_huge(pmdval) and folio is not None:
            folio_remove_rmap_pmd(s, folio)
        if folio is None or folio.anon:  # an anonymous THP (or the huge zero page) deposited a table
            table = pgtable_trans_huge_withdraw(s)  # zap_deposited_table()
            pte_free(s, table)  # never visible to anyone: freed at once
            mm_dec_nr_ptes(s)

    @step("mm/huge_memory.c:zap_huge_pmd")
    def zap_huge_pmd_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))  # then tlb_remove_page_size(): the folio waits for the flush
        return self.tlb_finish_mmu(self.done())  # the next pmd: the end of the range


FAULT_KINDS = ("write", "read", "mthp")


class Fault(PteOffsetMapLock, PmdInstall, MmapReader):
    """A fault on entry 0 of anonymous memory: handle_pte_fault(), do_anonymous_page().

    With a table present, handle_pte_fault() maps it with pte_offset_map_rw_nolock() and reads
    the entry locklessly; a present entry is revalidated with pte_same() under the ptl before
    its access flags are written. A none entry (or a uffd-wp marker) goes to do_pte_missing()
    -> do_anonymous_page(): pte_alloc() (pmd_install() of a new table under pml if the pmd is
    none, freeing the unpublished table if another thread won), then pte_offset_map_lock() with
    its pmd_same() retry, the recheck that the entry is unchanged (vmf_pte_changed()), and
    set_ptes(): a write maps a new page, a read the zero page. A userfaultfd missing fault is
    handed to userspace after that recheck. Whenever a map returns NULL, or the recheck fails,
    the access faults again. Subclasses add the mTHP (MthpFault), the huge pmd (HugeFault) and
    shmem (ShmemFault) paths.

    Configuration (constructor): the VMA, ``kind`` (write, read, mthp, or any: chosen in the
    first step), ``thp`` (THP allowed), and its pages: ``page`` (a new small folio),
    ``mthp_page`` (the first page of its two-page folio), ``thp_page`` (its PMD-sized folio),
    ``file_page`` (the page cache page of entry 0 on shmem).
    """

    first_step = "handle_pte_fault"

    orig: object = None  # the entry read locklessly
    kind: str = None  # what this fault does: write, read or mthp
    k: int = 0  # alloc_anon_folio(): the entry pte_range_none() looks at
    nr: int = 1  # the folio's pages: 1, or 2 for the mTHP
    prealloc: object = None  # vmf->prealloc_pte (do_fault()) or the THP's deposit table

    pte_same_recheck = Guard(
        "handle_pte_fault(): the entry read locklessly may have changed, or its table been unlinked "
        "(an unlinked table is all none, so pte_same() against a non-none orig fails), before the ptl",
        without="update the entry from the lockless read (ptep_set_access_flags() of orig) unchecked",
        against="a zap clearing the entry, reclaim unlinking the table")
    vmf_pte_changed = Guard(
        "vmf_pte_changed() / pte_range_none() under the ptl: another fault may have mapped the entry "
        "since it was seen none",
        without="map the new page over whatever the entry holds now",
        against="a second fault on the same entry")
    wp_pte_same = Guard(
        "wp_page_copy(): the entry may have changed while the copy was allocated without the ptl",
        without="replace the entry with the copy unchecked",
        against="a zap clearing the zero page entry meanwhile")

    def __init__(self, name, vma: Vma, *, kind="write", thp=False, page=None,
                 mthp_page=None, thp_page=None, file_page=None):
        super().__init__(name)
        self.vma, self.fault_kind, self.thp = vma, kind, thp
        self.page, self.mthp_page, self.thp_page, self.file_page = page, mthp_page, thp_page, file_page
        self.entry = 0

    def refault(self):
        """The fault returned 0 without mapping: the access faults again."""
        return self.first_step

    # handle_pte_fault()
    def choose_kind(self, s) -> None:
        """The first step of a fault decides what it is (fault=any: each is explored)."""
        if self.kind is None:
            self.kind = s.choose("fault", FAULT_KINDS) if self.fault_kind == "any" else self.fault_kind

    @step("mm/memory.c:handle_pte_fault")
    def handle_pte_fault(self, s):
        self.choose_kind(s)
        self.orig = None
        return "do_pte_missing" if pmd_none(s.pmd) else "fault_map_nolock"

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def fault_map_nolock(self, s):
        pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return self.refault()  # NULL: return 0 and the access faults again
        self.pmdval, self.ptl = pmdval, ptl

    @step("mm/memory.c:handle_pte_fault")
    def fault_read_pte(self, s):
        self.orig = ptep_get_lockless(s, self.pmdval, self.entry)
        if pte_none(self.orig):
            pte_unmap(s)
            self.orig = None
            return "do_pte_missing"
        if not pte_present(self.orig):
            pte_unmap(s)  # do_swap_page() -> handle_pte_marker()
            if pte_marker_uffd_wp(self.orig):
                return "do_pte_missing"  # pte_marker_handle_uffd_wp(): a fault on a none pte
            self.orig = None
            return self.done()  # a guard marker: VM_FAULT_SIGSEGV (swap-in and migration waits: not here)

    @step("mm/memory.c:handle_pte_fault")
    def fault_lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/memory.c:handle_pte_fault")
    def fault_pte_same(self, s):
        # No pmd_same() here: orig is not none, and a table is unlinked only when all its
        # entries are none, so pte_same() fails on a table that was unlinked meanwhile.
        pte = ptep_get(s, self.pmdval, self.entry)
        if self.pte_same_recheck and pte != self.orig:
            pte_unmap_unlock(s, self.ptl)
            return self.refault()  # update_mmu_tlb(); the access faults again
        pte = self.orig  # vmf->orig_pte: what the code goes on with
        if self.kind != "read" and not pte_write(pte):  # a write fault (an mTHP's too): do_wp_page()
            pte_unmap_unlock(s, self.ptl)
            if userfaultfd_pte_wp(self.vma, pte):
                return self.done()  # handle_userfault(VM_UFFD_WP): userspace resolves it
            # the zero page: wp_page_copy() copies it into a new folio, rechecking under the ptl
            return self.call(PteOffsetMapLock, then=self.wp_mapped)
        set_pte_at(s, self.pmdval, self.entry, pte)  # ptep_set_access_flags(): young/dirty

    @step("include/linux/mm.h:pte_unmap_unlock")
    def fault_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)
        return self.done()

    def wp_mapped(self, table):
        """wp_page_copy(): the new folio is allocated; the table mapped and locked again."""
        return self.refault() if table is None else "wp_page_copy"

    @step("mm/memory.c:wp_page_copy")
    def wp_page_copy(self, s):
        pte = ptep_get(s, self.pmdval, self.entry)
        if not self.wp_pte_same or pte == self.orig:  # pte_same(): unchanged since the fault
            # ptep_clear_flush() before the new entry, so no CPU keeps the old one
            ptep_get_and_clear(s, self.pmdval, self.entry)
            flush_tlb_range(s, address(s, self.entry), address(s, self.entry) + 1)
            set_pte_at(s, self.pmdval, self.entry, present(self.page, True))
            folio_add_new_anon_rmap(s, page_folio(s, self.page))
        self.orig = None
        return "fault_unlock"

    # do_pte_missing()
    @step("mm/memory.c:do_pte_missing")
    def do_pte_missing(self, s):
        if not vma_is_anonymous(self.vma):
            return "do_fault"  # (ShmemFault)
        self.nr = 2 if self.kind == "mthp" and not userfaultfd_armed(self.vma) else 1
        if not pmd_none(s.pmd):  # do_anonymous_page(): pte_alloc() finds a table
            return self.after_pte_alloc()

    @step("mm/memory.c:__pte_alloc")
    def alloc(self, s):
        self.new = pte_alloc_one(s)  # not yet visible to anyone
        return self.call(PmdInstall, then=self.installed)

    def installed(self, _):
        """__pte_alloc() after pmd_install(): free the table if another thread won."""
        return "free_unpublished" if self.new is not None else self.after_pte_alloc()

    @step("mm/memory.c:__pte_alloc")
    def free_unpublished(self, s):
        pte_free(s, self.new)  # never visible, so freed at once
        self.new = None
        return self.after_pte_alloc()

    def after_pte_alloc(self):
        if self.nr > 1:
            return "mthp_map"  # (MthpFault) alloc_anon_folio()
        return self.call(PteOffsetMapLock, then=self.anon_mapped)

    def anon_mapped(self, table):
        """pte_offset_map_lock() in do_anonymous_page(): NULL means the fault is retried."""
        return self.refault() if table is None else "anon_pte_none"

    @step("mm/memory.c:vmf_pte_changed")
    def anon_pte_none(self, s):
        # vmf_pte_changed() (pte_same() with a marker it faulted on), or pte_range_none() for the
        # mTHP: someone mapped it meanwhile?
        changed = ptep_get(s, self.pmdval, self.entry) != self.orig or \
            any(not pte_none(ptep_get(s, self.pmdval, self.entry + k)) for k in range(1, self.nr))
        if changed and self.vmf_pte_changed:
            return "fault_unlock"
        if userfaultfd_missing(self.vma):
            return "fault_unlock"  # handle_userfault(VM_UFFD_MISSING), after the unlock

    @step("mm/memory.c:do_anonymous_page")
    def anon_set_pte(self, s):
        wp = self.orig is not None  # vmf_orig_pte_uffd_wp(): the marker's protection stays
        if self.kind == "read":
            set_pte_at(s, self.pmdval, self.entry, zero_pte(wp))  # the zero page: no rmap
        elif self.nr > 1:
            set_ptes(s, self.pmdval, self.entry, present(self.mthp_page, True, wp), self.nr)
            folio_add_new_anon_rmap(s, page_folio(s, self.mthp_page), self.nr)
        else:
            set_pte_at(s, self.pmdval, self.entry, present(self.page, True, wp))  # set_ptes()
            folio_add_new_anon_rmap(s, page_folio(s, self.page))
        self.orig = None
        return "fault_unlock"

class MthpFault(Fault):
    """An anonymous fault that may allocate an mTHP (alloc_anon_folio(), not in a
    userfaultfd-armed VMA): it maps the table with pte_offset_map() and checks locklessly that
    each entry of its order-1 range is none (pte_range_none()), falling back to a small folio if
    not; under the ptl it checks the whole range again and maps both entries (set_ptes())."""

    @step("mm/memory.c:alloc_anon_folio")
    def mthp_map(self, s):
        rcu_read_lock(s)  # pte_offset_map(vmf->pmd, addr & PMD_MASK)
        pmdval = s.pmd
        if not pmd_table(pmdval):
            rcu_read_unlock(s)
            return self.refault()  # ERR_PTR(-EAGAIN): return 0, the access faults again
        self.pmdval, self.k = pmdval, 0

    @step("mm/memory.c:pte_range_none")
    def mthp_range_none(self, s):
        if not pte_none(ptep_get_lockless(s, self.pmdval, self.entry + self.k)):
            rcu_read_unlock(s)  # pte_unmap(); no order fits: the small folio (fallback)
            self.nr = 1
            return self.call(PteOffsetMapLock, then=self.anon_mapped)
        self.k += 1
        if self.k < self.nr:
            return "mthp_range_none"
        rcu_read_unlock(s)  # pte_unmap(); then vma_alloc_folio() of the order
        self.k = 0
        return self.call(PteOffsetMapLock, then=self.anon_mapped)



class HugeFault(Fault):
    """A fault where the pmd may be huge: __handle_mm_fault() reads it locklessly first. A none
    pmd with THP allowed goes to do_huge_pmd_anonymous_page(): a table to deposit, the pml, the
    pmd_none() recheck, the huge pmd (the huge zero page for a read) and its deposit; a huge
    pmd to huge_pmd_set_accessed() under the pml; a table to handle_pte_fault()."""

    first_step = "handle_mm_fault"

    huge_pmd_none_recheck = Guard(
        "__do_huge_pmd_anonymous_page(): under pml, the pmd may no longer be none (a table installed "
        "by another fault, a huge pmd) since __handle_mm_fault()'s lockless read",
        without="install the huge pmd over whatever the pmd holds now")

    @step("mm/memory.c:__handle_mm_fault")
    def handle_mm_fault(self, s):
        self.choose_kind(s)
        pmdval = pmdp_get_lockless(s)  # pmd_none(*vmf.pmd), then vmf.orig_pmd
        if pmd_none(pmdval) and self.thp and vma_is_anonymous(self.vma):
            return "huge_alloc"  # create_huge_pmd() -> do_huge_pmd_anonymous_page()
        if pmd_trans_huge(pmdval):
            self.orig = pmdval
            return "huge_set_accessed"
        if is_pmd_migration_entry(pmdval):
            return self.done()  # pmd_migration_entry_wait(): a migration actor's story
        return "handle_pte_fault"

    @step("mm/huge_memory.c:__do_huge_pmd_anonymous_page")
    def huge_alloc(self, s):
        self.prealloc = pte_alloc_one(s)  # the table deposited with the huge pmd

    @step("mm/huge_memory.c:__do_huge_pmd_anonymous_page")
    def huge_lock(self, s):
        pmd_lock(s)

    @step("mm/huge_memory.c:__do_huge_pmd_anonymous_page")
    def huge_install(self, s):
        if self.huge_pmd_none_recheck and not pmd_none(s.pmd):
            return "huge_unlock"  # unlock_release: someone installed something meanwhile (return 0)
        if userfaultfd_missing(self.vma):
            return "huge_unlock"  # handle_userfault(VM_UFFD_MISSING), after the unlock
        page = ZERO_PAGE if self.kind == "read" else self.thp_page  # set_huge_zero_folio()
        pgtable_trans_huge_deposit(s, self.prealloc)
        if pmd_table(s.pmd):  # (without the recheck) the table is overwritten: unlinked
            pmd_clear(s)
        set_pmd_at(s, huge_pmd(page))
        if page != ZERO_PAGE:
            folio_add_rmap_pmd(s, page_folio(s, page))  # folio_add_new_anon_rmap()
        mm_inc_nr_ptes(s)
        self.prealloc = None

    @step("mm/huge_memory.c:__do_huge_pmd_anonymous_page")
    def huge_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        if self.prealloc is None:
            return self.done()  # installed
        pte_free(s, self.prealloc)  # pte_free() of the unused deposit table, at once
        self.prealloc = None
        # handle_userfault(VM_UFFD_MISSING); or the pmd was not none: return 0, fault again
        return self.done() if userfaultfd_missing(self.vma) else self.refault()

    @step("mm/huge_memory.c:huge_pmd_set_accessed")
    def huge_set_accessed(self, s):
        pmd_lock(s)

    @step("mm/huge_memory.c:huge_pmd_set_accessed")
    def huge_touch(self, s):
        pmd_same(s.pmd, self.orig)  # touch_pmd() only if unchanged
        self.orig = None
        spin_unlock(s, pmd_lockptr(s))
        return self.done()



class HugeMthpFault(HugeFault, MthpFault):
    """Both: the pmd may be huge, and a small fault may allocate an mTHP."""

    first_step = "handle_mm_fault"


class ShmemFault(Fault):
    """A write fault of shared shmem: do_fault() -> do_shared_fault(). A table is preallocated
    when the pmd is none; shmem_fault() returns the page cache folio locked (the folio lock,
    which sleeps); finish_fault() installs the preallocated table (pmd_install()) or allocates
    one, maps and locks the table, rechecks the entry (vmf_pte_changed()) and maps the folio
    (set_pte_range(): file rmap); fault_dirty_shared_page() unlocks the folio, and do_fault()
    frees a preallocated table that was not used."""

    @step("mm/memory.c:__do_fault")
    def do_fault(self, s):
        if self.kind != "write":
            raise PtmcError("only write faults of shmem (do_shared_fault()) are modelled")
        if pmd_none(s.pmd):
            self.prealloc = pte_alloc_one(s)  # vmf->prealloc_pte, before the folio lock

    @step("mm/shmem.c:shmem_fault")
    def shmem_fault(self, s):
        folio_lock(s, page_folio(s, self.file_page))  # the page cache folio, returned locked

    @step("mm/memory.c:finish_fault")
    def finish_fault(self, s):
        if not pmd_none(s.pmd):
            return self.call(PteOffsetMapLock, then=self.file_mapped)
        if self.prealloc is not None:  # pmd_install(vma->vm_mm, vmf->pmd, &vmf->prealloc_pte)
            self.new, self.prealloc = self.prealloc, None
            return self.call(PmdInstall, then=self.file_installed)
        # else pte_alloc(): the pmd was a table at __do_fault() and is none now

    @step("mm/memory.c:__pte_alloc")
    def file_pte_alloc(self, s):
        self.new = pte_alloc_one(s)
        return self.call(PmdInstall, then=self.file_pte_allocated)

    def file_installed(self, _):
        # pmd_install(&vmf->prealloc_pte): a table that lost the race stays preallocated
        self.prealloc, self.new = self.new, None
        return self.call(PteOffsetMapLock, then=self.file_mapped)

    def file_pte_allocated(self, _):
        return "file_free_unpublished" if self.new is not None else \
            self.call(PteOffsetMapLock, then=self.file_mapped)

    @step("mm/memory.c:__pte_alloc")
    def file_free_unpublished(self, s):
        pte_free(s, self.new)  # never visible, so freed at once
        self.new = None
        return self.call(PteOffsetMapLock, then=self.file_mapped)

    def file_mapped(self, table):
        return "file_unlock_folio" if table is None else "file_pte_changed"  # VM_FAULT_NOPAGE

    @step("mm/memory.c:finish_fault")
    def file_pte_changed(self, s):
        if ptep_get(s, self.pmdval, self.entry) != self.orig and self.vmf_pte_changed:  # vmf_pte_changed()
            pte_unmap_unlock(s, self.ptl)
            return "file_unlock_folio"

    @step("mm/memory.c:set_pte_range")
    def file_set_pte(self, s):
        wp, self.orig = self.orig is not None, None  # vmf_orig_pte_uffd_wp()
        set_pte_at(s, self.pmdval, self.entry, present(self.file_page, True, wp))
        folio_add_rmap_ptes(s, page_folio(s, self.file_page))  # folio_add_file_rmap_ptes()
        pte_unmap_unlock(s, self.ptl)

    @step("mm/memory.c:fault_dirty_shared_page")
    def file_unlock_folio(self, s):
        folio_unlock(s, page_folio(s, self.file_page))
        if self.prealloc is None:
            return self.done()

    @step("mm/memory.c:do_fault")
    def free_prealloc(self, s):
        pte_free(s, self.prealloc)  # the preallocated table is unused: free it
        self.prealloc = None
        return self.done()




class HugeShmemFault(HugeFault, ShmemFault):
    """A shmem write fault where the pmd may be a huge (file THP) pmd."""

    first_step = "handle_mm_fault"


class Walker(PteOffsetMapLock, MmapReader):
    """A page-table walk (walk_page_range() with a pte_entry): walk_pmd_range() skips a none
    pmd and splits a huge one (split_huge_pmd(): under the pml the huge pmd is invalidated and
    flushed, the deposited table filled with the folio's pages and linked); walk_pte_range()
    maps and locks the table (pmd_same() recheck under the ptl, retrying if the pmd changed),
    reads every entry and unlocks. A NULL map sets ACTION_AGAIN, and walk_pmd_range() looks at
    the pmd again.
    """

    i: int = 0

    def __init__(self, name, vma: Vma):
        super().__init__(name)
        self.vma = vma

    @step("mm/pagewalk.c:walk_pmd_range")
    def walk_pmd_range(self, s):
        pmdval = s.pmd
        if pmd_none(pmdval):
            return self.done()  # ops->pte_hole(); nothing to walk
        if pmd_trans_huge(pmdval) or is_swap_pmd(pmdval):
            return "split_huge_pmd"  # (HugeWalker)
        return self.call(PteOffsetMapLock, then=self.walk_pte_range)

    def walk_pte_range(self, table):
        return "walk_pmd_range" if table is None else "walk_pte"  # NULL: ACTION_AGAIN

    @step("mm/pagewalk.c:walk_pte_range_inner")
    def walk_pte(self, s):
        ptep_get(s, self.pmdval, self.i)
        self.i += 1
        if self.i < ptrs_per_pte(s):
            return "walk_pte"
        pte_unmap_unlock(s, self.ptl)
        return self.done()




class HugeWalker(Walker):
    """A walker that may meet a huge pmd: walk_pmd_range() splits it (split_huge_pmd(): under the
    pml the huge pmd is invalidated and flushed, the deposited table filled with the folio's
    pages and linked; a file THP's pmd is just cleared and flushed), then walks the table."""

    first_step = "walk_pmd_range"

    @step("mm/huge_memory.c:__split_huge_pmd")
    def split_huge_pmd(self, s):
        pmd_lock(s)

    @step("mm/huge_memory.c:__split_huge_pmd_locked")
    def split_huge_pmd_locked(self, s):
        pmdval = s.pmd
        if not (pmd_trans_huge(pmdval) or is_pmd_migration_entry(pmdval)):
            return  # split_huge_pmd_locked(): nothing (left) to split
        start, end = slot_range(s, 0)
        folio = page_folio(s, pmdval[0])
        if not vma_is_anonymous(self.vma):
            pmd_clear(s)  # pmdp_huge_clear_flush(): a file THP is just unmapped; refaults map ptes
            flush_tlb_range(s, start, end)
            if folio is not None:
                folio_remove_rmap_pmd(s, folio)
            return
        # pmdp_invalidate() + flush first: never a huge and a small translation at once.
        flush_tlb_range(s, start, end)
        table = pgtable_trans_huge_withdraw(s)
        for i in range(ptrs_per_pte(s)):
            if pmdval[0] == ZERO_PAGE:
                pte = zero_pte()  # __split_huge_zero_page_pmd()
            elif is_pmd_migration_entry(pmdval):
                pte = migration_pte(pmdval[0] + i)
            else:
                pte = present(pmdval[0] + i, True)
            set_pte_at(s, table, i, pte, unpublished=True)
        if folio is not None and pmd_trans_huge(pmdval):
            folio_add_rmap_ptes(s, folio, ptrs_per_pte(s))
            folio_remove_rmap_pmd(s, folio)
        pmd_populate(s, table)  # after smp_wmb(): the filled table is visible

    @step("mm/huge_memory.c:__split_huge_pmd")
    def split_huge_pmd_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return self.call(PteOffsetMapLock, then=self.walk_pte_range)


class Reader(MmapReader):
    """filemap_fault_recheck_pte_none(): a pte_offset_map_ro_nolock() user.

    It reads the entry locklessly and takes the ptl it computed from the pmd value only when it
    saw none (to recheck under the lock). The table may already be unlinked by then, so it
    only reads.
    """

    pmdval: object = None
    ptl: object = None

    @step("mm/pgtable-generic.c:pte_offset_map_ro_nolock")
    def ro_map(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return self.done()  # VM_FAULT_NOPAGE
        self.ptl = ptl

    @step("mm/filemap.c:filemap_fault_recheck_pte_none")
    def ro_read(self, s):
        if not pte_none(ptep_get_lockless(s, self.pmdval, 0)):
            pte_unmap(s)
            return self.done()

    @step("mm/filemap.c:filemap_fault_recheck_pte_none")
    def ro_lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/filemap.c:filemap_fault_recheck_pte_none")
    def ro_recheck(self, s):
        ptep_get(s, self.pmdval, 0)
        pte_unmap_unlock(s, self.ptl)
        return self.done()


def isolate_aborts_on_a_pin(before, after) -> bool:
    """A collapse's isolate gives up on a page while a GUP-fast holds a reference to it."""
    pins = {g.folio or g.pinned for g in before.threads("gup_fast")} - {0}
    return bool(pins) and any(c.pc == "collapse_isolate" and not c.failed and after.thread(c.name).failed
                              and c.i + 1 in pins for c in before.threads("anon_collapse"))


def collapse_installs_huge_pmd(before, after) -> bool:
    """A collapse thread's step turns a none pmd into a huge one."""
    return pmd_none(before.pmd) and pmd_trans_huge(after.pmd) and any(
        c.pc == "set_huge_pmd" for c in before.threads("collapse"))


def rmap_gives_up_after_retry(before, after) -> bool:
    """An rmap walker whose pmd_same() failed maps again and finds no table: not found."""
    return any(r.pc == "map_pte" and after.thread(r.name).pc == "pvmw_pmd" and r.pmdval is None
               and not pmd_table(before.pmd) for r in before.threads("rmap"))


def slow_path_gives_up(before, after) -> bool:
    """A zap's slow-path recheck finds an entry that is not none and leaves the table alone."""
    return any(z.pc == "slow_check" and after.thread(z.name).pc not in ("slow_check", "slow_clear_pmd")
               for z in before.threads("zap"))


def cached_walk_of_unlinked_table(s) -> bool:
    """A modelled CPU's paging-structure cache holds a PTE page that no pmd links."""
    linked = [s.pmd[0]] if pmd_table(s.pmd) else []
    return any(table[0] not in linked for slot in s.layout.tags.get("cpu_psc", ()) for _, table in s.v[slot])


def skipped_and_kept(before, after) -> bool:
    """A zap finishes its scan with an entry kept or a marker installed (any_skipped): the table
    is not reclaimed."""
    return any(z.pc == "zap_pte" and not after.thread(z.name).can_reclaim and z.can_reclaim
               for z in before.threads("zap"))


def delayed_rmap_flushed(before, after) -> bool:
    """A zap flushes the TLB under the ptl for a dirty file page's delayed rmap, without having
    broken its loop (the whole range scanned)."""
    return any(z.pc == "zap_tlb_flush" and z.delayed_rmap and after.thread(z.name).delayed_rmap == ()
               for z in before.threads("zap"))


class Reclaim(Model):
    """Merged PT_RECLAIM (v6.14+): zap reclaims empty PTE pages; RCU-protected walkers recheck."""

    entries = Param(2, "entries per PTE table (PTRS_PER_PTE is 512; the scan is per entry)", minimum=1)
    pages = Param(0, "PTE pages the allocator can hand out (0: as many as the threads can hold "
                     "at once: the linked one, one unpublished per fault, one unlinked per zap)")
    zaps = Param(1, "madvise(MADV_DONTNEED) threads zapping the whole PMD range")
    faults = Param(1, "faults on entry 0 (see fault)")
    walkers = Param(1, "pte_offset_map_lock() walkers reading every entry")
    readers = Param(1, "pte_offset_map_ro_nolock() readers")
    gup_fast = Param(0, "pin_user_pages_fast() walkers (IRQs disabled, no ptl): grab, recheck, "
                        "back off or keep the pin (ptmc.actors.gup)")
    anon_collapses = Param(0, "khugepaged collapse_huge_page() threads (mmap_lock for write; vma=anon, "
                              "ptes present pages: ptmc.actors.khugepaged_anon)")
    hw_walkers = Param(0, "CPUs whose MMU walks the page tables at any time, caching translations and "
                          "table walks until flushed (ptmc.kernel.hw)")
    vma = Param("anon", "the VMA: anon (private anonymous) or shmem (a MAP_SHARED shmem file)",
                choices=("anon", "shmem"))
    uffd = Param("none", "userfaultfd registration of the VMA: none, missing or wp",
                 choices=("none", "missing", "wp"))
    ptes = Param("", "the table's entries at the start, comma-separated, one per entry: "
                     + ", ".join(KINDS) + " ('': all present)")
    huge_pmd = Param(False, "start with a huge pmd (a PMD-sized THP; anonymous: with its deposited "
                            "table) instead of the PTE table")
    thp = Param(False, "THP allowed: a fault on a none pmd installs a huge pmd "
                       "(do_huge_pmd_anonymous_page())")
    fault = Param("write", "what the faults do: write (a new page), read (the zero page), mthp (an "
                           "order-1 folio over entries 0-1), or any (each chooses)",
                  choices=("write", "read", "mthp", "any"))
    batch_alloc_fail = Param(True, "explore the mmu_gather batch page allocation failing")
    need_resched = Param(True, "explore need_resched() breaking the zap loop")
    force_break = Param(True, "explore the gather's page batch filling up (force_break)")
    retracts = Param(0, "khugepaged/MADV_COLLAPSE retract_page_tables() threads (file THP: vma=shmem)")
    rmap_walkers = Param(0, "try_to_unmap() rmap walkers of the folio mapped by the last entry")
    collapses = Param(0, "collapse_pte_mapped_thp() threads: the range's page cache folio is one PMD-sized "
                         "folio the table maps by ptes (file THP: vma=shmem)")
    install_pmd = Param(True, "collapse_pte_mapped_thp() installs the huge pmd after the retraction")
    uffd_moves = Param(0, "UFFDIO_MOVE threads (move_pages_pte()): the first moves entry 0 of a second pmd "
                          "slot (pmd2, VMA vma2) into entry 0 of pmd, the second the other way (needs uffd)")
    uffd_copies = Param(0, "UFFDIO_COPY threads (mfill_atomic_pte()) filling entry 0 of pmd (needs uffd)")
    mremaps = Param(0, "mremap() threads moving pmd's whole table to a second pmd slot pmd2 (move_normal_pmd(), "
                       "under the mmap write lock; pmd2 starts none, in another PMD table)")
    munmaps = Param(0, "munmap() threads unmapping vma's whole range: detach, mmap_write_downgrade(), "
                       "unmap_vmas(), free_pgtables() (pmd_clear() without a lock), tlb_finish_mmu()")
    pagemap_walkers = Param(0, "/proc/pid/pagemap readers: walk_page_range() of vma's range under "
                               "mmap_read_lock() (protocol.md K7)")

    maintains = ("nr_ptes", "mapcount")
    EVENTS = {**gup.EVENTS, **khugepaged_anon.EVENTS}
    symmetric = ("zap", "fault", "walker", "reader", "gup_fast")

    semi_rcu_fallback = Variant(
        "CONFIG_MMU_GATHER_RCU_TABLE_FREE's semi-RCU fallback as before 718b13861d22: when the batch page "
        "cannot be allocated, tlb_remove_table_one() IPIs every CPU (tlb_remove_table_sync_one()) and "
        "frees the table at once (protocol.md K1)")
    # The page-table rules before 2023 (model/retract2022.py, protocol.md K3): collapse under mmap_lock
    # write + pml, pte_free() at once; rmap walkers without RCU or pmd_same(). Not a variant here.
    pre_2023_retraction = False
    i_mmap_write = False  # (with it) 8d3c106e19e8's i_mmap_lock_write() around the collapse

    x86_tlb_remove_page = Variant(
        "bare-metal x86 before v6.14 (no MMU_GATHER_RCU_TABLE_FREE): ___pte_free_tlb() -> "
        "tlb_remove_page(), so tables go through the page batch and are freed right after the IPI "
        "TLB flush; reclaim running there is the latent half of protocol.md K1")

    def __init__(self, params=None, variants=(), **switches):
        super().__init__(params, variants, **switches)
        self.kinds = parse_kinds(self.ptes, self.entries)
        if self.x86_tlb_remove_page:
            if self.config.tlb_flush != "ipi":
                raise PtmcError("variant x86_tlb_remove_page is bare-metal x86: its TLB flush is an IPI "
                                "(tlb_flush=ipi)")
            # The kernel under the model has no MMU_GATHER_RCU_TABLE_FREE, whatever PT_RECLAIM selects
            # today: the mmu_gather frees tables through its page batch after the flush.
            self.config = dataclasses.replace(self.config, mmu_gather_rcu_table_free=False)
        shmem = self.vma == "shmem"
        self.the_vma = Vma("vma", anon=not shmem, shmem=shmem, shared=shmem,
                           uffd_missing=self.uffd == "missing", uffd_wp=self.uffd == "wp", slots=("pmd",))
        if self.second_slot():  # UFFDIO_MOVE's other anonymous VMA, or mremap's copy of vma (copy_vma())
            self.vma2 = dataclasses.replace(self.the_vma, name="vma2", slots=("pmd2",))
        self._refuse()
        self._refuse_movers()

    def second_slot(self) -> bool:
        """A thread that moves entries or tables between two PMD ranges: the model gets a second
        pmd slot, pmd2, covered by a second VMA, vma2."""
        return bool(self.uffd_moves or self.mremaps)

    def detaching_writers(self) -> int:
        """Threads that detach vma under the mmap write lock (mremap's unmap of the old range):
        the others look vma up after mmap_read_lock() and find nothing once it is gone."""
        return self.mremaps + self.munmaps

    def _refuse_movers(self) -> None:
        if self.uffd_moves or self.uffd_copies:
            if self.uffd == "none":
                raise PtmcError("uffd_moves, uffd_copies: UFFDIO_MOVE and UFFDIO_COPY need a uffd-registered "
                                "VMA: set uffd=missing or uffd=wp")
            if self.vma != "anon":
                raise PtmcError("uffd_moves, uffd_copies: modelled for private anonymous VMAs (vma=anon)")
        if self.mremaps:
            if self.mremaps > 1:
                raise PtmcError("mremaps: at most 1 (the second would find nothing to move)")
            if self.uffd_moves or self.uffd != "none":
                raise PtmcError("mremaps: with uffd (no UFFD_FEATURE_EVENT_REMAP: move_ptes()) or UFFDIO_MOVE "
                                "is not modelled: uffd=none, uffd_moves=0")
            if self.thp or self.huge_pmd:
                raise PtmcError("mremaps: move_huge_pmd() is not modelled: no thp or huge_pmd")
        if self.munmaps:
            if self.munmaps > 1 or self.mremaps or self.uffd_moves:
                raise PtmcError("munmaps: one munmap, without mremap or UFFDIO_MOVE (which would find no VMA) "
                                "is modelled")
            if self.vma != "anon" or self.huge_pmd or self.thp:
                raise PtmcError("munmaps: modelled for an anonymous VMA without huge pmds (vma=anon)")
        if self.pagemap_walkers and not self.munmaps:
            raise PtmcError("pagemap_walkers: the K7 walker races munmap: set munmaps=1")
        if self.uffd_moves:
            if self.thp or self.huge_pmd:
                raise PtmcError("uffd_moves: move_pages_huge_pmd() is not modelled: no thp or huge_pmd")
            if self.uffd_moves > 2:
                raise PtmcError("uffd_moves: at most 2 (one each way)")
            if self.uffd_moves == 2 and (self.fault != "write" or self.kinds[0] not in ("present", "none")):
                raise PtmcError("uffd_moves=2 moves entry 0 of pmd: only present pages are modelled "
                                "(fault=write, ptes with entry 0 present or none)")

    def _refuse(self) -> None:
        """Parameter combinations the kernel cannot produce, or this model does not cover."""
        if self.anon_collapses:
            if self.vma != "anon":
                raise PtmcError("anon_collapses: collapse_huge_page() collapses private anonymous memory: "
                                "set vma=anon")
            if any(k not in ("present", "dirty") for k in self.kinds):
                raise PtmcError("anon_collapses: khugepaged collapses a table of present anonymous pages: set "
                                "ptes=" + ",".join(["present"] * self.entries) + " (or leave ptes unset)")
            if self.uffd != "none":
                raise PtmcError("anon_collapses: khugepaged's checks of userfaultfd-armed VMAs are not modelled: "
                                "set uffd=none")
            if self.faults and self.fault in ("mthp", "any"):
                raise PtmcError("anon_collapses: the collapse of a pte-mapped large folio (compound_pagelist) "
                                "is not modelled: set fault=write or fault=read")
        wp_kinds = [k for k in self.kinds if k in ("present_wp", "uffd_wp")]
        if wp_kinds and self.uffd != "wp":
            raise PtmcError(f"ptes: {wp_kinds[0]} entries exist only in a uffd-wp VMA: set uffd=wp")
        if self.vma == "shmem":
            bad = [k for k in self.kinds if k in ("zero", "swap")]
            if bad:
                raise PtmcError(f"ptes: a MAP_SHARED shmem mapping has no {bad[0]} entries (the zero "
                                "page and swap entries are private anonymous memory)")
            if self.fault != "write" and self.faults:
                raise PtmcError("fault: on shmem only write faults (do_shared_fault()) are modelled")
            if self.thp:
                raise PtmcError("thp: huge faults are modelled for anonymous memory only (vma=anon)")
        self._refuse_khugepaged_rmap()
        if "mthp" in (self.fault,) and self.entries < 2:
            raise PtmcError("fault=mthp maps an order-1 folio over entries 0-1: needs entries >= 2")
        if self.kinds[0] not in ("present", "dirty", "present_wp", "zero", "none") and self.faults:
            raise PtmcError(f"ptes: entry 0 is the one faults touch, and a fault on a {self.kinds[0]} "
                            "entry (do_swap_page()) is not modelled: put it in another entry")

    def _refuse_khugepaged_rmap(self) -> None:
        """retract_page_tables() and the rmap walker: what the kernel cannot produce."""
        if self.retracts:
            if self.the_vma.anon:
                raise PtmcError("retracts: retract_page_tables() retracts tables of a file's mappings "
                                "(collapse_file()); an anonymous VMA has none: set vma=shmem")
            if self.huge_pmd:
                raise PtmcError("retracts: collapse_file() leaves a table for retract_page_tables(), "
                                "not a huge pmd: unset huge_pmd")
            if "migration" in self.kinds:
                raise PtmcError("retracts: collapse_file() cannot lock a folio under migration (the "
                                "migration holds its lock): no migration entries")
        if self.collapses:
            if self.the_vma.anon:
                raise PtmcError("collapses: collapse_pte_mapped_thp() collapses a file THP: set vma=shmem")
            if self.huge_pmd or self.retracts:
                raise PtmcError("collapses: the page cache holds a PMD-sized folio mapped by ptes; "
                                "retract_page_tables() (retracts) and huge_pmd start elsewhere: unset them")
            if any(k not in ("present", "dirty", "none") for k in self.kinds):
                raise PtmcError("collapses: the table maps pages of the huge folio (present, dirty) or nothing")
        if self.rmap_walkers:
            if self.huge_pmd:
                raise PtmcError("rmap_walkers: the walker unmaps a small folio of the table: unset huge_pmd")
            if self.kinds[-1] not in ("present", "dirty", "present_wp") and not self.collapses:
                raise PtmcError("rmap_walkers: the walker unmaps the folio the last entry maps: make it "
                                "present, dirty or present_wp")
            if self.entries < 2 and self.faults:
                raise PtmcError("rmap_walkers: entry 0 is the faults', the walker's is the last one: "
                                "needs entries >= 2")

    # data pages: the table's entry i maps page i + 1; fault k owns pages from fault_base(k)
    def fault_base(self, k: int) -> int:
        return self.entries + 1 + k * (self.entries + 3)

    def collapse_page(self, k: int) -> int:
        """The first page of collapse k's new THP (after every fault's pages)."""
        return self.fault_base(self.faults) + k * self.entries

    def mover_page(self, k: int = 0) -> int:
        """Data pages after the faults' and the anon collapses': pmd2's entry 0 (k=0), then one per
        UFFDIO_COPY."""
        return self.collapse_page(self.anon_collapses) + k

    def mmap_writers(self) -> int:
        """Threads that take mmap_lock for write. With any, the others' mmap_read_lock() is part
        of the race (ptmc.kernel.mmap_lock.MmapReader); without, no read lock excludes anybody."""
        return self.anon_collapses + self.mremaps + self.munmaps

    def init(self, mem):
        mmap_lock_init(mem)
        pages = self.pages or 1 + 2 * self.faults + self.zaps + self.huge_pmd + self.retracts + self.collapses
        two = self.second_slot()
        if self.uffd_moves or self.uffd_copies:  # pmd2's table; a table each mover or copy may allocate
            pages = self.pages or pages + bool(self.uffd_moves) + self.uffd_moves + self.uffd_copies
        PageTables(mem, pages=pages, entries=self.entries, rcu_head=True,
                   deposit=self.huge_pmd or self.thp or self.anon_collapses, slots=("pmd", "pmd2") if two else ("pmd",),
                   default_slot="pmd", pmd_tables={"pmd2": 1} if self.mremaps else None)
        vma = self.the_vma
        declare_vma(mem, "vma", anon=vma.anon, shmem=vma.shmem, shared=vma.shared,
                    uffd_missing=vma.uffd_missing, uffd_wp=vma.uffd_wp, anon_vma=vma.anon, slots=("pmd",))
        if two:
            v2 = self.vma2
            declare_vma(mem, "vma2", anon=v2.anon, shmem=v2.shmem, shared=v2.shared, uffd_missing=v2.uffd_missing,
                        uffd_wp=v2.uffd_wp, anon_vma=v2.anon, slots=("pmd2",))
        if self.detaching_writers():
            vma_detach_init(mem, vma)
        rcu_init(mem)
        mmu_gather_init(mem, numbered("zap", self.zaps))
        if self.munmaps:
            mmu_gather_init(mem, numbered("munmap", self.munmaps))
        if self.hw_walkers:
            cpu_caches_init(mem, self.hw_walkers)
        anon = vma.anon
        # a page cache folio gets locked; so does an anonymous one UFFDIO_MOVE moves
        fields = ("mapcount",) if anon and not self.uffd_moves else ("mapcount", "lock")
        if self.gup_fast or self.anon_collapses:  # pins and isolation count references
            fields += ("refcount", "pincount", "discarded")
        if self.huge_pmd:
            declare_folio(mem, 1, self.entries, anon=anon, fields=fields, mapcount=1)
            if anon:  # an anonymous THP keeps a table for its split (counted in nr_ptes)
                pgtable_trans_huge_deposit(mem, pte_alloc_one(mem))
                mm_inc_nr_ptes(mem)
            set_pmd_at(mem, huge_pmd(1))
        else:
            table = pte_alloc_one(mem)
            for i, kind in enumerate(self.kinds):
                pte = KINDS[kind]
                if kind in ("present", "dirty", "present_wp"):
                    if not self.collapses:  # (else one PMD-sized folio, below)
                        declare_folio(mem, i + 1, anon=anon, fields=fields, mapcount=1)
                    pte = present(i + 1, kind == "dirty", kind == "present_wp")
                elif kind == "swap":
                    pte = swap_pte(i + 1)
                elif kind == "migration":
                    declare_folio(mem, i + 1, anon=anon, fields=fields)
                    pte = migration_pte(i + 1)
                if pte is not None:
                    set_pte_at(mem, table, i, pte)
            mm_inc_nr_ptes(mem)
            pmd_populate(mem, table)
            if not anon and self.kinds[0] not in ("present", "dirty", "present_wp", "migration"):
                if not self.collapses:
                    declare_folio(mem, 1, anon=False, fields=fields)  # the page cache page of entry 0
        if self.collapses:  # collapse_file() put a PMD-sized folio in the page cache; ptes map it
            declare_folio(mem, 1, self.entries, anon=False, fields=fields,
                          mapcount=sum(k in ("present", "dirty", "present_wp") for k in self.kinds))
        if self.collapses and self.rmap_walkers:  # the old folio of the last index, replaced in the page
            declare_folio(mem, self.entries + 1, anon=False, fields=fields)  # cache, still being reclaimed
        self.init_movers(mem, fields)
        for k in range(self.faults if anon else 0):
            base = self.fault_base(k)
            declare_folio(mem, base, fields=fields)
            if self.fault in ("mthp", "any"):
                declare_folio(mem, base + 1, 2)
            if self.thp:
                declare_folio(mem, base + 3, self.entries)
        # GUP-fast and the anon collapse: every folio holds one reference when it exists (its
        # allocation's, then its mapping's), and each collapse has its new THP.
        if "refcount" in fields:
            for folio in dict.fromkeys(mem.layout.objects.get("folios", {}).values()):
                declare_folio_fields(mem, folio, fields)
                mem.store(folio.field("refcount"), 1)
            for k in range(self.anon_collapses):
                declare_folio(mem, self.collapse_page(k), self.entries, fields=fields, refcount=1)

    def init_movers(self, mem, fields) -> None:
        """pmd2 links a table whose entry 0 maps an anonymous page of vma2 (UFFDIO_MOVE's source);
        each UFFDIO_COPY has a new page."""
        if self.uffd_moves:
            page = self.mover_page(0)
            declare_folio(mem, page, fields=fields, mapcount=1)
            table = pte_alloc_one(mem)
            set_pte_at(mem, table, 0, present(page))
            mm_inc_nr_ptes(mem)
            pmd_populate(mem, table, "pmd2")
        for k in range(self.uffd_copies):
            declare_folio(mem, self.mover_page(1 + k), fields=fields)

    def kept(self, kind: str) -> bool:
        """An entry of this kind is left behind by the zap (any_skipped): a guard marker, or on a
        file VMA a uffd-wp marker, kept or re-installed for a uffd-wp protected entry."""
        return kind == "guard" or (kind in ("uffd_wp", "present_wp") and not self.the_vma.anon)

    def projections(self):
        """The teaching view (docs/teaching.md): the pmd and the lifecycle of the table it
        starts with and of the one a fault allocates after reclaim."""
        return {"table lifecycle": ("pmd", "pt0.state", "pt1.state")}

    def witnesses(self):
        """The paths a run must take, where this configuration has them: a "holds" that never
        reclaimed a table, or never raced a fault with it, would say nothing."""
        out = self.khugepaged_rmap_witnesses() + self.mover_witnesses()
        if self.zaps and self.huge_pmd:
            out.append(reachable("zap.zap_huge_pmd_unlock", "zap_huge_pmd() clears the huge pmd under pml"))
        if self.walkers and self.huge_pmd:
            out.append(reachable("walker.split_huge_pmd_unlock", "a walker splits the huge pmd into a table"))
        if self.faults and self.thp:
            out.append(reachable("fault.huge_install->huge_unlock", "a fault installs a huge pmd"))
        if self.faults and self.fault in ("read", "any") and self.the_vma.anon:
            out.append(reachable(lambda s: any(pte is not None and is_zero_pte(pte) for pte in _entries(s)),
                                 "a read fault maps the zero page", name="zero-page fault"))
        if self.faults and self.kinds[0] == "zero" and self.fault in ("write", "any") and not self.huge_pmd:
            out.append(reachable("fault.wp_page_copy", "a write fault copies the zero page (do_wp_page())"))
        if self.faults and self.fault in ("mthp", "any") and not userfaultfd_armed(self.the_vma):
            out.append(reachable(lambda s: _mthp_mapped(s, self), "an mTHP fault maps two entries at once",
                                 name="mTHP fault"))
        if self.gup_fast and self.huge_pmd:
            out.append(reachable("gup_fast.gup_fast_pmd->gup_fast_pmd_leaf", "GUP-fast grabs a huge pmd whole"))
        if self.anon_collapses:
            out.append(reachable("anon_collapse.collapse_install", "khugepaged's collapse_huge_page() installs the "
                                                              "huge pmd and deposits the old table"))
        if self.anon_collapses and self.gup_fast and "collapse_isolate_refcount" not in self.without:
            out.append(reachable(isolate_aborts_on_a_pin, "__collapse_huge_page_isolate() finds a GUP pin "
                                                          "and aborts (SCAN_PAGE_COUNT)", name="isolate aborts on a pin"))
        zapped = self.zaps and (self.faults or self.huge_pmd or self.kinds[0] in ("present", "dirty", "present_wp"))
        if self.gup_fast and (("gup_fast_pmd_recheck" not in self.without and (zapped or self.anon_collapses))
                              or ("gup_fast_pte_recheck" not in self.without and zapped)):
            out.append(reachable("gup_fast.gup_fast_back_off", "GUP-fast finds the pmd or the entry changed "
                                                               "after its grab and gives the pin back"))
        if self.readers and self.zaps and not self.huge_pmd and not self.kept(self.kinds[0]):
            out.append(reachable("reader.ro_read->ro_lock", "the reader saw none locklessly: it takes the "
                                                            "ptl to recheck", name="reader rechecks"))
        if self.hw_walkers and self.zaps:
            out.append(reachable(cached_walk_of_unlinked_table, "a CPU still caches a walk through a PTE "
                                                                "page no pmd links: only a flush drops it",
                                 name="stale cached walk"))
        if not self.zaps or not self.config.pt_reclaim or self.huge_pmd:
            return out
        if any(self.kept(k) for k in self.kinds):
            out.append(reachable(skipped_and_kept, "the zap keeps an entry or installs a uffd-wp marker "
                                                   "(any_skipped): no reclaim", name="any_skipped"))
            return out  # nothing can be reclaimed
        if self.the_vma.shmem and "dirty" in self.kinds:
            out.append(reachable(delayed_rmap_flushed, "a dirty file page's rmap is delayed: the zap "
                                                       "flushes under the ptl without breaking its loop",
                                 name="delayed rmap flush"))
        rcu_table_free = self.config.mmu_gather_rcu_table_free
        if rcu_table_free and "rcu_grace_period" not in self.without:
            out.append(reachable("rcu.rcu_do_batch", "an RCU callback frees an unlinked PTE page"))
        if self.need_resched or self.force_break or not self.config.split_pte_ptlocks:
            # a break of the loop, or a trylock of pml that cannot succeed, sends it there
            out.append(reachable("zap.slow_clear_pmd", "slow-path reclaim: try_to_free_pte() rechecks every "
                                                       "entry under pml and the ptl, then clears the pmd"))
        if self.config.split_pte_ptlocks:  # with ptl == pml the trylock of pml under the ptl always fails
            out.append(reachable("zap.clear_pmd", "fast-path reclaim: try_get_and_clear_pmd() "
                                                  "trylocks pml under the ptl and clears the pmd"))
        if self.batch_alloc_fail and rcu_table_free:
            out.append(reachable("zap.tlb_table_invalidate", "the batch page allocation fails: the "
                                                             "table is freed on its own (tlb_remove_table_one)"))
        refills = self.faults and not (self.the_vma.anon and self.the_vma.uffd_missing)
        if refills:  # (a missing fault of anonymous memory is handed to userspace instead)
            out.append(reachable(slow_path_gives_up, "try_to_free_pte() finds an entry refilled since "
                                                     "the scan and gives up", name="slow path gives up"))
        if self.faults:
            if "pmd_same_recheck" not in self.without:
                out.append(reachable("*.map_pmd_same->map_pmd", "pmd_same() fails under the ptl: "
                                     "__pte_offset_map_lock() unlocks and retries", name="pmd_same retry"))
        if self.faults >= 2 and self.the_vma.anon:
            out.append(reachable("fault.free_unpublished", "a fault loses the pmd_install() race and "
                                                           "frees its unpublished table"))
        if self.faults >= 2 and self.the_vma.shmem:  # (the folio lock orders them)
            out.append(reachable("fault.free_prealloc", "a shmem fault finds a table installed and frees "
                                                        "its preallocated one (do_fault())"))
        if self.walkers:
            out.append(reachable("walker.map_pmd->walk_pmd_range", "a walker's map returns NULL and "
                                                                   "walk_pmd_range() looks again (ACTION_AGAIN)",
                                 name="ACTION_AGAIN"))
        return out

    def khugepaged_rmap_witnesses(self) -> list:
        """retract_page_tables() and the rmap walker: the paths that make them matter."""
        out = []
        reclaims = self.zaps and self.config.pt_reclaim and not any(self.kept(k) for k in self.kinds)
        retractable = not (self.the_vma.uffd_wp or "guard" in self.kinds)
        if self.retracts and retractable:
            out.append(reachable("retract.retract_free", "retract_page_tables() clears the pmd and hands the "
                                                         "table to pte_free_defer()", name="retract frees"))
            if reclaims and not {"retract_pmd_recheck", "retract_pml"} & self.without:
                out.append(reachable("retract.retract_recheck->retract_unlock_pml", "check_pmd_state() under "
                                     "pml finds the table gone (reclaimed since the lockless read)",
                                     name="retract recheck"))
        if self.collapses and not self.pre_2023_retraction and not self.the_vma.uffd_wp:
            out.append(reachable("collapse.collapse_free", "collapse_pte_mapped_thp() clears the pmd and hands "
                                                           "the table to pte_free_defer()", name="collapse frees"))
            if self.install_pmd:
                out.append(reachable(collapse_installs_huge_pmd, "collapse_pte_mapped_thp() maps the folio "
                                     "with a huge pmd (set_huge_pmd())", name="collapse installs"))
            if reclaims and self.config.split_pte_ptlocks and "collapse_pml_recheck" not in self.without:
                out.append(reachable("collapse.collapse_relock_ptl->collapse_abort", "pmd_same() under pml and "
                                     "the ptl fails: the table was reclaimed in the window",
                                     name="collapse recheck"))
        if self.rmap_walkers and not self.collapses:  # (with a collapse it walks a folio not mapped here)
            unmapped = "rmap.set_swap_pte" if self.the_vma.anon else "rmap.ptep_clear_flush->pvmw_done"
            out.append(reachable(unmapped, "the rmap walker unmaps its folio (a swap entry for an anonymous "
                                           "one)", name="rmap unmaps"))
            if reclaims and "rmap_pmd_same" not in self.without:
                out.append(reachable("rmap.check_pte->map_pte", "map_pte()'s pmd_same() fails under the ptl: "
                                     "the walker maps again", name="rmap pmd_same retry"))
                out.append(reachable(rmap_gives_up_after_retry, "after the retry the pmd maps no table: the "
                                     "walk finds nothing", name="rmap gives up"))
        return out

    def thread_classes(self) -> dict:
        """Which class each actor is in this configuration: the optional paths (huge pmds, the
        mTHP, shmem) are subclasses, so a run without them has none of their steps."""
        huge = self.huge_pmd or self.thp or (self.collapses and self.install_pmd) or self.anon_collapses
        mthp = self.fault in ("mthp", "any")
        if self.the_vma.shmem:
            fault = HugeShmemFault if huge else ShmemFault
        elif huge:
            fault = HugeMthpFault if mthp else HugeFault
        else:
            fault = MthpFault if mthp else Fault
        return {"zap": HugeZap if huge else Zap, "fault": fault, "walker": HugeWalker if huge else Walker}

    def threads(self):
        vma, kinds = self.the_vma, self.thread_classes()
        zaps = [kinds["zap"](name, vma, need_resched=self.need_resched, force_break=self.force_break,
                             batch_alloc_fail=self.batch_alloc_fail,
                             table_free_fallback="ipi" if self.semi_rcu_fallback else None)
                for name in numbered("zap", self.zaps)]
        faults = [kinds["fault"](name, vma, kind=self.fault, thp=self.thp, page=self.fault_base(k),
                                 mthp_page=self.fault_base(k) + 1, thp_page=self.fault_base(k) + 3,
                                 file_page=1)
                  for k, name in enumerate(numbered("fault", self.faults))]
        walkers = [kinds["walker"](name, vma) for name in numbered("walker", self.walkers)]
        readers = [Reader(name) for name in numbered("reader", self.readers)]
        movers = self.mover_threads()
        for thread in (*zaps, *faults, *walkers, *readers, *(m for m in movers if not m.writer)):
            thread.mmap_read_locked = bool(self.mmap_writers())
            if self.detaching_writers() and getattr(thread, "dst", "pmd") == "pmd":
                thread.mmap_vma = vma  # every one of them works in vma's range
        pagemap = [PagemapWalker(name, "pmd", vma) for name in numbered("pagemap_walker", self.pagemap_walkers)]
        collapses = [CollapseHugePage(name, vma, new_page=self.collapse_page(k))
                     for k, name in enumerate(numbered("anon_collapse", self.anon_collapses))]
        return [*zaps, *faults, *walkers, *readers, *collapses, *movers, *pagemap,
                *(GupFast(name) for name in numbered("gup_fast", self.gup_fast)),
                *(HardwareWalker(cpu) for cpu in range(self.hw_walkers)),
                *self.khugepaged_rmap_threads(),
                RcuCallbacks()]

    def khugepaged_rmap_threads(self) -> list:
        """retract_page_tables() and the rmap walkers (src/ptmc/actors)."""
        vma, last = self.the_vma, self.entries - 1
        return [*(Retract(name, vma, maybe_guard="guard" in self.kinds)
                  for name in numbered("retract", self.retracts)),
                *(TryToUnmap(name, vma, entry=last, page=self.entries + 1 if self.collapses else last + 1,
                             pre_rcu=self.pre_2023_retraction)
                  for name in numbered("rmap", self.rmap_walkers)),
                *(Collapse(name, vma, folio_page=1, install_pmd=self.install_pmd,
                           pre_8d3c106e19e8=self.pre_2023_retraction, i_mmap_write=self.i_mmap_write)
                  for name in numbered("collapse", self.collapses))]

    def mover_threads(self) -> list:
        """The actors of ptmc.actors: UFFDIO_MOVE, UFFDIO_COPY."""
        vma = self.the_vma
        vma2 = getattr(self, "vma2", None)
        moves = [UffdMove(name, *(("pmd2", "pmd", vma2, vma) if k == 0 else ("pmd", "pmd2", vma, vma2)))
                 for k, name in enumerate(numbered("uffd_move", self.uffd_moves))]
        copies = [UffdCopy(name, "pmd", vma, page=self.mover_page(1 + k))
                  for k, name in enumerate(numbered("uffd_copy", self.uffd_copies))]
        mremaps = [Mremap(name, "pmd", "pmd2", vma, vma2) for name in numbered("mremap", self.mremaps)]
        munmaps = [Munmap(name, "pmd", vma) for name in numbered("munmap", self.munmaps)]
        return [*moves, *copies, *mremaps, *munmaps]

    def mover_witnesses(self) -> list:
        out = []
        if self.uffd_moves:
            out.append(reachable("uffd_move.move_set_dst", "UFFDIO_MOVE moves the entry: the source cleared "
                                                           "and flushed, the destination set, under both ptls"))
            if self.zaps:
                out.append(reachable("uffd_move.move_stable->move_pages", "is_pte_pages_stable() fails: the "
                                     "move unlocks and goes round move_pages() again (-EAGAIN)",
                                     name="move recheck fails"))
        if self.uffd_copies:
            out.append(reachable("uffd_copy.mfill_install", "UFFDIO_COPY installs its page"))
        if self.mremaps:
            out.append(reachable("mremap.mnp_populate", "mremap moves the whole table: the old pmd cleared, "
                                                        "the new one populated, under both pmls"))
            if self.zaps or self.faults or self.walkers or self.readers:
                out.append(reachable("*.mmap_read_lock->mmap_read_unlock", "a thread finds the old VMA gone "
                                     "after mremap (find_vma() misses it)", name="old VMA gone"))
        if self.munmaps:
            out.append(reachable("munmap.free_pte_range", "munmap frees the table: pmd_clear() without a lock, "
                                                          "pte_free_tlb()"))
            if self.zaps or self.faults or self.walkers or self.readers:
                out.append(reachable("*.mmap_read_lock->mmap_read_unlock", "a thread finds the VMA gone after "
                                     "munmap detached it", name="VMA gone"))
        if self.pagemap_walkers and "walk_vma_lookup" not in self.without:
            out.append(reachable("pagemap_walker.walk_page_range->mmap_read_unlock", "the pagemap walk finds "
                                 "no VMA: a hole, no page table walked", name="pagemap finds a hole"))
            walk = "walk_pte" if "pte_offset_map_rcu" not in self.without else "walk_pte_nolock"
            out.append(reachable(f"pagemap_walker.{walk}", "the pagemap walk reads the table (before munmap)"))
        return out

    def doc_threads(self):
        """Every thread kind, for the reference (ptmc doc), whichever configuration uses it."""
        vma = self.the_vma
        return [*self.threads()[:-1], HugeZap("zap", vma), MthpFault("fault", vma), HugeFault("fault", vma),
                ShmemFault("fault", vma), HugeWalker("walker", vma), GupFast("gup_fast"),
                Retract("retract", vma), Collapse("collapse", vma),
                TryToUnmap("rmap", vma, entry=self.entries - 1, page=self.entries),
                CollapseHugePage("anon_collapse", vma, new_page=self.collapse_page(0)),
                HardwareWalker(0), UffdMove("uffd_move", "pmd2", "pmd", vma, vma),
                UffdCopy("uffd_copy", "pmd", vma, page=0), Mremap("mremap", "pmd", "pmd2", vma, vma),
                Munmap("munmap", "pmd", vma), PagemapWalker("pagemap_walker", "pmd", vma),
                RcuCallbacks()]


def _entries(s) -> list:
    from ptmc.kernel.pgtable import linked_entries
    return linked_entries(s)


def _mthp_mapped(s, model) -> bool:
    pages = [pte[0] for pte in _entries(s) if pte is not None and pte_present(pte)]
    return any(model.fault_base(k) + 1 in pages and model.fault_base(k) + 2 in pages
               for k in range(model.faults))
