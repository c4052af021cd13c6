"""State: the canonical flat encoding of a model, and the mutable view one step runs on.

A state is a flat tuple: first every shared cell (in declaration order), then for each thread
its program counter followed by its locals. Values are small immutable Python values (ints,
bools, None, strings, interned tuples), so a state is hashable, compact and compares exactly.
Nothing here uses Python's randomized ``hash()`` for anything reported: the explorer visits
states in an order fixed by the model alone.
"""
from __future__ import annotations

from itertools import compress
from operator import is_not

from .errors import ModelError

# Program-counter values of a thread that no longer runs a step.
DONE = -1  # finished normally
HUNG = -2  # stuck forever (e.g. it spun on a lock it already holds)
OOPS = -3  # killed by a bad access that cannot continue (the kernel would oops)
STOPPED = {DONE: "done", HUNG: "hung", OOPS: "oops"}


class Blocked(Exception):
    """Raised inside a step that cannot run now (it waits, e.g. for a lock to be free)."""


class Stop(Exception):
    """Raised inside a step that ends its thread abnormally: ``pc`` is HUNG or OOPS."""

    def __init__(self, pc: int):
        super().__init__(STOPPED[pc])
        self.pc = pc


def identical(a, b) -> bool:
    """Equal *and* of the same types all the way down: ``False`` and ``0``, ``1`` and ``1.0``, a
    ``PT`` and a plain tuple compare equal in Python but are different states. Used wherever
    two states are compared (the visited store, trace replay), never Python equality alone."""
    if a is b:
        return True
    if a.__class__ is not b.__class__:
        return False
    if isinstance(a, tuple):
        if len(a) != len(b):
            return False
        # Most slots of two equal states hold the very same objects: look only at the others.
        return all(identical(x, y) for x, y in compress(zip(a, b), map(is_not, a, b)))
    if isinstance(a, frozenset):
        return set(map(_typed, a)) == set(map(_typed, b))
    return a == b


def _typed(value):
    """A key that tells apart values Python's equality merges (for the members of a frozenset)."""
    if isinstance(value, tuple):
        return (value.__class__, tuple(map(_typed, value)))
    if isinstance(value, frozenset):
        return (frozenset, frozenset(map(_typed, value)))
    return (value.__class__, value)


def encode(value) -> bytes:
    """The canonical type-tagged encoding of a state value: stable across runs and machines
    (never Python's ``hash()``), ``False``, ``0`` and ``0.0`` apart, so are a ``PT`` and a
    tuple; the fingerprint store hashes it, the symmetry reduction orders states by it."""
    cls = value.__class__
    if value is None:
        return b"N"
    if cls is bool:
        return b"T" if value else b"F"
    if cls is int:
        return b"i%d;" % value
    if cls is float:
        return b"f" + value.hex().encode() + b";"
    if cls is str:
        data = value.encode()
        return b"s%d:" % len(data) + data
    if isinstance(value, tuple):
        return b"(" + _name(cls) + b":" + b"".join(map(encode, value)) + b")"
    if isinstance(value, frozenset):
        return b"{" + _name(cls) + b":" + b"".join(sorted(map(encode, value))) + b"}"
    if isinstance(value, type) or callable(value):
        return b"@" + _name(value) + b";"
    text = repr(value)
    if " at 0x" in text:
        raise ModelError(f"a state holds {text}, which has no stable fingerprint: use ints, strings, "
                         "tuples or functions defined at module level")
    return b"?" + _name(cls) + b":" + text.encode() + b";"


def _name(obj) -> bytes:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj.__class__.__qualname__)}".encode()


def apply_writes(state: tuple, changes: list) -> list[tuple]:
    """The successors of ``state`` that ``changes`` gives as the (slot, value) pairs each one's
    step writes (``CompiledSystem.changer``)."""
    out = []
    for writes in changes:
        values = list(state)
        for slot, value in writes:
            values[slot] = value
        out.append(tuple(values))
    return out


