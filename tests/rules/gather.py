"""Rules of the mmu_gather (kernel/mmu_gather.py): a table unlinked by a zap is freed only
after the TLB flush and after every walker that may still reach it has gone; by its batch
page's call_rcu() (each batch page with its own rcu_head), or when the batch page cannot be
allocated by the table's own call_rcu() (PT_RECLAIM) or, before v6.14, the semi-RCU IPI, which
waits for IRQs-off walkers only; without CONFIG_MMU_GATHER_RCU_TABLE_FREE right after the
flush. The flush covers the range the gather collected (exact with modelled CPU caches, whole
PMD ranges without), drops cached table walks when tables were freed, and is a full flush when
another gather is active (mm_tlb_flush_nested()).

Since the rework tlb_finish_mmu() is always a step (it reads mm->tlb_flush_pending), and with
tlb_flush=ipi (the default) a TLB flush waits for every CPU with IRQs disabled: that is where
the counts of the cases ported from the first rule models changed (see each).
"""
from __future__ import annotations

from ptmc import DONE, Blocked, Thread, step
from ptmc.kernel.hw import HardwareWalker
from ptmc.kernel.irq import local_irq_restore, local_irq_save
from ptmc.kernel.mmu_gather import MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, address, allocated_pages, linked_entries, pmd_clear, pmd_populate,
                                 pmd_table, pte_alloc_one, pte_clear, ptep_get, set_pte_at)
from ptmc.kernel.pte import present
from ptmc.kernel.rcu import RcuCallbacks, rcu_init
from ptmc.kernel.tlb import cpu_caches_init
from ptmc.properties import at_end, deadlock_free, invariant, never, reachable

from .case import Case, error, model
from .pgtable import NolockWalker


class Zapper(MmuGather):
    """Empties and unlinks the table into the gather; with ``tables=2`` installs a second table
    and unlinks that one too before tlb_finish_mmu(). ``flush_between``: tlb_flush_mmu() right
    after the first table (force_flush), then a new table is installed (and, with ``tables=2``,
    reclaimed too)."""

    old: object = None
    tables = 1
    flush_between = False  # tlb_flush_mmu() between the two tables (force_flush)

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink(self, s):
        self.tlb_gather_mmu(s)
        pte_clear(s, s.pmd, 0)
        self.tlb_remove_tlb_entries(s, 0)
        self.old = pmd_clear(s)
        then = self.flush_mid if self.flush_between else self.tlb_finished if self.tables == 1 else "install"
        return self.pte_free_tlb(s, self.old, address(s, 0), then)

    def flush_mid(self, _=None):
        """force_flush: tlb_flush_mmu() right after the table went into the gather."""
        return self.tlb_flush_mmu(then="install")

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        table = pte_alloc_one(s)
        pmd_populate(s, table)
        set_pte_at(s, table, 0, present(2))
        if self.tables == 1:  # a new table that stays: the zap is over
            return self.tlb_finish_mmu()

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink_again(self, s):
        pte_clear(s, s.pmd, 0)
        self.tlb_remove_tlb_entries(s, 0)
        self.old = pmd_clear(s)
        return self.pte_free_tlb(s, self.old, address(s, 0), self.tlb_finished)


class KeepTable(MmuGather):
    """Zaps entry 0 only: entry 1 stays mapped, so the table is not reclaimed; the cleared
    entry still needs the TLB flush of tlb_finish_mmu() (cleared_ptes), and there is no batch."""

    clears = True  # False: the range maps nothing, the gather has nothing to flush

    @step("mm/memory.c:zap_pte_range")
    def zap(self, s):
        self.tlb_gather_mmu(s)
        if self.clears:
            pte_clear(s, s.pmd, 0)
            self.tlb_remove_tlb_entries(s, 0)
        return self.tlb_flush_mmu(then=self.tlb_finished)  # e.g. a force_flush, then the end


class Untouched(KeepTable):
    clears = False


def keep_table(kind=None):
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=1, entries=2, rcu_head=True)
        mmu_gather_init(mem, ["zap"])
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        set_pte_at(mem, table, 1, present(2))
        mem.pmd = table
    kind = kind or KeepTable
    left = [None, present(2)] if kind.clears else [present(1), present(2)]
    return (model(init, lambda: [kind("zap"), RcuCallbacks()]),
            [deadlock_free(), never("double-call-rcu"),
             at_end(lambda s: allocated_pages(s) == [0] and linked_entries(s) == left)])


class IrqWalker(Thread):
    """GUP-fast: IRQs off, read the pmd and an entry locklessly, IRQs on."""

    table: object = None

    @step("mm/gup.c:gup_fast")
    def map(self, s):
        local_irq_save(s)
        self.table = s.pmd

    @step("mm/gup.c:gup_fast_pte_range")
    def read(self, s):
        if pmd_table(self.table):
            s.seen = ptep_get(s, self.table, 0)
        local_irq_restore(s)


