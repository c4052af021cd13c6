"""The result as a SARIF 2.1.0 log, for code-scanning CI.

One run (a ``ptmc check`` of one property); a rule per check, witness and z3 obligation; one
result per violated check (a counterexample, a witness
not found, a failed z3 obligation), located at the file and line of the step that violates
it (the ``@step`` line in the model), with the counterexample as a codeFlow holding one
threadFlow per thread: each step a location at its step's source, in execution order, with
the variables it changed as its state. Files under the working directory are named relative
to it (``%SRCROOT%``), as code-scanning services expect.
"""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from ..result import FAILED, INCONCLUSIVE, Result, TraceStep
from .text import active_threads, step_lines

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"


def to_dict(result: Result) -> dict:
    outcomes = result.outcomes()
    rules = [{"id": _rule_id(o.kind, o.name), "name": o.name,
              "shortDescription": {"text": _description(result, o)}} for o in outcomes]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = []
    for o in outcomes:
        if o.status != FAILED:
            continue
        rule = _rule_id(o.kind, o.name)
        entry = {"ruleId": rule, "ruleIndex": index[rule], "level": "error", "kind": "fail",
                 "message": {"text": _message(result, o)}}
        v = result.violation
        if v is not None and v.check == o.name and result.trace:
            last = result.trace[-1]
            entry["locations"] = [_location(last, len(result.trace))]
            entry["codeFlows"] = [_code_flow(result, result.trace)]
        else:  # no step violates it: the file that declares it
            declared = result.property_file if o.kind in ("obligation", "check") else result.model_file
            declared = declared or result.property_file
            if declared:
                entry["locations"] = [{"physicalLocation": {"artifactLocation": _artifact(declared)}}]
        results.append(entry)
    variants = ",".join(result.variants)
    run = {
        "tool": {"driver": {"name": "ptmc", "version": _version(), "rules": rules}},
        "automationDetails": {"id": f"{result.property}/{result.model or '-'}/{variants or '-'}/"},
        "invocations": [_invocation(result)],
        "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
        "results": results,
        "properties": {"verdict": result.verdict, "states": result.states, "transitions": result.transitions,
                       "depth": result.depth, "parameters": result.params, "variants": result.variants},
    }
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


def render(result: Result) -> str:
    return json.dumps(to_dict(result), indent=2) + "\n"


def _rule_id(kind: str, name: str) -> str:
    slug = "-".join(name.split())
    return slug if kind == "check" else f"{kind}/{slug}"


def _description(result: Result, outcome) -> str:
    if outcome.kind == "check":
        return result.descriptions.get(outcome.name) or outcome.name
    if outcome.kind == "witness":
        return next((w.description for w in result.witnesses if w.name == outcome.name), outcome.name)
    return next((o.description for o in result.obligations if o.name == outcome.name), outcome.name)


def _message(result: Result, outcome) -> str:
    where = f" on model {result.model}" + (f" ({', '.join(result.variants)})" if result.variants else "")
    if outcome.kind == "check":
        steps = f", after {len(result.trace)} steps" if result.trace else ""
        return f"{outcome.name} violated{where}: {outcome.message}{steps}"
    if outcome.kind == "witness":
        return f"{outcome.message}{where} ({result.states} states explored)"
    return f"z3 obligation {outcome.name} {outcome.message}"


def _invocation(result: Result) -> dict:
    out = {"executionSuccessful": result.verdict != INCONCLUSIVE, "exitCode": result.exit_code}
    if result.reason:
        out["toolExecutionNotifications"] = [{"level": "warning",
                                              "message": {"text": f"inconclusive: {result.reason}"}}]
    return out


def _artifact(path: str) -> dict:
    p = Path(path).resolve()
    try:
        return {"uri": p.relative_to(Path.cwd().resolve()).as_posix(), "uriBaseId": SRCROOT}
    except ValueError:
        return {"uri": p.as_uri()}


def _location(st: TraceStep, n: int, message: str | None = None) -> dict:
    loc = {"logicalLocations": [{"name": st.step, "fullyQualifiedName": f"{st.thread}.{st.step}",
                                 "kind": "function"}],
           "properties": {"thread": st.thread, "kernelFunction": st.kernel_function, "step": n}}
    if st.source:
        file, line = st.source
        loc["physicalLocation"] = {"artifactLocation": _artifact(file), "region": {"startLine": line}}
    if message:
        loc["message"] = {"text": message}
    return loc


def _code_flow(result: Result, trace: list[TraceStep]) -> dict:
    flows = []
    for thread in active_threads(result, trace):
        locations = []
        for n, st in enumerate(trace, 1):
            if st.thread != thread:
                continue
            text = " / ".join(line.strip() for line in step_lines(result, n, st))
            locations.append({
                "location": _location(st, n, text),
                "executionOrder": n,
                "importance": "essential" if n == len(trace) else "important",
                "state": {name: {"text": after} for name, (_, after) in st.changes.items() if "._" not in name},
            })
        flows.append({"id": thread, "message": {"text": f"thread {thread}"}, "locations": locations})
    v = result.violation
    return {"message": {"text": f"counterexample: {len(trace)} steps" + (f" to {v.check}" if v else "")},
            "threadFlows": flows}


def _version() -> str:
    try:
        return metadata.version("ptmc")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "0+unknown"


