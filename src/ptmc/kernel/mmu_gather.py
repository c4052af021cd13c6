"""mmu_gather (include/asm-generic/tlb.h, mm/mmu_gather.c): deferred TLB flush and table free.

A zapping thread gathers what it unmapped: the address range whose translations it cleared
(tlb_remove_tlb_entries(), tlb_remove_pmd_tlb_entry()), whether it freed page tables
(pte_free_tlb() sets ``freed_tables``, so the flush also drops cached table walks), and the
tables themselves. They are freed only after the TLB flush (``tlb_flush_mmu_tlbonly``) *and*,
with CONFIG_MMU_GATHER_RCU_TABLE_FREE, an RCU grace period (``call_rcu`` on the batch page), so
that neither a CPU's paging-structure cache nor a ``pte_offset_map()`` walker can still reach
them; without it they go through the page batch and are freed right after the flush. A flush
covers the range this gather collected, nothing else. mm->tlb_flush_pending counts the active
gathers: a gather that finds another one active when it finishes (mm_tlb_flush_nested()) flushes
everything, as its range may not cover what the other left stale.

Batch pages (struct mmu_table_batch) come from a small pool per gather, each with its own
rcu_head (``<owner>.tlb_batch_rcu``, ``<owner>.tlb_batch1_rcu``, ...): tlb_remove_table()
allocates one when tlb->batch is NULL, tlb_table_flush() hands it to call_rcu()
(tlb_remove_table_free()) and sets tlb->batch = NULL, so the next tlb_remove_table() of the
same zap allocates another while the first may still wait for its grace period; the callback
(tlb_remove_table_rcu() -> __tlb_remove_table_free()) frees its tables and the page. A page is
free while its rcu_head is idle and it is not tlb->batch.

When the batch page cannot be allocated (``__get_free_page(GFP_NOWAIT)`` fails), the table is
flushed from the TLB and handed to ``tlb_remove_table_one()``: ``call_rcu`` on the table's own
``pt_rcu_head`` with PT_RECLAIM (v6.14), or, without it, the "semi-RCU" IPI to all CPUs followed
by an immediate free (``table_free_fallback = "ipi"`` forces that, a variant).

The gather is private to its thread (thread locals below); what others see of it is the batch
page's rcu_head and mm->tlb_flush_pending. Its bookkeeping runs inside the caller's step
(pte_free_tlb() is local until it needs memory); the flushes and frees are steps, called as
procedures: ``self.tlb_finish_mmu(then=DONE)``, ``self.tlb_flush_mmu(then=...)``.
"""
from ..errors import ModelError
from ..model import DONE, Procedure, step
from .config import config
from .irq import irq_init, smp_call_function_wait
from .pgtable import address, ptrs_per_pte, pte_free
from ..model import Guard
from .rcu import RCU_GRACE_PERIOD, call_rcu, rcu_head_cell
from .tlb import flush_tlb_mm_range


def mmu_gather_init(mem, owners, batch_pages: int = 1) -> None:
    """Declare mm->tlb_flush_pending and, for the gather of each thread named in ``owners``,
    ``batch_pages`` batch pages with their rcu_heads: as many as one zap may have waiting for
    a grace period at once (one per tlb_table_flush() before the first callback ran)."""
    irq_init(mem.layout)
    if "tlb_flush_pending" not in mem.layout.index:
        mem.layout.cell("tlb_flush_pending", 0, quiet=True)
    pools = mem.layout.objects.setdefault("tlb_batch_pages", {})
    for name in owners:
        pools[name] = batch_pages
        for page in range(batch_pages):
            rcu_head_cell(mem, tlb_batch_rcu_head(name, page), owner=name)


def tlb_batch_rcu_head(owner: str, page: int) -> str:
    """The rcu_head of batch page ``page`` of ``owner``'s gather (struct mmu_table_batch.rcu)."""
    return f"{owner}.tlb_batch_rcu" if page == 0 else f"{owner}.tlb_batch{page}_rcu"


