"""No CPU's page walker can reach a freed PTE page.

A CPU caches table walks (x86 paging-structure caches, arm64 walk caches): after a pmd is
cleared it may keep walking the old PTE page through its cache until a TLB flush that drops
cached walks of that range (an mmu_gather flush with freed_tables, flush_tlb_range()). A PTE
page freed before then is read by the hardware at any moment: the page-table memory, reused,
is interpreted as page table entries (invariant H of docs/protocol.md). Here one CPU's MMU is
modelled explicitly (ptmc.kernel.hw): it walks at any time, fresh or through what it cached,
and this checks that no PTE page is freed while it still holds a walk through it. Mainline
guarantees it: the gather flushes with freed_tables before tlb_remove_table() hands the batch
to call_rcu().
"""
from ptmc.properties import never

MODEL = "../model/reclaim.py"
PARAMS = {"hw_walkers": 1, "walkers": 0, "readers": 0}

CHECKS = [never("hw-walk-free-table")]