class Canonical:
    """One object per typed value and slot: ``canonical(slot, v)`` is the first value seen in
    ``slot`` that is ``identical`` to ``v``. States built only of canonical objects hold the very
    same object wherever they hold identical values; and while no slot has two canonical
    objects that are equal (``mixed`` stays false: no ``False`` beside a ``0`` in one slot, no
    ``PT`` beside an equal tuple), Python's equality of two such states *is* identity, so the
    store needs no ``identical`` check on a hit. (Equal values in different slots are never
    compared, so they do not count.)"""

    def __init__(self, slots: int):
        self.pools: list[dict] = [{} for _ in range(slots)]  # value -> the first canonical object equal to it
        self.twins: dict[tuple, list] = {}  # (slot, id(first)) -> canonical objects equal to it, of other types
        self.mixed = False

    def __call__(self, slot: int, value):
        first = self.pools[slot].setdefault(value, value)  # TypeError: unhashable
        if first is value or identical(first, value):
            return first
        twins = self.twins.setdefault((slot, id(first)), [])
        for twin in twins:
            if identical(twin, value):
                return twin
        twins.append(value)
        self.mixed = True
        return value

    def known(self, slot: int, value):
        """The canonical object ``identical`` to ``value`` in ``slot``, or None if there is none
        yet (nothing is added)."""
        first = self.pools[slot].get(value)  # TypeError: unhashable
        if first is None or first is value or identical(first, value):
            return first
        return next((t for t in self.twins.get((slot, id(first)), ()) if identical(t, value)), None)


_id_sets: dict[tuple, tuple] = {}


def id_set(values) -> tuple:
    """A sorted tuple of ints (thread ids, page numbers), one shared object per value, so that
    equal states hold the very same object there and ``identical`` sees it at once. Ints only:
    a dict keyed by value would merge ``(True,)`` and ``(1,)``."""
    key = tuple(sorted(values))
    return _id_sets.setdefault(key, key)


class Names:
    """What one permutation of interchangeable threads renames (see ptmc.reduce.symmetry): thread
    ids, and the data pages the threads own. A cell that holds names says how to rename its
    value (``Layout.cell(..., holds=fn)``, ``fn(value, names)``); a value class that names a
    data page has a ``renamed(names)`` method (``present(page)``, a huge pmd)."""

    __slots__ = ("tids", "pages")

    def __init__(self, tids: dict, pages: dict):
        self.tids, self.pages = tids, pages

    def thread(self, tid):
        return self.tids.get(tid, tid)

    def threads(self, tids) -> tuple:
        return id_set(self.tids.get(t, t) for t in tids)

    def mask(self, mask: int) -> int:
        out, t = 0, 0
        while mask:
            if mask & 1:
                out |= 1 << self.tids.get(t, t)
            mask >>= 1
            t += 1
        return out

    def page(self, page: int) -> int:
        return self.pages.get(page, page)


def holds_thread(value, names: Names):
    """``holds=`` of a cell holding one thread id or None (a lock's holder)."""
    return None if value is None else names.thread(value)


def holds_threads(value, names: Names) -> tuple:
    """``holds=`` of a cell holding a sorted tuple of thread ids (``id_set``)."""
    return names.threads(value)


def show(value) -> str:
    """How a value is written in traces, diagrams and JSON."""
    if value is None:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


