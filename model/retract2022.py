"""Table retraction under the page-table rules before 2023 (protocol.md K3): collapse_pte_mapped_thp()
against an rmap walker, with the locks of v6.0.

Until Hugh Dickins' 2023 rework a page-table walk of a VMA's range held any one of the mmap lock,
the anon_vma lock or the file's i_mmap_rwsem, in shared mode, and relied on no pmd pointing to a
table changing under it: pte_offset_map() was a kmap, no RCU reader, and page_vma_mapped_walk()'s
map_pte() took the ptl of the pmd it had read without rechecking it. collapse_pte_mapped_thp()
held the mmap lock for write, scanned the table under the ptl, dropped the folio's rmap, and
freed the table in collapse_and_free_pmd(): pml, pmdp_collapse_flush(), pte_free() at once. An
rmap walker holding i_mmap_rwsem for read (reclaim's try_to_unmap() of an old page cache folio of
the range, which walks the VMA at that address whether or not the folio is still mapped there)
could map the table before the pmd was cleared and use it after the free. Variant
``i_mmap_write``: Jann Horn's 8d3c106e19e8 ("mm/khugepaged: take the right locks for page table
retraction", v6.1): the collapse also takes i_mmap_rwsem for write.

Steps and threads are the reclaim model's (model/reclaim.py, src/ptmc/actors), with
``pre_2023_retraction``; the zap, fault and walkers take no mmap_lock there, which the old collapse
held for write, so this model runs only the collapse and the rmap walker.
"""
from ptmc import Param, Variant
from ptmc.errors import PtmcError
from ptmc.model import load_module
from pathlib import Path

Reclaim = load_module(Path(__file__).with_name("reclaim.py"), "model").Reclaim


class Retract2022(Reclaim):
    """collapse_pte_mapped_thp() under mmap_lock write + pml, pte_free() at once (v6.0), against an
    i_mmap_rwsem reader's rmap walk without RCU or pmd_same()."""

    zaps = Param(0, "madvise(MADV_DONTNEED) threads: none (they would need mmap_lock, see the docstring)")
    faults = Param(0, "faults: none (they would need mmap_lock)")
    walkers = Param(0, "pte_offset_map_lock() walkers: none (they would need mmap_lock)")
    readers = Param(0, "pte_offset_map_ro_nolock() readers: none (they would need mmap_lock)")
    vma = Param("shmem", "the VMA: a MAP_SHARED shmem file (collapse_pte_mapped_thp() is file THP)",
                choices=("anon", "shmem"))
    collapses = Param(1, "collapse_pte_mapped_thp() threads")
    rmap_walkers = Param(1, "try_to_unmap() rmap walkers of an old folio of the last index")
    install_pmd = Param(False, "collapse_pte_mapped_thp() installs the huge pmd after the retraction")
    retracts = 0  # no retract_page_tables() here: the old collapse is the only retraction (not a parameter)

    pre_2023_retraction = True
    i_mmap_write = Variant("8d3c106e19e8 (v6.1): collapse_pte_mapped_thp() also holds i_mmap_rwsem for write, "
                           "so no file rmap walker is inside the table it frees")

    @classmethod
    def params(cls) -> dict:
        """Reclaim's parameters but ``retracts``: the 2022 code under this model has no
        retract_page_tables() thread, so a property's ``retracts`` default does not apply here."""
        return {n: p for n, p in super().params().items() if n != "retracts"}

    def _refuse(self) -> None:
        super()._refuse()
        if self.zaps or self.faults or self.walkers or self.readers or self.gup_fast:
            raise PtmcError("retract2022: only the collapse and rmap walkers: the other actors take no mmap_lock "
                            "here, which the old collapse held for write (zaps=faults=walkers=readers=0)")
