"""Counters: what a model counts, declared once, measured on states and reasoned about by z3.

A model that keeps counts (a refcount, the number of mapped entries) declares them in one
place, a ``Counters`` subclass set as the model's ``counters`` attribute:

    class PerTable(Counters):
        '''Per PTE page: pte_refcount == non-none entries + references threads hold.'''
        page = ("live", "refcount", "entries")      # measured per PTE page by of_page()
        thread = ("refs",)                          # measured per thread and page by of_thread()
        sums = {"visitors": "refs"}                 # a thread counter summed over all threads
        sizes = {"PTRS_PER_PTE": "entries"}         # a symbol and the model parameter it is
        domain = "0 <= entries <= PTRS_PER_PTE"     # what every state satisfies by construction
        invariant = "refcount == entries + visitors if live else refcount == 0"

        def of_page(self, page): ...                # page: a PageView
        def of_thread(self, t, page): ...           # t: the thread's locals

Thread counters are natural numbers, and functions of the thread's locals and the page's
identity only (``page.ptr``: which page, which generation), never of its entries or fields; the
explorer relies on that to measure cheaply. Everything is counted per PTE page of the pool
(``PageView``): a page freed and allocated again is a new page (its generation changed), so
counts held through a stale pointer do not count for the new one.

Three users: steps declare their effect on these names (``@step(..., effect={...})``); z3
proves from those effects that ``invariant`` is inductive for any PTRS_PER_PTE and any number
of threads (effects.py); the explorer checks on every transition that the code changed the
measured counters exactly as declared (link.py).
"""
from __future__ import annotations

import weakref
from types import SimpleNamespace

from ..errors import ModelError
from ..kernel.pgtable import pt
from .expr import Expr


class Counters:
    page: tuple = ()
    thread: tuple = ()
    sums: dict = {}
    sizes: dict = {}
    domain: str = "True"
    invariant: str = "True"

    def of_page(self, page) -> dict:
        raise NotImplementedError

    def of_thread(self, t, page) -> dict:
        return {}

    def names(self, model) -> set:
        """Every name an effect or invariant expression may use."""
        return {*self.page, *self.thread, *self.sums, *self.sizes, *type(model).variants()}

    def describe(self, layout, model, state: tuple, pages) -> list[str]:
        """The counters of ``pages`` in ``state``, for the context of a trace step
        (``pt0: refcount=2 entries=1 visitors=1``)."""
        m = meter(self, layout, model)
        return [f"pt{k}: " + " ".join(f"{n}={v}" for n, v in m.measure_page(k, state)[1].items())
                for k in sorted(pages) if state[m.pages[k][1]]]

    def observer(self, system):
        """The explorer's per-transition check that steps change these counters as declared."""
        from .link import Link  # link.py builds on this module
        return Link(system, self)

    def compiled(self, model) -> "Compiled":
        cache = self.__dict__.setdefault("_compiled", {})
        key = type(model)
        if key not in cache:
            cache[key] = Compiled(self, model)
        return cache[key]


class Compiled:
    """A Counters declaration checked against its model, expressions parsed once."""

    def __init__(self, counters: Counters, model):
        where = f"{type(model).name}: counters"
        names = counters.names(model)
        dup = set(counters.page) & set(counters.thread)
        if dup:
            raise ModelError(f"{where}: {', '.join(sorted(dup))} declared both per page and per thread")
        for total, source in counters.sums.items():
            if source not in counters.thread:
                raise ModelError(f"{where}: sum {total} adds up {source!r}, which is not a thread counter")
        for symbol, param in counters.sizes.items():
            if param not in type(model).params():
                raise ModelError(f"{where}: size {symbol} is parameter {param!r}, which the model lacks")
        self.counters = counters
        self.domain = Expr(counters.domain, f"{where}: domain")
        self.invariant = Expr(counters.invariant, f"{where}: invariant")
        for e in (self.domain, self.invariant):
            e.check_names(names)
        self.names = names
        self.alternatives: dict = {}  # step function -> its parsed effect (effects.alternatives)

    def constants(self, model) -> dict:
        """Sizes and variant flags of a model instance: the constants of its expressions."""
        out = {symbol: getattr(model, param) for symbol, param in self.counters.sizes.items()}
        out.update({v: getattr(model, v) for v in type(model).variants()})
        return out


class PageView:
    """One PTE page of the pool as counters see it: its identity (``ptr``, the pointer a thread
    would hold), whether it is allocated (``live``), its entries, its fields, and the model
    instance (for its parameters)."""

    __slots__ = ("index", "ptr", "live", "entries", "model", "_fields", "_state")

    def __init__(self, index, ptr, live, entries, model, fields, state):
        self.index, self.ptr, self.live, self.entries = index, ptr, live, entries
        self.model, self._fields, self._state = model, fields, state

    def field(self, name: str):
        return self._state[self._fields[name]]

    def __str__(self):
        return f"pt{self.index}"


