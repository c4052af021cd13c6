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
    "unlink-mapped-table": "a PTE page unlinked from the pmd while it still holds a present entry: "
                           "that mapping is lost",
    "self-deadlock": "spin_lock() of a lock the thread already holds, or synchronize_rcu() "
                     "inside an RCU read-side section",
    "bad-unlock": "spin_unlock() of a lock the thread does not hold",
    "double-call-rcu": "call_rcu() on an rcu_head that is already queued",
}
