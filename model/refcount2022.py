"""The 2022 RFC: per-page counts of mapped and zero-page entries, and /proc/sys/vm/free_ptes.

Qi Zheng, "[RFC PATCH 0/7] Try to free empty and zero user PTE page table pages" (2022-08-25).
Patch 4/7 (seed 000) gives each PTE page an ``unsigned long pte_refcount``: bits 0-9 count its
mapped (non-none) entries, bits 10-19 those mapping the shared zero page. It is not atomic:
patch 5/7 updates it in ``track_pte_set()`` / ``track_pte_clear()``, called from x86's
``set_pte_at()`` and ``ptep_get_and_clear()``, i.e. wherever an entry is written, under the ptl.
Patch 7/7 adds ``/proc/sys/vm/free_ptes``: ``kfreeptd_pmd_entry()`` trades mmap read for mmap
write, takes ``pmd_lock`` and, if ``!pte_mapped_count() || pte_zero_count() == PTRS_PER_PTE``,
clears the pmd, flushes the TLB and frees the page. It reads the counts under ``pmd_lock`` only
(not the ptl): the mmap write lock is what keeps every fault and zap, which hold mmap read, out.

Threads: a page fault on the last entry (a read fault maps the zero page, a write fault a new
page, or copies the zero page it finds there), madvise(MADV_DONTNEED) zapping the whole table,
and the free_ptes reclaimer. Initially every entry but the last maps the zero page, as after a
read-only scan of the range.

Variant ``refcount_outside_ptl``: zap_pte_range() accounts the entries it cleared in one batch
after pte_unmap_unlock(), as the 2021 series did with its atomic pte_put_many(). On this
non-atomic counter that is a read-modify-write outside the ptl, racing with a fault's update
under the ptl: the fault's increment is lost, the page reads empty while it maps a page, and
free_ptes frees it with the mapping. (The fault's own update under the ptl stays one step, as
it is atomic against everything else in the RFC as written; so the variant shows the lost
increment, not the mirror-image lost decrement of a zap store landing inside it.)

The actors the mmap write lock does not exclude (the review's objection, protocol.md section 3,
Gen 2 "Review gaps"), both off by default: ``rmap_walkers``, try_to_unmap_one() of the fault's
page through page_vma_mapped_walk() under the anon_vma lock for read and no mmap lock (as in
v6.0: the pmd read, pte_offset_map() reading the pmd again, the ptl, check_pte(); then
ptep_clear_flush() and set_pte_at() of a swap entry, which the RFC's hooks count like any other
write); and ``gup_fast`` (ptmc.actors.gup), which holds only IRQs off, against free_ptes'
immediate __free_page() after its TLB flush: with ``tlb_flush=ipi`` the flush waits for it, with
``broadcast`` nothing does.

Functions of the RFC are cited where it added them (mm/pte_ref.c, include/linux/pte_ref.h);
mm/memory.c and arch/x86 functions are the v6.0-era ones it hooked.
"""
from ptmc import DONE, Model, Param, Thread, Variant, numbered, step
from ptmc.actors import gup
from ptmc.actors.gup import GupFast
from ptmc.kernel.folio import declare_folio
from ptmc.kernel.rcu import rcu_init
from ptmc.kernel.pte import swap_pte
from ptmc.kernel.vma import anon_vma_lock_read, anon_vma_unlock_read, declare_vma
from ptmc.kernel.mmap_lock import (mmap_lock_init, mmap_read_lock, mmap_read_unlock,
                                   mmap_write_lock, mmap_write_unlock)
from ptmc.kernel.pgtable import (ZERO_PAGE, PageTables, mm_dec_nr_ptes, mm_inc_nr_ptes, pmd_clear,
                                 pmd_lockptr, pmd_none, pmd_populate, pmd_table, present,
                                 pte_alloc_one, pte_clear, pte_free, pte_lockptr, pte_none,
                                 pte_offset_map, ptep_get, ptrs_per_pte)
from ptmc.kernel.pgtable import set_pte_at as native_set_pte_at
from ptmc.kernel.spinlock import spin_lock, spin_unlock
from ptmc.kernel.tlb import flush_tlb_mm_range
from ptmc.smt import Counters
from ptmc.smt.bits import lshr, wrap


