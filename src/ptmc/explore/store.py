"""The visited store: every state reached, its number, and the state it was first reached from.

A list of states, an array of parent numbers, and an index from state to number: exact, with
no collisions, 8 bytes a slot plus the index and tuple overhead (about 700 bytes for the
reclaim model's ~80 slots, see bench/). A networkx node costs several times that; graphs for
display are built from the store afterwards.

``IdentityStore``, for states made of canonical objects (the compiled system's), indexes them
in C by the objects they hold (explore/_identity.pyx). ``Store`` is a dict from the state
tuple: Python's dict merges keys that are equal, and ``False == 0``, ``1 == 1.0``,
``PT((0, 1)) == (0, 1)``; a state found equal to a stored one is therefore checked with
``identical``, and the rare equal-but-different state is kept as a *twin* of the first, so no
two different states are ever one.
"""
from __future__ import annotations

from array import array
from operator import is_

from ..errors import ModelError
from ..state import apply_writes, identical

try:
    from ._identity import IdentityIndex
except ImportError:  # built without Cython or a C compiler (setup.py): Store does the work
    IdentityIndex = None


UNHASHABLE = "a thread local or shared variable holds an unhashable value (use tuples, not lists or dicts)"


def parent_path(parent, number: int) -> list[int]:
    """State numbers from the initial state to ``number``, following the parent links (every
    store keeps them, -1 at an initial state)."""
    out = []
    while number >= 0:
        out.append(number)
        number = parent[number]
    return out[::-1]


class StoreFull(Exception):
    """A new state was reached with ``capacity`` states stored (``--max-states``)."""


class Store:
    """``canonical``: the ``state.Canonical`` every stored state is built from, if any (the
    compiled system's); while it is not ``mixed``, an equal state is the same state."""

    MEMORY_HINT = "; --store fingerprint keeps ~30 bytes a state instead of the whole state"

    def __init__(self, capacity: int | None = None, canonical=None):
        self.capacity = capacity  # at most this many states (--max-states); None: no limit
        self.canonical = canonical
        self.states: list[tuple] = []
        self.index: dict[tuple, int] = {}  # by Python equality: the first of equal states
        self.twins: dict[int, list[int]] = {}  # first -> the other states equal to it
        self.parent = array("q")
        self.add, self.add_all = self._adder()

    def __len__(self) -> int:
        return len(self.states)

    def take(self, number: int) -> tuple:
        """The state numbered ``number``, to expand (the explorer takes them in order)."""
        return self.states[number]

    def find(self, state: tuple) -> int | None:
        """The number of ``state``, or None if it was never stored."""
        try:
            n = self.index.get(state)
        except TypeError:
            raise ModelError(UNHASHABLE) from None
        if n is None or identical(self.states[n], state):
            return n
        return next((m for m in self.twins.get(n, ()) if identical(self.states[m], state)), None)

    def _adder(self):
        """``add(state, parent)``: store ``state`` (first reached from state number
        ``parent``); false if it was already there. ``add_all(states, parent)``: the same for
        each of ``states``. Closures over the store's parts: they run for every transition
        explored."""
        states, setdefault, canonical = self.states, self.index.setdefault, self.canonical
        append, append_parent = states.append, self.parent.append
        capacity = -1 if self.capacity is None else self.capacity

        def add(state: tuple, parent: int) -> bool:
            number = len(states)
            try:
                first = setdefault(state, number)
            except TypeError:
                raise ModelError(UNHASHABLE) from None
            if first != number:
                if canonical is not None and not canonical.mixed:
                    return False
                if all(map(is_, states[first], state)) or identical(states[first], state):
                    return False  # (the quick test first: equal states mostly hold the same objects)
                twins = self.twins.setdefault(first, [])
                if any(identical(states[m], state) for m in twins):
                    return False
                if number == capacity:
                    raise StoreFull
                twins.append(number)
            elif number == capacity:
                del self.index[state]
                raise StoreFull
            append(state)
            append_parent(parent)
            return True

        def add_all(batch: list, parent: int) -> None:
            """``add`` each state of ``batch`` in order (all first reached from ``parent``)."""
            if canonical is None or canonical.mixed:
                for state in batch:
                    add(state, parent)
                return
            number = len(states)
            for state in batch:  # add() for states of canonical objects, inlined
                try:
                    first = setdefault(state, number)
                except TypeError:
                    raise ModelError(UNHASHABLE) from None
                if first == number:
                    if number == capacity:
                        del self.index[state]
                        raise StoreFull
                    append(state)
                    append_parent(parent)
                    number += 1
        return add, add_all

    def add_changes(self, state: tuple, changes: list, parent: int) -> None:
        """``add`` each successor of ``state`` that ``changes`` gives (see ``state.apply_writes``)."""
        self.add_all(apply_writes(state, changes), parent)

    def stored_since(self, first: int) -> list[tuple]:
        """The states numbered ``first`` on."""
        return self.states[first:]

    def is_stored(self, number: int, state: tuple) -> bool:
        """State ``number`` is ``state``."""
        return identical(self.states[number], state)

    def collision_probability(self) -> None:
        return None  # exact: no state is ever mistaken for another

    def path_states(self, numbers: list[int], system) -> list[tuple]:
        """The states numbered ``numbers``."""
        return [self.states[n] for n in numbers]

    def path(self, number: int) -> list[int]:
        return parent_path(self.parent, number)


class IdentityStore(Store):
    """The exact store for states of canonical objects (see ``exact_store``): the same states,
    numbers and parents as ``Store``, kept by the C index of ``_identity.pyx``, where a state
    is the objects it holds. ``available()``: whether that index was built."""

    def __init__(self, slots: int, capacity: int | None, canonical):
        self.capacity, self.canonical = capacity, canonical
        self.index = IdentityIndex(slots, array("q"), -1 if capacity is None else capacity, StoreFull)
        self.states, self.parent = self.index.states, self.index.parent
        self.add, self.add_changes = self.index.add, self.index.add_changes

    @staticmethod
    def available() -> bool:
        return IdentityIndex is not None

    def add_all(self, batch: list, parent: int) -> None:
        for state in batch:
            self.add(state, parent)

    def find(self, state: tuple) -> int | None:
        try:
            known = tuple(map(self.canonical.known, range(len(state)), state))
        except TypeError:
            raise ModelError(UNHASHABLE) from None
        if any(k is None and v is not None for k, v in zip(known, state)):
            return None  # a value no stored state holds
        return self.index.find(known)


def exact_store(system, capacity: int | None):
    """The exact store for a run of ``system``: the C index where its states are made of
    canonical objects (a compiled system's; the symmetry reduction's representatives are made
    of them too). Were some state not, the index would keep it apart from an equal stored one:
    never one state for two, at worst two for one."""
    canonical = system.canonical
    if canonical is not None and IdentityStore.available():
        return IdentityStore(len(system.initial), capacity, canonical)
    return Store(capacity, canonical)
