"""The lock set: spin_lock_nested, held locks, double_pt_lock, rwsems (mmap_lock, i_mmap_rwsem,
anon_vma) with trylock and downgrade, the per-VMA lock, the folio lock, sleeping in atomic
context."""
from __future__ import annotations

import pytest

from conftest import reachable
from ptmc import DONE, Model, Thread, step
from ptmc.errors import ModelError
from ptmc.explore import check_model
from ptmc.kernel.folio import declare_folio, folio_lock, folio_trylock, folio_unlock, page_folio
from ptmc.kernel.mmap_lock import (mmap_lock_init, mmap_read_lock, mmap_read_unlock, mmap_write_downgrade,
                                   mmap_write_lock, mmap_write_unlock)
from ptmc.kernel.pgtable import PageTables, pmd_populate, pte_alloc_one
from ptmc.kernel.rcu import rcu_init, rcu_read_lock, rcu_read_unlock
from ptmc.kernel.rwsem import (down_read, down_read_trylock, down_write, down_write_trylock,
                               downgrade_write, rwsem_init, up_read, up_write)
from ptmc.kernel.spinlock import (DoublePtLock, double_pt_unlock, held_locks, holds, spin_lock,
                                  spin_lock_nested, spin_unlock, spinlock_init)
from ptmc.kernel.vma import declare_vma, vma_end_read, vma_start_read, vma_start_write
from ptmc.properties import deadlock_free, invariant, never


def model(init, threads, **params):
    class M(Model):
        name = "locks"

        def init(self, mem):
            init(mem)

        def threads(self):
            return threads()
    return M(params)


# --- spinlocks ------------------------------------------------------------------------------

def test_spin_lock_nested_and_held_locks():
    class Nest(Thread):
        @step("x.c:outer")
        def outer(self, s):
            spin_lock(s, "pml")

        @step("x.c:inner")
        def inner(self, s):
            spin_lock_nested(s, "ptl")
            s.held = tuple(held_locks(s))
            s.holds = (holds(s, "pml"), holds(s, "other"))

        @step("x.c:again")
        def again(self, s):
            spin_lock_nested(s, "ptl")  # the same lock: nesting annotations do not make it legal

    def init(mem):
        for name in ("pml", "ptl", "other"):
            spinlock_init(mem, name)
        mem.held = mem.holds = None
    r = check_model(model(init, lambda: [Nest("t")]), [never("self-deadlock")])
    assert r.verdict == "violated" and r.violation.message == "t takes ptl, which it already holds"
    assert r.trace[1].changes["held"] == ("none", "('pml', 'ptl')")
    assert r.trace[1].changes["holds"] == ("none", "(True, False)")


class Mover(DoublePtLock):
    """Locks (first, second) with double_pt_lock(), touches both, unlocks."""

    def __init__(self, name, first, second):
        super().__init__(name)
        self.first, self.second = first, second

    @step("mm/userfaultfd.c:move_pages_pte")
    def start(self, s):
        return self.double_pt_lock(self.first, self.second, then="move")

    @step("mm/userfaultfd.c:move_pages_pte")
    def move(self, s):
        s.inside += 1

    @step("mm/userfaultfd.c:double_pt_unlock")
    def unlock(self, s):
        s.inside -= 1
        double_pt_unlock(s, self.first, self.second)
        return DONE


def pt_locks(mem):
    PageTables(mem, pages=2, entries=1)
    pmd_populate(mem, pte_alloc_one(mem))
    pte_alloc_one(mem)
    mem.inside = 0


@pytest.mark.parametrize("split", [True, False])
def test_double_pt_lock_orders_by_address_so_opposite_movers_never_deadlock(split):
    from ptmc.kernel.pgtable import pt
    a, b = (pt(0, 0).ptl, pt(1, 0).ptl) if split else ("page_table_lock", "page_table_lock")
    r = check_model(model(pt_locks, lambda: [Mover("m1", a, b), Mover("m2", b, a)], split_ptlocks=split),
                    [deadlock_free(), invariant(lambda s: s.inside <= 1), never("self-deadlock")])
    # Split: both lock pt0.ptl first. Not split: both ptls are mm->page_table_lock, taken once.
    # Hand count. A thread is at start, first, second, move, unlock or done (the procedure's locals
    # stay set from first until done). Split: it holds pt0.ptl at second, move and unlock, so at
    # most one thread is there: 3*3 states with both outside (start, first, done), 2*3*3 with one
    # inside: 27. Not split: one lock, held at move and unlock: 9 + 2*2*3 = 21.
    assert (r.verdict, r.states) == ("holds", 27 if split else 21)


