"""userfaultfd: UFFDIO_MOVE (move_pages() -> move_pages_pte()) and UFFDIO_COPY (mfill_atomic() ->
mfill_atomic_pte_copy() -> mfill_atomic_install_pte()), from mm/userfaultfd.c.

Both run under the VMA read locks (uffd_move_lock(), uffd_mfill_lock()) or mmap_lock for read:
no writer of the page tables is excluded, so both meet zap's reclaim, faults and each other.

UFFDIO_MOVE moves one present anonymous entry from the pmd slot ``src`` to the slot ``dst``.
move_pages() looks at the source pmd (a hole is -ENOENT: no UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES)
and allocates the destination table if the pmd is none (pte_alloc(): __pte_alloc() ->
pmd_install()). move_pages_pte() maps both tables with pte_offset_map_rw_nolock(), sanity-checks
both pmds, reads the destination entry (must be none: -EEXIST) and the source entry (must be
present: -ENOENT for a hole) each under its ptl, pins and trylocks the folio under the source
ptl after a pte_same() (the fallback: unmap, folio_lock() sleeping, retry), trylocks the
anon_vma for write (the fallback likewise), then move_present_pte(): double_pt_lock(), the
stability rechecks (is_pte_pages_stable(): pte_same() of both entries and pmd_same() of the
destination pmd, the one that could be unlinked while its entry is none), ptep_clear_flush() of
the source and set_pte_at() of the destination. -EAGAIN goes round move_pages()'s loop again.

UFFDIO_COPY fills entry ``entry`` of the slot ``dst`` of a private uffd-registered VMA with a
new anonymous page: a none pmd gets a table (__pte_alloc()), a pmd that is then not a table is
-EEXIST, pte_offset_map_lock() with its pmd_same() retry (NULL: -EAGAIN to userspace), the
pte_none_mostly() recheck (-EEXIST), folio_add_new_anon_rmap() and set_pte_at(). No page cache
is looked at: a private mapping of a file gets anonymous memory (mfill_atomic_pte()).

Left out (no behaviour of the page tables is lost): the copy_from_user() failure that drops the
lock and retries with the page (-ENOENT), mmu notifiers, the large-folio split (every folio here
is small), folio_maybe_dma_pinned() (nothing here pins), move_swap_pte() and move_zeropage_pte()
(the sources moved here hold present pages: the model refuses other sources), the THP paths
(move_pages_huge_pmd(); the model refuses THP with UFFDIO_MOVE).
"""
from ..kernel.folio import (folio_add_new_anon_rmap, folio_lock, folio_trylock, folio_unlock,
                            page_folio)
from ..kernel.mmap_lock import MmapReader
from ..kernel.pgtable import (PmdInstall, PteOffsetMapLock, address, pmd_none, pmd_same, pmd_table,
                              pmd_trans_huge, pmdp_get_lockless, pte_alloc_one, pte_free,
                              pte_offset_map_nolock, pte_unmap, pte_unmap_unlock, ptep_get,
                              ptep_get_and_clear, set_pte_at)
from ..kernel.pte import present, pte_marker_uffd_wp, pte_none, pte_present
from ..kernel.rwsem import down_write, down_write_trylock, up_write
from ..kernel.spinlock import DoublePtLock, double_pt_unlock, spin_lock, spin_unlock
from ..kernel.tlb import flush_tlb_range
from ..kernel.vma import Vma
from ..model import Guard, step


class PteAlloc(PmdInstall):
    """__pte_alloc() (mm/memory.c): allocate a table, pmd_install() it, free it if another thread
    won. Call it as ``self.call(PteAlloc, then=..., alloc_slot=slot)``; returns nothing."""

    alloc_slot: str = None

    @step("mm/memory.c:__pte_alloc")
    def pte_alloc_one(self, s):
        self.new = pte_alloc_one(s)  # not yet visible to anyone
        return self.call(PmdInstall, then=self.pte_alloc_installed, install_slot=self.alloc_slot)

    def pte_alloc_installed(self, _):
        return "pte_alloc_free" if self.new is not None else self.ret()

    @step("mm/memory.c:__pte_alloc")
    def pte_alloc_free(self, s):
        pte_free(s, self.new)  # never visible, so freed at once
        self.new = None
        return self.ret()


