"""The compiled system: each step becomes, as exploration meets it, a decision tree over slots.

A step is a function of the state: what it does depends only on the slots it reads (its
thread's locals included), and which slot it reads next depends only on what it read before.
So the first time a step runs from some values, it runs on a *recorder* that notes every slot
read (in order, with its value) and every slot written; the outcome (each choice script's
transition and writes, or none: Blocked) is stored at the end of that read path in the step's
tree. From then on, any state whose values along the path are the same gets the outcome by
walking the tree: a few tuple indexings and dict look-ups, no step call, no Mem, no exception.
A step that cannot move (a lock held by another thread) is a leaf with no outcome, which is
the guard the interpreter pays an exception for.

Locals live in the state: each thread runs on a *view*, an object of a subclass of its class
whose locals are properties over the state being built, so helper methods and continuations
(``self.after_scan()``) read and write slots too, and nothing is copied in or out.

Values along a path are compared by type as well as value (``identical``), as the store does:
``False``/``0`` and ``PT``/tuple are different paths. A step whose run uses the state in a way
the recorder cannot follow (anything but indexing, slicing, iterating and ``len``) runs
directly on a list every time (``direct``), as do all steps when ``memo`` is false.

The interpreter (``System.successors``) is the reference: tests/test_compiled.py compares both
on every shipped model and on generated ones (states, transitions, verdicts, counterexamples).
Traces (``record=True``, which notes the slots a step touched) are replayed with the reference.
"""
from __future__ import annotations

from operator import itemgetter

from ..errors import ModelError, PtmcError
from ..state import DONE as DONE_PC
from ..state import Blocked, Canonical, Stop, identical
from .store import UNHASHABLE
from .system import DONE, System, Transition, _next_script


