"""Rules of the explorer (explore/bfs.py, explore/system.py, explore/__init__.py) and of the
state and memory view (state.py): each case's verdict or state count depends on one of them."""
from __future__ import annotations

from ptmc import DONE, Blocked, Model, Param, Thread, step
from ptmc.kernel.pgtable import PageTables, present, pte_alloc_one, pte_clear, set_pte_at
from ptmc.kernel.rcu import RcuCallbacks, rcu_init
from ptmc.properties import at_end, deadlock_free, invariant, never
from ptmc.smt import Counters

from .case import Case, cells, model

BAD = "use-after-free"  # any event a primitive can report; these engine models report it by hand


class Incrementer(Thread):
    """x++ as a load and a store (the hand-counted model of tests/test_engine.py)."""

    tmp: int = 0

    @step("lib/counter.c:counter_read")
    def read(self, s):
        self.tmp = s.x

    @step("lib/counter.c:counter_write")
    def write(self, s):
        s.x = self.tmp + 1


def increment(start=0):
    return model(cells(x=start), lambda: [Incrementer("a"), Incrementer("b")], "increment")


# The increment model has 12 states (tests/test_engine.py counts them by hand: (r,r) 1, (w,r)
# (r,w) 2, (w,w) 1, (d,r) (r,d) 2, (d,w) (w,d) with tmp 0 or 1: 4, (d,d) with x=1 or x=2: 2);
# without the dead-local reset (d,d,x=2) splits by who finished first: 13.


def lost_update():
    return increment(), [at_end(lambda s: s.x == 2 or f"x is {s.x}")]


def x_below_one():
    return increment(), [invariant(lambda s: s.x < 1)]


def x_below_three_from_three():
    return increment(3), [invariant(lambda s: s.x < 3)]


def invariant_none_is_true():
    return increment(), [invariant(lambda s: None)]


def at_end_only_when_finished():
    # x is 0 in every state but the last ones: an end check judged anywhere else fails.
    return increment(), [at_end(lambda s: s.x >= 1)]


def no_checks():
    return increment(), []


class Chooser(Thread):
    """One step, two nested choices: a in {0, 1}, b in {0, 1, 2}; x := 3a + b."""

    @step("x.c:pick")
    def pick(self, s):
        a = s.choose("a", [0, 1])
        b = s.choose("b", [0, 1, 2])
        s.x = a * 3 + b


def last_combination():
    # 1 + 6 states; only the last combination of the odometer (a=1, b=2) is bad.
    return model(cells(x=-1), lambda: [Chooser("t")]), [invariant(lambda s: s.x != 5)]


class SameTarget(Thread):
    """Both outcomes of a choice lead to the same state; only the second reports an event."""

    @step("x.c:pick")
    def pick(self, s):
        if s.maybe("bad"):
            s.report(BAD, "t's second outcome is bad")


def event_to_visited_state():
    # 2 states: the initial one, t done. The event is on the transition to a state that the
    # first outcome already added to the store.
    return model(cells(), lambda: [SameTarget("t")]), [never(BAD)]


class Early(Thread):
    """x.c:a jumps to c by method, c finishes with DONE: b and d never run."""

    @step("x.c:a")
    def a(self, s):
        s.trail = s.trail + ("a",)
        return self.c

    @step("x.c:b")
    def b(self, s):
        s.report(BAD, "b ran")

    @step("x.c:c")
    def c(self, s):
        s.trail = s.trail + ("c",)
        return DONE

    @step("x.c:d")
    def d(self, s):
        s.report(BAD, "d ran")


def jumps():
    # 3 states: (a, ()), (c, (a,)), (done, (a, c)).
    return model(cells(trail=()), lambda: [Early("t")]), [never(BAD), at_end(lambda s: s.trail == ("a", "c"))]


class Tail(Thread):
    @step("x.c:tail")
    def tail(self, s):
        s.report(BAD, "fell through into the base class")


class Sub(Tail):
    first_step = "b"

    @step("x.c:a")
    def a(self, s):
        s.report(BAD, "started at the first step instead of first_step")

    @step("x.c:b")
    def b(self, s):
        s.sub_trail = s.sub_trail + ("b",)  # the last own step: falls through to DONE, not into tail


class Named(Thread):
    """Returns the next step's name; falls through from there."""

    @step("x.c:one")
    def one(self, s):
        s.trail = s.trail + (1,)
        return "three"

    @step("x.c:two")
    def two(self, s):
        s.report(BAD, "two ran")

    @step("x.c:three")
    def three(self, s):
        s.trail = s.trail + (3,)

    @step("x.c:four")
    def four(self, s):
        s.trail = s.trail + (4,)