def tlb_batch_alloc(s, owner: str) -> int:
    """tlb_remove_table(): __get_free_page() for tlb->batch, which is NULL: the lowest batch
    page of the gather's pool whose rcu_head is idle (its callback freed it, or it was never
    used). A pool too small for the run is a model error, as running out of PTE pages is."""
    pages = s.layout.objects["tlb_batch_pages"][owner]
    for page in range(pages):
        if s.load(tlb_batch_rcu_head(owner, page)) is None:
            return page
    raise ModelError(f"{s.actor}: all {pages} batch pages of its mmu_gather wait for their grace period: "
                     f"declare more (mmu_gather_init(mem, owners, batch_pages={pages + 1}))")


def tlb_remove_table_one_rcu(s, table) -> None:
    """__tlb_remove_table_one_rcu(): the grace period after call_rcu(&ptdesc->pt_rcu_head) ended."""
    pte_free(s, table)


def tlb_remove_table_rcu(s, tables) -> None:
    """tlb_remove_table_rcu() -> __tlb_remove_table_free(): every table of the batch, then
    free_page() of the batch page (its rcu_head, idle again, is all that marks it in use)."""
    for table in tables:
        pte_free(s, table)


def _go(then):
    """Where a helper continues when it needs no step: a step name, DONE, or a continuation."""
    return then(None) if callable(then) else then


class TlbFlushMmu(Procedure):
    """tlb_flush_mmu() (flush, then free what was gathered) and tlb_finish_mmu() (the same,
    after checking mm_tlb_flush_nested(), and dec_tlb_flush_pending() last). ``tlb_finish`` is
    the argument that says which."""

    tlb_batch: tuple = None  # tlb->batch: (batch page, its tables awaiting flush and grace period), or None
    tlb_pages: tuple = ()  # tables in the page batch (no RCU table free): freed right after the flush
    tlb_range: tuple = None  # (start, end) of the translations to flush, or None: nothing gathered
    tlb_freed_tables: bool = False  # tlb->freed_tables: the flush must drop cached table walks
    tlb_fullmm: bool = False  # flush everything (a nested gather)
    tlb_finish: bool = False  # argument: this is tlb_finish_mmu()
    tlb_active: bool = False  # between tlb_gather_mmu() and the end of tlb_finish_mmu()

    gather_tlb_flush = Guard(
        "tlb_flush_mmu_tlbonly() before the tables are freed or handed to call_rcu(): no CPU may keep a "
        "translation or a cached table walk through what was unmapped (invariant H)",
        without="free (or queue) what was gathered without flushing the TLB")
    rcu_grace_period = RCU_GRACE_PERIOD

    def _tlb_flush(self, s) -> None:
        """tlb_flush_mmu_tlbonly(): flush what was gathered (if anything), reset the range."""
        if not self.gather_tlb_flush:
            pass
        elif self.tlb_fullmm:
            flush_tlb_mm_range(s, freed_tables=True)  # TLB_FLUSH_ALL
        elif self.tlb_range is not None:
            flush_tlb_mm_range(s, *self.tlb_range, freed_tables=self.tlb_freed_tables)
        elif self.tlb_freed_tables:
            raise AssertionError("freed_tables without a range")
        self.tlb_range, self.tlb_freed_tables, self.tlb_fullmm = None, False, False

    def _after_flush(self, s):
        """tlb_flush_mmu_free(): the table batch, then the page batch; then return."""
        if self.tlb_batch:
            return "tlb_table_flush"
        if self.tlb_pages:
            return "tlb_batch_pages_flush"
        return self._tlb_return(s)

    def _tlb_return(self, s):
        if self.tlb_finish:
            s.tlb_flush_pending -= 1  # dec_tlb_flush_pending(), after everything else
            self.tlb_finish = self.tlb_active = False
        return self.ret()

    @step("mm/mmu_gather.c:tlb_finish_mmu")
    def tlb_finish_flush(self, s):
        # Another gather active on this mm: its pages and tables may be stale in TLBs outside
        # our range, so flush everything (fullmm, freed_tables).
        if s.tlb_flush_pending > 1:  # mm_tlb_flush_nested()
            self.tlb_fullmm, self.tlb_freed_tables = True, True
        self._tlb_flush(s)
        return self._after_flush(s)

    @step("include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly")
    def tlb_flush_mmu_tlbonly(self, s):
        self._tlb_flush(s)
        return self._after_flush(s)

    @step("mm/mmu_gather.c:tlb_table_flush")
    def tlb_table_flush(self, s):
        # tlb_table_invalidate() found nothing left to flush: tlb_flush_mmu_tlbonly() ran first.
        page, tables = self.tlb_batch
        call_rcu(s, tlb_batch_rcu_head(self.name, page), tlb_remove_table_rcu, tables)
        self.tlb_batch = None
        return "tlb_batch_pages_flush" if self.tlb_pages else self._tlb_return(s)

    @step("mm/mmu_gather.c:tlb_batch_pages_flush")
    def tlb_batch_pages_flush(self, s):
        # No RCU table free: the flush above is all that protects a lockless walker (GUP-fast
        # holds an IPI flush off with IRQs disabled; nothing holds off a broadcast one).
        for table in self.tlb_pages:
            pte_free(s, table)
        self.tlb_pages = ()
        return self._tlb_return(s)