class CompiledSystem(System):
    """A ``System`` whose ``successors`` walks each step's decision tree (see the module
    docstring); ``memo=False`` runs every step directly on its view (for comparison)."""

    def __init__(self, model, reset_dead_locals: bool = True, memo: bool = True):
        super().__init__(model, reset_dead_locals)
        self.canonical = Canonical(len(self.initial))
        self._pairs: dict = {}  # shared write pairs and tuples, by the identity of their parts
        self._judges: dict = {}  # property function -> its _Judge
        self.initial = tuple(map(self.canonical, range(len(self.initial)), self.initial))
        self._threads = [_Thread(self, tid, code, memo) for tid, code in enumerate(self._code)]
        self._generate()

    def successors(self, state: tuple, record: bool = False) -> list[tuple[Transition, tuple]]:
        if record:
            return super().successors(state, record=True)
        return self._successors(state)

    def changer(self):
        """``changes(state, marks, watch, fresh)``: the successors of ``state``, in order, each
        as the (slot, value) pairs its step writes, when no transition reports an event or
        takes a step flagged in ``watch`` (else None: the explorer then takes the general
        path). For an exploration with no per-transition check: no Transition looked at, no
        state tuple built (the store builds the new ones). ``marks`` notes the steps taken (see
        ``taken``), and ``fresh`` (a list, emptied first) the marks this call set first, to be
        undone if the state goes the general way after all; ``marks`` and ``watch`` are
        ``self.marks`` flags, one per step of each thread (``flag``)."""
        return self._changes

    def mover(self):
        """``moves(state)``: as ``successors``, but each successor as the (slot, value) pairs its
        step writes, with its transition."""
        return self._moves

    def flag(self, tid: int, pc: int) -> int:
        """The index of step ``pc`` of thread ``tid`` in ``marks`` and ``watch``."""
        return self.mark_base[tid] + pc

    def taken(self, marks: list) -> set:
        """The (tid, pc) of the steps a ``changes`` marked."""
        return {(tid, flag - base) for tid, base in enumerate(self.mark_base)
                for flag in range(base, base + len(self._threads[tid].roots)) if marks[flag]}

    def _generate(self) -> None:
        """``successors``, and its variants that give each successor as its writes (``moves``,
        and ``changes`` without the transitions) for this model: one block per thread, unrolled
        (a loop over threads would look up the same per-thread parts again for every state)."""
        env = {"canonical": self.canonical, "_Read": _Read, "_Leaf": _Leaf, "_find": _find,
               "miss": self._miss, "ModelError": ModelError, "UNHASHABLE": UNHASHABLE,
               "_MISSING": _MISSING}
        self.mark_base, base = [], 0
        for ct in self._threads:
            env[f"roots{ct.tid}"], env[f"thread{ct.tid}"] = ct.roots, ct
            self.mark_base.append(base)
            base += len(ct.roots)
        self.marks = base
        build = ["values = list(state)", "for slot, value in writes:", "    values[slot] = value"]
        source = "\n\n".join([
            self._walker("successors", [*build, "out.append((tr, tuple(values)))"]),
            self._walker("moves", ["out.append((tr, writes))"]),
            self._changer()])
        exec(compile(source, f"<compiled steps of {self.model.name}>", "exec"), env)  # noqa: S102
        self._successors, self._changes, self._moves = env["successors"], env["changes"], env["moves"]

    def _walker(self, name: str, emit: list) -> str:
        """``name(state)``: [(transition, what ``emit`` makes of its ``writes``)]."""
        lines = [f"def {name}(state):", "    out = []", "    mixed = canonical.mixed"]
        for ct in self._threads:
            lines += [*_WALK.format(t=ct.tid, pc_slot=ct.pc_slot).splitlines(),
                      "        for tr, writes in node.outcomes:", *("            " + line for line in emit)]
        return "\n".join([*lines, "    return out"])

    def _changer(self) -> str:
        """``changes(state, marks, watch, fresh)``: see ``changer``."""
        lines = ["    if canonical.mixed:  # keys must be compared by type: the general path does",
                 "        return None",
                 "    nexts = []",
                 "    del fresh[:]  # the marks first set here, undone if the state goes the general way"]
        for ct, base in zip(self._threads, self.mark_base):
            lines += [f"    pc = state[{ct.pc_slot}]",
                      "    if pc >= 0:",
                      f"        node = roots{ct.tid}[pc]",
                      "        while node.__class__ is _Read:",
                      "            node = node.children.get(node.get(state), _MISSING)",
                      "        if node.__class__ is not _Leaf:",
                      f"            node = miss(thread{ct.tid}, pc, state)",
                      "        if node.outcomes:",
                      f"            flag = {base} + pc",
                      "            if node.eventful or watch[flag]:  # an event, or a pending witness's step",
                      "                for m in fresh:",
                      "                    marks[m] = False",
                      "                return None",
                      "            if not marks[flag]:",
                      "                marks[flag] = True",
                      "                fresh.append(flag)",
                      "            nexts += node.writes"]
        lines.append("    return nexts")
        # An unhashable value read makes the look-up raise TypeError: say what it is.
        return "\n".join(["def changes(state, marks, watch, fresh):", "    try:", *("    " + line for line in lines),
                          "    except TypeError:", "        raise ModelError(UNHASHABLE) from None"])

    def _miss(self, ct: "_Thread", pc: int, state: tuple) -> "_Leaf":
        """The outcomes of a step from a state its tree does not know yet: learnt, or (for a
        step the recorder cannot follow) run directly and written as writes."""
        if ct.roots[pc] is not None:
            leaf = self._learn(ct, pc, state)
            if leaf is not None:
                return leaf
        return _Leaf([(tr, tuple((slot, v) for slot, (v, old) in enumerate(zip(nxt, state)) if v is not old))
                      for tr, nxt in self._direct(ct, pc, state)])

    def _direct(self, ct: "_Thread", pc: int, state: tuple) -> list:
        """The step run on a list, its new values made canonical."""
        canonical = self.canonical
        try:
            return [(tr, tuple(v if v is old else canonical(slot, v)
                               for slot, (v, old) in enumerate(zip(nxt, state))))
                    for tr, nxt in self._run(ct, pc, state, list)]
        except TypeError:
            raise ModelError(UNHASHABLE) from None

    def _run(self, ct: "_Thread", pc: int, state: tuple, memory) -> list:
        """Run step ``pc`` of ``ct`` from ``state`` for every choice script, on ``memory(state)``
        (a list, or a recorder): [(transition, memory after)]."""
        info = ct.code.steps[pc]
        view, mem = ct.view, ct.mem
        out, script = [], ()
        while True:
            values = memory(state)
            view._v = mem.v = values
            mem.script, mem.made, mem.events = script, [], []
            try:
                ret = info.fn(view, mem)
                if ret is None:
                    new_pc = ct.code.fall[pc]
                elif ret.__class__ is str and ret in ct.targets:
                    new_pc = ct.targets[ret]
                else:
                    new_pc = self._goto(ct.code, info, ret, values, view)
            except Blocked:
                new_pc = None
            except Stop as stop:
                new_pc = stop.pc
            except (PtmcError, MemoryError, _Unfollowable):
                raise
            except Exception as e:  # noqa: BLE001 - a bug in a model step: say where
                if memory is not list:
                    raise _Unfollowable from None  # the direct run says what is wrong
                raise ModelError(f"exception in step {ct.code.thread.name}.{info.name} "
                                 f"({info.kernel_function}): {type(e).__name__}: {e}; "
                                 f"state: {self.layout.describe(state)}") from None
            made = mem.made
            if new_pc is not None:
                if new_pc == DONE_PC:
                    # A finished thread's locals are dead: reset them so that states that
                    # differ only in them are one state.
                    if self.reset_dead_locals:
                        for slot, value in zip(range(ct.code.lo, ct.code.hi), ct.code.dead):
                            values[slot] = value
                    if ct.code.stack_slot is not None:
                        values[ct.code.stack_slot] = ()  # no caller is left
                values[ct.pc_slot] = new_pc
                choices = tuple((label, options[i]) for label, options, i in made)
                tr = Transition(ct.tid, pc, choices, tuple(mem.events)) if choices or mem.events else ct.plain[pc]
                out.append((tr, tuple(values) if memory is list else values.writes()))
            if not made:
                return out
            script = _next_script(made)
            if script is None:
                return out

    def judge(self, fn):
        """Property functions are functions of the slots they read too: memoised the same
        way, over the slots of ``states`` laid end to end."""
        judge = self._judges.get(fn)
        if judge is None:
            judge = self._judges[fn] = _Judge(self, fn)
        return judge

    def settled(self, fn, state: tuple):
        """Known when ``fn``'s tree reaches a leaf reading only ``state`` (a witness that looks
        at the after state only when the before state makes it worth it)."""
        judge = self._judges.get(fn)
        return None if judge is None else judge.settled(state)

    def _writes(self, writes) -> tuple:
        """A leaf's writes ((slot, value), ...) of canonical values, each pair and each tuple of
        pairs shared by every leaf that writes the same (a tree has many leaves alike)."""
        pairs = []
        for slot, value in writes:
            value = self.canonical(slot, value)
            pairs.append(self._pairs.setdefault((slot, id(value)), (slot, value)))
        return self._pairs.setdefault(tuple(map(id, pairs)), tuple(pairs))

    def _learn(self, ct: "_Thread", pc: int, state: tuple):
        """Run the step on a recorder and add its read path and outcome to the tree; the leaf,
        or None when the step cannot be followed (it then always runs directly)."""
        recorder = _Recorder(state)
        try:
            outcomes = self._run(ct, pc, state, recorder.run)
        except _Unfollowable:
            ct.roots[pc] = None
            return None
        try:
            leaf = _Leaf([(tr, self._writes(writes)) for tr, writes in outcomes])
        except TypeError:
            raise ModelError(UNHASHABLE) from None
        try:
            ct.roots[pc] = _insert(ct.roots[pc], [(slot, state[slot]) for slot in recorder.reads], leaf)
        except (TypeError, _Unfollowable):  # unhashable, or a read path that is not a function
            ct.roots[pc] = None
            return None
        return leaf


