"""Rules of the page-table pages (kernel/pgtable.py), the TLB (kernel/tlb.py) and atomic_t
(kernel/atomic.py)."""
from __future__ import annotations

from ptmc import DONE, Thread, step
from ptmc.kernel.atomic import atomic_add, atomic_inc_not_zero, atomic_read, atomic_sub_and_test
from ptmc.kernel.pgtable import (PageTables, allocated_pages, huge_pmd, linked_entries, mm_dec_nr_ptes,
                                 mm_inc_nr_ptes, pmd_clear, pmd_lockptr, pmd_none, pmd_populate, pmd_same,
                                 pmd_table, pt, pte_alloc_one, pte_clear, pte_free, pte_lockptr,
                                 pte_offset_map, pte_offset_map_nolock, ptep_get, set_pte_at)
from ptmc.kernel.pte import ZERO_PAGE, present, pte_none
from ptmc.kernel.rcu import RcuCallbacks, call_rcu, rcu_init, rcu_read_unlock, synchronize_rcu, synchronize_rcu_wait
from ptmc.kernel.spinlock import spin_lock, spin_unlock
from ptmc.kernel.tlb import flush_tlb_mm_range
from ptmc.properties import at_end, deadlock_free, invariant, never

from .case import Case, model


def tables(pages=2, entries=1, mapped=True, refcount=0, rcu=False, second=False):
    """A pmd linking pt0 (its e0 mapping data page 1 when ``mapped``), ``pages`` pages in all.
    ``second``: pt0 is allocated but unused and the pmd links pt1 (page index != generation).
    The ptlocks follow the model's configuration (``model(..., split_ptlocks=False)``)."""
    def init(mem):
        if rcu:
            rcu_init(mem)
        PageTables(mem, pages=pages, entries=entries, fields={"count": refcount})
        table = pte_alloc_one(mem)
        if second:
            mem.spare = table
            table = pte_alloc_one(mem)
        if mapped:
            set_pte_at(mem, table, 0, present(1))
        mem.pmd = table
        mem.seen = None
    return init


class Walker(Thread):
    """Reads the pmd, then entry 0 through the pointer it got."""

    table: object = None

    @step("mm/pagewalk.c:walk_pmd_range")
    def get(self, s):
        self.table = s.pmd

    @step("mm/pagewalk.c:walk_pte_range")
    def read(self, s):
        if pmd_table(self.table):
            s.seen = ptep_get(s, self.table, 0)


class Freer(Thread):
    """Empties and unlinks the table, flushes the TLB, frees it; optionally reallocates."""

    table: object = None
    realloc = False

    @step("mm/memory.c:zap_pte_range")
    def clear(self, s):
        pte_clear(s, s.pmd, 0)
        self.table = pmd_clear(s)

    @step("arch/x86/mm/tlb.c:flush_tlb_mm_range")
    def flush(self, s):
        flush_tlb_mm_range(s)

    @step("mm/x.c:pte_free")
    def free(self, s):
        pte_free(s, self.table)
        if not self.realloc:
            return DONE

    @step("mm/x.c:pte_alloc_one")
    def alloc(self, s):
        pmd_populate(s, pte_alloc_one(s))


class Reallocator(Freer):
    realloc = True


def use_after_free(freer=Freer):
    return (model(tables(), lambda: [Walker("walker"), freer("freer")]),
            [never("use-after-free"), never("double-free")])


class Reuser(Thread):
    """All in one thread: keep the old pointer, free, reallocate (pt0 again), use the old one."""

    old: object = None

    @step("x.c:get")
    def get(self, s):
        self.old = s.pmd

    @step("x.c:free")
    def free(self, s):
        pte_clear(s, self.old, 0)
        flush_tlb_mm_range(s)
        pte_free(s, self.old)

    @step("x.c:alloc")
    def alloc(self, s):
        s.pmd = pte_alloc_one(s)

    @step("x.c:recheck")
    def recheck(self, s):
        # pmd_same() compares pfns: the reused pt0 passes, which is why the generation check
        # (not the kernel's recheck) must catch the stale pointer.
        if not pmd_same(s.pmd, self.old):
            return DONE

    @step("x.c:read_old")
    def read_old(self, s):
        ptep_get(s, self.old, 0)


def use_after_reuse():
    return model(tables(), lambda: [Reuser("t")]), [never("use-after-free")]


