"""K2: GUP-fast against khugepaged's anonymous collapse (protocol.md section 4, K2).

collapse_huge_page() clears the pmd (pmdp_collapse_flush()), then checks that no page of the
table has a reference its mappings do not explain (__collapse_huge_page_isolate()), copies the
pages into a THP, releases them and installs the huge pmd. GUP-fast walks with IRQs disabled
and no lock: it may have read the pmd before the clear and grab a page after the check. Before
70cbc3cc78a9 it rechecked only the entry after the grab, and the entry is still there until the
copy clears it, so GUP-fast returned a pinned page that the collapse then replaced: the
caller's writes are lost (properties/gup_stable.py). On x86 the TLB flush of
pmdp_collapse_flush() is an IPI, which an IRQs-off GUP-fast holds off until it has finished,
so the check always saw the pin: the race needs a flush that interrupts nobody (arm64, later
AMD INVLPGB). Two fixes close it, each on its own: the pmd recheck after the grab (70cbc3cc78a9,
Yang Shi, Sept 2022), and tlb_remove_table_sync_one() after the flush (2ba99c5e0881, Jann Horn,
Nov 2022: an IPI to every CPU with MMU_GATHER_RCU_TABLE_FREE, whatever the TLB flush is).
The historical code is the guard ablation of both (``--without gup_fast_pmd_recheck --without
collapse_table_sync``).
"""
from ptmc.regress import Entry

GUP_STABLE = "../properties/gup_stable.py"
ALONE = {"gup_fast": 1, "anon_collapses": 1, "zaps": 0, "faults": 0,
         "walkers": 0, "readers": 0}
BROADCAST = {**ALONE, "tlb_flush": "broadcast"}
HISTORICAL = ("gup_fast_pmd_recheck", "collapse_table_sync")

ENTRIES = [
    Entry("k2-gup-fast-no-pmd-recheck", "K2",
          "70cbc3cc78a9 (v6.0) made gup_fast_pte_range() recheck the pmd after the grab: a collapse with a "
          "flush that sends no IPI clears the pmd, passes its refcount check, and replaces the page GUP pins",
          GUP_STABLE, "violated", without=HISTORICAL, settings=BROADCAST, check="never gup-stale-page",
          threads=("anon_collapse", "gup_fast"),
          shape=(("gup_fast", "gup_fast_pmd"), ("anon_collapse", "collapse_pmd_clear"), ("anon_collapse", "collapse_flush"),
                 ("anon_collapse", "collapse_isolate"), ("gup_fast", "gup_fast_grab"), ("gup_fast", "gup_fast_recheck_pte"),
                 ("anon_collapse", "collapse_copy"), ("gup_fast", "gup_fast_done"))),
    Entry("k2-ipi-flush-latent", "K2",
          "the same code with x86's IPI TLB flush holds: pmdp_collapse_flush() waits for the IRQs-off GUP-fast, "
          "whose pin the refcount check then sees (why the race stayed latent on x86)",
          GUP_STABLE, "holds", without=HISTORICAL, settings={**ALONE, "tlb_flush": "ipi"}),
    Entry("k2-pmd-recheck-alone", "K2",
          "70cbc3cc78a9 alone: GUP-fast sees the cleared pmd after its grab and backs off",
          GUP_STABLE, "holds", without=("collapse_table_sync",), settings=BROADCAST),
    Entry("k2-table-sync-alone", "K2",
          "2ba99c5e0881 alone: tlb_remove_table_sync_one() waits for the IRQs-off GUP-fast before the refcount "
          "check, which then sees its pin",
          GUP_STABLE, "holds", without=("gup_fast_pmd_recheck",), settings=BROADCAST),
    Entry("k2-fixed", "K2",
          "mainline, broadcast flush: both fixes, with zap and fault racing too",
          GUP_STABLE, "holds", settings={**BROADCAST, "zaps": 1, "faults": 1}),
]
