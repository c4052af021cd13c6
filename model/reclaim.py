"""The merged reclaim protocol: MADV_DONTNEED frees empty PTE pages (CONFIG_PT_RECLAIM, v6.14+).

Qi Zheng, "synchronously scan and reclaim empty user PTE pages" (seed 002 is its RFC), merged
as 6375e95f381e with 718b13861d22 (x86: free page tables by RCU instead of semi-RCU). There is
no per-page count: zap_pte_range() scans the table under its ptl and, when the zap covered the
whole PMD range and left every entry none, unlinks it (fast path: spin_trylock of the pmd lock
while holding the ptl; slow path: pmd lock, then the ptl, then a recheck of every entry) and
frees it through the mmu_gather: TLB flush first, then an RCU grace period. Everybody else
finds the table through RCU-protected pte_offset_map*() and rechecks what it read:
pte_offset_map_lock() users with pmd_same() under the ptl, handle_pte_fault() with pte_same()
against a non-none entry.

Steps follow mm/memory.c, mm/pt_reclaim.c, mm/pgtable-generic.c and mm/mmu_gather.c of
v6.14-v6.18. Purely CPU-local operations are folded into the adjacent shared access:
rcu_read_lock() into the pmd read that follows it, rcu_read_unlock() into the unlock before
it (an earlier unlock or later lock only lets grace periods end sooner, so this can add
behaviours, never hide one); rss and mapcount accounting into the entry write they account.
"""
from ptmc import DONE, Model, Param, Thread, Variant, numbered, step
from ptmc.kernel.irq import local_irq_restore, local_irq_save
from ptmc.kernel.mmu_gather import FINISH, MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, mm_dec_nr_ptes, mm_inc_nr_ptes, pmd_clear,
                                 pmd_lockptr, pmd_none, pmd_populate, pmd_same, pmd_table, present,
                                 pte_alloc_one, pte_clear, pte_free, pte_none,
                                 pte_offset_map_nolock,
                                 ptep_get, set_pte_at)
from ptmc.kernel.rcu import RcuCallbacks, rcu_init, rcu_read_lock, rcu_read_unlock
from ptmc.kernel.spinlock import spin_lock, spin_trylock, spin_unlock
from ptmc.kernel.tlb import flush_tlb_mm_range
from ptmc.properties import reachable


def mapcount(page: int) -> str:
    return f"d{page}.mapcount"


def pte_unmap_unlock(s, ptl) -> None:
    """include/linux/mm.h:pte_unmap_unlock: spin_unlock(ptl), then pte_unmap() leaves RCU."""
    spin_unlock(s, ptl)
    rcu_read_unlock(s)


