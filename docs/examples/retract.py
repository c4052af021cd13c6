"""khugepaged retracting an empty PTE table, against a lockless reader (docs/authoring.md).

retract_page_tables() (mm/khugepaged.c) takes the pmd lock, clears the pmd of a PTE table that
maps nothing and flushes the TLB (pmdp_collapse_flush()), and hands the table to
pte_free_defer(), which frees it after an RCU grace period. A reader finds the table with
pte_offset_map(), an RCU read-side section, and reads an entry: the grace period is what keeps
the table's memory alive under it. Variant ``free_at_once``: the table is freed right after the
flush, as retraction did before the RCU rework of 2023, when every walker was excluded by locks.
"""
from ptmc import DONE, Model, Param, Thread, Variant, numbered, step
from ptmc.kernel.pgtable import (PageTables, mm_dec_nr_ptes, mm_inc_nr_ptes, pmd_clear, pmd_lockptr,
                                 pmd_populate, pte_alloc_one, pte_free, pte_offset_map_nolock,
                                 ptep_get)
from ptmc.kernel.rcu import RcuCallbacks, call_rcu, rcu_init, rcu_read_unlock
from ptmc.kernel.spinlock import spin_lock, spin_unlock
from ptmc.kernel.tlb import flush_tlb_mm_range
from ptmc.properties import reachable


def pte_free_now(s, table):
    """mm/pgtable-generic.c:pte_free_now: the RCU callback pte_free_defer() queues."""
    pte_free(s, table)


class Retract(Thread):
    """retract_page_tables() for one VMA: under the pmd lock, unlink and flush; free deferred."""

    table: object = None  # the table unlinked, to be freed

    @step("mm/khugepaged.c:retract_page_tables")
    def lock_pml(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def collapse(self, s):
        self.table = pmd_clear(s)

    @step("mm/pgtable-generic.c:pmdp_collapse_flush")
    def flush(self, s):
        flush_tlb_mm_range(s)  # synchronous: no CPU's paging-structure cache still walks it

    @step("mm/khugepaged.c:retract_page_tables")
    def unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s))
        mm_dec_nr_ptes(s)

    @step("mm/pgtable-generic.c:pte_free_defer")
    def free(self, s):
        if self.model.free_at_once:
            pte_free(s, self.table)  # a reader that mapped the table before the clear still uses it
        else:
            call_rcu(s, self.table.field("rcu_head"), pte_free_now, self.table)
        return DONE


class Reader(Thread):
    """A pte_offset_map() user: map the table under RCU, read entry 0, unmap."""

    pmdval: object = None

    @step("mm/pgtable-generic.c:__pte_offset_map")
    def map(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s)  # rcu_read_lock(), then one read of the pmd
        if ptl is None:
            return DONE  # no table: nothing to read

    @step("mm/pagewalk.c:walk_pte_range")
    def read(self, s):
        ptep_get(s, self.pmdval, 0)
        rcu_read_unlock(s)  # pte_unmap()
        return DONE


def reads_a_retracted_table(before, after) -> bool:
    """A reader reads its entry after khugepaged cleared the pmd: the race RCU must survive."""
    return before.pmd is None and any(r.pc == "read" and after.thread(r.name).pc == "done"
                                      for r in before.threads("reader"))


class Retraction(Model):
    """retract_page_tables() against pte_offset_map() readers."""

    readers = Param(1, "pte_offset_map() readers")
    free_at_once = Variant("free the table right after the TLB flush, without a grace period")
    maintains = ("nr_ptes",)

    def init(self, mem):
        PageTables(mem, pages=1, entries=1, rcu_head=True)
        rcu_init(mem)
        table = pte_alloc_one(mem)  # an empty table, linked: what retraction finds
        mm_inc_nr_ptes(mem)
        pmd_populate(mem, table)

    def threads(self):
        return [Retract("khugepaged"), *(Reader(n) for n in numbered("reader", self.readers)),
                RcuCallbacks()]

    def witnesses(self):
        out = [reachable(reads_a_retracted_table)] if self.readers else []
        if not self.free_at_once:
            out.append(reachable("rcu.rcu_do_batch", "the grace period ends and the table is freed"))
        return out