# Where a thread's step leads from ``state``: walk its tree to a leaf (learn it on a miss).
_WALK = """\
    pc = state[{pc_slot}]
    if pc >= 0:
        node = roots{t}[pc]
        try:
            while node.__class__ is _Read:
                key = node.get(state)
                child = node.children.get(key)
                if child is not None and mixed:  # equal keys may differ in type
                    child = _find(node.children, key)
                if child is None:
                    break
                node = child
        except TypeError:  # an unhashable value
            raise ModelError(UNHASHABLE) from None
        if node.__class__ is not _Leaf:
            node = miss(thread{t}, pc, state)"""


class _Judge:
    """A property function of one or two states, with its decision tree (see ``judge``). A
    function that reads many slots (a whole-state check) or makes a large tree is simply
    called: its tree would hold about one leaf per state; so is one that reads none."""

    MAX_READS, MAX_LEAVES = 24, 4096

    def __init__(self, system: CompiledSystem, fn):
        self.system, self.fn, self.root, self.leaves = system, fn, _EMPTY, 0
        self.direct = System.judge(system, fn)

    def __call__(self, states: tuple):
        if self.root is None:
            return self.direct(states)
        key_state = states[0] if len(states) == 1 else states[0] + states[1]
        node, mixed = self.root, self.system.canonical.mixed
        while node.__class__ is _Read:
            key = node.get(key_state)
            node = _find(node.children, key) if mixed else node.children.get(key)
            if node is None:
                break
        if node.__class__ is _Result:
            return node.value
        return self._learn(states, key_state)

    def settled(self, state: tuple):
        node, size = self.root, len(state)
        while node.__class__ is _Read:
            if max(node.slots) >= size:
                return None  # it reads the after state here
            key = node.get(state)
            node = _find(node.children, key) if self.system.canonical.mixed else node.children.get(key)
        return node.value if node.__class__ is _Result else None

    def _learn(self, states: tuple, key_state: tuple):
        recorder, size = _Recorder(key_state), len(states[0])
        views = [self.system._mem(_Part(recorder, k * size, size), None) for k in range(len(states))]
        try:
            value = self.fn(*views)
        except Exception:  # noqa: BLE001 - called directly, it says what is wrong
            self.root = None
            return self.direct(states)
        self.leaves += 1
        if not recorder.reads or len(recorder.reads) > self.MAX_READS or self.leaves > self.MAX_LEAVES:
            # (reading nothing, it is a constant or it counts its calls: keep calling it)
            self.root = None
            return value
        try:
            self.root = _insert(self.root, [(slot, key_state[slot]) for slot in recorder.reads], _Result(value))
        except (TypeError, _Unfollowable):
            self.root = None
        return value


