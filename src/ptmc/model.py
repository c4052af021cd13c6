"""Model authoring: a model is shared memory plus threads of named atomic steps.

    class Walker(Thread):
        '''A pte_offset_map_lock() user.'''
        pmdval: object = None                      # a thread-local, with its initial value

        @step("mm/pgtable-generic.c:__pte_offset_map_lock")
        def map(self, s):                          # s: shared memory (see state.Mem)
            self.pmdval = s.pmd                    # one shared access per step
            return "lock" if pmd_table(self.pmdval) else DONE

A step returns the name of the next step, ``DONE`` to finish the thread, or nothing to fall
through to the next step of its class. It may raise ``Blocked`` (a kernel primitive does that
for it, e.g. ``spin_lock`` on a held lock) to say it cannot run now. Steps of a base class come
after the thread's own steps, so common tails (``pte_put()``) can be shared; a thread starts at
the first step of its own class.

A kernel helper of several steps is a ``Procedure``: a class of steps that threads inherit and
call, the way PlusCal calls a procedure. A step returns ``self.call(PteOffsetMapLock,
then=self.mapped)``; the procedure's last step returns ``self.ret(value)``, and the caller
continues at ``then``: a step name, ``DONE``, or a method of the thread that receives the value
and returns where to go (local computation, folded into the returning step). The return
addresses are the thread's call stack, part of the state.
"""
from __future__ import annotations

import importlib.util
import itertools
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .errors import Interrupted, ModelError, PtmcError, from_user_code, user_files

_loaded = itertools.count()

DONE = "done"  # returned by a step: the thread has finished


@dataclass(frozen=True)
class StepInfo:
    name: str
    kernel_function: str
    fn: object
    effect: dict | None  # symbolic counter effect, for the z3 link (see smt/)
    owner: type  # the class that defines the step: fall-through stays within it


def step(kernel_function: str, *, effect: dict | None = None):
    """Declare an atomic step and the kernel function it models (``file.c:function``)."""
    if ":" not in kernel_function:
        raise ModelError(f"step kernel function {kernel_function!r} must read 'file:function'")

    def mark(fn):
        fn._ptmc_step = (kernel_function, effect)
        return fn
    return mark


class Param:
    """A model parameter: its default value (int, bool or str), what it means, for an int the
    smallest value that makes sense (thread counts may be 0; table sizes not), and for a str
    the values it may take (``choices``; none: any text, which the model checks itself)."""

    def __init__(self, default, help: str, minimum: int = 0, choices: tuple | None = None):
        self.default, self.help, self.minimum = default, help, minimum
        self.choices = tuple(choices) if choices is not None else None
        if self.choices is not None and default not in self.choices:
            raise ModelError(f"parameter default {default!r} is not one of its choices {self.choices}")

    def parse(self, name: str, text) -> object:
        if not isinstance(text, str) or isinstance(self.default, str):
            value = text
        elif isinstance(self.default, bool):
            if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise PtmcError(f"parameter {name} is a boolean, got {text!r}")
            value = text.lower() in ("true", "1", "yes", "on")
        else:
            try:
                value = int(text)
            except ValueError:
                raise PtmcError(f"parameter {name} is an integer, got {text!r}") from None
        if type(value) is not type(self.default):
            raise PtmcError(f"parameter {name} takes a {type(self.default).__name__}, got {value!r}")
        if type(value) is int and value < self.minimum:
            raise PtmcError(f"parameter {name} must be at least {self.minimum}, got {value}")
        if self.choices is not None and value not in self.choices:
            raise PtmcError(f"parameter {name} is one of {', '.join(self.choices)}, got {value!r}")
        return value


class Variant:
    """A named toggle that reproduces a historical or hypothetical version of the code."""

    def __init__(self, help: str):
        self.help = help


class Guard:
    """A lock, recheck, flush or grace period that exists for the protocol's sake, named where
    the code has it: a class attribute of the thread (or model) whose code reads it as a bool,
    true unless ``--without NAME`` switched it off. The code must then be the code without it
    (a lock not taken is not released either), not a different program. ``reason``: why the
    code has it, in kernel terms; ``without``: what the code does without it; ``against``: the
    actor that makes it necessary, when that may be missing from a model (``ptmc ablate``
    says so when removing it breaks nothing)."""

    def __init__(self, reason: str, without: str, against: str = ""):
        self.reason, self.without, self.against = reason, without, against
        self.name = ""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        model = obj if isinstance(obj, Model) else obj.model
        return self.name not in model.without


