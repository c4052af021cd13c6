"""mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c): deferred TLB flush and table free.

A zapping thread gathers the PTE pages it unlinked; they are freed only after the TLB flush
(``tlb_flush_mmu_tlbonly``) *and* an RCU grace period (``call_rcu`` on the batch page), so
that neither a CPU's paging-structure cache nor a ``pte_offset_map()`` walker can still reach
them. The gather itself is private to its thread (thread locals below); what RCU sees of it is
the batch page's rcu_head.

When the batch page cannot be allocated (``__get_free_page(GFP_NOWAIT)`` fails), the table
is flushed from the TLB and handed to ``tlb_remove_table_one()``: ``call_rcu`` on the table's
own ``pt_rcu_head`` with PT_RECLAIM (v6.14), or, before that, the "semi-RCU" IPI to all CPUs
followed by an immediate free.
"""
from ..model import DONE, Thread, step
from .irq import irq_init, smp_call_function_wait
from .pgtable import pte_free
from .rcu import call_rcu, rcu_head_cell
from .tlb import flush_tlb_mm_range


def mmu_gather_init(mem, owners) -> None:
    """Declare the batch pages' rcu_heads of the gathers of threads named ``owners``."""
    irq_init(mem.layout)
    for name in owners:
        rcu_head_cell(mem, f"{name}.tlb_batch_rcu")


def tlb_remove_table_one_rcu(s, table) -> None:
    """__tlb_remove_table_one_rcu(): the grace period after call_rcu(&ptdesc->pt_rcu_head) ended."""
    pte_free(s, table)


def tlb_remove_table_rcu(s, tables) -> None:
    for table in tables:
        pte_free(s, table)


FINISH = "tlb_finish_mmu()"  # a continuation: tlb_finish_mmu(), then the thread is done


class MmuGather(Thread):
    """Steps of an mmu_gather, for threads that free page tables (a zapper)."""

    tlb_batch: tuple = None  # tlb->batch: tables awaiting flush and grace period, or no batch page
    tlb_flush_needed: bool = False  # tlb->freed_tables or cleared_ptes: a flush has work to do
    tlb_table: object = None  # the table tlb_remove_table() is freeing
    _tlb_then: str = None  # the step pte_free_tlb()/tlb_flush_mmu() return to

    # Configuration, fixed per thread by the model (not state).
    table_free_fallback = "call_rcu"  # tlb_remove_table_one(): "call_rcu" (PT_RECLAIM) or "ipi"
    batch_alloc_can_fail = True  # explore __get_free_page(GFP_NOWAIT) failing

    def requires(self):
        needed = [(f"{self.name}.tlb_batch_rcu", f"mmu_gather_init(mem, owners) with {self.name!r} among the owners")]
        if self.batch_alloc_can_fail and self.table_free_fallback == "call_rcu":
            needed.append(("pt0.rcu_head", "PageTables(mem, ..., rcu_head=True)"))
        return needed

    def pte_free_tlb(self, s, table, then: str) -> str:
        """pte_free_tlb() -> tlb_remove_table(): batch ``table``; continue at ``then``.
        Called inside the caller's step: the gather's bookkeeping is thread-local."""
        self.tlb_flush_needed = True  # freed_tables = 1, cleared_pmds = 1
        if self.tlb_batch is None:
            if self.batch_alloc_can_fail and s.maybe("batch page allocation (GFP_NOWAIT) fails"):
                self.tlb_table, self._tlb_then = table, then
                return "tlb_table_invalidate"
            self.tlb_batch = ()
        self.tlb_batch += (table,)
        return self.tlb_finish_mmu() if then == FINISH else then

    def tlb_finish_mmu(self) -> str:
        """tlb_finish_mmu(): the final flush and hand-off to RCU; then the thread is done."""
        return self.tlb_flush_mmu(DONE)

    def tlb_resume(self) -> str:
        return self.tlb_finish_mmu() if self._tlb_then == FINISH else self._tlb_then

    @step("mm/mmu_gather.c:tlb_table_invalidate")
    def tlb_table_invalidate(self, s):
        flush_tlb_mm_range(s)  # tlb_flush_mmu_tlbonly(): the table must leave the TLB first
        self.tlb_flush_needed = False
        return "tlb_remove_table_one" if self.table_free_fallback == "call_rcu" else "tlb_remove_table_sync_one"

    @step("mm/mmu_gather.c:__tlb_remove_table_one")
    def tlb_remove_table_one(self, s):
        call_rcu(s, self.tlb_table.field("rcu_head"), tlb_remove_table_one_rcu, self.tlb_table)
        self.tlb_table = None
        return self.tlb_resume()

    @step("mm/mmu_gather.c:tlb_remove_table_sync_one")
    def tlb_remove_table_sync_one(self, s):
        # Semi-RCU: the IPI only waits for CPUs with IRQs disabled (GUP-fast).
        smp_call_function_wait(s)

    @step("mm/mmu_gather.c:__tlb_remove_table")
    def tlb_remove_table_now(self, s):
        pte_free(s, self.tlb_table)
        self.tlb_table = None
        return self.tlb_resume()

    def tlb_flush_mmu(self, then: str) -> str:
        """tlb_flush_mmu(): flush the TLB if needed, then hand the batch to RCU; continue at ``then``."""
        self._tlb_then = then
        if self.tlb_flush_needed:
            return "tlb_flush_mmu_tlbonly"
        return "tlb_table_flush" if self.tlb_batch else then

    @step("include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly")
    def tlb_flush_mmu_tlbonly(self, s):
        flush_tlb_mm_range(s)
        self.tlb_flush_needed = False
        return "tlb_table_flush" if self.tlb_batch else self._tlb_then

    @step("mm/mmu_gather.c:tlb_table_flush")
    def tlb_table_flush(self, s):
        call_rcu(s, f"{self.name}.tlb_batch_rcu", tlb_remove_table_rcu, self.tlb_batch)
        self.tlb_batch = None
        return self._tlb_then
