"""The visited store: every state reached, its number, and the state it was first reached from.

A dict from the flat state tuple to its number, a list of states and an array of parent
numbers: 8 bytes a slot plus ~150 bytes of tuple, dict and parent overhead (about 750 bytes
for the reclaim model's 70 slots, see bench/), exact, with no collisions. A networkx node
costs several times that; graphs for display are built from the store afterwards.

Python's dict merges keys that are equal, and ``False == 0``, ``1 == 1.0``, ``PT((0, 1)) ==
(0, 1)``. A state found equal to a stored one is therefore checked with ``identical``; the
rare equal-but-different state is kept as a *twin* of the first, so no two different states
are ever one.
"""
from __future__ import annotations

from array import array
from operator import is_

from ..errors import ModelError
from ..state import identical


class StoreFull(Exception):
    """A new state was reached with ``capacity`` states stored (``--max-states``)."""


class Store:
    def __init__(self, capacity: int | None = None):
        self.capacity = capacity  # at most this many states (--max-states); None: no limit
        self.states: list[tuple] = []
        self.index: dict[tuple, int] = {}  # by Python equality: the first of equal states
        self.twins: dict[int, list[int]] = {}  # first -> the other states equal to it
        self.parent = array("q")

    def __len__(self) -> int:
        return len(self.states)

    def _first(self, state: tuple) -> int | None:
        try:
            return self.index.get(state)
        except TypeError:
            raise ModelError("a thread local or shared variable holds an unhashable value "
                             "(use tuples, not lists or dicts)") from None

    def find(self, state: tuple) -> int | None:
        """The number of ``state``, or None if it was never stored."""
        n = self._first(state)
        if n is None or identical(self.states[n], state):
            return n
        return next((m for m in self.twins.get(n, ()) if identical(self.states[m], state)), None)

    def add(self, state: tuple, parent: int) -> bool:
        """Store ``state`` (first reached from ``parent``); false if it was already there."""
        n = self._first(state)
        number = len(self.states)
        if n is None:
            if number == self.capacity:
                raise StoreFull
            self.index[state] = number
        elif all(map(is_, self.states[n], state)) or identical(self.states[n], state):
            return False  # (the quick test first: equal states mostly hold the same objects)
        else:
            twins = self.twins.setdefault(n, [])
            if any(identical(self.states[m], state) for m in twins):
                return False
            if number == self.capacity:
                raise StoreFull
            twins.append(number)
        self.states.append(state)
        self.parent.append(parent)
        return True

    def path(self, number: int) -> list[int]:
        out = []
        while number >= 0:
            out.append(number)
            number = self.parent[number]
        return out[::-1]
