"""No use-after-free of a PTE page table.

No thread reads or writes an entry of a PTE page, takes the ptl inside it, or frees it, when
that page is free or has been freed and reused since the thread read the pmd that led to it;
and no thread maps a pmd that no longer points to a PTE table (pte_offset_map_lock() on a pmd
that became none or huge). This is what RCU-protected pte_offset_map*(), pte_try_get() or the
ptl + pmd_same() rechecks exist to prevent: a freed page table is reused by the page allocator,
and a walker still holding a pointer to it reads or corrupts someone else's memory. Nor is an
rcu_head queued again while its callback is pending: that corrupts the callback list, and the
table it frees is freed twice or never.
"""
from ptmc.properties import never

MODEL = "../model/reclaim.py"
MODELS = ["../model/refcount2021.py"]

CHECKS = [never("use-after-free"), never("double-free"), never("double-call-rcu")]