def gather(walker, fallback=None, can_fail=True, tables=1, flush_between=False, batch_pages=1, cpus=0,
           **config):
    """The zap against one walker (``walker=None``: none) and, with ``cpus``, that many CPUs'
    hardware walkers; ``config``: the kernel configuration."""
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=tables + 1, entries=1, rcu_head=True)
        mmu_gather_init(mem, ["zap"], batch_pages)
        if cpus:
            cpu_caches_init(mem, cpus)
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        mem.pmd = table
        mem.seen = None

    def threads():
        zap = Zapper("zap")
        zap.tables, zap.flush_between = tables, flush_between
        if (fallback, can_fail) != (None, True):  # else MmuGather's defaults: as configured
            zap.table_free_fallback, zap.batch_alloc_can_fail = fallback, can_fail
        return [zap, *([walker("walker")] if walker else []), *(HardwareWalker(k) for k in range(cpus)),
                RcuCallbacks()]
    return (model(init, threads, **config),
            [never("use-after-free"), never("double-free"), never("double-call-rcu"), deadlock_free(),
             never("hw-walk-free-table"),
             at_end(lambda s: allocated_pages(s) == ([s.pmd[0]] if pmd_table(s.pmd) else []) and s.tlb_stale == ()
                    and s.tlb_flush_pending == 0)])


# --- the range a flush covers ------------------------------------------------------------------

class Ranged(MmuGather):
    """Gathers the translation of entry ``i`` (chosen: 0 or 1) of a table that stays, without
    clearing it (the range alone is what is looked at), then tlb_finish_mmu()."""

    @step("mm/memory.c:zap_pte_range")
    def zap(self, s):
        self.tlb_gather_mmu(s)
        self.tlb_remove_tlb_entries(s, s.choose("entry", (0, 1)))
        return self.tlb_finish_mmu()


def ranged(cpus):
    # Without modelled CPU caches the range is kept to PMD_SIZE boundaries: both choices gather
    # [0, 2) and are one state at tlb_finish_mmu(): initial, at the flush, done: 3. With a CPU
    # cache declared (and no walker to fill it), the ranges [0, 1) and [1, 2) differ: 4.
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=1, entries=2, rcu_head=True)
        mmu_gather_init(mem, ["zap"])
        if cpus:
            cpu_caches_init(mem, cpus)
        mem.pmd = pte_alloc_one(mem)
    return model(init, lambda: [Ranged("zap")]), [deadlock_free(), at_end(lambda s: s.tlb_flush_pending == 0)]


def cached(s, address) -> bool:
    return any(e[0] == address for e in s.load("cpu0.tlb"))


def flush_range():
    """KeepTable with cpu0's walker: the flush drops the cleared entry's translation and keeps
    the other one (an exact range: CPU caches are modelled)."""
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=1, entries=2, rcu_head=True)
        mmu_gather_init(mem, ["zap"])
        cpu_caches_init(mem, 1)
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        set_pte_at(mem, table, 1, present(2))
        mem.pmd = table
    done = lambda s: s.thread("zap").pc == "done"  # noqa: E731

    def keeps(before, after):
        """the zap's flush leaves cpu0's translation of the entry it did not gather"""
        return before.thread("zap").pc == "tlb_flush_mmu_tlbonly" != after.thread("zap").pc \
            and cached(before, 1) and cached(after, 1)
    return (model(init, lambda: [KeepTable("zap"), HardwareWalker(0)]),
            [invariant(lambda s: not (done(s) and cached(s, 0)) or "cpu0 still caches the zapped entry"),
             reachable(keeps)])


# --- nested gathers ----------------------------------------------------------------------------

class Outer(MmuGather):
    """z: clears entry 0 into its gather, then stays active until y has finished."""

    @step("mm/memory.c:zap_page_range_single")
    def gather(self, s):
        self.tlb_gather_mmu(s)
        pte_clear(s, s.pmd, 0)
        self.tlb_remove_tlb_entries(s, 0)
        s.z_gathered = True

    @step("mm/memory.c:zap_page_range_single")
    def finish(self, s):
        if not s.y_done:
            raise Blocked
        return self.tlb_finish_mmu()


class Inner(MmuGather):
    """y: an empty gather while z's is active (``waits``), or at any time; tlb_finish_mmu()."""

    waits = True

    @step("mm/madvise.c:madvise_free_single_vma")
    def gather(self, s):
        if self.waits and not s.z_gathered:
            raise Blocked
        self.tlb_gather_mmu(s)
        return self.tlb_finish_mmu(then="finished")

    @step("mm/madvise.c:madvise_free_single_vma")
    def finished(self, s):
        s.y_done = True
        return DONE


