"""The counterexample as a graphviz drawing: one lane per thread, steps top to bottom."""
from __future__ import annotations

import graphviz

from ..result import Result
from .text import active_threads, step_lines


def render(result: Result) -> str:
    g = graphviz.Digraph("counterexample", graph_attr={
        "rankdir": "TB", "newrank": "true", "nodesep": "0.3", "ranksep": "0.25", "fontname": "Helvetica",
        "label": _esc(f"{result.property} on {result.model}: {result.violation.check if result.violation else result.verdict}"),
        "labelloc": "t"})
    g.attr("node", shape="box", style="rounded,filled", fillcolor="white", fontname="Courier", fontsize="10")
    threads = active_threads(result, result.trace)
    rows = len(result.trace)
    # A grid: lane t, row r is node t_r; empty cells are invisible, so each step sits in its lane.
    for t, name in enumerate(threads):
        with g.subgraph(name=f"cluster_{t}") as lane:
            lane.attr(label=name, style="filled", fillcolor="#f3f3f3", color="#bbbbbb",
                      fontname="Helvetica-Bold")
            prev = None
            for r in range(rows):
                st = result.trace[r]
                node = f"n{t}_{r}"
                if st.thread == name:
                    lines = step_lines(result, r + 1, st)
                    bad = bool(st.events) or (result.violation and r == rows - 1)
                    lane.node(node, "\\l".join(_esc(x) for x in lines) + "\\l",
                              fillcolor="#ffd6d6" if bad else "white")
                else:
                    lane.node(node, "", style="invis", width="0.1", height="0.1")
                if prev:
                    lane.edge(prev, node, style="invis", weight="100")
                prev = node
    for r in range(rows - 1):
        a = f"n{threads.index(result.trace[r].thread)}_{r}"
        b = f"n{threads.index(result.trace[r + 1].thread)}_{r + 1}"
        g.edge(a, b, color="#3366cc", constraint="false")
    for r in range(rows):
        g.body.append("{rank=same; " + " ".join(f"n{t}_{r}" for t in range(len(threads))) + "}")
    if result.violation:
        g.node("violation", _esc(f"{result.violation.check} violated:\n{result.violation.message}"),
               shape="note", fillcolor="#ff9999")
        if rows:
            g.edge(f"n{threads.index(result.trace[-1].thread)}_{rows - 1}", "violation", color="red")
    return g.source


def render_svg(dot_source: str) -> bytes:
    """Lay out with graphviz's ``dot``; raises graphviz.ExecutableNotFound when it is missing."""
    return graphviz.Source(dot_source).pipe(format="svg")


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
