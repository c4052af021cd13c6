"""The 2022 RFC model: exact counts and safe reclaim as written; the lost update of
refcount_outside_ptl and the lost mapping it leads to."""
from __future__ import annotations

import pytest

from ptmc import workflow
from ptmc.explore import System, explore
from ptmc.model import load_model_class, load_module

from conftest import ROOT

MODEL = ROOT / "model" / "refcount2022.py"
EXACT = ROOT / "properties" / "refcount2022_exact.py"
NO_LOST = ROOT / "properties" / "refcount2022_no_lost_mapping.py"
VARIANT = ["refcount_outside_ptl"]

# Regression value: states of the 2022 model with default parameters. It changes whenever the
# model gains or loses a step or a variable; update it deliberately.
HOLDS_STATES = 333


@pytest.fixture(scope="module")
def lost_update():
    return workflow.check(EXACT, variants=VARIANT)


@pytest.fixture(scope="module")
def lost_mapping():
    return workflow.check(NO_LOST, variants=VARIANT)


def states_of(variants=(), **params):
    """Every reachable state as {name: shown value}, thread pcs as step names."""
    system = System(load_model_class(MODEL)(params, list(variants)))
    ex = explore(system, [])
    assert ex.verdict == "holds"
    layout = system.layout
    return [{n: layout.show_slot(i, v) for i, (n, v) in enumerate(zip(layout.names, st))}
            for st in ex.store.states]


# --- as written: both properties hold ---------------------------------------------------------

@pytest.mark.parametrize("prop", [EXACT, NO_LOST])
def test_rfc_as_written_holds(prop):
    result = workflow.check(prop)
    assert result.verdict == "holds", result.violation
    assert result.states == HOLDS_STATES
    assert result.threads == ["fault", "madvise", "free_ptes"]
    assert all(o.status == "proved" for o in result.obligations)


def test_both_kinds_of_pte_page_are_freed():
    """free_ptes frees an empty table (after the zap) and an all-zero-page one (after a read
    fault filled the last entry with the zero page): both are reachable."""
    freeing = [s for s in states_of() if s["free_ptes.pc"] == "free"]
    assert freeing
    kinds = {tuple(s[f"pt0.e{i}"] for i in range(2)) for s in freeing if s["free_ptes.table"] == "pt0"}
    assert ("none", "none") in kinds
    assert ("zero-page", "zero-page") in kinds
    assert all(all(e in ("none", "zero-page") for e in k) for k in kinds)


def test_mmap_write_lock_excludes_faults_and_zaps():
    outside = {"fault": ("mmap_read_lock", "done"), "madvise": ("mmap_read_lock", "done")}
    for s in states_of(VARIANT):
        if s["mmap_lock"].startswith("write"):
            for thread, allowed in outside.items():
                assert s[f"{thread}.pc"] in allowed, s


def test_too_narrow_field_is_seen_by_exploration_too():
    """With one bit for the mapped count, the second mapped entry carries out of the field:
    the small instance catches it as z3 does at 512 entries, at the step whose
    track_pte_set() no longer does what its declared effect says."""
    result = workflow.check(EXACT, settings={"mapped_bits": "1"})
    assert result.explored_verdict == "violated"
    assert result.violation.check == "effects match code"
    assert result.violation.message.startswith(
        "fault.set_pte (mm/memory.c:do_anonymous_page) changed pt0: mapped 1->0,")
    assert [o.status for o in result.obligations] == ["proved"]  # about counts, not widths


# --- refcount_outside_ptl: the lost update ---------------------------------------------------

def test_outside_ptl_loses_the_fault_update(lost_update):
    r = lost_update
    assert r.verdict == "violated" and r.explored_verdict == "violated"
    assert r.variants == VARIANT
    assert r.violation.check == "pte_refcount exact"
    # The zap's read-modify-write spans the fault's update under the ptl ...
    steps = [(st.thread, st.step) for st in r.trace]
    load = steps.index(("madvise", "account_load"))
    fault = steps.index(("fault", "set_pte"))
    store = steps.index(("madvise", "account_store"))
    assert load < fault < store == len(steps) - 1
    assert ("madvise", "unlock") in steps[:load]
    # ... which it never held: the ptl is free when it stores.
    assert r.trace[store].changes.get("pt0.ptl") is None
    assert "pt0.pte_refcount" in r.trace[fault].changes
    # What is left: a page that maps an entry while both counts read zero.
    assert r.trace[store].changes["pt0.pte_refcount"][1].startswith("0x0 ")
    assert "mapped=0, zero=0, entries=1" in r.violation.message
    # z3 agrees: the batched update is where the count stops being inductive.
    (o,) = r.obligations
    assert o.status == "failed" and "madvise.account_store" in o.detail


def test_lost_update_leads_to_freeing_a_mapped_page(lost_mapping):
    r = lost_mapping
    assert r.verdict == "violated"
    assert r.violation.message == ("pt0 is unlinked from the pmd but still maps e1=present(d1): "
                                   "the mapping is lost")
    last = r.trace[-1]
    assert (last.thread, last.step, last.kernel_function) == \
        ("free_ptes", "pmd_clear", "mm/pte_ref.c:kfreeptd_pmd_entry")
    steps = [(st.thread, st.step) for st in r.trace]
    # The write fault mapped d1 between the zap's load and store; free_ptes then trusted the
    # zeroed count.
    assert steps.index(("madvise", "account_load")) < steps.index(("fault", "set_pte")) \
        < steps.index(("madvise", "account_store")) < steps.index(("free_ptes", "check"))
    fault = r.trace[steps.index(("fault", "set_pte"))]
    assert fault.changes["pt0.e1"][1] == "present(d1)"


