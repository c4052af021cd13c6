"""C integer arithmetic that runs on Python ints and on z3 bit-vectors alike.

A design's encoding (e.g. the 2022 pte_refcount bitfield) is written once with these helpers:
the explored model calls it on Python ints, the obligations call it on z3 bit-vectors of the
real width, so the code z3 proves is the code the explorer runs. The two traps they cover:
``>>`` on a z3 bit-vector is an *arithmetic* shift (C's ``>>`` on ``unsigned long`` is logical),
and Python ints never wrap (C's ``unsigned long`` does, modulo ``2**BITS_PER_LONG``).
"""
from __future__ import annotations


def lshr(value, shift: int):
    """``value >> shift`` for an unsigned C type."""
    if isinstance(value, int):
        return value >> shift
    import z3
    return z3.LShR(value, shift)


def wrap(value, bits: int):
    """``value`` as an unsigned C integer of ``bits`` bits (z3 bit-vectors already wrap)."""
    if isinstance(value, int):
        return value & ((1 << bits) - 1)
    if value.size() != bits:
        raise ValueError(f"a {value.size()}-bit value used as a {bits}-bit C integer")
    return value
