"""networkx views of the state graph, checked on the hand-counted increment model
(see test_engine.py: 12 states, 14 transitions)."""
from __future__ import annotations

import networkx as nx
import pytest
from click.testing import CliRunner
from test_engine import Increment, counter_is_two

from conftest import ROOT
from ptmc.cli import main
from ptmc.errors import PtmcError
from ptmc.explore import explore_model, graph
from ptmc.properties import at_end


def test_full_graph_is_every_state_and_transition():
    system, ex = explore_model(Increment(), [])
    g = graph.full_graph(system, ex)
    assert (g.number_of_nodes(), g.number_of_edges()) == (12, 14)
    assert nx.is_directed_acyclic_graph(g)
    assert nx.dag_longest_path_length(g) == 4  # read, read, write, write
    assert sum(1 for n in g if g.out_degree(n) == 0) == 2  # x == 1 and x == 2
    assert {d["label"] for _, _, d in g.edges(data=True)} == {"a.read", "a.write", "b.read", "b.write"}


def test_pcs_quotient_merges_states_by_thread_positions():
    system, ex = explore_model(Increment(), [])
    g = graph.pcs_graph(system, ex)
    # 3 positions each (read, write, done): 9 combinations, all reachable.
    assert g.number_of_nodes() == 9
    assert sum(d["states"] for _, d in g.nodes(data=True)) == 12
    assert g.nodes["done | done"]["states"] == 2  # the lost update and the good end
    assert g.nodes["write | write"]["states"] == 1


def test_trace_view_is_the_counterexample_and_its_neighbourhood():
    system, ex = explore_model(Increment(), [at_end(counter_is_two)])
    g = graph.trace_graph(system, ex)
    on_trace = [n for n, d in g.nodes(data=True) if d["on_trace"]]
    assert len(on_trace) == 5  # initial state plus four steps
    assert g.number_of_nodes() > len(on_trace)  # the branches not taken are shown too


def test_trace_view_needs_a_violation():
    system, ex = explore_model(Increment(), [])
    with pytest.raises(PtmcError, match="no counterexample"):
        graph.trace_graph(system, ex)


def test_graph_command_writes_graphml_and_dot(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = CliRunner().invoke(main, ["graph", "properties/no_uaf.py", "--model", "model/refcount2021.py",
                                    "--view", "full", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "1853 nodes, 4192 edges" in out.output
    g = nx.read_graphml(tmp_path / "no_uaf-refcount2021-full.graphml")
    assert g.number_of_nodes() == 1853
    assert (tmp_path / "no_uaf-refcount2021-full.dot").read_text().startswith("digraph")