class Thread:
    """A thread kind. Annotated class attributes are its locals; ``@step`` methods its code."""

    name: str  # set per instance; the thread's column title
    daemon = False  # a system actor (RCU callbacks): never counted as unfinished
    first_step: str | None = None  # where the thread starts; default: its class's first step

    def __init__(self, name: str | None = None):
        self.name = name or type(self).__name__.lower()
        self.tid = -1
        self.model = None

    def requires(self) -> list[tuple[str, str]]:
        """Shared cells this thread's code names at run time, with the set-up call that
        declares them (e.g. its mmu_gather batch's rcu_head): checked when the model is built."""
        return []

    @classmethod
    def locals_initial(cls) -> dict:
        values = {}
        for klass in reversed(cls.__mro__):
            if klass is Thread or not issubclass(klass, Thread):
                continue
            for local in klass.__dict__.get("__annotations__", {}):
                values[local] = getattr(cls, local, None)  # a subclass may override the initial value
        return values

    @classmethod
    def step_list(cls) -> list[StepInfo]:
        """Own steps first (in source order), then inherited ones."""
        cached = cls.__dict__.get("_ptmc_steps")
        if cached is not None:
            return cached
        steps, seen = [], set()
        for klass in cls.__mro__:
            for attr, fn in klass.__dict__.items():
                mark = getattr(fn, "_ptmc_step", None)
                if mark and attr not in seen:
                    seen.add(attr)
                    steps.append(StepInfo(attr, mark[0], fn, mark[1], klass))
        if not steps:
            raise ModelError(f"thread {cls.__name__} has no @step")
        cls._ptmc_steps = steps
        return steps

    @property
    def steps(self) -> list[StepInfo]:
        return self.step_list()

    @classmethod
    def has_stack(cls) -> bool:
        """Whether the thread calls procedures (and so has a call stack in the state)."""
        return issubclass(cls, Procedure)

    def call(self, entry, then, **args) -> "Call":
        """Call a procedure (or jump to a step as a sub-path) and continue at ``then`` when it
        returns; ``args`` set the callee's locals."""
        for name, value in args.items():
            setattr(self, name, value)
        return Call(_target_name(entry), _target_name(then))

    def ret(self, value=None) -> "Return":
        """Return from the procedure to the caller's ``then``, handing it ``value``."""
        return Return(value)

    @property
    def start_pc(self) -> int:
        if self.first_step is None:
            return 0
        for pc, st in enumerate(self.steps):
            if st.name == self.first_step:
                return pc
        raise ModelError(f"thread {self.name}: first_step {self.first_step!r} is not one of its steps")


class Call(NamedTuple):
    entry: str  # the callee's first step
    then: str  # where the caller continues: a step, "done", or a continuation method


class Return(NamedTuple):
    value: object


class Procedure(Thread):
    """Steps of a kernel helper that threads call (see the module docstring). A thread that
    inherits a procedure has a call stack."""

    @classmethod
    def entry(cls) -> str:
        own = [st for st in cls.step_list() if st.owner is cls]
        if not own:
            raise ModelError(f"procedure {cls.__name__} has no @step of its own")
        return own[0].name


def _target_name(target) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, type) and issubclass(target, Procedure):
        return target.entry()
    name = getattr(target, "__name__", None)
    if name is None:
        raise ModelError(f"call(): {target!r} is not a step, a procedure or a method")
    return name


def numbered(name: str, n: int) -> list[str]:
    """Thread names for ``n`` threads of a kind: 'fault' for one; 'fault1', 'fault2', ... for more."""
    return [name] if n == 1 else [f"{name}{k}" for k in range(1, n + 1)]


