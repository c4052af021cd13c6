"""Two pmd slots: a thread moves an entry from one to the other (UFFDIO_MOVE's move_pages_pte()
shape: both tables mapped locklessly, double_pt_lock(), the stability rechecks, the move, the
flush of the source), against another mover going the other way and against a reclaimer of the
destination table."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Model, Thread, step
from ptmc.explore import check_model
from ptmc.kernel.folio import declare_folio
from ptmc.kernel.pgtable import (PageTables, PteOffsetMapLock, address, linked_mappings, pmd_clear, pmd_lock,
                                 pmd_lockptr, pmd_populate, pmd_same, pmdp_get_lockless, pte_alloc_one,
                                 pte_offset_map_nolock, pte_unmap, pte_unmap_unlock, ptep_get,
                                 ptep_get_and_clear, set_pte_at)
from ptmc.kernel.pte import present
from ptmc.kernel.rcu import rcu_init
from ptmc.kernel.spinlock import DoublePtLock, double_pt_unlock, spin_lock_nested, spin_unlock
from ptmc.kernel.tlb import flush_tlb_range
from ptmc.properties import at_end, deadlock_free, never


class MovePte(DoublePtLock):
    """Moves entry 0 of slot ``src`` to entry 0 of slot ``dst`` if it is present there and the
    destination is none; ``recheck_dst_pmd``: False leaves out the pmd_same() of the destination."""

    src_pmd: object = None
    dst_pmd: object = None
    src_ptl: object = None
    dst_ptl: object = None
    orig_src: object = None
    orig_dst: object = None

    def __init__(self, name, src, dst, recheck_dst_pmd=True):
        super().__init__(name)
        self.src, self.dst, self.recheck_dst_pmd = src, dst, recheck_dst_pmd

    @step("mm/userfaultfd.c:move_pages_pte")
    def map_src(self, s):
        self.src_pmd, self.src_ptl = pte_offset_map_nolock(s, self.src)  # pte_offset_map_rw_nolock()
        if self.src_ptl is None:
            return DONE  # -EAGAIN

    @step("mm/userfaultfd.c:move_pages_pte")
    def map_dst(self, s):
        self.dst_pmd, self.dst_ptl = pte_offset_map_nolock(s, self.dst)
        if self.dst_ptl is None:
            pte_unmap(s)
            return DONE

    @step("mm/userfaultfd.c:move_pages_pte")
    def read_src(self, s):
        self.orig_src = ptep_get(s, self.src_pmd, 0)
        if self.orig_src is None:
            pte_unmap(s)
            pte_unmap(s)
            return DONE  # nothing to move

    @step("mm/userfaultfd.c:move_pages_pte")
    def read_dst(self, s):
        self.orig_dst = ptep_get(s, self.dst_pmd, 0)
        return self.double_pt_lock(self.src_ptl, self.dst_ptl, then="recheck")

    @step("mm/userfaultfd.c:move_pages_pte")
    def recheck(self, s):
        stable = (ptep_get(s, self.src_pmd, 0) == self.orig_src and ptep_get(s, self.dst_pmd, 0) == self.orig_dst
                  and self.orig_dst is None)
        if self.recheck_dst_pmd:
            stable = stable and pmd_same(self.dst_pmd, pmdp_get_lockless(s, self.dst))
        if not stable:
            return "unlock"  # -EAGAIN

    @step("mm/userfaultfd.c:move_present_pte")
    def move(self, s):
        pte = ptep_get_and_clear(s, self.src_pmd, 0)  # ptep_clear_flush()
        flush_tlb_range(s, address(s, 0, self.src), address(s, 1, self.src))
        set_pte_at(s, self.dst_pmd, 0, pte)

    @step("mm/userfaultfd.c:double_pt_unlock")
    def unlock(self, s):
        double_pt_unlock(s, self.src_ptl, self.dst_ptl)
        pte_unmap(s)
        pte_unmap(s)
        return DONE


class Unlinker(Thread):
    """try_to_free_pte()'s shape on slot ``slot``: pml, map, nested ptl, every entry none, clear."""

    pmdval: object = None
    ptl: object = None

    def __init__(self, name, slot):
        super().__init__(name)
        self.slot = slot

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def lock_pml(self, s):
        pmd_lock(s, self.slot)

    @step("mm/pgtable-generic.c:pte_offset_map_rw_nolock")
    def map(self, s):
        self.pmdval, self.ptl = pte_offset_map_nolock(s, self.slot)
        if self.ptl is None:
            return "unlock_pml"

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def lock_ptl(self, s):
        spin_lock_nested(s, self.ptl)

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def check_and_clear(self, s):
        if ptep_get(s, self.pmdval, 0) is None:
            pmd_clear(s, self.slot)
        spin_unlock(s, self.ptl)
        pte_unmap(s)

    @step("mm/pt_reclaim.c:try_to_free_pte")
    def unlock_pml(self, s):
        spin_unlock(s, pmd_lockptr(s, self.slot))
        return DONE


