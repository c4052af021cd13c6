"""The visited store never merges states that differ only in the types of equal values.

Python says ``False == 0``, ``True == 1 == 1.0`` and ``PT((0, 0)) == (0, 0)``, and a dict keyed
by state tuples would merge such states. Generated models mix those values in their cells and
locals; ptmc must agree with a tiny reference explorer, written here independently of ptmc's
engine, that keys its states on ``(type, value)`` all the way down.
"""
from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptmc import DONE, Model, Thread, step
from ptmc.explore import check_model, explore_model
from ptmc.explore.store import IdentityStore, Store, StoreFull
from ptmc.kernel.pgtable import pt
from ptmc.properties import never
from ptmc.state import Canonical, apply_writes, identical

EVENT = "use-after-free"  # any known event: the generated models report it as "bad"


def key(value):
    """The reference's notion of a value: its type and value, all the way down."""
    if isinstance(value, tuple):
        return (type(value), tuple(key(v) for v in value))
    return (type(value), value)


# --------------------------------------------------------------------------------------------
# The reproduction: one thread stores its id (0) where False was.
# --------------------------------------------------------------------------------------------

def owner_model(initial):
    class Owner(Thread):
        @step("test.c:choose_owner")
        def choose_owner(self, s):
            if s.choose("take", (False, True)):
                s.owner = s.tid

        @step("test.c:check_owner")
        def check_owner(self, s):
            if s.owner is not initial:
                s.report(EVENT, "owner was set")
            return DONE

    class M(Model):
        name = "owner"

        def init(self, mem):
            mem.owner = initial

        def threads(self):
            return [Owner("t")]

    return M()


def test_false_and_zero_are_different_states():
    with_false = check_model(owner_model(False), [never(EVENT)])
    with_none = check_model(owner_model(None), [never(EVENT)])
    assert (with_false.verdict, with_false.states) == ("violated", 4)
    assert (with_none.verdict, with_none.states) == ("violated", 4)
    assert len(with_false.trace) == 2


def test_identical_tells_equal_values_of_different_types_apart():
    assert identical((0, None, "x"), (0, None, "x"))
    assert not identical((False,), (0,))
    assert not identical((1,), (1.0,))
    assert not identical((True,), (1,))
    assert not identical(((0, (False,)),), ((0, (0,)),))
    assert not identical((pt(0, 0),), ((0, 0),))
    assert not identical(frozenset({True}), frozenset({1}))
    assert identical(frozenset({(1, False)}), frozenset({(1, False)}))
    assert not identical((1, 2), (1, 2, 3))


def test_store_keeps_twins_apart_and_finds_each():
    store = Store()
    for number, state in enumerate([(False, 0), (0, 0), (0.0, 0), (False, 0), (0, False)]):
        store.add(state, number - 1)
    assert len(store) == 4
    assert [store.find(s) for s in [(False, 0), (0, 0), (0.0, 0), (0, False), (1, 1)]] == [0, 1, 2, 3, None]


# --------------------------------------------------------------------------------------------
# The C index of the exact store (explore/_identity.pyx) against the dict store.
# --------------------------------------------------------------------------------------------

def test_the_c_index_is_built_and_compiled_runs_use_it():
    """CI builds it (setup.sh); without it every compiled run would quietly be 2x slower."""
    assert IdentityStore.available(), "ptmc/explore/_identity.pyx was not built: run ./setup.sh"
    system, ex = explore_model(owner_model(False), [never(EVENT)])
    assert type(ex.store) is IdentityStore
    _, reference_run = explore_model(owner_model(False), [never(EVENT)], engine="reference")
    assert type(reference_run.store) is Store


def canonical_states(draw_values, slots):
    canonical = Canonical(slots)
    return canonical, [tuple(canonical(slot, v) for slot, v in enumerate(values)) for values in draw_values]


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(*[values] * n), min_size=1, max_size=12),
    st.lists(st.lists(st.tuples(st.integers(0, n - 1), values), max_size=3), max_size=6),
    st.one_of(st.none(), st.integers(1, 8)))))
def test_the_c_index_stores_what_the_dict_store_stores(case):
    """The same states, numbers and parents, whether added whole or as the writes of
    successors, the same state limit, and the same answers to ``find``."""
    slots, added, changes, capacity = case
    canonical, states = canonical_states(added, slots)
    changes = [tuple((slot, canonical(slot, v)) for slot, v in writes) for writes in changes]
    stores = [Store(capacity, canonical), IdentityStore(slots, capacity, canonical)]
    for store in stores:
        try:
            for parent, state in enumerate(states):
                store.add(state, parent - 1)
                store.add_changes(state, changes, parent)
        except StoreFull:
            pass
    plain, fast = stores
    assert len(plain) == len(fast)
    assert all(identical(a, b) for a, b in zip(plain.states, fast.states))
    assert list(plain.parent) == list(fast.parent)
    for state in [*states, *(s for writes in changes for s in apply_writes(states[0], [writes]))]:
        assert plain.find(state) == fast.find(state)
    assert fast.find(tuple(list(states[0]))) == plain.find(states[0])  # equal, not the same objects


def test_the_c_index_grows_and_keeps_states_apart_by_type():
    canonical = Canonical(2)
    store = IdentityStore(2, None, canonical)
    states = [tuple(canonical(slot, v) for slot, v in enumerate(pair))
              for pair in [(i, b) for i in range(3000) for b in (False, 0)]]
    assert all(store.add(s, -1) for s in states)
    assert not any(store.add(s, 0) for s in states)
    assert len(store) == 6000 and store.find(states[4001]) == 4001


