"""Read-write semaphores (include/linux/rwsem.h, kernel/locking/rwsem.c): mmap_lock,
i_mmap_rwsem, the anon_vma's rwsem.

A cell holds None (unlocked), ("read", readers) or ("write", owner). Readers share it, a writer
excludes everyone; down_*() sleeps (the step is blocked) until it can have it, *_trylock()
never does; downgrade_write() turns the writer into a reader without letting a writer in
between. Waiting writers do not hold off new readers here (the kernel's rwsem hands off to a
waiting writer after a while), so a reader taking the semaphore again is reported as the
deadlock it can be, not explored into one. Sleeping primitives check might_sleep().
"""
from ..state import HUNG, Blocked, Stop, id_set
from .sched import might_sleep

RWSEM = "rwsem"  # the tag of every rwsem cell


def show_rwsem(value, layout) -> str:
    if value is None:
        return "unlocked"
    mode, holders = value
    if mode == "write":
        return f"write by {layout.thread_name(holders)}"
    return "read by " + ",".join(layout.thread_name(t) for t in holders)


def renamed_rwsem(value, names):
    """``holds=`` of an rwsem cell: its holders' thread ids renamed."""
    if value is None:
        return None
    mode, holders = value
    return (mode, names.thread(holders) if mode == "write" else names.threads(holders))


def rwsem_init(mem, name: str) -> str:
    mem.layout.cell(name, None, tag=RWSEM, shown=show_rwsem, holds=renamed_rwsem)
    return name


def rwsem_held(s, sem) -> str | None:
    """How the running thread holds ``sem``: "read", "write" or None (lockdep_is_held())."""
    value = s.load(sem)
    if value is None:
        return None
    mode, holders = value
    if mode == "write":
        return "write" if holders == s.tid else None
    return "read" if s.tid in holders else None


def _self_deadlock(s, sem, op: str) -> None:
    held = rwsem_held(s, sem)
    if held:
        s.report("self-deadlock", f"{s.actor} {op} {sem}, which it already holds for {held}")
        raise Stop(HUNG)


def down_read_trylock(s, sem) -> bool:
    value = s.load(sem)
    if value is not None and value[0] == "write":
        return False
    s.store(sem, ("read", id_set((value[1] if value else ()) + (s.tid,))))
    return True


def down_read(s, sem) -> None:
    _self_deadlock(s, sem, "down_read()s")
    value = s.load(sem)
    blocked = value is not None and value[0] == "write"
    might_sleep(s, f"down_read()s {sem}")
    if blocked:
        raise Blocked
    down_read_trylock(s, sem)


def up_read(s, sem) -> None:
    value = s.load(sem)
    if value is None or value[0] != "read" or s.tid not in value[1]:
        s.report("bad-unlock", f"{s.actor} up_read()s {sem}, which it does not hold for read")
        return
    readers = id_set(t for t in value[1] if t != s.tid)
    s.store(sem, ("read", readers) if readers else None)


def down_write_trylock(s, sem) -> bool:
    if s.load(sem) is not None:
        return False
    s.store(sem, ("write", s.tid))
    return True


def down_write(s, sem) -> None:
    _self_deadlock(s, sem, "down_write()s")
    blocked = s.load(sem) is not None
    might_sleep(s, f"down_write()s {sem}")
    if blocked:
        raise Blocked
    s.store(sem, ("write", s.tid))


def up_write(s, sem) -> None:
    if rwsem_held(s, sem) != "write":
        s.report("bad-unlock", f"{s.actor} up_write()s {sem}, which it does not hold for write")
        return
    s.store(sem, None)


def downgrade_write(s, sem) -> None:
    """The writer becomes a reader, atomically: no other writer can get in between."""
    if rwsem_held(s, sem) != "write":
        s.report("bad-unlock", f"{s.actor} downgrades {sem}, which it does not hold for write")
        return
    s.store(sem, ("read", id_set((s.tid,))))