class UffdMove(DoublePtLock, PteAlloc, MmapReader):
    """UFFDIO_MOVE of entry 0 of slot ``src`` (VMA ``src_vma``) to entry 0 of slot ``dst``
    (VMA ``dst_vma``): move_pages() -> move_pages_pte() -> move_present_pte()."""

    writer = False  # (configuration)
    first_step = "move_pages"

    dst_pmdval: object = None  # pte_offset_map_rw_nolock()'s pmd value of the destination
    src_pmdval: object = None  # the source's (dummy_pmdval: never rechecked)
    dst_ptl: object = None
    src_ptl: object = None
    orig_dst: object = None
    orig_src: object = None
    src_folio: int = None  # the folio pinned and locked (its head page), kept across retries
    src_folio_pte: object = None  # the entry it was pinned under
    anon_vma_locked: bool = False  # src_anon_vma, write-locked, kept across retries
    moved: bool = False  # ghost for witnesses: this thread moved the entry

    move_pin_pte_same = Guard(
        "move_pages_pte(): the folio is pinned and locked only if the source entry read under the ptl a "
        "moment ago is still the same under it now (the page may have been zapped and freed meanwhile)",
        without="pin and lock the folio of the entry read before, without the pte_same()",
        against="a zap clearing the source entry")
    move_double_pt_lock = Guard(
        "move_present_pte(): double_pt_lock() holds both ptls, so neither entry nor (with the pmd_same()) "
        "the destination table can change between the rechecks and the move",
        without="recheck and move holding neither ptl")
    move_src_pte_same = Guard(
        "is_pte_pages_stable(): the source entry may have been zapped (or moved) since it was read",
        without="move the pinned folio without rechecking the source entry",
        against="a zap clearing the source entry, another mover")
    move_dst_pte_same = Guard(
        "is_pte_pages_stable(): the destination entry was seen none without the lock; a fault or "
        "UFFDIO_COPY may have filled it since",
        without="overwrite the destination entry without rechecking it",
        against="a fault or a copy mapping the destination entry")
    move_dst_pmd_same = Guard(
        "is_pte_pages_stable(): the destination entry is none, so pte_same() cannot tell that its table "
        "was unlinked (reclaim frees an all-none table): pmd_same() of the destination pmd can",
        without="write the destination entry without rechecking the destination pmd",
        against="zap reclaiming the destination table")
    move_folio_lock = Guard(
        "move_pages_pte(): the folio lock keeps rmap walkers that lock the folio (and other movers) away "
        "while folio->mapping and index change to the destination VMA",
        without="move the folio without locking it", against="an rmap walker or a second mover of the folio")
    move_anon_vma_lock = Guard(
        "move_pages_pte(): folio_referenced() walks the anon_vma without the folio lock; the anon_vma "
        "write lock serialises folio_move_anon_rmap() against it",
        without="move without the anon_vma write lock", against="an rmap walker taking the anon_vma lock")
    move_tlb_flush = Guard(
        "move_present_pte(): ptep_clear_flush() flushes the source translation before the folio is mapped "
        "at the destination: no CPU may keep writing it through the old address",
        without="ptep_get_and_clear() of the source, no flush", against="a CPU caching the source translation")

    def __init__(self, name, src: str, dst: str, src_vma: Vma, dst_vma: Vma):
        super().__init__(name)
        self.src, self.dst, self.src_vma, self.dst_vma = src, dst, src_vma, dst_vma

    def finish(self):
        """move_pages() returns (moved, or an error other than -EAGAIN)."""
        return self.done()

    # move_pages()
    @step("mm/userfaultfd.c:move_pages")
    def move_pages(self, s):
        # pmd_trans_huge_lock(src_pmd) finds no huge pmd (no THP here); then a hole is -ENOENT.
        # (The lockless dst_pmdval read before it only refuses a huge destination: folded.)
        if pmd_none(pmdp_get_lockless(s, self.src)):
            return self.move_out(s, retry=False)

    @step("mm/userfaultfd.c:move_pages")
    def move_pte_alloc(self, s):
        if pmd_none(pmdp_get_lockless(s, self.dst)):  # pte_alloc(mm, dst_pmd)
            return self.call(PteAlloc, then="move_map_dst", alloc_slot=self.dst)

    # move_pages_pte(), retry:
    @step("mm/userfaultfd.c:move_pages_pte")
    def move_map_dst(self, s):
        self.dst_pmdval, self.dst_ptl = pte_offset_map_nolock(s, self.dst)  # pte_offset_map_rw_nolock()
        if self.dst_ptl is None:
            return self.move_out(s, retry=True, mapped=0)  # -EAGAIN

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_map_src(self, s):
        self.src_pmdval, self.src_ptl = pte_offset_map_nolock(s, self.src)
        if self.src_ptl is None:
            return self.move_out(s, retry=True, mapped=1)

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_sanity(self, s):
        # Both pmds read again (two reads folded: each outcome of two separate reads is one of
        # these): a pmd that became none or huge since the map is -EINVAL.
        d, sp = pmdp_get_lockless(s, self.dst), pmdp_get_lockless(s, self.src)
        if pmd_none(d) or pmd_none(sp) or pmd_trans_huge(d) or pmd_trans_huge(sp):
            return self.move_out(s, retry=False, mapped=2)

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_lock_dst(self, s):
        spin_lock(s, self.dst_ptl)

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_read_dst(self, s):
        self.orig_dst = ptep_get(s, self.dst_pmdval, 0)
        spin_unlock(s, self.dst_ptl)
        if not pte_none(self.orig_dst):
            return self.move_out(s, retry=False, mapped=2)  # -EEXIST

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_lock_src(self, s):
        spin_lock(s, self.src_ptl)

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_read_src(self, s):
        self.orig_src = ptep_get(s, self.src_pmdval, 0)
        spin_unlock(s, self.src_ptl)
        if pte_none(self.orig_src):
            return self.move_out(s, retry=False, mapped=2)  # -ENOENT
        if self.src_folio is not None and self.orig_src != self.src_folio_pte:
            return self.move_out(s, retry=True, mapped=2)  # changed since the folio was locked
        if not pte_present(self.orig_src):
            raise AssertionError("UffdMove: a non-present source (move_swap_pte()) is not modelled")
        if self.src_folio is not None:
            return self.after_folio_locked()

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_pin_lock(self, s):
        spin_lock(s, self.src_ptl)  # pin the page while holding the lock

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_pin(self, s):
        if self.move_pin_pte_same and ptep_get(s, self.src_pmdval, 0) != self.orig_src:
            spin_unlock(s, self.src_ptl)
            return self.move_out(s, retry=True, mapped=2)
        # vm_normal_folio(); PageAnonExclusive() holds for an anonymous page mapped once;
        # folio_get() (refcount not kept here).
        folio = page_folio(s, self.orig_src[0])
        locked = folio_trylock(s, folio) if self.move_folio_lock else True
        self.src_folio, self.src_folio_pte = folio.head, self.orig_src
        spin_unlock(s, self.src_ptl)
        if not locked:
            pte_unmap(s)
            pte_unmap(s)
            return "move_folio_sleep"
        return self.after_folio_locked()

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_folio_sleep(self, s):
        folio_lock(s, page_folio(s, self.src_folio))  # now we can block and wait
        return "move_map_dst"  # goto retry

    def after_folio_locked(self):
        if not self.anon_vma_locked and self.move_anon_vma_lock:
            return "move_anon_vma"
        return self.double_pt_lock(self.dst_ptl, self.src_ptl, then="move_stable") \
            if self.move_double_pt_lock else "move_stable"

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_anon_vma(self, s):
        # folio_get_anon_vma(): the folio is mapped in the source VMA, so its anon_vma is that one.
        if down_write_trylock(s, self.src_vma.anon_vma_lock):
            self.anon_vma_locked = True
            return self.double_pt_lock(self.dst_ptl, self.src_ptl, then="move_stable") \
                if self.move_double_pt_lock else "move_stable"
        pte_unmap(s)
        pte_unmap(s)

    @step("mm/userfaultfd.c:move_pages_pte")
    def move_anon_vma_sleep(self, s):
        down_write(s, self.src_vma.anon_vma_lock)  # anon_vma_lock_write(): block and wait
        self.anon_vma_locked = True
        return "move_map_dst"

    # move_present_pte()
    @step("mm/userfaultfd.c:is_pte_pages_stable")
    def move_stable(self, s):
        stable = True
        if self.move_src_pte_same:
            stable = ptep_get(s, self.src_pmdval, 0) == self.orig_src
        if self.move_dst_pte_same:
            stable = stable and ptep_get(s, self.dst_pmdval, 0) == self.orig_dst
        if self.move_dst_pmd_same:
            d = pmdp_get_lockless(s, self.dst)
            stable = stable and pmd_same(self.dst_pmdval, d)
        if not stable:
            if self.move_double_pt_lock:
                double_pt_unlock(s, self.dst_ptl, self.src_ptl)
            return self.move_out(s, retry=True, mapped=2)

    @step("mm/userfaultfd.c:move_present_pte")
    def move_clear_flush(self, s):
        ptep_get_and_clear(s, self.src_pmdval, 0)  # ptep_clear_flush()
        if self.move_tlb_flush:
            start = address(s, 0, self.src)
            flush_tlb_range(s, start, start + 1)

    @step("mm/userfaultfd.c:move_present_pte")
    def move_set_dst(self, s):
        # folio_move_anon_rmap() and the new index: the folio now belongs to the destination VMA;
        # the entry is made dirty and writable, as mremap() does. The mapcount stays one.
        set_pte_at(s, self.dst_pmdval, 0, present(self.src_folio, True))
        self.moved = True
        if not self.move_double_pt_lock:
            return self.move_out(s, retry=False, mapped=2)

    @step("mm/userfaultfd.c:double_pt_unlock")
    def move_unlock(self, s):
        double_pt_unlock(s, self.dst_ptl, self.src_ptl)
        return self.move_out(s, retry=False, mapped=2)

    def move_out(self, s, *, retry: bool, mapped: int = 0):
        """move_pages_pte()'s out: (inside the caller's step: unlocks cannot block) the anon_vma
        and the folio are unlocked, both tables unmapped; -EAGAIN goes round move_pages() again."""
        for _ in range(mapped):
            pte_unmap(s)
        if self.anon_vma_locked:
            up_write(s, self.src_vma.anon_vma_lock)
            self.anon_vma_locked = False
        if self.src_folio is not None:
            if self.move_folio_lock:
                folio_unlock(s, page_folio(s, self.src_folio))
            self.src_folio = self.src_folio_pte = None
        self.orig_src = self.orig_dst = None
        return "move_pages" if retry else self.finish()