def test_the_c_index_says_what_is_wrong():
    store = IdentityStore(2, 1, Canonical(2))
    with pytest.raises(ValueError, match="a state of 3 slots in a store of 2"):
        store.add((1, 2, 3), -1)
    store.add((1, 2), -1)
    with pytest.raises(StoreFull):
        store.add_changes((1, 2), [((0, 5),)], 0)
    with pytest.raises(IndexError):
        store.add_changes((1, 2), [((2, 5),)], 0)


# --------------------------------------------------------------------------------------------
# Generated models against the reference explorer.
# A model: shared cells and per-thread locals with initial values from POOL, threads of steps.
# --------------------------------------------------------------------------------------------

POOL = [None, False, True, 0, 1, 1.0, (0,), (False,)]
values = st.sampled_from(POOL)


@st.composite
def specs(draw):
    cells = draw(st.lists(values, min_size=1, max_size=3))
    nthreads = draw(st.integers(1, 2))
    threads = []
    for _ in range(nthreads):
        local = draw(values)
        nsteps = draw(st.integers(1, 3))
        steps = []
        for _ in range(nsteps):
            c = draw(st.integers(0, len(cells) - 1))
            kind = draw(st.sampled_from(["store", "choose", "load", "save", "branch", "report"]))
            if kind == "choose":
                arg = tuple(draw(st.lists(values, min_size=1, max_size=3)))
            elif kind == "branch":
                arg = (draw(values), draw(st.integers(0, nsteps)))  # target nsteps: done
            else:
                arg = draw(values)
            steps.append((kind, c, arg))
        threads.append((local, steps))
    return cells, threads


def run_step(kind, c, arg, cells: list, local, choice):
    """One step's effect on (cells, local); returns (local, jump, bad). Shared by both sides so
    that they explore the same program; how states are stored is what is compared."""
    jump, bad = None, False
    if kind == "store":
        cells[c] = arg
    elif kind == "choose":
        cells[c] = choice
    elif kind == "load":
        local = cells[c]
    elif kind == "save":
        cells[c] = local
    elif kind == "branch":
        if key(cells[c]) == key(arg[0]):
            jump = arg[1]
    elif kind == "report":
        bad = key(cells[c]) == key(arg)
    return local, jump, bad


def reference(spec):
    """BFS over states keyed by key(): (states, transitions, shortest bad transition or None)."""
    cells0, threads = spec
    init = (tuple(cells0), tuple((0, local) for local, _ in threads))
    seen = {key(init)}
    queue = deque([(init, 0)])
    transitions, shortest = 0, None
    while queue:
        (cells, ths), depth = queue.popleft()
        for tid, (pc, local) in enumerate(ths):
            steps = threads[tid][1]
            if pc >= len(steps):
                continue
            kind, c, arg = steps[pc]
            for choice in (arg if kind == "choose" else (None,)):
                new_cells = list(cells)
                new_local, jump, bad = run_step(kind, c, arg, new_cells, local, choice)
                new_pc = pc + 1 if jump is None else jump
                if new_pc >= len(steps):
                    new_pc, new_local = len(steps), threads[tid][0]  # done: locals reset
                transitions += 1
                if bad and (shortest is None or depth + 1 < shortest):
                    shortest = depth + 1
                new_ths = list(ths)
                new_ths[tid] = (new_pc, new_local)
                nxt = (tuple(new_cells), tuple(new_ths))
                if key(nxt) not in seen:
                    seen.add(key(nxt))
                    queue.append((nxt, depth + 1))
    return len(seen), transitions, shortest


def ptmc_model(spec):
    cells0, threads = spec

    def make_step(kind, c, arg, nsteps):
        def fn(self, s):
            cells = [s.load(f"c{i}") for i in range(len(cells0))]
            choice = s.choose("value", arg) if kind == "choose" else None
            self.local, jump, bad = run_step(kind, c, arg, cells, self.local, choice)
            for i, v in enumerate(cells):
                s.store(f"c{i}", v)
            if bad:
                s.report(EVENT, "bad value")
            target = jump if jump is not None else None
            if target is None:
                return None if fn.pc + 1 < nsteps else DONE
            return DONE if target >= nsteps else f"s{target}"
        return fn

    classes = []
    for tid, (local, steps) in enumerate(threads):
        body = {"__annotations__": {"local": object}, "local": local}
        for pc, (kind, c, arg) in enumerate(steps):
            fn = make_step(kind, c, arg, len(steps))
            fn.pc = pc
            fn.__name__ = f"s{pc}"
            body[f"s{pc}"] = step(f"test.c:step{pc}")(fn)
        classes.append(type(f"T{tid}", (Thread,), body))

    class Generated(Model):
        name = "generated"

        def init(self, mem):
            for i, v in enumerate(cells0):
                mem.layout.cell(f"c{i}", v)

        def threads(self):
            return [cls(f"t{k}") for k, cls in enumerate(classes)]

    return Generated()


@settings(max_examples=300, deadline=None)
@given(specs())
def test_ptmc_agrees_with_a_type_aware_reference(spec):
    states, transitions, shortest = reference(spec)
    r = check_model(ptmc_model(spec), [never(EVENT)])
    if shortest is None:
        assert (r.verdict, r.states, r.transitions) == ("holds", states, transitions)
    else:
        assert r.verdict == "violated"
        assert len(r.trace) == shortest