class Layout:
    """Where every variable lives in the flat state tuple, and what it is called."""

    def __init__(self):
        self.names: list[str] = []
        self.index: dict[str, int] = {}
        self.initial: list = []
        self.tags: dict[str, list[int]] = {}
        self.shown: dict[int, object] = {}  # slot -> function(value, layout) -> str
        self.quiet: set[int] = set()
        self.holds: dict[int, object] = {}  # slot -> fn(value, Names): the value with names renamed
        self.owner: dict[int, object] = {}  # slot -> the thread name or ("pages", first, n) it belongs to
        self.objects: dict[str, object] = {}  # named memory objects, e.g. the page tables
        self.threads: list = []
        self.pc_slot: list[int] = []  # per thread id
        self.local_slots: list[list[int]] = []
        self.stack_slot: list[int | None] = []  # per thread id: its call stack, if it calls
        self.frozen = False
        self._pcs: dict[int, int] = {}
        self._kinds: dict[str, list[int]] = {}

    def cell(self, name: str, initial, tag: str | None = None, shown=None, quiet: bool = False,
             holds=None, owner=None) -> int:
        """Declare a shared variable. ``quiet``: a primitive's bookkeeping, whose reads traces
        do not show (its changes they do). For the symmetry reduction: ``holds``, how a value
        that names threads is renamed (``holds_thread``, ``holds_threads``, or a function
        ``fn(value, names)``, see ``Names``); ``owner``, whose the cell is when it is a
        per-thread object: a thread's name (``zap1.tlb_batch_rcu`` is zap1's) or the data pages
        ``("pages", first, n)`` of a folio (``d5.mapcount``). An owned cell is named
        ``<owner's name>.<role>`` and moves with its owner."""
        if self.frozen:
            raise ModelError(f"shared variable {name!r} declared after the model was set up")
        if name in self.index:
            raise ModelError(f"shared variable {name!r} declared twice")
        if hasattr(Mem, name):
            raise ModelError(f"shared variable {name!r} would hide Mem.{name}: choose another name")
        slot = len(self.names)
        self.names.append(name)
        self.index[name] = slot
        self.initial.append(initial)
        if tag:
            self.tags.setdefault(tag, []).append(slot)
        if shown:
            self.shown[slot] = shown
        if quiet:
            self.quiet.add(slot)
        if holds:
            self.holds[slot] = holds
        if owner is not None:
            self.owner[slot] = owner
        return slot

    def add_thread(self, thread) -> None:
        tid = len(self.threads)
        self.threads.append(thread)
        self.pc_slot.append(len(self.names))
        self.names.append(f"{thread.name}.pc")
        self.initial.append(thread.start_pc)
        slots = []
        for local, value in thread.locals_initial().items():
            slots.append(len(self.names))
            self.names.append(f"{thread.name}.{local}")
            self.initial.append(value)
        self.local_slots.append(slots)
        self.stack_slot.append(len(self.names) if thread.has_stack() else None)
        if thread.has_stack():  # return addresses, innermost last ("._": bookkeeping, not shown)
            self.names.append(f"{thread.name}._stack")
            self.initial.append(())
        thread.tid = tid

    def show_slot(self, slot: int, value) -> str:
        tid = self._pc_thread().get(slot)
        if tid is not None:
            return STOPPED.get(value) or self.threads[tid].steps[value].name
        shown = self.shown.get(slot)
        return shown(value, self) if shown else show(value)

    def _pc_thread(self) -> dict[int, int]:
        """pc slot -> thread id (properties ask for a thread's pc in every state)."""
        if len(self._pcs) != len(self.pc_slot):
            self._pcs = {slot: tid for tid, slot in enumerate(self.pc_slot)}
        return self._pcs

    def of_kind(self, kind: str) -> list[int]:
        """The ids of the threads of a kind (see thread_matches), in order."""
        tids = self._kinds.get(kind)
        if tids is None or not self.frozen:
            tids = self._kinds[kind] = [tid for tid, t in enumerate(self.threads) if thread_matches(kind, t.name)]
        return tids

    def thread_name(self, tid: int) -> str:
        return self.threads[tid].name

    def describe(self, state: tuple) -> str:
        """One line naming every variable, for error messages."""
        return ", ".join(f"{n}={self.show_slot(i, v)}" for i, (n, v) in enumerate(zip(self.names, state)))

    def changes(self, before: tuple, after: tuple) -> dict[str, tuple[str, str]]:
        return {self.names[i]: (self.show_slot(i, a), self.show_slot(i, b))
                for i, (a, b) in enumerate(zip(before, after)) if not identical(a, b)}


def thread_matches(pattern: str, name: str) -> bool:
    """A thread name (``zap1``), its kind (``zap`` names zap, zap1, zap2, ...) or ``*``."""
    if pattern in ("*", name):
        return True
    return name.startswith(pattern) and name[len(pattern):].isdigit()


class ThreadView:
    """A thread as property code sees it: ``pc`` is the name of its next step (or done, hung,
    oops), its locals are attributes (``s.thread("zap").table``)."""

    __slots__ = ("_mem", "tid")

    def __init__(self, mem, tid: int):
        self._mem, self.tid = mem, tid

    @property
    def name(self) -> str:
        return self._mem.layout.thread_name(self.tid)

    @property
    def pc(self) -> str:
        layout = self._mem.layout
        slot = layout.pc_slot[self.tid]
        return layout.show_slot(slot, self._mem.v[slot])

    def __getattr__(self, local):
        layout = self._mem.layout
        slots = layout.local_slots[self.tid]
        for slot in slots:
            if layout.names[slot] == f"{self.name}.{local}":
                return self._mem.v[slot]
        names = ", ".join(layout.names[slot].split(".", 1)[1] for slot in slots) or "none"
        raise AttributeError(f"thread {self.name} has no local {local!r} (locals: {names})")

    def __repr__(self):
        return f"<thread {self.name} at {self.pc}>"