def test_locking_in_argument_order_instead_deadlocks():
    class Naive(Mover):
        def double_pt_lock(self, ptl1, ptl2, then):  # no ordering: ABBA
            return self.call(DoublePtLock, then=then, dpl_first=ptl1, dpl_second=ptl2)

    from ptmc.kernel.pgtable import pt
    a, b = pt(0, 0).ptl, pt(1, 0).ptl
    r = check_model(model(pt_locks, lambda: [Naive("m1", a, b), Naive("m2", b, a)]), [deadlock_free()])
    assert r.verdict == "violated"
    assert r.violation.message == ("no thread can move; unfinished: m1 at double_pt_lock_second, "
                                   "m2 at double_pt_lock_second")


# --- rwsems ---------------------------------------------------------------------------------

class Writer(Thread):
    """Writes x under the write lock, downgrades, checks nobody wrote in between, reads, unlocks."""

    @step("x.c:down_write")
    def lock(self, s):
        down_write(s, "sem")
        s.x = "w"

    @step("x.c:downgrade_write")
    def downgrade(self, s):
        downgrade_write(s, "sem")

    @step("x.c:read")
    def read(self, s):
        s.saw = s.x

    @step("x.c:up_read")
    def unlock(self, s):
        up_read(s, "sem")
        return DONE


class OtherWriter(Thread):
    @step("x.c:down_write")
    def lock(self, s):
        down_write(s, "sem")
        s.x = "o"

    @step("x.c:up_write")
    def unlock(self, s):
        up_write(s, "sem")
        return DONE


class ReaderT(Thread):
    @step("x.c:down_read")
    def lock(self, s):
        down_read(s, "sem")
        s.readers_with_w = s.readers_with_w or s.sem[1] != (self.tid,)

    @step("x.c:up_read")
    def unlock(self, s):
        up_read(s, "sem")
        return DONE


def sem_init(mem):
    rwsem_init(mem, "sem")
    mem.x = None
    mem.saw = None
    mem.readers_with_w = False


def test_rwsem_downgrade_lets_readers_in_but_no_writer():
    m = model(sem_init, lambda: [Writer("w"), OtherWriter("o"), ReaderT("r")])
    r = check_model(m, [invariant(lambda s: s.saw in (None, "w") or "a writer got in between the downgrade"),
                        deadlock_free()])
    assert (r.verdict, r.states) == ("holds", 45)  # the explorer's count: x, saw and the flag vary
    states = reachable(model(sem_init, lambda: [Writer("w"), OtherWriter("o"), ReaderT("r")]))
    # after the downgrade the reader shares the lock with the (former) writer
    assert any(st["w.pc"] in ("read", "unlock") and st["r.pc"] == "unlock" for st in states)
    assert any(st["readers_with_w"] for st in states)


def test_without_downgrade_a_writer_gets_in_between():
    class Releasing(Writer):
        @step("x.c:downgrade_write")
        def downgrade(self, s):
            up_write(s, "sem")  # up_write(); down_read() instead of downgrade_write()

        @step("x.c:down_read")
        def relock(self, s):
            down_read(s, "sem")

        @step("x.c:read")
        def read(self, s):
            s.saw = s.x

        @step("x.c:up_read")
        def unlock(self, s):
            up_read(s, "sem")
            return DONE

    r = check_model(model(sem_init, lambda: [Releasing("w"), OtherWriter("o")]),
                    [invariant(lambda s: s.saw in (None, "w") or "a writer got in between")])
    assert r.verdict == "violated"
    steps = [(t.thread, t.step) for t in r.trace]
    assert steps.index(("w", "downgrade")) < steps.index(("o", "lock")) < steps.index(("w", "relock"))
    assert steps[-1] == ("w", "read")


def test_rwsem_trylocks_never_block():
    class Try(Thread):
        @step("x.c:try")
        def attempt(self, s):
            s.got = (down_read_trylock(s, "sem"), down_write_trylock(s, "sem"))
            return DONE

    class Hold(Thread):
        @step("x.c:hold")
        def hold(self, s):
            down_write(s, "sem")

    def init(mem):
        rwsem_init(mem, "sem")
        mem.got = None
    states = reachable(model(init, lambda: [Hold("h"), Try("t")]))
    # free: the read trylock succeeds, then the write trylock fails (we hold it for read);
    # held for write: both fail
    assert {st["got"] for st in states if st["t.pc"] == "done"} == {(True, False), (False, False)}


