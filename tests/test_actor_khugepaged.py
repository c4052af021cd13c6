"""khugepaged's retract_page_tables() (src/ptmc/actors/khugepaged.py) in the reclaim model: exact
counts of the holding runs, a counterexample of the asserted shape for each guard that matters,
and the load-bearing paths witnessed in both lock configurations."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

RETRACT = dict(retracts=1, vma="shmem", walkers=0, readers=0)


def run(prop, without=(), variants=(), **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without, variants=variants,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def steps(r):
    return [(st.thread, st.step) for st in r.trace]


def in_order(trace, *keys):
    at = 0
    for key in keys:
        while at < len(trace) and trace[at] != key:
            at += 1
        assert at < len(trace), f"{key} not found in order in {trace}"
        at += 1


def witnessed(r):
    return {w.name for w in r.witnesses if w.found}


@pytest.mark.parametrize("split, states", [(True, 30563), (False, 21727)])
def test_retract_with_zap_and_fault_holds(split, states):
    for prop in ("no_uaf", "no_lost_pte", "no_leak", "no_deadlock"):
        r = run(prop, split_ptlocks=split, **RETRACT)
        assert r.verdict == "holds", (prop, r.violation)
        assert r.states == states
    assert {"retract frees", "retract recheck"} <= witnessed(r)


@pytest.mark.parametrize("split, states", [(True, 11708), (False, 8298)])
def test_retract_of_an_empty_range(split, states):
    r = run("no_uaf", split_ptlocks=split, ptes="none,none", **RETRACT)
    assert (r.verdict, r.states) == ("holds", states)
    assert {"retract frees", "retract recheck"} <= witnessed(r)


def test_retract_with_a_walker_holds():
    r = run("no_uaf", **{**RETRACT, "walkers": 1})
    assert (r.verdict, r.states) == ("holds", 192830)


def test_retract_needs_a_file_vma():
    with pytest.raises(PtmcError, match="vma=shmem"):
        run("no_uaf", retracts=1)


def test_retract_skips_a_vma_with_guard_regions():
    """VMA_MAYBE_GUARD: file_backed_vma_is_retractable() is false, nothing is retracted."""
    r = run("no_lost_pte", ptes="none,guard", **RETRACT)
    assert r.verdict == "holds"
    assert any("[retract_free]" in s for s in r.unreached["retract"])


def test_without_the_folio_lock_a_refault_is_lost():
    r = run("no_lost_pte", without=["retract_folio_lock"], **{**RETRACT, "zaps": 0})
    assert r.verdict == "violated" and r.violation.check == "never unlink-mapped-table"
    t = steps(r)
    assert {th for th, _ in t} == {"fault", "retract"}
    # collapse_file() unmapped the page, the fault mapped it again, retract unlinked the table
    in_order(t, ("retract", "collapse_file"), ("fault", "file_set_pte"), ("retract", "retract_collapse"))
    assert t[-1] == ("retract", "retract_collapse")


def test_without_the_recheck_under_pml_the_lock_of_a_none_pmd_is_taken():
    r = run("no_uaf", without=["retract_pmd_recheck"], **RETRACT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    assert {th for th, _ in t} == {"zap", "retract"}
    in_order(t, ("retract", "find_pmd"), ("zap", "clear_pmd"), ("retract", "retract_pmd_lock"),
             ("retract", "retract_recheck"))
    assert t[-1] == ("retract", "retract_recheck")


def test_without_pml_retract_and_reclaim_both_free_the_table():
    r = run("no_uaf", without=["retract_pml"], **RETRACT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    assert {th for th, _ in t} == {"zap", "retract"}
    in_order(t, ("retract", "find_pmd"), ("retract", "retract_recheck"), ("zap", "clear_pmd"),
             ("retract", "retract_collapse"))


def test_without_the_ptl_retract_changes_the_pmd_under_a_zap():
    """try_get_and_clear_pmd() clears the pmd under its ptl and a trylock of pml, without a
    recheck (I4): retract clearing it under pml alone breaks that."""
    r = run("no_uaf", without=["retract_ptl"], **RETRACT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    in_order(t, ("zap", "zap_pte"), ("retract", "retract_collapse"), ("retract", "retract_unlock_pml"),
             ("zap", "try_get_and_clear_pmd"), ("zap", "clear_pmd"))
    assert t[-1] == ("zap", "clear_pmd")


def test_without_the_tlb_flush_the_table_is_freed_while_cached():
    r = run("no_uaf", without=["collapse_tlb_flush"], **RETRACT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    in_order(t, ("retract", "retract_collapse"), ("retract", "retract_free"), ("rcu", "rcu_do_batch"))
    assert t[-1] == ("rcu", "rcu_do_batch")


def test_without_the_grace_period_a_reader_reads_a_freed_table():
    r = run("no_uaf", without=["rcu_grace_period"], **{**RETRACT, "readers": 1, "zaps": 0})
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    assert {th for th, _ in t} == {"reader", "retract"}
    in_order(t, ("reader", "ro_map"), ("retract", "retract_collapse"), ("retract", "retract_free"),
             ("reader", "ro_read"))
    assert t[-1] == ("reader", "ro_read")


@pytest.mark.parametrize("guard", ["retractable_recheck", "retract_i_mmap_lock"])
def test_guards_against_actors_not_in_the_model_hold(guard):
    assert run("no_uaf", without=[guard], **RETRACT).verdict == "holds"


# --- collapse_pte_mapped_thp()

COLLAPSE = dict(collapses=1, vma="shmem", walkers=0, readers=0)


@pytest.mark.parametrize("install, states", [(True, 35445), (False, 24981)])
def test_collapse_with_zap_and_fault_holds(install, states):
    for prop in ("no_uaf", "no_lost_pte", "no_leak", "no_deadlock"):
        r = run(prop, install_pmd=install, **COLLAPSE)
        assert r.verdict == "holds", (prop, r.violation)
        assert r.states == states
    assert {"collapse frees", "collapse recheck"} <= witnessed(r)
    assert ("collapse installs" in witnessed(r)) == install


def test_collapse_witnesses_without_split_ptlocks():
    r = run("no_lost_pte", split_ptlocks=False, **COLLAPSE)
    assert (r.verdict, r.states) == ("holds", 28830)
    assert {"collapse frees", "collapse installs"} <= witnessed(r)


def test_collapse_without_split_ptlocks_frees_a_table_reclaim_unlinked():
    """A finding: with ptl == pml (no CONFIG_SPLIT_PTE_PTLOCKS) try_collapse_pte_mapped_thp() takes
    pml after dropping the ptl without the pmd_same() recheck (the code has it only inside
    ``if (ptl != pml)``), and a zap's slow-path reclaim may unlink the table it just emptied in
    that window: pmdp_collapse_flush() then clears a none pmd and pte_free_defer() frees
    pmd_pgtable() of it (and nr_ptes is decremented twice)."""
    r = run("no_uaf", split_ptlocks=False, install_pmd=False, **COLLAPSE)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    assert {th for th, _ in t} == {"zap", "collapse"}
    in_order(t, ("collapse", "collapse_clear"), ("collapse", "collapse_unlock_ptl"), ("zap", "try_to_free_pte"),
             ("zap", "slow_clear_pmd"), ("collapse", "collapse_pmd_lock"), ("collapse", "collapse_flush"),
             ("collapse", "collapse_free"))
    assert t[-1] == ("collapse", "collapse_free")


def test_collapse_without_the_folio_lock_a_refault_is_lost():
    r = run("no_lost_pte", without=["collapse_folio_lock"], **COLLAPSE)
    assert r.verdict == "violated" and r.violation.check == "never unlink-mapped-table"
    t = steps(r)
    assert {th for th, _ in t} == {"fault", "collapse"}
    in_order(t, ("collapse", "collapse_clear"), ("collapse", "collapse_unlock_ptl"), ("fault", "file_set_pte"),
             ("collapse", "collapse_flush"))
    assert t[-1] == ("collapse", "collapse_flush")


def test_collapse_without_the_recheck_under_pml_frees_a_reclaimed_table():
    r = run("no_uaf", without=["collapse_pml_recheck"], **COLLAPSE)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    in_order(t, ("collapse", "collapse_unlock_ptl"), ("zap", "clear_pmd"), ("collapse", "collapse_pmd_lock"),
             ("collapse", "collapse_relock_ptl"), ("collapse", "collapse_flush"), ("collapse", "collapse_free"))


def test_collapse_without_pml_races_the_slow_path():
    r = run("no_uaf", without=["collapse_pml"], **COLLAPSE)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    in_order(t, ("zap", "slow_map"), ("collapse", "collapse_flush"), ("zap", "slow_clear_pmd"))


def test_collapse_without_the_tlb_flush_frees_a_cached_table():
    r = run("no_uaf", without=["collapse_tlb_flush"], **COLLAPSE)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert steps(r)[-2:] == [("collapse", "collapse_free"), ("rcu", "rcu_do_batch")]


def test_collapse_without_the_grace_period():
    r = run("no_uaf", without=["rcu_grace_period"], **{**COLLAPSE, "readers": 1, "zaps": 0})
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = steps(r)
    assert {th for th, _ in t} == {"reader", "collapse"}
    assert t[0] == ("reader", "ro_map") and t[-1] == ("reader", "ro_read")


@pytest.mark.parametrize("guard", ["collapse_pmd_same", "set_huge_pmd_none", "collapse_mmap_lock"])
def test_collapse_guards_masked_in_this_model(guard):
    """collapse_pmd_same: a table reclaimed before the ptl is all none, so nothing is cleared and
    step 4's recheck aborts; set_huge_pmd_none: a refault after the retraction needs the folio
    lock, which the collapse holds until after set_huge_pmd()."""
    assert run("no_uaf", without=[guard], **COLLAPSE).verdict == "holds"


def test_k3_refusals():
    with pytest.raises(PtmcError, match="mmap_lock"):
        workflow.check(ROOT / "properties" / "no_uaf.py", model_path=ROOT / "model" / "retract2022.py",
                       settings={"zaps": "1"})
    with pytest.raises(PtmcError, match="vma=shmem"):
        run("no_uaf", collapses=1)