# --- the encoding the model runs -------------------------------------------------------------

def test_pte_ref_encoding_on_ints():
    ref = load_module(MODEL, "model").PteRef()
    assert (ref.PTE_MAPPED_OFFSET, ref.PTE_ZERO_OFFSET) == (1, 1 << 10)
    assert (ref.PTE_MAPPED_MASK, ref.PTE_ZERO_MASK) == (0x3FF, 0xFFC00)
    word = ref.pte_refcount_add(ref.pte_refcount_add(0, 3 * ref.PTE_MAPPED_OFFSET), 2 * ref.PTE_ZERO_OFFSET)
    assert word == 0x803
    assert (ref.pte_mapped_count(word), ref.pte_zero_count(word)) == (3, 2)
    assert ref.pte_refcount_sub(0, 1) == 2**64 - 1  # unsigned long wraps, it does not go negative


def test_two_zaps_can_underflow_the_count(tmp_path):
    """A second consequence: with two zaps, one may store a stale count smaller than what it
    subtracts. The unsigned long borrows across the fields: the empty page reads 1023 mapped
    and 1022 zero-page entries, so free_ptes never frees it. No declared effect covers a
    borrow, so the link reports the store."""
    prop = tmp_path / "only_uaf.py"
    prop.write_text(f'"""Only use-after-free."""\nfrom ptmc.properties import never\n'
                    f'MODEL = {str(MODEL)!r}\nCHECKS = [never("use-after-free")]\n')
    r = workflow.check(prop, variants=VARIANT, settings={"zaps": "2"})
    assert r.verdict == "violated" and r.violation.check == "effects match code"
    assert r.violation.message.startswith("madvise")
    assert ".account_store (mm/pte_ref.c:pte_refcount_sub) changed pt0: mapped 0->1023, zero 0->1022," \
        in r.violation.message
    assert "no declared effect applies" in r.violation.message
    assert r.trace[-1].changes["pt0.pte_refcount"][1].startswith("0xfffffffffffffbff ")


# --- the actors the mmap write lock does not exclude (protocol.md section 3, Gen 2 "Review gaps")

NO_UAF = ROOT / "properties" / "no_uaf.py"


def check_2022(prop, **settings):
    return workflow.check(prop, model_path=MODEL, settings={k: str(v) for k, v in settings.items()})


def test_an_rmap_walker_loses_its_swap_entry_to_free_ptes():
    """try_to_unmap_one() holds the anon_vma lock and the ptl, not mmap_lock. The RFC's hooks
    count its ptep_clear_flush() (mapped 1 -> 0) before its set_pte_at() of the swap entry, and
    free_ptes, which reads the count under pml only, frees the table in between: the swap entry
    goes into an unlinked table (the page's data is lost) and the rmap walker still holds its ptl."""
    r = check_2022(NO_LOST, rmap_walkers=1)
    assert r.verdict == "violated" and r.violation.check == "no_mapping_in_unlinked_table"
    trace = [(st.thread, st.step) for st in r.trace]
    assert (r.states, len(trace)) == (2420, 25)
    assert trace[-5:] == [("rmap", "check_pte"), ("rmap", "unmap_clear"), ("free_ptes", "check"),
                          ("free_ptes", "pmd_clear"), ("rmap", "unmap_set_swap")]
    assert trace.index(("madvise", "zap")) < trace.index(("fault", "set_pte")) < trace.index(("free_ptes", "mmap_write_lock"))


def test_an_rmap_walker_maps_a_table_free_ptes_unlinked():
    r = check_2022(NO_UAF, rmap_walkers=1)
    assert r.verdict == "violated" and r.violation.check == "never use-after-free"
    assert [(st.thread, st.step) for st in r.trace][-4:] == [
        ("rmap", "anon_vma_lock_read"), ("rmap", "pvmw_pmd"), ("free_ptes", "pmd_clear"), ("rmap", "map_pte")]
    # with the counts exact at every step: the hooks see the walker's writes
    assert check_2022(EXACT, rmap_walkers=1).violation.check == "effects match code"


@pytest.mark.parametrize("flush, verdict, states", [("ipi", "holds", 1814), ("broadcast", "violated", 1274)])
def test_gup_fast_against_the_immediate_free(flush, verdict, states):
    """free_ptes' __free_page() right after flush_tlb_range(): an IPI flush waits for the
    IRQs-off GUP-fast; a broadcast one frees the table under it."""
    r = check_2022(NO_UAF, gup_fast=1, tlb_flush=flush)
    assert (r.verdict, r.states) == (verdict, states)
    if verdict == "violated":
        trace = [(st.thread, st.step) for st in r.trace]
        assert trace[-7:] == [("gup_fast", "gup_fast_pmd"), ("free_ptes", "pmd_clear"), ("free_ptes", "flush_tlb_range"),
                              ("free_ptes", "unlock"), ("free_ptes", "mmap_write_unlock"), ("free_ptes", "free"),
                              ("gup_fast", "gup_fast_pte")]
