"""Rules of spinlocks (kernel/spinlock.py) and mmap_lock (kernel/mmap_lock.py)."""
from __future__ import annotations

from ptmc import DONE, Blocked, Thread, step
from ptmc.kernel.mmap_lock import (mmap_lock_init, mmap_read_lock, mmap_read_unlock, mmap_write_lock,
                                   mmap_write_unlock)
from ptmc.kernel.spinlock import lock_holder, spin_lock, spin_trylock, spin_unlock, spinlock_init
from ptmc.properties import at_end, deadlock_free, invariant, never

from .case import Case, model


class Critical(Thread):
    """lock; enter; leave; unlock. ``inside`` counts the threads between enter and leave."""

    @step("kernel/locking/spinlock.c:_raw_spin_lock")
    def lock(self, s):
        spin_lock(s, "l")

    @step("x.c:enter")
    def enter(self, s):
        s.inside += 1

    @step("x.c:leave")
    def leave(self, s):
        s.inside -= 1

    @step("kernel/locking/spinlock.c:_raw_spin_unlock")
    def unlock(self, s):
        spin_unlock(s, "l")


def lock_cells(mem, **values):
    spinlock_init(mem, "l")
    for k, v in values.items():
        setattr(mem, k, v)


def mutual_exclusion():
    # Hand count (tests/test_primitives.py): lock free, both threads at lock or done: 4; lock
    # held: 2 holders x 3 positions x the other at lock or done: 12. 16 states.
    return (model(lambda m: lock_cells(m, inside=0), lambda: [Critical("a"), Critical("b")]),
            [invariant(lambda s: s.inside <= 1), deadlock_free(), never("bad-unlock"), never("self-deadlock")])


class Twice(Thread):
    @step("x.c:first")
    def first(self, s):
        spin_lock(s, "l")

    @step("x.c:second")
    def second(self, s):
        spin_lock(s, "l")


def self_deadlock():
    return model(lock_cells, lambda: [Twice("t")]), [never("self-deadlock")]


def self_deadlock_hangs():
    # The hung thread is stuck for good: 3 states (first, second, hung), a deadlock of 2 steps.
    return model(lock_cells, lambda: [Twice("t")]), [deadlock_free()]


class Unlocker(Thread):
    @step("x.c:unlock")
    def unlock(self, s):
        spin_unlock(s, "l")


def bad_unlock():
    return model(lock_cells, lambda: [Unlocker("t")]), [never("bad-unlock")]


class TryOwn(Thread):
    """Takes l, then trylocks it again: that must fail (nobody, the caller included, may)."""

    @step("x.c:take")
    def take(self, s):
        spin_lock(s, "l")

    @step("x.c:again")
    def again(self, s):
        s.own = spin_trylock(s, "l")


class TryEnter(Thread):
    """if (spin_trylock(l)) { enter; leave; unlock }"""

    @step("x.c:try")
    def trylock(self, s):
        if not spin_trylock(s, "l"):
            return DONE
        s.tried += 1

    @step("x.c:enter")
    def enter(self, s):
        s.inside += 1

    @step("x.c:leave")
    def leave(self, s):
        s.inside -= 1

    @step("x.c:unlock")
    def unlock(self, s):
        spin_unlock(s, "l")


def trylock_fails_when_held():
    return (model(lambda m: lock_cells(m, own=None), lambda: [TryOwn("t")]),
            [invariant(lambda s: s.own is not True), at_end(lambda s: s.own is False)])


def trylock_excludes():
    return (model(lambda m: lock_cells(m, inside=0, tried=0), lambda: [TryEnter("a"), TryEnter("b")]),
            [invariant(lambda s: s.inside <= 1), never("bad-unlock"), deadlock_free()])


