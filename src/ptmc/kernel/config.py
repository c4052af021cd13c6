"""The kernel configuration every model runs under (the Kconfig symbols the protocol depends on).

Every model gets these parameters without declaring them (``Model.params()`` adds them), and
primitives read them from ``s.model.config``: ``pte_lockptr()`` returns the split lock inside a
PTE page or ``mm->page_table_lock``, the mmu_gather hands tables to RCU or frees them after the
flush, a TLB flush waits for IRQs-off CPUs or not. Combinations the kernel's Kconfig does not
allow are refused with one line, so no run explores a kernel that cannot be built.

    split_pte_ptlocks          CONFIG_SPLIT_PTE_PTLOCKS (mm/Kconfig: NR_CPUS >= 4 on most
                               architectures): each PTE page carries its own ptl; otherwise every
                               pte_lockptr() is &mm->page_table_lock
    split_pmd_ptlocks          CONFIG_SPLIT_PMD_PTLOCKS (depends on SPLIT_PTE_PTLOCKS and
                               ARCH_ENABLE_SPLIT_PMD_PTLOCK: x86_64, arm64, ...): each PMD table
                               carries its own pml; otherwise pmd_lockptr() is &mm->page_table_lock
    mmu_gather_rcu_table_free  CONFIG_MMU_GATHER_RCU_TABLE_FREE: page tables freed by an
                               mmu_gather go through call_rcu(); otherwise they are freed right
                               after the TLB flush (tlb_remove_page()), which only an IPI flush
                               makes safe against GUP-fast
    tlb_flush                  ipi: a flush completes once every other CPU has taken the IPI, so
                               a CPU with IRQs disabled holds it off (x86 native); broadcast: the
                               hardware invalidates without interrupting anyone (arm64 TLBI,
                               AMD INVLPGB), so nothing waits
    preempt_rcu                CONFIG_PREEMPT_RCU: rcu_read_lock() does not disable preemption and
                               a reader may be preempted. No model here behaves differently under
                               it: ptmc already lets a reader stay in its section for any number of
                               other threads' steps, which is all preemption adds, and a sleeping
                               lock taken inside a reader is a bug either way (might_sleep() names
                               a different check: see ptmc.kernel.sched)
    pt_reclaim                 CONFIG_PT_RECLAIM (v6.14): MADV_DONTNEED reclaims empty PTE pages,
                               and tlb_remove_table_one() frees a single table through call_rcu()
                               (selects MMU_GATHER_RCU_TABLE_FREE)

``split_ptlocks`` is the older name for the lock configuration: false is
split_pte_ptlocks=false (and so split_pmd_ptlocks=false), true both split.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import PtmcError
from ..model import Param

PARAMS = {
    "split_ptlocks": Param(True, "alias: false sets split_pte_ptlocks=false (ptl == pml == "
                                 "mm->page_table_lock); true, the default, splits both"),
    "split_pte_ptlocks": Param(True, "CONFIG_SPLIT_PTE_PTLOCKS: a ptl in each PTE page; false: every "
                                     "ptl is mm->page_table_lock"),
    "split_pmd_ptlocks": Param(True, "CONFIG_SPLIT_PMD_PTLOCKS (needs split PTE ptlocks): a pml in each "
                                     "PMD table; false: the pml is mm->page_table_lock"),
    "mmu_gather_rcu_table_free": Param(True, "CONFIG_MMU_GATHER_RCU_TABLE_FREE: gathered page tables are "
                                             "freed through call_rcu(); false: right after the TLB flush"),
    "tlb_flush": Param("ipi", "ipi: a TLB flush waits for every CPU with IRQs on to take the IPI (an "
                              "IRQs-off CPU holds it off; x86 native); broadcast: it waits for nobody "
                              "(arm64, AMD INVLPGB)", choices=("ipi", "broadcast")),
    "preempt_rcu": Param(True, "CONFIG_PREEMPT_RCU: readers are preemptible; false: rcu_read_lock() "
                               "disables preemption (no model behaves differently: see ptmc.kernel.config)"),
    "pt_reclaim": Param(True, "CONFIG_PT_RECLAIM (v6.14): MADV_DONTNEED frees empty PTE pages; a single "
                              "table's fallback free is call_rcu() (selects MMU_GATHER_RCU_TABLE_FREE)"),
}

ALIAS = "split_ptlocks"


@dataclass(frozen=True)
class Config:
    split_pte_ptlocks: bool = True
    split_pmd_ptlocks: bool = True
    mmu_gather_rcu_table_free: bool = True
    tlb_flush: str = "ipi"
    preempt_rcu: bool = True
    pt_reclaim: bool = True

    @classmethod
    def from_params(cls, values: dict, explicit=()) -> "Config":
        """The configuration from parsed parameter values; ``explicit``: the names the user set
        (so that the alias and the symbols it stands for can be checked against each other)."""
        given = {f.name: values[f.name] for f in fields(cls)}
        if ALIAS in explicit:
            split = values[ALIAS]
            for name in ("split_pte_ptlocks", "split_pmd_ptlocks"):
                if name in explicit and values[name] != split and not (name == "split_pmd_ptlocks" and split):
                    raise PtmcError(f"split_ptlocks={_show(split)} contradicts {name}={_show(values[name])}: "
                                    "set one of them")
            if not split:
                given["split_pte_ptlocks"] = given["split_pmd_ptlocks"] = False
            elif "split_pte_ptlocks" not in explicit:
                given["split_pte_ptlocks"] = True
        elif "split_pte_ptlocks" in explicit and not values["split_pte_ptlocks"] \
                and "split_pmd_ptlocks" not in explicit:
            given["split_pmd_ptlocks"] = False  # the default follows what it depends on
        config = cls(**given)
        config.check()
        return config

    def check(self) -> None:
        """Refuse what mm/Kconfig and the architectures' Kconfig cannot produce."""
        if self.split_pmd_ptlocks and not self.split_pte_ptlocks:
            raise PtmcError("split_pmd_ptlocks=true needs split_pte_ptlocks=true "
                            "(CONFIG_SPLIT_PMD_PTLOCKS depends on SPLIT_PTE_PTLOCKS)")
        if self.pt_reclaim and not self.mmu_gather_rcu_table_free:
            raise PtmcError("pt_reclaim=true needs mmu_gather_rcu_table_free=true "
                            "(CONFIG_PT_RECLAIM selects MMU_GATHER_RCU_TABLE_FREE)")
        if self.tlb_flush == "broadcast" and not self.mmu_gather_rcu_table_free:
            raise PtmcError("tlb_flush=broadcast needs mmu_gather_rcu_table_free=true (an architecture "
                            "whose TLB flush sends no IPI selects MMU_GATHER_RCU_TABLE_FREE, or GUP-fast "
                            "would walk freed tables)")

    def values(self) -> dict:
        """As parameter values, the alias included (true when PTE ptlocks are split)."""
        return {ALIAS: self.split_pte_ptlocks, **{f.name: getattr(self, f.name) for f in fields(self)}}


def _show(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def allowed() -> list[dict]:
    """Every configuration the kernel allows, as parameter settings (for the configuration
    matrix: mainline must hold in each)."""
    out = []
    for pte in (True, False):
        for pmd in (True, False):
            for rcu in (True, False):
                for flush in ("ipi", "broadcast"):
                    for preempt in (True, False):
                        for reclaim in (True, False):
                            c = dict(split_pte_ptlocks=pte, split_pmd_ptlocks=pmd,
                                     mmu_gather_rcu_table_free=rcu, tlb_flush=flush,
                                     preempt_rcu=preempt, pt_reclaim=reclaim)
                            try:
                                Config(**c).check()
                            except PtmcError:
                                continue
                            out.append(c)
    return out


def config(s) -> Config:
    """The configuration of the model a step runs in."""
    return s.model.config