class FreeTwice(Thread):
    """Frees pt0, reallocates it, then frees it again through the old pointer."""

    old: object = None

    @step("x.c:free")
    def free(self, s):
        self.old = s.pmd
        pte_free(s, self.old)

    @step("x.c:alloc")
    def alloc(self, s):
        s.pmd = pte_alloc_one(s)

    @step("x.c:free_old")
    def free_old(self, s):
        pte_free(s, self.old)


def double_free_after_reuse():
    return model(tables(mapped=False), lambda: [FreeTwice("t")]), [never("double-free")]


class FreeFree(Thread):
    @step("x.c:free1")
    def free1(self, s):
        pte_free(s, s.pmd)

    @step("x.c:free2")
    def free2(self, s):
        pte_free(s, s.pmd)


def double_free():
    return model(tables(mapped=False), lambda: [FreeFree("t")]), [never("double-free")]


class Mapper(Thread):
    """pte_offset_map() of a pmd another step made none or huge: an oops."""

    value = None

    @step("x.c:change")
    def change(self, s):
        s.pmd = self.value

    @step("include/linux/pgtable.h:pte_offset_map")
    def map(self, s):
        pte_offset_map(s, s.pmd)

    @step("x.c:after")
    def after(self, s):
        s.seen = "ran on"


class HugeMapper(Mapper):
    value = huge_pmd(1)


def map_not_a_table(kind, check):
    return model(tables(), lambda: [kind("t")]), [check]


class Dirty(Thread):
    """Changes a reused page's fields, frees it; the next allocation must come back clean."""

    @step("x.c:dirty")
    def dirty(self, s):
        atomic_add(s, s.pmd.field("count"), 5)
        set_pte_at(s, s.pmd, 0, present(2))
        pte_clear(s, s.pmd, 0)
        pte_free(s, s.pmd)
        s.pmd = None

    @step("x.c:alloc")
    def alloc(self, s):
        s.pmd = pte_alloc_one(s)
        s.second = pte_alloc_one(s)


def alloc_is_clean():
    # lowest free page first, generation + 1, fields and entries back to their initial values
    return (model(lambda m: (tables(pages=3, mapped=False)(m), setattr(m, "second", None)), lambda: [Dirty("t")]),
            [at_end(lambda s: s.pmd == pt(0, 1) and s.second == pt(1, 0) and s.load(s.pmd.field("count")) == 0
                    and ptep_get(s, s.pmd, 0) is None and allocated_pages(s) == [0, 1])])


class Unlinker(Thread):
    """Unlinks the table (emptied first, or not) and frees it (after a TLB flush, or not)."""

    old: object = None
    empty = True
    flush = True
    entry = None
    zero_page_is_lost = True  # pmd_clear()'s default: every non-none entry is lost with the table

    @step("mm/memory.c:zap_pte_range")
    def zap(self, s):
        set_pte_at(s, s.pmd, 0, self.entry)
        if not self.empty:
            set_pte_at(s, s.pmd, 0, present(1))

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink(self, s):
        self.old = pmd_clear(s, zero_page_is_lost=self.zero_page_is_lost)

    @step("arch/x86/mm/tlb.c:flush_tlb_mm_range")
    def flush_tlb(self, s):
        if self.flush:
            flush_tlb_mm_range(s)

    @step("mm/x.c:pte_free")
    def free(self, s):
        pte_free(s, self.old)


class HalfMapped(Unlinker):
    """Entry 0 of two is emptied, entry 1 still maps a page when the table is unlinked."""

    @step("mm/memory.c:zap_pte_range")
    def zap(self, s):
        set_pte_at(s, s.pmd, 0, None)
        set_pte_at(s, s.pmd, 1, present(2))
        return "unlink"  # a subclass's own last step would fall through to DONE


class NoFlush(Unlinker):
    flush = False


class Mapped(Unlinker):
    empty = False


class ZeroPage(Unlinker):
    """A design that frees tables of zero-page entries on purpose (a refault maps it again)."""

    entry = present(ZERO_PAGE)
    zero_page_is_lost = False


class ZeroPageLost(Unlinker):
    entry = present(ZERO_PAGE)


def unlink(kind, second=False, entries=1):
    spare = [0] if second else []
    return (model(tables(second=second, entries=entries, pages=3 if second else 2), lambda: [kind("t")]),
            [never("use-after-free"), never("unlink-mapped-table"), at_end(lambda s: allocated_pages(s) == spare)])


