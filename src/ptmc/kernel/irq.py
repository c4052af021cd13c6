"""Local IRQ disabling and IPIs (kernel/smp.c:smp_call_function).

An IPI sent with wait=1 completes once every other CPU has run the handler. A CPU with IRQs
disabled holds it off; a CPU merely inside rcu_read_lock() does not (IRQs stay enabled there),
which is why an IPI is no substitute for an RCU grace period. Since the RCU flavour
consolidation (v4.20) an IRQs-off region is also an RCU read-side critical section.
"""
from ..state import Blocked, holds_threads, id_set
from .rcu import rcu_read_lock, rcu_read_unlock

IRQS_OFF = "irqs_off"  # the cell: thread ids with IRQs disabled (may be undeclared: nobody)


def irq_init(layout) -> None:
    if IRQS_OFF in layout.index:
        return  # declared by another primitive's set-up already
    layout.cell(IRQS_OFF, (), shown=lambda v, lay: ",".join(lay.thread_name(t) for t in v) or "none",
                quiet=True, holds=holds_threads)


def local_irq_save(s) -> None:
    s.irqs_off = id_set(s.irqs_off + (s.tid,))
    rcu_read_lock(s)


def local_irq_restore(s) -> None:
    s.irqs_off = id_set(t for t in s.irqs_off if t != s.tid)
    rcu_read_unlock(s)


def irqs_disabled(s) -> bool:
    """The running thread has IRQs disabled."""
    return IRQS_OFF in s.layout.index and s.tid in s.load(IRQS_OFF)


def irqs_disabled_elsewhere(s) -> bool:
    """Some other thread has IRQs disabled (and so holds off an IPI)."""
    return IRQS_OFF in s.layout.index and any(t != s.tid for t in s.load(IRQS_OFF))


def smp_call_function_wait(s) -> None:
    """Blocked while another CPU has IRQs disabled; otherwise every CPU has taken the IPI."""
    if irqs_disabled_elsewhere(s):
        raise Blocked