class Mem:
    """The memory one step sees: shared cells by name (``s.pmd``), the running thread, events.

    Every access a step makes goes through ``slot``/``load``/``store`` or the named-cell
    attributes, so a step's read and write sets are knowable for a partial-order reduction.
    A model gets its own subclass (``bound``) whose shared variables are properties.
    """

    __slots__ = ("v", "tid", "events", "script", "made")
    layout: Layout = None  # class attributes of the per-model subclass
    model = None
    known_events: dict = {}  # event name -> description

    def __init__(self, values: list, tid: int | None, script=()):
        self.v = values
        self.tid = tid
        self.events = []
        self.script = script
        self.made = []  # (label, options, index) per choice taken

    def __getattr__(self, name):
        raise AttributeError(f"no shared variable {name!r}")

    def slot(self, ref, access: str) -> int:
        """The slot a reference names: a shared variable's name, or an object that knows
        (a page-table page field checks here that the page is still the one pointed to)."""
        if ref.__class__ is str:
            return self.layout.index[ref]
        if ref.__class__ is int:
            return ref
        return ref.resolve(self, access)

    def load(self, ref):
        if ref.__class__ is str:  # the common case, inlined: this is the explorer's hot path
            return self.v[self.layout.index[ref]]
        return self.v[self.slot(ref, "reads")]

    def store(self, ref, value) -> None:
        if ref.__class__ is str:
            self.v[self.layout.index[ref]] = value
        else:
            self.v[self.slot(ref, "writes")] = value

    @property
    def actor(self) -> str:
        """The running thread's name (for messages)."""
        return self.layout.thread_name(self.tid) if self.tid is not None else "setup"

    def thread(self, name: str) -> ThreadView:
        """The thread called ``name`` (for properties: ``s.thread("zap").pc``)."""
        for tid, thread in enumerate(self.layout.threads):
            if thread.name == name:
                return ThreadView(self, tid)
        raise ModelError(f"no thread named {name!r} (threads: "
                         f"{', '.join(t.name for t in self.layout.threads)})")

    def threads(self, kind: str = "*") -> list[ThreadView]:
        """The threads of a kind (``zap``: zap, zap1, zap2, ...), in order; all by default."""
        return [ThreadView(self, tid) for tid in self.layout.of_kind(kind)]

    def report(self, kind: str, message: str) -> None:
        """A bad event (use-after-free, self-deadlock, ...), raised by a kernel primitive or a
        model step; the model must know it (ptmc.kernel.EVENTS or the model's EVENTS)."""
        if kind not in self.known_events:
            raise ModelError(f"{self.actor} reports event {kind!r}, which neither the kernel "
                             "primitives nor the model's EVENTS declare")
        if (kind, message) not in self.events:  # e.g. a lock's load and store of one freed page
            self.events.append((kind, message))

    def choose(self, label: str, options):
        """A nondeterministic choice: the explorer tries every option, in order."""
        options = tuple(options)
        if not options:
            raise Blocked
        n = len(self.made)
        index = self.script[n] if n < len(self.script) else 0
        self.made.append((label, options, index))
        return options[index]

    def maybe(self, label: str) -> bool:
        """A yes/no event outside the model's control, such as ``need_resched()``."""
        return self.choose(label, (False, True))


class _Recording(Mem):
    """A Mem that also records every slot a step touches: used when a trace is replayed, so
    that counterexamples can show what a step read (the explorer's hot path does not pay)."""

    __slots__ = ("touched",)

    def __init__(self, values: list, tid: int | None, script=()):
        super().__init__(values, tid, script)
        self.touched = []

    def slot(self, ref, access: str) -> int:
        slot = super().slot(ref, access)
        self.touched.append(slot)
        return slot

    def load(self, ref):
        return self.v[self.slot(ref, "reads")]

    def store(self, ref, value) -> None:
        self.v[self.slot(ref, "writes")] = value


def bound(layout: Layout, model, events: dict, recording: bool = False) -> type:
    """The Mem class of one model: every shared variable is an attribute (``s.pmd``)."""
    def cell(slot):
        if recording:
            return property(lambda s: (s.touched.append(slot), s.v[slot])[1],
                            lambda s, value: (s.touched.append(slot), s.v.__setitem__(slot, value)))
        return property(lambda s: s.v[slot], lambda s, value: s.v.__setitem__(slot, value))
    cells = {name: cell(slot) for name, slot in layout.index.items() if name.isidentifier()}
    base = _Recording if recording else Mem
    return type("Mem", (base,), {"__slots__": (), "layout": layout, "model": model,
                                 "known_events": events, **cells})


class _Declaring(Mem):
    """The memory ``Model.init`` runs on: assigning a new name declares a shared variable."""

    __slots__ = ()

    def __getattr__(self, name):
        try:
            return self.v[self.layout.index[name]]
        except KeyError:
            raise AttributeError(f"no shared variable {name!r}") from None

    def __setattr__(self, name, value):
        if name in Mem.__slots__:
            object.__setattr__(self, name, value)
            return
        slot = self.layout.index.get(name)
        if slot is None:
            self.layout.cell(name, value)  # self.v is layout.initial
        else:
            self.v[slot] = value


def declaring(layout: Layout, model, events: dict) -> Mem:
    cls = type("Mem", (_Declaring,), {"__slots__": (), "layout": layout, "model": model,
                                      "known_events": events})
    return cls(layout.initial, None)
