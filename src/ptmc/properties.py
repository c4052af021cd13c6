"""Properties: what a property file checks, and how one is loaded.

A property file is plain Python whose docstring explains the property in kernel terms:

    MODEL = "../model/refcount2021.py"   # relative to the property file; --model overrides
    MODELS = ["../model/other.py"]       # optional: other models it applies to (verdict table)
    PARAMS = {"entries": 2}              # optional defaults for the model's parameters
    VARIANTS = []                        # optional variants checked by default
    CHECKS = [never("use-after-free")]

Check kinds: ``never(event)`` (a bad event raised by a kernel primitive), ``invariant(fn)``
(true in every reachable state), ``at_end(fn)`` (true when every thread has finished and RCU is
idle) and ``deadlock_free()`` (no unfinished thread that can never move). ``fn`` receives the
state (shared variables by name, as in a step) and returns True, or a message saying what is
wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import PtmcError
from .kernel import EVENTS
from .model import load_module


@dataclass(frozen=True)
class Check:
    kind: str  # "never", "invariant", "at_end", "deadlock_free"
    name: str
    description: str
    event: str | None = None
    fn: object = None


def never(event: str, description: str | None = None) -> Check:
    if event not in EVENTS:
        raise PtmcError(f"unknown event {event!r} (known: {', '.join(EVENTS)})")
    return Check("never", f"never {event}", description or EVENTS[event], event=event)


def invariant(fn) -> Check:
    return Check("invariant", fn.__name__, _doc(fn), fn=fn)


def at_end(fn) -> Check:
    return Check("at_end", fn.__name__, _doc(fn), fn=fn)


def deadlock_free(description: str = "no state where an unfinished thread can never move") -> Check:
    return Check("deadlock_free", "deadlock free", description)


def _doc(fn) -> str:
    return " ".join((fn.__doc__ or fn.__name__).split())


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


def load_property(path) -> Property:
    module = load_module(path, "property")
    path = Path(path)
    checks = getattr(module, "CHECKS", [])
    obligations = getattr(module, "OBLIGATIONS", [])
    if not isinstance(checks, (list, tuple)) or not all(isinstance(c, Check) for c in checks):
        raise PtmcError(f"{path}: CHECKS must be a list of checks (never, invariant, at_end, deadlock_free)")
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
