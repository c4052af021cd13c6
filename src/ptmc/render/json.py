"""The result as one JSON object."""
from __future__ import annotations

import json

from ..result import Result
from . import shown_path


def to_dict(result: Result) -> dict:
    if not result.explored:  # ptmc prove: only z3 obligations ran
        return {"property": result.property, "variants": result.variants, "verdict": result.verdict,
                **({"reason": result.reason} if result.reason else {}),
                "obligations": [o.to_dict() for o in result.obligations]}
    out = {
        "property": result.property,
        "model": result.model,
        "variants": result.variants,
        "parameters": result.params,
        "verdict": result.verdict,
        "states": result.states,
        "transitions": result.transitions,
        "depth": result.depth,
        "seconds": round(result.seconds, 3),
        "checks": result.checks,
        "deadlocks": result.deadlocks,
        "undefined_behaviour_transitions": result.crashed,
        "witnesses": [{"name": w.name, "description": w.description, "found": w.found,
                       "length": w.length, **({"trace": trace(w.trace)} if w.trace is not None else {})}
                      for w in result.witnesses],
        "unreached": result.unreached,
        "store": result.store,
    }
    if result.collision_probability is not None:
        out["collision_probability"] = result.collision_probability
    if result.workers:  # a distributed run
        out["workers"], out["exchanged_bytes"] = result.workers, result.exchanged
        out["startup_seconds"] = result.startup
    if result.reductions:  # states counts orbit representatives (e.g. ["symmetry"])
        out["reductions"] = result.reductions
    if result.reason:
        out["reason"] = result.reason
    if result.violation:
        v = result.violation
        out["violation"] = {"check": v.check, "kind": v.kind, "message": v.message}
        out["counterexample"] = trace(result.trace)
    if result.obligations:
        out["exploration_verdict"] = result.explored_verdict
        out["obligations"] = [o.to_dict() for o in result.obligations]
    return out


def trace(steps) -> list[dict]:
    """The steps of a trace: who ran what, what it changed, read, chose and reported, and
    where the step is defined (relative to the working directory when under it)."""
    return [{"thread": st.thread, "step": st.step, "kernel_function": st.kernel_function,
             "changes": {k: list(v) for k, v in st.changes.items()},
             "reads": st.reads,
             "choices": [list(c) for c in st.choices],
             "events": [{"kind": k, "message": m} for k, m in st.events],
             "source": {"file": shown_path(st.source[0]), "line": st.source[1]} if st.source else None}
            for st in steps]


def render(result: Result) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"
