"""GUP-fast (mm/gup.c: gup_fast(), gup_fast_pmd_range(), gup_fast_pte_range(), gup_fast_pmd_leaf(),
try_grab_folio_fast(), gup_put_folio()): pin a user page without any lock.

gup_fast() disables IRQs (local_irq_save()): that holds off IPIs, so an IPI TLB flush and
tlb_remove_table_sync_one() wait for it, and since the RCU flavour consolidation it is an RCU
read-side section, so call_rcu() waits too. gup_fast_pmd_range() reads the pmd once
(pmdp_get_lockless()); a huge pmd goes to gup_fast_pmd_leaf(), a table to gup_fast_pte_range(),
which maps the table from that local copy (pte_offset_map(&pmd): no second read of the pmd) and
reads the entry. A present, normal entry's folio is grabbed (try_grab_folio_fast(): FOLL_PIN adds
GUP_PIN_COUNTING_BIAS to a small folio's refcount, a reference and a pincount to a large one,
then a full barrier); then the pmd and the entry are read again, and if either changed the pin
is dropped (gup_put_folio()) and GUP-fast fails (the caller falls back to the slow path). The
pmd half of that recheck is 70cbc3cc78a9 (protocol.md K2): a collapse clears the pmd before it
checks the pages' references, and only the pmd tells a walker of the unlinked table that it is
stale.

What GUP-fast returns, the caller keeps pinned for as long as it likes (a DMA): the thread then
holds the pin until its ``unpin_user_page`` step. The ghost check ``gup-stale-page`` (protocol.md
A7) says that a page GUP returned is still the page mapped there, or GUP backed off: a folio that
was discarded (freed, or replaced by a copy: a collapse) while GUP-fast holds a pin it returned is
a page whose writes are lost.

Left out: gup_fast()'s write_protect_seq retry for FOLL_PIN (it only matters against fork()'s
copy_page_range(), which no model has), and the checks that only send GUP-fast to the slow path
for a VMA or page kind the models do not have (protnone, devmap, the longterm zone check,
gup_must_unshare() of a shared anonymous page: every anonymous page here is exclusive).
"""
from ..model import DONE, Guard, Thread, step
from ..kernel.folio import (folio_test_discarded, gup_put_folio, page_folio, try_grab_folio_fast)
from ..kernel.irq import local_irq_restore, local_irq_save
from ..kernel.pgtable import pmd_same, pmd_table, pmd_trans_huge, pmdp_get_lockless, ptep_get_lockless
from ..kernel.pte import is_zero_pte, pte_present
from ..kernel.rcu import rcu_read_lock, rcu_read_unlock

EVENTS = {
    "gup-stale-page": "GUP-fast returned a pinned page that is no longer the page mapped there: it "
                      "was discarded (freed, or replaced by a copy such as a THP collapse) while GUP "
                      "holds the pin, so whatever is written through the pin is lost (protocol.md A7, K2)",
}


def gup_check_result(s, head: int, when: str) -> None:
    """The ghost check of protocol.md A7 (not a kernel access)."""
    folio = page_folio(s, head)
    if folio is not None and folio_test_discarded(s, folio):
        s.report("gup-stale-page", f"{s.actor} {when} d{head}, which was discarded (freed or replaced "
                                   "by a copy) while GUP-fast held its pin")


