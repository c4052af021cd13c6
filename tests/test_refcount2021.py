"""The two verdicts of the 2021 pte_refcount model against properties/no_uaf.py."""
from __future__ import annotations

import pytest

from conftest import MODEL, PROPERTY
from ptmc import workflow
from ptmc.testing import assert_holds

# Regression value: states of the full (fixed) 2021 model with default parameters. It changes
# whenever the model gains or loses a step or a variable; update it deliberately.
# (1684 before free_pte_table() gained its flush_tlb step; 1853 with it.)
HOLDS_STATES = 1853


@pytest.fixture(scope="module")
def broken():
    return workflow.check(PROPERTY, model_path=MODEL, variants=["no_try_get"])


def test_no_try_get_is_violated(broken):
    assert broken.verdict == "violated"
    assert broken.exit_code == 1
    assert broken.model == "refcount2021" and broken.property == "no_uaf"
    assert broken.variants == ["no_try_get"]
    assert broken.violation.check == "never use-after-free"
    assert broken.violation.kind == "never"
    assert broken.threads == ["walker", "madvise", "fault"]


def test_no_try_get_counterexample_shape(broken):
    trace = broken.trace
    # It starts with the walker's lockless pmd check (walk_pmd_range sees a table) ...
    assert (trace[0].thread, trace[0].step) == ("walker", "check_pmd")
    assert trace[0].kernel_function == "mm/pagewalk.c:walk_pmd_range"
    # ... and ends with the walker's pte_offset_map_lock() on what is no longer a table.
    last = trace[-1]
    assert last.thread == "walker"
    assert last.kernel_function == "include/linux/mm.h:pte_offset_map_lock"
    assert [kind for kind, _ in last.events] == ["use-after-free"]
    assert "walker" in last.events[0][1]
    assert last.events[0][1] == broken.violation.message
    # In between, madvise frees the table: free_pte_table() clears the pmd before the
    # walker's last step, and the walker did nothing else in between.
    free_steps = [i for i, st in enumerate(trace)
                  if st.thread == "madvise" and st.kernel_function == "mm/pte_ref.c:free_pte_table"]
    assert free_steps and max(free_steps) < len(trace) - 1
    clears = [i for i, st in enumerate(trace) if st.changes.get("pmd", (None, None))[1] == "none"]
    assert len(clears) == 1
    assert trace[clears[0]].thread == "madvise" and clears[0] in free_steps
    assert [st.thread for st in trace[1:-1]] == ["madvise"] * (len(trace) - 2)
    # madvise first zapped every entry, dropping the count to zero.
    put = [st for st in trace if st.step == "put"]
    assert len(put) == 1 and put[0].changes["pt0.pte_refcount"][1] == "0"
    assert trace.index(put[0]) < clears[0]


def test_full_model_holds_with_pinned_state_count():
    r = assert_holds(PROPERTY, model=MODEL)
    assert r.violation is None and r.trace == []
    assert r.variants == []
    assert r.states == HOLDS_STATES


def test_full_model_holds_without_split_ptlocks():
    r = assert_holds(PROPERTY, model=MODEL, split_ptlocks=False)
    assert r.params["split_ptlocks"] is False
    # one lock for everything merges interleavings that split ptlocks keep apart
    assert r.states < HOLDS_STATES


def test_determinism_in_process(broken):
    again = workflow.check(PROPERTY, model_path=MODEL, variants=["no_try_get"])
    assert (again.states, again.transitions, again.depth) == (broken.states, broken.transitions, broken.depth)
    assert again.trace == broken.trace
    assert again.violation == broken.violation


@pytest.mark.parametrize("flush, verdict, states", [("ipi", "holds", 20016), ("broadcast", "violated", 4610)])
def test_gup_fast_against_free_pte_table(flush, verdict, states):
    """v1 5/7 frees the table right after the TLB flush and GUP-fast takes no reference: safe
    only while the flush is an IPI that the IRQs-off GUP-fast holds off."""
    r = workflow.check(PROPERTY, model_path=MODEL, settings={"gup_fast": "1", "tlb_flush": flush})
    assert (r.verdict, r.states) == (verdict, states)
    if verdict == "violated":
        trace = [(st.thread, st.step) for st in r.trace]
        assert trace[-6:] == [("gup_fast", "gup_fast_pmd"), ("madvise", "free_clear_pmd"), ("madvise", "free_unlock"),
                              ("madvise", "flush_tlb"), ("madvise", "free_table"), ("gup_fast", "gup_fast_pte")]