class PteRef:
    """The pte_refcount bitfield of mm/pte_ref.c (RFC 4/7), on Python ints or z3 bit-vectors.

    The explorer runs it on ints; properties/refcount_arith.py proves it on bit-vectors of the
    real width, so the encoding z3 proves is the one the model runs.
    """

    def __init__(self, mapped_bits: int = 10, zero_bits: int = 10, zero_shift: int = 10,
                 bits_per_long: int = 64):
        self.PTE_MAPPED_BITS, self.PTE_ZERO_BITS = mapped_bits, zero_bits
        self.PTE_MAPPED_SHIFT = 0
        self.PTE_ZERO_SHIFT = zero_shift  # PTE_MAPPED_SHIFT + PTE_MAPPED_BITS in the RFC
        self.PTE_MAPPED_MASK = ((1 << mapped_bits) - 1) << self.PTE_MAPPED_SHIFT
        self.PTE_ZERO_MASK = ((1 << zero_bits) - 1) << self.PTE_ZERO_SHIFT
        self.PTE_MAPPED_OFFSET = 1 << self.PTE_MAPPED_SHIFT
        self.PTE_ZERO_OFFSET = 1 << self.PTE_ZERO_SHIFT
        self.BITS_PER_LONG = bits_per_long

    def pte_mapped_count(self, refcount):
        return lshr(refcount & self.PTE_MAPPED_MASK, self.PTE_MAPPED_SHIFT)

    def pte_zero_count(self, refcount):
        return lshr(refcount & self.PTE_ZERO_MASK, self.PTE_ZERO_SHIFT)

    def pte_refcount_add(self, refcount, val):
        return wrap(refcount + val, self.BITS_PER_LONG)

    def pte_refcount_sub(self, refcount, val):
        return wrap(refcount - val, self.BITS_PER_LONG)


def pte_refcount(table):
    return table.field("pte_refcount")


def is_zero_pfn(pte) -> bool:
    return pte is not None and pte[0] == ZERO_PAGE


# --- the RFC's hooks (RFC 5/7) and the x86 helpers that call them: each runs inside one step,
# under the ptl, so the entry and its count change together.

def track_pte_set(s, table, i, pte) -> None:
    ref, old = s.model.pte_ref, ptep_get(s, table, i)
    count = s.load(pte_refcount(table))
    if pte_none(old) and not pte_none(pte):
        count = ref.pte_refcount_add(count, ref.PTE_MAPPED_OFFSET)
        if is_zero_pfn(pte):
            count = ref.pte_refcount_add(count, ref.PTE_ZERO_OFFSET)
    elif is_zero_pfn(old) and not is_zero_pfn(pte):
        count = ref.pte_refcount_sub(count, ref.PTE_ZERO_OFFSET)
    s.store(pte_refcount(table), count)


def track_pte_clear(s, table, pte) -> None:
    ref = s.model.pte_ref
    if not pte_none(pte):
        count = ref.pte_refcount_sub(s.load(pte_refcount(table)), ref.PTE_MAPPED_OFFSET)
        if is_zero_pfn(pte):
            count = ref.pte_refcount_sub(count, ref.PTE_ZERO_OFFSET)
        s.store(pte_refcount(table), count)


def set_pte_at(s, table, i, pte) -> None:
    """arch/x86/include/asm/pgtable.h:set_pte_at() with the RFC's hook."""
    track_pte_set(s, table, i, pte)
    native_set_pte_at(s, table, i, pte)


def ptep_get_and_clear(s, table, i):
    """arch/x86/include/asm/pgtable.h:ptep_get_and_clear() with the RFC's hook."""
    pte = ptep_get(s, table, i)
    pte_clear(s, table, i)
    track_pte_clear(s, table, pte)
    return pte


# --- threads

