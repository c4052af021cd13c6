"""K6: the deferred-flush TLB window, not fixed in mainline.

protocol.md section 4, K6. MADV_DONTNEED clears the entries (and a reclaimed table's pmd) and
drops its locks before tlb_finish_mmu() flushes the TLB. In that window a fault installs a new
PTE page and maps the address again, and a CPU whose TLB still caches the old translation caches
the new one too. The RFC "mm: fix missing TLB flushing" (2024-08-15) was not merged, so mainline
is expected to violate TLB coherence; memory is still never reused before the flush, which is
what no_hw_walk_free checks and what must hold.
"""
from ptmc.regress import Entry

ENTRIES = [
    Entry("k6-deferred-flush-window", "K6",
          "not fixed: the RFC 'mm: fix missing TLB flushing' (2024-08-15) was not merged; Intel's "
          "application note 317080 calls two live translations implementation specific, arm64 forbids them",
          "../properties/tlb_coherent.py", "violated", check="never tlb-incoherent",
          threads=("zap", "fault", "cpu0"),
          shape=(("cpu0", "walk"), ("zap", "clear_pmd"), ("fault", "install"), ("fault", "anon_set_pte"),
                 ("cpu0", "walk"))),
    Entry("k6-no-reuse-before-flush", "K6",
          "the same window never lets the hardware walk a freed table: tables are freed only after "
          "the flush and a grace period (invariant H)",
          "../properties/no_hw_walk_free.py", "holds"),
]
