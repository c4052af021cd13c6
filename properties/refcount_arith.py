"""The arithmetic of the pte_refcount designs, proved by z3 at the kernel's real sizes.

Exploration runs the models with two entries per table; these obligations cover what that
cannot: the real PTRS_PER_PTE, the real field and word widths, and any number of threads.

2022 RFC (model/refcount2022.py, seed 000): ``unsigned long pte_refcount`` holds the mapped
count in bits 0-9 and the zero-page count in bits 10-19; track_pte_set()/track_pte_clear() add
and subtract PTE_MAPPED_OFFSET / PTE_ZERO_OFFSET. The word starts at 0 (pte_ref_init()) and
only ever changes by those offsets, so modulo 2^BITS_PER_LONG it is
``mapped * PTE_MAPPED_OFFSET + zero * PTE_ZERO_OFFSET``: the obligations quantify over every
such word, with 64-bit bit-vectors and the encoding code of the model itself (PteRef).

2021 series (model/refcount2021.py): ``atomic_t pte_refcount`` counts non-none entries plus the
references threads hold. Bound used for "any number of concurrent visitors the kernel allows":
every holder is a task (a reference is held across code that may be preempted, so CPUs do not
bound it), at most PID_MAX_LIMIT = 4,194,304 tasks exist on 64-bit (include/linux/threads.h),
and a task holds at most one visitor reference to a page plus at most PTRS_PER_PTE references
of entries it cleared and has not yet put (zap_pte_range() calls pte_put_many() after
pte_unmap_unlock()). So the true count is at most PTRS_PER_PTE + tasks * (1 + PTRS_PER_PTE).

Both models: the counting invariant declared by the model (its Counters) is inductive over the
effects its steps declare, for any PTRS_PER_PTE and any number of threads; exploration checks
that the code does what those effects say (see docs/z3.md).
"""
from pathlib import Path

import z3

from ptmc.model import Param, load_module
from ptmc.smt import Claim, inductive, obligation, stepwise

HERE = Path(__file__).resolve().parent
rc2022 = load_module(HERE / "../model/refcount2022.py", "model")

PTRS_PER_PTE = {"ptrs_per_pte": Param(512, "PTRS_PER_PTE: x86_64 with 4 KiB pages (the RFC hooks only x86); "
                                           "a table has at least one entry", minimum=1)}
ENCODING = {**PTRS_PER_PTE,
            "mapped_bits": Param(10, "PTE_MAPPED_BITS", minimum=1),
            "zero_bits": Param(10, "PTE_ZERO_BITS", minimum=1),
            "zero_shift": Param(10, "PTE_ZERO_SHIFT (PTE_MAPPED_SHIFT + PTE_MAPPED_BITS in the RFC)"),
            "bits_per_long": Param(64, "BITS_PER_LONG: the width of unsigned long pte_refcount", minimum=1)}
ATOMIC = {**PTRS_PER_PTE,
          "max_tasks": Param(4 * 1024 * 1024, "PID_MAX_LIMIT on 64-bit: the most tasks that can hold a reference",
                       minimum=1),
          "atomic_bits": Param(32, "bits of atomic_t", minimum=1),
          "below_int_max": Param(False, "also require the count to stay <= INT_MAX (atomic_read() never negative)")}


class Word:
    """A 2022 pte_refcount word with ``mapped`` and ``zero`` counts, as z3 bit-vectors."""

    def __init__(self, p, suffix=""):
        self.ref = rc2022.PteRef(p.mapped_bits, p.zero_bits, p.zero_shift, p.bits_per_long)
        self.mapped, self.zero = z3.BitVecs(f"mapped{suffix} zero{suffix}", p.bits_per_long)
        self.N = z3.BitVecVal(p.ptrs_per_pte, p.bits_per_long)
        self.value = self.mapped * self.ref.PTE_MAPPED_OFFSET + self.zero * self.ref.PTE_ZERO_OFFSET

    def counts_within(self):
        """Each count within [0, PTRS_PER_PTE]: also true inside track_pte_clear(), between
        its two subtractions, where zero may exceed mapped by one."""
        return [z3.ULE(self.mapped, self.N), z3.ULE(self.zero, self.N)]

    def code_invariant(self):
        """0 <= zero <= mapped <= PTRS_PER_PTE: zero-page entries are mapped entries."""
        return [z3.ULE(self.zero, self.mapped), z3.ULE(self.mapped, self.N)]

    def decoded(self, value=None):
        value = self.value if value is None else value
        return self.ref.pte_mapped_count(value), self.ref.pte_zero_count(value)

    def show(self, p, **more):
        m, z = self.decoded()
        return {"mapped": self.mapped, "zero": self.zero, "PTRS_PER_PTE": p.ptrs_per_pte,
                "pte_refcount": self.value, "pte_mapped_count": m, "pte_zero_count": z, **more}


@obligation(ENCODING)
def pte_refcount_decodes(p):
    """pte_mapped_count() and pte_zero_count() give back both counts, for every mapped and zero
    count from 0 to PTRS_PER_PTE."""
    w = Word(p)
    m, z = w.decoded()
    return Claim(given=w.counts_within(), goal=z3.And(m == w.mapped, z == w.zero),
                 show=w.show(p), hex=("pte_refcount",))


