"""The 2021 pte_refcount design: PTE pages freed when their reference count drops to zero.

The posting modelled is v1, Qi Zheng, "[PATCH 0/7] Free user PTE page table pages" (2021-07-18;
seed 004 is its cover letter), as of patch 5/7 "mm: free user PTE page table pages", before
6/7 "mm: defer freeing PTE page table for a grace period" moved the free behind RCU and 7/7
"mm: use mmu_gather to free PTE page table": the page is freed right after the TLB flush.
Each PTE page carries an atomic ``pte_refcount``: one reference per non-none entry plus one per
visitor. A visitor takes its reference with ``pte_try_get()`` (v1: under ``pmd_lock``, the pmd
must map a table, then ``pte_get_unless_zero()``) before ``pte_offset_map_lock()``, and drops
it with ``pte_put()``; whoever drops the last reference clears the pmd under ``pmd_lock``,
flushes the TLB and frees the page in ``free_pte_table()``, as the posting names it (seed 001,
Qi Zheng's answer to Kirill Shutemov on 5/7: pte_get_unless_zero() runs under pmd_lock "to
protect against free_pte_table()"; v3 renamed it free_user_pte_table()). The threads are those
of pte_ref.rst section 3 (seed 003, the document a later version added): A walks the table, B
zaps it with madvise(MADV_DONTNEED), C faults an entry back in.

``gup_fast`` adds GUP-fast (ptmc.actors.gup), which takes no reference at all: the posting
relies on its IRQs-off section holding off the flush's IPI (pte_ref.rst's "lock-less
scenario"), which only an IPI TLB flush does (``tlb_flush=ipi``, x86); with a broadcast flush
the page is freed under it.

Files of the series are cited as they were added by it (include/linux/pte_ref.h,
mm/pte_ref.c); mm/memory.c functions are the v5.14-era ones it changed.
"""
from ptmc import DONE, Model, Param, Thread, Variant, numbered, step
from ptmc.actors import gup
from ptmc.actors.gup import GupFast
from ptmc.kernel.folio import declare_folio
from ptmc.kernel.rcu import rcu_init
from ptmc.kernel.atomic import atomic_add, atomic_inc_not_zero, atomic_sub_and_test
from ptmc.kernel.pgtable import (PageTables, pmd_clear, pmd_lockptr, pmd_none, pmd_table, present,
                                 pte_alloc_one, pte_free, pte_lockptr, pte_none, pte_offset_map,
                                 ptep_get, ptrs_per_pte, set_pte_at)
from ptmc.kernel.spinlock import spin_lock, spin_unlock
from ptmc.kernel.tlb import flush_tlb_mm_range
from ptmc.smt import Counters


def pte_refcount(table):
    return table.field("pte_refcount")


class PteUser(Thread):
    """What every user of a PTE page does in this design: reference, map and lock, put."""

    table: object = None  # the PTE page this thread maps (from the pmd value it read)
    refs: int = 0  # references this thread owns: its visitor reference, plus entries it zapped

    # pte_try_get(), v1/v2: under pmd_lock, so that free_pte_table() (which clears the
    # pmd under that lock) cannot free the page between the pmd check and the increment.
    @step("include/linux/pte_ref.h:pte_try_get")
    def try_get(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("include/linux/pte_ref.h:pte_try_get")
    def try_get_pmd(self, s):
        pmdval = s.pmd
        if not pmd_table(pmdval):
            return "try_get_unlock"
        self.table = pmdval

    @step("include/linux/pte_ref.h:pte_get_unless_zero",
          effect={"when": "refcount != 0", "refcount": "refcount + 1", "refs": "refs + 1"})
    def get_unless_zero(self, s):
        # A count of zero means the last user is about to free the page: do not resurrect it.
        if atomic_inc_not_zero(s, pte_refcount(self.table)):
            self.refs += 1

    @step("include/linux/pte_ref.h:pte_try_get")
    def try_get_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        return "map" if self.refs else self.no_table()

    @step("include/linux/mm.h:pte_offset_map_lock")
    def map(self, s):
        # The macro reads *pmd again to find the page and its ptl.
        self.table = pte_offset_map(s, s.pmd)

    @step("include/linux/mm.h:pte_offset_map_lock")
    def lock(self, s):
        spin_lock(s, pte_lockptr(s, self.table))
        return self.under_ptl

    @step("include/linux/mm.h:pte_unmap_unlock")
    def unlock(self, s):
        spin_unlock(s, pte_lockptr(s, self.table))
        if not self.refs:
            return DONE

    @step("include/linux/pte_ref.h:pte_put_many",
          effect={"when": "refs >= 1", "refcount": "refcount - refs", "refs": "0"})
    def put(self, s):
        last = atomic_sub_and_test(s, pte_refcount(self.table), self.refs)
        self.refs = 0
        if not last:
            return DONE

    # free_pte_table(): the count reached zero, so no entry and no visitor is left.
    @step("mm/pte_ref.c:free_pte_table")
    def free_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/pte_ref.c:free_pte_table")
    def free_clear_pmd(self, s):
        pmd_clear(s)  # pmdp_huge_get_and_clear()

    @step("mm/pte_ref.c:free_pte_table")
    def free_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))

    @step("mm/pte_ref.c:free_pte_table")
    def flush_tlb(self, s):
        # Before the page is reused, no CPU may still walk it through a cached pmd (GUP-fast
        # holds the IPI off with IRQs disabled).
        flush_tlb_mm_range(s)

    @step("mm/pte_ref.c:free_pte_table", effect={"when": "refcount == 0", "live": "0"})
    def free_table(self, s):
        pte_free(s, self.table)
        return DONE

    under_ptl = "unlock"  # the first step a subclass runs with the ptl held

    def no_table(self):
        """Where to go when pte_try_get() fails: the range has no PTE table."""
        return DONE