class _Part:
    """One state of a recorded pair: indices shifted into the recorder's concatenation."""

    __slots__ = ("recorder", "offset", "size")

    def __init__(self, recorder, offset: int, size: int):
        self.recorder, self.offset, self.size = recorder, offset, size

    def __getitem__(self, index):
        if index.__class__ is slice:
            return [self[i] for i in range(*index.indices(self.size))]
        if index.__class__ is not int:
            raise _Unfollowable
        if not -self.size <= index < self.size:
            raise IndexError("state index out of range")
        return self.recorder[self.offset + index % self.size]

    def __len__(self):
        return self.size


class _Result:
    """The leaf of a property function's tree: what it returned."""

    __slots__ = ("key", "twins", "value")

    def __init__(self, value):
        self.key, self.twins, self.value = None, [], value


class _Unfollowable(Exception):
    """The recorder cannot follow what a step does with the state."""


class _Recorder:
    """The state as one step's runs see it: reads of the state are noted in order, writes are
    kept per run. Anything but indexing, slicing, iteration and ``len`` raises."""

    __slots__ = ("state", "reads", "known", "written")

    def __init__(self, state: tuple):
        self.state, self.reads, self.known, self.written = state, [], set(), {}

    def run(self, state):
        self.written = {}
        return self

    def _slots(self, index):
        if index.__class__ is slice:
            return range(*index.indices(len(self.state)))
        if index.__class__ is not int:
            raise _Unfollowable
        return index + len(self.state) if index < 0 else index

    def __getitem__(self, index):
        slot = self._slots(index)
        if slot.__class__ is range:
            return [self[i] for i in slot]
        if slot in self.written:
            return self.written[slot]
        value = self.state[slot]  # (an IndexError ends an iteration)
        if slot not in self.known:
            self.known.add(slot)
            self.reads.append(slot)
        return value

    def __setitem__(self, index, value):
        slot = self._slots(index)
        if slot.__class__ is range:
            value = list(value)
            if len(value) != len(slot):
                raise _Unfollowable
            for i, v in zip(slot, value):
                self.written[i] = v
        else:
            if not 0 <= slot < len(self.state):
                raise IndexError("state index out of range")
            self.written[slot] = value

    def __len__(self):
        return len(self.state)

    def writes(self) -> tuple:
        return tuple(self.written.items())


class _Read:
    """A decision node: read ``slots`` (one look-up for all, a tuple of their values, or the
    value of a single slot), then go on at the child for that key. ``key``/``twins``: how the
    node's parent reached it, and nodes reached by equal keys of other types."""

    __slots__ = ("key", "twins", "slots", "get", "children")

    def __init__(self, slots):
        self.key, self.twins, self.children = None, [], {}
        self._read(slots)

    def _read(self, slots):
        self.slots, self.get = tuple(slots), itemgetter(*slots)