def trylock_takes_free_lock():
    # Alone, the trylock always succeeds: it enters and leaves. 5 states (try, enter, leave,
    # unlock, done).
    return (model(lambda m: lock_cells(m, inside=0, tried=0), lambda: [TryEnter("a")]),
            [at_end(lambda s: s.tried == 1 and s.l is None)])


class Holder(Thread):
    @step("x.c:take")
    def take(self, s):
        spin_lock(s, "l")


class Observer(Thread):
    @step("x.c:look")
    def look(self, s):
        holder = lock_holder(s, "l")
        if holder is None:
            raise Blocked
        s.seen = holder


def lock_holder_names_holder():
    # h (thread 0) takes l, then o sees it: 3 states.
    return (model(lambda m: lock_cells(m, seen=None), lambda: [Holder("h"), Observer("o")]),
            [at_end(lambda s: s.seen == 0), deadlock_free()])


class MmReader(Thread):
    @step("include/linux/mmap_lock.h:mmap_read_lock")
    def lock(self, s):
        mmap_read_lock(s)
        s.readers += 1

    @step("include/linux/mmap_lock.h:mmap_read_unlock")
    def unlock(self, s):
        s.readers -= 1
        mmap_read_unlock(s)


class MmWriter(Thread):
    @step("include/linux/mmap_lock.h:mmap_write_lock")
    def lock(self, s):
        mmap_write_lock(s)
        s.writers += 1

    @step("include/linux/mmap_lock.h:mmap_write_unlock")
    def unlock(self, s):
        s.writers -= 1
        mmap_write_unlock(s)


def mmap_cells(mem):
    mmap_lock_init(mem)
    mem.readers = 0
    mem.writers = 0


def rwsem_excludes_writer():
    return (model(mmap_cells, lambda: [MmReader("r1"), MmReader("r2"), MmWriter("w1"), MmWriter("w2")]),
            [invariant(lambda s: s.writers <= 1 and not (s.writers and s.readers)), deadlock_free(),
             at_end(lambda s: s.mmap_lock is None)])


def rwsem_readers_share():
    # Two readers can be inside together: the invariant that says otherwise fails in 2 steps.
    return (model(mmap_cells, lambda: [MmReader("r1"), MmReader("r2"), MmWriter("w")]),
            [invariant(lambda s: s.readers <= 1)])


CASES = [
    Case("spin_lock excludes", "spinlock.spin_lock blocks while held; spin_unlock releases",
         mutual_exclusion, "holds", None, 0, 16, depth=8),
    Case("spin_lock twice", "spinlock.spin_lock: self-deadlock", self_deadlock, "violated",
         "never self-deadlock", 2, 2, depth=2),
    Case("spin_lock twice hangs", "spinlock.spin_lock: Stop(HUNG)", self_deadlock_hangs, "violated",
         "deadlock free", 2, 3, depth=2),
    Case("spin_unlock of a free lock", "spinlock.spin_unlock: bad-unlock", bad_unlock, "violated",
         "never bad-unlock", 1, 1, depth=1),
    Case("spin_trylock of a lock the caller holds", "spinlock.spin_trylock fails on a held lock",
         trylock_fails_when_held, "holds", None, 0, 3, depth=2),
    Case("spin_trylock excludes", "spinlock.spin_trylock takes the lock", trylock_excludes,
         "holds", None, 0, 23, depth=8),
    Case("spin_trylock of a free lock", "spinlock.spin_trylock succeeds when free", trylock_takes_free_lock,
         "holds", None, 0, 5, depth=4),
    Case("lock_holder", "spinlock.lock_holder names the holder", lock_holder_names_holder,
         "holds", None, 0, 3, depth=2),
    Case("mmap_lock excludes a writer", "mmap_lock: a writer excludes all, readers share",
         rwsem_excludes_writer, "holds", None, 0, 52, depth=8),
    Case("mmap_lock readers share", "mmap_lock.mmap_read_lock: readers share", rwsem_readers_share,
         "violated", "<lambda>", 2, 6, depth=2),
]
