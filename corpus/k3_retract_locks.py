"""K3: a table retracted under locks that do not exclude the rmap walkers.

protocol.md section 4, K3. Before 2023, page-table walks of a VMA's range could hold any one of
the mmap lock, the anon_vma lock or the file's i_mmap_rwsem, in shared mode, and relied on the
rule that no pmd pointing to a table changes under them: pte_offset_map() was a kmap, no RCU
reader, and page_vma_mapped_walk()'s map_pte() took the ptl of the pmd it had read without
rechecking it. collapse_pte_mapped_thp() retracted the table of a pte-mapped file THP holding only
the mmap lock for write and pml (collapse_and_free_pmd(): pmdp_collapse_flush(), then pte_free() at
once). An rmap walker holding i_mmap_rwsem for read (here reclaim's try_to_unmap() of an old page
cache folio of the range, which walks the VMA at that address whether or not the folio is still
mapped there) mapped the table before the collapse cleared the pmd and used it after the free.

Jann Horn's 8d3c106e19e8 ("mm/khugepaged: take the right locks for page table retraction", v6.1,
Cc stable) made the retraction hold every lock a walker may hold: i_mmap_rwsem for write (and
the anon_vma lock, or refuse VMAs with one). Hugh Dickins' 1d65b771bc08 ("mm/khugepaged:
retract_page_tables() without mmap or vma lock", v6.6) replaced that rule: walkers map tables
under RCU and recheck pmd_same() under the ptl, so retract_page_tables() runs with i_mmap_rwsem
for read only, and collapse_pte_mapped_thp() with mmap_lock for read, both freeing the table
through pte_free_defer() (RCU). The mainline entries check that against zap, fault and the rmap
walker together.
"""
from ptmc.regress import Entry

NO_UAF = "../properties/no_uaf.py"
OLD = "../model/retract2022.py"
MAINLINE = {"rmap_walkers": 1, "vma": "shmem", "walkers": 0, "readers": 0}

ENTRIES = [
    Entry("k3-collapse-mmap-write-lock-only", "K3",
          "before 8d3c106e19e8 (v6.1): collapse_pte_mapped_thp() frees the table under mmap_lock write + pml "
          "alone (pte_free() at once) while an i_mmap_rwsem reader's rmap walk (no RCU, no pmd_same()) uses it",
          NO_UAF, "violated", model=OLD, check="never use-after-free",
          threads=("rmap", "collapse"),
          shape=(("rmap", "rmap_walk"), ("rmap", "map_pte"), ("collapse", "collapse_and_free_pmd"),
                 ("collapse", "old_collapse_flush"), ("collapse", "old_unlock_and_free"), ("rmap", "map_pte_read"))),
    Entry("k3-collapse-i-mmap-write", "K3",
          "8d3c106e19e8: the retraction also holds i_mmap_rwsem for write, so no file rmap walker is inside",
          NO_UAF, "holds", model=OLD, variants=("i_mmap_write",)),
    Entry("k3-fixed-collapse", "K3",
          "1d65b771bc08 and later: collapse_pte_mapped_thp() under mmap_lock read, pml + ptl + pmd_same(), "
          "pte_free_defer(); walkers under RCU recheck pmd_same(); with zap and fault",
          NO_UAF, "holds", settings={**MAINLINE, "collapses": 1, "retracts": 0}),
    Entry("k3-fixed-retract", "K3",
          "1d65b771bc08 and later: retract_page_tables() under i_mmap_rwsem read, pml, nested ptl, "
          "pte_free_defer(); with zap, fault and the rmap walker",
          NO_UAF, "holds", settings={**MAINLINE, "retracts": 1}),
]
