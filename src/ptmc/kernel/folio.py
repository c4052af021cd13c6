"""Folios (include/linux/mm.h, mm/rmap.c, mm/filemap.c, mm/gup.c): the data pages entries map.

A folio is ``nr`` consecutive data pages (a small folio is one page; an mTHP or a PMD-sized THP
several) named after its first page, ``d<k>``. Its state is in cells a model declares as it
needs them: ``d<k>.mapcount`` (page table mappings: one per pte, one per pmd mapping it whole),
``.refcount``, ``.pincount`` (FOLL_PIN references of a large folio), ``.lock`` (the folio lock,
PG_locked: a sleeping lock), ``.discarded`` (a ghost: the folio was freed or replaced, e.g. by
a collapse, so nothing may still map or have pinned it). Updates of a field the model did not
declare are skipped (it does not maintain that count: ``Model.maintains`` says what it keeps
exact); reading one is a model error. Page 0 is the shared zero page: not a folio anyone counts.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError
from ..state import HUNG, Blocked, Stop, holds_thread
from .pte import ZERO_PAGE, pte_present
from .sched import might_sleep
from .spinlock import show_holder

FIELDS = ("mapcount", "refcount", "pincount", "lock", "discarded")
FOLIO_LOCK = "folio_lock"  # the tag of every folio lock cell
GUP_PIN_COUNTING_BIAS = 1024  # include/linux/mm.h: a pin of a small folio, counted in _refcount


@dataclass(frozen=True)
class Folio:
    head: int  # its first data page
    nr: int = 1
    anon: bool = True  # folio_test_anon()

    def __str__(self):
        return f"d{self.head}"

    def field(self, name: str) -> str:
        return f"d{self.head}.{name}"


def declare_folio(mem, page: int, nr: int = 1, *, anon: bool = True, fields=("mapcount",),
                  **initial) -> Folio:
    """Declare the folio of data pages ``page`` .. ``page + nr - 1`` with the cells ``fields``
    (initial values by keyword: ``mapcount=1``)."""
    if page == ZERO_PAGE:
        raise ModelError("data page 0 is the shared zero page, not a folio")
    bad = [f for f in (*fields, *initial) if f not in FIELDS]
    if bad:
        raise ModelError(f"folio d{page}: unknown field {bad[0]!r} (fields: {', '.join(FIELDS)})")
    folios = mem.layout.objects.setdefault("folios", {})
    folio = Folio(page, nr, anon)
    for k in range(page, page + nr):
        if k in folios:
            raise ModelError(f"data page {k} belongs to two folios")
        folios[k] = folio
    declare_folio_fields(mem, folio, fields, **initial)
    return folio


def declare_folio_fields(mem, folio: Folio, fields, **initial) -> None:
    """Declare the cells ``fields`` of a folio that lacks them (a model whose actors count
    references declares them for every folio: ``refcount=1``)."""
    for name in fields:
        if name not in FIELDS:
            raise ModelError(f"folio {folio}: unknown field {name!r} (fields: {', '.join(FIELDS)})")
        if folio.field(name) in mem.layout.index:
            continue
        default = {"lock": None, "discarded": False}.get(name, 0)
        mem.layout.cell(folio.field(name), initial.get(name, default), owner=("pages", folio.head, folio.nr),
                        shown=show_holder if name == "lock" else None,
                        tag=FOLIO_LOCK if name == "lock" else None,
                        holds=holds_thread if name == "lock" else None)


def page_folio(s, page: int) -> Folio | None:
    """The folio a data page belongs to (None for the zero page or an undeclared page)."""
    return s.layout.objects.get("folios", {}).get(page)


def _has(s, folio: Folio, name: str) -> bool:
    return folio.field(name) in s.layout.index


def _read(s, folio: Folio, name: str):
    if not _has(s, folio, name):
        raise ModelError(f"folio {folio} has no {name}: declare_folio(mem, ..., fields=(..., {name!r}))")
    return s.load(folio.field(name))


def _add(s, folio: Folio | None, name: str, n: int) -> None:
    if folio is not None and _has(s, folio, name):
        cell = folio.field(name)
        s.store(cell, s.load(cell) + n)


# --- rmap (mapcount)

def folio_mapcount(s, folio: Folio) -> int:
    return _read(s, folio, "mapcount")


def folio_add_new_anon_rmap(s, folio: Folio, nr: int = 1) -> None:
    """A new anonymous folio mapped by ``nr`` ptes (RMAP_EXCLUSIVE)."""
    _add(s, folio, "mapcount", nr)


def folio_add_rmap_ptes(s, folio: Folio, nr: int = 1) -> None:
    """folio_add_anon_rmap_ptes() / folio_add_file_rmap_ptes()."""
    _add(s, folio, "mapcount", nr)


def folio_remove_rmap_ptes(s, folio: Folio, nr: int = 1) -> None:
    _add(s, folio, "mapcount", -nr)
    if _has(s, folio, "mapcount") and s.load(folio.field("mapcount")) < 0:
        s.report("bad-rmap", f"{s.actor}: folio {folio} mapcount below zero (print_bad_pte())")


def folio_add_rmap_pmd(s, folio: Folio) -> None:
    """Mapped whole by one huge pmd (the entire mapcount)."""
    _add(s, folio, "mapcount", 1)


def folio_remove_rmap_pmd(s, folio: Folio) -> None:
    _add(s, folio, "mapcount", -1)


# --- references

def folio_ref_count(s, folio: Folio) -> int:
    return _read(s, folio, "refcount")


def folio_ref_add(s, folio: Folio, n: int) -> None:
    _add(s, folio, "refcount", n)


def folio_get(s, folio: Folio) -> None:
    _add(s, folio, "refcount", 1)


def folio_put(s, folio: Folio) -> None:
    """Drop a reference; the last one frees the folio (it is discarded)."""
    _add(s, folio, "refcount", -1)
    if _has(s, folio, "refcount") and s.load(folio.field("refcount")) == 0:
        folio_mark_discarded(s, folio)


def folio_try_get(s, folio: Folio) -> bool:
    """folio_try_get(): take a reference unless the count is zero (the folio is being freed)."""
    if _read(s, folio, "refcount") == 0:
        return False
    folio_get(s, folio)
    return True


def try_grab_folio_fast(s, folio: Folio, pin: bool) -> bool:
    """mm/gup.c:try_grab_folio_fast(): FOLL_GET takes a reference; FOLL_PIN of a small folio adds
    GUP_PIN_COUNTING_BIAS to the refcount, of a large one a reference and a pincount. Fails when
    the refcount is already zero (folio_try_get())."""
    if _read(s, folio, "refcount") == 0:
        return False
    if not pin:
        folio_get(s, folio)
    elif folio.nr == 1:
        folio_ref_add(s, folio, GUP_PIN_COUNTING_BIAS)
    else:
        folio_ref_add(s, folio, 1)
        _add(s, folio, "pincount", 1)
    return True


def gup_put_folio(s, folio: Folio, pin: bool) -> None:
    """Undo try_grab_folio_fast() (the back-off when a recheck fails, or unpin_user_page())."""
    if not pin:
        folio_put(s, folio)
    elif folio.nr == 1:
        folio_ref_add(s, folio, -GUP_PIN_COUNTING_BIAS)
    else:
        _add(s, folio, "pincount", -1)
        folio_put(s, folio)


def folio_maybe_dma_pinned(s, folio: Folio) -> bool:
    if folio.nr > 1:
        return _read(s, folio, "pincount") > 0
    return _read(s, folio, "refcount") >= GUP_PIN_COUNTING_BIAS


# --- the folio lock (PG_locked): a sleeping lock

def folio_trylock(s, folio: Folio) -> bool:
    if _read(s, folio, "lock") is not None:
        return False
    s.store(folio.field("lock"), s.tid)
    return True


def folio_lock(s, folio: Folio) -> None:
    """Sleep until the folio lock is free, then take it (__folio_lock()); the same thread
    locking it again never wakes up."""
    holder = _read(s, folio, "lock")
    if holder == s.tid:
        s.report("self-deadlock", f"{s.actor} locks folio {folio}, which it has locked already")
        raise Stop(HUNG)
    might_sleep(s, f"locks folio {folio}")
    if holder is not None:
        raise Blocked
    s.store(folio.field("lock"), s.tid)


def folio_unlock(s, folio: Folio) -> None:
    if _read(s, folio, "lock") != s.tid:
        s.report("bad-unlock", f"{s.actor} unlocks folio {folio}, which it has not locked")
    s.store(folio.field("lock"), None)


def folio_test_locked(s, folio: Folio) -> bool:
    return _read(s, folio, "lock") is not None


# --- the discarded ghost

def folio_mark_discarded(s, folio: Folio) -> None:
    """The folio was freed, or replaced by a copy (collapse, migration): a ghost flag."""
    if _has(s, folio, "discarded"):
        s.store(folio.field("discarded"), True)


def folio_test_discarded(s, folio: Folio) -> bool:
    return _read(s, folio, "discarded")


# --- for properties

def mapcounts_match(s, mappings) -> str | bool:
    """Every declared folio mapcount equals the mappings ``mappings`` lists (ptes and huge pmds
    found linked in the page tables: an iterable of (folio, count)). True, or what differs."""
    found: dict = {}
    for folio, n in mappings:
        found[folio] = found.get(folio, 0) + n
    for folio in dict.fromkeys(s.layout.objects.get("folios", {}).values()):
        if not _has(s, folio, "mapcount"):
            continue
        count = s.load(folio.field("mapcount"))
        if count != found.get(folio, 0):
            return f"{folio} has mapcount {count} but {found.get(folio, 0)} linked entries map it"
    return True


def pte_folio(s, pte) -> Folio | None:
    """The folio a present pte maps (None for none, non-present and the zero page)."""
    return page_folio(s, pte[0]) if pte_present(pte) else None
