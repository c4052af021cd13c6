"""The rechecks PT_RECLAIM relies on, each switched off (guard ablations of the merged code).

Not races of the public history, but the invariants section 2 of protocol.md states (I2, I3):
without them the merged protocol loses mappings. They sit in the corpus so that `ptmc regress`
keeps the counterexample each recheck exists for.
"""
from ptmc.regress import Entry

NO_LOST_PTE = "../properties/no_lost_pte.py"

ENTRIES = [
    Entry("i2-without-pmd-same-recheck", "I2",
          "__pte_offset_map_lock()'s pmd_same() under the ptl (Hugh Dickins 2023, 'mm/pgtable: allow "
          "pte_offset_map[_lock]() to fail'): a fault maps a table reclaim unlinks meanwhile",
          NO_LOST_PTE, "violated", without=("pmd_same_recheck",), check="never pte-in-unlinked-table",
          threads=("zap", "fault"),
          shape=(("fault", "map_pmd"), ("zap", "clear_pmd"), ("fault", "map_spin_lock"), ("fault", "anon_set_pte"))),
    Entry("i3-without-slow-path-recheck", "I3",
          "try_to_free_pte() rechecks every entry under pml and the ptl (6375e95f381e): the ptl was "
          "dropped since the scan",
          NO_LOST_PTE, "violated", without=("slow_path_recheck",), check="never unlink-mapped-table",
          threads=("zap", "fault"), shape=(("zap", "try_to_free_pte"), ("zap", "slow_clear_pmd"))),
]
