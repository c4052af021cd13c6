"""Rules of RCU (kernel/rcu.py) and of IRQ disabling and IPIs (kernel/irq.py)."""
from __future__ import annotations

from ptmc import DONE, Blocked, Thread, step
from ptmc.kernel.irq import irq_init, local_irq_restore, local_irq_save, smp_call_function_wait
from ptmc.kernel.rcu import (RcuCallbacks, call_rcu, rcu_head_cell, rcu_init, rcu_read_lock,
                             rcu_read_unlock, synchronize_rcu, synchronize_rcu_wait)
from ptmc.properties import at_end, deadlock_free, invariant, never

from .case import Case, model


def reclaim(s, name):
    """The RCU callback: frees the object ``name``."""
    s.store(f"{name}_freed", True)


def rcu_cells(*objects):
    def init(mem):
        rcu_init(mem)
        irq_init(mem.layout)
        for name in objects:
            rcu_head_cell(mem, f"{name}.rcu_head")
            setattr(mem, f"{name}_freed", False)
        mem.inside = False  # the reader is inside its (outermost) read-side section
        mem.old = None  # the reader was inside when the update started (call_rcu/synchronize_rcu)
        mem.queued = False
    return init


class Reader(Thread):
    """rcu_read_lock(); rcu_read_unlock()."""

    @step("include/linux/rcupdate.h:rcu_read_lock")
    def lock(self, s):
        rcu_read_lock(s)
        s.inside = True

    @step("include/linux/rcupdate.h:rcu_read_unlock")
    def unlock(self, s):
        rcu_read_unlock(s)
        s.inside = False


class Nested(Thread):
    """rcu_read_lock() twice: only the outer unlock ends the section."""

    @step("x.c:lock_outer")
    def lock_outer(self, s):
        rcu_read_lock(s)
        s.inside = True

    @step("x.c:lock_inner")
    def lock_inner(self, s):
        rcu_read_lock(s)

    @step("x.c:unlock_inner")
    def unlock_inner(self, s):
        rcu_read_unlock(s)

    @step("x.c:unlock_outer")
    def unlock_outer(self, s):
        rcu_read_unlock(s)
        s.inside = False


class IrqsOff(Thread):
    """local_irq_save(); local_irq_restore(): GUP-fast's section."""

    @step("include/linux/irqflags.h:local_irq_save")
    def save(self, s):
        local_irq_save(s)
        s.inside = True

    @step("include/linux/irqflags.h:local_irq_restore")
    def restore(self, s):
        local_irq_restore(s)
        s.inside = False


class Late(Thread):
    """Enters a read-side section only after the update started, and never leaves it."""

    @step("include/linux/rcupdate.h:rcu_read_lock")
    def lock(self, s):
        if not s.queued:
            raise Blocked
        rcu_read_lock(s)
        return DONE


class CallRcu(Thread):
    """Queues the object's freeing with call_rcu()."""

    @step("kernel/rcu/tree.c:call_rcu")
    def queue(self, s):
        s.old = s.inside
        s.queued = True
        call_rcu(s, "obj.rcu_head", reclaim, "obj")


class Sync(Thread):
    """synchronize_rcu(); free."""

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync(self, s):
        s.old = s.inside
        s.queued = True
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait(self, s):
        synchronize_rcu_wait(s)

    @step("mm/x.c:free")
    def free(self, s):
        s.obj_freed = True


def not_freed_under_old_reader(s):
    """the object is not freed while a reader that was inside when the update began still is"""
    return not (s.obj_freed and s.inside and s.old)


def grace_period(reader, updater):
    return (model(rcu_cells("obj"), lambda: [reader("reader"), updater("updater"), RcuCallbacks()]),
            [invariant(not_freed_under_old_reader), deadlock_free(), at_end(lambda s: s.obj_freed)])


def later_reader(updater):
    # The late reader ends inside its section: if the update waited for it, the object would
    # never be freed (call_rcu) or the updater never return (synchronize_rcu: a deadlock).
    return (model(rcu_cells("obj"), lambda: [Late("late"), updater("updater"), RcuCallbacks()]),
            [deadlock_free(), at_end(lambda s: s.obj_freed)])


