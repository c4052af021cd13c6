"""mmap_lock (include/linux/mmap_lock.h): the mm's rwsem; readers share it, a writer excludes all.

Releasing or downgrading the write lock also ends every per-VMA write lock the writer took
(vma_end_write_all(), see ptmc.kernel.vma): that is how a VMA write lock is dropped.
"""
from ..model import DONE, Thread, step
from .rwsem import (down_read, down_read_trylock, down_write, down_write_trylock, downgrade_write,
                    rwsem_held, rwsem_init, show_rwsem, up_read, up_write)
from .vma import vma_end_write_all, vma_lookup

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


class MmapReader(Thread):
    """A thread whose kernel path runs under mmap_read_lock() (or a per-VMA read lock, which
    every mmap write locker of these paths also excludes: mremap, munmap and anon collapse
    vma_start_write() the VMA before they change its page tables).

    A read lock excludes only writers, so a model without any thread that takes mmap_lock for
    write leaves it out (``mmap_read_locked = False``: the thread starts at its own first step
    and finishes at DONE). With a writer, the model constructs it with
    ``mmap_read_locked=True``: it starts at ``mmap_read_lock`` and every way it finishes goes
    through ``mmap_read_unlock``; the thread's code says where it finishes with ``self.done()``.
With ``mmap_vma`` set (a model whose writer may detach that VMA: munmap, mremap), the path first
looks its VMA up under the lock and, when it was detached, finds nothing and returns at once.
    """

    mmap_read_locked = False  # configuration, not state
    mmap_vma = None  # configuration: the VMA the path looks up under the lock, when it can be detached

    @property
    def start_pc(self) -> int:
        if self.mmap_read_locked:
            return next(pc for pc, st in enumerate(self.steps) if st.name == "mmap_read_lock")
        return super().start_pc

    def done(self) -> str:
        """Where the thread goes when its kernel path has finished: the unlock, or DONE."""
        return "mmap_read_unlock" if self.mmap_read_locked else DONE

    @step("include/linux/mmap_lock.h:mmap_read_lock")
    def mmap_read_lock(self, s):
        mmap_read_lock(s)
        if self.mmap_vma is not None and not vma_lookup(s, self.mmap_vma):
            return "mmap_read_unlock"  # find_vma() finds none: -EFAULT, SIGSEGV, -ENOMEM
        return self.steps[super().start_pc].name  # the kernel path's own first step

    @step("include/linux/mmap_lock.h:mmap_read_unlock")
    def mmap_read_unlock(self, s):
        mmap_read_unlock(s)
        return DONE
