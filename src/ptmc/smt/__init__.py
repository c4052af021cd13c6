"""z3 obligations: what enumeration of a small instance cannot show, proved for real sizes.

- ``obligations``: the Obligation type, its result (proved / failed with a counterexample /
  inconclusive), and ``@obligation`` for claims written as a function of parameters.
- ``counters``: what a model counts (``Counters``), measured per PTE page on a state.
- ``effects``: the effects steps declare on those counters, and the proofs over them
  (``inductive``: the counting invariant is inductive for any PTRS_PER_PTE and any number of
  threads; ``stepwise``: any other claim about every step).
- ``link``: the explorer's check that each concrete step changes the counters as declared.
- ``bits``: C unsigned arithmetic written once for Python ints and z3 bit-vectors.
"""
from .counters import Counters, PageView
from .effects import inductive, stepwise
from .link import counting_invariant
from .obligations import (DEFAULT_TIMEOUT, FAILED, PROVED, Claim, Obligation, ObligationResult,
                          obligation)

__all__ = ["Claim", "Counters", "DEFAULT_TIMEOUT", "FAILED", "Obligation", "ObligationResult", "PROVED",
           "PageView", "counting_invariant", "inductive", "obligation", "stepwise"]
