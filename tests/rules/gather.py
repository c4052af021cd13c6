"""Rules of the mmu_gather (kernel/mmu_gather.py): a table unlinked by a zap is freed only
after the TLB flush and after every walker that may still reach it has gone; by the batch's
call_rcu(), or when the batch page cannot be allocated by the table's own call_rcu()
(PT_RECLAIM) or, before v6.14, the semi-RCU IPI, which waits for IRQs-off walkers only."""
from __future__ import annotations

from ptmc import Thread, step
from ptmc.kernel.irq import local_irq_restore, local_irq_save
from ptmc.kernel.mmu_gather import FINISH, MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, allocated_pages, pmd_clear, pmd_populate, pmd_table, present,
                                 pte_alloc_one, pte_clear, ptep_get, set_pte_at)
from ptmc.kernel.rcu import RcuCallbacks, rcu_init
from ptmc.properties import at_end, deadlock_free, never

from .case import Case, model
from .pgtable import NolockWalker


class Zapper(MmuGather):
    """Empties and unlinks the table into the gather; with ``tables=2`` installs a second table
    and unlinks that one too before tlb_finish_mmu()."""

    old: object = None
    tables = 1

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink(self, s):
        pte_clear(s, s.pmd, 0)
        self.old = pmd_clear(s)
        return self.pte_free_tlb(s, self.old, FINISH if self.tables == 1 else "install")

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        table = pte_alloc_one(s)
        set_pte_at(s, table, 0, present(2))
        pmd_populate(s, table)

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink_again(self, s):
        pte_clear(s, s.pmd, 0)
        self.old = pmd_clear(s)
        return self.pte_free_tlb(s, self.old, FINISH)


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


def gather(walker, fallback="call_rcu", can_fail=True, tables=1):
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
        zap.table_free_fallback, zap.batch_alloc_can_fail, zap.tables = fallback, can_fail, tables
        return [zap, walker("walker"), RcuCallbacks()]
    return (model(init, threads),
            [never("use-after-free"), never("double-free"), never("double-call-rcu"), deadlock_free(),
             at_end(lambda s: allocated_pages(s) == [] and s.tlb_stale == ())])


CASES = [
    Case("gather: PT_RECLAIM frees after RCU", "mmu_gather: batch or table call_rcu after the flush",
         lambda: gather(NolockWalker), "holds", None, 0, 37),
    Case("gather: semi-RCU IPI frees under a walker", "mmu_gather.tlb_remove_table_sync_one: the IPI",
         lambda: gather(NolockWalker, "ipi"), "violated", "never use-after-free", 6, 35),
    Case("gather: semi-RCU IPI waits for GUP-fast", "mmu_gather.tlb_remove_table_sync_one waits for IRQs off",
         lambda: gather(IrqWalker, "ipi"), "holds", None, 0, 37),
    Case("gather: batch of two tables", "mmu_gather.pte_free_tlb batches; tlb_remove_table_rcu frees all",
         lambda: gather(NolockWalker, can_fail=False, tables=2), "holds", None, 0, 45),
    Case("gather: two tables, allocation may fail", "mmu_gather: tlb_resume continues the zap",
         lambda: gather(IrqWalker, tables=2), "holds", None, 0, 218),
]