class Fault(Thread):
    """A page fault on the last entry: do_anonymous_page(), or wp_page_copy() of the zero page."""

    write: bool = False  # a write fault (maps a new page) or a read fault (maps the zero page)
    new: object = None  # a PTE page allocated but not yet installed
    table: object = None

    def __init__(self, name, page):
        super().__init__(name)
        self.page = page  # the data page a write fault maps

    @step("arch/x86/mm/fault.c:do_user_addr_fault")
    def mmap_read_lock(self, s):
        mmap_read_lock(s)
        self.write = s.choose("access", ("read", "write")) == "write"

    @step("mm/memory.c:__handle_mm_fault")
    def pte_alloc(self, s):
        return "alloc" if pmd_none(s.pmd) else "map"

    @step("mm/memory.c:__pte_alloc", effect={"when": "live == 0", "live": "1"})
    def alloc(self, s):
        self.new = pte_alloc_one(s)  # pgtable_pte_page_ctor() -> pte_ref_init(): both counts 0

    @step("mm/memory.c:pmd_install")
    def install_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        if pmd_none(s.pmd):
            mm_inc_nr_ptes(s)
            pmd_populate(s, self.new)
            self.new = None

    @step("mm/memory.c:pmd_install")
    def install_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        if self.new is None:
            return "map"

    @step("mm/memory.c:pmd_install", effect={"when": "live and mapped == 0 and zero == 0",
                                            "live": "0"})
    def free_unpublished(self, s):
        pte_free(s, self.new)  # another thread installed a table first
        self.new = None
        return "map"

    @step("mm/memory.c:do_anonymous_page")
    def map(self, s):
        # The pmd is stable: only free_ptes clears it, and it needs mmap write.
        self.table = pte_offset_map(s, s.pmd)

    @step("mm/memory.c:do_anonymous_page")
    def lock(self, s):
        spin_lock(s, pte_lockptr(s, self.table))

    @step("mm/memory.c:do_anonymous_page", effect=[
        {"when": "live and entries < PTRS_PER_PTE", "entries": "entries + 1", "mapped": "mapped + 1"},
        {"when": "live and entries < PTRS_PER_PTE", "entries": "entries + 1", "mapped": "mapped + 1",
         "zeroes": "zeroes + 1", "zero": "zero + 1"}])
    def set_pte(self, s):
        i = ptrs_per_pte(s) - 1
        pte = ptep_get(s, self.table, i)
        if pte_none(pte):
            set_pte_at(s, self.table, i, present(self.page if self.write else ZERO_PAGE))
        elif self.write and is_zero_pfn(pte):
            return "wp_page_copy"  # do_wp_page(): copy-on-write of the zero page
        return "unlock"

    @step("mm/memory.c:wp_page_copy", effect={"when": "live and zeroes >= 1",
                                              "zeroes": "zeroes - 1", "zero": "zero - 1"})
    def wp_page_copy(self, s):
        i = ptrs_per_pte(s) - 1
        ptep_get_and_clear(s, self.table, i)  # ptep_clear_flush_notify()
        set_pte_at(s, self.table, i, present(self.page))

    @step("include/linux/mm.h:pte_unmap_unlock")
    def unlock(self, s):
        spin_unlock(s, pte_lockptr(s, self.table))

    @step("arch/x86/mm/fault.c:do_user_addr_fault")
    def mmap_read_unlock(self, s):
        mmap_read_unlock(s)
        return DONE