def _update(p, offset_name, count, other):
    w = Word(p)
    offset = getattr(w.ref, offset_name)
    mine, theirs = getattr(w, count), getattr(w, other)
    index = {"mapped": 0, "zero": 1}
    up, down = w.value + offset, w.value - offset
    decoded_up, decoded_down = w.decoded(up), w.decoded(down)
    goal = z3.And(
        z3.Implies(z3.ULT(mine, w.N), z3.And(decoded_up[index[count]] == mine + 1,
                                              decoded_up[index[other]] == theirs)),
        z3.Implies(mine != 0, z3.And(decoded_down[index[count]] == mine - 1,
                                     decoded_down[index[other]] == theirs)))
    more = {"added.pte_refcount": up, "added.pte_mapped_count": decoded_up[0],
            "added.pte_zero_count": decoded_up[1], "subtracted.pte_refcount": down,
            "subtracted.pte_mapped_count": decoded_down[0], "subtracted.pte_zero_count": decoded_down[1]}
    return Claim(given=w.counts_within(), goal=goal, show=w.show(p, **more),
                 hex=("pte_refcount", "added.pte_refcount", "subtracted.pte_refcount"))


@obligation(ENCODING)
def mapped_update_keeps_zero(p):
    """Adding PTE_MAPPED_OFFSET (mapped < PTRS_PER_PTE) or subtracting it (mapped > 0) moves the
    mapped count by one and never changes the zero count."""
    return _update(p, "PTE_MAPPED_OFFSET", "mapped", "zero")


@obligation(ENCODING)
def zero_update_keeps_mapped(p):
    """Adding PTE_ZERO_OFFSET (zero < PTRS_PER_PTE) or subtracting it (zero > 0) moves the
    zero count by one and never changes the mapped count."""
    return _update(p, "PTE_ZERO_OFFSET", "zero", "mapped")


@obligation(ENCODING)
def empty_test_exact(p):
    """free_ptes' "empty PTE page" test, !pte_mapped_count(), is true exactly when no entry is
    mapped, in every state of the code's invariant 0 <= zero <= mapped <= PTRS_PER_PTE."""
    w = Word(p)
    m, _ = w.decoded()
    return Claim(given=w.code_invariant(), goal=(m == 0) == (w.mapped == 0), show=w.show(p),
                 hex=("pte_refcount",))


@obligation(ENCODING)
def zero_test_exact(p):
    """free_ptes' "zero PTE page" test, pte_zero_count() == PTRS_PER_PTE, is true exactly when
    every entry maps the zero page, in every state of the code's invariant."""
    w = Word(p)
    _, z = w.decoded()
    return Claim(given=w.code_invariant(), goal=(z == w.N) == (w.zero == w.N), show=w.show(p),
                 hex=("pte_refcount",))


@obligation(ATOMIC)
def refcount2021_never_wraps(p):
    """The 2021 atomic_t pte_refcount cannot overflow into a false zero: with PTRS_PER_PTE
    entries and up to max_tasks tasks, each holding one visitor reference and up to
    PTRS_PER_PTE references of entries it cleared, the count stays below 2^32, so
    atomic_sub_and_test() and atomic_inc_not_zero() (pte_get_unless_zero()) see zero exactly
    when the true count is zero. With below_int_max it must also stay <= INT_MAX."""
    wide = 64  # the true count, computed without overflow
    entries, tasks, visitors, zapped = z3.BitVecs("entries tasks visitors zapped", wide)
    n, t_max = z3.BitVecVal(p.ptrs_per_pte, wide), z3.BitVecVal(p.max_tasks, wide)
    given = [z3.ULE(entries, n), z3.ULE(tasks, t_max), z3.ULE(visitors, tasks),
             z3.ULE(zapped, tasks * n)]
    count = entries + visitors + zapped
    atomic = z3.Extract(p.atomic_bits - 1, 0, count)  # what atomic_add() & co. leave in the word
    goal = (atomic == 0) == (count == 0)
    if p.below_int_max:
        goal = z3.And(goal, atomic >= 0)  # signed: atomic_read() is an int
    return Claim(given=given, goal=goal,
                 show={"entries": entries, "tasks": tasks, "visitor refs": visitors,
                       "zapped entry refs": zapped, "true count": count, "pte_refcount": atomic,
                       "PTRS_PER_PTE": p.ptrs_per_pte},
                 hex=("pte_refcount",))


OBLIGATIONS = [
    pte_refcount_decodes,
    mapped_update_keeps_zero,
    zero_update_keeps_mapped,
    empty_test_exact,
    zero_test_exact,
    inductive("../model/refcount2022.py"),
    stepwise("../model/refcount2022.py", "refcount2022_frees_only_empty_or_zero",
             "a step that frees a PTE page (free_ptes, or a fault's unpublished page) does so only "
             "when every entry is none or maps the zero page",
             lambda pre, post: z3.Implies(z3.And(pre.live == 1, post.live == 0), pre.entries == pre.zeroes)),
    refcount2021_never_wraps,
    inductive("../model/refcount2021.py"),
    stepwise("../model/refcount2021.py", "refcount2021_no_resurrection",
             "no step raises the pte_refcount of an allocated page from zero: pte_get_unless_zero() "
             "fails there, and pte_get() needs a reference the caller already holds",
             lambda pre, post: z3.Implies(z3.And(pre.live == 1, pre.refcount == 0), post.refcount == 0)),
]
