"""The system: a model instance compiled for exploration (layout, initial state, successors)."""
from __future__ import annotations

import inspect
from collections import deque
from operator import itemgetter
from types import CodeType, FunctionType
from typing import NamedTuple

from ..errors import ModelError, PtmcError
from ..kernel import EVENTS, SETUP
from ..model import DONE, Call, Model, Return, Thread, same_class
from ..state import DONE as DONE_PC
from ..state import OOPS, Blocked, Layout, Mem, Stop, bound, declaring


class Transition(NamedTuple):
    tid: int
    pc: int  # the step taken
    choices: tuple  # ((label, value), ...) made inside the step
    events: tuple  # ((kind, message), ...) reported by primitives
    touched: tuple = ()  # shared slots the step accessed (only when replaying a trace)


class _Code(NamedTuple):
    """What the explorer needs of one thread, computed once."""
    thread: object
    steps: list
    by_name: dict  # step name -> pc
    fall: list  # pc -> where it falls through to
    names: tuple  # local names
    lo: int  # the locals' slice of the state, right after the pc
    hi: int
    get: object  # thread.__dict__ -> the locals' values, in order
    pc_slot: int
    dead: tuple  # the locals' initial values
    stack_slot: int | None  # the call stack's slot, for a thread that calls procedures


class System:
    """``reset_dead_locals``: a finished thread's locals return to their initial values (they
    can no longer be read), merging states that differ only there. tests/test_reductions.py
    checks it against exploration without it."""

    canonical = None  # the state.Canonical its states are built from, if they are

    def __init__(self, model: Model, reset_dead_locals: bool = True):
        self.model = model
        self.reset_dead_locals = reset_dead_locals
        self.layout = layout = Layout()
        self.events = {**EVENTS, **type(model).events()}
        model.init(declaring(layout, model, self.events))
        self.threads = model.threads()
        if model.without:
            model.guards()  # an unknown guard name is an input error
        if not (isinstance(self.threads, (list, tuple))
                and all(isinstance(t, Thread) for t in self.threads)):
            raise ModelError(f"model {model.name}: threads() must return a list of Thread instances, "
                             f"got {self.threads!r}")
        names = [t.name for t in self.threads]
        if len(set(names)) != len(names):
            raise ModelError(f"model {model.name}: thread names must be unique, got {names}")
        for thread in self.threads:
            thread.model = model
            layout.add_thread(thread)
        layout.frozen = True
        _check_setup(model, layout, self.threads)
        self.initial = tuple(layout.initial)
        self._mem = bound(layout, model, self.events)
        self._recording_mem = bound(layout, model, self.events, recording=True)
        # Per thread: step functions, local names, and where each step falls through to.
        self._code = []
        for tid, thread in enumerate(self.threads):
            steps = thread.steps
            by_name = {st.name: i for i, st in enumerate(steps)}
            fall = [i + 1 if i + 1 < len(steps) and same_class(steps[i + 1], st) else DONE_PC
                    for i, st in enumerate(steps)]
            initial = thread.locals_initial()
            names = tuple(initial)
            # A thread's locals sit right after its pc: copied in and out as one slice.
            lo = layout.pc_slot[tid] + 1
            get = (itemgetter(*names) if len(names) > 1 else
                   (lambda d, n=names: (d[n[0]],)) if names else (lambda d: ()))
            self._code.append(_Code(thread, steps, by_name, fall, names, lo, lo + len(names), get,
                                    layout.pc_slot[tid], tuple(initial.values()), layout.stack_slot[tid]))
        try:
            hash(self.initial)
        except TypeError:
            raise ModelError(f"model {model.name}: initial state holds an unhashable value") from None

    def successors(self, state: tuple, record: bool = False) -> list[tuple[Transition, tuple]]:
        """Every transition enabled in ``state`` with the state it leads to, in a fixed order.
        ``record``: also note the slots each step touched (for traces; slower)."""
        out = []
        layout, reset_dead = self.layout, self.reset_dead_locals
        new_mem = self._recording_mem if record else self._mem
        for tid, code in enumerate(self._code):
            thread, steps, by_name, fall, names, lo, hi, get, pc_slot, dead, stack_slot = code
            pc = state[pc_slot]
            if pc < 0:
                continue
            st = steps[pc]
            d = thread.__dict__
            script = ()
            while True:
                values = list(state)
                mem = new_mem(values, tid, script)
                d.update(zip(names, state[lo:hi]))
                try:
                    ret = st.fn(thread, mem)
                    if ret is None:
                        new_pc = fall[pc]
                    elif ret.__class__ is str and ret in by_name:
                        new_pc = by_name[ret]
                    else:
                        new_pc = self._goto(code, st, ret, values, thread)
                except Blocked:
                    new_pc = None
                except Stop as stop:
                    new_pc = stop.pc
                except (PtmcError, MemoryError):
                    raise
                except Exception as e:  # noqa: BLE001 - a bug in a model step: say where
                    raise ModelError(f"exception in step {thread.name}.{st.name} "
                                     f"({st.kernel_function}): {type(e).__name__}: {e}; "
                                     f"state: {layout.describe(state)}") from None
                if new_pc is not None:
                    # A finished thread's locals are dead: reset them so that states that
                    # differ only in them are one state.
                    values[lo:hi] = dead if new_pc == DONE_PC and reset_dead else get(d)
                    if new_pc == DONE_PC and stack_slot is not None:
                        values[stack_slot] = ()  # a thread that ends inside a call has no caller left
                    values[pc_slot] = new_pc
                    choices = tuple((label, options[i]) for label, options, i in mem.made)
                    touched = tuple(dict.fromkeys(mem.touched)) if record else ()
                    out.append((Transition(tid, pc, choices, tuple(mem.events), touched), tuple(values)))
                if not mem.made:
                    break
                script = _next_script(mem.made)
                if script is None:
                    break
        return out

    def _goto(self, code: _Code, st, ret, values: list, me) -> int:
        """The pc a step's return value names: a step, DONE, a call (push the caller's
        continuation) or a return (pop it; a continuation method of ``me``, the thread as the
        step saw it, turns the value into where to go). ``values[stack_slot]`` is updated in
        place."""
        thread = code.thread
        while True:
            if ret is None:
                raise ModelError(f"{thread.name}.{st.name}: a continuation returned nothing; it must "
                                 "name where the thread goes")
            if ret.__class__ is Call:
                if code.stack_slot is None:
                    raise ModelError(f"{thread.name}.{st.name} calls {ret.entry} but {type(thread).__name__} "
                                     "inherits no Procedure")
                values[code.stack_slot] += (ret.then,)
                ret = ret.entry
            elif ret.__class__ is Return:
                stack = values[code.stack_slot] if code.stack_slot is not None else ()
                if not stack:
                    raise ModelError(f"{thread.name}.{st.name} returns, but nothing called it")
                values[code.stack_slot], then = stack[:-1], stack[-1]
                if then == DONE or then in code.by_name:
                    ret = then
                else:
                    ret = getattr(me, then)(ret.value)
            elif ret == DONE:
                return DONE_PC
            elif ret.__class__ is str and ret in code.by_name:
                return code.by_name[ret]
            else:
                name = ret if ret.__class__ is str else getattr(ret, "__name__", repr(ret))
                if name in code.by_name:
                    return code.by_name[name]
                raise ModelError(f"step {thread.name}.{st.name} returned {ret!r}, which is not a step "
                                 "of that thread")

    def step_info(self, tr: Transition):
        return self._code[tr.tid].steps[tr.pc]

    def unfinished(self, state: tuple) -> list[int]:
        """Threads that have not finished (daemons never count; an oopsed thread is dead)."""
        return [tid for tid, code in enumerate(self._code)
                if not code.thread.daemon and state[code.pc_slot] not in (DONE_PC, OOPS)]

    def judge(self, fn):
        """``fn`` as a function of ``states`` (a state, or a transition's before and after):
        what the property function says of them, each seen through a read-only view."""
        return lambda states: fn(*map(self.view, states))

    def settled(self, fn, state: tuple):
        """What ``fn(before, after)`` says of every transition from ``state``, when that is
        known without the after state; else None (here: never known)."""
        return None

    def view(self, state: tuple, tid: int | None = None) -> Mem:
        """Read-only use of a state by properties (invariants see shared cells by name), or as
        thread ``tid`` sees it (for the context of its step)."""
        return self._mem(list(state), tid)