class Zap(Thread):
    """madvise(MADV_DONTNEED) of the table's whole range: zap_pte_range() clears every entry."""

    table: object = None
    i: int = 0
    nr_mapped: int = 0  # refcount_outside_ptl: entries cleared, not yet accounted
    nr_zero: int = 0
    old: object = None  # refcount_outside_ptl: pte_refcount as read for the batched update

    @step("mm/madvise.c:do_madvise")
    def mmap_read_lock(self, s):
        mmap_read_lock(s)

    @step("mm/memory.c:zap_pmd_range")
    def zap_pmd_range(self, s):
        pmdval = s.pmd
        if not pmd_table(pmdval):
            return "mmap_read_unlock"
        self.table = pte_offset_map(s, pmdval)

    @step("mm/memory.c:zap_pte_range")
    def lock(self, s):
        spin_lock(s, pte_lockptr(s, self.table))
        return "zap_batched" if self.model.refcount_outside_ptl else "zap"

    @step("mm/memory.c:zap_pte_range", effect=[  # ptep_get_and_clear_full() -> track_pte_clear()
        {"when": "live and entries > zeroes", "entries": "entries - 1", "mapped": "mapped - 1"},
        {"when": "live and zeroes >= 1", "entries": "entries - 1", "mapped": "mapped - 1",
         "zeroes": "zeroes - 1", "zero": "zero - 1"}])
    def zap(self, s):
        if not pte_none(ptep_get(s, self.table, self.i)):
            ptep_get_and_clear(s, self.table, self.i)
        self.i += 1
        return "zap" if self.i < ptrs_per_pte(s) else "unlock"

    @step("mm/memory.c:zap_pte_range", effect=[  # cleared, counted for after the unlock
        {"when": "live and entries > zeroes", "entries": "entries - 1", "nr_mapped": "nr_mapped + 1"},
        {"when": "live and zeroes >= 1", "entries": "entries - 1", "zeroes": "zeroes - 1",
         "nr_mapped": "nr_mapped + 1", "nr_zero": "nr_zero + 1"}])
    def zap_batched(self, s):
        pte = ptep_get(s, self.table, self.i)
        if not pte_none(pte):
            pte_clear(s, self.table, self.i)
            self.nr_mapped += 1
            self.nr_zero += is_zero_pfn(pte)
        self.i += 1
        return "zap_batched" if self.i < ptrs_per_pte(s) else "unlock"

    @step("include/linux/mm.h:pte_unmap_unlock")
    def unlock(self, s):
        spin_unlock(s, pte_lockptr(s, self.table))
        if not self.nr_mapped:
            return "mmap_read_unlock"

    # refcount_outside_ptl: pte_refcount_sub() after the unlock, the C "+=" as its two accesses.
    @step("mm/pte_ref.c:pte_refcount_sub", effect={"old_mapped": "mapped", "old_zero": "zero"})
    def account_load(self, s):
        self.old = s.load(pte_refcount(self.table))

    # Declared for a store that does not borrow across the fields (refcount_arith.py's
    # update obligations); from a stale, too small value it does, and the link says so.
    @step("mm/pte_ref.c:pte_refcount_sub", effect={
        "when": "refcount_outside_ptl and live and old_mapped >= nr_mapped and old_zero >= nr_zero",
        "mapped": "old_mapped - nr_mapped", "zero": "old_zero - nr_zero",
        "nr_mapped": "0", "nr_zero": "0", "old_mapped": "0", "old_zero": "0"})
    def account_store(self, s):
        ref = s.model.pte_ref
        count = ref.pte_refcount_sub(self.old, self.nr_mapped * ref.PTE_MAPPED_OFFSET)
        count = ref.pte_refcount_sub(count, self.nr_zero * ref.PTE_ZERO_OFFSET)
        s.store(pte_refcount(self.table), count)
        self.old, self.nr_mapped, self.nr_zero = None, 0, 0

    @step("mm/madvise.c:do_madvise")
    def mmap_read_unlock(self, s):
        mmap_read_unlock(s)
        return DONE


class FreePtes(Thread):
    """/proc/sys/vm/free_ptes: kfreeptd_pmd_entry() on the table's pmd (RFC 7/7)."""

    table: object = None  # the page it unlinked, freed after dropping the locks

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def mmap_write_lock(self, s):
        mmap_write_lock(s)  # after mmap_read_unlock(): waits until no fault or zap is inside

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def pmd_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def check(self, s):
        pmdval = s.pmd
        if not pmd_table(pmdval):
            return "unlock"
        ref, count = s.model.pte_ref, s.load(pte_refcount(pmdval))
        if not ref.pte_mapped_count(count) or ref.pte_zero_count(count) == ptrs_per_pte(s):
            self.table = pmdval
            return "pmd_clear"
        return "unlock"

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def pmd_clear(self, s):
        # The RFC frees zero-page tables on purpose: a refault maps the zero page again.
        pmd_clear(s, zero_page_is_lost=False)

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def flush_tlb_range(self, s):
        flush_tlb_mm_range(s)

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))

    @step("mm/pte_ref.c:kfreeptd_pmd_entry")
    def mmap_write_unlock(self, s):
        # The walk goes on under mmap read again; nothing below depends on holding it.
        mmap_write_unlock(s)
        if self.table is None:
            return DONE

    # pte_free_debug() BUG()s here under CONFIG_DEBUG_VM if an entry is neither none nor the
    # zero page; properties/refcount2022_no_lost_mapping.py checks that before the page goes.
    @step("mm/pte_ref.c:kfreeptd_pmd_entry", effect={
        "when": "live and (mapped == 0 or zero == PTRS_PER_PTE) and pending_mapped == 0 and pending_zero == 0",
        "live": "0", "entries": "0", "zeroes": "0", "mapped": "0", "zero": "0"})
    def free(self, s):
        mm_dec_nr_ptes(s)
        pte_free(s, self.table)  # pgtable_pte_page_dtor() + __free_page()
        return DONE


