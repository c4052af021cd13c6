"""UFFDIO_MOVE's destination pmd recheck, which reclaim makes necessary.

move_pages_pte() maps the destination table with pte_offset_map_rw_nolock() and requires the
destination entry to be none: a pte_same() against a none entry cannot tell that the table was
unlinked meanwhile, and PT_RECLAIM unlinks exactly the tables whose entries are all none. So
is_pte_pages_stable() also rechecks pmd_same() of the destination pmd under both ptls (added with
the pte_offset_map_rw_nolock() conversion, Qi Zheng, v6.13, ahead of PT_RECLAIM; hash not verified
here). Without it the move writes its entry into a table no pmd links: a lost mapping, not a
use-after-free (RCU keeps the memory).
"""
from ptmc.regress import Entry

NO_LOST_PTE = "../properties/no_lost_pte.py"
MOVE = {"uffd": "wp", "uffd_moves": 1, "walkers": 0, "readers": 0}

ENTRIES = [
    Entry("uffd-move-without-dst-pmd-same", "I2",
          "is_pte_pages_stable()'s pmd_same() of the destination (the pte_offset_map_rw_nolock() rule): "
          "a move into a table reclaim unlinks meanwhile",
          NO_LOST_PTE, "violated", without=("move_dst_pmd_same",), settings=MOVE,
          check="never pte-in-unlinked-table", threads=("zap", "uffd_move"),
          shape=(("uffd_move", "move_map_dst"), ("zap", "clear_pmd"), ("uffd_move", "move_stable"),
                 ("uffd_move", "move_set_dst"))),
    Entry("uffd-move-fixed", "I2", "mainline move_pages_pte() against reclaim and a fault",
          NO_LOST_PTE, "holds", settings=MOVE),
]
