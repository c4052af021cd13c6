"""K5: arm's adjust_pte() takes the ptl of a cache alias while the faulting thread holds its own.

On ARM with a VIVT cache, update_mmu_cache_range() (called with the ptl of the entry just set)
calls make_coherent(), which walks the file's other shared mappings in the same mm and, for each
alias address, maps its table with pte_offset_map_rw_nolock() and takes its ptl, rechecks the
pmd with pmd_same(), makes the entry uncached and flushes it. Whether adjust_pte() may take that
ptl depends on lock identity: with CONFIG_SPLIT_PTE_PTLOCKS off every ptl is
mm->page_table_lock, which the caller already holds; with split ptlocks, an alias inside the same
PMD-aligned range uses the very table, and its ptl, the caller holds.

fc9c45b71f43 ("arm: adjust_pte() use pte_offset_map_rw_nolock()") decided with ``ptl !=
vmf->ptl``, but remove_migration_pte() calls update_mmu_cache() with no vmf (variant
``vmf_ptl_compare``: a NULL pointer dereference). A check that only looks at the configuration
(variant ``lock_if_split``) takes the held ptl again when the alias shares the table. The fix
(Qi Zheng, Feb 2025, protocol.md K5) locks only with split PTE ptlocks and an alias outside the
caller's PMD-aligned range.

One thread, one VMA mapping entry 0 of slot ``pmd``; its alias is entry 1 of the same table
(``alias=same_table``) or entry 0 of slot ``pmd2`` (``alias=other_table``). The race history's
lesson is lock identity, so no second thread is needed: the bugs are a self-deadlock and an oops
on every schedule.
"""
from ptmc import DONE, Model, Param, Thread, Variant, step
from ptmc.kernel.config import config
from ptmc.kernel.pgtable import (PageTables, mm_inc_nr_ptes, pmd_populate, pmd_same, pmdp_get_lockless,
                                 pte_alloc_one, pte_offset_map_nolock, pte_unmap, pte_unmap_unlock,
                                 ptep_get, set_pte_at)
from ptmc.kernel.pte import present, pte_present
from ptmc.kernel.rcu import rcu_init
from ptmc.kernel.spinlock import spin_lock, spin_lock_nested, spin_unlock
from ptmc.kernel.tlb import flush_tlb_range
from ptmc.state import OOPS, Stop


class FinishFault(Thread):
    """finish_fault() on a MAP_SHARED file page, then update_mmu_cache_range() -> make_coherent()
    -> adjust_pte() on the one alias."""

    pmdval: object = None
    ptl: object = None
    alias_pmdval: object = None
    alias_ptl: object = None
    locked: bool = False  # adjust_pte() took the alias's ptl

    def __init__(self, name, alias_slot, alias_entry, vmf: bool):
        super().__init__(name)
        self.alias_slot, self.alias_entry, self.vmf = alias_slot, alias_entry, vmf

    @step("mm/memory.c:finish_fault")
    def map(self, s):
        self.pmdval, self.ptl = pte_offset_map_nolock(s, "pmd")  # pte_offset_map_lock(), the map

    @step("mm/memory.c:finish_fault")
    def lock(self, s):
        spin_lock(s, self.ptl)  # (nobody else changes the pmd here: no pmd_same() retry needed)

    @step("mm/memory.c:set_pte_range")
    def set_pte(self, s):
        set_pte_at(s, self.pmdval, 0, present(1))

    @step("arch/arm/mm/fault-armv.c:adjust_pte")
    def adjust_map(self, s):
        # make_coherent() found the alias under flush_dcache_mmap_lock(); pte_offset_map_rw_nolock()
        self.alias_pmdval, self.alias_ptl = pte_offset_map_nolock(s, self.alias_slot)
        if self.alias_ptl is None:
            return "unlock"  # no table there: nothing to adjust

    @step("arch/arm/mm/fault-armv.c:adjust_pte")
    def adjust_lock(self, s):
        model = s.model
        if model.vmf_ptl_compare:
            if not self.vmf:  # remove_migration_pte(): update_mmu_cache(vma, addr, ptep), vmf == NULL
                s.report("null-deref", f"{s.actor} reads vmf->ptl with vmf NULL")
                raise Stop(OOPS)
            need = self.alias_ptl != self.ptl
        elif model.lock_if_split:
            need = config(s).split_pte_ptlocks
        else:  # the fix: the same PMD-aligned range is the caller's table, its ptl held already
            need = config(s).split_pte_ptlocks and self.alias_slot != "pmd"
        if need:
            spin_lock_nested(s, self.alias_ptl)  # SINGLE_DEPTH_NESTING
            self.locked = True

    @step("arch/arm/mm/fault-armv.c:adjust_pte")
    def adjust_recheck(self, s):
        if not pmd_same(self.alias_pmdval, pmdp_get_lockless(s, self.alias_slot)):
            return "adjust_unlock"

    @step("arch/arm/mm/fault-armv.c:do_adjust_pte")
    def do_adjust_pte(self, s):
        pte = ptep_get(s, self.alias_pmdval, self.alias_entry)
        if pte_present(pte):  # shared: make it uncached (the model's entries carry no cache bits)
            set_pte_at(s, self.alias_pmdval, self.alias_entry, pte)
            flush_tlb_range(s, 0, 1)  # flush_tlb_page()

    @step("arch/arm/mm/fault-armv.c:adjust_pte")
    def adjust_unlock(self, s):
        if self.locked:
            spin_unlock(s, self.alias_ptl)
        pte_unmap(s)

    @step("mm/memory.c:finish_fault")
    def unlock(self, s):
        pte_unmap_unlock(s, self.ptl)
        return DONE


class AdjustPte(Model):
    """arm adjust_pte(): lock identity between a fault's ptl and its cache alias's (K5)."""

    EVENTS = {"null-deref": "a NULL pointer dereference (the kernel oopses)"}

    alias = Param("same_table", "where the alias lies: same_table (entry 1 of the faulting table) or "
                  "other_table (another PMD range)", choices=("same_table", "other_table"))
    caller = Param("fault", "who calls update_mmu_cache(): fault (finish_fault(), with a vmf) or migration "
                   "(remove_migration_pte(), vmf NULL)", choices=("fault", "migration"))

    vmf_ptl_compare = Variant("fc9c45b71f43: lock the alias's ptl when it is not vmf->ptl")
    lock_if_split = Variant("lock the alias's ptl whenever PTE ptlocks are split")

    def init(self, mem):
        slots = ("pmd",) if self.alias == "same_table" else ("pmd", "pmd2")
        PageTables(mem, pages=len(slots), entries=2, slots=slots)
        rcu_init(mem)
        for slot in slots:
            table = pte_alloc_one(mem)
            if self.alias == "same_table" or slot == "pmd2":
                set_pte_at(mem, table, 1 if slot == "pmd" else 0, present(2))  # the alias maps the page
            mm_inc_nr_ptes(mem)
            pmd_populate(mem, table, slot)

    def threads(self):
        slot, entry = ("pmd", 1) if self.alias == "same_table" else ("pmd2", 0)
        return [FinishFault("fault", slot, entry, vmf=self.caller == "fault")]