class _Leaf:
    """The end of a read path: the step's outcomes there, [(transition, writes)]; ``writes``
    and ``eventful`` (some outcome reports an event) say the same for ``changes``."""

    __slots__ = ("key", "twins", "outcomes", "writes", "eventful")

    def __init__(self, outcomes):
        self.key, self.twins, self.outcomes = None, [], outcomes
        self.writes = [writes for _, writes in outcomes]
        self.eventful = any(tr.events for tr, _ in outcomes)


_MISSING = object()  # no child for the key read (a miss: learn)


_EMPTY = object()  # the root of a step not yet run from any state


def _key(values):
    return values[0] if len(values) == 1 else tuple(values)


def _find(children: dict, key):
    """The child for ``key``, compared by type too."""
    child = children.get(key)
    if child is None or child.key is key or identical(child.key, key):
        return child
    return next((t for t in child.twins if identical(t.key, key)), None)


def _add(children: dict, key, child) -> None:
    child.key = key
    first = children.get(key)
    if first is None:
        children[key] = child
    else:
        first.twins.append(child)


def _chain(path: list, leaf: _Leaf):
    """A node reading every slot of ``path`` [(slot, value)] at once, leading to ``leaf``."""
    if not path:
        return leaf
    node = _Read([slot for slot, _ in path])
    _add(node.children, _key([value for _, value in path]), leaf)
    return node


def _split(node: _Read, j: int) -> None:
    """Make ``node`` read only its first ``j`` slots, with the rest in new nodes below it."""
    slots, entries = node.slots, [c for first in node.children.values() for c in (first, *first.twins)]
    node._read(slots[:j])
    node.children = {}
    for child in entries:
        values = child.key if len(slots) > 1 else (child.key,)
        top = _key(values[:j])
        below = _find(node.children, top)
        if below is None:
            below = _Read(slots[j:])
            _add(node.children, top, below)
        child.twins = []
        _add(below.children, _key(values[j:]), child)


def _insert(root, path: list, leaf: _Leaf):
    """``root`` with ``leaf`` at the end of ``path`` [(slot, value)]; _Unfollowable when the
    path contradicts the tree (the step is not a function of what it read)."""
    if root is _EMPTY:
        return _chain(path, leaf)
    node, k = root, 0
    while True:
        if node.__class__ is not _Read:
            raise _Unfollowable
        slots = node.slots
        part = path[k:k + len(slots)]
        j = 0
        while j < len(part) and part[j][0] == slots[j]:
            j += 1
        if j == 0:
            raise _Unfollowable  # which slot is read first here is fixed by what came before
        if j < len(slots):
            _split(node, j)
        key = _key([value for _, value in part[:j]])
        k += j
        child = _find(node.children, key)
        if child is None:
            _add(node.children, key, _chain(path[k:], leaf))
            return root
        if k == len(path):
            raise _Unfollowable
        node = child


class _Thread:
    """One thread as the compiled system runs it: its view, its reused Mem, its steps' trees."""

    def __init__(self, system: System, tid: int, code, memo: bool):
        self.tid, self.code, self.pc_slot = tid, code, code.pc_slot
        local_slot = dict(zip(code.names, range(code.lo, code.hi)))
        self.view = _view(code.thread, local_slot)
        self.mem = system._mem(list(system.initial), tid)
        self.targets = {DONE: DONE_PC, **code.by_name}
        self.plain = [Transition(tid, pc, (), ()) for pc in range(len(code.steps))]
        self.roots = [_EMPTY if memo else None for _ in code.steps]


def _view(thread, local_slot: dict):
    """An object that is ``thread`` except that its locals live in the state list ``_v``."""
    def local(slot):
        return property(lambda self: self._v[slot], lambda self, value: self._v.__setitem__(slot, value))
    cls = type(thread)
    sub = type(cls.__name__, (cls,), {"_ptmc_steps": cls.step_list(), "__module__": cls.__module__,
                                      "__qualname__": cls.__qualname__,
                                      **{name: local(slot) for name, slot in local_slot.items()}})
    view = object.__new__(sub)
    view.__dict__.update({k: v for k, v in thread.__dict__.items() if k not in local_slot})
    view._v = None
    return view