class LateFault(Thread):
    """Maps the table, then (after reclaim may have unlinked it) writes an entry into it."""

    table: object = None

    @step("mm/memory.c:__pte_offset_map")
    def map(self, s):
        self.table = s.pmd

    @step("mm/memory.c:set_pte_at")
    def write(self, s):
        if pmd_table(self.table):
            set_pte_at(s, self.table, 0, present(3))


class Unlink(Thread):
    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink(self, s):
        pte_clear(s, s.pmd, 0)
        pmd_clear(s)


def write_into_unlinked():
    return model(tables(), lambda: [LateFault("fault"), Unlink("zap")]), [never("pte-in-unlinked-table")]


class Locker(Thread):
    """Takes the lock for the pmd's table: the ptl (split) or the pml."""

    use_pml = False

    @step("x.c:lock")
    def lock(self, s):
        s.lock = pmd_lockptr(s) if self.use_pml else pte_lockptr(s, s.pmd)
        spin_lock(s, s.lock)
        s.inside += 1

    @step("x.c:unlock")
    def unlock(self, s):
        s.inside -= 1
        spin_unlock(s, pmd_lockptr(s) if self.use_pml else pte_lockptr(s, s.pmd))


class PmlLocker(Locker):
    use_pml = True


def ptl_vs_pml(split):
    def init(m):
        tables()(m)
        m.inside = 0
        m.lock = None
    return (model(init, lambda: [Locker("ptl"), PmlLocker("pml")], split_ptlocks=split),
            [invariant(lambda s: s.inside <= 1), never("self-deadlock"), never("bad-unlock")])


class NolockWalker(Thread):
    """pte_offset_map_nolock(); if a table: take the ptl, read, unlock, leave RCU."""

    pmdval: object = None
    ptl: object = None

    @step("mm/pgtable-generic.c:__pte_offset_map")
    def map(self, s):
        self.pmdval, self.ptl = pte_offset_map_nolock(s)
        if self.ptl is None:
            return DONE

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def lock(self, s):
        spin_lock(s, self.ptl)

    @step("mm/memory.c:pte_unmap_unlock")
    def read(self, s):
        if pmd_same(s.pmd, self.pmdval):
            s.seen = ptep_get(s, self.pmdval, 0)
        spin_unlock(s, self.ptl)
        rcu_read_unlock(s)


def free_table(s, table):
    pte_free(s, table)


class RcuFreer(Thread):
    """Unlinks under the ptl, flushes, frees after a grace period (call_rcu)."""

    table: object = None

    @step("mm/pt_reclaim.c:reclaim_pt_if_empty")
    def unlink(self, s):
        spin_lock(s, s.pmd.ptl)
        pte_clear(s, s.pmd, 0)
        self.table = pmd_clear(s)
        spin_unlock(s, self.table.ptl)

    @step("mm/mmu_gather.c:tlb_flush_mmu")
    def flush(self, s):
        flush_tlb_mm_range(s)
        call_rcu(s, "rcu_head", free_table, self.table)


def nolock_walker_vs_rcu_free():
    def init(m):
        tables(rcu=True)(m)
        from ptmc.kernel.rcu import rcu_head_cell
        rcu_head_cell(m, "rcu_head")
    return (model(init, lambda: [NolockWalker("walker"), RcuFreer("zap"), RcuCallbacks()]),
            [never("use-after-free"), deadlock_free(), at_end(lambda s: allocated_pages(s) == [])])


class Syncer(Thread):
    @step("kernel/rcu/tree.c:synchronize_rcu")
    def sync(self, s):
        synchronize_rcu(s)

    @step("kernel/rcu/tree.c:synchronize_rcu")
    def wait(self, s):
        synchronize_rcu_wait(s)


def nolock_of_none_leaves_rcu():
    # The pmd maps no table: pte_offset_map_nolock() must leave RCU again, or the grace
    # period never ends.
    def init(m):
        tables(rcu=True)(m)
        m.pmd = None
    return model(init, lambda: [NolockWalker("walker"), Syncer("sync")]), [deadlock_free()]