class SyncInside(Thread):
    @step("x.c:lock")
    def lock(self, s):
        rcu_read_lock(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync(self, s):
        synchronize_rcu(s)


def sync_inside_reader(check):
    return model(rcu_cells(), lambda: [SyncInside("t")]), [check]


class QueueTwice(Thread):
    @step("x.c:one")
    def one(self, s):
        rcu_read_lock(s)  # keeps the first callback pending

    @step("x.c:two")
    def two(self, s):
        call_rcu(s, "obj.rcu_head", reclaim, "obj")

    @step("x.c:three")
    def three(self, s):
        call_rcu(s, "obj.rcu_head", reclaim, "obj")


def double_call_rcu():
    return model(rcu_cells("obj"), lambda: [QueueTwice("t"), RcuCallbacks()]), [never("double-call-rcu")]


class QueueTwo(Thread):
    """Queues a's and b's freeing, in that order, with nobody inside."""

    @step("x.c:queue_a")
    def queue_a(self, s):
        call_rcu(s, "a.rcu_head", reclaim, "a")

    @step("x.c:queue_b")
    def queue_b(self, s):
        call_rcu(s, "b.rcu_head", reclaim, "b")


def callbacks_any_order():
    # Both ready at once: the callbacks of different CPUs run in any order, so b can be
    # freed before a (3 steps: queue a, queue b, run b).
    return (model(rcu_cells("a", "b"), lambda: [QueueTwo("t"), RcuCallbacks()]),
            [invariant(lambda s: s.a_freed or not s.b_freed)])


def callbacks_all_run():
    return (model(rcu_cells("a", "b"), lambda: [QueueTwo("t"), RcuCallbacks()]),
            [at_end(lambda s: s.a_freed and s.b_freed), deadlock_free()])


class Ipi(Thread):
    """Sends an IPI to all CPUs and waits for it (the semi-RCU fallback), then frees."""

    @step("kernel/smp.c:smp_call_function")
    def ipi(self, s):
        s.old = s.inside
        smp_call_function_wait(s)

    @step("mm/x.c:free")
    def free(self, s):
        s.obj_freed = True


class IpiFromIrqsOff(Thread):
    """An IPI sent with the sender's own IRQs off: only the other CPUs must take it."""

    @step("include/linux/irqflags.h:local_irq_save")
    def save(self, s):
        local_irq_save(s)

    @step("kernel/smp.c:smp_call_function")
    def ipi(self, s):
        smp_call_function_wait(s)

    @step("include/linux/irqflags.h:local_irq_restore")
    def restore(self, s):
        local_irq_restore(s)


def ipi(reader):
    return (model(rcu_cells("obj"), lambda: [reader("reader"), Ipi("updater")]),
            [invariant(not_freed_under_old_reader), deadlock_free()])


class Section(Thread):
    """A read-side section of one kind (``enter``/``leave``) with its own flag ``<name>_in``."""

    enter = staticmethod(rcu_read_lock)
    leave = staticmethod(rcu_read_unlock)

    @step("x.c:enter")
    def lock(self, s):
        self.enter(s)
        s.store(f"{self.name}_in", True)

    @step("x.c:leave")
    def unlock(self, s):
        self.leave(s)
        s.store(f"{self.name}_in", False)


class IrqSection(Section):
    enter = staticmethod(local_irq_save)
    leave = staticmethod(local_irq_restore)


class Waiter(Thread):
    """Records who is inside, then waits (for the IPI, or a grace period) and frees."""

    wait = None

    @step("x.c:start")
    def start(self, s):
        s.old = (s.r1_in, s.r2_in)
        if self.wait is Sync:
            synchronize_rcu(s)
        elif self.wait is CallRcu:
            call_rcu(s, "obj.rcu_head", reclaim, "obj")
            return DONE

    @step("x.c:wait")
    def wait_step(self, s):
        if self.wait is Sync:
            synchronize_rcu_wait(s)
        else:
            smp_call_function_wait(s)
        s.obj_freed = True


def two_sections(section, wait):
    def init(mem):
        rcu_cells("obj")(mem)
        mem.r1_in = mem.r2_in = False

    def threads():
        w = Waiter("updater")
        w.wait = wait
        return [section("r1"), section("r2"), w, RcuCallbacks()]
    return (model(init, threads),
            [invariant(lambda s: not (s.obj_freed and ((s.r1_in and s.old[0]) or (s.r2_in and s.old[1])))),
             deadlock_free()])


class SyncTwice(Thread):
    """synchronize_rcu() twice; the reader may enter between the two."""

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync1(self, s):
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait1(self, s):
        synchronize_rcu_wait(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync2(self, s):
        s.old = s.inside
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait2(self, s):
        synchronize_rcu_wait(s)

    @step("mm/x.c:free")
    def free(self, s):
        s.obj_freed = True


def sync_twice():
    return (model(rcu_cells("obj"), lambda: [Reader("reader"), SyncTwice("updater")]),
            [invariant(not_freed_under_old_reader), deadlock_free()])


class SyncOnly(Thread):
    """Another CPU's synchronize_rcu(), for its own purpose."""

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync(self, s):
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait(self, s):
        synchronize_rcu_wait(s)


def two_syncers():
    # Two updaters wait for grace periods at once: each one's return removes only its own.
    return (model(rcu_cells("obj"), lambda: [Reader("reader"), SyncOnly("other"), Sync("updater")]),
            [invariant(not_freed_under_old_reader), deadlock_free()])


def ipi_own_irqs_off():
    return model(rcu_cells(), lambda: [IpiFromIrqsOff("t")]), [deadlock_free(), at_end(lambda s: s.irqs_off == ())]


# Hand count of the first case. The reader is at lock (L), inside (U) or done (D); the updater
# before (Q) or after queueing; "old" is whether the reader was inside at call_rcu().
#   updater at Q: reader L, U, D                                                  3
#   queued with the reader at L: callback ready or run                           2
#   reader U: queued before it entered (ready or run), or while inside (waits)    3
#   reader D: old false or true, callback ready or run                            4
#                                                                         total  12
CASES = [
    Case("call_rcu waits for a reader inside", "rcu.call_rcu: waits for readers present at queue time",
         lambda: grace_period(Reader, CallRcu), "holds", None, 0, 12, depth=4),
    Case("call_rcu waits for a nested reader", "rcu.rcu_read_unlock: the inner unlock ends nothing",
         lambda: grace_period(Nested, CallRcu), "holds", None, 0, 20, depth=6),
    Case("call_rcu waits for IRQs off", "irq.local_irq_save is an RCU read-side section",
         lambda: grace_period(IrqsOff, CallRcu), "holds", None, 0, 12, depth=4),
    Case("call_rcu not delayed by later readers", "rcu.call_rcu: only readers present at queue time",
         lambda: later_reader(CallRcu), "holds", None, 0, 5, depth=3),
    Case("synchronize_rcu waits for a reader inside", "rcu.synchronize_rcu/_wait: readers present at the call",
         lambda: grace_period(Reader, Sync), "holds", None, 0, 16, depth=5),
    Case("synchronize_rcu waits for a nested reader", "rcu.rcu_read_unlock: the inner unlock ends nothing",
         lambda: grace_period(Nested, Sync), "holds", None, 0, 26, depth=7),
    Case("synchronize_rcu not delayed by later readers", "rcu.synchronize_rcu: only readers present at the call",
         lambda: later_reader(Sync), "holds", None, 0, 7, depth=4),
    Case("synchronize_rcu inside a reader", "rcu.synchronize_rcu: self-deadlock",
         lambda: sync_inside_reader(never("self-deadlock")),
         "violated", "never self-deadlock", 2, 2, depth=2),
    Case("synchronize_rcu inside a reader hangs", "rcu.synchronize_rcu: Stop(HUNG)",
         lambda: sync_inside_reader(deadlock_free()), "violated", "deadlock free", 2, 3, depth=2),
    Case("call_rcu on a busy head", "rcu.call_rcu: double-call-rcu", double_call_rcu, "violated",
         "never double-call-rcu", 3, 3, depth=3),
    Case("callbacks in any order", "rcu.RcuCallbacks: any ready callback first", callbacks_any_order,
         "violated", "<lambda>", 3, 6, depth=3),
    Case("callbacks all run", "rcu.RcuCallbacks: runs until none is ready", callbacks_all_run,
         "holds", None, 0, 7, depth=4),
    Case("IPI waits for IRQs off", "irq.smp_call_function_wait: held off by an IRQs-off CPU",
         lambda: ipi(IrqsOff), "holds", None, 0, 9, depth=4),
    Case("IPI does not wait for an RCU reader", "irq.smp_call_function_wait: not by rcu_read_lock()",
         lambda: ipi(Reader), "violated", "not_freed_under_old_reader", 3, 10, depth=3),
    Case("IPI waits for every IRQs-off CPU", "irq.local_irq_restore re-enables only its own CPU",
         lambda: two_sections(IrqSection, Ipi), "holds", None, 0, 50, depth=6),
    Case("grace period waits for every reader", "rcu.rcu_read_unlock drops only its own reader",
         lambda: two_sections(Section, Sync), "holds", None, 0, 50, depth=6),
    Case("callback waits for every reader", "rcu.call_rcu waits for all readers present",
         lambda: two_sections(Section, CallRcu), "holds", None, 0, 50, depth=6),
    Case("synchronize_rcu twice", "rcu.synchronize_rcu_wait removes its finished grace period",
         sync_twice, "holds", None, 0, 23, depth=7),
    Case("two synchronize_rcu at once", "rcu.synchronize_rcu_wait removes only its own",
         two_syncers, "holds", None, 0, 53, depth=7),
    Case("IPI from an IRQs-off CPU", "irq.smp_call_function_wait: the sender's own IRQs do not count",
         ipi_own_irqs_off, "holds", None, 0, 4, depth=3),
]
