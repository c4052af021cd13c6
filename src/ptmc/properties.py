"""Properties: what a property file checks, and how one is loaded.

A property file is plain Python whose docstring explains the property in kernel terms:

    MODEL = "../model/refcount2021.py"   # relative to the property file; --model overrides
    MODELS = ["../model/other.py"]       # optional: other models it applies to (verdict table)
    PARAMS = {"entries": 2}              # optional defaults for the model's parameters
    VARIANTS = []                        # optional variants checked by default
    CHECKS = [never("use-after-free")]

Check kinds: ``never(event)`` (a bad event raised by a kernel primitive or declared by the
model in its ``EVENTS``), ``invariant(fn)`` (true in every reachable state), ``at_end(fn)``
(true when every thread has finished and RCU is idle), ``deadlock_free()`` (no unfinished
thread that can never move) and ``reachable(target)`` (a witness: some reachable state or
step must exist, or the run fails; see ``reachable``). ``fn`` receives the state (shared
variables by name as in a step, threads by name: ``s.thread("zap").pc``) and returns True,
or a message saying what is wrong.

A check that relies on accounting a model keeps (``mm->nr_ptes``, mapcounts) says so with
``needs=("nr_ptes",)``; a model lists what it keeps exact in ``Model.maintains``, and a check
run on a model that does not maintain what it needs is an input error, not a false verdict.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import PtmcError
from .kernel import EVENTS
from .model import load_module


@dataclass(frozen=True)
class Check:
    kind: str  # "never", "invariant", "at_end", "deadlock_free", "reachable"
    name: str
    description: str
    event: str | None = None
    fn: object = None
    needs: tuple = ()  # what the check relies on the model to maintain (Model.maintains)
    step: tuple | None = None  # reachable("thread.step->next"): (thread, step, next or None)
    arity: int = 1  # reachable(fn): 1 for a state predicate, 2 for (before, after)

    def bind(self, model_cls) -> "Check":
        """This check as it applies to ``model_cls``: refused when the model lacks what it
        needs; a ``never`` check gets its event's description."""
        missing = [n for n in self.needs if n not in model_cls.maintains]
        if missing:
            kept = ", ".join(model_cls.maintains) or "nothing"
            raise PtmcError(f"check {self.name!r} needs a model that maintains {', '.join(missing)}; "
                            f"model {model_cls.name} does not (it maintains: {kept})")
        if self.kind == "never":
            events = {**EVENTS, **model_cls.events()}
            if self.event not in events:
                raise PtmcError(f"unknown event {self.event!r} for model {model_cls.name} "
                                f"(known: {', '.join(events)})")
            if not self.description:
                return replace(self, description=events[self.event])
        return self


def never(event: str, description: str | None = None, *, needs=()) -> Check:
    """No transition reports ``event``: a kernel primitive's (see ptmc.kernel.EVENTS) or one the
    model declares in its ``EVENTS``."""
    if not isinstance(event, str) or not event:
        raise PtmcError(f"never() takes an event name, got {event!r}")
    return Check("never", f"never {event}", description or EVENTS.get(event, ""), event=event,
                 needs=tuple(needs))


def invariant(fn, *, needs=()) -> Check:
    return Check("invariant", _name(fn), _doc(fn), fn=fn, needs=tuple(needs))


def at_end(fn, *, needs=()) -> Check:
    return Check("at_end", _name(fn), _doc(fn), fn=fn, needs=tuple(needs))


def deadlock_free(description: str = "no state where an unfinished thread can never move") -> Check:
    return Check("deadlock_free", "deadlock free", description)