class Counter(Thread):
    """mm_inc_nr_ptes() twice, mm_dec_nr_ptes() once; pmd helpers on the way."""

    @step("x.c:count")
    def count(self, s):
        mm_inc_nr_ptes(s)
        mm_inc_nr_ptes(s)
        mm_dec_nr_ptes(s)
        s.seen = (pmd_none(None), pmd_none(s.pmd), pmd_table(s.pmd), pmd_table(huge_pmd(1)), pte_none(None),
                  pte_none(present(1)), pmd_same(pt(0, 0), pt(0, 1)), pmd_same(pt(0, 0), None),
                  tuple(linked_entries(s)), pmd_lockptr(s))
        pte_clear(s, s.pmd, 0)
        pmd_clear(s)
        s.seen += (tuple(linked_entries(s)),)


def counters():
    # pt1 is linked (pt0 is a spare): linked_entries() must read the linked page.
    return (model(tables(pages=3, second=True), lambda: [Counter("t")]),
            [at_end(lambda s: s.nr_ptes == 1 and s.seen == (True, False, True, False, True, False, True, False,
                                                           (present(1),), "pml", ()))])


class Relock(Thread):
    """Frees pt0 while holding its ptl (a buggy caller), then reallocates it: the new page's
    ptlock is initialised (pagetable_pte_ctor), so taking it is no self-deadlock."""

    @step("x.c:lock_free")
    def lock_free(self, s):
        table = s.pmd
        spin_lock(s, table.ptl)
        pte_clear(s, table, 0)
        pmd_clear(s)
        flush_tlb_mm_range(s)
        pte_free(s, table)

    @step("x.c:alloc_lock")
    def alloc_lock(self, s):
        s.pmd = pte_alloc_one(s)
        spin_lock(s, s.pmd.ptl)


def alloc_initialises_ptl():
    return model(tables(), lambda: [Relock("t")]), [never("self-deadlock"), deadlock_free()]


class TryGet(Thread):
    """pte_try_get(): take a reference unless the count is zero; use the table; put it."""

    table: object = None

    @step("mm/x.c:pte_try_get")
    def get(self, s):
        self.table = s.pmd
        if not pmd_table(self.table) or not atomic_inc_not_zero(s, self.table.field("count")):
            return DONE

    @step("mm/x.c:use")
    def use(self, s):
        s.seen = ptep_get(s, self.table, 0)

    @step("mm/x.c:pte_put")
    def put(self, s):
        if atomic_sub_and_test(s, self.table.field("count"), 1):
            pte_clear(s, self.table, 0)
            pmd_clear(s)
            flush_tlb_mm_range(s)
            pte_free(s, self.table)


class PutLast(Thread):
    """Drops the table's own reference: whoever takes the count to zero frees the table."""

    @step("mm/x.c:pte_put")
    def put(self, s):
        table = s.pmd
        if atomic_sub_and_test(s, table.field("count"), 1):
            pte_clear(s, table, 0)
            pmd_clear(s)
            flush_tlb_mm_range(s)
            pte_free(s, table)


def refcount():
    return (model(tables(refcount=1), lambda: [TryGet("walker"), PutLast("zap")]),
            [never("use-after-free"), never("double-free"),
             at_end(lambda s: allocated_pages(s) == [] and s.pmd is None)])


class AtomicOps(Thread):
    @step("x.c:ops")
    def ops(self, s):
        s.seen = (atomic_add(s, "c", 2), atomic_read(s, "c"), atomic_sub_and_test(s, "c", 1),
                  atomic_sub_and_test(s, "c", 1), atomic_inc_not_zero(s, "c"), atomic_read(s, "c"))


def atomics():
    return (model(lambda m: (setattr(m, "c", 0), setattr(m, "seen", None)), lambda: [AtomicOps("t")]),
            [at_end(lambda s: s.seen == (2, 2, False, True, False, 0))])