def fall_through():
    # Sub: 2 states (b, done); Named: 4 (one, three, four, done); they share nothing: 2 x 4 = 8.
    return (model(cells(trail=(), sub_trail=()), lambda: [Sub("sub"), Named("named")]),
            [never(BAD), at_end(lambda s: (s.sub_trail, s.trail) == (("b",), (1, 3, 4)))])


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


def blocked_until_set():
    # (wait, set, F) -> (wait, done, T) -> (done, done, T, seen): 3 states; the waiter has no
    # transition in the first state.
    return (model(cells(flag=False, seen=False), lambda: [Waiter("waiter"), Setter("setter")]),
            [deadlock_free(), at_end(lambda s: s.seen), invariant(lambda s: s.flag or not s.seen)])


def lone_waiter():
    # 1 state, no transition, the waiter unfinished: a deadlock of length 0.
    return model(cells(flag=False, seen=False), lambda: [Waiter("waiter")]), [deadlock_free()]


def lone_waiter_at_end():
    # A deadlocked state is not a final state: at_end is not judged there.
    return model(cells(flag=False, seen=False), lambda: [Waiter("waiter")]), [at_end(lambda s: False)]


class Fork(Thread):
    """One choice: go on to a step that reports an event, or into a step that never runs."""

    @step("x.c:fork")
    def fork(self, s):
        return "bad" if s.choose("way", ["bad", "stuck"]) == "bad" else "stuck"

    @step("x.c:bad")
    def bad(self, s):
        s.report(BAD, "the bad way")

    @step("x.c:stuck")
    def stuck(self, s):
        raise Blocked


def shortest_across_kinds():
    # Level 1 holds t at bad (first) and t at stuck. Expanding "bad" finds the event, 2 steps;
    # the rest of level 1 is still scanned and "stuck" is a deadlock of 1 step: the shortest.
    return model(cells(), lambda: [Fork("t")]), [never(BAD), deadlock_free()]


class Ends(Thread):
    """One choice between finishing (a final state) and a step that never runs (a deadlock)."""

    ways = ("end", "stuck")

    @step("x.c:fork")
    def fork(self, s):
        return DONE if s.choose("way", self.ways) == "end" else "stuck"

    @step("x.c:stuck")
    def stuck(self, s):
        raise Blocked


class StuckFirst(Ends):
    ways = ("stuck", "end")


def first_of_a_level(kind):
    # Level 1 holds a final state failing at_end and a deadlock, in the order of the choice:
    # both are 1 step long, and the first one found is the one reported.
    return model(cells(), lambda: [kind("t")]), [at_end(lambda s: "ended"), deadlock_free()]


class TwoEvents(Thread):
    """One step that reports two watched events: the first reported is the violation."""

    @step("x.c:both")
    def both(self, s):
        s.report("double-free", "t frees twice")
        s.report(BAD, "t uses what it freed")


def first_event_of_a_transition():
    return model(cells(), lambda: [TwoEvents("t")]), [never(BAD), never("double-free")]


class ForkBad(Fork):
    """As Fork, but the bad way breaks an invariant (x := 1) one step later."""

    first_step = "fork"  # own steps come first: start at the inherited fork

    @step("x.c:bad")
    def bad(self, s):
        s.x = 1


def shortest_invariant_across_kinds():
    # Level 1: t at bad, t at stuck. Expanding "bad" breaks the invariant in 2 steps; "stuck",
    # later in level 1, is a deadlock of 1 step: the shorter one is reported.
    return model(cells(x=0), lambda: [ForkBad("t")]), [invariant(lambda s: s.x == 0), deadlock_free()]


class Slow(Thread):
    """Three steps to an event."""

    @step("x.c:s1")
    def s1(self, s):
        pass

    @step("x.c:s2")
    def s2(self, s):
        pass

    @step("x.c:s3")
    def s3(self, s):
        s.report(BAD, "slow got there")


class Quick(Thread):
    """One step that waits for nothing, then the event."""

    @step("x.c:q1")
    def q1(self, s):
        pass

    @step("x.c:q2")
    def q2(self, s):
        s.report(BAD, "quick got there")


def shortest_event():
    # slow is first in thread order, but quick's event is 2 steps away, slow's 3.
    return model(cells(), lambda: [Slow("slow"), Quick("quick")]), [never(BAD)]


class Empty(Thread):
    @step("x.c:pick")
    def pick(self, s):
        s.x = s.choose("value", [])


def no_option_blocks():
    return model(cells(x=0), lambda: [Empty("t")]), [deadlock_free()]


