"""No PTE page is leaked or freed twice.

When every thread has finished and RCU has run every callback, each PTE page that was
unlinked has been freed exactly once, and every PTE page still allocated is one the page
tables reach: linked from a pmd, or deposited with a huge pmd for its split (nothing allocated
is unreachable): a table handed to the mmu_gather must reach the page allocator through the
batch's or the table's own RCU callback, an unpublished table that lost the pmd_install() race
must be freed at once, and a huge pmd's deposited table must be freed when the huge pmd is
zapped. mm->nr_ptes must count exactly the reachable ones.
"""
from ptmc.kernel.pgtable import allocated_pages, reachable_tables
from ptmc.properties import at_end, never

MODEL = "../model/reclaim.py"


def allocated_is_reachable(s):
    """Every allocated PTE page is linked from a pmd or deposited, and nr_ptes counts them."""
    reachable = reachable_tables(s)
    leaked = [f"pt{p}" for p in allocated_pages(s) if p not in reachable]
    if leaked:
        return f"{', '.join(leaked)} allocated but unreachable (leaked)"
    if s.nr_ptes != len(reachable):
        return f"mm->nr_ptes is {s.nr_ptes} but {len(reachable)} PTE pages are linked or deposited"
    return True


CHECKS = [never("double-free"), at_end(allocated_is_reachable, needs=("nr_ptes",))]