class Walker(PteUser):
    """Thread A: a page table walker under mmap_read_lock(). ``no_try_get`` (constructor): it
    maps the table without pte_try_get() (the variant)."""

    i: int = 0
    under_ptl = "walk"

    def __init__(self, name, no_try_get=False):
        super().__init__(name)
        self.no_try_get = no_try_get

    @step("mm/pagewalk.c:walk_pmd_range")
    def check_pmd(self, s):
        # if (!pmd_none() && pmd_present() && !pmd_trans_unstable()): a lockless check only.
        if not pmd_table(s.pmd):
            return DONE
        return "map" if self.no_try_get else "try_get"

    @step("mm/pagewalk.c:walk_pte_range")
    def walk(self, s):
        ptep_get(s, self.table, self.i)
        self.i += 1
        return "walk" if self.i < ptrs_per_pte(s) else "unlock"


class Madvise(PteUser):
    """Thread B: madvise(MADV_DONTNEED) -> unmap_page_range() -> zap_pte_range()."""

    i: int = 0
    under_ptl = "zap"

    @step("mm/memory.c:zap_pmd_range")
    def zap_pmd_range(self, s):
        return "try_get" if pmd_table(s.pmd) else DONE

    @step("mm/memory.c:zap_pte_range",  # a non-none entry's reference passes to the zapper
          effect={"when": "entries >= 1", "entries": "entries - 1", "refs": "refs + 1"})
    def zap(self, s):
        entry = self.table.entry(self.i)
        if not pte_none(s.load(entry)):
            s.store(entry, None)  # ptep_get_and_clear_full(): one access
            self.refs += 1  # the entry's reference, dropped by pte_put_many() below
        self.i += 1
        return "zap" if self.i < ptrs_per_pte(s) else "unlock"


class Fault(PteUser):
    """Thread C: a page fault, do_anonymous_page(), repopulating entry 0."""

    new: object = None  # a PTE page allocated but not yet installed
    under_ptl = "set_pte"

    def __init__(self, name, page):
        super().__init__(name)
        self.page = page  # the data page this fault maps

    @step("mm/memory.c:do_anonymous_page")
    def pte_alloc(self, s):
        # pte_alloc_try_get(): a missing table is allocated, an existing one referenced.
        return "alloc" if pmd_none(s.pmd) else "try_get"

    @step("mm/memory.c:__pte_alloc",  # a new page, born with our reference
          effect={"when": "live == 0", "live": "1", "refcount": "1", "refs": "1"})
    def alloc(self, s):
        self.new = pte_alloc_one(s)
        atomic_add(s, pte_refcount(self.new), 1)  # pte_ref_init(): our visitor reference

    @step("mm/memory.c:pmd_install")
    def install_lock(self, s):
        spin_lock(s, pmd_lockptr(s))

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        if pmd_none(s.pmd):
            s.pmd = self.new  # pmd_populate(): the new table is visible, with our reference
            self.table, self.new, self.refs = self.new, None, 1

    @step("mm/memory.c:pmd_install")
    def install_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s))
        if self.new is None:
            return "map"

    @step("mm/memory.c:__pte_alloc", effect={"when": "refcount == 1 and refs == 1 and entries == 0",
                                             "live": "0", "refcount": "0", "refs": "0"})
    def free_unpublished(self, s):
        # Another thread installed a table first; ours was never visible.
        pte_free(s, self.new)
        self.new = None
        return "try_get"

    @step("include/linux/pte_ref.h:pte_get",  # only by a holder: never from zero
          effect={"when": "refs >= 1", "refcount": "refcount + 1", "refs": "refs + 1"})
    def set_pte(self, s):
        # Only if the entry is still none (the pte_none recheck under the ptl).
        if not pte_none(ptep_get(s, self.table, 0)):
            return "unlock"
        atomic_add(s, pte_refcount(self.table), 1)  # the entry's reference, taken first
        self.refs += 1

    @step("mm/memory.c:do_anonymous_page",  # the reference just taken passes to the entry
          effect={"when": "refs >= 1 and entries < PTRS_PER_PTE", "entries": "entries + 1",
                  "refs": "refs - 1"})
    def set_pte_at(self, s):
        set_pte_at(s, self.table, 0, present(self.page))
        self.refs -= 1  # handed to the entry
        return "unlock"

    def no_table(self):
        return "pte_alloc"  # the table went away meanwhile: allocate a new one