class Oops(Thread):
    @step("x.c:oops")
    def oops(self, s):
        from ptmc.state import OOPS, Stop
        raise Stop(OOPS)

    @step("x.c:after")
    def after(self, s):
        s.report(BAD, "an oopsed thread ran on")


class Hang(Thread):
    @step("x.c:hang")
    def hang(self, s):
        from ptmc.state import HUNG, Stop
        raise Stop(HUNG)


def oops_is_dead_not_deadlocked():
    # 2 states: the oopsed thread never moves again, and is not waited for.
    return model(cells(), lambda: [Oops("t")]), [never(BAD), deadlock_free()]


def hung_is_deadlocked():
    return model(cells(), lambda: [Hang("t")]), [deadlock_free()]


def daemon_not_waited_for():
    # The RCU callback thread has nothing to do: it is blocked, but a daemon, so no deadlock.
    # One incrementer: at read, at write, done: 3 states.
    def init(mem):
        rcu_init(mem)
        mem.x = 0
    return model(init, lambda: [Incrementer("a"), RcuCallbacks()]), [deadlock_free()]


class Reporter(Thread):
    @step("x.c:unlock")
    def unlock(self, s):
        s.report("bad-unlock", "t unlocks a lock it does not hold")


def unwatched_event():
    # Only events that a never() check names are violations.
    return model(cells(), lambda: [Reporter("t")]), [never(BAD)]


def watched_event():
    return model(cells(), lambda: [Reporter("t")]), [never(BAD), never("bad-unlock")]


def init_reads_back():
    # Model.init may read what it declared (state._Declaring): y is x + 1 from the start.
    def init(mem):
        mem.x = 1
        mem.y = mem.x + 1
    return model(init, lambda: [Incrementer("a")]), [invariant(lambda s: s.y == 2)]


class Entries(Counters):
    """Per PTE page: its non-none entries (the explorer checks every step's declared effect)."""

    page = ("live", "entries")
    sizes = {"PTRS_PER_PTE": "entries"}
    domain = "0 <= entries <= PTRS_PER_PTE"
    invariant = "entries <= PTRS_PER_PTE"

    def of_page(self, page):
        return {"live": int(page.live), "entries": sum(e is not None for e in page.entries)}


class Zero(Entries):
    invariant = "entries == 0 or live == 0"  # false from the start: pt0 maps a page


class Clear(Thread):
    @step("mm/memory.c:zap_pte_range", effect={"when": "entries >= 1", "entries": "entries - 1"})
    def zap(self, s):
        pte_clear(s, s.pmd, 0)


class ClearWrong(Thread):
    @step("mm/memory.c:zap_pte_range", effect={"when": "entries >= 1", "entries": "entries"})
    def zap(self, s):
        pte_clear(s, s.pmd, 0)


def counted(thread, counters=Entries):
    class Counted(Model):
        entries = Param(1, "entries per PTE page")
        name = "counted"

        def init(self, mem):
            PageTables(mem, pages=1, entries=self.entries)
            mem.pmd = pte_alloc_one(mem)
            set_pte_at(mem, mem.pmd, 0, present(1))

        def threads(self):
            return [thread("zap")]
    Counted.counters = counters()
    return Counted(), []


class Pair(Thread):
    """Writes both halves of a pair in one step: a state holds tuples."""

    @step("x.c:write")
    def write(self, s):
        s.store("x", s.load("x") + 1)
        s.pair = (s.x, s.maybe("odd"))


def load_store_and_maybe():
    # One thread, one step with two outcomes: 3 states; the second outcome is the bad one.
    return model(cells(x=0, pair=None), lambda: [Pair("t")]), [invariant(lambda s: s.pair != (1, True))]


