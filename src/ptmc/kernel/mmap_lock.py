"""mmap_lock (include/linux/mmap_lock.h): an rwsem; readers share it, a writer excludes all."""
from ..state import Blocked, id_set


def _show(value, layout) -> str:
    if value is None:
        return "unlocked"
    mode, holders = value
    if mode == "write":
        return f"write by {layout.thread_name(holders)}"
    return "read by " + ",".join(layout.thread_name(t) for t in holders)


def mmap_lock_init(mem) -> None:
    mem.layout.cell("mmap_lock", None, shown=_show)


def mmap_read_lock(s) -> None:
    held = s.mmap_lock
    if held is not None and held[0] == "write":
        raise Blocked
    s.mmap_lock = ("read", id_set((held[1] if held else ()) + (s.tid,)))


def mmap_read_unlock(s) -> None:
    readers = id_set(t for t in s.mmap_lock[1] if t != s.tid)
    s.mmap_lock = ("read", readers) if readers else None


def mmap_write_lock(s) -> None:
    if s.mmap_lock is not None:
        raise Blocked
    s.mmap_lock = ("write", s.tid)


def mmap_write_unlock(s) -> None:
    s.mmap_lock = None
