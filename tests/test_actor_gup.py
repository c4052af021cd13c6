"""GUP-fast whole (ptmc.actors.gup): IRQs off, the lockless pmd and pte reads, the grab, the
rechecks of pmd and pte, the back-off, the pin kept until unpin_user_page(); and the ghost check
of properties/gup_stable.py (a page GUP returned is still the page mapped there, or GUP backed
off)."""
from __future__ import annotations

from ptmc import workflow

from conftest import ROOT, WITHOUT_RETRACT

ZAP_FAULT = dict(walkers=0, readers=0)  # zap and fault, with GUP-fast
PRESENT = "present,present"


def run(prop, without=(), **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", without=without,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def steps(r):
    return [(st.thread, st.step) for st in r.trace]


def in_order(trace, keys) -> bool:
    it = iter(trace)
    return all(key in it for key in keys)


def test_gup_fast_with_zap_and_fault_holds_and_backs_off():
    for prop in ("no_uaf", "no_deadlock", "no_leak"):
        r = run(prop, gup_fast=1, **ZAP_FAULT)
        assert (r.verdict, r.states) == ("holds", 12291), prop
    # gup_stable without a collapse: a zap unmapping a pinned page is not a stale page
    r = run("gup_stable", gup_fast=1, anon_collapses=0, ptes="", **ZAP_FAULT)
    assert (r.verdict, r.states) == ("holds", 12291)
    found = {w.name: w.found for w in r.witnesses}
    assert found["gup_fast.gup_fast_back_off"]  # the zap cleared the entry after the grab


def test_gup_fast_with_collapse_holds_in_both_tlb_flush_kinds():
    for flush, states in (("ipi", 23311), ("broadcast", 33330)):
        r = run("gup_stable", gup_fast=1, anon_collapses=1, ptes=PRESENT, tlb_flush=flush, **ZAP_FAULT)
        assert (r.verdict, r.states) == ("holds", states), flush
        assert all(w.found for w in r.witnesses)
        assert {"isolate aborts on a pin", "gup_fast.gup_fast_back_off", "anon_collapse.collapse_install"} <= \
            {w.name for w in r.witnesses}


def test_without_irqs_off_gup_fast_reads_a_table_rcu_freed_under_it():
    """Without local_irq_save() the lockless pmd read is outside any RCU section: the zap's
    table goes through call_rcu() and its grace period ends before pte_offset_map()."""
    r = run("no_uaf", without=["gup_fast_irqs_off"], gup_fast=1, **ZAP_FAULT)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert {t for t, _ in steps(r)} == {"zap", "gup_fast", "rcu"}
    assert in_order(steps(r), [("gup_fast", "gup_fast_pmd"), ("zap", "clear_pmd"), ("zap", "tlb_table_flush"),
                               ("rcu", "rcu_do_batch"), ("gup_fast", "gup_fast_pte")])
    assert steps(r)[-1] == ("gup_fast", "gup_fast_pte")


def test_without_the_pmd_recheck_gup_fast_returns_a_page_the_collapse_replaced():
    """protocol.md K2 (the corpus has the history): a broadcast flush and no
    tlb_remove_table_sync_one() let the isolate pass before GUP-fast grabs; the entry is still
    there, so only the pmd recheck could have told."""
    r = run("gup_stable", without=["gup_fast_pmd_recheck", "collapse_table_sync"], gup_fast=1, anon_collapses=1,
            ptes=PRESENT, tlb_flush="broadcast", zaps=0, faults=0, **ZAP_FAULT)
    assert r.verdict == "violated" and r.violation.check == "never gup-stale-page"
    assert (r.states, len(r.trace)) == (194, 20)
    assert in_order(steps(r), [("gup_fast", "gup_fast_pmd"), ("anon_collapse", "collapse_pmd_clear"),
                               ("anon_collapse", "collapse_isolate"), ("gup_fast", "gup_fast_grab"),
                               ("gup_fast", "gup_fast_recheck_pte"), ("anon_collapse", "collapse_copy"),
                               ("gup_fast", "gup_fast_done")])
    assert ("gup_fast", "gup_fast_back_off") not in steps(r)
    # with the recheck, the same race ends in the back-off
    fixed = run("gup_stable", without=["collapse_table_sync"], gup_fast=1, anon_collapses=1, ptes=PRESENT,
                tlb_flush="broadcast", zaps=0, faults=0, **ZAP_FAULT)
    assert (fixed.verdict, fixed.states) == ("holds", 269)
    assert {w.name: w.found for w in fixed.witnesses}["gup_fast.gup_fast_back_off"]


def test_the_pte_recheck_is_not_needed_here_and_says_against_what():
    """No actor of the reclaim model frees a data page a zap unmapped (its reference is not
    dropped), so the pte recheck never decides anything gup_stable checks; the guard names the
    actor that would make it necessary."""
    r = run("gup_stable", without=["gup_fast_pte_recheck"], gup_fast=1, anon_collapses=1, ptes=PRESENT, **ZAP_FAULT)
    assert (r.verdict, r.states) == ("holds", 21457)
    from ptmc.actors.gup import GupFast
    assert "zap" in GupFast.gup_fast_pte_recheck.against