def test_rwsem_misuse_is_reported():
    class Twice(Thread):
        @step("x.c:one")
        def one(self, s):
            down_read(s, "sem")

        @step("x.c:two")
        def two(self, s):
            down_read(s, "sem")  # a waiting writer would make this a deadlock

    r = check_model(model(sem_init, lambda: [Twice("t")]), [never("self-deadlock")])
    assert r.violation.message == "t down_read()s sem, which it already holds for read"

    class Unheld(Thread):
        @step("x.c:up")
        def up(self, s):
            up_write(s, "sem")

    r = check_model(model(sem_init, lambda: [Unheld("t")]), [never("bad-unlock")])
    assert r.violation.message == "t up_write()s sem, which it does not hold for write"


# --- mmap_lock and the per-VMA lock -------------------------------------------------------------

def vma_init(mem):
    PageTables(mem, pages=1, entries=1)
    mmap_lock_init(mem)
    declare_vma(mem, "vma")
    mem.read_failed = False


def test_vma_write_lock_excludes_readers_until_mmap_write_unlock_or_downgrade():
    from ptmc.kernel.vma import Vma
    vma = Vma("vma", slots=("pmd",))

    class Writer(Thread):
        @step("mm/mmap.c:mmap_write_lock")
        def lock(self, s):
            mmap_write_lock(s)

        @step("mm/mmap_lock.c:vma_start_write")
        def vma_write(self, s):
            vma_start_write(s, vma)  # waits for readers to leave

        @step("mm/mmap.c:mmap_write_downgrade")
        def downgrade(self, s):
            mmap_write_downgrade(s)  # vma_end_write_all()

        @step("mm/mmap.c:mmap_read_unlock")
        def unlock(self, s):
            mmap_read_unlock(s)
            return DONE

    class Faulter(Thread):
        @step("mm/memory.c:lock_vma_under_rcu")
        def lock_vma(self, s):
            if not vma_start_read(s, vma):
                s.read_failed = True  # falls back to mmap_read_lock()
                return DONE

        @step("mm/memory.c:vma_end_read")
        def unlock(self, s):
            vma_end_read(s, vma)
            return DONE

    def no_reader_while_write_locked(s):
        """no VMA reader inside while the VMA is write-locked"""
        return not (s.thread("f").pc == "unlock" and s.load("vma.lock") and s.load("vma.lock")[0] == "write")

    r = check_model(model(vma_init, lambda: [Writer("w"), Faulter("f")]),
                    [invariant(no_reader_while_write_locked), deadlock_free()])
    # Hand count: the faulter is at lock_vma, unlock (holding the VMA for read) or done, having
    # failed or not. Writer at lock or vma_write: 3 faulter states (nothing failed yet); at
    # downgrade (VMA write-locked): lock_vma, done, done-failed (no reader inside: it waited);
    # at unlock or done: all 4. 3 + 3 + 3 + 4 + 4 = 17.
    assert (r.verdict, r.states) == ("holds", 17)
    states = reachable(model(vma_init, lambda: [Writer("w"), Faulter("f")]))
    assert any(st["read_failed"] for st in states)  # write-locked: the reader fell back
    assert any(st["w.pc"] == "vma_write" and st["f.pc"] == "unlock" for st in states)  # writer waits


def test_vma_start_write_needs_mmap_write_lock():
    from ptmc.kernel.vma import Vma

    class Bad(Thread):
        @step("mm/mmap_lock.c:vma_start_write")
        def w(self, s):
            vma_start_write(s, Vma("vma", slots=("pmd",)))

    with pytest.raises(ModelError, match=r"vma_start_write\(vma\) without mmap_lock held for write"):
        check_model(model(vma_init, lambda: [Bad("t")]), [])


# --- the folio lock and sleeping in atomic context ------------------------------------------------

def folio_init(mem):
    rcu_init(mem)
    spinlock_init(mem, "ptl")
    declare_folio(mem, 1, fields=("lock",))
    declare_folio(mem, 2, fields=("lock",))


