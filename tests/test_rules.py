"""Every rule model of tests/rules/ gives exactly its expected outcome: verdict, violated
check, counterexample length and state count. Each model pins down one rule of the explorer
or of a kernel primitive; bench/mutation.py also runs them as its verdict corpus."""
from __future__ import annotations

import pytest

from rules import CASES


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case):
    r = case.run()
    outcome = (r.verdict, r.violation.check if r.violation else None, len(r.trace), r.states, r.depth)
    assert outcome == (case.verdict, case.check, case.steps, case.states, case.depth), case.rule


@pytest.mark.xfail(strict=True, reason="kernel/mmu_gather.py keeps one batch rcu_head per thread: a second "
                                       "batch handed to RCU before the first's grace period is a false "
                                       "double-call-rcu (see rules/gather.py SECOND_BATCH)")
def test_second_batch_in_flight_is_not_a_double_call_rcu():
    from rules.gather import SECOND_BATCH
    r = SECOND_BATCH.run()
    assert r.verdict == "holds", r.violation