class Meter:
    """Measures a model's counters on the states of one layout. Both kinds of counter are pure
    functions of a few slots (a page's cells; a thread's locals and a page's identity), so they
    are memoised by those values: most states share most of them."""

    CACHE_LIMIT = 1 << 20  # entries per memo before it is cleared

    def __init__(self, counters: Counters, layout, model):
        tables = layout.objects.get("pgtables")
        if tables is None:
            raise ModelError("a model with counters counts per PTE page: it needs PageTables")
        self.counters, self.model = counters, model
        self.pages = []
        for k, base in enumerate(tables.base):
            fields = {name: base + off for name, off in tables.offset.items()}
            entries = tuple(fields[f"e{i}"] for i in range(tables.entries))
            self.pages.append((k, base, base + 1, entries, fields))
        self.page_slots = [tuple(sorted(p[4].values())) for p in self.pages]
        self.threads = [tuple(zip(thread.locals_initial(), slots))
                        for thread, slots in zip(layout.threads, layout.local_slots)]
        self.local_slots = [tuple(slots) for slots in layout.local_slots]
        self._paged, self._owned, self._owned_all = {}, {}, {}

    def thread_locals(self, state: tuple, tid: int):
        """A thread's locals by name (``t.refs``), as counters read them."""
        return SimpleNamespace(**{n: state[sl] for n, sl in self.threads[tid]})

    def page(self, k: int, state: tuple) -> PageView:
        _, live, gen, entries, fields = self.pages[k]
        return PageView(k, pt(k, state[gen]), bool(state[live]), tuple(state[e] for e in entries),
                        self.model, fields, state)

    def page_counts(self, k: int, state: tuple) -> dict:
        """The page counters of page ``k``."""
        key = (k, *[state[sl] for sl in self.page_slots[k]])
        got = self._paged.get(key)
        if got is None:
            got = dict(self.counters.of_page(self.page(k, state)))
            missing = [n for n in self.counters.page if n not in got]
            if missing:
                raise ModelError(f"counters.of_page() did not measure {', '.join(missing)}")
            if len(self._paged) > self.CACHE_LIMIT:
                self._paged.clear()
            self._paged[key] = got
        return got

    def thread_counts(self, tid: int, k: int, state: tuple) -> dict:
        """The thread counters of thread ``tid`` for page ``k``."""
        _, live, gen, _, _ = self.pages[k]
        key = (tid, k, state[gen], state[live], *[state[sl] for sl in self.local_slots[tid]])
        got = self._owned.get(key)
        if got is None:
            raw = self.counters.of_thread(self.thread_locals(state, tid), self.page(k, state))
            got = {n: raw.get(n, 0) for n in self.counters.thread}
            if len(self._owned) > self.CACHE_LIMIT:
                self._owned.clear()
            self._owned[key] = got
        return got

    def thread_counts_all(self, tid: int, state: tuple) -> tuple:
        """The thread counters of thread ``tid`` for every page, in one memo lookup."""
        key = (tid, *[state[sl] for sl in self.local_slots[tid]],
               *[state[sl] for _, live, gen, _, _ in self.pages for sl in (live, gen)])
        got = self._owned_all.get(key)
        if got is None:
            got = tuple(self.thread_counts(tid, k, state) for k in range(len(self.pages)))
            if len(self._owned_all) > self.CACHE_LIMIT:
                self._owned_all.clear()
            self._owned_all[key] = got
        return got

    def measure_page(self, k: int, state: tuple) -> tuple:
        """(page, page counters + sums, [thread counters per thread id]) for page ``k``."""
        values = dict(self.page_counts(k, state))
        per_thread = [self.thread_counts(tid, k, state) for tid in range(len(self.threads))]
        for total, source in self.counters.sums.items():
            values[total] = sum(c[source] for c in per_thread)
        return self.page(k, state), values, per_thread

    def measure(self, state: tuple) -> list:
        """``measure_page`` of every PTE page."""
        return [self.measure_page(k, state) for k in range(len(self.pages))]


_meters: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def meter(counters: Counters, layout, model) -> Meter:
    """The (cached) meter of ``counters`` on ``layout``, a layout of ``model``."""
    m = _meters.get(layout)
    if m is None or m.counters is not counters or m.model is not model:
        m = _meters[layout] = Meter(counters, layout, model)
    return m
