"""Kernel primitives (ptmc.kernel): spinlocks, RCU, the page-table page pool, atomics."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Model, Thread, step
from ptmc.errors import ModelError
from ptmc.explore import check_model
from ptmc.kernel.atomic import atomic_add, atomic_inc_not_zero, atomic_read, atomic_sub_and_test
from ptmc.kernel.pgtable import (PT, PageTables, huge_pmd, pmd_same, pmd_table, present, pt,
                                 pte_alloc_one, pte_free, pte_lockptr, pte_offset_map, ptep_get,
                                 set_pte_at)
from ptmc.kernel.rcu import (RcuCallbacks, call_rcu, rcu_head_cell, rcu_init, rcu_read_lock,
                             rcu_read_unlock, synchronize_rcu, synchronize_rcu_wait)
from ptmc.kernel.spinlock import lock_holder, spin_lock, spin_trylock, spin_unlock, spinlock_init
from ptmc.properties import at_end, deadlock_free, invariant, never


def make_model(init, threads, name="m", **params):
    """A model from an init function and a factory of threads; ``params`` set its (kernel
    configuration) parameters."""
    class M(Model):
        def init(self, mem):
            init(mem)

        def threads(self):
            return threads()
    M.name = name
    return M(params)


# --------------------------------------------------------------------------------------------
# Spinlocks
# --------------------------------------------------------------------------------------------

class Critical(Thread):
    """lock; enter; leave; unlock -- `inside` counts threads in the critical section."""

    locked = True

    @step("kernel/locking/spinlock.c:_raw_spin_lock")
    def lock(self, s):
        if self.locked:
            spin_lock(s, "l")

    @step("x.c:enter")
    def enter(self, s):
        s.inside = s.inside + 1

    @step("x.c:leave")
    def leave(self, s):
        s.inside = s.inside - 1

    @step("kernel/locking/spinlock.c:_raw_spin_unlock")
    def unlock(self, s):
        if self.locked:
            spin_unlock(s, "l")


def critical_model(locked=True):
    def init(mem):
        spinlock_init(mem, "l")
        mem.inside = 0

    def threads():
        ts = [Critical("a"), Critical("b")]
        for t in ts:
            t.locked = locked
        return ts
    return make_model(init, threads)


def mutual_exclusion(s):
    """at most one thread between enter and leave"""
    return s.inside <= 1


def test_spinlock_mutual_exclusion():
    r = check_model(critical_model(), [invariant(mutual_exclusion), deadlock_free(),
                                       never("bad-unlock"), never("self-deadlock")])
    assert r.verdict == "holds"
    # Hand count. Each thread is at lock, enter, leave, unlock or done; it holds l exactly at
    # enter/leave/unlock. Lock free: both threads in {lock, done}: 4 states. Lock held: 2
    # holders x 3 positions x other in {lock, done}: 12 states. Total 16.
    # Transitions: lock-free states (lock,lock):2 (lock,done):1 (done,lock):1 (done,done):0;
    # each held state: only the holder moves (the other is blocked or done): 12. Total 16.
    assert (r.states, r.transitions) == (16, 16)


def test_without_the_lock_mutual_exclusion_fails():
    r = check_model(critical_model(locked=False), [invariant(mutual_exclusion)])
    assert r.verdict == "violated"
    assert [(t.thread, t.step) for t in r.trace] == [("a", "lock"), ("a", "enter"), ("b", "lock"), ("b", "enter")]


def test_spinlock_holder_shown_in_trace():
    r = check_model(critical_model(), [invariant(lambda s: s.inside == 0)])
    assert r.trace[0].changes["l"] == ("unlocked", "held by a")


def trylock_model(first_locks: bool):
    """Thread a takes l (or not), then trylocks it; thread b only trylocks."""
    class A(Thread):
        @step("x.c:take")
        def take(self, s):
            if first_locks:
                spin_lock(s, "l")

        @step("x.c:try")
        def again(self, s):
            s.a_got = spin_trylock(s, "l")
            return DONE

    class B(Thread):
        @step("x.c:try")
        def trylock(self, s):
            s.b_got = spin_trylock(s, "l")
            if s.b_got:
                spin_unlock(s, "l")

    def init(mem):
        spinlock_init(mem, "l")
        mem.a_got = None
        mem.b_got = None
    return make_model(init, lambda: [A("a"), B("b")])


def test_trylock_fails_while_held_by_caller():
    states = reachable(trylock_model(first_locks=True))
    # a holds l from its first step on, so its own trylock always fails ...
    assert {st["a_got"] for st in states if st["a.pc"] == "done"} == {False}
    # ... and b's trylock fails exactly when a already held l.
    b_results = {(st["b_got"], st["l"]) for st in states if st["b.pc"] == "done" and st["a.pc"] != "take"}
    assert (False, 0) in b_results
    # b can also win the race (a still at take): then it took and released l.
    assert any(st["b_got"] is True and st["a.pc"] == "take" for st in states)


def test_trylock_succeeds_when_free():
    states = reachable(trylock_model(first_locks=False))
    a_results = {st["a_got"] for st in states if st["a.pc"] == "done"}
    assert a_results == {True}  # b only holds l inside one step, so l is free for a


def test_self_deadlock_reported():
    class Twice(Thread):
        @step("x.c:first")
        def first(self, s):
            spin_lock(s, "l")

        @step("x.c:second")
        def second(self, s):
            spin_lock(s, "l")

    model = make_model(lambda mem: spinlock_init(mem, "l"), lambda: [Twice("t")])
    r = check_model(model, [never("self-deadlock")])
    assert r.verdict == "violated"
    last = r.trace[-1]
    assert (last.thread, last.step) == ("t", "second")
    assert last.events == [("self-deadlock", "t takes l, which it already holds")]
    assert last.changes == {"t.pc": ("second", "hung")}
    # a hung thread never finishes: it is also a deadlock
    model = make_model(lambda mem: spinlock_init(mem, "l"), lambda: [Twice("t")])
    r = check_model(model, [deadlock_free()])
    assert r.verdict == "violated" and r.violation.message == "no thread can move; unfinished: t at hung"


def test_bad_unlock_reported():
    class Unlocker(Thread):
        @step("x.c:unlock")
        def unlock(self, s):
            spin_unlock(s, "l")

    model = make_model(lambda mem: spinlock_init(mem, "l"), lambda: [Unlocker("t")])
    r = check_model(model, [never("bad-unlock")])
    assert r.verdict == "violated"
    assert r.violation.message == "t unlocks l, which it does not hold"


class Ordered(Thread):
    def __init__(self, name, first, second):
        super().__init__(name)
        self.first, self.second = first, second

    @step("x.c:lock_first")
    def lock_first(self, s):
        spin_lock(s, self.first)

    @step("x.c:lock_second")
    def lock_second(self, s):
        spin_lock(s, self.second)

    @step("x.c:unlock_second")
    def unlock_second(self, s):
        spin_unlock(s, self.second)

    @step("x.c:unlock_first")
    def unlock_first(self, s):
        spin_unlock(s, self.first)


def abba(b_first, b_second):
    def init(mem):
        spinlock_init(mem, "l1")
        spinlock_init(mem, "l2")
    return make_model(init, lambda: [Ordered("a", "l1", "l2"), Ordered("b", b_first, b_second)])


def test_abba_deadlock_found():
    r = check_model(abba("l2", "l1"), [deadlock_free()], property_name="no_deadlock")
    assert r.verdict == "violated"
    assert r.violation.kind == "deadlock_free"
    assert r.violation.message == "no thread can move; unfinished: a at lock_second, b at lock_second"
    # Shortest: each takes its first lock; then each waits for the other's.
    assert [(t.thread, t.step) for t in r.trace] == [("a", "lock_first"), ("b", "lock_first")]
    assert r.trace[0].changes["l1"] == ("unlocked", "held by a")
    assert r.trace[1].changes["l2"] == ("unlocked", "held by b")


def test_same_lock_order_is_deadlock_free():
    r = check_model(abba("l1", "l2"), [deadlock_free()])
    assert r.verdict == "holds" and r.deadlocks == 0


# --------------------------------------------------------------------------------------------
# RCU
# --------------------------------------------------------------------------------------------

def reclaim(s, arg):
    """The callback: frees the object."""
    s.freed = True


class Reader(Thread):
    """rcu_read_lock(); ... rcu_read_unlock(): `reader_in` mirrors being inside."""

    @step("include/linux/rcupdate.h:rcu_read_lock")
    def lock(self, s):
        rcu_read_lock(s)
        s.reader_in = True

    @step("include/linux/rcupdate.h:rcu_read_unlock")
    def unlock(self, s):
        rcu_read_unlock(s)
        s.reader_in = False


class Updater(Thread):
    """Unpublishes the object and queues its freeing with call_rcu()."""

    @step("kernel/rcu/tree.c:call_rcu")
    def queue(self, s):
        s.reader_at_call = s.reader_in  # was the reader inside when the callback was queued?
        call_rcu(s, "obj.rcu_head", reclaim, "obj")


def rcu_model(updater=Updater, reader=Reader):
    def init(mem):
        rcu_init(mem)
        rcu_head_cell(mem, "obj.rcu_head")
        mem.freed = False
        mem.reader_in = False
        mem.reader_at_call = None
        mem.reader_at_sync = None
    return make_model(init, lambda: [reader("reader"), updater("updater"), RcuCallbacks()])


def no_free_under_old_reader(s):
    """the callback never runs while a reader that predates call_rcu() is still inside"""
    return not (s.freed and s.reader_in and s.reader_at_call)


def test_call_rcu_waits_for_preexisting_readers():
    r = check_model(rcu_model(), [invariant(no_free_under_old_reader), deadlock_free(),
                                  at_end(lambda s: s.freed)])
    assert r.verdict == "holds"
    states = reachable(rcu_model())
    # Not vacuous: the reader can be inside at call_rcu() time, and the callback then does run
    # (after it left).
    assert any(st["reader_at_call"] and st["reader_in"] and not st["freed"] for st in states)
    assert any(st["reader_at_call"] and st["freed"] for st in states)


def test_call_rcu_is_not_delayed_by_later_readers():
    states = reachable(rcu_model())
    later = [st for st in states if st["freed"] and st["reader_in"] and st["reader_at_call"] is False]
    assert later, "a reader that entered after call_rcu() must not delay the callback"


def test_call_rcu_head_display_and_rcu_thread():
    r = check_model(rcu_model(), [invariant(lambda s: not s.freed)])
    assert r.verdict == "violated"
    # shortest: queue with nobody inside, then the callback runs at once
    assert [(t.thread, t.step) for t in r.trace] == [("updater", "queue"), ("rcu", "rcu_do_batch")]
    assert r.trace[0].changes["obj.rcu_head"] == ("idle", "reclaim(obj) queued, ready")
    assert r.trace[1].changes["obj.rcu_head"] == ("reclaim(obj) queued, ready", "idle")
    assert r.trace[1].kernel_function == "kernel/rcu/tree.c:rcu_do_batch"


def test_call_rcu_waits_for_a_reader_inside_when_queued():
    class LateUpdater(Updater):
        """Queues only once the reader is inside."""

        @step("kernel/rcu/tree.c:call_rcu")
        def queue(self, s):
            if not s.reader_in:
                from ptmc import Blocked
                raise Blocked
            s.reader_at_call = True
            call_rcu(s, "obj.rcu_head", reclaim, "obj")

    r = check_model(rcu_model(updater=LateUpdater), [invariant(lambda s: not s.freed)])
    assert [(t.thread, t.step) for t in r.trace] == [
        ("reader", "lock"), ("updater", "queue"), ("reader", "unlock"), ("rcu", "rcu_do_batch")]
    assert r.trace[1].changes["obj.rcu_head"] == ("idle", "reclaim(obj) queued, waits for reader")
    assert r.trace[2].changes["obj.rcu_head"] == ("reclaim(obj) queued, waits for reader",
                                                  "reclaim(obj) queued, ready")


def test_nested_read_lock_keeps_delaying_the_callback():
    class Nested(Thread):
        @step("x.c:lock_outer")
        def lock_outer(self, s):
            rcu_read_lock(s)
            s.reader_in = True

        @step("x.c:lock_inner")
        def lock_inner(self, s):
            rcu_read_lock(s)

        @step("x.c:unlock_inner")
        def unlock_inner(self, s):
            rcu_read_unlock(s)

        @step("x.c:unlock_outer")
        def unlock_outer(self, s):
            rcu_read_unlock(s)
            s.reader_in = False

    r = check_model(rcu_model(reader=Nested), [invariant(no_free_under_old_reader), at_end(lambda s: s.freed)])
    assert r.verdict == "holds"


def test_double_call_rcu_reported():
    class Twice(Thread):
        @step("x.c:one")
        def one(self, s):
            rcu_read_lock(s)  # keep the first callback pending

        @step("x.c:two")
        def two(self, s):
            call_rcu(s, "obj.rcu_head", reclaim, "a")

        @step("x.c:three")
        def three(self, s):
            call_rcu(s, "obj.rcu_head", reclaim, "b")

    def init(mem):
        rcu_init(mem)
        rcu_head_cell(mem, "obj.rcu_head")
        mem.freed = False
    r = check_model(make_model(init, lambda: [Twice("t"), RcuCallbacks()]), [never("double-call-rcu")])
    assert r.verdict == "violated"
    assert r.trace[-1].step == "three"
    assert r.violation.message == "t queues reclaim(b) on a busy rcu_head"


class Syncer(Thread):
    """Unpublish; synchronize_rcu(); free."""

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync(self, s):
        s.reader_at_sync = s.reader_in
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait(self, s):
        synchronize_rcu_wait(s)

    @step("mm/x.c:free")
    def free(self, s):
        s.freed = True


def no_free_under_reader_before_sync(s):
    """synchronize_rcu() does not return while a reader that predates it is inside"""
    return not (s.freed and s.reader_in and s.reader_at_sync)


def test_synchronize_rcu_waits_for_preexisting_readers():
    r = check_model(rcu_model(updater=Syncer), [invariant(no_free_under_reader_before_sync), deadlock_free()])
    assert r.verdict == "holds"
    states = reachable(rcu_model(updater=Syncer))
    # the syncer really waits: a state with it at wait, the old reader inside
    assert any(st["updater.pc"] == "wait" and st["reader_at_sync"] and st["reader_in"] for st in states)
    # ... but not for a reader that came later
    assert any(st["freed"] and st["reader_in"] and st["reader_at_sync"] is False for st in states)


def test_synchronize_rcu_wait_is_blocked_while_reader_inside():
    class SyncOnce(Syncer):
        @step("kernel/rcu/tree.c:synchronize_rcu")
        def sync(self, s):
            if not s.reader_in:
                from ptmc import Blocked
                raise Blocked
            s.reader_at_sync = True
            synchronize_rcu(s)
            return "wait"  # a subclass's own last step would fall through to DONE

    r = check_model(rcu_model(updater=SyncOnce), [at_end(lambda s: not s.freed)])
    assert [(t.thread, t.step) for t in r.trace] == [
        ("reader", "lock"), ("updater", "sync"), ("reader", "unlock"), ("updater", "wait"), ("updater", "free")]
    assert r.trace[1].changes["rcu_gp"] == ("none", "updater waits for reader")
    assert r.trace[2].changes["rcu_gp"] == ("updater waits for reader", "updater waits for nobody")


def test_synchronize_rcu_inside_reader_is_self_deadlock():
    class Bad(Thread):
        @step("x.c:lock")
        def lock(self, s):
            rcu_read_lock(s)

        @step("kernel/rcu/tree.c:synchronize_rcu")
        def sync(self, s):
            synchronize_rcu(s)

    def init(mem):
        rcu_init(mem)
    r = check_model(make_model(init, lambda: [Bad("t")]), [never("self-deadlock")])
    assert r.verdict == "violated"
    assert r.trace[-1].events == [("self-deadlock", "t calls synchronize_rcu() inside rcu_read_lock()")]
    assert r.trace[-1].changes["t.pc"] == ("sync", "hung")


# --------------------------------------------------------------------------------------------
# Page-table page pool
# --------------------------------------------------------------------------------------------

def pool_init(pages=2, entries=1):
    def init(mem):
        PageTables(mem, pages=pages, entries=entries, fields={"count": 0})
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        mem.pmd = table
    return init


class Walker(Thread):
    """Reads the pmd, then an entry through the pointer it got."""

    table: object = None

    @step("mm/pagewalk.c:walk_pmd_range")
    def get(self, s):
        self.table = s.pmd

    @step("mm/pagewalk.c:walk_pte_range")
    def read(self, s):
        if self.table is not None:
            ptep_get(s, self.table, 0)


class Freer(Thread):
    """Clears the pmd, frees the page, optionally allocates (reusing it)."""

    table: object = None
    realloc = False

    @step("mm/x.c:clear")
    def clear(self, s):
        self.table = s.pmd
        s.pmd = None

    @step("mm/x.c:pte_free")
    def free(self, s):
        pte_free(s, self.table)
        if not self.realloc:
            return DONE

    @step("mm/x.c:pte_alloc_one")
    def alloc(self, s):
        s.pmd = pte_alloc_one(s)


def test_access_to_freed_page_is_use_after_free():
    r = check_model(make_model(pool_init(), lambda: [Walker("walker"), Freer("freer")]),
                    [never("use-after-free")])
    assert r.verdict == "violated"
    assert r.violation.message == "walker reads pt0.e0, but pt0 is free"
    assert [(t.thread, t.step) for t in r.trace] == [
        ("walker", "get"), ("freer", "clear"), ("freer", "free"), ("walker", "read")]
    last = r.trace[-1]
    assert last.events == [("use-after-free", "walker reads pt0.e0, but pt0 is free")]
    assert r.trace[2].changes["pt0.state"] == ("allocated", "free")


def test_access_to_freed_and_reused_page_is_use_after_free():
    class Reuser(Thread):
        """All in one thread, so the order is fixed: get, free, reallocate, read."""

        old: object = None

        @step("x.c:get")
        def get(self, s):
            self.old = s.pmd

        @step("x.c:free")
        def free(self, s):
            pte_free(s, self.old)

        @step("x.c:alloc")
        def alloc(self, s):
            s.pmd = pte_alloc_one(s)

        @step("x.c:write_new")
        def write_new(self, s):
            set_pte_at(s, s.pmd, 0, present(7))  # through the fresh pointer: fine

        @step("x.c:read_old")
        def read_old(self, s):
            ptep_get(s, self.old, 0)

    r = check_model(make_model(pool_init(), lambda: [Reuser("t")]), [never("use-after-free")])
    assert r.verdict == "violated"
    assert [t.step for t in r.trace] == ["get", "free", "alloc", "write_new", "read_old"]
    assert all(not t.events for t in r.trace[:-1])
    # lowest free page first: pt0 again, with generation 1
    assert r.trace[2].changes["pmd"] == ("pt0", "pt0#1")
    assert r.trace[2].changes["pt0.gen"] == ("0", "1")
    assert r.trace[3].changes["pt0.e0"] == ("none", "present(d7)")
    assert r.trace[-1].events == [("use-after-free", "t reads pt0.e0, but pt0 was freed and reused "
                                                     "since t got its pointer")]


def test_freed_reused_and_free_again():
    class Reuser(Thread):
        old: object = None

        @step("x.c:get")
        def get(self, s):
            self.old = s.pmd

        @step("x.c:free")
        def free(self, s):
            pte_free(s, self.old)
            pte_free(s, pte_alloc_one(s))

        @step("x.c:read_old")
        def read_old(self, s):
            set_pte_at(s, self.old, 0, None)

    r = check_model(make_model(pool_init(), lambda: [Reuser("t")]), [never("use-after-free")])
    assert r.violation.message == ("t writes pt0.e0, but pt0 was freed and reused and is free again "
                                   "since t got its pointer")


def test_double_free_reported():
    class DoubleFree(Thread):
        @step("x.c:free1")
        def free1(self, s):
            pte_free(s, s.pmd)

        @step("x.c:free2")
        def free2(self, s):
            pte_free(s, s.pmd)

    r = check_model(make_model(pool_init(), lambda: [DoubleFree("t")]), [never("double-free")])
    assert [t.step for t in r.trace] == ["free1", "free2"]
    assert r.violation.message == "t frees pt0, which is already free"


def test_pte_offset_map_of_none_pmd_is_use_after_free_and_oops():
    class Mapper(Thread):
        table: object = None

        @step("x.c:clear")
        def clear(self, s):
            s.pmd = None

        @step("include/linux/pgtable.h:pte_offset_map")
        def map(self, s):
            self.table = pte_offset_map(s, s.pmd)

        @step("x.c:after")
        def after(self, s):
            s.reached = True

    def init(mem):
        pool_init()(mem)
        mem.reached = False
    r = check_model(make_model(init, lambda: [Mapper("t")]), [never("use-after-free")])
    assert r.verdict == "violated"
    last = r.trace[-1]
    assert (last.thread, last.step) == ("t", "map")
    assert last.events == [("use-after-free", "t maps pmd value none, which is no longer a page table")]
    assert last.changes == {"t.pc": ("map", "oops")}
    # the oopsed thread is dead: it runs nothing after and is not counted as a deadlock
    states = reachable(make_model(init, lambda: [Mapper("t")]))
    assert not any(st["reached"] for st in states)
    r = check_model(make_model(init, lambda: [Mapper("t")]), [deadlock_free()])
    assert r.verdict == "holds"


def test_pte_alloc_one_allocates_lowest_free_and_runs_out():
    class Alloc(Thread):
        @step("x.c:alloc")
        def alloc(self, s):
            s.got = s.got + (pte_alloc_one(s),)

        @step("x.c:alloc2")
        def alloc2(self, s):
            s.got = s.got + (pte_alloc_one(s),)

    def init(mem):
        pool_init(pages=2)(mem)
        mem.got = ()
    with pytest.raises(ModelError, match="all 2 PTE pages are in use"):
        check_model(make_model(init, lambda: [Alloc("t")]), [])

    def init3(mem):
        pool_init(pages=3)(mem)
        mem.got = ()
    states = reachable(make_model(init3, lambda: [Alloc("t")]))
    assert states[-1]["got"] == (pt(1, 0), pt(2, 0))
    # a fresh page is zeroed: entries none, extra fields at their defaults
    assert states[-1]["pt1.e0"] is None and states[-1]["pt1.count"] == 0


def test_alloc_resets_fields_of_a_reused_page():
    class Cycle(Thread):
        @step("x.c:dirty")
        def dirty(self, s):
            atomic_add(s, s.pmd.field("count"), 5)
            pte_free(s, s.pmd)
            s.pmd = pte_alloc_one(s)

    states = reachable(make_model(pool_init(), lambda: [Cycle("t")]))
    end = states[-1]
    assert end["pmd"] == pt(0, 1)
    assert end["pt0.count"] == 0 and end["pt0.e0"] is None and end["pt0.state"] is True


def test_pt_pointer_helpers():
    assert str(pt(0, 0)) == "pt0" and str(pt(2, 3)) == "pt2#3"
    assert isinstance(pt(1, 0), PT) and pmd_table(pt(1, 0))
    assert not pmd_table(None) and not pmd_table(huge_pmd(1))
    # the kernel compares pfns: a reused page looks the same
    assert pmd_same(pt(0, 0), pt(0, 1))
    assert not pmd_same(pt(0, 0), pt(1, 0))
    assert not pmd_same(pt(0, 0), None)
    assert str(present(0)) == "zero-page" and str(present(3)) == "present(d3)"


@pytest.mark.parametrize("split, expected", [(True, "pt0.ptl"), (False, "page_table_lock")])
def test_pte_lockptr_follows_split_ptlocks(split, expected):
    class Locker(Thread):
        @step("x.c:lock")
        def lock(self, s):
            spin_lock(s, pte_lockptr(s, s.pmd))

    r = check_model(make_model(pool_init(), lambda: [Locker("t")], split_ptlocks=split),
                    [at_end(lambda s: False)])
    assert r.trace[0].changes == {expected: ("unlocked", "held by t"), "t.pc": ("lock", "done")}


def test_taking_ptl_of_freed_page_is_use_after_free():
    class Late(Thread):
        old: object = None

        @step("x.c:get")
        def get(self, s):
            self.old = s.pmd

        @step("x.c:free")
        def free(self, s):
            pte_free(s, self.old)

        @step("x.c:lock")
        def lock(self, s):
            spin_lock(s, self.old.ptl)

    r = check_model(make_model(pool_init(), lambda: [Late("t")]), [never("use-after-free")])
    assert r.trace[-1].step == "lock"
    assert r.violation.message == "t takes pt0.ptl, but pt0 is free"


# --------------------------------------------------------------------------------------------
# Atomics
# --------------------------------------------------------------------------------------------

def test_atomics():
    class Ops(Thread):
        @step("x.c:ops")
        def ops(self, s):
            assert atomic_add(s, "c", 2) == 2
            assert atomic_read(s, "c") == 2
            assert not atomic_sub_and_test(s, "c", 1)
            assert atomic_sub_and_test(s, "c", 1)
            assert not atomic_inc_not_zero(s, "c")
            assert atomic_read(s, "c") == 0
            s.c = 4
            assert atomic_inc_not_zero(s, "c")
            assert atomic_read(s, "c") == 5

    def init(mem):
        mem.c = 0
    states = reachable(make_model(init, lambda: [Ops("t")]))
    assert states[-1]["t.pc"] == "done" and states[-1]["c"] == 5


@pytest.mark.parametrize("flush", [False, True])
def test_freeing_an_unlinked_table_needs_a_tlb_flush_first(flush):
    from ptmc.kernel.pgtable import pmd_clear
    from ptmc.kernel.tlb import flush_tlb_mm_range

    class Unlinker(Thread):
        old: object = None

        @step("x.c:unlink")
        def unlink(self, s):
            set_pte_at(s, s.pmd, 0, None)  # empty the table first: nothing mapped is lost
            self.old = pmd_clear(s)

        @step("x.c:flush")
        def flush(self, s):
            if flush:
                flush_tlb_mm_range(s)

        @step("x.c:free")
        def free(self, s):
            pte_free(s, self.old)

    model = make_model(pool_init(), lambda: [Unlinker("t")])
    r = check_model(model, [never("use-after-free"), never("unlink-mapped-table")])
    if flush:
        assert r.verdict == "holds"
    else:
        assert r.verdict == "violated"
        assert r.trace[-1].step == "free"
        assert r.violation.message.startswith("t frees pt0 while a CPU's paging-structure cache may still walk it")


def test_lock_holder_names_the_thread_holding_the_lock():
    class Observer(Thread):
        seen: object = "unset"

        @step("x.c:look")
        def look(self, s):
            self.seen = lock_holder(s, "L")

        @step("x.c:after")
        def after(self, s):
            pass

    class Holder(Thread):
        @step("x.c:take")
        def take(self, s):
            spin_lock(s, "L")

    def init(mem):
        spinlock_init(mem, "L")

    states = reachable(make_model(init, lambda: [Holder("h"), Observer("o")]))
    looked = {st["o.seen"] for st in states if st["o.pc"] == "after"}
    assert looked == {None, 0}  # before h took the lock: nobody; after: h (thread id 0)