class PteOffsetMapLock(Thread):
    """__pte_offset_map_lock() (mm/pgtable-generic.c): find the table under RCU, lock its ptl,
    recheck that the pmd still points to it, retry if not. Returns NULL if there is no table."""

    pmdval: object = None  # the pmd value read locklessly
    ptl: object = None  # pte_lockptr(pmdval): the table's split lock, or pml when not split
    _map_then: str = None  # where to continue with the table mapped and locked
    _map_fail: str = None  # where to continue when the pmd maps no table (NULL)

    def pte_offset_map_lock(self, then: str, fail: str) -> str:
        self._map_then, self._map_fail = then, fail
        return "map_pmd"

    @step("mm/pgtable-generic.c:___pte_offset_map")
    def map_pmd(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return self._map_fail
        self.ptl = ptl

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def map_spin_lock(self, s):
        spin_lock(s, self.ptl)
        if self.model.no_pmd_same_recheck:
            return self._map_then

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def map_pmd_same(self, s):
        # Between the lockless read and the lock, reclaim may have unlinked the table (or a
        # new one was installed): only a table the pmd still links may be written (I2).
        if pmd_same(self.pmdval, s.pmd):
            return self._map_then
        pte_unmap_unlock(s, self.ptl)
        return "map_pmd"


class Zap(MmuGather, PteOffsetMapLock):
    """madvise(MADV_DONTNEED) -> zap_page_range_single() -> zap_pte_range() with reclaim_pt.

    zap_pmd_range() finds the table; zap_pte_range() maps and locks it (pte_offset_map_lock,
    with the pmd_same() retry) and zaps one entry per step. need_resched() and a full page
    batch (force_break) may end the loop early; then the ptl is dropped, the gather flushed if
    forced, and the rest of the range retried, and the table can only be reclaimed by the slow
    path. If the whole range was zapped without a break, the fast path try_get_and_clear_pmd()
    trylocks pml under the ptl and clears the pmd. Otherwise, if this call covered the whole PMD
    range, try_to_free_pte() takes pml then the ptl (nested only when they differ), rechecks
    every entry and clears the pmd. Either way free_pte() puts the table into the mmu_gather,
    and tlb_finish_mmu() flushes the TLB and hands the batch to call_rcu().
    """

    i: int = 0  # addr: the next entry to zap
    can_reclaim: bool = False  # can_reclaim_pt: this zap_pte_range() covers the whole PMD range
    direct_reclaim: bool = True  # no break since the scan started: the fast path may run
    force_flush: bool = False
    table: object = None  # the table unlinked by this thread, to be freed
    j: int = 0  # try_to_free_pte(): the entry being rechecked

    @step("mm/memory.c:zap_pmd_range")
    def zap_pmd_range(self, s):
        if not pmd_table(s.pmd):
            return self.tlb_finish_mmu()  # tlb_finish_mmu()
        # reclaim_pt_is_enabled(): only a zap of the whole PMD range may reclaim the table.
        self.can_reclaim, self.direct_reclaim = self.i == 0, True
        return self.pte_offset_map_lock(then="zap_pte", fail="zap_pmd_range")

    @step("mm/memory.c:do_zap_pte_range")
    def zap_pte(self, s):
        if self.model.need_resched and s.maybe("need_resched()"):
            self.direct_reclaim = False
            return self.after_scan()
        table = self.pmdval
        pte = ptep_get(s, table, self.i)
        if not pte_none(pte):
            pte_clear(s, table, self.i)  # zap_present_ptes(): get_and_clear_full_ptes()
            s.store(mapcount(pte[0]), s.load(mapcount(pte[0])) - 1)  # folio_remove_rmap_ptes()
            self.tlb_flush_needed = True  # tlb_remove_tlb_entries(): cleared_ptes
            if self.model.force_break and s.maybe("__tlb_remove_folio_pages(): batch full"):
                self.i += 1
                self.force_flush, self.direct_reclaim = True, False  # force_break
                return self.after_scan()
        self.i += 1
        return "zap_pte" if self.i < self.model.entries else self.after_scan()

    def after_scan(self) -> str:
        if self.can_reclaim and self.direct_reclaim and self.i == self.model.entries:
            return "try_get_and_clear_pmd"
        return self.before_unlock()

    def before_unlock(self) -> str:
        """A forced flush happens while the ptl is still held; then the unlock."""
        return "zap_tlb_flush" if self.force_flush else "zap_unlock"

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def try_get_and_clear_pmd(self, s):
        # We hold the ptl; ptl -> pml is the reverse of the usual order, so only a trylock.
        # With ptl == pml it always fails: that lock is already ours.
        if not spin_trylock(s, pmd_lockptr(s)):
            self.direct_reclaim = False
            return self.before_unlock()

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def clear_pmd(self, s):
        # No recheck of the pmd: it cannot change while we hold the table's ptl (I4), and
        # every entry was seen none under that same ptl.
        self.table = pmd_clear(s)

    @step("mm/pt_reclaim.c:try_get_and_clear_pmd")
    def unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return self.before_unlock()

    @step("include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly")
    def zap_tlb_flush(self, s):
        flush_tlb_mm_range(s)  # still under the ptl: no refault can see a stale TLB entry
        self.tlb_flush_needed = False

    @step("include/linux/mm.h:pte_unmap_unlock")
    def zap_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)
        if self.force_flush:
            self.force_flush = False
            return self.tlb_flush_mmu(self.after_unlock())
        return self.after_unlock()

    def after_unlock(self) -> str:
        if self.i != self.model.entries:  # cond_resched(); goto retry
            return self.pte_offset_map_lock(then="zap_pte", fail="zap_pmd_range")
        if not self.can_reclaim:
            return self.tlb_finish_mmu()
        return "free_pte" if self.direct_reclaim else "try_to_free_pte"

    # The slow path, try_to_free_pte(): the usual lock order, and every entry rechecked.
    @step("mm/pt_reclaim.c:try_to_free_pte")
    def try_to_free_pte(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def slow_map(self, s):
        pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return "slow_unlock_pml"
        self.pmdval, self.ptl, self.j = pmdval, ptl, 0
        # No pmd_same() needed: the pmd cannot change while we hold pml.
        return "slow_check" if self.ptl == pmd_lockptr(s) else "slow_lock_ptl"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_lock_ptl(self, s):
        spin_lock(s, self.ptl)  # spin_lock_nested(ptl, SINGLE_DEPTH_NESTING)

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_check(self, s):
        if not pte_none(ptep_get(s, self.pmdval, self.j)):
            # Refilled since the scan: give up. With ptl == pml this unlock releases pml too.
            pte_unmap_unlock(s, self.ptl)
            return self.tlb_finish_mmu() if self.ptl == pmd_lockptr(s) else "slow_unlock_pml"
        self.j += 1
        return "slow_check" if self.j < self.model.entries else "slow_clear_pmd"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_clear_pmd(self, s):
        rcu_read_unlock(s)  # pte_unmap(); both locks still held
        self.table = pmd_clear(s)
        return "slow_unlock_pml" if self.ptl == pmd_lockptr(s) else "slow_unlock_ptl"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_unlock_ptl(self, s):
        spin_unlock(s, self.ptl)

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def slow_unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return "free_pte" if self.table is not None else self.tlb_finish_mmu()

    @step("mm/pt_reclaim.c:free_pte")
    def free_pte(self, s):
        mm_dec_nr_ptes(s)
        table, self.table = self.table, None
        # pte_free_tlb() into the gather; then this pmd is done and tlb_finish_mmu() follows.
        return self.pte_free_tlb(s, table, then=FINISH)


class Fault(PteOffsetMapLock):
    """A write fault on one entry: handle_pte_fault(); do_anonymous_page() when it is none.

    With a table present, handle_pte_fault() maps it with pte_offset_map_rw_nolock() and reads
    the entry locklessly. A present entry is revalidated with pte_same() under the ptl before
    its access flags are written. A none entry goes to do_anonymous_page(): pte_alloc()
    installs a new table under pml if the pmd is none (pmd_install(), freeing the unpublished
    table if another thread won), then pte_offset_map_lock() (pmd_same() retry), the
    pte_none() recheck and set_ptes(). Whenever a map returns NULL the access faults again.
    """

    orig: object = None  # the entry read locklessly
    new: object = None  # a table allocated by __pte_alloc() and not (yet) installed

    def __init__(self, name, page, entry=0):
        super().__init__(name)
        self.page, self.entry = page, entry  # constants: the data page mapped, the entry faulted

    @step("mm/memory.c:handle_pte_fault")
    def handle_pte_fault(self, s):
        return "pte_alloc" if pmd_none(s.pmd) else "fault_map_nolock"

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def fault_map_nolock(self, s):
        pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return "handle_pte_fault"  # NULL: return 0 and the access faults again
        self.pmdval, self.ptl = pmdval, ptl

    @step("mm/memory.c:handle_pte_fault")
    def fault_read_pte(self, s):
        self.orig = ptep_get(s, self.pmdval, self.entry)  # ptep_get_lockless()
        if pte_none(self.orig):
            rcu_read_unlock(s)  # pte_unmap(); do_pte_missing() -> do_anonymous_page()
            return "pte_alloc"

    @step("mm/memory.c:handle_pte_fault")
    def fault_lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/memory.c:handle_pte_fault")
    def fault_pte_same(self, s):
        # No pmd_same() here: orig is not none, and a table is unlinked only when all its
        # entries are none, so pte_same() fails on a table that was unlinked meanwhile.
        pte = ptep_get(s, self.pmdval, self.entry)
        if pte != self.orig:
            pte_unmap_unlock(s, self.ptl)
            return "handle_pte_fault"
        set_pte_at(s, self.pmdval, self.entry, pte)  # ptep_set_access_flags(): young/dirty

    @step("include/linux/mm.h:pte_unmap_unlock")
    def fault_unlock(self, s):
        pte_unmap_unlock(s, self.ptl)
        return DONE

    @step("include/linux/mm.h:pte_alloc")
    def pte_alloc(self, s):
        if not pmd_none(s.pmd):
            return self.pte_offset_map_lock(then="anon_pte_none", fail="handle_pte_fault")

    @step("mm/memory.c:__pte_alloc")
    def alloc(self, s):
        self.new = pte_alloc_one(s)  # not yet visible to anyone

    @step("mm/memory.c:pmd_install")
    def install_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        if pmd_none(s.pmd):  # recheck under pml: another fault may have installed one
            mm_inc_nr_ptes(s)
            pmd_populate(s, self.new)  # after smp_wmb(): the zeroed table is visible
            self.new = None

    @step("mm/memory.c:pmd_install")
    def install_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        if self.new is None:
            return self.pte_offset_map_lock(then="anon_pte_none", fail="handle_pte_fault")

    @step("mm/memory.c:__pte_alloc")
    def free_unpublished(self, s):
        pte_free(s, self.new)  # never visible, so freed at once
        self.new = None
        return self.pte_offset_map_lock(then="anon_pte_none", fail="handle_pte_fault")

    @step("mm/memory.c:vmf_pte_changed")
    def anon_pte_none(self, s):
        if not pte_none(ptep_get(s, self.pmdval, self.entry)):
            return "fault_unlock"  # someone mapped it meanwhile

    @step("mm/memory.c:do_anonymous_page")
    def anon_set_pte(self, s):
        set_pte_at(s, self.pmdval, self.entry, present(self.page))  # set_ptes()
        s.store(mapcount(self.page), 1)  # folio_add_new_anon_rmap()
        return "fault_unlock"


class Walker(PteOffsetMapLock):
    """A pte_offset_map_lock() user, e.g. walk_pte_range() of a page-table walk.

    It maps and locks the table (rechecking pmd_same() under the ptl, retrying if the pmd
    changed), reads every entry, and unlocks. NULL (no table) ends the walk.
    """

    i: int = 0
    first_step = "map_pmd"
    _map_then, _map_fail = "walk_pte", DONE  # pte_offset_map_lock(), then walk; NULL: nothing to walk

    @step("mm/pagewalk.c:walk_pte_range")
    def walk_pte(self, s):
        ptep_get(s, self.pmdval, self.i)
        self.i += 1
        if self.i < self.model.entries:
            return "walk_pte"
        pte_unmap_unlock(s, self.ptl)
        return DONE


class Reader(Thread):
    """A pte_offset_map_ro_nolock() user, filemap_fault_recheck_pte_none().

    It may take the ptl it computed from the pmd value it read, but the table may already be
    unlinked by then, so it only reads.
    """

    pmdval: object = None
    ptl: object = None

    @step("mm/pgtable-generic.c:pte_offset_map_ro_nolock")
    def ro_map(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return DONE
        self.ptl = ptl

    @step("mm/filemap.c:filemap_fault_recheck_pte_none")
    def ro_lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/filemap.c:filemap_fault_recheck_pte_none")
    def ro_read(self, s):
        ptep_get(s, self.pmdval, 0)
        pte_unmap_unlock(s, self.ptl)
        return DONE


class GupFast(Thread):
    """get_user_pages_fast() of entry 0: a lockless walk with IRQs disabled, no ptl at all.

    gup_fast() disables IRQs, which holds off IPIs (the semi-RCU single-table free waits for
    it) and, since the RCU flavour consolidation, is an RCU read-side section (so call_rcu()
    waits for it too). It reads the pmd once, maps the table from that value without reading
    the pmd again, reads the entry, and after grabbing the folio rechecks both the pmd and the
    entry (70cbc3cc78a9), backing off if either changed.
    """

    pmdval: object = None
    pte: object = None

    @step("mm/gup.c:gup_fast_pmd_range")
    def gup_fast_pmd(self, s):
        local_irq_save(s)  # gup_fast(), folded into the pmd read
        self.pmdval = s.pmd  # pmdp_get_lockless()
        if not pmd_table(self.pmdval):
            local_irq_restore(s)
            return DONE

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_pte(self, s):
        rcu_read_lock(s)  # pte_offset_map() of the local pmd copy
        self.pte = ptep_get(s, self.pmdval, 0)  # ptep_get_lockless()
        if pte_none(self.pte):
            return "gup_fast_done"

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_recheck_pmd(self, s):
        # After try_grab_folio_fast(): a pmd that changed means the table may be gone.
        if not pmd_same(self.pmdval, s.pmd):
            return "gup_fast_done"

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_recheck_pte(self, s):
        ptep_get(s, self.pmdval, 0)

    @step("mm/gup.c:gup_fast")
    def gup_fast_done(self, s):
        rcu_read_unlock(s)  # pte_unmap()
        local_irq_restore(s)
        return DONE


def slow_path_gives_up(before, after) -> bool:
    """A zap's slow-path recheck finds an entry that is not none and leaves the table alone."""
    return any(z.pc == "slow_check" and after.thread(z.name).pc not in ("slow_check", "slow_clear_pmd")
               for z in before.threads("zap"))


class Reclaim(Model):
    """Merged PT_RECLAIM (v6.14+): zap reclaims empty PTE pages; RCU-protected walkers recheck."""

    entries = Param(2, "entries per PTE table (PTRS_PER_PTE is 512; the scan is per entry)", minimum=1)
    pages = Param(0, "PTE pages the allocator can hand out (0: as many as the threads can hold "
                     "at once: the linked one, one unpublished per fault, one unlinked per zap)")
    zaps = Param(1, "madvise(MADV_DONTNEED) threads zapping the whole PMD range")
    faults = Param(1, "write faults on entry 0")
    walkers = Param(1, "pte_offset_map_lock() walkers reading every entry")
    readers = Param(1, "pte_offset_map_ro_nolock() readers")
    gup_fast = Param(0, "get_user_pages_fast() walkers (IRQs disabled, no ptl)")
    split_ptlocks = Param(True, "CONFIG_SPLIT_PTE_PTLOCKS: ptl per PTE page; false: ptl == pml")
    batch_alloc_fail = Param(True, "explore the mmu_gather batch page allocation failing")
    need_resched = Param(True, "explore need_resched() breaking the zap loop")
    force_break = Param(True, "explore the gather's page batch filling up (force_break)")

    maintains = ("nr_ptes", "mapcount")

    semi_rcu_table_free = Variant("the single-table fallback IPIs all CPUs and frees at once "
                                  "(x86 before v6.14, seed 002 problem 1)")
    no_pmd_same_recheck = Variant("pte_offset_map_lock() users skip the pmd_same() recheck "
                                  "after taking the ptl")

    def init(self, mem):
        pages = self.pages or 1 + self.faults + self.zaps
        PageTables(mem, pages=pages, entries=self.entries, split_ptlocks=self.split_ptlocks,
                   rcu_head=True)
        rcu_init(mem)
        mmu_gather_init(mem, numbered("zap", self.zaps))
        for page in range(1, self.entries + self.faults + 1):
            mem.layout.cell(mapcount(page), 1 if page <= self.entries else 0)
        table = pte_alloc_one(mem)
        for i in range(self.entries):
            set_pte_at(mem, table, i, present(i + 1))
        mm_inc_nr_ptes(mem)
        pmd_populate(mem, table)

    def witnesses(self):
        """The paths a run must take, where this configuration has them: a "holds" that never
        reclaimed a table, or never raced a fault with it, would say nothing."""
        if not self.zaps:
            return []
        out = [reachable("zap.slow_clear_pmd", "slow-path reclaim: try_to_free_pte() rechecks every "
                                               "entry under pml and the ptl, then clears the pmd"),
               reachable("rcu.rcu_do_batch", "an RCU callback frees an unlinked PTE page")]
        if self.split_ptlocks:  # with ptl == pml the trylock of pml under the ptl always fails
            out.append(reachable("zap.clear_pmd", "fast-path reclaim: try_get_and_clear_pmd() "
                                                  "trylocks pml under the ptl and clears the pmd"))
        if self.batch_alloc_fail:
            out.append(reachable("zap.tlb_table_invalidate", "the batch page allocation fails: the "
                                                             "table is freed on its own (tlb_remove_table_one)"))
        if self.faults:
            out.append(reachable(slow_path_gives_up, "try_to_free_pte() finds an entry refilled since "
                                                     "the scan and gives up", name="slow path gives up"))
            if not self.no_pmd_same_recheck:
                out.append(reachable("*.map_pmd_same->map_pmd", "pmd_same() fails under the ptl: "
                                     "__pte_offset_map_lock() unlocks and retries", name="pmd_same retry"))
        if self.faults >= 2:
            out.append(reachable("fault.free_unpublished", "a fault loses the pmd_install() race and "
                                                           "frees its unpublished table"))
        return out

    def threads(self):
        zaps = [Zap(name) for name in numbered("zap", self.zaps)]
        for zap in zaps:
            zap.table_free_fallback = "ipi" if self.semi_rcu_table_free else "call_rcu"
            zap.batch_alloc_can_fail = self.batch_alloc_fail
        return [*zaps,
                *(Fault(name, page=self.entries + 1 + k)
                  for k, name in enumerate(numbered("fault", self.faults))),
                *(Walker(name) for name in numbered("walker", self.walkers)),
                *(Reader(name) for name in numbered("reader", self.readers)),
                *(GupFast(name) for name in numbered("gup_fast", self.gup_fast)),
                RcuCallbacks()]
