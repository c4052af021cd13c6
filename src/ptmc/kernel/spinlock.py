"""Spinlocks (include/linux/spinlock.h). A lock is a cell holding its holder's thread id.

Each operation is one access to the lock word: the slot is resolved (and, for a ptl inside a
PTE page, checked) once. Every lock cell is tagged ``lock``, so what a thread holds can be
asked (``held_locks``, ``holds``) instead of being kept in flags by hand.
"""
from ..model import Procedure, step
from ..state import HUNG, Blocked, Stop, holds_thread

LOCK = "lock"  # the tag of every spinlock cell


def show_holder(value, layout) -> str:
    return "unlocked" if value is None else f"held by {layout.thread_name(value)}"


def spinlock_init(mem, name: str) -> str:
    """Declare a shared spinlock (e.g. mm->page_table_lock); returns its reference."""
    mem.layout.cell(name, None, tag=LOCK, shown=show_holder, holds=holds_thread)
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


def spin_lock_nested(s, lock, subclass: int = 1) -> None:
    """spin_lock_nested(lock, SINGLE_DEPTH_NESTING): the same lock operation; the subclass only
    tells lockdep that a second lock of this class (pml -> ptl, old ptl -> new ptl) is taken
    on purpose. Taking the very same lock twice still deadlocks."""
    spin_lock(s, lock)


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


def holds(s, lock) -> bool:
    """Whether the running thread holds ``lock`` (lockdep's lockdep_is_held())."""
    return s.load(lock) == s.tid


def held_locks(s) -> list[str]:
    """The names of the spinlocks the running thread holds, in declaration order (shared locks
    and the ptls inside PTE pages alike)."""
    v, tid, names = s.v, s.tid, s.layout.names
    return [names[slot] for slot in s.layout.tags.get(LOCK, ()) if v[slot] == tid]


def lock_order(lock) -> tuple:
    """A fixed total order on locks standing for their addresses (double_pt_lock() orders by
    pointer): mm->page_table_lock and the PMD tables' locks, then the PTE pages' ptls by page."""
    if isinstance(lock, str):
        return (0, lock)
    return (1, lock[0][0], str(lock))


class DoublePtLock(Procedure):
    """double_pt_lock(ptl1, ptl2) (mm/userfaultfd.c): take two ptls in address order, so two
    threads locking the same pair never deadlock; one lock when both are the same (one PTE page,
    or ptl == mm->page_table_lock). double_pt_unlock() is one step: unlocking cannot block.

    The caller's step calls ``self.double_pt_lock(ptl1, ptl2, then=...)``; it orders the locks
    (local computation) and calls the procedure."""

    dpl_first: object = None  # the lower-addressed lock
    dpl_second: object = None  # the other one, or None when both are the same lock

    def double_pt_lock(self, ptl1, ptl2, then):
        first, second = sorted((ptl1, ptl2), key=lock_order)
        return self.call(DoublePtLock, then=then, dpl_first=first,
                         dpl_second=None if first == second else second)

    @step("mm/userfaultfd.c:double_pt_lock")
    def double_pt_lock_first(self, s):
        spin_lock(s, self.dpl_first)
        if self.dpl_second is None:
            return self.ret()

    @step("mm/userfaultfd.c:double_pt_lock")
    def double_pt_lock_second(self, s):
        spin_lock_nested(s, self.dpl_second)  # spin_lock_nested(ptl2, SINGLE_DEPTH_NESTING)
        return self.ret()


def double_pt_unlock(s, ptl1, ptl2) -> None:
    """mm/userfaultfd.c:double_pt_unlock: release both (one, when they are the same lock)."""
    spin_unlock(s, ptl1)
    if ptl1 != ptl2:
        spin_unlock(s, ptl2)
