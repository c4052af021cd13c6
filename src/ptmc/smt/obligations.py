"""z3 obligations: claims a property file makes next to its explored checks, proved by z3.

An obligation is proved (z3 shows the claim holds for every value), failed (z3 found values
where it does not: the counterexample, printed in kernel terms) or inconclusive (the solver
timed out or gave up). A time-out is never reported as proved.

A property file declares its obligations in ``OBLIGATIONS``; the simplest kind is a function
returning a ``Claim``:

    ENCODING = {"ptrs_per_pte": Param(512, "PTRS_PER_PTE")}

    @obligation(ENCODING)
    def decode(p):
        '''pte_mapped_count() gives back the mapped count.'''
        mapped = z3.BitVec("mapped", 64)
        return Claim(given=[z3.ULE(mapped, p.ptrs_per_pte)], goal=..., show={"mapped": mapped})
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace

from ..errors import PtmcError
from ..model import Param
from ..result import HOLDS, INCONCLUSIVE, VIOLATED

PROVED, FAILED = "proved", "failed"  # and INCONCLUSIVE, shared with results
VACUOUS = "vacuous"  # the assumptions are unsatisfiable: refused, never reported as proved
DEFAULT_TIMEOUT = 60.0  # seconds per obligation


@dataclass
class Claim:
    """What z3 must prove: ``given`` implies ``goal``. ``show`` names the values a counterexample
    prints, in kernel terms and in this order; names in ``hex`` print in hexadecimal."""

    goal: object
    given: list = field(default_factory=list)
    show: dict = field(default_factory=dict)
    hex: tuple = ()


@dataclass
class ObligationResult:
    name: str
    description: str
    status: str  # proved | failed | inconclusive
    seconds: float
    params: dict = field(default_factory=dict)
    counterexample: dict = field(default_factory=dict)  # name -> int or bool, in `show` order
    detail: str = ""  # which case failed, or why the solver gave up
    hex: tuple = ()

    def counterexample_text(self) -> str:
        """``mapped=1024, zero=0, PTRS_PER_PTE=1024``; values after a step follow a ``;``."""
        before = [(k, v) for k, v in self.counterexample.items() if not k.startswith("after.")]
        after = [(k[len("after."):], v) for k, v in self.counterexample.items() if k.startswith("after.")]
        text = ", ".join(f"{k}={self._show(k, v)}" for k, v in before)
        if after:
            text += "; after the step: " + ", ".join(f"{k}={self._show(k, v)}" for k, v in after)
        return text

    def _show(self, name, value) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return hex(value) if name in self.hex and isinstance(value, int) else str(value)

    def to_dict(self) -> dict:
        out = {"name": self.name, "description": self.description, "status": self.status,
               "seconds": round(self.seconds, 3), "params": self.params}
        if self.counterexample:
            out["counterexample"] = dict(self.counterexample)
        if self.detail:
            out["detail"] = self.detail
        return out


class Obligation:
    """Something z3 proves. Subclasses yield one or more ``(label, Claim)`` from ``claims``."""

    name: str
    description: str
    params: dict  # name -> Param: the settings (``--set name=value``) it takes

    def bind(self, *, base=None, model_path=None, model_params=None) -> None:
        """Resolve what the property file left relative (model paths) before running."""

    def variants_known(self) -> set:
        """Variants this obligation understands (those of the model it reasons about)."""
        return set()

    def claims(self, values: SimpleNamespace, variants):
        raise NotImplementedError

    def run(self, params: dict | None = None, *, variants=(), timeout: float | None = None) -> ObligationResult:
        """Prove every claim; the first failing one is the counterexample."""
        params = params or {}
        values = {n: p.parse(n, params.get(n, p.default)) for n, p in self.params.items()}
        budget = DEFAULT_TIMEOUT if timeout is None else timeout
        start = time.monotonic()
        unknown = []
        try:
            for label, claim in self.claims(SimpleNamespace(**values), list(variants)):
                left = budget - (time.monotonic() - start)
                status, cex, reason = solve(claim, left)
                if status == VACUOUS:
                    settings = ", ".join(f"{n}={v}" for n, v in values.items()) or "no parameters"
                    raise PtmcError(f"obligation {self.name}{f' ({label})' if label else ''} is vacuous "
                                    f"with {settings}: no value satisfies its assumptions, so it would "
                                    "prove anything")
                if status == FAILED:
                    return ObligationResult(self.name, self.description, FAILED, time.monotonic() - start,
                                            values, cex, label, tuple(claim.hex))
                if status == INCONCLUSIVE:
                    unknown.append(f"{label}: {reason}" if label else reason)
        except (PtmcError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - a bug in an obligation: say which
            raise PtmcError(f"obligation {self.name} raised {type(e).__name__}: {e}") from None
        seconds = time.monotonic() - start
        if unknown:
            return ObligationResult(self.name, self.description, INCONCLUSIVE, seconds, values,
                                    detail="; ".join(unknown))
        return ObligationResult(self.name, self.description, PROVED, seconds, values)


def solve(claim: Claim, timeout: float):
    """(status, counterexample, reason) for one claim, within ``timeout`` seconds."""
    import z3
    if timeout <= 0:
        return INCONCLUSIVE, {}, "timeout"
    solver = z3.Solver()
    solver.set("timeout", max(1, int(timeout * 1000)))
    solver.add(*claim.given)
    solver.add(z3.Not(claim.goal))
    answer = solver.check()
    if answer == z3.unsat:
        # A proof is only worth something if the assumptions can hold at all.
        assumptions = z3.Solver()
        assumptions.set("timeout", max(1, int(timeout * 1000)))
        assumptions.add(*claim.given)
        if assumptions.check() == z3.unsat:
            return VACUOUS, {}, ""
        return PROVED, {}, ""
    if answer == z3.sat:
        model = solver.model()
        return FAILED, {name: _value(model, term) for name, term in claim.show.items()}, ""
    reason = solver.reason_unknown() or "unknown"
    if reason == "interrupted from keyboard":  # z3 took the SIGINT itself: pass it on
        raise KeyboardInterrupt
    return INCONCLUSIVE, {}, reason


def _value(model, term):
    import z3
    if isinstance(term, (bool, int)):
        return term
    value = model.eval(term, model_completion=True)
    if z3.is_true(value) or z3.is_false(value):
        return z3.is_true(value)
    return value.as_long()


class FunctionObligation(Obligation):
    """An obligation written as a function of its parameters returning a Claim (or several)."""

    def __init__(self, fn, params: dict, name: str | None = None):
        self.fn, self.params = fn, params
        self.name = name or fn.__name__
        self.description = " ".join((fn.__doc__ or self.name).strip().split("\n\n")[0].split())

    def claims(self, values, variants):
        claim = self.fn(values)
        if isinstance(claim, Claim):
            yield "", claim
        else:
            yield from claim  # (label, Claim) pairs


def obligation(*params: dict, name: str | None = None):
    """Decorate ``fn(p) -> Claim``; ``params`` are dicts of ``Param`` it reads as ``p.<name>``."""
    merged = {}
    for group in params:
        for n, p in group.items():
            if not isinstance(p, Param):
                raise PtmcError(f"obligation parameter {n} must be a Param")
            merged[n] = p

    def wrap(fn) -> FunctionObligation:
        return FunctionObligation(fn, merged, name)
    return wrap


def verdict(results) -> str:
    """Violated if any obligation failed, inconclusive if any timed out, else holds."""
    statuses = {r.status for r in results}
    if FAILED in statuses:
        return VIOLATED
    return INCONCLUSIVE if INCONCLUSIVE in statuses else HOLDS


def known_params(obligations) -> dict:
    out = {}
    for o in obligations:
        out.update(o.params)
    return out
