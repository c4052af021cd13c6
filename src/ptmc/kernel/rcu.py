"""RCU (include/linux/rcupdate.h, kernel/rcu/tree.c) as the page-table code relies on it.

Readers: ``rcu_read_lock``/``rcu_read_unlock`` (``pte_offset_map``/``pte_unmap``), and since the
flavour consolidation also IRQ-off regions (GUP-fast). A callback queued with ``call_rcu`` waits
for exactly the readers that were inside a read-side section when it was queued: each pending
callback carries that set, and a reader leaving its outermost section drops out of every set.
Readers that start later never delay it. The ``RcuCallbacks`` daemon runs ready callbacks in any
order, as the callbacks of different CPUs may run.
"""
from ..model import Guard, Thread, step
from ..state import HUNG, Blocked, Stop, holds_threads, id_set


def _names(mask: int, layout) -> str:
    return ",".join(layout.thread_name(t) for t in range(len(layout.threads)) if mask >> t & 1)


def _show_readers(value, layout) -> str:
    return ",".join(layout.thread_name(t) for t in value) or "none"


def _show_head(value, layout) -> str:
    if value is None:
        return "idle"
    fn, arg, mask = value
    waits = _names(mask, layout)
    return f"{fn.__name__}({arg}) queued" + (f", waits for {waits}" if waits else ", ready")


def _show_gp(value, layout) -> str:
    return "; ".join(f"{layout.thread_name(t)} waits for {_names(m, layout) or 'nobody'}"
                     for t, m in value) or "none"


def rcu_init(mem) -> None:
    """Declare RCU's state: who is inside a read-side section, pending synchronize_rcu()s."""
    mem.layout.cell("rcu_readers", (), shown=_show_readers, quiet=True, holds=holds_threads)  # one per nesting level
    mem.layout.cell("rcu_gp", (), shown=_show_gp, quiet=True,  # (waiter, readers it still waits for)
                    holds=lambda v, names: tuple(sorted((names.thread(t), names.mask(m)) for t, m in v)))


def rcu_head_cell(mem, name: str, owner=None) -> int:
    """Declare an rcu_head (e.g. ptdesc->pt_rcu_head): idle, or a queued callback; ``owner``:
    the thread whose object it is (a gather's batch page)."""
    return mem.layout.cell(name, None, tag="rcu_head", shown=_show_head, quiet=True, owner=owner,
                           holds=lambda v, names: v and (v[0], v[1], names.mask(v[2])))


def _mask(readers: tuple) -> int:
    mask = 0
    for t in readers:
        mask |= 1 << t
    return mask


def rcu_read_lock(s) -> None:
    s.rcu_readers = id_set(s.rcu_readers + (s.tid,))


def rcu_read_unlock(s) -> None:
    readers = list(s.rcu_readers)
    readers.remove(s.tid)
    s.rcu_readers = id_set(readers)
    if s.tid in readers:
        return  # still nested
    gone, v = ~(1 << s.tid), s.v
    for slot in s.layout.tags.get("rcu_head", ()):
        head = v[slot]
        if head is not None and head[2] >> s.tid & 1:
            v[slot] = (head[0], head[1], head[2] & gone)
    if s.rcu_gp:
        s.rcu_gp = tuple((t, m & gone) for t, m in s.rcu_gp)


def rcu_read_locked(s) -> bool:
    return s.tid in s.rcu_readers


RCU_READERS = "rcu_readers"


def in_rcu_reader(s) -> bool:
    """The running thread is inside a read-side section (false when the model has no RCU)."""
    return RCU_READERS in s.layout.index and s.tid in s.load(RCU_READERS)


RCU_GRACE_PERIOD = Guard(
    "call_rcu() of a page table's free (the mmu_gather batch, tlb_remove_table_one(), pte_free_defer()): "
    "pte_offset_map() users and IRQs-off GUP-fast may still hold pointers into the unlinked table",
    without="run the callback at once: the table is freed right after it is handed over")
"""The grace period as a guard: a thread class whose code hands page tables to call_rcu() names it
as a class attribute (``rcu_grace_period = RCU_GRACE_PERIOD``); ``--without rcu_grace_period`` makes
every call_rcu() of the model run its callback at once."""


def call_rcu(s, head, fn, arg) -> None:
    """Queue ``fn(s, arg)`` to run after every current reader has left its section (at once
    when the model runs without the guard ``rcu_grace_period``)."""
    if RCU_GRACE_PERIOD.name in s.model.without:
        fn(s, arg)
        return
    if s.load(head) is not None:
        s.report("double-call-rcu", f"{s.actor} queues {fn.__name__}({arg}) on a busy rcu_head")
    s.store(head, (fn, arg, _mask(s.rcu_readers)))


def synchronize_rcu(s) -> None:
    """Start waiting for a grace period; ``synchronize_rcu_wait`` is the step that returns."""
    if rcu_read_locked(s):
        s.report("self-deadlock", f"{s.actor} calls synchronize_rcu() inside rcu_read_lock()")
        raise Stop(HUNG)
    s.rcu_gp = tuple(sorted(s.rcu_gp + ((s.tid, _mask(s.rcu_readers)),)))


def synchronize_rcu_wait(s) -> None:
    """Blocked until every reader present at ``synchronize_rcu`` has left its section."""
    for t, mask in s.rcu_gp:
        if t == s.tid:
            if mask:
                raise Blocked
            s.rcu_gp = tuple(g for g in s.rcu_gp if g[0] != s.tid)
            return
    raise AssertionError(f"{s.actor}: synchronize_rcu_wait() without synchronize_rcu()")


class RcuCallbacks(Thread):
    """The RCU softirq: invokes callbacks whose grace period has ended."""

    daemon = True

    def __init__(self):
        super().__init__("rcu")

    @step("kernel/rcu/tree.c:rcu_do_batch")
    def rcu_do_batch(self, s):
        v = s.v
        ready = [slot for slot in s.layout.tags.get("rcu_head", ())
                 if (head := v[slot]) is not None and head[2] == 0]
        if not ready:
            raise Blocked
        if len(ready) > 1:  # callbacks of different CPUs run in any order
            slot = s.layout.index[s.choose("callback", [s.layout.names[x] for x in ready])]
        else:
            slot = ready[0]
        fn, arg, _ = s.load(slot)
        s.store(slot, None)
        fn(s, arg)
        return "rcu_do_batch"
