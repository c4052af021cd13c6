"""No CPU caches two translations of one address through different page tables or page sizes.

MADV_DONTNEED defers its TLB flush to tlb_finish_mmu(): the entries are cleared and the ptl
(and, for a reclaimed table, the pmd lock) dropped before any CPU's TLB is flushed. In that
window a fault may install a new PTE page and map the address again, and a CPU whose TLB still
holds the old translation (through the old PTE page) may cache the new one too: two
translations of one address, which Intel's application note 317080 calls implementation
specific and arm64 forbids (break-before-make). The same happens when a huge pmd replaces a
table, or a table a huge pmd. This is protocol.md K6: the RFC "mm: fix missing TLB flushing"
(2024) was not merged, so mainline is expected to violate it; memory is still never reused
before the flush (no_hw_walk_free holds).
"""
from ptmc.properties import never

MODEL = "../model/reclaim.py"
PARAMS = {"hw_walkers": 1, "walkers": 0, "readers": 0}

CHECKS = [never("tlb-incoherent")]