class TlbRemoveTableOne(TlbFlushMmu):
    """tlb_remove_table() when the batch page cannot be allocated: tlb_table_invalidate(), then
    tlb_remove_table_one() of the one table: call_rcu() on its pt_rcu_head (PT_RECLAIM), or the
    semi-RCU tlb_remove_table_sync_one() IPI and an immediate __tlb_remove_table().

    Configuration of the thread (not state): ``table_free_fallback``: None (what the kernel
    configuration says: call_rcu with CONFIG_PT_RECLAIM, the IPI otherwise) or "ipi" (the
    semi-RCU free, forced: a variant)."""

    tlb_table: object = None  # argument: the table being freed on its own

    table_free_fallback = None

    semi_rcu_ipi = Guard(
        "tlb_remove_table_sync_one(): the semi-RCU fallback frees the table right after an IPI to every "
        "CPU, which waits for the IRQs-off GUP-fast walkers (and only for them)",
        without="free the table at once, without the IPI",
        against="GUP-fast with the semi-RCU fallback (semi_rcu_fallback, or pt_reclaim=false)")

    def table_free_fallback_of(self, s) -> str:
        if self.table_free_fallback:
            return self.table_free_fallback
        return "call_rcu" if self.model.config.pt_reclaim else "ipi"

    @step("mm/mmu_gather.c:tlb_table_invalidate")
    def tlb_table_invalidate(self, s):
        self._tlb_flush(s)  # tlb_flush_mmu_tlbonly(): the table must leave the TLB first
        return "tlb_remove_table_one" if self.table_free_fallback_of(s) == "call_rcu" else \
            "tlb_remove_table_sync_one"

    @step("mm/mmu_gather.c:__tlb_remove_table_one")
    def tlb_remove_table_one(self, s):
        call_rcu(s, self.tlb_table.field("rcu_head"), tlb_remove_table_one_rcu, self.tlb_table)
        self.tlb_table = None
        return self.ret()

    @step("mm/mmu_gather.c:tlb_remove_table_sync_one")
    def tlb_remove_table_sync_one(self, s):
        # Semi-RCU: the IPI only waits for CPUs with IRQs disabled (GUP-fast).
        if self.semi_rcu_ipi:
            smp_call_function_wait(s)

    @step("mm/mmu_gather.c:__tlb_remove_table")
    def tlb_remove_table_now(self, s):
        pte_free(s, self.tlb_table)
        self.tlb_table = None
        return self.ret()


