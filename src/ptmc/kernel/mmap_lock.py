"""mmap_lock (include/linux/mmap_lock.h): the mm's rwsem; readers share it, a writer excludes all.

Releasing or downgrading the write lock also ends every per-VMA write lock the writer took
(vma_end_write_all(), see ptmc.kernel.vma): that is how a VMA write lock is dropped.
"""
from .rwsem import (down_read, down_read_trylock, down_write, down_write_trylock, downgrade_write,
                    rwsem_held, rwsem_init, show_rwsem, up_read, up_write)
from .vma import vma_end_write_all

_show = show_rwsem


def mmap_lock_init(mem) -> None:
    rwsem_init(mem, "mmap_lock")


def mmap_read_lock(s) -> None:
    down_read(s, "mmap_lock")


def mmap_read_trylock(s) -> bool:
    return down_read_trylock(s, "mmap_lock")


def mmap_read_unlock(s) -> None:
    up_read(s, "mmap_lock")


def mmap_write_lock(s) -> None:
    down_write(s, "mmap_lock")


def mmap_write_trylock(s) -> bool:
    return down_write_trylock(s, "mmap_lock")


def mmap_write_unlock(s) -> None:
    vma_end_write_all(s)
    up_write(s, "mmap_lock")


def mmap_write_downgrade(s) -> None:
    vma_end_write_all(s)
    downgrade_write(s, "mmap_lock")


def mmap_lock_held(s) -> str | None:
    """"read", "write" or None: how the running thread holds mmap_lock (mmap_assert_locked())."""
    return rwsem_held(s, "mmap_lock")
