"""A state graph (networkx, from explore/graph.py) as graphviz DOT."""
from __future__ import annotations

import textwrap

import graphviz
import networkx as nx


def render(g: nx.DiGraph, title: str) -> str:
    d = graphviz.Digraph("states", graph_attr={"label": title, "labelloc": "t", "fontname": "Helvetica"})
    d.attr("node", shape="box", fontname="Courier", fontsize="9")
    ids = {n: f"n{i}" for i, n in enumerate(g.nodes)}
    for n, data in g.nodes(data=True):
        label = _label(n, data)
        bold = data.get("on_trace")
        d.node(ids[n], label, tooltip=str(data.get("state", ""))[:1000],
               color="red" if bold else "black", penwidth="2" if bold else "1")
    for a, b, data in g.edges(data=True):
        bold = data.get("on_trace")
        d.edge(ids[a], ids[b], data.get("label", ""), fontsize="8",
               color="red" if bold else "#555555", penwidth="2" if bold else "1")
    return d.source


def _label(node, data) -> str:
    """A quotient node says how many states it stands for; one only reached beyond where the
    exploration stopped stands for none it expanded."""
    if node == "violation":
        return "\n".join(["violation:", *textwrap.wrap(str(data.get("state", "")), 40)])
    if "states" not in data:
        return str(node)
    n = data["states"]
    return f"{node}\n({n:,} state{'s' if n != 1 else ''})" if n else f"{node}\n(not expanded)"
