"""No use-after-free of a PTE page table.

No thread reads or writes an entry of a PTE page, takes the ptl inside it, or frees it, when
that page is free or has been freed and reused since the thread read the pmd that led to it;
and no thread maps a pmd that no longer points to a PTE table (pte_offset_map_lock() on a pmd
that became none or huge). This is what RCU-protected pte_offset_map*(), pte_try_get() or the
ptl + pmd_same() rechecks exist to prevent: a freed page table is reused by the page allocator,
and a walker still holding a pointer to it reads or corrupts someone else's memory. Nor is an
rcu_head queued again while its callback is pending: that corrupts the callback list, and the
table it frees is freed twice or never.

The default run on reclaim has, besides the zap, the fault, the walker and the reader,
khugepaged's retract_page_tables() on a shmem VMA (``vma=shmem``, ``retracts=1``): it is the
actor that frees a PTE table with neither the mmap lock nor the zap's path (no mmu_gather: only
i_mmap_rwsem for read, the pml and the ptl, then pte_free_defer()), so the walkers' RCU and
pmd_same() rechecks are checked against both ways a table goes. ``--set vma=anon --set
retracts=0`` is the run without it. refcount2021 has neither parameter: they are not applied
there (a ``--set`` of them is an error on it).
"""
from ptmc.properties import never

MODEL = "../model/reclaim.py"
MODELS = ["../model/refcount2021.py"]
PARAMS = {"vma": "shmem", "retracts": 1}

CHECKS = [never("use-after-free"), never("double-free"), never("double-call-rcu")]
