"""The rmap walker, try_to_unmap() through page_vma_mapped_walk() (src/ptmc/actors/rmap.py), in
the reclaim model: exact counts of the holding runs with zap and fault (and a walker), the paths
that matter witnessed in both lock configurations, and its guards."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

RMAP = dict(rmap_walkers=1, walkers=0, readers=0)


def run(prop, without=(), variants=(), **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without, variants=variants,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def witnessed(r):
    return {w.name for w in r.witnesses if w.found}


@pytest.mark.parametrize("vma, split, states", [("anon", True, 14079), ("anon", False, 9299),
                                                ("shmem", True, 16159), ("shmem", False, 10778)])
def test_rmap_walker_with_zap_and_fault_holds(vma, split, states):
    for prop in ("no_uaf", "no_lost_pte", "no_leak", "no_deadlock"):
        r = run(prop, vma=vma, split_ptlocks=split, **RMAP)
        assert r.verdict == "holds", (prop, r.violation)
        assert r.states == states
    assert {"rmap unmaps", "rmap pmd_same retry", "rmap gives up"} <= witnessed(r)


def test_rmap_walker_with_a_walker_holds():
    r = run("no_uaf", **{**RMAP, "walkers": 1})
    assert (r.verdict, r.states) == ("holds", 98681)


def test_anonymous_folio_leaves_a_swap_entry():
    r = workflow.check(ROOT / "properties" / "no_uaf.py",
                       settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **RMAP}.items()},
                       witnesses=["rmap unmaps"])
    w = next(w for w in r.witnesses if w.name == "rmap unmaps")
    last = w.trace[-1]
    assert (last.thread, last.step) == ("rmap", "set_swap_pte")
    assert last.changes["pt0.e1"][1].startswith("swap(")


def test_rmap_walker_needs_a_mapped_last_entry():
    with pytest.raises(PtmcError, match="last entry"):
        run("no_uaf", ptes="present,none", **RMAP)


@pytest.mark.parametrize("guard", ["rmap_lock", "rmap_pmd_same"])
def test_guards_against_actors_not_in_the_model(guard):
    """rmap_lock: against free_pgtables() and the old retraction (corpus/k3_retract_locks.py shows
    what it excluded then); rmap_pmd_same: against a table detached with entries in it (mremap),
    as reclaim, retract and collapse detach only empty tables."""
    for prop in ("no_uaf", "no_lost_pte"):
        assert run(prop, without=[guard], **RMAP).verdict == "holds"


def test_without_rcu_and_pmd_same_the_old_walker_meets_the_old_collapse():
    """protocol.md K3: the pre-2023 walker (no RCU, no pmd_same()) against collapse_pte_mapped_thp()
    under mmap_lock write + pml and pte_free() at once."""
    old = ROOT / "model" / "retract2022.py"
    r = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=old)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = [(st.thread, st.step) for st in r.trace]
    assert t[-1] == ("rmap", "map_pte_read")
    assert t.index(("rmap", "map_pte")) < t.index(("collapse", "old_unlock_and_free"))
    fixed = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=old, variants=["i_mmap_write"])
    assert (fixed.verdict, fixed.states) == ("holds", 80)


def test_the_rmap_lock_is_what_the_old_fix_relies_on():
    """With 8d3c106e19e8 the collapse holds i_mmap_rwsem for write: the walker's read lock is what
    keeps it out of the table being freed."""
    r = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=ROOT / "model" / "retract2022.py",
                       variants=["i_mmap_write"], without=["rmap_lock"])
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    t = [(st.thread, st.step) for st in r.trace]
    assert t.index(("rmap", "map_pte")) < t.index(("collapse", "collapse_i_mmap_lock")) < \
        t.index(("collapse", "old_unlock_and_free")) < len(t) - 1 and t[-1][0] == "rmap"
