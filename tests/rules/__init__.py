"""Rule models: for each rule of the explorer (explore/, state.py) and of every kernel primitive
(kernel/), a small model whose verdict depends on that rule, with its exact expected outcome.

tests/test_rules.py checks every case; bench/mutation.py runs them as part of its verdict
corpus, so that a mutant breaking one of these rules changes at least one verdict (not only a
unit test). One module per room: ``engine`` (BFS, successors, state), ``locks`` (spinlock,
mmap_lock), ``rcu`` (RCU, IRQ/IPI), ``pgtable`` (page-table pages, TLB, atomics), ``gather``
(mmu_gather).
"""
from . import engine, gather, locks, pgtable, rcu
from .case import Case

CASES: list[Case] = [*engine.CASES, *locks.CASES, *rcu.CASES, *pgtable.CASES, *gather.CASES]

__all__ = ["CASES", "Case"]
