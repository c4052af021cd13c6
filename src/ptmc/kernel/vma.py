"""VMAs (include/linux/mm_types.h, mm.h, userfaultfd_k.h, mmap_lock.h): what the code branches on.

A VMA's attributes are fixed for a run (a model declares them): anonymous or file-backed (shmem
or another file), shared or private, userfaultfd registration (missing, wp), VM_LOCKED, and which
pmd slots it covers. What changes at run time is state: ``vma->anon_vma`` (set by the first
anonymous fault, vmf_anon_prepare()), and the per-VMA lock.

The per-VMA lock (CONFIG_PER_VMA_LOCK): lock_vma_under_rcu() -> vma_start_read() is a trylock
that fails while the VMA is write-locked (the caller falls back to mmap_lock); vma_start_write()
needs mmap_lock for write and waits for the readers to leave; the write lock lasts until the
writer releases or downgrades mmap_lock (vma_end_write_all()).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError
from ..state import Blocked, id_set
from .pte import pte_uffd_wp
from .rwsem import (down_read, down_write, renamed_rwsem, rwsem_held, rwsem_init, show_rwsem, up_read,
                    up_write)

VMA_LOCK = "vma_lock"  # the tag of every per-VMA lock cell


@dataclass(frozen=True)
class Vma:
    name: str = "vma"
    anon: bool = True  # vma_is_anonymous(): no vm_ops
    shmem: bool = False  # vma_is_shmem()
    shared: bool = False  # VM_SHARED
    anon_shmem: bool = False  # shmem of MAP_SHARED|MAP_ANONYMOUS (shmem_zero_setup()), no user file
    uffd_missing: bool = False  # VM_UFFD_MISSING
    uffd_wp: bool = False  # VM_UFFD_WP
    locked: bool = False  # VM_LOCKED (mlock)
    slots: tuple = ()  # the pmd slots it covers (all of each: PMD_SIZE ranges)

    def __str__(self):
        return self.name

    @property
    def lock(self) -> str:
        return f"{self.name}.lock"

    @property
    def anon_vma(self) -> str:
        return f"{self.name}.anon_vma"

    @property
    def anon_vma_lock(self) -> str:
        """The anon_vma's root rwsem (anon_vma_lock_read/write())."""
        return f"{self.name}.anon_vma.rwsem"

    @property
    def i_mmap_rwsem(self) -> str:
        """The file's mapping->i_mmap_rwsem (i_mmap_lock_read/write())."""
        return f"{self.name}.i_mmap_rwsem"


def declare_vma(mem, name: str = "vma", *, anon_vma: bool = False, **attrs) -> Vma:
    """Declare a VMA covering ``slots`` (default: every pmd slot declared so far)."""
    layout = mem.layout
    tables = layout.objects.get("pgtables")
    if "slots" not in attrs:
        attrs["slots"] = tuple(tables.slots) if tables else ()
    vma = Vma(name, **attrs)
    if vma.anon and (vma.shmem or vma.shared):
        raise ModelError(f"VMA {name}: an anonymous VMA is private and has no file "
                         "(MAP_SHARED|MAP_ANONYMOUS is shmem: anon=False, shmem=True, anon_shmem=True)")
    if vma.anon_shmem and not (vma.shmem and vma.shared):
        raise ModelError(f"VMA {name}: anonymous shmem is a shared shmem mapping")
    layout.cell(vma.lock, None, tag=VMA_LOCK, shown=show_rwsem, holds=renamed_rwsem)
    layout.cell(vma.anon_vma, anon_vma)
    if vma.anon or not vma.shared:  # private mappings may get anonymous (CoW) pages
        rwsem_init(mem, vma.anon_vma_lock)
    if not vma.anon:
        rwsem_init(mem, vma.i_mmap_rwsem)
    layout.objects.setdefault("vmas", {})[name] = vma
    return vma


def vma_of(s, slot: str) -> Vma:
    for vma in s.layout.objects.get("vmas", {}).values():
        if slot in vma.slots:
            return vma
    raise ModelError(f"no VMA covers pmd slot {slot!r}: declare_vma(mem, ..., slots=...)")


# --- attributes

def vma_is_anonymous(vma: Vma) -> bool:
    return vma.anon


def vma_is_shmem(vma: Vma) -> bool:
    return vma.shmem


def vma_is_anon_shmem(vma: Vma) -> bool:
    """MAP_SHARED|MAP_ANONYMOUS: shmem set up by shmem_zero_setup(), no file the user named."""
    return vma.anon_shmem


def userfaultfd_missing(vma: Vma) -> bool:
    return vma.uffd_missing


def userfaultfd_wp(vma: Vma) -> bool:
    return vma.uffd_wp


