"""The reclaim model in the page-table world: every entry kind through zap_pte_range(), markers
and any_skipped, the delayed rmap, huge pmds, the fault kinds, the walker's ACTION_AGAIN, the
lockless ro_nolock reader, the TLB checks, refused combinations, and mainline in every
configuration the kernel allows."""
from __future__ import annotations

import pytest

from conftest import ROOT, reachable
from ptmc import workflow
from ptmc.errors import PtmcError
from ptmc.explore import check_model
from ptmc.kernel.config import allowed
from ptmc.model import load_model_class
from ptmc.properties import load_property
from ptmc.state import show

Reclaim = load_model_class(ROOT / "model" / "reclaim.py")

ZAP_ONLY = dict(faults=0, walkers=0, readers=0, need_resched=False, force_break=False, batch_alloc_fail=False)


def run(prop, *variants, **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", variants=variants,
                          settings={k: str(v) for k, v in settings.items()})


def ends(**settings):
    """The end states (every thread done, RCU idle) of the reclaim model: (pmd, entries)."""
    out = set()
    for st in reachable(Reclaim({k: str(v) for k, v in settings.items()})):
        if all(v == "done" for k, v in st.items() if k.endswith(".pc") and not k.startswith("rcu")) \
                and all(st[k] is None for k in st if k.endswith("rcu_head")):
            table = st["pmd"]
            linked = table.__class__.__name__ == "PT"
            entries = tuple(show(st[f"pt{table[0]}.e{i}"]) for i in range(2)) if linked else None
            out.add(("none" if table is None else str(table), entries))
    return out


# --- every entry kind through zap_pte_range() ---------------------------------------------------

@pytest.mark.parametrize("vma, uffd, kind, result", [
    # cleared, and the table reclaimed: the pmd is none at the end
    ("anon", "none", "present", {("none", None)}),
    ("anon", "none", "dirty", {("none", None)}),
    ("anon", "none", "zero", {("none", None)}),
    ("anon", "none", "swap", {("none", None)}),  # free_swap_and_cache_nr()
    ("anon", "none", "migration", {("none", None)}),
    ("anon", "none", "none", {("none", None)}),
    ("anon", "wp", "present_wp", {("none", None)}),  # anonymous: the zap drops everything
    ("anon", "wp", "uffd_wp", {("none", None)}),
    ("shmem", "none", "dirty", {("none", None)}),  # the rmap waits for the flush, then goes
    # kept (any_skipped): the table stays
    ("anon", "none", "guard", {("pt0", ("marker(guard)", "none"))}),
    ("shmem", "wp", "uffd_wp", {("pt0", ("marker(uffd-wp)", "none"))}),
    # re-installed by the zap itself: a uffd-wp protected entry of a file VMA leaves a marker
    ("shmem", "wp", "present_wp", {("pt0", ("marker(uffd-wp)", "none"))}),
    ("shmem", "none", "migration", {("none", None)}),
])
def test_each_entry_kind_through_zap(vma, uffd, kind, result):
    assert ends(vma=vma, uffd=uffd, ptes=f"{kind},present", **ZAP_ONLY) == result


def test_any_skipped_is_witnessed_and_keeps_the_table():
    r = run("no_lost_pte", vma="shmem", uffd="wp", ptes="present,present_wp")
    assert r.verdict == "holds"
    assert {w.name: w.found for w in r.witnesses} == {"any_skipped": True, "reader rechecks": True}


def test_a_zap_that_skipped_must_not_reclaim():
    """A zap that forgets any_skipped (the guard switched off) unlinks a table holding a guard
    marker: lost."""
    r = workflow.check(ROOT / "properties" / "no_lost_pte.py", without=["any_skipped_check"],
                       settings={"ptes": "guard,present", "faults": "0", "walkers": "0", "readers": "0"})
    assert r.verdict == "violated" and r.violation.check == "never unlink-mapped-table"
    assert r.violation.message == "zap unlinks pt0, which still maps marker(guard)"


