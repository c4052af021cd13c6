"""Traces: the path to a violation, replayed from the store into readable steps."""
from __future__ import annotations

from ..result import TraceStep
from ..state import show
from .bfs import Exploration
from .system import System, Transition


def transition_between(system: System, before: tuple, after: tuple) -> Transition:
    """The first transition (in exploration order) from ``before`` to ``after``."""
    for tr, nxt in system.successors(before):
        if nxt == after:
            return tr
    raise AssertionError("stored parent does not lead to its child")


def trace_steps(system: System, exploration: Exploration) -> list[TraceStep]:
    found, store = exploration.found, exploration.store
    numbers = store.path(found.state)
    hops = [(transition_between(system, store.states[a], store.states[b]), store.states[a], store.states[b])
            for a, b in zip(numbers, numbers[1:])]
    if found.transition is not None:
        hops.append((found.transition, store.states[found.state], found.target))
    return [_step(system, tr, before, after) for tr, before, after in hops]


def _step(system: System, tr: Transition, before: tuple, after: tuple) -> TraceStep:
    info = system.step_info(tr)
    return TraceStep(
        thread=system.threads[tr.tid].name,
        step=info.name,
        kernel_function=info.kernel_function,
        changes=system.layout.changes(before, after),
        choices=[(label, show(value)) for label, value in tr.choices],
        events=list(tr.events),
    )
