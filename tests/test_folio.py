"""Folios (ptmc.kernel.folio): references, pins, mapcounts, the discarded ghost; and the
mmu_gather without RCU table free, where only an IPI flush protects a lockless walker."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Model, Thread, step
from ptmc.errors import ModelError
from ptmc.explore import check_model
from ptmc.kernel.folio import (GUP_PIN_COUNTING_BIAS, declare_folio, folio_get, folio_maybe_dma_pinned,
                               folio_put, folio_ref_count, folio_test_discarded, gup_put_folio,
                               mapcounts_match, page_folio, try_grab_folio_fast)
from ptmc.kernel.irq import local_irq_restore, local_irq_save
from ptmc.kernel.mmu_gather import MmuGather, mmu_gather_init
from ptmc.kernel.pgtable import (PageTables, address, linked_mappings, pmd_clear, pmd_populate, pte_alloc_one,
                                 pte_offset_map_nolock, pte_unmap, ptep_get, set_pte_at)
from ptmc.kernel.pte import present
from ptmc.kernel.rcu import rcu_init, rcu_read_lock
from ptmc.properties import never


def model(init, threads, **params):
    class M(Model):
        name = "folios"

        def init(self, mem):
            init(mem)

        def threads(self):
            return threads()
    return M(params)


def test_references_pins_and_the_discarded_ghost():
    class Use(Thread):
        @step("x.c:use")
        def use(self, s):
            small, large = page_folio(s, 1), page_folio(s, 2)
            assert page_folio(s, 3) is large and page_folio(s, 0) is None  # a page of d2; the zero page
            assert try_grab_folio_fast(s, small, pin=True) and folio_ref_count(s, small) == 1 + GUP_PIN_COUNTING_BIAS
            assert folio_maybe_dma_pinned(s, small)
            gup_put_folio(s, small, pin=True)
            assert try_grab_folio_fast(s, large, pin=True) and (folio_ref_count(s, large), s.load("d2.pincount")) == (2, 1)
            assert folio_maybe_dma_pinned(s, large)
            gup_put_folio(s, large, pin=True)
            folio_get(s, small)
            folio_put(s, small)
            folio_put(s, small)  # the last reference: freed
            assert folio_test_discarded(s, small) and not try_grab_folio_fast(s, small, pin=False)
            return DONE

    def init(mem):
        declare_folio(mem, 1, fields=("refcount", "discarded"), refcount=1)
        declare_folio(mem, 2, 2, fields=("refcount", "pincount"), refcount=1)
    states = reachable(model(init, lambda: [Use("t")]))
    assert states[-1]["t.pc"] == "done" and states[-1]["d1.discarded"] is True


def test_an_undeclared_field_is_a_model_error_when_read():
    class Read(Thread):
        @step("x.c:read")
        def read(self, s):
            folio_ref_count(s, page_folio(s, 1))

    with pytest.raises(ModelError, match=r"folio d1 has no refcount: declare_folio"):
        check_model(model(lambda mem: declare_folio(mem, 1), lambda: [Read("t")]), [])
    with pytest.raises(ModelError, match="data page 0 is the shared zero page"):
        check_model(model(lambda mem: declare_folio(mem, 0), lambda: [Read("t")]), [])


def test_mapcounts_match_what_the_page_tables_map():
    class Check(Thread):
        @step("x.c:check")
        def check(self, s):
            s.ok = mapcounts_match(s, linked_mappings(s))
            return DONE

    def init(mem, mapcount):
        PageTables(mem, pages=1, entries=2)
        declare_folio(mem, 1, 2, mapcount=mapcount)  # an mTHP over both entries
        table = pte_alloc_one(mem)
        set_pte_at(mem, table, 0, present(1))
        set_pte_at(mem, table, 1, present(2))
        pmd_populate(mem, table)
        mem.ok = None
    good = reachable(model(lambda mem: init(mem, 2), lambda: [Check("t")]))
    assert good[-1]["ok"] is True
    bad = reachable(model(lambda mem: init(mem, 1), lambda: [Check("t")]))
    assert bad[-1]["ok"] == "d1 has mapcount 1 but 2 linked entries map it"


# --- tables through the page batch: no RCU table free -----------------------------------------------

class Freer(MmuGather):
    """Unlinks the table and frees it through the gather: with RCU table free the batch goes to
    call_rcu(); without, the page batch is freed right after the TLB flush."""

    first_step = "unlink"

    def __init__(self, name):
        super().__init__(name)
        self.batch_alloc_can_fail = False

    @step("mm/memory.c:free_pte_range")
    def unlink(self, s):
        self.tlb_gather_mmu(s)
        set_pte_at(s, s.pmd, 0, None)
        table = pmd_clear(s)
        return self.pte_free_tlb(s, table, address(s, 0), then=self.tlb_finished)


class RcuWalker(Thread):
    """A pte_offset_map() user: inside rcu_read_lock(), IRQs on."""

    pmdval: object = None

    @step("mm/pgtable-generic.c:___pte_offset_map")
    def map(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s)
        if ptl is None:
            return DONE

    @step("mm/pagewalk.c:walk_pte_range_inner")
    def read(self, s):
        ptep_get(s, self.pmdval, 0)
        pte_unmap(s)
        return DONE


class GupWalker(Thread):
    """GUP-fast: IRQs off around the walk of the pmd value it read."""

    pmdval: object = None

    @step("mm/gup.c:gup_fast_pmd_range")
    def map(self, s):
        local_irq_save(s)
        self.pmdval = s.pmd
        if self.pmdval is None:
            local_irq_restore(s)
            return DONE

    @step("mm/gup.c:gup_fast_pte_range")
    def read(self, s):
        rcu_read_lock(s)
        ptep_get(s, self.pmdval, 0)
        from ptmc.kernel.rcu import rcu_read_unlock
        rcu_read_unlock(s)
        local_irq_restore(s)
        return DONE


def gather_init(mem):
    PageTables(mem, pages=1, entries=1, rcu_head=True)
    rcu_init(mem)
    mmu_gather_init(mem, ["z"])
    table = pte_alloc_one(mem)
    set_pte_at(mem, table, 0, present(1))
    pmd_populate(mem, table)


NO_RCU = dict(mmu_gather_rcu_table_free=False, pt_reclaim=False)


@pytest.mark.parametrize("walker, config, verdict", [
    (RcuWalker, {}, "holds"),  # RCU table free: the grace period waits for the reader
    (GupWalker, {}, "holds"),
    (RcuWalker, NO_RCU, "violated"),  # x86 bare metal before v6.14: nothing waits for it
    (GupWalker, NO_RCU, "holds"),  # the IPI flush waits for the IRQs-off walker
])
def test_tables_freed_after_the_flush_are_safe_only_against_irqs_off_walkers(walker, config, verdict):
    from ptmc.kernel.rcu import RcuCallbacks
    r = check_model(model(gather_init, lambda: [Freer("z"), walker("w"), RcuCallbacks()], **config),
                    [never("use-after-free")])
    assert r.verdict == verdict
    if verdict == "violated":
        steps = [(t.thread, t.step) for t in r.trace]
        assert steps[-1] == ("w", "read") and ("z", "tlb_batch_pages_flush") in steps
        assert r.violation.message == "w reads pt0.e0, but pt0 is free"


def test_a_broadcast_flush_would_not_wait_for_gup_fast_which_is_why_kconfig_refuses_it():
    from ptmc.errors import PtmcError
    with pytest.raises(PtmcError, match="tlb_flush=broadcast needs mmu_gather_rcu_table_free=true"):
        model(gather_init, lambda: [], tlb_flush="broadcast", **NO_RCU)
