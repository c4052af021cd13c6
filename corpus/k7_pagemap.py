"""K7: the pagemap walk of a range munmap detached, while munmap freed its tables.

protocol.md section 4, K7 (the pagemap UAF Jann Horn cites from Project Zero in the
process_addrs.rst review; commit not verified here). munmap detaches the VMAs under the mmap write
lock, downgrades it to read (vms_complete_munmap_vmas()) and frees the page tables with
free_pte_range()'s lockless pmd_clear(): that is safe only because every mmap_lock reader that
comes after the downgrade looks the VMA up and misses it. A page-table walk that walked the range
without its VMA (and, as every walker before 2023, mapped the table without RCU) read a table
munmap freed under its downgraded read lock. Today walk_page_range() reports the range as a hole
(find_vma() misses it) and walks no page table. The historical code is the walker without both
guards, walk_vma_lookup and pte_offset_map_rcu; without the lookup alone the walk is safe today,
because RCU keeps the freed table's memory until pte_unmap().
"""
from ptmc.regress import Entry

NO_UAF = "../properties/no_uaf.py"
MUNMAP_AND_PAGEMAP = {"vma": "anon", "retracts": 0, "munmaps": 1, "pagemap_walkers": 1, "zaps": 0, "faults": 0, "walkers": 0, "readers": 0}

ENTRIES = [
    Entry("k7-pagemap-detached-walk", "K7",
          "walk_page_range() walking the page tables of a range with no VMA while munmap frees them "
          "under its downgraded mmap read lock, mapping it without RCU (pagemap, Project Zero; fixed: the "
          "walk finds a hole)",
          NO_UAF, "violated", without=("walk_vma_lookup", "pte_offset_map_rcu"), settings=MUNMAP_AND_PAGEMAP,
          check="never use-after-free", threads=("munmap", "pagemap_walker", "rcu"),
          shape=(("munmap", "vma_mark_detached"), ("munmap", "mmap_write_downgrade"),
                 ("pagemap_walker", "walk_pmd_nolock"), ("munmap", "free_pte_range"), ("rcu", "rcu_do_batch"),
                 ("pagemap_walker", "walk_lock_nolock"))),
    Entry("k7-detached-walk-under-rcu", "K7",
          "the same walk of a detached range, but with today's RCU pte_offset_map(): no use-after-free",
          NO_UAF, "holds", without=("walk_vma_lookup",), settings=MUNMAP_AND_PAGEMAP),
    Entry("k7-fixed", "K7",
          "mainline: walk_page_range_mm() looks the VMA up under the lock; a detached range is a hole",
          NO_UAF, "holds", settings=MUNMAP_AND_PAGEMAP),
]
