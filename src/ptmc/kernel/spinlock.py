"""Spinlocks (include/linux/spinlock.h). A lock is a cell holding its holder's thread id.

Each operation is one access to the lock word: the slot is resolved (and, for a ptl inside a
PTE page, checked) once.
"""
from ..state import HUNG, Blocked, Stop


def show_holder(value, layout) -> str:
    return "unlocked" if value is None else f"held by {layout.thread_name(value)}"


def spinlock_init(mem, name: str) -> str:
    """Declare a shared spinlock (e.g. mm->page_table_lock); returns its reference."""
    mem.layout.cell(name, None, shown=show_holder)
    return name


def spin_lock(s, lock) -> None:
    """Take ``lock``; the step is blocked while another thread holds it."""
    slot = s.slot(lock, "takes")
    holder = s.v[slot]
    if holder == s.tid:
        s.report("self-deadlock", f"{s.actor} takes {lock}, which it already holds")
        raise Stop(HUNG)
    if holder is not None:
        raise Blocked
    s.v[slot] = s.tid


def spin_trylock(s, lock) -> bool:
    """Take ``lock`` if nobody (the caller included) holds it."""
    slot = s.slot(lock, "trylocks")
    if s.v[slot] is not None:
        return False
    s.v[slot] = s.tid
    return True


def spin_unlock(s, lock) -> None:
    slot = s.slot(lock, "unlocks")
    # A lock inside a freed page-table page holds garbage: that is the use-after-free the
    # slot's resolution just reported, not an unlock of a lock this thread does not hold.
    if s.v[slot] != s.tid and not (hasattr(lock, "stale") and lock.stale(s)):
        s.report("bad-unlock", f"{s.actor} unlocks {lock}, which it does not hold")
    s.v[slot] = None


def lock_holder(s, lock):
    """The thread id holding ``lock``, or None."""
    return s.load(lock)
