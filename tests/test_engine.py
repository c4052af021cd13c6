"""The explorer on small hand-made models whose state spaces can be counted by hand."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Blocked, Model, Thread, step
from ptmc.errors import ModelError, PtmcError
from ptmc.explore import check_model
from ptmc.properties import at_end, deadlock_free, invariant, never
from ptmc.result import TraceStep


# --------------------------------------------------------------------------------------------
# Two threads doing a non-atomic increment of a shared counter: read step, then write step.
# --------------------------------------------------------------------------------------------

class Incrementer(Thread):
    """x++ done as a load and a store."""

    tmp: int = 0

    @step("lib/counter.c:counter_read")
    def read(self, s):
        self.tmp = s.x

    @step("lib/counter.c:counter_write")
    def write(self, s):
        s.x = self.tmp + 1


class Increment(Model):
    """Two incrementers of one shared counter."""

    name = "increment"

    def __init__(self, start=0, **kw):
        super().__init__(**kw)
        self.start = start

    def init(self, mem):
        mem.x = self.start

    def threads(self):
        return [Incrementer("a"), Incrementer("b")]


def counter_is_two(s):
    """both increments are seen: x == 2"""
    return True if s.x == 2 else f"x is {s.x}, not 2"


# Hand count of the increment model's states. A thread is at read (r), write (w) or done (d).
# Its local tmp is 0 at r (initial), the value it read at w, and 0 again at d (the engine resets
# a finished thread's locals to their initial values).
#   (r,r)                          x=0                                  1
#   (w,r), (r,w)                   the mover read 0, x=0                 2
#   (w,w)                          both read 0, x=0                      1
#   (d,r), (r,d)                   x=1                                   2
#   (d,w), (w,d)                   the waiting writer read 0 (before the
#                                  other's write) or 1 (after), x=1      4
#   (d,d)                          x=1 (lost update) or x=2              2
#                                                                total  12
# (Without the reset rule (d,d,x=2) would split by who went first -> 13 states.)
# Transitions, one per enabled thread per state:
#   (r,r):2  (w,r):2  (r,w):2  (w,w):2  (d,r):1  (r,d):1  4 x (d,w)/(w,d):1  (d,d):0  -> 14
# Depth (BFS levels): every complete run takes 4 steps -> depth 4.
INCREMENT_STATES, INCREMENT_TRANSITIONS, INCREMENT_DEPTH = 12, 14, 4


def test_increment_state_and_transition_count():
    r = check_model(Increment(), [], property_name="none")
    assert r.verdict == "holds"
    assert (r.states, r.transitions, r.depth) == (INCREMENT_STATES, INCREMENT_TRANSITIONS, INCREMENT_DEPTH)
    assert r.violation is None and r.trace == []
    assert r.threads == ["a", "b"]
    assert r.initial == {"x": "0", "a.pc": "read", "a.tmp": "0", "b.pc": "read", "b.tmp": "0"}


def test_increment_reachable_states_match_hand_enumeration():
    states = reachable(Increment())
    assert len(states) == INCREMENT_STATES
    ends = sorted(st["x"] for st in states if st["a.pc"] == st["b.pc"] == "done")
    assert ends == [1, 2]
    # (d,w) comes in two flavours: b read before or after a's write.
    assert sorted(st["b.tmp"] for st in states if st["a.pc"] == "done" and st["b.pc"] == "write") == [0, 1]


def test_finished_threads_locals_are_reset():
    # Start at 5, so that a thread that read the counter has tmp != its initial 0.
    states = reachable(Increment(start=5))
    assert len(states) == INCREMENT_STATES  # same shape as from 0
    assert any(st["a.pc"] == "write" and st["a.tmp"] in (5, 6) for st in states)
    for st in states:
        for t in "ab":
            if st[f"{t}.pc"] == "done":
                assert st[f"{t}.tmp"] == 0, st


def test_increment_lost_update_trace():
    r = check_model(Increment(), [at_end(counter_is_two)], property_name="lost_update")
    assert r.verdict == "violated"
    assert r.exit_code == 1
    assert r.violation.kind == "at_end"
    assert r.violation.check == "counter_is_two"
    assert r.violation.message == "x is 1, not 2"
    # BFS from (r,r) in thread order: level 1 = [a.read, b.read]; from (w,r) a.write comes
    # before b.read, so the first (d,d,x=1) state is reached by a.read, b.read, a.write,
    # b.write: both reads before the writes.
    assert [(t.thread, t.step) for t in r.trace] == [("a", "read"), ("b", "read"), ("a", "write"), ("b", "write")]
    assert r.depth == len(r.trace) == 4
    assert [t.kernel_function for t in r.trace] == ["lib/counter.c:counter_read", "lib/counter.c:counter_read",
                                                    "lib/counter.c:counter_write", "lib/counter.c:counter_write"]
    assert r.trace[0].changes == {"a.pc": ("read", "write")}
    assert r.trace[2].changes == {"x": ("0", "1"), "a.pc": ("write", "done")}
    # b read 0 too, so its write stores 1 again: the lost update.
    assert r.trace[3].changes == {"b.pc": ("write", "done")}
    assert all(isinstance(t, TraceStep) and t.choices == [] and t.events == [] for t in r.trace)


def test_increment_trace_shows_locals_and_their_reset():
    r = check_model(Increment(start=5), [at_end(lambda s: s.x == 7)])
    assert r.violation.message == "<lambda> is false"
    assert [(t.thread, t.step) for t in r.trace] == [("a", "read"), ("b", "read"), ("a", "write"), ("b", "write")]
    assert r.trace[0].changes == {"a.pc": ("read", "write"), "a.tmp": ("0", "5")}
    assert r.trace[2].changes == {"x": ("5", "6"), "a.pc": ("write", "done"), "a.tmp": ("5", "0")}
    assert r.trace[3].changes == {"b.pc": ("write", "done"), "b.tmp": ("5", "0")}


def test_increment_is_deadlock_free():
    r = check_model(Increment(), [deadlock_free()])
    assert r.verdict == "holds" and r.deadlocks == 0 and r.states == INCREMENT_STATES


# --------------------------------------------------------------------------------------------
# Nondeterministic choice
# --------------------------------------------------------------------------------------------

def one_thread_model(thread_cls, **cells):
    class M(Model):
        name = "m"

        def init(self, mem):
            for k, v in cells.items():
                setattr(mem, k, v)

        def threads(self):
            return [thread_cls("t")]
    return M()


def test_choose_gives_one_transition_per_option():
    class Pick(Thread):
        @step("x.c:pick")
        def pick(self, s):
            s.x = s.choose("value", [1, 2, 3])

    r = check_model(one_thread_model(Pick, x=0), [])
    # initial + one state per value
    assert (r.states, r.transitions, r.depth) == (4, 3, 1)
    assert sorted(st["x"] for st in reachable(one_thread_model(Pick, x=0))) == [0, 1, 2, 3]


def test_choose_counts_transitions_even_when_they_reach_the_same_state():
    class Same(Thread):
        @step("x.c:pick")
        def pick(self, s):
            s.x = s.choose("value", ["a", "a"])

    r = check_model(one_thread_model(Same, x=None), [])
    assert (r.states, r.transitions) == (2, 2)


def test_maybe_gives_two_transitions():
    class Resched(Thread):
        @step("kernel/sched/core.c:cond_resched")
        def resched(self, s):
            s.flag = s.maybe("need_resched")

    r = check_model(one_thread_model(Resched, flag=None), [])
    assert (r.states, r.transitions) == (3, 2)
    assert sorted(map(str, (st["flag"] for st in reachable(one_thread_model(Resched, flag=None))))) == \
        ["False", "None", "True"]


def test_nested_choices_take_every_combination_and_are_recorded_in_the_trace():
    class Two(Thread):
        @step("x.c:pick")
        def pick(self, s):
            a = s.choose("a", [0, 1])
            b = s.choose("b", [0, 1, 2])
            s.x = a * 3 + b

    r = check_model(one_thread_model(Two, x=-1), [])
    assert (r.states, r.transitions) == (7, 6)
    r = check_model(one_thread_model(Two, x=-1), [at_end(lambda s: s.x != 5)])
    assert r.verdict == "violated"
    assert len(r.trace) == 1
    assert r.trace[0].choices == [("a", "1"), ("b", "2")]
    assert r.trace[0].changes["x"] == ("-1", "5")


def test_choice_with_no_options_blocks():
    class Empty(Thread):
        @step("x.c:pick")
        def pick(self, s):
            s.x = s.choose("value", [])

    r = check_model(one_thread_model(Empty, x=0), [deadlock_free()])
    assert r.transitions == 0
    assert r.verdict == "violated" and r.violation.kind == "deadlock_free"


# --------------------------------------------------------------------------------------------
# Control flow: fall-through, jumps by name or method, DONE, first_step, inherited steps
# --------------------------------------------------------------------------------------------

class Jumper(Thread):
    @step("x.c:first")
    def first(self, s):
        s.trail = s.trail + ("first",)
        return "last"

    @step("x.c:skipped")
    def skipped(self, s):
        s.trail = s.trail + ("skipped",)

    @step("x.c:last")
    def last(self, s):
        s.trail = s.trail + ("last",)


def test_return_step_name_jumps():
    states = reachable(one_thread_model(Jumper, trail=()))
    assert [(st["t.pc"], st["trail"]) for st in states] == [
        ("first", ()), ("last", ("first",)), ("done", ("first", "last"))]


def test_return_method_jumps_and_done_finishes():
    class Early(Thread):
        @step("x.c:a")
        def a(self, s):
            s.trail = s.trail + ("a",)
            return self.c

        @step("x.c:b")
        def b(self, s):
            s.trail = s.trail + ("b",)

        @step("x.c:c")
        def c(self, s):
            s.trail = s.trail + ("c",)
            return DONE

        @step("x.c:d")
        def d(self, s):
            s.trail = s.trail + ("d",)

    states = reachable(one_thread_model(Early, trail=()))
    assert [(st["t.pc"], st["trail"]) for st in states] == [("a", ()), ("c", ("a",)), ("done", ("a", "c"))]


def test_fall_through_stays_in_class_and_base_steps_come_last():
    class Base(Thread):
        @step("x.c:tail")
        def tail(self, s):
            s.trail = s.trail + ("tail",)

    class Sub(Base):
        first_step = "b"

        @step("x.c:a")
        def a(self, s):
            s.trail = s.trail + ("a",)
            return "tail"

        @step("x.c:b")
        def b(self, s):
            s.trail = s.trail + ("b",)  # last own step: falls through to DONE, not to tail

    assert [st.name for st in Sub.step_list()] == ["a", "b", "tail"]
    states = reachable(one_thread_model(Sub, trail=()))
    assert [(st["t.pc"], st["trail"]) for st in states] == [("b", ()), ("done", ("b",))]


def test_returning_an_unknown_step_is_a_model_error():
    class Lost(Thread):
        @step("x.c:a")
        def a(self, s):
            return "nowhere"

    with pytest.raises(ModelError, match=r"step t\.a returned 'nowhere'"):
        check_model(one_thread_model(Lost), [])


def test_step_needs_file_and_function():
    with pytest.raises(ModelError, match="file:function"):
        step("no_colon")


# --------------------------------------------------------------------------------------------
# Blocked steps and deadlocks
# --------------------------------------------------------------------------------------------

class Waiter(Thread):
    @step("kernel/sched/wait.c:wait_event")
    def wait(self, s):
        if not s.flag:
            raise Blocked
        s.seen = True


class Setter(Thread):
    @step("kernel/sched/wait.c:wake_up")
    def set(self, s):
        s.flag = True


class Flag(Model):
    name = "flag"

    def __init__(self, kinds):
        super().__init__()
        self.kinds = kinds

    def init(self, mem):
        mem.flag = False
        mem.seen = False

    def threads(self):
        return [k(k.__name__.lower()) for k in self.kinds]


def test_blocked_steps_are_not_transitions():
    # (wait, set, flag=F) -> only setter moves -> (wait, done, T) -> (done, done, T, seen)
    r = check_model(Flag([Waiter, Setter]), [deadlock_free(), at_end(lambda s: s.seen)])
    assert r.verdict == "holds"
    assert (r.states, r.transitions, r.depth) == (3, 2, 2)
    assert r.deadlocks == 0


def test_deadlock_detected():
    r = check_model(Flag([Waiter]), [deadlock_free()], property_name="dl")
    assert r.verdict == "violated"
    assert r.violation.kind == "deadlock_free"
    assert r.violation.message == "no thread can move; unfinished: waiter at wait"
    assert (r.states, r.transitions) == (1, 0)
    assert r.trace == []


def test_deadlock_counted_but_not_a_violation_unless_checked():
    r = check_model(Flag([Waiter]), [])
    assert r.verdict == "holds" and r.deadlocks == 1


def test_at_end_is_not_judged_in_a_deadlock():
    r = check_model(Flag([Waiter]), [at_end(lambda s: False)])
    assert r.verdict == "holds"


def test_deadlock_trace_leads_to_the_stuck_state():
    class MaybeSetter(Thread):
        @step("kernel/sched/wait.c:wake_up")
        def set(self, s):
            s.flag = s.maybe("wake")

    r = check_model(Flag([Waiter, MaybeSetter]), [deadlock_free()])
    assert r.verdict == "violated"
    assert [(t.thread, t.step, t.choices) for t in r.trace] == [("maybesetter", "set", [("wake", "false")])]
    assert r.violation.message == "no thread can move; unfinished: waiter at wait"


# --------------------------------------------------------------------------------------------
# Invariants, events, limits
# --------------------------------------------------------------------------------------------

def test_invariant_violated_in_the_initial_state():
    r = check_model(Increment(start=3), [invariant(lambda s: s.x < 3)])
    assert r.verdict == "violated" and r.violation.kind == "invariant"
    assert r.trace == [] and r.depth == 0 and r.states == 1


def test_invariant_trace_ends_at_first_bad_state():
    def x_below_one(s):
        """x stays 0"""
        return s.x < 1

    r = check_model(Increment(), [invariant(x_below_one)])
    assert r.violation.check == "x_below_one"
    assert [(t.thread, t.step) for t in r.trace] == [("a", "read"), ("a", "write")]


def test_never_event_reported_by_step():
    class Reporter(Thread):
        @step("mm/x.c:oops")
        def oops(self, s):
            if s.choose("bad", [False, True]):
                s.report("bad-unlock", "t did something bad")

    r = check_model(one_thread_model(Reporter), [never("bad-unlock")])
    assert r.verdict == "violated" and r.violation.kind == "never"
    assert r.violation.message == "t did something bad"
    assert r.trace[-1].events == [("bad-unlock", "t did something bad")]
    assert r.trace[-1].choices == [("bad", "true")]


def test_never_with_unknown_event_is_rejected_for_the_model():
    with pytest.raises(PtmcError, match="unknown event 'use-after-fre' for model increment"):
        check_model(Increment(), [never("use-after-fre")])


def test_max_states_is_inconclusive_with_a_reason():
    r = check_model(Increment(), [at_end(counter_is_two)], max_states=5)
    assert r.verdict == "inconclusive"
    assert r.exit_code == 3
    assert r.violation is None
    assert 5 <= r.states < INCREMENT_STATES
    assert r.reason.startswith("state limit 5 reached")
    assert "not yet expanded" in r.reason


def test_exception_in_step_names_thread_step_and_state():
    class Boom(Thread):
        @step("mm/boom.c:explode")
        def explode(self, s):
            return 1 // s.x

    with pytest.raises(ModelError) as e:
        check_model(one_thread_model(Boom, x=0), [])
    msg = str(e.value)
    assert "t.explode" in msg and "mm/boom.c:explode" in msg and "ZeroDivisionError" in msg
    assert "state: x=0, t.pc=explode" in msg


def test_exception_in_invariant_names_check_and_state():
    def broken(s):
        return s.nope

    with pytest.raises(ModelError, match=r"check broken raised AttributeError.*state: x=0"):
        check_model(Increment(), [invariant(broken)])


def test_unhashable_value_is_a_model_error():
    class Lister(Thread):
        @step("x.c:a")
        def a(self, s):
            s.x = [1]

    with pytest.raises(ModelError, match="unhashable"):
        check_model(one_thread_model(Lister, x=0), [])


def test_duplicate_thread_names_rejected():
    class Dup(Model):
        def init(self, mem):
            mem.x = 0

        def threads(self):
            return [Incrementer("a"), Incrementer("a")]

    with pytest.raises(ModelError, match="unique"):
        check_model(Dup(), [])


# --------------------------------------------------------------------------------------------
# Determinism (the subprocess run with another PYTHONHASHSEED is in test_cli.py)
# --------------------------------------------------------------------------------------------

def test_same_check_twice_gives_same_counts_and_trace():
    a = check_model(Increment(), [at_end(counter_is_two)])
    b = check_model(Increment(), [at_end(counter_is_two)])
    assert (a.states, a.transitions, a.depth) == (b.states, b.transitions, b.depth)
    assert a.trace == b.trace


def test_fall_through_stays_in_class_when_subclass_reuses_base_name():
    import textwrap
    ns_base = {"Thread": Thread, "step": step}
    exec(textwrap.dedent('''
        class Walker(Thread):
            @step("x.c:tail")
            def tail(self, s):
                s.trail = s.trail + ("tail",)
    '''), ns_base)
    ns_sub = {"Base": ns_base["Walker"], "step": step}
    exec(textwrap.dedent('''
        class Walker(Base):
            @step("x.c:own")
            def own(self, s):
                s.trail = s.trail + ("own",)
    '''), ns_sub)
    states = reachable(one_thread_model(ns_sub["Walker"], trail=()))
    assert [(st["t.pc"], st["trail"]) for st in states] == [("own", ()), ("done", ("own",))]


# --------------------------------------------------------------------------------------------
# Procedures: a sub-path called from two places returns to each caller with its result.
# --------------------------------------------------------------------------------------------

from ptmc.model import Procedure  # noqa: E402


class ReadTwice(Procedure):
    """A helper of two steps: read x, read it again; return whether both reads agreed."""

    first: int = 0

    @step("lib/helper.c:read_once")
    def read_once(self, s):
        self.first = s.x

    @step("lib/helper.c:read_again")
    def read_again(self, s):
        return self.ret(self.first == s.x)


class Caller(ReadTwice):
    stable: tuple = ()

    @step("lib/caller.c:start")
    def start(self, s):
        return self.call(ReadTwice, then=self.after_first)

    def after_first(self, agreed):
        self.stable += (agreed,)
        return self.call(ReadTwice, then="finish")

    @step("lib/caller.c:finish")
    def finish(self, s):
        s.log = self.stable
        return DONE


class Writer(Thread):
    @step("lib/writer.c:write")
    def write(self, s):
        s.x = 1
        return DONE


class Calls(Model):
    name = "calls"

    def init(self, mem):
        mem.x = 0
        mem.log = None

    def threads(self):
        return [Caller("c"), Writer("w")]


def test_a_procedure_returns_to_each_caller_with_its_value():
    states = reachable(Calls())
    logs = {st["log"] for st in states if st["c.pc"] == "done"}
    # The write lands before, between the two reads of the first call, or later: only the
    # first call's result is kept (the second call continues at a step, which ignores it).
    assert logs == {(True,), (False,)}
    # The call stack is part of the state while a call is in progress, empty otherwise.
    assert {st["c._stack"] for st in states} == {(), ("after_first",), ("finish",)}
    assert all(st["c._stack"] == () for st in states if st["c.pc"] in ("start", "finish", "done"))


def test_a_return_without_a_call_is_a_model_error():
    class Stray(ReadTwice):
        @step("lib/stray.c:go")
        def go(self, s):
            return self.ret(1)

    class M(Calls):
        def threads(self):
            return [Stray("s")]

    with pytest.raises(ModelError, match="s.go returns, but nothing called it"):
        check_model(M(), [])