class MmuGather(TlbRemoveTableOne):
    """An mmu_gather, for threads that zap and free page tables.

    Configuration of the thread (not state): ``batch_alloc_can_fail``: explore
    __get_free_page(GFP_NOWAIT) failing; ``table_free_fallback`` (see TlbRemoveTableOne)."""

    batch_alloc_can_fail = True

    def requires(self):
        needed = [("tlb_flush_pending", "mmu_gather_init(mem, owners)"),
                  (f"{self.name}.tlb_batch_rcu", f"mmu_gather_init(mem, owners) with {self.name!r} among the owners")]
        if self.batch_alloc_can_fail and self.table_free_fallback_of(None) == "call_rcu":
            needed.append(("pt0.rcu_head", "PageTables(mem, ..., rcu_head=True)"))
        return super().requires() + needed

    # --- bookkeeping, in the caller's step

    def tlb_gather_mmu(self, s) -> None:
        """tlb_gather_mmu(): an empty gather; inc_tlb_flush_pending(mm)."""
        self.tlb_batch, self.tlb_pages, self.tlb_range = None, (), None
        self.tlb_freed_tables = self.tlb_fullmm = False
        self.tlb_active = True
        s.tlb_flush_pending += 1

    def tlb_adjust_range(self, s, start: int, end: int) -> None:
        """__tlb_adjust_range(). Without modelled CPU caches (no hardware walker) only whole
        PMD ranges can be told apart by a flush (the ghost of ptmc.kernel.tlb is per pmd slot),
        so the range is kept to PMD_SIZE boundaries: finer differences would be states nothing
        can observe."""
        if not s.layout.objects.get("cpus"):
            n = ptrs_per_pte(s)
            start, end = start - start % n, end + (-end) % n
        r = self.tlb_range
        self.tlb_range = (start, end) if r is None else (min(r[0], start), max(r[1], end))

    def tlb_remove_tlb_entries(self, s, i: int, nr: int = 1, slot=None) -> None:
        """tlb_remove_tlb_entries(): the translations of entries i.. of the slot's table go in
        the range (cleared_ptes)."""
        start = address(s, i, slot)
        self.tlb_adjust_range(s, start, start + nr)

    def tlb_remove_pmd_tlb_entry(self, s, slot=None) -> None:
        """tlb_remove_pmd_tlb_entry(): the PMD_SIZE range of a huge pmd (cleared_pmds)."""
        start = address(s, 0, slot)
        self.tlb_adjust_range(s, start, start + ptrs_per_pte(s))

    def pte_free_tlb(self, s, table, addr: int, then):
        """pte_free_tlb(tlb, table, addr): the page at ``addr`` (tlb_flush_pmd_range()) and
        freed_tables go into the gather, then __pte_free_tlb(): tlb_remove_table() with RCU
        table free, tlb_remove_page() without. Continues at ``then`` (a step, DONE or a
        continuation), or calls tlb_remove_table_one() first when the batch page fails."""
        self.tlb_adjust_range(s, addr, addr + 1)
        self.tlb_freed_tables = True
        if not config(s).mmu_gather_rcu_table_free:
            self.tlb_pages += (table,)
            return _go(then)
        if self.tlb_batch is None:  # none yet, or tlb_table_flush() handed the last to call_rcu()
            if self.batch_alloc_can_fail and s.maybe("batch page allocation (GFP_NOWAIT) fails"):
                return self.call(TlbRemoveTableOne, then=then, tlb_table=table)
            self.tlb_batch = (tlb_batch_alloc(s, self.name), ())
        page, tables = self.tlb_batch
        self.tlb_batch = (page, tables + (table,))
        return _go(then)

    # --- the calls

    def tlb_flush_mmu(self, then):
        """tlb_flush_mmu(): flush, then free the batches; continue at ``then``. Nothing
        gathered: no step at all (the gather is thread-local)."""
        if self.tlb_range is not None:
            return self.call("tlb_flush_mmu_tlbonly", then=then)
        if self.tlb_batch:
            return self.call("tlb_table_flush", then=then)
        if self.tlb_pages:
            return self.call("tlb_batch_pages_flush", then=then)
        return _go(then)

    def tlb_finish_mmu(self, then=DONE):
        """tlb_finish_mmu(): always a step, as it reads mm->tlb_flush_pending."""
        return self.call("tlb_finish_flush", then=then, tlb_finish=True)

    def tlb_finished(self, _=None):
        """A continuation: tlb_finish_mmu(), then the thread is done (e.g. after pte_free_tlb());
        a thread under mmap_read_lock() (ptmc.kernel.mmap_lock.MmapReader) finishes through its
        unlock."""
        done = getattr(self, "done", None)
        return self.tlb_finish_mmu(done() if done is not None else DONE)