def init(mem, pmd_tables=None):
    PageTables(mem, pages=2, entries=1, slots=("src", "dst"), pmd_tables=pmd_tables)
    rcu_init(mem)
    declare_folio(mem, 1, mapcount=1)
    table = pte_alloc_one(mem)
    set_pte_at(mem, table, 0, present(1))
    pmd_populate(mem, table, "src")
    pmd_populate(mem, pte_alloc_one(mem), "dst")


def model(threads, separate_pmd_tables=False, **config):
    class Slots(Model):
        name = "slots"
        maintains = ("mapcount",)

        def init(self, mem):
            init(mem, {"dst": 1} if separate_pmd_tables else None)

        def threads(self):
            return threads()
    return Slots(config)


def mapped_once(s):
    """d1 is mapped by exactly one entry of the two tables, as its mapcount says"""
    found = linked_mappings(s)
    return len(found) == 1 or f"d1 is mapped {len(found)} times"


CHECKS = [never("pte-in-unlinked-table"), never("self-deadlock"), deadlock_free(), at_end(mapped_once)]


# The explorer's counts: the movers take no pml, so one or two PMD tables are alike; with
# ptl == mm->page_table_lock double_pt_lock() takes one lock and fewer orders interleave.
@pytest.mark.parametrize("config, separate, states", [
    ({}, False, 49), ({}, True, 49), ({"split_ptlocks": False}, False, 44)])
def test_two_movers_in_opposite_directions(config, separate, states):
    r = check_model(model(lambda: [MovePte("m1", "src", "dst"), MovePte("m2", "dst", "src")], separate, **config),
                    CHECKS)
    assert (r.verdict, r.states) == ("holds", states), r.violation
    ends = reachable(model(lambda: [MovePte("m1", "src", "dst"), MovePte("m2", "dst", "src")], separate, **config))
    where = {("src" if st["pt0.e0"] else "") + ("dst" if st["pt1.e0"] else "")
             for st in ends if st["m1.pc"] == st["m2.pc"] == "done"}
    assert where == {"src", "dst"}  # moved there, or there and back


def test_the_destination_pmd_recheck_keeps_the_move_out_of_an_unlinked_table():
    good = check_model(model(lambda: [MovePte("m", "src", "dst"), Unlinker("u", "dst")]), CHECKS)
    assert good.verdict == "holds"
    bad = check_model(model(lambda: [MovePte("m", "src", "dst", recheck_dst_pmd=False), Unlinker("u", "dst")]),
                      CHECKS)
    assert bad.verdict == "violated" and bad.violation.check == "never pte-in-unlinked-table"
    assert bad.violation.message == "m writes pt1.e0 := present(d1), but no pmd links pt1 any more"
    steps = [(t.thread, t.step) for t in bad.trace]
    assert steps.index(("m", "map_dst")) < steps.index(("u", "check_and_clear")) < steps.index(("m", "move"))


class LockedMover(MovePte, PteOffsetMapLock):
    """The same, taking the source with pte_offset_map_lock(s, slot) first (a call)."""

    first_step = "lock_src"

    @step("mm/userfaultfd.c:move_pages_pte")
    def lock_src(self, s):
        return self.pte_offset_map_lock(self.src, then=self.src_locked)

    def src_locked(self, table):
        return DONE if table is None else "look_and_unlock"

    @step("mm/userfaultfd.c:move_pages_pte")
    def look_and_unlock(self, s):
        s.seen = (self.pmdval, self.ptl)
        pte_unmap_unlock(s, self.ptl)
        return "map_src"


def test_pte_offset_map_lock_names_its_slot():
    def init_seen(mem):
        init(mem)
        mem.seen = None

    class M(Model):
        name = "slots"
        maintains = ("mapcount",)

        def init(self, mem):
            init_seen(mem)

        def threads(self):
            return [LockedMover("m", "dst", "src")]
    states = reachable(M())
    assert {str(st["seen"]) for st in states if st["m.pc"] == "done"} == {"(pt1, pt1.ptl)"}


def test_one_mover_alone():
    r = check_model(model(lambda: [MovePte("m", "src", "dst")]), CHECKS)
    # map_src, map_dst, read_src, read_dst, the two locks, recheck, move, unlock, done
    assert (r.verdict, r.states) == ("holds", 10)
