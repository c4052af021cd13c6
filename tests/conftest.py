"""Shared helpers for the ptmc test suite.

Small models are defined inside the tests themselves; these helpers only run them and look at
what was reached.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from ptmc.explore import System, explore

ROOT = Path(__file__).resolve().parent.parent
PROPERTY = ROOT / "properties" / "no_uaf.py"
# properties/no_uaf.py's PARAMS add khugepaged's retract on a shmem VMA to its default run on
# reclaim (901,292 states: the one test of it is
# tests/test_reclaim.py::test_default_no_uaf_includes_retract). Tests about anything else run it
# without, in the state space every other property has by default (47,815 states on reclaim).
WITHOUT_RETRACT = {"vma": "anon", "retracts": "0"}
MODEL = ROOT / "model" / "refcount2021.py"
GOLDEN = Path(__file__).resolve().parent / "golden"


def reachable(model) -> list[dict]:
    """Every reachable state of ``model``, as {variable name: raw value}, in BFS order.

    Thread program counters appear as ``<thread>.pc`` holding the *name* of the next step
    (or "done" / "hung" / "oops"), so tests can say where a thread is without pc numbers.
    """
    system = System(model)
    ex = explore(system, [])
    assert ex.verdict == "holds", ex.reason
    layout = system.layout
    out = []
    for state in ex.store.states:
        d = dict(zip(layout.names, state))
        for slot in layout.pc_slot:
            d[layout.names[slot]] = layout.show_slot(slot, state[slot])
        out.append(d)
    return out


def edited_model(tmp_path, name: str, old: str, new: str) -> Path:
    """A copy of model/<name>.py with ``old`` replaced by ``new`` (which must occur): a
    deliberate bug, or a path switched off, for a test to catch."""
    source = (ROOT / "model" / f"{name}.py").read_text()
    assert old in source, old
    path = tmp_path / f"{name}.py"
    path.write_text(source.replace(old, new))
    return path


@pytest.fixture
def in_repo(monkeypatch):
    """Run with the repository root as the working directory (``ptmc list`` scans cwd)."""
    monkeypatch.chdir(ROOT)
    return ROOT
