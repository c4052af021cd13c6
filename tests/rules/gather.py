"""Rules of the mmu_gather (kernel/mmu_gather.py): a table unlinked by a zap is freed only
after the TLB flush and after every walker that may still reach it has gone; by the batch's
call_rcu(), or when the batch page cannot be allocated by the table's own call_rcu()
(PT_RECLAIM) or, before v6.14, the semi-RCU IPI, which waits for IRQs-off walkers only."""
from __future__ import annotations

from ptmc import Thread, step
from ptmc.kernel.irq import local_irq_restore, local_irq_save
from ptmc.kernel.mmu_gather import FINISH, MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, allocated_pages, linked_entries, pmd_clear, pmd_populate, pmd_table,
                                 present,
                                 pte_alloc_one, pte_clear, ptep_get, set_pte_at)
from ptmc.kernel.rcu import RcuCallbacks, rcu_init
from ptmc.properties import at_end, deadlock_free, never

from .case import Case, model
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
        pte_clear(s, s.pmd, 0)
        self.old = pmd_clear(s)
        then = "flush_mid" if self.flush_between else FINISH if self.tables == 1 else "install"
        return self.pte_free_tlb(s, self.old, then)

    @step("mm/memory.c:zap_pte_range")
    def flush_mid(self, s):
        return self.tlb_flush_mmu("install")

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        table = pte_alloc_one(s)
        set_pte_at(s, table, 0, present(2))
        pmd_populate(s, table)
        if self.tables == 1:  # a new table that stays: the zap is over
            return self.tlb_finish_mmu()

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink_again(self, s):
        pte_clear(s, s.pmd, 0)
        self.old = pmd_clear(s)
        return self.pte_free_tlb(s, self.old, FINISH)


class KeepTable(MmuGather):
    """Zaps entry 0 only: entry 1 stays mapped, so the table is not reclaimed; the cleared
    entry still needs the TLB flush of tlb_finish_mmu() (cleared_ptes), and there is no batch."""

    clears = True  # False: the range maps nothing, the gather has nothing to flush

    @step("mm/memory.c:zap_pte_range")
    def zap(self, s):
        if self.clears:
            pte_clear(s, s.pmd, 0)
            self.tlb_flush_needed = True  # tlb_remove_tlb_entry()
        return self.tlb_finish_mmu()


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


def gather(walker, fallback="call_rcu", can_fail=True, tables=1, flush_between=False):
    def init(mem):
        rcu_init(mem)
        PageTables(mem, pages=tables + 1, entries=1, rcu_head=True)
        mmu_gather_init(mem, ["zap"])
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        mem.pmd = table
        mem.seen = None

    def threads():
        zap = Zapper("zap")
        zap.tables, zap.flush_between = tables, flush_between
        if (fallback, can_fail) != ("call_rcu", True):  # else MmuGather's defaults: PT_RECLAIM
            zap.table_free_fallback, zap.batch_alloc_can_fail = fallback, can_fail
        return [zap, walker("walker"), RcuCallbacks()]
    return (model(init, threads),
            [never("use-after-free"), never("double-free"), never("double-call-rcu"), deadlock_free(),
             at_end(lambda s: allocated_pages(s) == ([s.pmd[0]] if pmd_table(s.pmd) else []) and s.tlb_stale == ())])


CASES = [
    Case("gather: PT_RECLAIM frees after RCU", "mmu_gather: batch or table call_rcu after the flush",
         lambda: gather(NolockWalker), "holds", None, 0, 37, depth=7),
    Case("gather: semi-RCU IPI frees under a walker", "mmu_gather.tlb_remove_table_sync_one: the IPI",
         lambda: gather(NolockWalker, "ipi"), "violated", "never use-after-free", 6, 35, depth=6),
    Case("gather: semi-RCU IPI waits for GUP-fast", "mmu_gather.tlb_remove_table_sync_one waits for IRQs off",
         lambda: gather(IrqWalker, "ipi"), "holds", None, 0, 37, depth=6),
    Case("gather: batch of two tables", "mmu_gather.pte_free_tlb batches; tlb_remove_table_rcu frees all",
         lambda: gather(NolockWalker, can_fail=False, tables=2), "holds", None, 0, 45, depth=9),
    Case("gather: two tables, allocation may fail", "mmu_gather: tlb_resume continues the zap",
         lambda: gather(IrqWalker, tables=2), "holds", None, 0, 218, depth=11),
    Case("gather: flush in the middle", "mmu_gather.tlb_flush_mmu continues where it was called",
         lambda: gather(NolockWalker, can_fail=False, flush_between=True), "holds", None, 0, 47, depth=9),
    Case("gather: flush in the middle, allocation may fail", "mmu_gather.tlb_flush_mmu after the fallback",
         lambda: gather(NolockWalker, flush_between=True), "holds", None, 0, 78, depth=9),
    Case("gather: no table freed", "mmu_gather.tlb_finish_mmu flushes cleared entries; no batch",
         keep_table, "holds", None, 0, 3, depth=2),
    # 2 states: the zap's only step goes straight to DONE (no flush step).
    Case("gather: nothing to flush", "mmu_gather.tlb_flush_mmu: no flush when nothing was cleared",
         lambda: keep_table(Untouched), "holds", None, 0, 2, depth=1),
]


# A known bug of the primitive (not in CASES, so the corpus stays green; tests/test_rules.py
# has it as a strict xfail): every batch page the kernel hands to call_rcu() has its own
# rcu_head (tlb_table_flush() sets tlb->batch = NULL, and the next tlb_remove_table()
# allocates a new page), but mmu_gather_init() declares one "<owner>.tlb_batch_rcu" cell per
# zapping thread. A zap that flushes in the middle (force_flush) and then batches another table
# before the first batch's grace period ended is reported as double-call-rcu.
SECOND_BATCH = Case("gather: flush between two tables", "mmu_gather.tlb_table_flush: one rcu_head per batch page",
                    lambda: gather(NolockWalker, can_fail=False, tables=2, flush_between=True),
                    "holds", None, 0, 0)
