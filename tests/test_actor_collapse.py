"""khugepaged's anonymous collapse (ptmc.actors.khugepaged_anon): collapse_huge_page() under
mmap_lock for write, racing zap and fault (which then hold mmap_lock for read) and GUP-fast
(which holds nothing)."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

ZAP_FAULT = dict(walkers=0, readers=0, ptes="present,present")


def run(prop, without=(), **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def steps(r):
    return [(st.thread, st.step) for st in r.trace]


def in_order(trace, keys) -> bool:
    it = iter(trace)
    return all(key in it for key in keys)


@pytest.mark.parametrize("prop", ["no_uaf", "no_lost_pte", "no_leak", "no_deadlock"])
def test_collapse_with_zap_and_fault_holds(prop):
    r = run(prop, anon_collapses=1, **ZAP_FAULT)
    assert (r.verdict, r.states) == ("holds", 2251)
    assert {w.name: w.found for w in r.witnesses}["anon_collapse.collapse_install"]
    # the others hold mmap_lock for read: they run before or after the whole collapse
    assert not any("mmap_read" in step for found in r.unreached.values() for step in found)


def test_collapse_gup_fast_zap_and_fault_hold_together():
    r = run("no_uaf", anon_collapses=1, gup_fast=1, **ZAP_FAULT)
    assert (r.verdict, r.states) == ("holds", 23311)
    assert all(w.found for w in r.witnesses)


def test_the_default_run_is_unchanged():
    r = run("no_uaf")
    assert (r.verdict, r.states) == ("holds", 47815)


def test_without_the_refcount_check_the_collapse_replaces_a_pinned_page():
    r = run("gup_stable", without=["collapse_isolate_refcount"], gup_fast=1, anon_collapses=1,
            tlb_flush="broadcast", zaps=0, faults=0, **ZAP_FAULT)
    assert r.verdict == "violated" and r.violation.check == "never gup-stale-page"
    assert in_order(steps(r), [("gup_fast", "gup_fast_grab"), ("gup_fast", "gup_fast_done"),
                               ("anon_collapse", "collapse_isolate"), ("anon_collapse", "collapse_copy"),
                               ("gup_fast", "unpin_user_page")])


def test_without_the_flush_a_cpu_may_still_walk_the_deposited_table_when_it_is_freed():
    """pmdp_collapse_flush()'s flush_tlb_range(): a zap of the huge pmd later frees the
    deposited table, which a CPU may still cache from before the collapse."""
    r = run("no_uaf", without=["collapse_tlb_flush"], anon_collapses=1, **ZAP_FAULT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert in_order(steps(r), [("anon_collapse", "collapse_pmd_clear"), ("anon_collapse", "collapse_install"),
                               ("anon_collapse", "collapse_mmap_write_unlock"), ("zap", "zap_huge_pmd"),
                               ("zap", "zap_huge_pmd_locked")])
    assert ("anon_collapse", "collapse_flush") not in steps(r)


def test_an_ipi_flush_waits_for_gup_fast_so_the_historical_gup_holds_there():
    r = run("gup_stable", without=["gup_fast_pmd_recheck", "collapse_table_sync"], gup_fast=1, anon_collapses=1,
            tlb_flush="ipi", zaps=0, faults=0, **ZAP_FAULT)
    assert (r.verdict, r.states) == ("holds", 111)


def test_collapse_witnesses_isolate_abort_on_a_pin_and_the_restore():
    r = run("gup_stable", gup_fast=1, anon_collapses=1, zaps=0, faults=0, **ZAP_FAULT)
    found = {w.name: w.found for w in r.witnesses}
    assert found["isolate aborts on a pin"] and found["anon_collapse.collapse_install"]
    assert not r.unreached.get("anon_collapse")  # the restore path (pmd_populate() of the old table) too


@pytest.mark.parametrize("settings, says", [
    (dict(vma="shmem"), "set vma=anon"),
    (dict(ptes="none,present"), "set ptes=present,present"),
    (dict(fault="mthp"), "set fault=write or fault=read"),
    (dict(uffd="missing"), "set uffd=none"),
])
def test_configurations_the_collapse_does_not_cover_are_refused(settings, says):
    with pytest.raises(PtmcError, match=says):
        run("no_uaf", anon_collapses=1, **{**ZAP_FAULT, **settings})


def test_every_guard_of_the_collapse_can_be_switched_off():
    """Each ablation is the code without that guard and runs to a verdict (ptmc ablate)."""
    from ptmc.actors.khugepaged_anon import CollapseHugePage
    from ptmc.model import Guard
    guards = [n for n, v in vars(CollapseHugePage).items() if isinstance(v, Guard)]
    assert guards == ["collapse_anon_vma_lock", "collapse_tlb_flush", "collapse_table_sync",
                      "collapse_isolate_refcount"]
    verdicts = {g: run("gup_stable", without=[g], gup_fast=1, anon_collapses=1, tlb_flush="broadcast", zaps=0,
                       faults=0, **ZAP_FAULT).verdict for g in guards}
    assert verdicts == {"collapse_anon_vma_lock": "holds", "collapse_tlb_flush": "holds",
                        "collapse_table_sync": "holds", "collapse_isolate_refcount": "violated"}
