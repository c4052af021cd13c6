"""Exhaustive breadth-first exploration: every interleaving, shortest counterexample first.

The visited store is a dict from the flat state tuple to its number, a list of states and an
array of parent numbers: 8 bytes a slot plus ~150 bytes of tuple, dict and parent overhead
(about 750 bytes for the reclaim model's 70 slots, see bench/), exact, with no collisions.
A networkx node costs several times that; graphs for display are built from the store
afterwards (see graph.py).

Exploration goes level by level. A violation found while expanding level d is d+1 steps
long; the rest of level d is still scanned for deadlocks and end-state failures, which are d
steps long, so what is reported is a shortest counterexample, and always the same one.
"""
from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field

from ..errors import ModelError
from ..result import HOLDS, INCONCLUSIVE, VIOLATED
from ..smt.link import effect_link
from .system import System, Transition


@dataclass
class Found:
    check: object  # properties.Check
    message: str
    length: int
    state: int  # number of the last state before the violating transition (or the state itself)
    transition: Transition | None = None  # the violating transition, for events and invariants
    target: tuple | None = None


class StoreFull(Exception):
    """A new state was reached with ``capacity`` states stored (``--max-states``)."""


@dataclass
class Store:
    """Every state reached, its number, and the number of the state it was first reached from."""

    states: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    parent: array = field(default_factory=lambda: array("q"))
    capacity: int | None = None

    def add(self, state: tuple, parent: int) -> bool:
        try:
            if state in self.index:
                return False
        except TypeError:
            raise ModelError("a thread local or shared variable holds an unhashable value "
                             "(use tuples, not lists or dicts)") from None
        if len(self.states) == self.capacity:
            raise StoreFull
        self.index[state] = len(self.states)
        self.states.append(state)
        self.parent.append(parent)
        return True

    def path(self, number: int) -> list[int]:
        out = []
        while number >= 0:
            out.append(number)
            number = self.parent[number]
        return out[::-1]


@dataclass
class Exploration:
    verdict: str
    store: Store
    transitions: int
    depth: int
    seconds: float
    found: Found | None = None
    reason: str = ""
    deadlocks: int = 0


def explore(system: System, checks, max_states: int | None = None, progress=None,
            limit=None) -> Exploration:
    """``limit``: called after each state expanded; a reason (str) to stop as inconclusive, or
    None (see limits.MemoryLimit)."""
    events = {c.event: c for c in checks if c.kind == "never"}
    invariants = [c for c in checks if c.kind == "invariant"]
    at_end = [c for c in checks if c.kind == "at_end"]
    deadlock_check = next((c for c in checks if c.kind == "deadlock_free"), None)

    store = Store(capacity=max_states)
    store.add(system.initial, -1)
    start = time.monotonic()
    transitions = deadlocks = depth = 0
    found = _invariant_failure(system, invariants, system.initial, 0, None, -1)
    link = effect_link(system)  # declared step effects vs code, for models with counters (smt/link.py)
    if found is None and link is not None and (message := link.initial(system.initial)):
        found = Found(link.check, message, 0, 0)
    level_end, i, reason = 1, 0, ""
    next_report = start + 1.0
    states = store.states

    def counts():
        return (f"{len(states)} states, {transitions} transitions, depth {depth}, "
                f"{len(states) - i} states not yet expanded")
    try:
        while found is None or found.length > depth:
            if i == level_end:
                if found is not None or i == len(states):
                    break
                depth += 1
                level_end = len(states)
            state = states[i]
            succ = system.successors(state)
            transitions += len(succ)
            if not succ:
                stuck = system.unfinished(state)
                if stuck:
                    deadlocks += 1
                    if deadlock_check and (found is None or found.length > depth):
                        found = Found(deadlock_check, _deadlock_message(system, state, stuck), depth, i)
                elif at_end and (found is None or found.length > depth):
                    found = _end_failure(system, at_end, state, depth, i) or found
            if found is None:
                for tr, nxt in succ:
                    for kind, message in tr.events:
                        check = events.get(kind)
                        if check is not None:
                            found = Found(check, message, depth + 1, i, tr, nxt)
                            break
                    if found is not None:
                        break
                    if link is not None and (message := link.transition(state, tr, nxt)):
                        found = Found(link.check, message, depth + 1, i, tr, nxt)
                        break
                    if store.add(nxt, i) and invariants:
                        found = _invariant_failure(system, invariants, nxt, depth + 1, tr, i)
                        if found is not None:
                            break
            i += 1
            if limit is not None and (stop := limit()):
                reason = f"{stop}: {counts()}"
                break
            if progress is not None and time.monotonic() >= next_report:
                now = time.monotonic()
                progress(len(states), transitions, depth, len(states) - i, now - start)
                next_report = now + 1.0
    except StoreFull:
        reason = f"state limit {max_states} reached: {counts()}"
    except KeyboardInterrupt:
        reason = f"interrupted: {counts()}"
    except MemoryError:  # the limit came too late: report what the store holds
        reason = f"out of memory (MemoryError): {counts()}"
    seconds = time.monotonic() - start
    if found is not None:
        verdict = VIOLATED
    elif reason:
        verdict = INCONCLUSIVE
    else:
        verdict = HOLDS
    return Exploration(verdict, store, transitions, depth, seconds, found, reason, deadlocks)


def _invariant_failure(system, invariants, state, length, tr, parent) -> Found | None:
    for check in invariants:
        message = _evaluate(system, check, state)
        if message is not None:
            if tr is None:
                return Found(check, message, 0, 0)
            return Found(check, message, length, parent, tr, state)
    return None


def _end_failure(system, at_end, state, depth, number) -> Found | None:
    for check in at_end:
        message = _evaluate(system, check, state)
        if message is not None:
            return Found(check, message, depth, number)
    return None


def _evaluate(system, check, state) -> str | None:
    try:
        verdict = check.fn(system.view(state))
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug in a property: say which, and where
        raise ModelError(f"check {check.name} raised {type(e).__name__}: {e}; "
                         f"state: {system.layout.describe(state)}") from None
    if verdict is True or verdict is None:
        return None
    return verdict if isinstance(verdict, str) else f"{check.name} is false"


def _deadlock_message(system, state, stuck) -> str:
    where = ", ".join(f"{system.threads[t].name} at {system.layout.show_slot(system.layout.pc_slot[t], state[system.layout.pc_slot[t]])}"
                      for t in stuck)
    return f"no thread can move; unfinished: {where}"
