"""K4: mremap's move_normal_pmd() against retract_page_tables() (protocol.md section 4, K4).

mremap holds the mmap write lock and write-locks the VMA, which excludes every actor that takes
mmap_lock; retract_page_tables() takes none (i_mmap_rwsem for read only). So between
move_normal_pmd()'s lockless look at the old pmd (get_old_pmd()) and its locks, retract can clear
that pmd and free the table. Before the fix, move_normal_pmd() then read the none pmd under both
pmls and populated the new pmd with it: on x86 physical page 0 used as a page table.
"""
from ptmc.regress import Entry

SETTINGS = {"vma": "shmem", "mremaps": 1, "retracts": 1, "zaps": 0, "faults": 0, "walkers": 0, "readers": 0}

ENTRIES = [
    Entry("k4-mremap-vs-retract", "K4",
          "Jann Horn, Oct 2024 (Fixes 1d65b771bc08; mainline hash believed 6fa1066fc5d0, unverified): "
          "move_normal_pmd() rechecks the old pmd under the pmls",
          "../properties/no_uaf.py", "violated", without=("move_normal_pmd_recheck",), settings=SETTINGS,
          check="never use-after-free", threads=("mremap", "retract"),
          shape=(("mremap", "get_old_pmd"), ("retract", "retract_collapse"), ("mremap", "mnp_populate"))),
    Entry("k4-fixed", "K4", "mainline: the recheck finds the pmd none and moves nothing",
          "../properties/no_uaf.py", "holds", settings=SETTINGS),
]
