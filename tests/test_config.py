"""The kernel configuration every model gets (ptmc.kernel.config): what the combinations are,
which the kernel refuses, the split_ptlocks alias, and lock identity in each configuration."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Model, Thread, step
from ptmc.errors import PtmcError
from ptmc.explore import check_model
from ptmc.kernel.config import PARAMS, allowed
from ptmc.kernel.pgtable import (PageTables, pmd_lock, pmd_lockptr, pmd_populate, pte_alloc_one,
                                 pte_lockptr)
from ptmc.kernel.spinlock import spin_unlock
from ptmc.properties import never


class Empty(Model):
    name = "empty"

    def init(self, mem):
        mem.x = 0

    def threads(self):
        return []


def test_every_model_gets_the_configuration_parameters():
    assert list(PARAMS) == ["split_ptlocks", "split_pte_ptlocks", "split_pmd_ptlocks",
                            "mmu_gather_rcu_table_free", "tlb_flush", "preempt_rcu", "pt_reclaim"]
    assert set(PARAMS) <= set(Empty.params())
    m = Empty()
    assert (m.config.split_pte_ptlocks, m.config.split_pmd_ptlocks, m.config.tlb_flush) == (True, True, "ipi")
    assert m.param_values["tlb_flush"] == "ipi" and m.tlb_flush == "ipi"


def test_the_allowed_configurations():
    # ptlocks: both split, only PTE split, none (3); RCU table free x flush x reclaim: with RCU
    # table free both flushes and reclaim on or off (4), without it only an IPI flush and no
    # reclaim (1); preempt_rcu either way (2): 3 * 5 * 2.
    combos = allowed()
    assert len(combos) == 30
    assert not any(c["split_pmd_ptlocks"] and not c["split_pte_ptlocks"] for c in combos)
    assert not any(c["pt_reclaim"] and not c["mmu_gather_rcu_table_free"] for c in combos)
    assert not any(c["tlb_flush"] == "broadcast" and not c["mmu_gather_rcu_table_free"] for c in combos)
    for c in combos:
        Empty({k: v for k, v in c.items()})  # each builds


@pytest.mark.parametrize("settings, message", [
    ({"split_pte_ptlocks": False, "split_pmd_ptlocks": True},
     "split_pmd_ptlocks=true needs split_pte_ptlocks=true (CONFIG_SPLIT_PMD_PTLOCKS depends on SPLIT_PTE_PTLOCKS)"),
    ({"mmu_gather_rcu_table_free": False},
     "pt_reclaim=true needs mmu_gather_rcu_table_free=true (CONFIG_PT_RECLAIM selects MMU_GATHER_RCU_TABLE_FREE)"),
    ({"mmu_gather_rcu_table_free": False, "pt_reclaim": False, "tlb_flush": "broadcast"},
     "tlb_flush=broadcast needs mmu_gather_rcu_table_free=true (an architecture whose TLB flush sends no "
     "IPI selects MMU_GATHER_RCU_TABLE_FREE, or GUP-fast would walk freed tables)"),
    ({"split_ptlocks": False, "split_pte_ptlocks": True},
     "split_ptlocks=false contradicts split_pte_ptlocks=true: set one of them"),
    ({"tlb_flush": "lazy"}, "parameter tlb_flush is one of ipi, broadcast, got 'lazy'"),
])
def test_combinations_the_kernel_does_not_allow_are_refused(settings, message):
    with pytest.raises(PtmcError) as e:
        Empty(settings)
    assert str(e.value) == message


def test_split_ptlocks_is_an_alias():
    off = Empty({"split_ptlocks": "false"}).config
    assert (off.split_pte_ptlocks, off.split_pmd_ptlocks) == (False, False)
    # split PTE ptlocks off: the PMD ones follow (they depend on them) unless set
    only_pte = Empty({"split_pte_ptlocks": False}).config
    assert (only_pte.split_pte_ptlocks, only_pte.split_pmd_ptlocks) == (False, False)
    m = Empty({"split_ptlocks": True, "split_pmd_ptlocks": False})
    assert (m.config.split_pte_ptlocks, m.config.split_pmd_ptlocks) == (True, False)
    assert m.param_values["split_ptlocks"] is True


def test_refused_configuration_is_one_line_on_the_command_line(tmp_path):
    from click.testing import CliRunner

    from conftest import ROOT
    from ptmc.cli import main
    r = CliRunner().invoke(main, ["check", str(ROOT / "properties" / "no_uaf.py"), "--set",
                                  "mmu_gather_rcu_table_free=false", "--out", str(tmp_path)])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == [
        "ptmc: error: pt_reclaim=true needs mmu_gather_rcu_table_free=true (CONFIG_PT_RECLAIM selects "
        "MMU_GATHER_RCU_TABLE_FREE)"]


# --------------------------------------------------------------------------------------------
# Lock identity: which lock pmd_lockptr() and pte_lockptr() are in each configuration
# --------------------------------------------------------------------------------------------

class Locks(Thread):
    """Records the pml of both slots and the ptl of the table slot a links."""

    @step("x.c:look")
    def look(self, s):
        s.seen = (pmd_lockptr(s, "a"), pmd_lockptr(s, "b"), pte_lockptr(s, s.a))
        return DONE


def two_pmd_tables(threads, **config):
    class M(Model):
        name = "slots"

        def init(self, mem):
            PageTables(mem, pages=1, entries=1, slots=("a", "b"), pmd_tables={"b": 1})
            pmd_populate(mem, pte_alloc_one(mem), "a")
            mem.seen = None

        def threads(self):
            return threads()
    return M(config)


@pytest.mark.parametrize("config, seen", [
    ({}, ("pml", "pml1", "pt0.ptl")),  # both split: a lock per PMD table, one per PTE page
    ({"split_pmd_ptlocks": False}, ("page_table_lock", "page_table_lock", "pt0.ptl")),
    ({"split_ptlocks": False}, ("page_table_lock", "page_table_lock", "page_table_lock")),
])
def test_lock_identity_per_configuration(config, seen):
    states = reachable(two_pmd_tables(lambda: [Locks("t")], **config))
    assert {tuple(map(str, st["seen"])) for st in states if st["t.pc"] == "done"} == {seen}


def test_pte_lockptr_does_not_read_the_pmd_when_ptlocks_are_not_split():
    """pte_lockptr() is &mm->page_table_lock without split PTE ptlocks: a stale or none pmd
    value is no use-after-free (a khugepaged model once got a false counterexample here)."""
    class Stale(Thread):
        @step("x.c:lock_of_none")
        def lock_of_none(self, s):
            s.seen = pte_lockptr(s, s.b)  # slot b is none
            return DONE

    r = check_model(two_pmd_tables(lambda: [Stale("t")], split_ptlocks=False), [never("use-after-free")])
    assert (r.verdict, r.states) == ("holds", 2)
    r = check_model(two_pmd_tables(lambda: [Stale("t")]), [never("use-after-free")])
    assert r.verdict == "violated"
    assert r.violation.message == "t maps pmd value none, which is no longer a page table"


def test_one_mm_lock_for_both_pmd_tables_makes_taking_both_a_self_deadlock():
    class Both(Thread):
        @step("x.c:first")
        def first(self, s):
            pmd_lock(s, "a")

        @step("x.c:second")
        def second(self, s):
            pmd_lock(s, "b")

        @step("x.c:unlock")
        def unlock(self, s):
            spin_unlock(s, pmd_lockptr(s, "b"))
            spin_unlock(s, pmd_lockptr(s, "a"))

    ok = check_model(two_pmd_tables(lambda: [Both("t")]), [never("self-deadlock")])
    assert (ok.verdict, ok.states) == ("holds", 4)
    bad = check_model(two_pmd_tables(lambda: [Both("t")], split_pmd_ptlocks=False), [never("self-deadlock")])
    assert bad.verdict == "violated"
    assert bad.violation.message == "t takes page_table_lock, which it already holds"


def test_a_slot_must_be_named_when_there_are_several():
    class Unnamed(Thread):
        @step("x.c:lock")
        def lock(self, s):
            pmd_lockptr(s)

    from ptmc.errors import ModelError
    with pytest.raises(ModelError, match=r"this model has several pmd slots \(a, b\): name the one"):
        check_model(two_pmd_tables(lambda: [Unnamed("t")]), [])
