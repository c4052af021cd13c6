"""The symmetry reduction (ptmc.reduce.symmetry) against exploration without it.

Generated models: one or two thread kinds of one to three interchangeable threads each, every
thread of a kind running the same small program over shared counters, a spinlock (its holder
is a thread id), RCU read-side sections (the reader set holds thread ids), a shared "owner"
cell holding a thread id, and a cell each thread owns (moved with it). On each: the states
explored under the reduction are exactly the representatives of the states reached without
it, the steps are equivariant in every reachable state, and every check set gets the same
verdict with a counterexample of the same length, replayed as a concrete trace.
Shipped models: each property, on configurations small enough for a test that have two
threads of a kind, gets the same verdict with and without.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptmc import DONE, Model, Thread, numbered, step
from ptmc.errors import PtmcError
from ptmc.explore import System, explore
from ptmc.explore.trace import trace_steps
from ptmc.kernel.rcu import rcu_init, rcu_read_lock, rcu_read_unlock
from ptmc.kernel.spinlock import spin_lock, spin_unlock, spinlock_init
from ptmc.properties import at_end, deadlock_free, invariant, never, reachable
from ptmc.reduce import Symmetry
from ptmc.state import encode, holds_thread

from conftest import WITHOUT_RETRACT

OPS = st.one_of(
    st.tuples(st.just("read"), st.sampled_from(["x", "y"])),
    st.tuples(st.just("write"), st.sampled_from(["x", "y"]), st.integers(0, 2)),
    st.tuples(st.just("lock")),
    st.tuples(st.just("unlock")),
    st.tuples(st.just("jump_if_zero"), st.integers(0, 3)),
    st.tuples(st.just("choose"), st.integers(0, 3)),
    st.tuples(st.just("claim")),
    st.tuples(st.just("if_mine"), st.integers(0, 3)),
    st.tuples(st.just("rcu_lock")),
    st.tuples(st.just("rcu_unlock")),
    st.tuples(st.just("own"), st.integers(0, 1)),
    st.tuples(st.just("read_own")),
)
PROGRAM = st.lists(OPS, min_size=1, max_size=3)
KINDS = st.one_of(st.tuples(st.tuples(PROGRAM, st.integers(2, 3))),  # (at most four threads)
                  st.tuples(st.tuples(PROGRAM, st.integers(1, 2)), st.tuples(PROGRAM, st.integers(1, 2))))


def make_step(k, op, n):
    def body(self, s):
        kind = op[0]
        goto = f"s{op[1] % n}" if len(op) > 1 and isinstance(op[1], int) and op[1] < n else DONE
        if kind == "read":
            self.tmp = s.load(op[1])
        elif kind == "write":
            s.store(op[1], (self.tmp + op[2]) % 3)
        elif kind == "lock":
            spin_lock(s, "lock")
        elif kind == "unlock":
            spin_unlock(s, "lock")
        elif kind == "jump_if_zero" and self.tmp == 0:
            return goto
        elif kind == "choose" and s.maybe("branch"):
            return goto
        elif kind == "claim":
            s.owner = s.tid
        elif kind == "if_mine" and s.owner == s.tid:
            return goto
        elif kind == "rcu_lock" and s.tid not in s.rcu_readers:  # (nesting in a loop: no bound)
            rcu_read_lock(s)
        elif kind == "rcu_unlock" and s.tid in s.rcu_readers:
            rcu_read_unlock(s)
        elif kind == "own":
            s.store(f"{self.name}.flag", (self.tmp + op[1]) % 2)
        elif kind == "read_own":
            self.tmp = s.load(f"{self.name}.flag")
        return f"s{k + 1}" if k + 1 < n else DONE
    body.__name__ = f"s{k}"
    return step("test/generated.c:op")(body)


NAMES = ("a", "b")


def make_model(kinds):
    classes = []
    for t, (prog, _) in enumerate(kinds):
        ns = {"__annotations__": {"tmp": int}, "tmp": 0, "__qualname__": f"P{t}"}
        for k, op in enumerate(prog):
            ns[f"s{k}"] = make_step(k, op, len(prog))
        classes.append(type(f"P{t}", (Thread,), ns))
    names = [numbered(NAMES[t], count) for t, (_, count) in enumerate(kinds)]

    class Generated(Model):
        symmetric = NAMES[:len(kinds)]

        def init(self, mem):
            mem.x = 0
            mem.y = 0
            spinlock_init(mem, "lock")
            rcu_init(mem)
            mem.layout.cell("owner", None, holds=holds_thread)
            for name in (n for group in names for n in group):
                mem.layout.cell(f"{name}.flag", 0, owner=name)

        def threads(self):
            return [cls(name) for cls, group in zip(classes, names) for name in group]
    return Generated()


def x_not_two(s):
    return s.x != 2 or "x is 2"


def y_is_zero(s):
    return s.y == 0 or "y is not 0"


# (one set of several kinds: which check fails first may differ, the length may not)
CHECK_SETS = [[reachable("a.s0", "a thread of kind a takes its first step"),
               reachable(lambda s: s.x == 1 and s.y == 2, "x is 1 and y is 2", name="x1y2")],
              [invariant(x_not_two), at_end(y_is_zero), deadlock_free(), never("self-deadlock"), never("bad-unlock")]]


def codes(states) -> set[bytes]:
    return {encode(s) for s in states}


@settings(max_examples=1000, deadline=None)
@given(KINDS)
def test_symmetry_explores_the_representatives_with_the_same_verdicts(kinds):
    model = make_model(kinds)
    system = System(model)
    symmetry = Symmetry(system)
    reductions = [symmetry] if symmetry else []
    full = explore(system, CHECK_SETS[0])  # (witnesses only: complete runs)
    reduced = explore(system, CHECK_SETS[0], reductions=reductions)
    # the states explored are the orbits' representatives, reachable states themselves
    assert codes(reduced.store.states) == codes(map(symmetry.canonical, full.store.states))
    assert codes(reduced.store.states) <= codes(full.store.states)
    assert (full.deadlocks > 0) == (reduced.deadlocks > 0)
    assert full.taken == reduced.taken
    assert full.depth == reduced.depth
    for state in full.store.states:
        assert symmetry.equivariance_failure(state) is None
    for checks in CHECK_SETS:
        a, b = (full, reduced) if checks is CHECK_SETS[0] else \
            (explore(system, checks), explore(system, checks, reductions=reductions))
        assert a.verdict == b.verdict
        for found_a, found_b in [(a.found, b.found), *((a.witnesses.get(n), b.witnesses.get(n)) for n in a.witnesses)]:
            assert (found_a is None) == (found_b is None)
            if found_b is not None:  # a shortest one either way, and a concrete trace
                assert found_a.length == found_b.length
                assert len(trace_steps(system, b.store, found_b)) == found_b.length


def test_a_witness_naming_one_of_interchangeable_threads_is_refused():
    system = System(make_model([([("read", "x")], 2)]))
    with pytest.raises(PtmcError, match="interchangeable"):
        explore(system, [reachable("a1.s0", "only a1")], reductions=[Symmetry(system)])


def test_threads_told_apart_by_the_initial_state_are_refused():
    class Apart(Model):
        symmetric = ("a",)

        def init(self, mem):
            rcu_init(mem)
            spinlock_init(mem, "lock")
            mem.layout.cell("owner", 0, holds=holds_thread)  # thread a1 owns it from the start

        def threads(self):
            cls = type("P", (Thread,), {"s0": make_step(0, ("claim",), 1)})
            return [cls("a1"), cls("a2")]
    with pytest.raises(PtmcError, match="tells a1, a2 apart"):
        Symmetry(System(Apart()))


# Shipped models: (property file, model file or None for the property's, settings, without).
# Small configurations with two threads of a kind (the defaults have one of each: nothing to
# reduce), holding runs and guard ablations that give a counterexample.
R1 = {"entries": 1, "zaps": 1, "faults": 0, "walkers": 0, "readers": 0, **WITHOUT_RETRACT}
SHIPPED = [
    ("no_uaf.py", None, {**R1, "zaps": 2}, ()),
    ("no_uaf.py", None, {**R1, "zaps": 0, "faults": 2}, ()),
    ("no_uaf.py", None, {**R1, "walkers": 2}, ()),
    ("no_uaf.py", None, {**R1, "readers": 2}, ()),
    ("no_uaf.py", None, {**R1, "gup_fast": 2}, ()),
    ("no_uaf.py", None, {**R1, "walkers": 2}, ("rcu_grace_period",)),
    ("no_uaf.py", None, {**R1, "readers": 2}, ("rcu_grace_period",)),
    ("no_leak.py", None, {**R1, "zaps": 2}, ()),
    ("no_lost_pte.py", None, {**R1, "zaps": 2}, ()),
    ("no_lost_pte.py", None, {**R1, "zaps": 0, "faults": 2, "thp": True}, ()),
    ("no_lost_pte.py", None, {**R1, "zaps": 0, "faults": 2, "vma": "shmem"}, ()),
    ("no_deadlock.py", None, {**R1, "zaps": 2, "walkers": 1}, ()),
    ("no_hw_walk_free.py", None, {**R1, "zaps": 2, "hw_walkers": 1}, ()),
    ("tlb_coherent.py", None, {**R1, "faults": 2, "hw_walkers": 1}, ()),
    ("no_uaf.py", "refcount2021.py", {"entries": 1, "walkers": 2}, ()),
    ("no_uaf.py", "refcount2021.py", {"faults": 2, "walkers": 0}, ()),
    ("no_deadlock.py", "refcount2021.py", {"entries": 1, "madvisers": 2}, ()),
    ("refcount2022_exact.py", None, {"faults": 2, "pages": 3}, ()),
    ("refcount2022_no_lost_mapping.py", None, {"zaps": 2, "reclaimers": 1}, ()),
]


@pytest.mark.parametrize("prop, model_file, params, without", SHIPPED,
                         ids=[f"{p[:-3]}-{m or ''}-{'-'.join(f'{k}={v}' for k, v in s.items() if k not in R1 or R1[k] != v)}"
                              f"{'-without-' + '-'.join(w) if w else ''}" for p, m, s, w in SHIPPED])
def test_shipped_models_keep_their_verdicts_under_symmetry(prop, model_file, params, without):
    from ptmc.explore import describe, explore_model
    from ptmc.model import load_model_class
    from ptmc.properties import load_property
    from conftest import ROOT
    prop = load_property(ROOT / "properties" / prop)
    path = ROOT / "model" / model_file if model_file else prop.model_path
    model_cls = load_model_class(path)
    settings_ = {k: v for k, v in {**prop.params, **params}.items() if k in model_cls.params()}
    runs = {}
    for reductions in ((), ("symmetry",)):
        model = model_cls({k: str(v) for k, v in settings_.items()}, prop.variants, without=without)
        system, ex = explore_model(model, prop.checks, reductions=reductions)
        runs[reductions] = (system, ex, describe(system, ex, model, prop.checks, prop.name))
    (system, full, a), (_, reduced, b) = runs[()], runs[("symmetry",)]
    assert b.reductions == ["symmetry"]
    assert (a.verdict, a.depth, a.violation and a.violation.check) == (b.verdict, b.depth, b.violation and b.violation.check)
    assert {w.name: (w.found, w.length) for w in a.witnesses} == {w.name: (w.found, w.length) for w in b.witnesses}
    assert a.unreached == b.unreached
    assert len(a.trace or ()) == len(b.trace or ())  # a concrete trace (replayed), as long
    if a.trace:
        assert {e[0] for e in b.trace[-1].events} == {e[0] for e in a.trace[-1].events}
    if full.found is None and reduced.found is None:  # complete runs: the representatives
        symmetry = Symmetry(system)
        assert b.states < a.states
        assert codes(reduced.store.states) == codes(map(symmetry.canonical, full.store.states))
        for state in full.store.states:
            assert symmetry.equivariance_failure(state) is None


def test_check_symmetry_on_the_command_line(tmp_path):
    import json

    from click.testing import CliRunner

    from conftest import ROOT
    from ptmc.cli import main
    base = ["check", str(ROOT / "properties" / "no_uaf.py"), "--out", str(tmp_path),
            *(f"--set={k}={v}" for k, v in {**R1, "walkers": 2}.items())]
    plain = CliRunner().invoke(main, [*base, "--json"])
    reduced = CliRunner().invoke(main, [*base, "--json", "--symmetry"])
    a, b = json.loads(plain.output), json.loads(reduced.output)
    assert (plain.exit_code, a["verdict"]) == (reduced.exit_code, b["verdict"]) == (0, "holds")
    assert b["reductions"] == ["symmetry"] and b["states"] < a["states"]
    text = CliRunner().invoke(main, [*base, "--symmetry", "--without", "rcu_grace_period"])
    assert text.exit_code == 1 and "states up to symmetry" in text.output
    assert "use-after-free" in text.output


def test_symmetry_over_the_fingerprint_store():
    from conftest import ROOT
    from ptmc import workflow
    prop = ROOT / "properties" / "no_uaf.py"
    settings_ = {k: str(v) for k, v in {**R1, "zaps": 2}.items()}
    exact = workflow.check(prop, settings=settings_, reductions=["symmetry"])
    lossy = workflow.check(prop, settings=settings_, reductions=["symmetry"], store="fingerprint")
    assert (exact.verdict, exact.states, exact.depth) == (lossy.verdict, lossy.states, lossy.depth)
    broken = {"settings": settings_, "without": ["rcu_grace_period"], "reductions": ["symmetry"]}
    a, b = workflow.check(prop, **broken), workflow.check(prop, **broken, store="fingerprint")
    assert a.verdict == b.verdict == "violated"
    assert [(s.thread, s.step) for s in a.trace] == [(s.thread, s.step) for s in b.trace]
