"""Every state-space reduction is checked against exploration without it, on many generated
models: same verdicts, same reachable shared state and thread positions.

Reductions today: resetting a finished thread's locals (explore/system.py). The generated
models are small programs over two shared counters and a lock: reads into locals, writes of
local+constant, lock/unlock, conditional jumps and nondeterministic choices.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from ptmc import DONE, Model, Thread, step
from ptmc.explore import System, explore
from ptmc.kernel.spinlock import spin_lock, spin_unlock, spinlock_init
from ptmc.properties import at_end, deadlock_free, invariant, never

OPS = st.one_of(
    st.tuples(st.just("read"), st.sampled_from(["x", "y"])),
    st.tuples(st.just("write"), st.sampled_from(["x", "y"]), st.integers(0, 2)),
    st.tuples(st.just("lock")),
    st.tuples(st.just("unlock")),
    st.tuples(st.just("jump_if_zero"), st.integers(0, 3)),
    st.tuples(st.just("choose"), st.integers(0, 3)),
)
PROGRAMS = st.lists(st.lists(OPS, min_size=1, max_size=4), min_size=1, max_size=3)


def make_step(k, op, n):
    def body(self, s):
        kind = op[0]
        if kind == "read":
            self.tmp = s.load(op[1])
        elif kind == "write":
            s.store(op[1], (self.tmp + op[2]) % 3)
        elif kind == "lock":
            spin_lock(s, "lock")
        elif kind == "unlock":
            spin_unlock(s, "lock")
        elif kind == "jump_if_zero" and self.tmp == 0:
            return f"s{op[1] % n}" if op[1] < n else DONE
        elif kind == "choose" and s.maybe("branch"):
            return f"s{op[1] % n}"
        return f"s{k + 1}" if k + 1 < n else DONE
    body.__name__ = f"s{k}"
    return step("test/generated.c:op")(body)


def make_model(programs):
    kinds = []
    for t, prog in enumerate(programs):
        ns = {"__annotations__": {"tmp": int}, "tmp": 0, "__qualname__": f"P{t}"}
        for k, op in enumerate(prog):
            ns[f"s{k}"] = make_step(k, op, len(prog))
        kinds.append(type(f"P{t}", (Thread,), ns))

    class Generated(Model):
        def init(self, mem):
            mem.x = 0
            mem.y = 0
            spinlock_init(mem, "lock")

        def threads(self):
            return [kind(f"t{i}") for i, kind in enumerate(kinds)]
    return Generated()


def x_not_two(s):
    return s.x != 2 or "x is 2"


def y_is_zero(s):
    return s.y == 0 or "y is not 0"


CHECK_SETS = [[invariant(x_not_two)], [at_end(y_is_zero)], [deadlock_free()],
              [never("self-deadlock"), never("bad-unlock")]]


def shared_and_pcs(system, ex):
    keep = list(range(system.layout.pc_slot[0])) + system.layout.pc_slot
    return {tuple(state[i] for i in keep) for state in ex.store.states}


@settings(max_examples=150, deadline=None)
@given(PROGRAMS)
def test_dead_local_reset_preserves_reachable_shared_state_and_verdicts(programs):
    full = System(make_model(programs), reset_dead_locals=False)
    reduced = System(make_model(programs), reset_dead_locals=True)
    a, b = explore(full, []), explore(reduced, [])
    assert shared_and_pcs(full, a) == shared_and_pcs(reduced, b)
    assert len(b.store.states) <= len(a.store.states)
    assert (a.deadlocks > 0) == (b.deadlocks > 0)
    for checks in CHECK_SETS:
        va, vb = explore(full, checks), explore(reduced, checks)
        assert va.verdict == vb.verdict
        if va.found:  # both find a shortest counterexample: the same length
            assert va.found.length == vb.found.length


def test_interrupt_ends_a_long_run_as_inconclusive():
    proc = subprocess.Popen([sys.executable, "-m", "ptmc", "check", "properties/no_uaf.py",
                             "--set", "vma=anon", "--set", "retracts=0", "--set", "zaps=2", "--set", "faults=2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, (out, err)
    assert "INCONCLUSIVE" in out and "interrupted:" in out
    assert "Traceback" not in out + err