def test_delayed_rmap_flushes_under_the_ptl_without_breaking_the_loop():
    r = run("no_lost_pte", vma="shmem", ptes="dirty,dirty", force_break=False)
    assert r.verdict == "holds"
    found = {w.name: w.found for w in r.witnesses}
    assert found["delayed rmap flush"] and found["zap.clear_pmd"]
    # the rmap goes only after the flush: never a state with the folio unmapped in rmap while
    # its translation may still be cached (the gather still has the range)
    m = Reclaim({"vma": "shmem", "ptes": "dirty,dirty", **{k: str(v) for k, v in ZAP_ONLY.items()}})
    for st in reachable(m):
        if st["zap.delayed_rmap"]:
            assert st["zap.tlb_range"] is not None
            assert all(st[f"d{h}.mapcount"] == 1 for h in st["zap.delayed_rmap"])


# --- huge pmds, fault kinds, walkers, readers ------------------------------------------------------

def test_huge_pmd_zapped_split_and_faulted():
    r = run("no_leak", huge_pmd=True, thp=True)
    assert r.verdict == "holds"
    assert {w.name for w in r.witnesses if w.found} == {
        "zap.zap_huge_pmd_unlock", "walker.split_huge_pmd_unlock", "fault.huge_install->huge_unlock"}
    assert r.states == 60238


def test_zap_huge_pmd_frees_the_deposited_table():
    assert ends(huge_pmd=True, **ZAP_ONLY) == {("none", None)}
    r = run("no_leak", huge_pmd=True, **ZAP_ONLY)
    # Hand count: the zap alone, one state per step (zap_pmd_range, zap_huge_pmd, its locked
    # part, its unlock, tlb_finish_mmu) and done; nothing is queued for RCU.
    assert (r.verdict, r.states) == ("holds", 6)


SMALL = dict(walkers=0, readers=0, need_resched=False)


def test_read_and_mthp_faults_are_witnessed():
    read = run("no_lost_pte", fault="read", **SMALL)
    assert read.verdict == "holds" and {"zero-page fault"} <= {w.name for w in read.witnesses if w.found}
    mthp = run("no_lost_pte", fault="mthp", **SMALL)
    assert mthp.verdict == "holds" and {"mTHP fault"} <= {w.name for w in mthp.witnesses if w.found}
    both = run("no_lost_pte", fault="any", **SMALL)
    assert both.verdict == "holds"
    assert (read.states, mthp.states, both.states) == (read.states, mthp.states, both.states)


def test_write_fault_on_the_zero_page_copies_it_and_on_a_uffd_wp_page_goes_to_userspace():
    cow = run("no_lost_pte", ptes="zero,present", **SMALL)
    assert cow.verdict == "holds" and {w.name: w.found for w in cow.witnesses}["fault.wp_page_copy"]
    ends_cow = {(str(st["pt0.e0"]), st["fault.pc"]) for st in reachable(Reclaim({"ptes": "zero,present",
                                                                                 **{k: str(v) for k, v in ZAP_ONLY.items()},
                                                                                 "faults": "1"}))
                if st["fault.pc"] == "done" and st["zap.pc"] == "zap_pmd_range"}
    assert ends_cow == {("present(d3,dirty)", "done")}  # the fault alone: the zero page copied
    wp = reachable(Reclaim({"uffd": "wp", "ptes": "present_wp,present", **{k: str(v) for k, v in ZAP_ONLY.items()},
                            "faults": "1"}))
    assert {str(st["pt0.e0"]) for st in wp if st["fault.pc"] == "done" and st["zap.pc"] == "zap_pmd_range"} == \
        {"present(d1,uffd-wp)"}  # handle_userfault(VM_UFFD_WP): the protected page stays


def test_mthp_falls_back_in_a_userfaultfd_armed_vma():
    assert type(next(t for t in Reclaim({"fault": "mthp", "uffd": "wp"}).threads() if t.name == "fault")).__name__ \
        == "MthpFault"  # the same class ...
    states = reachable(Reclaim({"fault": "mthp", "uffd": "wp", **{k: str(v) for k, v in ZAP_ONLY.items()},
                                "faults": "1"}))
    assert not any(st["fault.nr"] == 2 for st in states)  # ... but alloc_anon_folio() falls back


def test_walker_retries_after_null():
    r = run("no_uaf", faults=0, readers=0, need_resched=False, force_break=False)
    assert r.verdict == "holds" and {w.name: w.found for w in r.witnesses}["ACTION_AGAIN"]


