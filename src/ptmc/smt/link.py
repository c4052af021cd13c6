"""The link between exploration and proof: the code does what its declared effect says.

For a model that declares counters, the explorer calls ``Link.transition`` on every transition
it takes: the counters of every PTE page, measured before and after the concrete step, must be
unchanged or changed exactly as one of the step's declared effects says, evaluated on the
state before (its ``when`` true there). A step that changes a counter and declares no effect
is reported the same way. ``Link.initial`` checks that the initial state satisfies the
counting invariant. With z3's proof that every declared effect preserves the invariant
(effects.py), the explored instance and the symbolic proof describe one model.
"""
from __future__ import annotations

from itertools import compress
from operator import ne

from ..properties import Check
from .counters import meter
from .effects import alternatives

CHECK = Check("effects", "effects match code",
              "every step changes the declared counters exactly as its declared effect says")


class Link:
    check = CHECK

    def __init__(self, system, counters):
        self.system, self.counters = system, counters
        self.compiled = counters.compiled(system.model)
        self.consts = self.compiled.constants(system.model)
        self.meter = meter(counters, system.layout, system.model)
        self._page_of = {slot: k for k, slots in enumerate(self.meter.page_slots) for slot in slots}
        self._identity = {slot: k for k, live, gen, _, _ in self.meter.pages for slot in (live, gen)}
        self._locals = [frozenset(slots) for slots in system.layout.local_slots]
        self._slots = range(len(system.initial))

    def initial(self, state) -> str | None:
        for page, values, _ in self.meter.measure(state):
            env = {**self.consts, **values}
            for what, expr in (("domain", self.compiled.domain), ("invariant", self.compiled.invariant)):
                if not expr.value(env):
                    return f"the initial state breaks the counting {what} on {page} ({expr}): {_values(values)}"
        return None

    def transition(self, state, tr, nxt) -> str | None:
        diff = list(compress(self._slots, map(ne, state, nxt)))
        tid, page_of, identity = tr.tid, self._page_of, self._identity
        cells = {page_of[slot] for slot in diff if slot in page_of}
        own = not self._locals[tid].isdisjoint(diff)
        if not cells and not own:
            return None
        meter, own_pages = self.meter, set()
        if own:
            mine_before, mine_after = meter.thread_counts_all(tid, state), meter.thread_counts_all(tid, nxt)
            if not cells and mine_before == mine_after:
                return None  # e.g. a loop index or a pointer that counts for nothing
            own_pages = {k for k, (b, a) in enumerate(zip(mine_before, mine_after)) if a != b}
        reborn = {identity[slot] for slot in diff if slot in identity}
        for k in sorted(cells | own_pages):
            if k in reborn:
                # Allocated or freed: a new identity, every thread's counts for it may change.
                page, vb, tb = meter.measure_page(k, state)
                _, va, ta = meter.measure_page(k, nxt)
                old, new = {**vb, **tb[tid]}, {**va, **ta[tid]}
            else:
                # Same page: other threads' counts for it are as they were (thread counters
                # depend on a thread's locals and the page's identity only).
                paged_b, mine_b = meter.page_counts(k, state), meter.thread_counts(tid, k, state)
                paged_a = meter.page_counts(k, nxt) if k in cells else paged_b
                mine_a = meter.thread_counts(tid, k, nxt) if k in own_pages else mine_b
                if paged_a == paged_b and mine_a == mine_b:
                    continue
                page, vb, tb = meter.measure_page(k, state)
                old, new = {**vb, **mine_b}, {**vb, **paged_a, **mine_a}
                for total, source in self.counters.sums.items():
                    new[total] = vb[total] + mine_a[source] - mine_b[source]
            if old == new:
                continue
            message = self._explain(tr, page, old, new)
            if message:
                return message
        return None

    def _explain(self, tr, page, old: dict, new: dict) -> str | None:
        """None if a declared effect of the step turns ``old`` into ``new``; else what is wrong."""
        step = self.system.step_info(tr)
        alts = alternatives(step, self.compiled)
        expected = [(alt, self._apply(alt, old)) for alt in alts]
        if any(exp == new for _, exp in expected if exp is not None):
            return None
        thread = self.system.threads[tr.tid].name
        head = f"{thread}.{step.name} ({step.kernel_function}) changed {page}: {_diff(old, new)}"
        if not alts:
            return f"{head}, but declares no effect"
        held = [f"'{alt}' expects {_diff(old, exp) or 'no change'}" for alt, exp in expected if exp is not None]
        if not held:
            return f"{head}, but no declared effect applies (each 'when' is false): " + "; ".join(map(str, alts))
        return f"{head}; declared: " + "; or ".join(held)

    def _apply(self, alt, old: dict) -> dict | None:
        """The counters after ``alt``, or None when its condition is false before the step."""
        env = {**self.consts, **old}
        if alt.when is not None and not alt.when.value(env):
            return None
        out = dict(old)
        for name, expr in alt.updates.items():
            out[name] = expr.value(env)
        for total, source in self.counters.sums.items():
            out[total] = old[total] + out[source] - old[source]
        return out


def _diff(old: dict, new: dict) -> str:
    return ", ".join(f"{n} {old[n]}->{new[n]}" for n in old if old[n] != new[n])


def _values(values: dict) -> str:
    return ", ".join(f"{n}={v}" for n, v in values.items())


def counting_invariant(name: str = "counting invariant", description: str | None = None) -> Check:
    """A property check: the model's declared counting invariant holds on every PTE page in
    every reachable state (the explored counterpart of the inductive proof)."""

    def check(s):
        counters = getattr(s.model, "counters", None)
        if counters is None:
            return f"model {type(s.model).name} declares no counters"
        compiled = counters.compiled(s.model)
        consts = compiled.constants(s.model)
        for page, values, _ in meter(counters, s.layout, s.model).measure(tuple(s.v)):
            if not compiled.invariant.value({**consts, **values}):
                return f"{page}: {_values(values)} breaks the counting invariant ({compiled.invariant})"
        return True

    return Check("invariant", name, description or "the model's declared counting invariant holds "
                 "on every PTE page in every reachable state", fn=check)
