"""No PTE page is leaked or freed twice.

When every thread has finished and RCU has run every callback, each PTE page that was
unlinked has been freed exactly once, and every PTE page still allocated is the one the pmd
links (nothing allocated is unreachable): a table handed to the mmu_gather must reach the
page allocator through the batch's or the table's own RCU callback, and an unpublished table
that lost the pmd_install() race must be freed at once. mm->nr_ptes must agree.
"""
from ptmc.kernel.pgtable import allocated_pages
from ptmc.properties import at_end, never

MODEL = "../model/reclaim.py"


def allocated_is_reachable(s):
    """Every allocated PTE page is linked from the pmd, and nr_ptes counts the linked ones."""
    linked = [s.pmd[0]] if s.pmd is not None and s.pmd != "huge" else []
    leaked = [f"pt{p}" for p in allocated_pages(s) if p not in linked]
    if leaked:
        return f"{', '.join(leaked)} allocated but unreachable (leaked)"
    if s.nr_ptes != len(linked):
        return f"mm->nr_ptes is {s.nr_ptes} but {len(linked)} PTE pages are linked"
    return True


CHECKS = [never("double-free"), at_end(allocated_is_reachable, needs=("nr_ptes",))]
