"""K1: a table freed after an IPI is not a table freed after a grace period.

protocol.md section 4, K1. An IPI (tlb_remove_table_sync_one(), or an IPI TLB flush) returns once
every other CPU has taken the interrupt: a CPU with IRQs disabled (GUP-fast) holds it off, but a
pte_offset_map() user inside rcu_read_lock() has IRQs enabled, takes the IPI at once and goes on
reading the table. So any free that only waits for an IPI is a use-after-free against the
RCU-protected walkers PT_RECLAIM relies on. Two kernels freed tables that way: the
MMU_GATHER_RCU_TABLE_FREE single-table fallback before 718b13861d22 (the "semi-RCU" free when
the batch page cannot be allocated), and bare-metal x86 before v6.14, which had no RCU table
free at all (tables went through tlb_remove_page() and were freed after the IPI flush). Both
are safe against GUP-fast alone, which is why the hazard stayed latent until reclaim let
pte_offset_map() users meet a freed table.
"""
from ptmc.regress import Entry

NO_UAF = "../properties/no_uaf.py"
# K1 is the zap's free: no_uaf's default retract_page_tables() (an RCU free of its own, on a
# shmem VMA) is left out, on the anonymous VMA of these entries' history.
ZAP_FREES = {"vma": "anon", "retracts": 0}
GUP_ONLY = {**ZAP_FREES, "gup_fast": 1, "walkers": 0, "readers": 0, "faults": 0}

ENTRIES = [
    Entry("k1-semi-rcu-fallback", "K1",
          "718b13861d22 (v6.14, PT_RECLAIM series) made tlb_remove_table_one() call_rcu() the table "
          "instead of IPI-then-free (semi-RCU)",
          NO_UAF, "violated", variants=("semi_rcu_fallback",), settings=ZAP_FREES, check="never use-after-free",
          threads=("zap", "reader"),
          shape=(("zap", "clear_pmd"), ("zap", "tlb_remove_table_sync_one"), ("zap", "tlb_remove_table_now"),
                 ("reader", "ro_read"))),
    Entry("k1-semi-rcu-fallback-gup-fast-only", "K1",
          "the semi-RCU IPI does wait for IRQs-off GUP-fast: why the hazard was latent before reclaim",
          NO_UAF, "holds", variants=("semi_rcu_fallback",), settings=GUP_ONLY),
    Entry("k1-x86-tlb-remove-page", "K1",
          "bare-metal x86 before v6.14 (a37259732a7d later selected MMU_GATHER_RCU_TABLE_FREE "
          "unconditionally): tables freed through the page batch after the IPI TLB flush",
          NO_UAF, "violated", variants=("x86_tlb_remove_page",), settings=ZAP_FREES, check="never use-after-free",
          threads=("zap", "reader"),
          shape=(("zap", "clear_pmd"), ("zap", "tlb_finish_flush"), ("zap", "tlb_batch_pages_flush"),
                 ("reader", "ro_read"))),
    Entry("k1-x86-tlb-remove-page-gup-fast-only", "K1",
          "the IPI flush waits for IRQs-off GUP-fast: pre-v6.14 x86 was safe without reclaim",
          NO_UAF, "holds", variants=("x86_tlb_remove_page",), settings=GUP_ONLY),
    Entry("k1-fixed", "K1",
          "mainline: every table a pte_offset_map() user can reach is freed through call_rcu()",
          NO_UAF, "holds", settings=ZAP_FREES),
]