class PerTable(Counters):
    """Per PTE page: pte_refcount == non-none entries + references threads own (pte_ref.rst 2)."""

    page = ("live", "refcount", "entries")
    thread = ("refs",)  # a thread's references to the page: visitor, and entries it zapped
    sums = {"visitors": "refs"}
    sizes = {"PTRS_PER_PTE": "entries"}
    domain = "0 <= live <= 1 and 0 <= entries <= PTRS_PER_PTE and refcount >= 0"
    invariant = "refcount == entries + visitors if live else refcount == 0 and entries == 0 and visitors == 0"

    def of_page(self, page):
        return {"live": int(page.live), "refcount": page.field("pte_refcount"),
                "entries": sum(not pte_none(e) for e in page.entries)}

    def of_thread(self, t, page):
        # A fault's page that is not yet installed holds the reference pte_ref_init() gave it.
        unpublished = getattr(t, "new", None) == page.ptr
        mine = getattr(t, "table", None) == page.ptr  # (GUP-fast holds no reference)
        return {"refs": (t.refs if mine else 0) + unpublished}


class Refcount2021(Model):
    """2021 pte_refcount series: atomic per-page reference count, freed at zero."""

    counters = PerTable()
    symmetric = ("walker", "madvise", "fault")

    entries = Param(2, "entries per PTE table (PTRS_PER_PTE; z3 covers 512)", minimum=1)
    pages = Param(3, "PTE pages the allocator can hand out", minimum=1)
    walkers = Param(1, "threads like pte_ref.rst's thread A (page table walkers)")
    madvisers = Param(1, "threads like thread B (madvise(MADV_DONTNEED))")
    faults = Param(1, "threads like thread C (page faults on entry 0)")
    gup_fast = Param(0, "pin_user_pages_fast() of entry 0: IRQs off and no reference (ptmc.actors.gup)")

    EVENTS = gup.EVENTS

    no_try_get = Variant("the walker maps the PTE page without pte_try_get(): pte_ref.rst section 3, "
                         "'broken!!'")

    def projections(self):
        """The teaching view (docs/teaching.md): the pmd, the first table's lifecycle and its count."""
        return {"refcount lifecycle": ("pmd", "pt0.state", "pt0.pte_refcount")}

    def init(self, mem):
        PageTables(mem, pages=self.pages, entries=self.entries, fields={"pte_refcount": 0})
        table = pte_alloc_one(mem)
        for i in range(self.entries):
            set_pte_at(mem, table, i, present(i + 1))
        atomic_add(mem, pte_refcount(table), self.entries)
        mem.pmd = table
        if self.gup_fast:
            rcu_init(mem)  # IRQs off is an RCU read-side section
            fields = ("mapcount", "refcount", "pincount", "discarded")
            for page in range(1, self.entries + 1 + self.faults):  # the entries' pages, the faults'
                declare_folio(mem, page, fields=fields, refcount=1)

    def threads(self):
        return [*(Walker(name, self.no_try_get) for name in numbered("walker", self.walkers)),
                *(Madvise(name) for name in numbered("madvise", self.madvisers)),
                *(Fault(name, page=self.entries + 1 + k)
                  for k, name in enumerate(numbered("fault", self.faults))),
                *(GupFast(name) for name in numbered("gup_fast", self.gup_fast))]