def userfaultfd_armed(vma: Vma) -> bool:
    """Registered with userfaultfd in any mode (VM_UFFD_MISSING | VM_UFFD_WP | VM_UFFD_MINOR)."""
    return vma.uffd_missing or vma.uffd_wp


def userfaultfd_pte_wp(vma: Vma, pte) -> bool:
    """The pte is uffd-wp protected in a uffd-wp registered VMA."""
    return vma.uffd_wp and pte_uffd_wp(pte)


# --- detaching (munmap, mremap's unmap of the old range)

def vma_detach_init(mem, vma: Vma) -> None:
    """Declare that ``vma`` may be detached from the mm at run time (``<vma>.detached``)."""
    mem.layout.cell(f"{vma.name}.detached", False)


def vma_mark_detached(s, vma: Vma) -> None:
    """vms_gather_munmap_vmas() / vma_mark_detached(): the VMA leaves the maple tree (under the
    mmap write lock and its VMA write lock): a later find_vma()/lock_vma_under_rcu() misses it."""
    s.store(f"{vma.name}.detached", True)


def vma_lookup(s, vma: Vma) -> bool:
    """find_vma()/vma_lookup() under mmap_lock: whether the VMA still covers its range."""
    cell = f"{vma.name}.detached"
    return cell not in s.layout.index or not s.load(cell)


# --- vma->anon_vma

def vma_has_anon_vma(s, vma: Vma) -> bool:
    return s.load(vma.anon_vma)


def anon_vma_prepare(s, vma: Vma) -> None:
    """__anon_vma_prepare() (under mmap_lock read and the page_table_lock in the kernel): the
    first anonymous page of the VMA gives it an anon_vma; rmap walkers and khugepaged look at it."""
    s.store(vma.anon_vma, True)


# --- the per-VMA lock

def vma_start_read(s, vma: Vma) -> bool:
    """The reader side, a trylock: false while the VMA is write-locked (fall back to mmap_lock)."""
    value = s.load(vma.lock)
    if value is not None and value[0] == "write":
        return False
    s.store(vma.lock, ("read", id_set((value[1] if value else ()) + (s.tid,))))
    return True


def vma_end_read(s, vma: Vma) -> None:
    value = s.load(vma.lock)
    if value is None or value[0] != "read" or s.tid not in value[1]:
        s.report("bad-unlock", f"{s.actor} vma_end_read()s {vma}, which it has not read-locked")
        return
    readers = id_set(t for t in value[1] if t != s.tid)
    s.store(vma.lock, ("read", readers) if readers else None)


def vma_start_write(s, vma: Vma) -> None:
    """Write-lock the VMA: needs mmap_lock for write; waits while readers are inside."""
    if rwsem_held(s, "mmap_lock") != "write":
        raise ModelError(f"{s.actor}: vma_start_write({vma}) without mmap_lock held for write "
                         "(vma_assert_write_locked() would fire)")
    value = s.load(vma.lock)
    if value is not None and value[0] == "write":
        return  # already write-locked by us (mmap_lock excludes every other writer)
    if value is not None:
        raise Blocked  # rcuwait_wait_event(): wait for the readers to drop it
    s.store(vma.lock, ("write", s.tid))


def vma_is_write_locked(s, vma: Vma) -> bool:
    value = s.load(vma.lock)
    return value is not None and value[0] == "write"


def vma_end_write_all(s) -> None:
    """mmap_write_unlock()/mmap_write_downgrade(): every VMA the writer write-locked is unlocked."""
    v = s.v
    for slot in s.layout.tags.get(VMA_LOCK, ()):
        value = v[slot]
        if value is not None and value[0] == "write" and value[1] == s.tid:
            v[slot] = None


# --- rmap locks

def i_mmap_lock_read(s, vma: Vma) -> None:
    down_read(s, vma.i_mmap_rwsem)


def i_mmap_unlock_read(s, vma: Vma) -> None:
    up_read(s, vma.i_mmap_rwsem)


def i_mmap_lock_write(s, vma: Vma) -> None:
    down_write(s, vma.i_mmap_rwsem)


def i_mmap_unlock_write(s, vma: Vma) -> None:
    up_write(s, vma.i_mmap_rwsem)


def anon_vma_lock_read(s, vma: Vma) -> None:
    down_read(s, vma.anon_vma_lock)


def anon_vma_unlock_read(s, vma: Vma) -> None:
    up_read(s, vma.anon_vma_lock)


def anon_vma_lock_write(s, vma: Vma) -> None:
    down_write(s, vma.anon_vma_lock)


def anon_vma_unlock_write(s, vma: Vma) -> None:
    up_write(s, vma.anon_vma_lock)
