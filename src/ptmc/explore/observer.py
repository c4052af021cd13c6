"""What the explorer calls and knows nothing else about: observers and reductions.

An *observer* is a per-transition check that is not a property of one state, such as the z3
effect link (ptmc.smt.link, supplied by ``Model.observers``); like Stateright's visitor, the
explorer calls it on the initial state and on every transition it looks at, and reports what
it returns. A *reduction* (ptmc.reduce, switched on by name: ``--symmetry``) changes what is
stored, never how steps run. The explorer imports neither room: tests/test_layering.py keeps
it so.
"""
from __future__ import annotations

from typing import Protocol


class Observer(Protocol):
    check: object  # the properties.Check it reports as

    def initial(self, state: tuple) -> str | None:
        """What is wrong with the initial state, or None."""

    def transition(self, state: tuple, tr, nxt: tuple) -> str | None:
        """What is wrong with the transition ``tr`` from ``state`` to ``nxt``, or None."""


class Reduction(Protocol):
    name: str  # as the headline and the result say it ("symmetry")

    def refuse(self, checks) -> None:
        """An input error for a check the reduction cannot keep."""

    def wrap(self, store):
        """The store to explore into (it may store representatives and replay paths)."""

    def taken(self, taken: set) -> set:
        """The (tid, pc) steps the explored ones stand for."""