def _next_script(made) -> tuple | None:
    """The next combination of choice indices after ``made`` (an odometer), or None."""
    for k in range(len(made) - 1, -1, -1):
        _, options, index = made[k]
        if index + 1 < len(options):
            return tuple(i for _, _, i in made[:k]) + (index + 1,)
    return None


def _check_setup(model, layout, threads) -> None:
    """Refuse a model whose threads reach a primitive whose set-up its init() never called:
    one line naming the call, not a KeyError when exploration first gets there."""
    for thread in threads:
        for cell, call in thread.requires():
            if cell not in layout.index:
                raise ModelError(f"model {model.name}: thread {thread.name} needs {cell}, which "
                                 f"init() never declared: call {call}")
        for name, (step, fn) in _names_reached(thread).items():
            call = SETUP.get(name)
            if call and name not in layout.index and name not in layout.objects:
                raise ModelError(f"model {model.name}: step {thread.name}.{step} reaches {fn}(), which "
                                 f"uses {name}; its init() never declared it: call {call}")


def _names_reached(thread) -> dict[str, tuple[str, str]]:
    """Every name (attribute, global, string constant) in the code a thread's steps can call,
    with a step and function that reach it: functions of the thread's own classes and of
    ptmc.kernel, followed through globals and methods."""
    cls = type(thread)
    ours = {k.__module__ for k in cls.__mro__}
    out, seen = {}, set()
    todo = deque((st.fn, st.name) for st in thread.steps)  # in step order: the first step is named
    while todo:
        fn, step = todo.popleft()
        if fn in seen:
            continue
        seen.add(fn)
        codes = [fn.__code__]
        while codes:
            code = codes.pop()
            codes += [c for c in code.co_consts if isinstance(c, CodeType)]
            for name in (c for c in code.co_consts if isinstance(c, str)):
                out.setdefault(name, (step, fn.__name__))  # e.g. layout.objects["pgtables"]
            for name in code.co_names:  # only names used as names lead to more code
                out.setdefault(name, (step, fn.__name__))
                target = fn.__globals__.get(name)
                if target is None and name.isidentifier():
                    target = inspect.getattr_static(cls, name, None)
                    target = target.fget if isinstance(target, property) else target
                if (isinstance(target, FunctionType) and target not in seen
                        and (target.__module__ in ours or target.__module__.startswith("ptmc.kernel"))):
                    todo.append((target, step))
    return out
