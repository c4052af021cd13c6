"""Kernel primitives every model uses: one file each, named after the kernel's own headers.

The bad events they report are listed here, so a property file can name them and a typo is
caught when the property is loaded.
"""
EVENTS = {
    "use-after-free": "an access (entry read or write, taking its ptl) to a page-table page that is "
                      "free, or was freed and reused since the thread got its pointer; mapping a pmd "
                      "that is no longer a page table (none or huge); or freeing a page that a CPU "
                      "may still walk through its paging-structure cache (no TLB flush yet)",
    "double-free": "a page-table page freed when it is already free (or freed again after reuse)",
    "pte-in-unlinked-table": "an entry written into a PTE page that the pmd no longer links: the "
                             "mapping is lost with the page",
    "unlink-mapped-table": "a PTE page unlinked from the pmd while it still holds an entry that is not "
                           "none (a mapping, a swap or migration entry, a uffd-wp or guard marker): what it "
                           "held is lost (except zero-page entries where a design frees those on purpose)",
    "bad-rmap": "a folio's mapcount drops below zero: an entry unmapped twice, or by two threads "
                "(print_bad_pte(), a bad page state)",
    "self-deadlock": "spin_lock() of a lock the thread already holds, or synchronize_rcu() "
                     "inside an RCU read-side section",
    "bad-unlock": "spin_unlock() of a lock the thread does not hold",
    "double-call-rcu": "call_rcu() on an rcu_head that is already queued",
    "sleep-in-atomic": "a sleeping lock (rwsem, folio lock) taken while holding a spinlock, with IRQs "
                       "disabled, or inside rcu_read_lock() (when that disables preemption, or when it "
                       "really blocks there)",
    "hw-walk-free-table": "a PTE page freed while a modelled CPU's paging-structure cache still holds a "
                          "walk through it: the hardware may walk freed memory at any moment",
    "tlb-incoherent": "a CPU caches two translations of one address through different PTE pages or "
                      "page sizes (protocol.md K6: x86 app note 317080, arm64 break-before-make)",
}

# After these the memory a thread uses is corrupt, so what happens next means nothing: a path
# ends at such a transition (it is the counterexample when the property checks the event).
UNDEFINED = ("use-after-free", "double-free")

# What each primitive's set-up declares: the shared cells (and layout objects) that primitives
# use, and the call in ``Model.init`` that declares them. A model whose threads reach code
# using one of these, but whose init() never declared it, is refused when it is built.
SETUP = {
    "pmd": "PageTables(mem, ...)",
    "pml": "PageTables(mem, ...)",
    "page_table_lock": "PageTables(mem, ...)",
    "nr_ptes": "PageTables(mem, ...)",
    "pgtables": "PageTables(mem, ...)",
    "tlb_stale": "PageTables(mem, ...)",
    "rcu_readers": "rcu_init(mem)",
    "rcu_gp": "rcu_init(mem)",
    "irqs_off": "PageTables(mem, ...), mmu_gather_init(mem, owners) or irq_init(mem.layout)",
    "mmap_lock": "mmap_lock_init(mem)",
    "tlb_flush_pending": "mmu_gather_init(mem, owners)",
}
