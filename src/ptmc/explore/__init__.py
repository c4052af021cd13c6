"""Exploration: the system to explore, the BFS over it, and traces out of it."""
from __future__ import annotations

from ..model import Model
from ..result import Result, Violation
from .bfs import Exploration, explore
from .system import System
from .trace import trace_steps

__all__ = ["System", "explore", "check_model", "explore_model", "Exploration"]


def explore_model(model: Model, checks, *, max_states: int | None = None,
                  progress=None, limit=None) -> tuple[System, Exploration]:
    system = System(model)
    return system, explore(system, checks, max_states=max_states, progress=progress, limit=limit)


def check_model(model: Model, checks, *, property_name: str = "", max_states: int | None = None,
                progress=None, limit=None) -> Result:
    """Explore ``model`` exhaustively against ``checks`` and describe the outcome."""
    system, ex = explore_model(model, checks, max_states=max_states, progress=progress, limit=limit)
    return describe(system, ex, model, checks, property_name)


def describe(system: System, ex: Exploration, model: Model, checks, property_name: str) -> Result:
    result = Result(
        property=property_name,
        model=model.name,
        variants=list(model.variant_names),
        params=dict(model.param_values),
        threads=[t.name for t in system.threads],
        verdict=ex.verdict,
        states=len(ex.store.states),
        transitions=ex.transitions,
        depth=max(ex.depth, ex.found.length) if ex.found else ex.depth,
        seconds=ex.seconds,
        checks=[c.name for c in checks],
        reason=ex.reason,
        deadlocks=ex.deadlocks,
        initial={n: system.layout.show_slot(i, v) for i, (n, v) in enumerate(zip(system.layout.names, system.initial))},
    )
    if ex.found is not None:
        result.violation = Violation(ex.found.check.name, ex.found.check.kind, ex.found.message)
        result.trace = trace_steps(system, ex)
    return result