class GupFast(Thread):
    """pin_user_pages_fast() (FOLL_PIN) of entry 0 of the one pmd slot: IRQs off, lockless pmd
    and pte reads, the grab, the rechecks, the back-off; then the caller holds the pin until
    unpin_user_page()."""

    pmdval: object = None  # the pmd read locklessly: the local copy gup_fast_pte_range() maps
    pte: object = None  # the entry read locklessly
    folio: int = 0  # the head of the folio grabbed (0: none)
    pinned: int = 0  # the head of the folio GUP-fast returned, pinned (0: none)

    gup_fast_irqs_off = Guard(
        "gup_fast(): local_irq_save() holds off IPIs (an IPI TLB flush, tlb_remove_table_sync_one()) and "
        "is an RCU read-side section: the tables it walks without any lock are not freed under it",
        without="walk with IRQs enabled (pte_offset_map()'s rcu_read_lock() only around the entry)")
    gup_fast_pmd_recheck = Guard(
        "gup_fast_pte_range() (70cbc3cc78a9): after grabbing the folio, a pmd that changed means the "
        "table was unlinked (a collapse, reclaim) and the entry read through it may be stale: a "
        "collapse checks the page references only after clearing the pmd",
        without="recheck only the entry after the grab (the code before 70cbc3cc78a9)",
        against="an anon collapse (collapse_huge_page()) with a TLB flush that sends no IPI")
    gup_fast_pte_recheck = Guard(
        "gup_fast_pte_range(): after grabbing the folio, an entry that changed was unmapped (zap, "
        "collapse): the grab raced with the unmap and the page may be freed or reused",
        without="recheck only the pmd after the grab",
        against="a zap clearing the entry after GUP-fast read it")

    gup_fast_leaf_recheck = Guard(
        "gup_fast_pmd_leaf(): after grabbing the THP, a pmd that changed means the huge pmd was zapped, "
        "split or replaced, and the folio grabbed may no longer be the one mapped there",
        without="return the THP without reading the pmd again",
        against="a zap or split of the huge pmd (huge_pmd, thp)")

    pin = True  # FOLL_PIN (pin_user_pages_fast()); False: FOLL_GET (get_user_pages_fast())

    @step("mm/gup.c:gup_fast_pmd_range")
    def gup_fast_pmd(self, s):
        if self.gup_fast_irqs_off:
            local_irq_save(s)  # gup_fast(), folded into the pmd read
        self.pmdval = pmdp_get_lockless(s)
        if pmd_trans_huge(self.pmdval):
            return "gup_fast_pmd_leaf"
        if not pmd_table(self.pmdval):  # none, or a migration entry: not present
            if self.gup_fast_irqs_off:
                local_irq_restore(s)
            return DONE

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_pte(self, s):
        rcu_read_lock(s)  # pte_offset_map() of the local pmd copy: no second pmd read
        self.pte = ptep_get_lockless(s, self.pmdval, 0)
        # Not present, or pte_special() (the zero page): GUP-fast gives up, the slow path decides.
        if not pte_present(self.pte) or is_zero_pte(self.pte):
            return "gup_fast_pte_unmap"

    @step("mm/gup.c:try_grab_folio_fast")
    def gup_fast_grab(self, s):
        # folio_ref_try_add() fails on a zero refcount (the folio is being freed); the pin (the
        # bias, or the pincount) and the barrier after it are folded into this atomic step.
        folio = page_folio(s, self.pte[0])
        if folio is None or not try_grab_folio_fast(s, folio, self.pin):
            return "gup_fast_pte_unmap"
        self.folio = folio.head
        if self.gup_fast_pmd_recheck:
            return "gup_fast_recheck_pmd"
        return "gup_fast_recheck_pte" if self.gup_fast_pte_recheck else "gup_fast_pte_unmap"

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_recheck_pmd(self, s):
        # pmd_val(pmd) != pmd_val(pmdp_get(pmdp)): the table may have been unlinked.
        if not pmd_same(self.pmdval, pmdp_get_lockless(s)):
            return "gup_fast_back_off"
        if not self.gup_fast_pte_recheck:
            return "gup_fast_pte_unmap"

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_recheck_pte(self, s):
        # pte_val(pte) != pte_val(ptep_get(ptep)), through the table mapped from the local copy.
        if ptep_get_lockless(s, self.pmdval, 0) != self.pte:
            return "gup_fast_back_off"
        return "gup_fast_pte_unmap"

    @step("mm/gup.c:gup_put_folio")
    def gup_fast_back_off(self, s):
        gup_put_folio(s, page_folio(s, self.folio), self.pin)
        self.folio = 0
        if pmd_trans_huge(self.pmdval):
            return "gup_fast_done"

    @step("mm/gup.c:gup_fast_pte_range")
    def gup_fast_pte_unmap(self, s):
        rcu_read_unlock(s)  # pte_unmap()
        return "gup_fast_done"

    @step("mm/gup.c:gup_fast_pmd_leaf")
    def gup_fast_pmd_leaf(self, s):
        folio = page_folio(s, self.pmdval[0])
        if folio is None or not try_grab_folio_fast(s, folio, self.pin):
            return "gup_fast_done"
        self.folio = folio.head
        if not self.gup_fast_leaf_recheck:
            return "gup_fast_done"

    @step("mm/gup.c:gup_fast_pmd_leaf")
    def gup_fast_pmd_leaf_recheck(self, s):
        # pmd_val(orig) != pmd_val(pmdp_get(pmdp)): the huge pmd was split or zapped.
        if not pmd_same(self.pmdval, pmdp_get_lockless(s)):
            return "gup_fast_back_off"
        return "gup_fast_done"

    @step("mm/gup.c:gup_fast")
    def gup_fast_done(self, s):
        if self.gup_fast_irqs_off:
            local_irq_restore(s)
        if not self.folio:
            return DONE
        self.pinned, self.folio = self.folio, 0
        gup_check_result(s, self.pinned, "returns")

    @step("mm/gup.c:unpin_user_page")
    def unpin_user_page(self, s):
        # The caller is done with the page (its DMA finished): what it wrote must have gone to
        # the page mapped there.
        gup_check_result(s, self.pinned, "unpins")
        gup_put_folio(s, page_folio(s, self.pinned), self.pin)
        return DONE
