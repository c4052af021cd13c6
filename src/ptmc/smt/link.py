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

from ..properties import Check
from .counters import meter
from .effects import alternatives

CHECK = Check("effects", "effects match code",
              "every step changes the declared counters exactly as its declared effect says")


def effect_link(system) -> "Link | None":
    """The link for ``system``'s model, or None when it declares no counters."""
    counters = getattr(system.model, "counters", None)
    return Link(system, counters) if counters is not None else None


class Link:
    check = CHECK

    def __init__(self, system, counters):
        self.system, self.counters = system, counters
        self.compiled = counters.compiled(system.model)
        self.consts = self.compiled.constants(system.model)
        self._expanding = None  # the state being expanded, and what was computed about it:
        self._views, self._counts, self._before, self._threads = {}, {}, {}, None
        self.meter = meter(counters, system.layout, system.model)
        self._page_of = {slot: k for k, slots in enumerate(self.meter.page_slots) for slot in slots}
        self._locals = [frozenset(slots) for slots in system.layout.local_slots]

    def _expand(self, state) -> None:
        """Start on a new state being expanded: what is computed about it serves all successors."""
        if self._expanding is not state:
            self._expanding, self._views, self._counts, self._before = state, {}, {}, {}
            self._threads = self.meter.thread_locals(state)

    def _view(self, k):
        if k not in self._views:
            self._views[k] = self.meter.page(k, self._expanding)
        return self._views[k]

    def _own_before(self, k, tid):
        if (k, tid) not in self._counts:
            self._counts[k, tid] = self.meter.thread_counts(self._threads[tid], self._view(k))
        return self._counts[k, tid]

    def _measured(self, k):
        if k not in self._before:
            self._before[k] = self.meter.measure_page(k, self._expanding, self._threads)
        return self._before[k]

    def initial(self, state) -> str | None:
        for page, values, _ in self.meter.measure(state):
            env = {**self.consts, **values}
            for what, expr in (("domain", self.compiled.domain), ("invariant", self.compiled.invariant)):
                if not expr.value(env):
                    return f"the initial state breaks the counting {what} on {page} ({expr}): {_values(values)}"
        return None

    def _changed(self, state, nxt, tid) -> tuple[set, bool]:
        """Pages whose cells the transition wrote, and whether the thread's locals changed."""
        diff = [slot for slot, (a, b) in enumerate(zip(state, nxt)) if a != b]
        page_of, own = self._page_of, self._locals[tid]
        return {page_of[slot] for slot in diff if slot in page_of}, any(slot in own for slot in diff)

    def transition(self, state, tr, nxt) -> str | None:
        cells, own = self._changed(state, nxt, tr.tid)
        if not cells and not own:
            return None
        self._expand(state)
        meter, tid = self.meter, tr.tid
        actor = meter.thread_locals(nxt, tid) if own else None
        threads = meter.thread_locals(nxt) if cells else None
        for k in range(len(meter.pages)):
            if k in cells:
                page, vb, tb = self._measured(k)
                _, va, ta = meter.measure_page(k, nxt, threads)
                old, new = {**vb, **tb[tid]}, {**va, **ta[tid]}
            elif own:
                # The page is as it was: only this thread's own counters for it can differ.
                mine = meter.thread_counts(actor, self._view(k))
                if mine == self._own_before(k, tid):
                    continue
                page, vb, tb = self._measured(k)
                old, new = {**vb, **tb[tid]}, {**vb, **mine}
                for total, source in self.counters.sums.items():
                    new[total] = vb[total] + mine[source] - tb[tid][source]
            else:
                continue
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
