"""TLB and paging-structure caches (arch/x86/mm/tlb.c), as far as table freeing needs them.

After a pmd is cleared, a CPU may keep walking the old PTE page through its paging-structure
cache until the TLB is flushed; the page must not be freed before that (invariant H of
docs/protocol.md). The model keeps the set of pages unlinked since the last flush.
"""
from ..state import id_set


def tlb_init(layout) -> None:
    layout.cell("tlb_stale", (), shown=lambda v, _: ",".join(f"pt{p}" for p in v) or "none", quiet=True)


def tlb_unlinked(s, page: int) -> None:
    """A PTE page was just unlinked: CPUs may still cache walks through it."""
    if page not in s.tlb_stale:
        s.tlb_stale = id_set(s.tlb_stale + (page,))


def tlb_may_walk(s, page: int) -> bool:
    return page in s.tlb_stale


def flush_tlb_mm_range(s) -> None:
    """Invalidate every CPU's TLB and paging-structure caches for the range."""
    s.tlb_stale = ()