def reachable(target, description: str | None = None, *, name: str | None = None, needs=()) -> Check:
    """A witness (Stateright's *sometimes*): the run fails with "witness not found" unless
    exploration reaches what ``target`` names, so a path that an edit silently disabled cannot
    hide behind a "holds". ``target`` is one of

    - ``"thread.step"``: some thread takes that step; ``"thread.step->next"``: the step, going
      on to step ``next`` (or ``done``). ``thread`` is a thread name (``zap1``), a kind
      (``zap`` for zap, zap1, zap2, ...) or ``*`` for any thread;
    - ``fn(s)``: a reachable state where ``fn`` is true;
    - ``fn(before, after)``: a transition from ``before`` to ``after`` where ``fn`` is true.

    ``ptmc check --witness NAME`` prints the shortest trace that reaches it."""
    if isinstance(target, str):
        head, _, then = target.partition("->")
        thread, dot, step = head.strip().rpartition(".")
        if not dot or not thread or not step:
            raise PtmcError(f"reachable({target!r}): a step target reads 'thread.step' or "
                            "'thread.step->next'")
        return Check("reachable", name or target, description or f"{target} is taken",
                     step=(thread, step, then.strip() or None), needs=tuple(needs))
    if not callable(target):
        raise PtmcError(f"reachable() takes 'thread.step' or a function, got {target!r}")
    arity = _arity(target)
    if arity not in (1, 2):
        raise PtmcError(f"reachable({_name(target)}): the function takes (s) or (before, after)")
    name = name or (_name(target) if _name(target) != "<lambda>" else description)
    if not name:
        raise PtmcError("reachable(lambda ...) needs a description or name=")
    return Check("reachable", name, description or _doc(target), fn=target, needs=tuple(needs),
                 arity=arity)


def _arity(fn) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(1 for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _name(fn) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _doc(fn) -> str:
    return " ".join((fn.__doc__ or _name(fn)).split())


@dataclass
class Property:
    name: str
    path: str
    doc: str
    model_path: str
    also_models: list
    params: dict
    variants: list
    checks: list[Check]
    obligations: list = field(default_factory=list)

    def params_for(self, model_cls, also=()) -> dict:
        """The PARAMS that apply to ``model_cls``: all of them on the property's MODEL (or when
        nothing is explored), so that a name it lacks is an error; on another model (one of its
        MODELS, or ``--model``) only the names that model has, or ``also`` (the obligations'
        parameters): a property's defaults are for its own model. The one place of this rule."""
        if model_cls is None or not self.model_path or \
                Path(model_cls.path).resolve() == Path(self.model_path).resolve():
            return dict(self.params)
        known = set(model_cls.params()) | set(also)
        return {n: v for n, v in self.params.items() if n in known}


def load_property(path) -> Property:
    module = load_module(path, "property")
    path = Path(path)
    checks = getattr(module, "CHECKS", [])
    obligations = getattr(module, "OBLIGATIONS", [])
    if not isinstance(checks, (list, tuple)) or not all(isinstance(c, Check) for c in checks):
        raise PtmcError(f"{path}: CHECKS must be a list of checks (never, invariant, at_end, deadlock_free, "
                        "reachable)")
    if not checks and not obligations:
        raise PtmcError(f"{path}: defines no CHECKS (and no OBLIGATIONS)")
    model = getattr(module, "MODEL", None)
    if checks and not (isinstance(model, str) and model):
        raise PtmcError(f"{path}: MODEL must name the model file it checks, e.g. '../model/reclaim.py'")
    params = getattr(module, "PARAMS", {})
    if not isinstance(params, dict) or not all(isinstance(n, str) for n in params):
        raise PtmcError(f"{path}: PARAMS must be a dict of parameter values, e.g. {{'entries': 2}}, "
                        f"got {params!r}")
    return Property(
        name=path.stem,
        path=str(path),
        doc=(module.__doc__ or "").strip(),
        model_path=str((path.parent / model).resolve()) if model else "",
        also_models=[str((path.parent / m).resolve()) for m in
                     _names(module, path, "MODELS", "model files, e.g. ['../model/refcount2021.py']")],
        params=dict(params),
        variants=_names(module, path, "VARIANTS", "variant names, e.g. ['no_try_get']"),
        checks=list(checks),
        obligations=list(obligations),
    )


def _names(module, path, attr: str, what: str) -> list[str]:
    """A list of strings the property file declares (a bare string is a mistake, not a list)."""
    value = getattr(module, attr, [])
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise PtmcError(f"{path}: {attr} must be a list of {what}, got {value!r}")
    return list(value)
