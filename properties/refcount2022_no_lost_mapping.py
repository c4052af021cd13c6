"""free_ptes never takes a mapping with the PTE page it frees.

A PTE page that the pmd no longer links (free_ptes cleared it and is about to free it) holds
no entry mapping a data page: only none entries, or entries mapping the shared zero page,
which a later read fault maps again. An entry mapping a data page would be lost with the
page: the process's memory silently disappears, the data page leaks with a mapcount nobody
will drop, and under CONFIG_DEBUG_VM the RFC's pte_free_debug() BUG()s. The decision to free
rests on pte_refcount alone, so this holds only as long as the counts are exact (see
refcount2022_exact.py).
"""
from ptmc.kernel.pgtable import ZERO_PAGE, allocated_pages, pmd_table, ptrs_per_pte
from ptmc.properties import invariant

MODEL = "../model/refcount2022.py"


def no_mapping_in_unlinked_table(s):
    """An allocated PTE page the pmd does not link maps no data page."""
    linked = s.pmd[0] if pmd_table(s.pmd) else None
    for page in allocated_pages(s):
        if page == linked:
            continue
        lost = [f"e{i}={pte}" for i in range(ptrs_per_pte(s))
                if (pte := s.load(f"pt{page}.e{i}")) is not None and pte[0] != ZERO_PAGE]
        if lost:
            return f"pt{page} is unlinked from the pmd but still maps {', '.join(lost)}: the mapping is lost"
    return True


CHECKS = [invariant(no_mapping_in_unlinked_table)]
