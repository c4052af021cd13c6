"""mremap (ptmc.actors.mremap) in the reclaim model: move_normal_pmd() of pmd's table to pmd2, under
the mmap write lock, with one zap and one fault (which take mmap_lock for read)."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

ZAP_AND_FAULT = {"walkers": 0, "readers": 0, "mremaps": 1}


def run(prop, without=(), witnesses=(), **settings):
    settings = {**ZAP_AND_FAULT, **settings}
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without, witnesses=witnesses,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


@pytest.mark.parametrize("prop", ["no_uaf", "no_lost_pte", "no_deadlock", "no_leak"])
def test_mremap_holds_with_zap_and_fault(prop):
    r = run(prop)
    assert (r.verdict, r.states) == ("holds", 1900), r.violation
    found = {w.name: w.found for w in r.witnesses}
    assert found["mremap.mnp_populate"] and found["old VMA gone"]


def test_mremap_of_a_shmem_mapping_takes_i_mmap_rwsem():
    r = run("no_uaf", vma="shmem", witnesses=["mremap.mnp_populate"])
    assert (r.verdict, r.states) == ("holds", 2176)
    [w] = [w for w in r.witnesses if w.name == "mremap.mnp_populate"]
    mine = [t.step for t in w.trace if t.thread == "mremap"]
    assert mine[3:5] == ["take_i_mmap", "take_anon_vma"]


def test_mremap_with_every_default_actor():
    r = run("no_uaf", walkers=1, readers=1)
    assert (r.verdict, r.states) == ("holds", 163514)


def test_the_move_takes_the_rmap_locks_then_both_pmls_then_rechecks_clears_populates_flushes():
    r = run("no_uaf", witnesses=["mremap.mnp_populate"])
    [w] = [w for w in r.witnesses if w.name == "mremap.mnp_populate"]
    mine = [t.step for t in w.trace if t.thread == "mremap"]
    assert mine == ["mmap_write_lock", "vma_start_write", "get_old_pmd", "take_anon_vma", "move_normal_pmd",
                    "mnp_lock_new", "mnp_clear", "mnp_populate"]
    # the other threads ran (and left) before mremap got the write lock, or after it
    assert all(t.thread == "mremap" for t in w.trace[w.trace.index(next(t for t in w.trace if t.thread == "mremap")):])


@pytest.mark.parametrize("guard", ["move_normal_pmd_recheck", "move_normal_pmd_pml", "take_rmap_locks",
                                   "move_normal_pmd_flush"])
def test_the_mmap_write_lock_excludes_every_actor_the_guards_are_against(guard):
    # zap and fault hold mmap_lock for read: they cannot run between get_old_pmd() and the pml, so
    # the K4 recheck (and the pml, the rmap locks, the flush) are needed only against actors that
    # take no mmap lock: khugepaged's retract_page_tables() (protocol.md K4), rmap walkers, the MMU.
    for prop in ("no_uaf", "no_lost_pte"):
        assert run(prop, without=[guard]).verdict == "holds"


def test_mremap_refuses_what_it_does_not_model():
    with pytest.raises(PtmcError, match="EVENT_REMAP"):
        run("no_uaf", uffd="wp")