class UffdCopy(PteAlloc, PteOffsetMapLock, MmapReader):
    """UFFDIO_COPY of a new anonymous page ``page`` into entry ``entry`` of slot ``dst`` (a private
    uffd-registered VMA): mfill_atomic() -> mfill_atomic_pte_copy() -> mfill_atomic_install_pte()."""

    writer = False  # (configuration)
    first_step = "mfill_atomic"

    copied: bool = False  # ghost for witnesses

    mfill_pte_none = Guard(
        "mfill_atomic_install_pte(): under the ptl the entry must still be none (or a uffd-wp marker): "
        "a fault or another copy may have mapped it since userspace saw it missing",
        without="install the page over whatever the entry holds", against="a fault or a second copy")

    def __init__(self, name, dst: str, vma: Vma, *, page: int, entry: int = 0):
        super().__init__(name)
        self.dst, self.vma, self.page, self.entry = dst, vma, page, entry

    @step("mm/userfaultfd.c:mfill_atomic")
    def mfill_atomic(self, s):
        # A lockless read of the destination pmd; a none pmd gets a table (__pte_alloc()).
        if pmd_none(pmdp_get_lockless(s, self.dst)):
            return self.call(PteAlloc, then="mfill_pmd_check", alloc_slot=self.dst)

    @step("mm/userfaultfd.c:mfill_atomic")
    def mfill_pmd_check(self, s):
        # Read again: not present, or huge (a THP came and went since __pte_alloc()) is -EEXIST.
        if not pmd_table(pmdp_get_lockless(s, self.dst)):
            return self.done()
        # mfill_atomic_pte_copy(): vma_alloc_folio(), copy_from_user() (succeeds: see the module
        # docstring), __folio_mark_uptodate(); then mfill_atomic_install_pte().
        return self.pte_offset_map_lock(self.dst, then=self.mfill_mapped)

    def mfill_mapped(self, table):
        return self.done() if table is None else "mfill_install"  # NULL: -EAGAIN

    @step("mm/userfaultfd.c:mfill_atomic_install_pte")
    def mfill_install(self, s):
        pte = ptep_get(s, self.pmdval, self.entry)
        if not self.mfill_pte_none or pte_none(pte) or pte_marker_uffd_wp(pte):  # pte_none_mostly()
            folio_add_new_anon_rmap(s, page_folio(s, self.page))
            set_pte_at(s, self.pmdval, self.entry, present(self.page, True))
            self.copied = True
        pte_unmap_unlock(s, self.ptl)
        return self.done()