class RmapWalker(Thread):
    """Reclaim's try_to_unmap() of the fault's page (shrink_folio_list() -> rmap_walk_anon()):
    holds the anon_vma for read, not mmap_lock, so free_ptes' mmap write lock does not exclude it.

    v6.0's page_vma_mapped_walk() reads the pmd (READ_ONCE), then map_pte(): pte_offset_map()
    computes the table from *pmd again, pte_lockptr() and spin_lock() the ptl, check_pte() that
    the entry maps the page; try_to_unmap_one() then ptep_clear_flush()es it and installs a swap
    entry with set_pte_at() under the same ptl (the RFC's hooks count both)."""

    table: object = None
    vma = None  # the anonymous VMA (configuration)

    def __init__(self, name, page, vma):
        super().__init__(name)
        self.page, self.vma = page, vma

    @step("mm/rmap.c:rmap_walk_anon")
    def anon_vma_lock_read(self, s):
        anon_vma_lock_read(s, self.vma)  # folio_lock_anon_vma_read()

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk")
    def pvmw_pmd(self, s):
        if not pmd_table(s.pmd):  # !pmd_present(pmde): not mapped here
            return "anon_vma_unlock_read"

    @step("mm/page_vma_mapped.c:map_pte")
    def map_pte(self, s):
        self.table = pte_offset_map(s, s.pmd)  # reads *pmd again; no RCU in v6.0

    @step("mm/page_vma_mapped.c:map_pte")
    def map_pte_lock(self, s):
        spin_lock(s, pte_lockptr(s, self.table))

    @step("mm/page_vma_mapped.c:check_pte")
    def check_pte(self, s):
        pte = ptep_get(s, self.table, ptrs_per_pte(s) - 1)
        if pte is None or pte[0] != self.page or is_zero_pfn(pte):
            return "unmap_unlock"  # not_found: page_vma_mapped_walk_done()

    @step("mm/rmap.c:try_to_unmap_one",  # a present page, not the zero page: track_pte_clear()
          effect={"when": "live and entries > zeroes", "entries": "entries - 1", "mapped": "mapped - 1"})
    def unmap_clear(self, s):
        ptep_get_and_clear(s, self.table, ptrs_per_pte(s) - 1)  # ptep_clear_flush(): track_pte_clear()
        flush_tlb_mm_range(s, 0, ptrs_per_pte(s), freed_tables=False)  # flush_tlb_page()

    @step("mm/rmap.c:try_to_unmap_one",  # none -> a swap entry: track_pte_set()
          effect={"when": "live and entries < PTRS_PER_PTE", "entries": "entries + 1", "mapped": "mapped + 1"})
    def unmap_set_swap(self, s):
        set_pte_at(s, self.table, ptrs_per_pte(s) - 1, swap_pte(self.page))  # track_pte_set()

    @step("mm/page_vma_mapped.c:page_vma_mapped_walk_done")
    def unmap_unlock(self, s):
        spin_unlock(s, pte_lockptr(s, self.table))  # pte_unmap_unlock()

    @step("mm/rmap.c:rmap_walk_anon")
    def anon_vma_unlock_read(self, s):
        anon_vma_unlock_read(s, self.vma)
        return DONE


class PerTable(Counters):
    """Per PTE page: pte_mapped_count() == non-none entries and pte_zero_count() == zero-page
    entries, counting entries a zap cleared but has not yet accounted (refcount_outside_ptl)."""

    page = ("live", "mapped", "zero", "entries", "zeroes")
    thread = ("nr_mapped", "nr_zero", "old_mapped", "old_zero")
    sums = {"pending_mapped": "nr_mapped", "pending_zero": "nr_zero"}
    sizes = {"PTRS_PER_PTE": "entries"}
    domain = "0 <= live <= 1 and 0 <= zeroes <= entries <= PTRS_PER_PTE and mapped >= 0 and zero >= 0"
    invariant = ("mapped == entries + pending_mapped and zero == zeroes + pending_zero if live else "
                 "mapped == 0 and zero == 0 and entries == 0 and pending_mapped == 0 and pending_zero == 0")

    def of_page(self, page):
        # pte_refcount is decoded with the model's own encoding (PteRef).
        ref, count = page.model.pte_ref, page.field("pte_refcount")
        return {"live": int(page.live), "mapped": ref.pte_mapped_count(count),
                "zero": ref.pte_zero_count(count),
                "entries": sum(not pte_none(e) for e in page.entries),
                "zeroes": sum(is_zero_pfn(e) for e in page.entries)}

    def of_thread(self, t, page):
        if getattr(t, "table", None) != page.ptr or getattr(t, "nr_mapped", None) is None:
            return {}
        ref, old = page.model.pte_ref, t.old
        return {"nr_mapped": t.nr_mapped, "nr_zero": t.nr_zero,
                "old_mapped": ref.pte_mapped_count(old) if old is not None else 0,
                "old_zero": ref.pte_zero_count(old) if old is not None else 0}