CASES = [
    Case("lost update", "bfs.explore: at_end judged in final states; BFS order", lost_update,
         "violated", "<lambda>", 4, 12, depth=4),
    Case("all states, dead locals reset", "system.successors: a finished thread's locals are reset",
         no_checks, "holds", None, 0, 12, depth=4),
    Case("all states, no reset", "system.System(reset_dead_locals=False) keeps them", no_checks,
         "holds", None, 0, 13, reset_dead_locals=False, depth=4),
    # (r,r); level 1: (w,r), (r,w); expanding (w,r): a.write reaches x=1, the 4th state.
    Case("invariant on new states", "bfs.explore: each new state is checked", x_below_one,
         "violated", "<lambda>", 2, 4, depth=2),
    Case("invariant on the initial state", "bfs.explore: the initial state is checked",
         x_below_three_from_three, "violated", "<lambda>", 0, 1, depth=0),
    Case("invariant returning None holds", "bfs._evaluate: None and True mean true",
         invariant_none_is_true, "holds", None, 0, 12, depth=4),
    Case("at_end only in final states", "bfs.explore: at_end only where every thread finished",
         at_end_only_when_finished, "holds", None, 0, 12, depth=4),
    Case("last combination of choices", "system._next_script: every combination, the last too",
         last_combination, "violated", "<lambda>", 1, 7, depth=1),
    Case("event on a transition to a visited state", "bfs.explore: events on every transition",
         event_to_visited_state, "violated", f"never {BAD}", 1, 2, depth=1),
    Case("jumps by method and DONE", "system.successors: returned step, DONE", jumps,
         "holds", None, 0, 3, depth=2),
    Case("fall-through and first_step", "system.System: fall-through within a class; Thread.start_pc",
         fall_through, "holds", None, 0, 8, depth=4),
    Case("blocked step is no transition", "system.successors: Blocked", blocked_until_set,
         "holds", None, 0, 3, depth=2),
    Case("deadlock", "bfs.explore: no successor, unfinished thread", lone_waiter, "violated",
         "deadlock free", 0, 1, depth=0),
    Case("no at_end in a deadlock", "bfs.explore: a deadlocked state is not final", lone_waiter_at_end,
         "holds", None, 0, 1, depth=0),
    Case("shortest across kinds", "bfs.explore: the rest of the level is scanned for shorter ones",
         shortest_across_kinds, "violated", "deadlock free", 1, 3, depth=1),
    Case("end failure before a deadlock of the same length", "bfs.explore: only a shorter one replaces",
         lambda: first_of_a_level(Ends), "violated", "<lambda>", 1, 3, depth=1),
    Case("deadlock before an end failure of the same length", "bfs.explore: only a shorter one replaces",
         lambda: first_of_a_level(StuckFirst), "violated", "deadlock free", 1, 3, depth=1),
    Case("first event of a transition", "bfs.explore: the first watched event of a transition",
         first_event_of_a_transition, "violated", "never double-free", 1, 1, depth=1),
    Case("shortest invariant across kinds", "bfs.explore: a deadlock shorter than an invariant failure",
         shortest_invariant_across_kinds, "violated", "deadlock free", 1, 4, depth=1),
    # (s1,q1); (s2,q1), (s1,q2); expanding (s2,q1) adds (s3,q1), (s2,q2); then q2's event.
    Case("shortest event", "bfs.explore: breadth first", shortest_event,
         "violated", f"never {BAD}", 2, 5, depth=2),
    Case("choice without options blocks", "state.Mem.choose: no options is Blocked", no_option_blocks,
         "violated", "deadlock free", 0, 1, depth=0),
    Case("oops ends the thread", "system.successors: Stop(OOPS); system.unfinished", oops_is_dead_not_deadlocked,
         "holds", None, 0, 2, depth=1),
    Case("hung is a deadlock", "system.unfinished: a hung thread is unfinished", hung_is_deadlocked,
         "violated", "deadlock free", 1, 2, depth=1),
    Case("daemon is not waited for", "system.unfinished: daemons never count", daemon_not_waited_for,
         "holds", None, 0, 3, depth=2),
    Case("unwatched event", "bfs.explore: only events a never() names", unwatched_event,
         "holds", None, 0, 2, depth=1),
    # The violating transition's target is not stored: 1 state (the unwatched run stores it: 2).
    Case("watched event", "bfs.explore: events a never() names", watched_event,
         "violated", "never bad-unlock", 1, 1, depth=1),
    Case("load, store, maybe", "state.Mem.load/store/maybe", load_store_and_maybe,
         "violated", "<lambda>", 1, 3, depth=1),
    # (r,r) -> 3 states; expanding (w,r) adds (d,r), (w,w): 5 reached, the limit.
    Case("init reads what it declared", "state._Declaring: declared cells read back", init_reads_back,
         "holds", None, 0, 3, depth=2),
    Case("declared effect matches", "bfs.explore: the effect link on every transition", lambda: counted(Clear),
         "holds", None, 0, 2, depth=1),
    Case("declared effect is wrong", "bfs.explore: an effect-link failure is a violation",
         lambda: counted(ClearWrong), "violated", "effects match code", 1, 1, depth=1),
    Case("initial state breaks the counting invariant", "bfs.explore: the effect link on the initial state",
         lambda: counted(Clear, Zero), "violated", "effects match code", 0, 1, depth=0),
    Case("state limit", "bfs.explore: max_states ends inconclusive", no_checks, "inconclusive", None, 0, 5,
         max_states=5, depth=1),
]
