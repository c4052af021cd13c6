"""userfaultfd actors (ptmc.actors.uffd) in the reclaim model: UFFDIO_MOVE between pmd and a second
pmd slot, UFFDIO_COPY into pmd, each with one zap and one fault."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.errors import PtmcError

from conftest import ROOT, WITHOUT_RETRACT

ZAP_AND_FAULT = {"walkers": 0, "readers": 0}


def run(prop, without=(), **settings):
    settings = {**ZAP_AND_FAULT, **settings}
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def steps(r):
    return [(t.thread, t.step) for t in r.trace]


@pytest.mark.parametrize("prop", ["no_uaf", "no_lost_pte", "no_deadlock"])
def test_move_holds_with_zap_and_fault(prop):
    r = run(prop, uffd="wp", uffd_moves=1)
    assert (r.verdict, r.states) == ("holds", 86762), r.violation
    found = {w.name: w.found for w in r.witnesses}
    assert found["uffd_move.move_set_dst"] and found["move recheck fails"]


@pytest.mark.parametrize("prop, uffd, states", [("no_uaf", "wp", 24223), ("no_lost_pte", "wp", 24223),
                                                ("no_deadlock", "wp", 24223), ("no_lost_pte", "missing", 23105)])
def test_copy_holds_with_zap_and_fault(prop, uffd, states):
    r = run(prop, uffd=uffd, uffd_copies=1)
    assert (r.verdict, r.states) == ("holds", states), r.violation
    assert {w.name: w.found for w in r.witnesses}["uffd_copy.mfill_install"]


def test_without_the_destination_pmd_same_the_move_writes_into_a_reclaimed_table():
    r = run("no_lost_pte", without=["move_dst_pmd_same"], uffd="wp", uffd_moves=1)
    assert r.verdict == "violated" and r.violation.check == "never pte-in-unlinked-table"
    assert steps(r)[-1] == ("uffd_move", "move_set_dst")
    s = steps(r)
    # the mover mapped the (all-none) destination before reclaim unlinked it, and wrote after
    assert s.index(("uffd_move", "move_map_dst")) < s.index(("zap", "clear_pmd")) < s.index(("uffd_move", "move_stable"))
    assert run("no_uaf", without=["move_dst_pmd_same"], uffd="wp", uffd_moves=1).verdict == "holds"


def test_without_the_destination_pte_same_the_move_overwrites_a_fault():
    r = run("no_lost_pte", without=["move_dst_pte_same"], uffd="wp", uffd_moves=1)
    assert r.verdict == "violated" and r.violation.check == "mapcounts_match_entries"
    s = steps(r)
    # the destination was seen none, then the fault mapped it, then the move overwrote it
    assert s.index(("uffd_move", "move_read_dst")) < s.index(("fault", "anon_set_pte")) < \
        s.index(("uffd_move", "move_set_dst"))


def test_without_double_pt_lock_reclaim_unlinks_between_the_recheck_and_the_move():
    r = run("no_lost_pte", without=["move_double_pt_lock"], uffd="wp", uffd_moves=1)
    assert r.verdict == "violated" and r.violation.check == "never pte-in-unlinked-table"
    s = steps(r)
    assert ("uffd_move", "double_pt_lock_first") not in s
    assert s.index(("uffd_move", "move_stable")) < s.index(("zap", "slow_clear_pmd")) < \
        s.index(("uffd_move", "move_set_dst")) == len(s) - 1


def test_without_pte_none_mostly_the_copy_overwrites_a_mapping():
    r = run("no_lost_pte", without=["mfill_pte_none"], uffd="wp", uffd_copies=1)
    assert r.verdict == "violated" and r.violation.check == "mapcounts_match_entries"
    assert r.violation.message == "d1 has mapcount 1 but 0 linked entries map it"
    s = steps(r)
    assert s.index(("uffd_copy", "mfill_install")) < s.index(("zap", "zap_pte"))


def test_movers_need_a_registered_vma():
    with pytest.raises(PtmcError, match="uffd-registered"):
        run("no_uaf", uffd_moves=1)
