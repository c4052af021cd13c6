"""Every rule model of tests/rules/ gives exactly its expected outcome: verdict, violated
check, counterexample length, state count and depth, on the reference interpreter and on the
compiled system alike. Each model pins down one rule of the explorer or of a kernel primitive;
bench/mutation.py also runs them, on both engines, as its verdict corpus."""
from __future__ import annotations

import pytest

from rules import CASES
from rules.case import ENGINES


def test_case_names_are_unique():
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case, engine):
    assert case.outcome(engine=engine) == case.expected, case.rule
