"""pte_refcount is exact: its two counts are the page's mapped and zero-page entries.

For every allocated PTE page of the 2022 RFC model, pte_mapped_count() equals the number of
non-none entries and pte_zero_count() the number of entries mapping the shared zero page,
apart from entries a zap has cleared and not yet accounted (only the refcount_outside_ptl
variant has those, between its pte_unmap_unlock() and its pte_refcount_sub()). free_ptes
trusts these counts to decide that a page is empty or all-zero-page without looking at it; a
lost update makes it free a page that still maps something, or never free an empty one.

The counting invariant is the model's own (PerTable in model/refcount2022.py). Exploration
checks it in every reachable state of the small instance; the obligation has z3 prove it
inductive from the steps' declared effects for any PTRS_PER_PTE and any number of threads.
"""
from ptmc.smt import counting_invariant, inductive

MODEL = "../model/refcount2022.py"

CHECKS = [counting_invariant("pte_refcount exact",
                             "pte_mapped_count()/pte_zero_count() of every allocated PTE page equal "
                             "its non-none/zero-page entries, plus entries cleared but not yet accounted")]

OBLIGATIONS = [inductive()]
