"""munmap and the pagemap walker (ptmc.actors.munmap) in the reclaim model, with one zap and one
fault (which take mmap_lock for read and look the VMA up)."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

ZAP_AND_FAULT = {"walkers": 0, "readers": 0, "munmaps": 1}
PAGEMAP_ONLY = {"zaps": 0, "faults": 0, "pagemap_walkers": 1}


def run(prop, without=(), **settings):
    settings = {**ZAP_AND_FAULT, **settings}
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def steps(r):
    return [(t.thread, t.step) for t in r.trace]


@pytest.mark.parametrize("prop", ["no_uaf", "no_lost_pte", "no_deadlock", "no_leak"])
def test_munmap_holds_with_zap_and_fault(prop):
    r = run(prop)
    assert (r.verdict, r.states) == ("holds", 2148), r.violation
    found = {w.name: w.found for w in r.witnesses}
    assert found["munmap.free_pte_range"] and found["VMA gone"]


def test_munmap_with_every_default_actor():
    r = run("no_uaf", walkers=1, readers=1)
    assert (r.verdict, r.states) == ("holds", 166091)


def test_munmap_detaches_downgrades_zaps_then_frees_without_a_lock():
    r = workflow.check(ROOT / "properties" / "no_uaf.py", witnesses=["munmap.free_pte_range"],
                       settings={k: str(v) for k, v in
                                 {**WITHOUT_RETRACT, **ZAP_AND_FAULT, "zaps": 0, "faults": 0}.items()})
    [w] = [w for w in r.witnesses if w.name == "munmap.free_pte_range"]
    assert [t.step for t in w.trace] == [
        "mmap_write_lock", "vma_start_write", "vma_mark_detached", "mmap_write_downgrade", "unmap_vmas",
        "map_pmd", "map_spin_lock", "map_pmd_same", "unmap_pte", "unmap_pte", "unmap_unlock", "free_pmd_range",
        "pmd_none_or_clear_bad", "free_pte_range"]


def test_without_the_detach_a_zap_after_the_downgrade_races_the_lockless_pmd_clear():
    r = run("no_uaf", without=["munmap_detach"])
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert r.violation.message == "munmap frees pmd_pgtable() of pmd value none, which is no page table"
    s = steps(r)
    assert ("munmap", "vma_mark_detached") not in s
    assert s.index(("munmap", "mmap_write_downgrade")) < s.index(("zap", "mmap_read_lock")) < \
        s.index(("munmap", "pmd_none_or_clear_bad")) < s.index(("zap", "clear_pmd")) < \
        s.index(("munmap", "free_pte_range")) == len(s) - 1
    lost = run("no_lost_pte", without=["munmap_detach"])
    assert lost.verdict == "violated" and lost.violation.check == "never unlink-mapped-table"
    s = steps(lost)
    assert s.index(("munmap", "unmap_unlock")) < s.index(("fault", "anon_set_pte")) < \
        s.index(("munmap", "free_pte_range"))


@pytest.mark.parametrize("guard", ["munmap_vma_start_write", "unlink_anon_vmas_lock"])
def test_guards_against_actors_the_model_lacks(guard):
    # per-VMA-lock readers and rmap walkers: every reader here takes mmap_lock
    assert run("no_uaf", without=[guard]).verdict == "holds"


def test_the_pagemap_walk_finds_a_hole_after_munmap():
    r = run("no_uaf", **PAGEMAP_ONLY)
    assert (r.verdict, r.states) == ("holds", 103)
    found = {w.name: w.found for w in r.witnesses}
    assert found["pagemap finds a hole"] and found["pagemap_walker.walk_pte"]
    assert run("no_uaf", pagemap_walkers=1).states == 18726


def test_k7_the_historical_walk_of_a_detached_range_reads_a_freed_table():
    r = run("no_uaf", without=["walk_vma_lookup", "pte_offset_map_rcu"], **PAGEMAP_ONLY)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert r.violation.message == "pagemap_walker takes pt0.ptl, but pt0 is free"
    s = steps(r)
    assert s.index(("munmap", "mmap_write_downgrade")) < s.index(("pagemap_walker", "walk_pmd_nolock")) < \
        s.index(("munmap", "free_pte_range")) < s.index(("rcu", "rcu_do_batch")) < \
        s.index(("pagemap_walker", "walk_lock_nolock")) == len(s) - 1


def test_k7_today_rcu_alone_keeps_a_walk_of_a_detached_range_safe():
    r = run("no_uaf", without=["walk_vma_lookup"], **PAGEMAP_ONLY)
    assert r.verdict == "holds"
    assert run("no_uaf", without=["pte_offset_map_rcu"], **PAGEMAP_ONLY).verdict == "holds"


def test_munmap_refuses_what_it_does_not_model():
    with pytest.raises(PtmcError, match="anonymous"):
        run("no_uaf", vma="shmem")
    with pytest.raises(PtmcError, match="munmaps=1"):
        run("no_uaf", munmaps=0, pagemap_walkers=1)
