"""The counterexample as the kernel docs draw races: one column per thread, one row per step."""
from __future__ import annotations

import textwrap

from ..kernel.config import ALIAS, PARAMS
from ..result import Result, TraceStep

WIDTH = 34


def step_lines(result: Result, n: int, st: TraceStep, context: bool = True) -> list[str]:
    """What a step did, as short lines: the kernel function, then what changed, then (unless
    ``context`` is false) its kernel context."""
    fn = st.kernel_function.rsplit(":", 1)[1]
    head = f"{n}. {fn}()" + ("" if st.step == fn else f" [{st.step}]")
    lines = [head]
    own = f"{st.thread}."
    for label, value in st.choices:
        if value != "false":  # a yes/no choice is shown only when the unusual thing happened
            lines.append(f"  {label} = {value}")
    finished = st.changes.get(f"{st.thread}.pc", ("", ""))[1] in ("done", "hung", "oops")
    for name, value in st.reads.items():
        if not name.endswith(".pc") and "._" not in name:
            lines.append(f"  reads {name} = {value}")
    for name, (_, after) in st.changes.items():
        if "._" in name:
            continue  # a thread's own bookkeeping (where a sub-sequence returns to)
        if name == f"{st.thread}.pc":
            if finished:
                lines.append(f"  -> {after}")
            continue
        if finished and name.startswith(own):
            continue  # a finished thread's locals are reset; that is not news
        if name.endswith(".pc"):
            continue
        name = name[len(own):] if name.startswith(own) else name
        lines.append(f"  {name} := {after}")
    for kind, _ in st.events:
        # Only what the property checks reads as the bug; other events are notes.
        lines.append(f"  !! {kind}" if kind in result.checked_events else f"  note: {kind}")
    if context:
        lines += [f"  {line}" for line in st.context]
    return lines


def render(result: Result) -> str:
    if not result.explored:
        return "\n".join([obligations_headline(result), *obligation_lines(result)]) + "\n"
    out = [headline(result), ""]
    if result.trace:
        out += diagram(result, result.trace)
    if result.violation:
        v = result.violation
        if v.kind == "reachable":
            out.append(f"==> witness {v.check} not found: {v.message.removeprefix('witness not found: ')}")
        else:
            out.append(f"==> {v.check} violated: {v.message}")
    elif (result.explored_verdict or result.verdict) == "holds":
        out += [f"  holds: {check}" for check in result.checks]
        if result.collision_probability is not None:
            out.append(f"  fingerprint store: probability that a collision hid a state "
                       f"{result.collision_probability:.1e} (n * (g - n) / 2^64, as TLC)")
    if result.workers:
        out.append(f"  on {result.workers} workers (started in {result.startup:.1f}s): {result.exchanged:,} "
                   f"bytes of states exchanged ({result.exchanged / max(result.states, 1):.0f} a state)")
    out += witness_lines(result)
    out += unreached_lines(result)
    for w in result.witnesses:
        if w.trace is not None:
            out += ["", f"witness {w.name}: {w.description} ({w.length} steps)", ""]
            out += diagram(result, w.trace)
    if result.obligations:
        out += ["", obligations_headline(result), *obligation_lines(result)]
        out.append(f"==> {result.property}: {result.verdict.upper()}")
    out += note_lines(result)
    return "\n".join(out).rstrip() + "\n"


def note_lines(result: Result) -> list[str]:
    """Why a run is inconclusive, and what it saw but does not check."""
    out = []
    if result.reason:
        out.append(f"inconclusive: {result.reason}")
    elif result.deadlocks and "deadlock free" not in result.checks:
        out.append(f"note: {result.deadlocks} deadlocked states (not checked here; see no_deadlock.py)")
    if result.crashed:
        out.append(f"note: {result.crashed} transitions end in a use-after-free or double-free that this "
                   "property does not check (see no_uaf.py); their paths end there")
    return out


def diagram(result: Result, trace: list[TraceStep]) -> list[str]:
    """The steps of a trace, one column per thread that takes a step."""
    threads = active_threads(result, trace)
    width = max([WIDTH] + [len(t) + 2 for t in threads])
    out = [_row(threads, width), _row(["=" * len(t) for t in threads], width)]
    for n, st in enumerate(trace, 1):
        col = threads.index(st.thread)
        for line in _wrap(step_lines(result, n, st), width - 2):
            cells = [""] * len(threads)
            cells[col] = line
            out.append(_row(cells, width).rstrip())
        out.append("")
    return out


