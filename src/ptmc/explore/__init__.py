"""Exploration: the system to explore, the BFS over it, and traces out of it."""
from __future__ import annotations

from ..errors import PtmcError
from ..model import Model
from ..reduce import REDUCTIONS
from ..result import Result, Violation, Witness
from .bfs import Exploration, explore
from .cluster import explore_cluster
from .compiled import CompiledSystem
from .system import System
from .trace import trace_steps

__all__ = ["System", "explore", "check_model", "explore_model", "Exploration"]


# How steps run: compiled (the default) or the reference interpreter it is tested against.
ENGINES = {"compiled": CompiledSystem, "reference": System}


def explore_model(model: Model, checks, *, max_states: int | None = None,
                  progress=None, limit=None, engine: str = "compiled", store: str = "exact",
                  reductions=(), distributed=None) -> tuple[System, Exploration]:
    """Explore ``model`` against ``checks`` (each bound to the model: an input error if the
    model lacks what it needs), the model's own witnesses and its observers; ``reductions``:
    names of ptmc.reduce (a reduction with nothing to reduce in this model is left out);
    ``distributed``: (backend, partition.Job) to explore on workers (cluster.py)."""
    checks = [c.bind(type(model)) for c in checks]
    system = ENGINES[engine](model)
    checks = with_witnesses(model, checks)
    if distributed is not None:
        if reductions:
            raise PtmcError(f"--{reductions[0]} does not combine with --workers or --cluster")
        backend, job = distributed
        return system, explore_cluster(system, checks, backend, job, max_states=max_states, progress=progress,
                                       limit=limit, observers=model.observers(system))
    active = [r for r in (REDUCTIONS[name](system) for name in reductions) if r]
    return system, explore(system, checks, max_states=max_states, progress=progress, limit=limit,
                           observers=model.observers(system), store=store, reductions=active)


def with_witnesses(model: Model, checks) -> list:
    """``checks`` and the model's own witnesses (a property's witness of the same name wins)."""
    return checks + [w for w in model.witnesses() if w.name not in {c.name for c in checks}]


def check_model(model: Model, checks, *, property_name: str = "", max_states: int | None = None,
                progress=None, limit=None, witness_traces=(), engine: str = "compiled",
                store: str = "exact", reductions=(), distributed=None) -> Result:
    """Explore ``model`` exhaustively against ``checks`` and describe the outcome; with the
    trace of each witness named in ``witness_traces``."""
    system, ex = explore_model(model, checks, max_states=max_states, progress=progress, limit=limit,
                               engine=engine, store=store, reductions=reductions, distributed=distributed)
    return describe(system, ex, model, checks, property_name, witness_traces, store)


def describe(system: System, ex: Exploration, model: Model, checks, property_name: str,
             witness_traces=(), store: str = "exact") -> Result:
    witness_checks = [c for c in checks if c.kind == "reachable"]
    witness_checks += [w for w in model.witnesses() if w.name not in {c.name for c in witness_checks}]
    unknown = [n for n in witness_traces if n not in {c.name for c in witness_checks}]
    if unknown:
        raise PtmcError(f"no witness named {unknown[0]!r} (witnesses: "
                        f"{', '.join(c.name for c in witness_checks) or 'none'})")
    result = Result(
        property=property_name,
        model=model.name,
        variants=list(model.variant_names),
        without=sorted(model.without),
        params=dict(model.param_values),
        threads=[t.name for t in system.threads],
        verdict=ex.verdict,
        states=len(ex.store),
        transitions=ex.transitions,
        depth=max(ex.depth, ex.found.length) if ex.found else ex.depth,
        seconds=ex.seconds,
        checks=[c.name for c in checks if c.kind != "reachable"],
        reason=ex.reason,
        deadlocks=ex.deadlocks,
        initial={n: system.layout.show_slot(i, v) for i, (n, v) in enumerate(zip(system.layout.names, system.initial))},
        unreached=unreached_steps(system, ex),
        checked_events=sorted(c.event for c in checks if c.kind == "never"),
        crashed=ex.crashed,
        store=store,
        collision_probability=ex.store.collision_probability(),
        reductions=list(ex.reductions),
        workers=ex.workers,
        exchanged=ex.exchanged,
        startup=ex.startup,
    )
    result.checks += ex.observed
    missing = {c.name for c in ex.missing}
    for c in witness_checks:
        hit = ex.witnesses.get(c.name)
        found = True if hit else (False if c.name in missing else None)
        trace = trace_steps(system, ex.store, hit) if hit and c.name in witness_traces else None
        result.witnesses.append(Witness(c.name, c.description, found, hit.length if hit else None, trace))
    if ex.found is not None:
        result.violation = Violation(ex.found.check.name, ex.found.check.kind, ex.found.message)
        result.trace = trace_steps(system, ex.store, ex.found)
    elif ex.missing:
        first = ex.missing[0]
        result.violation = Violation(first.name, "reachable", f"witness not found: {first.description}")
    return result


def unreached_steps(system: System, ex: Exploration) -> dict[str, list[str]]:
    """Per thread, the steps no explored transition took (``file:function [step]``)."""
    out = {}
    for tid, thread in enumerate(system.threads):
        missed = [f"{st.kernel_function} [{st.name}]" for pc, st in enumerate(thread.steps)
                  if (tid, pc) not in ex.taken]
        if missed:
            out[thread.name] = missed
    return out
