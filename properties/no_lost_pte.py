"""No mapping is lost with a PTE page.

Two ways to lose what a PTE page holds when it is reclaimed. (1) A thread writes an entry into
a PTE page that no pmd links any more: a fault that mapped the table before reclaim unlinked
it, and installs its entry without rechecking pmd_same() under the ptl. The page it maps is
then reachable by no page table walk, and the entry is freed with the table. (2) Reclaim
unlinks a PTE page that still holds an entry that is not none: a mapping, a swap or migration
entry (the data behind it), a uffd-wp marker (userfaultfd's write protection) or a guard
marker (MADV_GUARD_INSTALL's guard region): reclaim must see every entry none under the ptl
(and pml) in the same critical section that clears the pmd, and must leave a table alone when
its zap skipped an entry (any_skipped).

A folio whose mapcount drops below zero was unmapped twice (print_bad_pte()): two threads took
the same entry.

At the end, with every thread finished and RCU idle, each folio's mapcount must match the
present entries and huge pmds that map it in the linked page tables: a mapping that exists
nowhere reachable is a lost one.
"""
from ptmc.kernel.folio import mapcounts_match
from ptmc.kernel.pgtable import linked_mappings
from ptmc.properties import at_end, never

MODEL = "../model/reclaim.py"


def mapcounts_match_entries(s):
    """Every folio's mapcount equals the number of linked entries and huge pmds that map it."""
    return mapcounts_match(s, linked_mappings(s))


CHECKS = [
    never("pte-in-unlinked-table"),
    never("unlink-mapped-table"),
    never("bad-rmap"),
    at_end(mapcounts_match_entries, needs=("mapcount",)),
]