def test_reader_locks_only_when_it_read_none():
    """filemap_fault_recheck_pte_none(): the ptl only for a recheck of a none entry."""
    from ptmc.properties import reachable as witness
    r = run("no_uaf", faults=0, walkers=0, need_resched=False, force_break=False)
    assert r.verdict == "holds"
    m = Reclaim({"faults": "0", "walkers": "0", "need_resched": "false", "force_break": "false"})
    r = check_model(m, [witness("reader.ro_read->done", "saw the page: no lock"),
                        witness("reader.ro_read->ro_lock", "saw none: lock and recheck")])
    assert r.verdict == "holds" and all(w.found for w in r.witnesses)


# --- the hardware -----------------------------------------------------------------------------

def test_no_hardware_walk_through_a_free_table_in_mainline():
    r = run("no_hw_walk_free")
    assert (r.verdict, r.states) == ("holds", 5525)


def test_tlb_coherence_is_violated_by_mainline_k6():
    r = run("tlb_coherent")
    assert r.verdict == "violated" and r.violation.check == "never tlb-incoherent"
    steps = [(t.thread, t.step) for t in r.trace]
    # cpu0 caches e0 through pt0; the zap clears it and unlinks pt0 (its flush still pending);
    # the fault installs pt1 and maps e0; cpu0 caches e0 through pt1 too.
    first_walk = steps.index(("cpu0", "walk"))
    unlinked = steps.index(("zap", "clear_pmd"))
    installed = steps.index(("fault", "install"))
    assert first_walk < unlinked < installed < len(steps) - 1 and steps[-1] == ("cpu0", "walk")
    assert not any(s == ("zap", "tlb_finish_flush") for s in steps)  # before the deferred flush
    assert r.violation.message == ("cpu0 caches address 0 through pt1 (d3) while it still caches a "
                                   "translation of it through pt0 (d1)")


def test_huge_then_small_is_incoherent_too():
    """K6 case 1: a zapped huge pmd replaced by a table before the flush."""
    r = run("tlb_coherent", huge_pmd=True)
    assert r.verdict == "violated"
    assert "through a huge pmd" in r.violation.message or "a huge pmd" in r.violation.message


# --- refused combinations ------------------------------------------------------------------------

@pytest.mark.parametrize("settings, message", [
    ({"vma": "shmem", "ptes": "zero,present"}, "ptes: a MAP_SHARED shmem mapping has no zero entries"),
    ({"ptes": "present"}, "parameter ptes lists 1 entries but entries=2: give one kind per entry"),
    ({"ptes": "present,bogus"}, "parameter ptes: unknown entry kind 'bogus'"),
    ({"ptes": "present,uffd_wp"}, "ptes: uffd_wp entries exist only in a uffd-wp VMA: set uffd=wp"),
    ({"vma": "shmem", "thp": "true"}, "thp: huge faults are modelled for anonymous memory only"),
    ({"ptes": "swap,present"}, "ptes: entry 0 is the one faults touch"),
    ({"fault": "mthp", "entries": "1", "ptes": ""}, "fault=mthp maps an order-1 folio over entries 0-1"),
])
def test_parameter_combinations_outside_the_model_are_refused(settings, message):
    with pytest.raises(PtmcError) as e:
        Reclaim(settings)
    assert str(e.value).startswith(message)


# --- mainline in every configuration the kernel allows -------------------------------------------

ALL_CHECKS = [c for name in ("no_uaf", "no_lost_pte", "no_leak", "no_deadlock")
              for c in load_property(ROOT / "properties" / f"{name}.py").checks]


@pytest.mark.parametrize("config", allowed(), ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_mainline_holds_in_every_allowed_configuration(config):
    """Every check of no_uaf, no_lost_pte, no_leak and no_deadlock at once, with the readers
    left out to keep the suite short (the full-size runs are in the commit message)."""
    model = Reclaim({**{k: str(v) for k, v in config.items()}, "readers": "0"})
    r = check_model(model, ALL_CHECKS)
    assert r.verdict == "holds", r.violation
    assert all(w.found for w in r.witnesses)
