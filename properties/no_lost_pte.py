"""No mapping is lost with a PTE page.

Two ways to lose a mapping when PTE pages are reclaimed. (1) A thread writes an entry into a
PTE page that the pmd no longer links: a fault that mapped the table before reclaim unlinked
it, and installs its entry without rechecking pmd_same() under the ptl. The page it maps is
then reachable by no page table walk, and the entry is freed with the table. (2) Reclaim
unlinks a PTE page that still has a present entry: reclaim must see every entry none under
the ptl (and pml) in the same critical section that clears the pmd.

At the end, with every thread finished and RCU idle, each data page's mapcount must match the
present entries that map it in the linked table: a mapping that exists nowhere reachable is a
lost one.
"""
from ptmc.kernel.pgtable import linked_entries
from ptmc.properties import at_end, never

MODEL = "../model/reclaim.py"


def mapcounts_match_entries(s):
    """Every data page's mapcount equals the number of linked entries that map it."""
    mapped = [pte[0] for pte in linked_entries(s) if pte is not None]
    for name, slot in s.layout.index.items():
        if name.endswith(".mapcount"):
            page = int(name[1:].split(".")[0])
            if s.v[slot] != mapped.count(page):
                return f"d{page} has mapcount {s.v[slot]} but {mapped.count(page)} linked entries map it"
    return True


CHECKS = [
    never("pte-in-unlinked-table"),
    never("unlink-mapped-table"),
    at_end(mapcounts_match_entries, needs=("mapcount",)),
]
