"""State graphs as networkx DiGraphs, built from the compact store after exploration.

networkx is never the visited set (a node with its attribute dicts costs kilobytes and tens of
microseconds); these views are derived from the store on demand:

- ``full``: every stored state and transition (small models only);
- ``trace``: the counterexample path and every transition out of its states (its neighbourhood);
- ``pcs``: the quotient by control location (where each thread is), with state counts;
- ``project``: the quotient by a projection the user chooses (``--project pmd,pt0.state,zap.pc``
  or a projection the model names), small enough for a slide: self-loops collapsed, parallel
  edges merged, each node saying how many states it stands for, the counterexample's path marked.
"""
from __future__ import annotations

import re

import networkx as nx

from ..errors import PtmcError
from ..kernel.context import table_state
from .bfs import Exploration
from .system import System

FULL_LIMIT = 50_000


def _label(system: System, tr) -> str:
    return f"{system.threads[tr.tid].name}.{system.step_info(tr).name}"


def full_graph(system: System, ex: Exploration) -> nx.DiGraph:
    store = ex.store
    if len(store.states) > FULL_LIMIT:
        raise PtmcError(f"{len(store.states)} states is too many for the full graph "
                        f"(limit {FULL_LIMIT}): use --view trace or --view pcs")
    g = nx.DiGraph()
    for n, state in enumerate(store.states):
        g.add_node(n, state=system.layout.describe(state))
    for n, state in enumerate(store.states):
        for tr, nxt in system.successors(state):
            m = store.find(nxt)
            if m is not None:  # an exploration stopped early has unexpanded successors
                _add_edge(g, n, m, _label(system, tr))
    return g


def trace_graph(system: System, ex: Exploration) -> nx.DiGraph:
    """The counterexample path (bold) and the other transitions out of its states."""
    if ex.found is None:
        raise PtmcError("no counterexample: the trace view needs a violated property")
    store = ex.store
    path = store.path(ex.found.state)
    g = nx.DiGraph()
    for n in path:
        g.add_node(n, state=system.layout.describe(store.states[n]), on_trace=True)
    for a, b in zip(path, path[1:]):
        g.add_edge(a, b, label="", on_trace=True)
    for n in path:
        for tr, nxt in system.successors(store.states[n]):
            m = store.find(nxt)
            m = f"new{n}:{_label(system, tr)}" if m is None else m
            if m not in g:
                g.add_node(m, state=system.layout.describe(nxt), on_trace=False)
            _add_edge(g, n, m, _label(system, tr))
    if ex.found.transition is not None:
        g.add_node("violation", state=ex.found.message, on_trace=True)
        g.add_edge(ex.found.state, "violation", label=_label(system, ex.found.transition), on_trace=True)
    return g


def pcs_graph(system: System, ex: Exploration) -> nx.DiGraph:
    """States merged by control location: node = where every thread is; edge = a step."""
    layout = system.layout
    return _quotient(system, ex, lambda state: " | ".join(layout.show_slot(s, state[s]) for s in layout.pc_slot))


def _quotient(system: System, ex: Exploration, label, self_loops: bool = True) -> nx.DiGraph:
    """The explored states merged by ``label``: a node per label with the number of states it
    stands for, an edge per step between labels (``self_loops``: also a step within one)."""
    g = nx.DiGraph()
    for state in ex.store.states:
        key = label(state)
        if key in g:
            g.nodes[key]["states"] += 1
        else:
            g.add_node(key, states=1)
        for tr, nxt in system.successors(state):
            target = label(nxt)
            if self_loops or target != key:
                if target not in g:
                    g.add_node(target, states=0)
                _add_edge(g, key, target, _label(system, tr))
    return g


def projection(system: System, items) -> tuple[list[str], callable]:
    """The items of a projection (a name the model's ``projections()`` gives, or cell names,
    ``THREAD.pc`` and ``ptN.state``, comma-separated) and the function from a state to its node
    label. ``ptN.state`` of a PTE page is its lifecycle (linked, deposited, not linked, queued for
    RCU, free), finer than the cell's allocated/free."""
    named = system.model.projections()
    if isinstance(items, str):
        items = named.get(items) or [item.strip() for item in items.split(",") if item.strip()]
    layout = system.layout
    getters = []
    for item in items:
        page = re.fullmatch(r"pt(\d+)\.state", item)
        if page and layout.objects.get("pgtables") is not None and item in layout.index:
            getters.append(lambda state, n=int(page[1]): table_state(system.view(state), n))
        elif item in layout.index:
            getters.append(lambda state, slot=layout.index[item]: layout.show_slot(slot, state[slot]))
        else:
            known = ", ".join(repr(name) for name in named) or "none"
            raise PtmcError(f"--project: {item!r} is neither a cell of model {system.model.name} (e.g. "
                            f"{layout.names[1]!r}, {layout.names[layout.pc_slot[0]]!r}) nor one of its "
                            f"projections ({known})")
    if not getters:
        raise PtmcError("--project: name at least one cell, thread pc or projection")
    labels = [item.removesuffix(".pc") for item in items]
    return list(items), lambda state: "\n".join(f"{k}: {get(state)}" for k, get in zip(labels, getters))


def projected_graph(system: System, ex: Exploration, items) -> nx.DiGraph:
    """The quotient by ``items`` (see projection()): a node per value of the projection with
    the number of states it stands for; an edge where a step changes it."""
    _, label = projection(system, items)
    g = _quotient(system, ex, label, self_loops=False)  # a step that leaves the projection as it was is not drawn
    if ex.found is not None:
        path = [label(ex.store.states[n]) for n in ex.store.path(ex.found.state)]
        for key in path:
            g.nodes[key]["on_trace"] = True
        for a, b in zip(path, path[1:]):
            if a != b:
                g.edges[a, b]["on_trace"] = True
        if ex.found.transition is not None:
            g.add_node("violation", states=0, state=ex.found.message, on_trace=True)
            g.add_edge(path[-1], "violation", label=_label(system, ex.found.transition), count=1, on_trace=True)
    return g


def _add_edge(g: nx.DiGraph, a, b, label: str) -> None:
    if g.has_edge(a, b):
        data = g.edges[a, b]
        if label not in data["label"].split(", "):
            data["label"] += ", " + label
        data["count"] = data.get("count", 1) + 1
    else:
        g.add_edge(a, b, label=label, count=1)


VIEWS = {"full": full_graph, "trace": trace_graph, "pcs": pcs_graph, "project": projected_graph}


def summary(g: nx.DiGraph) -> str:
    """What networkx can tell about the shape of the exploration."""
    terminal = sum(1 for n in g if g.out_degree(n) == 0)
    cyclic = [c for c in nx.strongly_connected_components(g) if len(c) > 1 or any(
        g.has_edge(n, n) for n in c)]
    line = f"{g.number_of_nodes()} nodes, {g.number_of_edges()} edges, {terminal} without successors"
    if cyclic:
        line += f", {len(cyclic)} cycles (largest {max(len(c) for c in cyclic)} nodes: retry loops)"
    else:
        line += f", acyclic, longest path {nx.dag_longest_path_length(g)}"
    return line