class FolioLocker(Thread):
    def __init__(self, name, first, second):
        super().__init__(name)
        self.first, self.second = first, second

    @step("mm/filemap.c:folio_lock")
    def lock_first(self, s):
        folio_lock(s, page_folio(s, self.first))

    @step("mm/filemap.c:folio_lock")
    def lock_second(self, s):
        folio_lock(s, page_folio(s, self.second))

    @step("mm/filemap.c:folio_unlock")
    def unlock(self, s):
        folio_unlock(s, page_folio(s, self.second))
        folio_unlock(s, page_folio(s, self.first))
        return DONE


def test_folio_lock_is_a_sleeping_lock_and_deadlocks_are_found():
    ok = check_model(model(folio_init, lambda: [FolioLocker("a", 1, 2), FolioLocker("b", 1, 2)]),
                     [deadlock_free(), never("sleep-in-atomic")])
    # Hand count: folio 1 is held at lock_second and unlock, so one thread at most is there:
    # 2*2 states with both at lock_first or done, 2*2*2 with one inside: 12.
    assert (ok.verdict, ok.states) == ("holds", 12)
    bad = check_model(model(folio_init, lambda: [FolioLocker("a", 1, 2), FolioLocker("b", 2, 1)]), [deadlock_free()])
    assert bad.verdict == "violated"
    assert bad.violation.message == "no thread can move; unfinished: a at lock_second, b at lock_second"


def test_folio_trylock_and_self_deadlock():
    class Again(Thread):
        @step("x.c:lock")
        def lock(self, s):
            folio_lock(s, page_folio(s, 1))
            s.tried = folio_trylock(s, page_folio(s, 1))

        @step("x.c:again")
        def again(self, s):
            folio_lock(s, page_folio(s, 1))

    def init(mem):
        folio_init(mem)
        mem.tried = None
    r = check_model(model(init, lambda: [Again("t")]), [never("self-deadlock")])
    assert r.violation.message == "t locks folio d1, which it has locked already"
    assert r.trace[0].changes["tried"] == ("none", "false")


@pytest.mark.parametrize("context, preempt_rcu, reported", [
    ("spinlock", True, "t locks folio d1 holding spinlock ptl"),
    ("rcu", False, "t locks folio d1 inside rcu_read_lock() (preemption disabled: CONFIG_PREEMPT_RCU is off)"),
    ("rcu", True, "t locks folio d1 inside rcu_read_lock() (illegal context switch in an RCU read-side "
                  "critical section)"),
    ("none", True, None),
])
def test_sleeping_lock_in_atomic_context(context, preempt_rcu, reported):
    """might_sleep() fires even when the folio lock is free."""
    class Atomic(Thread):
        @step("x.c:enter")
        def enter(self, s):
            if context == "spinlock":
                spin_lock(s, "ptl")
            elif context == "rcu":
                rcu_read_lock(s)

        @step("mm/filemap.c:folio_lock")
        def lock(self, s):
            folio_lock(s, page_folio(s, 1))

        @step("x.c:leave")
        def leave(self, s):
            folio_unlock(s, page_folio(s, 1))
            if context == "spinlock":
                spin_unlock(s, "ptl")
            elif context == "rcu":
                rcu_read_unlock(s)

    r = check_model(model(folio_init, lambda: [Atomic("t")], preempt_rcu=preempt_rcu),
                    [never("sleep-in-atomic")])
    if reported is None:
        assert (r.verdict, r.states) == ("holds", 4)  # enter, lock, leave, done
    else:
        assert r.verdict == "violated" and r.violation.message == reported


def test_mmap_lock_wrappers_share_and_exclude():
    class Rd(Thread):
        @step("x.c:lock")
        def lock(self, s):
            mmap_read_lock(s)

        @step("x.c:unlock")
        def unlock(self, s):
            mmap_read_unlock(s)
            return DONE

    class Wr(Thread):
        @step("x.c:lock")
        def lock(self, s):
            mmap_write_lock(s)

        @step("x.c:unlock")
        def unlock(self, s):
            mmap_write_unlock(s)
            return DONE

    def excl(s):
        """a writer is alone"""
        w = s.thread("w").pc == "unlock"
        return not (w and (s.thread("r1").pc == "unlock" or s.thread("r2").pc == "unlock"))

    r = check_model(model(vma_init, lambda: [Rd("r1"), Rd("r2"), Wr("w")]), [invariant(excl), deadlock_free()])
    # Hand count: writer at lock or done: the readers anywhere (3*3) = 18; writer holding it:
    # both readers at lock or done (2*2) = 4. 22.
    assert (r.verdict, r.states) == ("holds", 22)