class Anytime(Inner):
    waits = False


def nested(inner):
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=1, entries=1, rcu_head=True)
        mmu_gather_init(mem, ["z", "y"])
        cpu_caches_init(mem, 1)
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        mem.pmd = table
        mem.z_gathered = mem.y_done = False
    stale = lambda s: s.y_done and s.load("pt0.e0") is None and cached(s, 0)  # noqa: E731

    def keeps(before, after):
        """y's tlb_finish_mmu() of its empty gather leaves what cpu0 caches"""
        return before.thread("y").pc == "tlb_finish_flush" != after.thread("y").pc \
            and cached(before, 0) and cached(after, 0)
    if inner.waits:
        checks = [invariant(lambda s: not stale(s) or "y returned with z's zapped entry still cached")]
    else:
        checks = [reachable(keeps)]
    return model(init, lambda: [Outer("z"), inner("y"), HardwareWalker(0)]), checks + [deadlock_free()]


# Counts that changed with the rework, and why (the first rule models' counts in brackets):
# - tlb_finish_mmu() is always a step now (it reads mm->tlb_flush_pending); before, a gather
#   with nothing left to flush (after the single-table fallback, or after a mid-zap flush and
#   the install of a new table) ended without one. Each such path gains the states with the
#   zap at tlb_finish_mmu(), one per combination of what the others can do meanwhile.
# - With tlb_flush=ipi a TLB flush waits for every CPU with IRQs disabled: the states where
#   the zap had flushed while an IRQs-off walker held a table pointer are gone.
# - The mid-zap flush (force_flush) is a continuation of pte_free_tlb() now, as tlb_flush_mmu()
#   is in zap_pte_range(), not a step of its own that did nothing shared: its states are gone.
CASES = [
    # (37) + 8: after the fallback (the table's own call_rcu) the zap takes tlb_finish_mmu():
    # the callback queued (waiting for the walker at lock or read, or ready) or run, with the
    # walker at map or done (having seen the entry or not): 8 states.
    Case("gather: PT_RECLAIM frees after RCU", "mmu_gather: batch or table call_rcu after the flush",
         lambda: gather(NolockWalker), "holds", None, 0, 45, depth=7),
    # (35) + 3: the zap at tlb_finish_mmu() after the semi-RCU free, with the walker at map,
    # at lock (inside RCU with its pointer) or done, found before the violation's level ends.
    Case("gather: semi-RCU IPI frees under a walker", "mmu_gather.tlb_remove_table_sync_one: the IPI",
         lambda: gather(NolockWalker, "ipi"), "violated", "never use-after-free", 6, 38, depth=6),
    # (37) + 4 - 3: tlb_finish_mmu() after the semi-RCU free (the walker at map, done with or
    # without the entry seen, or IRQs off having read none); gone: the walker at read, IRQs off
    # with its pointer, while the zap is past a flush (at tlb_table_flush, at the IPI, or done
    # with the batch queued): the flush now waits for it, as the IPI always did.
    Case("gather: semi-RCU IPI waits for GUP-fast", "mmu_gather.tlb_remove_table_sync_one waits for IRQs off",
         lambda: gather(IrqWalker, "ipi"), "holds", None, 0, 38, depth=6),
    Case("gather: batch of two tables", "mmu_gather.pte_free_tlb batches; tlb_remove_table_rcu frees all",
         lambda: gather(NolockWalker, can_fail=False, tables=2), "holds", None, 0, 45, depth=9),
    # (218) + 33 - 29: tlb_finish_mmu() after the second table's fallback (33 states); gone,
    # 29 states where IRQs-off GUP-fast held a pointer while the zap was past a TLB flush.
    Case("gather: two tables, allocation may fail", "mmu_gather: the call returns into the zap",
         lambda: gather(IrqWalker, tables=2), "holds", None, 0, 222, depth=11),
    # (47) - 5 + 20: the 5 states at the old flush_mid step are gone; the zap that installed a
    # new table now takes tlb_finish_mmu() (20 states: the first batch queued, ready or run,
    # the walker on the old or the new table).
    Case("gather: flush in the middle", "mmu_gather.tlb_flush_mmu continues where it was called",
         lambda: gather(NolockWalker, can_fail=False, flush_between=True), "holds", None, 0, 62, depth=9),
    # (78) - 13 + 28: as above, with the fallback's paths.
    Case("gather: flush in the middle, allocation may fail", "mmu_gather.tlb_flush_mmu after the fallback",
         lambda: gather(NolockWalker, flush_between=True), "holds", None, 0, 93, depth=9),
    # (3) + 1: zap, the flush (tlb_flush_mmu_tlbonly, of the cleared entry), tlb_finish_mmu(),
    # done: the zap calls tlb_flush_mmu() (a force_flush) before tlb_finish_mmu() now, so that
    # both a flush step and the finish that is always a step are counted.
    Case("gather: no table freed", "mmu_gather.tlb_flush_mmu flushes cleared entries; no batch",
         keep_table, "holds", None, 0, 4, depth=3),
    # (2) + 1: zap, tlb_finish_mmu(), done: tlb_flush_mmu() of an empty gather takes no step,
    # tlb_finish_mmu() always does.
    Case("gather: nothing to flush", "mmu_gather.tlb_flush_mmu: no step when nothing was gathered",
         lambda: keep_table(Untouched), "holds", None, 0, 3, depth=2),
    # The bug the first rule models found (a strict xfail then): every batch page has its own
    # rcu_head, so a zap that flushes in the middle and batches another table before the
    # first batch's grace period ended queues the second page, not the first one again.
    Case("gather: flush between two tables", "mmu_gather.tlb_table_flush: one rcu_head per batch page",
         lambda: gather(NolockWalker, can_fail=False, tables=2, flush_between=True, batch_pages=2),
         "holds", None, 0, 132, depth=12),
    Case("gather: flush between two tables, allocation may fail", "mmu_gather.tlb_batch_alloc only when tlb->batch is NULL",
         lambda: gather(NolockWalker, tables=2, flush_between=True, batch_pages=2),
         "holds", None, 0, 311, depth=12),
    error("gather: every batch page waiting for RCU", "mmu_gather.tlb_batch_alloc: a pool too small is a model error",
          lambda: gather(NolockWalker, can_fail=False, tables=2, flush_between=True),
          "all 1 batch pages of its mmu_gather wait for their grace period"),
    # No CONFIG_MMU_GATHER_RCU_TABLE_FREE: the page batch is freed right after the flush, which
    # an IPI makes safe against IRQs-off GUP-fast only.
    Case("gather: no RCU table free under an RCU walker", "mmu_gather.tlb_batch_pages_flush: no grace period",
         lambda: gather(NolockWalker, mmu_gather_rcu_table_free=False, pt_reclaim=False),
         "violated", "never use-after-free", 5, 16, depth=5),
    Case("gather: no RCU table free against GUP-fast", "tlb.flush_tlb_mm_range (ipi) waits before the page batch",
         lambda: gather(IrqWalker, mmu_gather_rcu_table_free=False, pt_reclaim=False),
         "holds", None, 0, 16, depth=5),
    # No CONFIG_PT_RECLAIM: the single-table fallback is the semi-RCU IPI by configuration.
    Case("gather: no PT_RECLAIM, the fallback is the IPI", "mmu_gather.table_free_fallback_of: the configuration",
         lambda: gather(NolockWalker, pt_reclaim=False), "violated", "never use-after-free", 6, 38, depth=6),
    # A broadcast flush waits for nobody: the IRQs-off walker's pointers meet flushed states
    # again (the grace period still waits for it).
    Case("gather: broadcast flush against GUP-fast", "tlb._wait_for_ipi: broadcast waits for nobody",
         lambda: gather(IrqWalker, tlb_flush="broadcast"), "holds", None, 0, 49, depth=6),
    # freed_tables: the flush also drops cpu0's cached walk through the unlinked table before
    # the grace period frees it.
    Case("gather: freed_tables drops cached walks", "mmu_gather.pte_free_tlb sets freed_tables",
         lambda: gather(None, can_fail=False, cpus=1), "holds", None, 0, 7, depth=4),
    Case("gather: range kept to PMD_SIZE without CPU caches", "mmu_gather.tlb_adjust_range rounds without CPUs",
         lambda: ranged(0), "holds", None, 0, 3, depth=2),
    Case("gather: exact range with CPU caches", "mmu_gather.tlb_adjust_range is exact with CPUs",
         lambda: ranged(1), "holds", None, 0, 4, depth=2),
    Case("gather: the flush covers the gathered range", "mmu_gather._tlb_flush: the range, nothing else",
         flush_range, "holds", None, 0, 15, depth=4),
    Case("gather: a nested gather flushes everything", "mmu_gather.tlb_finish_flush: mm_tlb_flush_nested()",
         lambda: nested(Inner), "holds", None, 0, 16, depth=7),
    Case("gather: an empty gather alone flushes nothing", "mmu_gather._tlb_flush: nothing gathered, no flush",
         lambda: nested(Anytime), "holds", None, 0, 25, depth=7),
]