CASES = [
    Case("use after free", "pgtable.PageRef.resolve: a free page", use_after_free, "violated",
         "never use-after-free", 5, 18, depth=5),
    Case("use after free and reuse", "pgtable.PageRef.resolve: the generation check", use_after_reuse,
         "violated", "never use-after-free", 5, 5, depth=5),
    Case("walker vs free and reuse", "pgtable.pte_alloc_one reuses the lowest page, generation + 1",
         lambda: use_after_free(Reallocator), "violated", "never use-after-free", 5, 19, depth=5),
    Case("double free", "pgtable.pte_free: double-free", double_free,
         "violated", "never double-free", 2, 2, depth=2),
    Case("double free after reuse", "pgtable.pte_free: a stale generation is a double free",
         double_free_after_reuse, "violated", "never double-free", 3, 3, depth=3),
    Case("map a none pmd", "pgtable.pte_offset_map: not a table is a use-after-free",
         lambda: map_not_a_table(Mapper, never("use-after-free")),
         "violated", "never use-after-free", 2, 2, depth=2),
    Case("map a huge pmd", "pgtable.pte_offset_map: a huge pmd is not a table",
         lambda: map_not_a_table(HugeMapper, never("use-after-free")),
         "violated", "never use-after-free", 2, 2, depth=2),
    # The map reports a use-after-free the invariant does not check: that path ends there
    # (undefined behaviour, bfs.explore), so the oopsed state is never stored: 2 states.
    Case("map a none pmd oopses", "pgtable.pte_offset_map: a use-after-free; the path ends",
         lambda: map_not_a_table(Mapper, invariant(lambda s: s.seen is None)), "holds", None, 0, 2, depth=1),
    Case("allocation is clean", "pgtable.pte_alloc_one: lowest free, reset fields; allocated_pages",
         alloc_is_clean, "holds", None, 0, 3, depth=2),
    Case("unlink, flush, free", "pgtable.pmd_clear; tlb: flush before free", lambda: unlink(Unlinker),
         "holds", None, 0, 5, depth=4),
    Case("free before the TLB flush", "tlb.tlb_may_walk: no flush since the unlink", lambda: unlink(NoFlush),
         "violated", "never use-after-free", 4, 4, depth=4),
    Case("unlink a mapped table", "pgtable.pmd_clear: unlink-mapped-table", lambda: unlink(Mapped),
         "violated", "never unlink-mapped-table", 2, 2, depth=2),
    # The rework made the zero page lost by default (pte.pte_maps_something): only a design
    # that says so (zero_page_is_lost=False, the 2022 RFC) may unlink a zero-page entry.
    Case("unlink a zero-page table", "pgtable.pmd_clear(zero_page_is_lost=False): the zero page is not lost",
         lambda: unlink(ZeroPage), "holds", None, 0, 5, depth=4),
    Case("unlink a zero-page table by default", "pte.pte_maps_something: the zero page is lost by default",
         lambda: unlink(ZeroPageLost), "violated", "never unlink-mapped-table", 2, 2, depth=2),
    Case("free pt1 before the TLB flush", "pgtable.pte_free: the stale-TLB check by page index",
         lambda: unlink(NoFlush, second=True), "violated", "never use-after-free", 4, 4, depth=4),
    Case("unlink a mapped pt1", "pgtable.pmd_clear: the unlinked page's own entries",
         lambda: unlink(Mapped, second=True), "violated", "never unlink-mapped-table", 2, 2, depth=2),
    Case("unlink a half-mapped table", "pgtable.pmd_clear: any entry still mapping a page",
         lambda: unlink(HalfMapped, entries=2), "violated", "never unlink-mapped-table", 2, 2, depth=2),
    Case("allocation initialises the ptl", "pgtable.PageTables.reset: the ptl too",
         alloc_initialises_ptl, "holds", None, 0, 3, depth=2),
    Case("write into an unlinked table", "pgtable.set_pte_at: pte-in-unlinked-table", write_into_unlinked,
         "violated", "never pte-in-unlinked-table", 3, 7, depth=3),
    Case("split ptl is not the pml", "pgtable.pte_lockptr: split ptlocks", lambda: ptl_vs_pml(True),
         "violated", "<lambda>", 2, 5, depth=2),
    Case("ptl == pml", "pgtable.pte_lockptr: one lock without split ptlocks", lambda: ptl_vs_pml(False),
         "holds", None, 0, 8, depth=4),
    Case("pte_offset_map_nolock under RCU", "pgtable.pte_offset_map_nolock: inside RCU; recheck",
         nolock_walker_vs_rcu_free, "holds", None, 0, 17, depth=6),
    Case("pte_offset_map_nolock of none", "pgtable.pte_offset_map_nolock: leaves RCU when no table",
         nolock_of_none_leaves_rcu, "holds", None, 0, 6, depth=3),
    Case("nr_ptes and pmd helpers", "pgtable.mm_inc/dec_nr_ptes, pmd_none, pmd_table, pmd_same, linked_entries",
         counters, "holds", None, 0, 2, depth=1),
    Case("refcounted table", "atomic.atomic_inc_not_zero, atomic_sub_and_test", refcount,
         "holds", None, 0, 9, depth=4),
    Case("atomics", "atomic: add returns the new value, sub_and_test, inc_not_zero", atomics,
         "holds", None, 0, 2, depth=1),
]