def witness_lines(result: Result) -> list[str]:
    lines = []
    for w in result.witnesses:
        if w.found:
            lines.append(f"  witnessed: {w.name} ({w.length} steps)")
        elif w.found is False:
            lines.append(f"  NOT FOUND: {w.name}: {w.description}")
        else:
            lines.append(f"  not yet witnessed (search stopped): {w.name}")
    return lines


def unreached_lines(result: Result) -> list[str]:
    """Steps no explored transition took, per thread (SPIN's "unreached in proctype")."""
    if not result.unreached:
        return []
    if result.trace:  # the counterexample is what matters; the list is in the JSON
        n = sum(map(len, result.unreached.values()))
        return [f"  {n} steps not reached before the search stopped (JSON: unreached)"]
    complete = not result.violation and not result.reason
    lines = ["  unreached steps:" if complete else "  steps not reached before the search stopped:"]
    for thread, steps in result.unreached.items():
        lines += textwrap.wrap(", ".join(steps), 96, initial_indent=f"    {thread}: ",
                               subsequent_indent="      ")
    return lines


def active_threads(result: Result, trace: list[TraceStep]) -> list[str]:
    """The threads that take a step in the trace (all of them when there is none)."""
    acting = {st.thread for st in trace}
    return [t for t in result.threads if t in acting] if acting else result.threads


def headline(result: Result) -> str:
    """The exploration's outcome (with obligations, the overall verdict comes last)."""
    variants = f" variants={','.join(result.variants)}" if result.variants else ""
    variants += f" without={','.join(result.without)}" if result.without else ""
    params = " ".join(f"{k}={v}" for k, v in shown_params(result.params).items())
    verdict = result.explored_verdict or result.verdict
    return (f"{result.property}: {verdict.upper()} on model {result.model}{variants} ({params}): "
            f"{result.states} states{' up to ' + ', '.join(result.reductions) if result.reductions else ''}, "
            f"{result.transitions} transitions, depth {result.depth}, "
            f"{result.seconds:.2f}s")


def shown_params(params: dict) -> dict:
    """The model's parameters, then the kernel configuration where it is not the default (the
    JSON has every value); ``split_ptlocks`` is only an alias of the ptlock symbols."""
    return {k: v for k, v in params.items()
            if k not in PARAMS or (k != ALIAS and v != PARAMS[k].default)}


def _wrap(lines: list[str], width: int) -> list[str]:
    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out.extend(textwrap.wrap(line, width, subsequent_indent=indent, break_on_hyphens=False) or [""])
    return out


def _row(cells: list[str], width: int) -> str:
    return " ".join(c.ljust(width) for c in cells)


def obligations_headline(result: Result) -> str:
    counts = {}
    for o in result.obligations:
        counts[o.status] = counts.get(o.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    seconds = sum(o.seconds for o in result.obligations)
    verdict = "" if result.explored else f"{result.verdict.upper()}, "
    variants = f" variants={','.join(result.variants)}" if result.variants else ""
    return (f"{result.property}: {verdict}{len(result.obligations)} z3 obligations{variants}: "
            f"{summary}, {seconds:.2f}s")


def obligation_lines(result: Result) -> list[str]:
    """One line per obligation: its status, time and name; then what it claims, or the
    counterexample in kernel terms, or why the solver gave up."""
    lines = []
    for o in result.obligations:
        params = " ".join(f"{k}={v}" for k, v in o.params.items())
        lines.append(f"  {o.status.upper():<12} {o.name} ({o.seconds:.2f}s)" + (f" [{params}]" if params else ""))
        lines += ["      " + line for line in textwrap.wrap(o.description, 90)]
        if o.status == "failed":
            if o.detail:
                lines += textwrap.wrap(o.detail, 96, initial_indent="      failing case: ",
                                       subsequent_indent="        ")
            lines += textwrap.wrap(o.counterexample_text(), 96, initial_indent="      counterexample: ",
                                   subsequent_indent="        ")
        elif o.status == "inconclusive":
            lines.append(f"      solver gave up: {o.detail} (a time-out is not a proof; raise --timeout)")
    return lines
