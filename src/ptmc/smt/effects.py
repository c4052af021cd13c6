"""Declared step effects, and what z3 proves from them for any number of entries and threads.

A step that changes a counter declares how (``@step(..., effect=...)``), on the names of the
model's ``Counters``:

    effect={"when": "refcount != 0", "refcount": "refcount + 1", "refs": "refs + 1"}

Each key but ``when`` is a counter (of the page the step acts on, or of the running thread) and
its new value, an expression over the values before the step; counters not named keep their
value. ``when`` is the condition under which the step has this effect. A list of such dicts
declares alternatives (a zap of a data entry, a zap of a zero-page entry). A step may also leave
every counter unchanged, whatever it declares.

The proof is about one PTE page and one running thread, against the rest of the system: a sum
over threads (``visitors``) is the running thread's count plus that of all the others, an
unknown natural number the step does not change. PTRS_PER_PTE is a free symbol. So a proof
holds for every number of entries and of threads, not only the explored instance.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from ..errors import ModelError, PtmcError
from ..model import load_model_class
from .expr import Expr
from .obligations import Claim, Obligation


@dataclass(frozen=True)
class Alternative:
    when: Expr | None
    updates: dict  # counter -> Expr

    def __str__(self):
        changes = ", ".join(f"{n} := {e}" for n, e in self.updates.items()) or "no change"
        return f"when {self.when}: {changes}" if self.when else changes


def alternatives(step, compiled) -> list[Alternative]:
    """The declared effect of ``step`` (a StepInfo), parsed and checked against the counters."""
    cache = compiled.alternatives
    if step.fn in cache:
        return cache[step.fn]
    effect = step.effect
    where = f"step {step.name} ({step.kernel_function}): effect"
    if effect is None:
        alts = []
    else:
        items = [effect] if isinstance(effect, dict) else list(effect)
        alts = []
        counters = compiled.counters
        for item in items:
            if not isinstance(item, dict):
                raise ModelError(f"{where} must be a dict or a list of dicts, got {item!r}")
            when = Expr(item["when"], f"{where} 'when'") if "when" in item else None
            updates = {}
            for name, value in item.items():
                if name == "when":
                    continue
                if name not in counters.page and name not in counters.thread:
                    raise ModelError(f"{where} sets {name!r}, which is not a page or thread counter "
                                     f"(counters: {', '.join([*counters.page, *counters.thread])})")
                updates[name] = Expr(value, f"{where} {name!r}")
            for e in (when, *updates.values()):
                if e is not None:
                    e.check_names(compiled.names)
            alts.append(Alternative(when, updates))
    cache[step.fn] = alts
    return alts


def model_steps(model) -> list[tuple[str, object]]:
    """(thread.step label, StepInfo) for every step of every thread kind of the instance."""
    out, seen = [], set()
    for thread in model.threads():
        for st in thread.steps:
            if st.fn in seen:
                continue
            seen.add(st.fn)
            out.append((f"{thread.name}.{st.name}", st))
    return out


# --- the symbolic step: one page, one running thread, the others summed -----------------------

def _symbolic(compiled, model, alt: Alternative):
    """z3 terms before and after ``alt``, and the hypotheses about the state before it."""
    import z3
    counters = compiled.counters
    consts = compiled.constants(model)
    sizes = {s: z3.Int(s) for s in counters.sizes}
    page = {n: z3.Int(n) for n in counters.page}
    actor = {n: z3.Int(n) for n in counters.thread}
    others = {total: z3.Int(f"{total} of other threads") for total in counters.sums}
    flags = {v: consts[v] for v in type(model).variants()}

    def env(page_v, actor_v):
        out = {**sizes, **flags, **page_v, **actor_v}
        for total, source in counters.sums.items():
            out[total] = actor_v[source] + others[total]
        return out

    pre = env(page, actor)
    hyps = [s >= 1 for s in sizes.values()]
    hyps += [v >= 0 for v in actor.values()] + [v >= 0 for v in others.values()]
    hyps += [_as_bool(compiled.domain.z3(pre)), _as_bool(compiled.invariant.z3(pre))]
    if alt.when is not None:
        hyps.append(_as_bool(alt.when.z3(pre)))
    page_after = {n: alt.updates[n].z3(pre) if n in alt.updates else v for n, v in page.items()}
    actor_after = {n: alt.updates[n].z3(pre) if n in alt.updates else v for n, v in actor.items()}
    post = env(page_after, actor_after)
    show = {**{n: page[n] for n in counters.page}, **{n: actor[n] for n in counters.thread},
            **{n: pre[n] for n in counters.sums}, **sizes}
    changed = [n for n in counters.page if n in alt.updates] + [n for n in counters.thread if n in alt.updates]
    changed += [t for t, src in counters.sums.items() if src in alt.updates]
    show.update({f"after.{n}": post[n] for n in changed})
    return pre, post, hyps, show, actor_after


def _as_bool(term):
    import z3
    return term if z3.is_bool(term) else term != 0


def step_claims(model, goal):
    """One claim per step alternative: ``goal(pre, post, actor_after)`` under the hypotheses."""
    counters = getattr(model, "counters", None)
    if counters is None:
        raise PtmcError(f"model {type(model).name} declares no counters")
    compiled = counters.compiled(model)
    import z3
    for label, st in model_steps(model):
        for k, alt in enumerate(alternatives(st, compiled)):
            pre, post, hyps, show, actor_after = _symbolic(compiled, model, alt)
            if alt.when is not None and z3.is_false(z3.simplify(hyps[-1])):
                continue  # the alternative of a variant this instance does not have
            where = f"step {label} ({st.kernel_function})"
            if len(alternatives(st, compiled)) > 1:
                where += f", effect {k + 1}"
            yield f"{where}: {alt}", Claim(goal=goal(compiled, pre, post, actor_after), given=hyps, show=show)


class ModelObligation(Obligation):
    """An obligation about a model's declared effects. ``model`` is a path relative to the
    property file, or None for the model the property file checks."""

    params: dict = {}

    def __init__(self, model: str | None, name: str, description: str):
        self.model_path, self.name, self.description = model, name, description
        self._resolved = str(model) if model and Path(model).is_absolute() else None
        self._model_params: dict = {}
        self._cls = None

    def bind(self, *, base=None, model_path=None, model_params=None) -> None:
        if self.model_path is None:
            self._resolved, self._model_params = model_path, dict(model_params or {})
        elif not Path(self.model_path).is_absolute():
            self._resolved = str((Path(base or ".") / self.model_path).resolve())
        if self._resolved is None:
            raise PtmcError(f"obligation {self.name}: the property file names no MODEL")
        self._cls = None

    def _class(self):
        if self._resolved is None:
            self.bind()
        if self._cls is None:
            self._cls = load_model_class(self._resolved)
        return self._cls

    def variants_known(self) -> set:
        return set(self._class().variants())

    def instance(self, variants):
        cls = self._class()
        return cls(self._model_params, [v for v in variants if v in cls.variants()])

    def goal(self, compiled, pre, post, actor_after):
        raise NotImplementedError

    def claims(self, values, variants):
        model = self.instance(variants)
        yield from step_claims(model, self.goal)


class Inductive(ModelObligation):
    def goal(self, compiled, pre, post, actor_after):
        import z3
        return z3.And(_as_bool(compiled.domain.z3(post)), _as_bool(compiled.invariant.z3(post)),
                      *[v >= 0 for v in actor_after.values()])


def inductive(model: str | None = None, name: str | None = None) -> Inductive:
    """The model's counting invariant is inductive: every declared step effect, applied to any
    state satisfying it (any PTRS_PER_PTE, any number of threads), gives a state satisfying it."""
    stem = f"{Path(model).stem}_" if model else ""
    return Inductive(model, name or f"{stem}counting_invariant_inductive",
                     f"the counting invariant of {Path(model).stem if model else 'the model'} holds "
                     "after every declared step effect from any state where it holds, for any "
                     "PTRS_PER_PTE and any number of threads")


class Stepwise(ModelObligation):
    def __init__(self, model, name, description, fn):
        super().__init__(model, name, description)
        self.fn = fn

    def goal(self, compiled, pre, post, actor_after):
        return self.fn(SimpleNamespace(**pre), SimpleNamespace(**post))


def stepwise(model: str | None, name: str, description: str, fn) -> Stepwise:
    """``fn(pre, post)`` (z3 terms by counter name) holds across every declared step effect,
    from any state satisfying the counting invariant."""
    return Stepwise(model, name, description, fn)
