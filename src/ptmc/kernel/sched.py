"""Sleeping (kernel/sched/core.c: __might_sleep(), __might_resched()) as the lock primitives see it.

A sleeping lock (an rwsem, the folio lock) may block, so it must not be taken in atomic
context: holding a spinlock, with IRQs disabled, or inside an RCU read-side section.
__might_resched() complains even when the lock happens to be free: "sleeping function called
from invalid context" when preemption is disabled (a spinlock; rcu_read_lock() without
CONFIG_PREEMPT_RCU) or IRQs are off, and rcu_sleep_check() (CONFIG_PROVE_RCU) "Illegal context
switch in RCU read-side critical section" inside a preemptible reader (CONFIG_PREEMPT_RCU).
Either way it is a bug: the configuration only decides which check names it.
"""
from .config import config
from .irq import irqs_disabled
from .rcu import in_rcu_reader
from .spinlock import held_locks


def atomic_context(s) -> str | None:
    """Why the running thread may not sleep here, or None."""
    held = held_locks(s)
    if held:
        return f"holding spinlock {held[0]}"
    if irqs_disabled(s):
        return "with IRQs disabled"
    if in_rcu_reader(s):
        if config(s).preempt_rcu:
            return "inside rcu_read_lock() (illegal context switch in an RCU read-side critical section)"
        return "inside rcu_read_lock() (preemption disabled: CONFIG_PREEMPT_RCU is off)"
    return None


def might_sleep(s, what: str) -> None:
    """Report taking a sleeping lock in atomic context (CONFIG_DEBUG_ATOMIC_SLEEP, lockdep)."""
    why = atomic_context(s)
    if why:
        s.report("sleep-in-atomic", f"{s.actor} {what} {why}")