class Refcount2022(Model):
    """2022 RFC: non-atomic mapped/zero-page counts under the ptl; free_ptes frees empty and zero tables."""

    symmetric = ("fault", "madvise", "free_ptes")

    entries = Param(2, "entries per PTE table (PTRS_PER_PTE; z3 covers 512)", minimum=1)
    pages = Param(2, "PTE pages the allocator can hand out", minimum=1)
    faults = Param(1, "page faults on the last entry (each a read or a write fault)")
    zaps = Param(1, "madvise(MADV_DONTNEED) of the whole table")
    reclaimers = Param(1, "writers of /proc/sys/vm/free_ptes")
    mapped_bits = Param(10, "PTE_MAPPED_BITS")
    zero_bits = Param(10, "PTE_ZERO_BITS")
    zero_shift = Param(10, "PTE_ZERO_SHIFT (PTE_MAPPED_SHIFT + PTE_MAPPED_BITS in the RFC)")
    rmap_walkers = Param(0, "try_to_unmap() of the fault's page under the anon_vma lock (no mmap lock)")
    gup_fast = Param(0, "pin_user_pages_fast() of entry 0 (IRQs off, no lock: ptmc.actors.gup)")

    refcount_outside_ptl = Variant("zap_pte_range() subtracts the entries it cleared from pte_refcount "
                                   "after pte_unmap_unlock(), a plain read-modify-write outside the ptl")

    counters = PerTable()
    maintains = ("nr_ptes",)
    EVENTS = gup.EVENTS

    def __init__(self, params=None, variants=(), **switches):
        super().__init__(params, variants, **switches)
        self.pte_ref = PteRef(self.mapped_bits, self.zero_bits, self.zero_shift)

    def projections(self):
        """The teaching view (docs/teaching.md): the pmd, the first table's lifecycle and its count."""
        return {"refcount lifecycle": ("pmd", "pt0.state", "pt0.pte_refcount")}

    def init(self, mem):
        PageTables(mem, pages=self.pages, entries=self.entries, fields={"pte_refcount": 0})
        mmap_lock_init(mem)
        for k in range(self.pages):  # traces show the word and what it decodes to
            mem.layout.shown[mem.layout.index[f"pt{k}.pte_refcount"]] = self._show_refcount
        table = pte_alloc_one(mem)
        for i in range(self.entries - 1):
            set_pte_at(mem, table, i, present(ZERO_PAGE))
        mm_inc_nr_ptes(mem)
        pmd_populate(mem, table)
        if self.rmap_walkers:
            self.the_vma = declare_vma(mem, "vma", anon=True, anon_vma=True)
        if self.gup_fast:
            rcu_init(mem)  # IRQs off is an RCU read-side section
            for k in range(self.faults):  # the fault's page, should GUP-fast find it
                declare_folio(mem, 1 + k, fields=("mapcount", "refcount", "pincount", "discarded"), refcount=1)

    def _show_refcount(self, value, layout) -> str:
        ref = self.pte_ref
        return f"{value:#x} (mapped {ref.pte_mapped_count(value)}, zero {ref.pte_zero_count(value)})"

    def threads(self):
        return [*(Fault(name, page=1 + k) for k, name in enumerate(numbered("fault", self.faults))),
                *(Zap(name) for name in numbered("madvise", self.zaps)),
                *(FreePtes(name) for name in numbered("free_ptes", self.reclaimers)),
                *(RmapWalker(name, page=1, vma=getattr(self, "the_vma", None))
                  for name in numbered("rmap", self.rmap_walkers)),
                *(GupFast(name) for name in numbered("gup_fast", self.gup_fast))]