class Model:
    """A model: ``Param`` and ``Variant`` class attributes, ``init(mem)`` and ``threads()``.

    ``EVENTS``: bad events of the model's own (name -> one-line description), which its steps
    raise with ``s.report(name, message)`` and property files check with ``never(name)``.
    ``maintains``: accounting the model keeps exact (``"nr_ptes"``, ``"mapcount"``), which a
    check may need (``needs=``). ``witnesses()``: the paths every run of the model must reach
    (``reachable`` checks), so that a "holds" is never vacuous about them.
    """

    EVENTS: dict[str, str] = {}
    maintains: tuple = ()
    # Thread kinds whose threads are interchangeable (``--symmetry`` explores them up to
    # permutation, ptmc.reduce.symmetry): same class, same configuration but for the data pages
    # each owns. Properties checked with it must not tell them apart.
    symmetric: tuple = ()

    def __init__(self, params: dict | None = None, variants=(), without=()):
        params, variants = dict(params or {}), list(variants)
        self.without = frozenset(without)  # guards switched off (checked against guards())
        known_params, known_variants = self.params(), self.variants()
        for name in params:
            if name not in known_params:
                raise PtmcError(f"unknown parameter {name!r} for model {self.name}"
                                f" (known: {', '.join(known_params) or 'none'})")
        for name in variants:
            if name not in known_variants:
                raise PtmcError(f"unknown variant {name!r} for model {self.name}"
                                f" (known: {', '.join(known_variants) or 'none'})")
        values = {n: p.parse(n, params.get(n, p.default)) for n, p in known_params.items()}
        from .kernel.config import Config
        self.config = Config.from_params(values, explicit=set(params))
        self.param_values = {**values, **self.config.values()}
        self.variant_names = sorted(set(variants))
        for name, value in self.param_values.items():
            setattr(self, name, value)
        for name in known_variants:
            setattr(self, name, name in self.variant_names)

    name = "model"
    path = ""

    @classmethod
    def params(cls) -> dict[str, Param]:
        """The model's own parameters, then the kernel configuration every model gets
        (ptmc.kernel.config: split ptlocks, RCU table free, the TLB flush, ...)."""
        from .kernel.config import PARAMS
        return {**_ordered(cls, Param), **PARAMS}

    @classmethod
    def variants(cls) -> dict[str, Variant]:
        return _ordered(cls, Variant)

    def guards(self) -> dict[str, Guard]:
        """The guards of the model and of its threads' classes, in order; an input error if
        ``without`` names one it does not have."""
        out = _ordered(type(self), Guard)
        for thread in self.threads():
            out.update(_ordered(type(thread), Guard))
        unknown = sorted(self.without - set(out))
        if unknown:
            raise PtmcError(f"unknown guard {unknown[0]!r} for model {self.name}"
                            f" (known: {', '.join(out) or 'none'})")
        return out

    @classmethod
    def events(cls) -> dict[str, str]:
        out = {}
        for klass in reversed(cls.__mro__):
            out.update(klass.__dict__.get("EVENTS", {}))
        return out

    def init(self, mem) -> None:
        """Declare the shared memory and its initial values (``mem.pmd = ...``)."""
        raise NotImplementedError

    def witnesses(self) -> list:
        """``reachable`` checks every run of this model (with these parameters) must satisfy."""
        return []

    def projections(self) -> dict[str, tuple[str, ...]]:
        """Named projections for ``ptmc graph --project NAME`` (teaching views): name -> cells,
        ``THREAD.pc`` and ``ptN.state`` items (see ptmc.explore.graph.projection)."""
        return {}

    def context(self, layout, state: tuple, pages) -> list[str]:
        """What the design tracks about the PTE ``pages`` a trace step touched, shown with the
        step: the counters, when the model declares ``counters`` (see ptmc.smt)."""
        counters = getattr(self, "counters", None)
        return counters.describe(layout, self, state, pages) if counters is not None else []

    def observers(self, system) -> list:
        """Per-transition checks the explorer runs for this model: the z3 effect link when the
        model declares ``counters`` (see ptmc.smt)."""
        counters = getattr(self, "counters", None)
        return [counters.observer(system)] if counters is not None else []

    def threads(self) -> list[Thread]:
        raise NotImplementedError


def _ordered(cls, kind) -> dict:
    """Class attributes of a kind in source order (base classes first)."""
    out = {}
    for klass in reversed(cls.__mro__):
        for n, v in klass.__dict__.items():
            if isinstance(v, kind):
                out[n] = v
    return out


def load_module(path, what: str):
    """Import a model or property file; any failure is a one-line PtmcError."""
    path = Path(path)
    if path.is_dir():
        raise PtmcError(f"{what} file is a directory: {path}")
    if not path.is_file():
        raise PtmcError(f"{what} file not found: {path}")
    if path.suffix != ".py":
        raise PtmcError(f"{what} file is not a Python file (.py): {path}")
    modname = f"_ptmc_{what.replace(' ', '_')}_{next(_loaded)}_{path.stem}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    user_files.add(path.resolve())
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise PtmcError(f"{path}:{e.lineno}: syntax error: {e.msg}") from None
    except (PtmcError, MemoryError, Interrupted):
        raise
    except KeyboardInterrupt:
        raise Interrupted(f"while loading {path}: nothing was checked") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - any error in user code becomes one line
        raise from_user_code(e) or PtmcError(f"{path}: {type(e).__name__}: {e}") from None
    return module


def load_model_class(path) -> type[Model]:
    module = load_module(path, "model")
    found = [v for v in vars(module).values()
             if inspect.isclass(v) and issubclass(v, Model) and v is not Model
             and v.__module__ == module.__name__]
    if len(found) != 1:
        raise PtmcError(f"{path}: a model file defines exactly one Model subclass, found {len(found)}")
    cls = found[0]
    cls.name = Path(path).stem
    cls.path = str(path)
    return cls


def same_class(a: StepInfo, b: StepInfo) -> bool:
    """Both steps are defined by the same class (fall-through stays within a class)."""
    return a.owner is b.owner
