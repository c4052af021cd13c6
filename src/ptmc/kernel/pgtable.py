"""Page tables: pmd slots in PMD tables, each with its lock (pml), and a pool of PTE pages.

A model declares one or more *pmd slots* (``slots=("pmd",)``, the default: one PMD_SIZE range
whose pmd entry is the shared cell ``pmd``), each in a PMD table (``pmd_tables``: slot -> table
number, default all in table 0). A pmd value is

    None                pmd_none()
    PT(page, gen)       a PTE table (pmd_present(), not a leaf): the page and its generation
    huge_pmd(page)      pmd_trans_huge(): a PMD-sized folio mapped whole
    pmd_migration(page) is_pmd_migration_entry(): a huge folio being migrated

Locks follow the configuration (ptmc.kernel.config): with CONFIG_SPLIT_PMD_PTLOCKS each PMD
table has its own lock (``pml``, ``pml1``, ...) and pmd_lockptr() is the lock of the table the
pmd slot is in; otherwise pmd_lockptr() is ``page_table_lock`` (mm->page_table_lock). With
CONFIG_SPLIT_PTE_PTLOCKS pte_lockptr() is the ptl inside the PTE page the pmd *value* points to
(so a stale value yields the old page's lock, and users recheck); otherwise it is
mm->page_table_lock, computed without looking at the pmd at all.

A PTE page (ptdesc) has its entries, its split ptlock and any per-page fields a design adds
(``pte_refcount``). Pages are allocated lowest-free-first and carry a generation number that
grows on every allocation. A thread holds a pointer as ``PT(page, generation)``; every access
through it checks that the page is still allocated *and* is the same generation, so an access
to a free page, or to a page freed and reused since the thread read its pointer, is reported as
a use-after-free naming thread and step, even where the kernel's own ``pmd_same()`` (which
compares pfns) would be fooled.

Every primitive takes the pmd slot it works on (``pmd_lock(s, slot)``); in a model with one
slot it may be left out.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import ModelError
from ..model import Guard, Procedure, step
from ..state import OOPS, Stop, holds_thread
from .irq import irq_init
from .pte import ZERO_PAGE, Present, present, pte_maps_something, pte_none  # noqa: F401 (re-exported)
from .rcu import rcu_head_cell, rcu_read_lock, rcu_read_unlock
from .spinlock import LOCK, show_holder, spin_lock, spin_unlock, spinlock_init
from .tlb import psc_holds, tlb_init, tlb_may_walk, tlb_unlinked

PAGE_TABLE_LOCK = "page_table_lock"  # mm->page_table_lock


class PT(tuple):
    """A pointer to a PTE page: (page index, generation). Also a pmd value mapping a table."""

    __slots__ = ()

    def __str__(self):
        return f"pt{self[0]}" + (f"#{self[1]}" if self[1] else "")

    __repr__ = __str__

    @property
    def ptl(self):
        """The split ptlock inside the page (see pte_lockptr for the configuration)."""
        return _ref(self, "ptl")

    def entry(self, i: int):
        return _ref(self, f"e{i}")

    def field(self, name: str):
        return _ref(self, name)


class HugePmd(tuple):
    """A pmd mapping a PMD-sized folio whole: (head data page,)."""

    __slots__ = ()

    def __str__(self):
        return f"huge(d{self[0]})"

    __repr__ = __str__

    def renamed(self, names):
        return huge_pmd(names.page(self[0]))


class PmdMigration(tuple):
    """A non-present pmd: a huge folio under migration (is_pmd_migration_entry())."""

    __slots__ = ()

    def __str__(self):
        return f"migration(d{self[0]})"

    __repr__ = __str__

    def renamed(self, names):
        return pmd_migration(names.page(self[0]))


class PageRef(tuple):
    """A field of a PTE page, reached through a thread's pointer: checked on every access."""

    __slots__ = ()

    def __str__(self):
        return f"{self[0]}.{self[1]}"

    __repr__ = __str__

    def stale(self, s) -> bool:
        """The page is free, or was freed and reused, since the thread got its pointer."""
        base = s.layout.objects["pgtables"].base[self[0][0]]
        return not s.v[base] or s.v[base + 1] != self[0][1]

    def resolve(self, s, access: str) -> int:
        tables = s.layout.objects["pgtables"]
        ptr, field = self
        base = tables.base[ptr[0]]
        live, gen = s.v[base], s.v[base + 1]
        if gen != ptr[1]:
            now = "" if live else " and is free again"
            s.report("use-after-free", f"{s.actor} {access} {self}, but {_page(ptr)} was freed and "
                                       f"reused{now} since {s.actor} got its pointer")
        elif not live:
            s.report("use-after-free", f"{s.actor} {access} {self}, but {_page(ptr)} is free")
        return base + tables.offset[field]


@lru_cache(maxsize=None)
def pt(page: int, gen: int) -> PT:
    return PT((page, gen))


@lru_cache(maxsize=None)
def huge_pmd(page: int) -> HugePmd:
    return HugePmd((page,))


@lru_cache(maxsize=None)
def pmd_migration(page: int) -> PmdMigration:
    return PmdMigration((page,))


@lru_cache(maxsize=None)
def _ref(ptr: PT, field: str) -> PageRef:
    return PageRef((ptr, field))


def _page(ptr: PT) -> str:
    return f"pt{ptr[0]}"


class PageTables:
    """Declares the pmd slots, the locks the configuration gives them, mm->nr_ptes and
    ``pages`` PTE pages of ``entries`` entries each (PTRS_PER_PTE). ``deposit``: each slot
    also has the table a huge pmd deposits (pgtable_trans_huge_deposit()). ``default_slot``:
    the slot of primitives called without one in a model of several."""

    def __init__(self, mem, *, pages: int, entries: int, fields: dict | None = None,
                 rcu_head: bool = False, slots=("pmd",), pmd_tables: dict | None = None,
                 deposit: bool = False, default_slot: str | None = None):
        layout = mem.layout
        layout.objects["pgtables"] = self
        cfg = mem.model.config
        self.entries = entries
        self.slots = tuple(slots)
        if not self.slots or len(set(self.slots)) != len(self.slots):
            raise ModelError(f"pmd slots must be distinct names, got {slots!r}")
        # The slot a primitive called without one works on: the only one, or ``default_slot``
        # (threads written for one slot keep working on it in a model that adds another).
        self.only = self.slots[0] if len(self.slots) == 1 else default_slot
        if self.only is not None and self.only not in self.slots:
            raise ModelError(f"default_slot {default_slot!r} is not a pmd slot")
        self.index = {name: k for k, name in enumerate(self.slots)}
        self.slot_cells = []
        for name in self.slots:
            self.slot_cells.append(layout.cell(name, None))
        table_of = dict(pmd_tables or {})
        unknown = [n for n in table_of if n not in self.index]
        if unknown:
            raise ModelError(f"pmd_tables names {unknown[0]!r}, which is not a pmd slot")
        self.pmd_table = {name: table_of.get(name, 0) for name in self.slots}
        if not cfg.split_pte_ptlocks or not cfg.split_pmd_ptlocks:
            spinlock_init(mem, PAGE_TABLE_LOCK)
        if cfg.split_pmd_ptlocks:
            for t in sorted(set(self.pmd_table.values())):
                spinlock_init(mem, "pml" if t == 0 else f"pml{t}")
            self.pml_of = {name: "pml" if t == 0 else f"pml{t}" for name, t in self.pmd_table.items()}
        else:
            self.pml_of = {name: PAGE_TABLE_LOCK for name in self.slots}
        self.split_pte = cfg.split_pte_ptlocks
        layout.cell("nr_ptes", 0)  # mm->nr_ptes: PTE pages linked into the mm (or deposited)
        self.deposit = deposit
        if deposit:
            for name in self.slots:
                layout.cell(f"{name}.deposit", (), shown=lambda v, _: ",".join(map(str, v)) or "none")
        tlb_init(layout)
        irq_init(layout)
        self.base, self.defaults = [], []
        for k in range(pages):
            base = layout.cell(f"pt{k}.state", False, shown=lambda v, _: "allocated" if v else "free")
            layout.cell(f"pt{k}.gen", -1, quiet=True)
            cells = [layout.cell(f"pt{k}.ptl", None, tag=LOCK, shown=show_holder, holds=holds_thread)]
            cells += [layout.cell(f"pt{k}.e{i}", None) for i in range(entries)]
            cells += [layout.cell(f"pt{k}.{name}", value) for name, value in (fields or {}).items()]
            if rcu_head:
                cells.append(rcu_head_cell(mem, f"pt{k}.rcu_head"))
            self.base.append(base)
            if k == 0:
                self.offset = {layout.names[c].split(".", 1)[1]: c - base for c in (base, base + 1, *cells)}
                self.defaults = [(c - base, layout.initial[c]) for c in cells]

    def reset(self, s, page: int) -> None:
        base = self.base[page]
        for offset, value in self.defaults:
            s.v[base + offset] = value


def _tables(s) -> PageTables:
    tables = s.layout.objects.get("pgtables")
    if tables is None:
        raise ModelError(f"model {type(s.model).name} declares no page tables (PageTables), "
                         "which this step or check reads")
    return tables


def _slot(s, slot) -> str:
    """The pmd slot a primitive works on: named, or the only one."""
    if slot is not None:
        return slot
    only = s.layout.objects["pgtables"].only
    if only is None:
        raise ModelError(f"{s.actor}: this model has several pmd slots "
                         f"({', '.join(s.layout.objects['pgtables'].slots)}): name the one (slot=...)")
    return only


def slot_index(s, slot=None) -> int:
    return s.layout.objects["pgtables"].index[_slot(s, slot)]


def pmd_slots(s) -> tuple:
    return _tables(s).slots


def ptrs_per_pte(s) -> int:
    """PTRS_PER_PTE of this model (entries per PTE page)."""
    return s.layout.objects["pgtables"].entries


def address(s, i: int, slot=None) -> int:
    """The address entry ``i`` of pmd slot ``slot`` translates (see ptmc.kernel.tlb)."""
    return slot_index(s, slot) * ptrs_per_pte(s) + i


# --- pmd values

def pmd_none(pmdval) -> bool:
    return pmdval is None


def pmd_table(pmdval) -> bool:
    """The pmd maps a PTE table (present and not a leaf)."""
    return pmdval.__class__ is PT


def pmd_trans_huge(pmdval) -> bool:
    return pmdval.__class__ is HugePmd


def is_pmd_migration_entry(pmdval) -> bool:
    return pmdval.__class__ is PmdMigration


def is_swap_pmd(pmdval) -> bool:
    """A non-present, non-none pmd (only migration entries exist at the pmd level)."""
    return pmdval.__class__ is PmdMigration


def pmd_present(pmdval) -> bool:
    return pmdval.__class__ is PT or pmdval.__class__ is HugePmd


def pmd_leaf(pmdval) -> bool:
    return pmdval.__class__ is HugePmd


def pmd_same(a, b) -> bool:
    """What the kernel compares: the raw pmd value, i.e. the pfn, not the generation."""
    if a.__class__ is PT:
        return b.__class__ is PT and a[0] == b[0]
    if a is None or b is None:
        return a is b
    return a.__class__ is b.__class__ and a == b


def pmdp_get(s, slot=None):
    """*pmd / pmdp_get_lockless(): one read of the pmd entry."""
    return s.load(_slot(s, slot))


pmdp_get_lockless = pmdp_get


def pmd_lockptr(s, slot=None) -> str:
    """The pml of a pmd slot: the lock of its PMD table when PMD ptlocks are split, otherwise
    mm->page_table_lock (include/linux/mm.h:pmd_lockptr)."""
    return s.layout.objects["pgtables"].pml_of[_slot(s, slot)]


def pmd_lock(s, slot=None) -> str:
    """include/linux/mm.h:pmd_lock: take the pml and return it."""
    ptl = pmd_lockptr(s, slot)
    spin_lock(s, ptl)
    return ptl


def pmd_populate(s, table: PT, slot=None) -> None:
    """Link a PTE page into the pmd: it becomes visible to every walker."""
    if table.__class__ is not PT:
        s.report("use-after-free", f"{s.actor} populates the pmd with {table}, which is not a page table")
    else:
        base = s.layout.objects["pgtables"].base[table[0]]
        if not s.v[base] or s.v[base + 1] != table[1]:
            s.report("use-after-free", f"{s.actor} links {table} into the pmd, but it is free")
    s.store(_slot(s, slot), table)


def set_pmd_at(s, value, slot=None) -> None:
    """set_pmd_at(): install a huge pmd (or a migration entry)."""
    if not (value is None or pmd_trans_huge(value) or is_pmd_migration_entry(value)):
        raise ModelError(f"{s.actor}: set_pmd_at() of {value}: tables are linked with pmd_populate()")
    s.store(_slot(s, slot), value)


def _unlinked_checks(s, old: PT, slot: str, zero_page_is_lost: bool) -> None:
    """Ghost checks of a PTE page leaving the pmd: nothing it maps may be lost with it (every
    non-none entry, except the zero page where a design says it refaults), and until the next
    TLB flush a CPU may still walk it through its paging-structure cache."""
    tables = s.layout.objects["pgtables"]
    base = tables.base[old[0]]
    entries = (s.v[base + tables.offset[f"e{i}"]] for i in range(tables.entries))
    lost = [pte for pte in entries if pte_maps_something(pte, zero_page_is_lost)]
    if lost:
        s.report("unlink-mapped-table", f"{s.actor} unlinks {old}, which still maps {lost[0]}")
    tlb_unlinked(s, old[0], tables.index[slot])


def pmd_clear(s, slot=None, *, zero_page_is_lost: bool = True, keeps_entries: bool = False):
    """Unlink whatever the pmd maps; returns the old pmd value (pmdp_huge_get_and_clear() on a
    huge pmd). ``zero_page_is_lost=False``: the design frees tables of zero-page entries on
    purpose (a refault maps the zero page again). ``keeps_entries``: the caller unlinks a table
    whose entries it still owns (an anon collapse copies them, then deposits the table; mremap's
    move_normal_pmd() links it into another pmd in the same critical section), so nothing is
    lost with it; CPUs may still cache walks of the old range until a flush all the same."""
    slot = _slot(s, slot)
    old = s.load(slot)
    s.store(slot, None)
    if old.__class__ is PT:
        if keeps_entries:
            tlb_unlinked(s, old[0], s.layout.objects["pgtables"].index[slot])
        else:
            _unlinked_checks(s, old, slot, zero_page_is_lost)
    return old


pmdp_huge_get_and_clear = pmd_clear


def pgtable_trans_huge_deposit(s, table: PT, slot=None) -> None:
    """Keep ``table`` with a huge pmd, for its split (under the pml)."""
    slot = _slot(s, slot)
    cell = f"{slot}.deposit"
    if cell not in s.layout.index:
        raise ModelError(f"{s.actor}: deposit into {slot}: declare PageTables(..., deposit=True)")
    s.store(cell, s.load(cell) + (table,))


def pgtable_trans_huge_withdraw(s, slot=None) -> PT:
    cell = f"{_slot(s, slot)}.deposit"
    tables = s.load(cell)
    if not tables:
        raise ModelError(f"{s.actor}: withdraw from {cell}, which is empty")
    s.store(cell, tables[1:])
    return tables[0]


def mm_inc_nr_ptes(s) -> None:
    s.nr_ptes += 1


def mm_dec_nr_ptes(s) -> None:
    s.nr_ptes -= 1


# --- PTE pages

def pte_alloc_one(s) -> PT:
    """Allocate a zeroed PTE page with its ptlock initialised (pagetable_pte_ctor)."""
    tables = s.layout.objects["pgtables"]
    for page, base in enumerate(tables.base):
        if not s.load(base):
            gen = s.load(base + 1) + 1
            tables.reset(s, page)
            s.store(base, True)
            s.store(base + 1, gen)
            return pt(page, gen)
    raise ModelError(f"all {len(tables.base)} PTE pages are in use: raise the 'pages' parameter")


def pte_free(s, ptr: PT) -> None:
    """Return a PTE page to the page allocator (pagetable_dtor + free)."""
    tables = s.layout.objects["pgtables"]
    base = tables.base[ptr[0]]
    if not s.load(base) or s.load(base + 1) != ptr[1]:
        s.report("double-free", f"{s.actor} frees {ptr}, which is already free")
        return
    if tlb_may_walk(s, ptr[0]):
        s.report("use-after-free", f"{s.actor} frees {ptr} while a CPU's paging-structure cache may "
                                   "still walk it: no TLB flush since it was unlinked")
    cpus = psc_holds(s, ptr[0])
    if cpus:
        s.report("hw-walk-free-table", f"{s.actor} frees {ptr} while {cpus[0]}'s paging-structure cache "
                                       "still holds it: that CPU's next walk reads freed memory")
    tables.reset(s, ptr[0])
    s.store(base, False)


def pte_offset_map(s, pmdval) -> PT:
    """Map the PTE table a pmd value points to; a pmd that is not a table cannot be mapped."""
    if not pmd_table(pmdval):
        s.report("use-after-free", f"{s.actor} maps pmd value {pmdval if pmdval else 'none'},"
                                   " which is no longer a page table")
        raise Stop(OOPS)
    return pmdval


def pte_lockptr(s, pmdval):
    """include/linux/mm.h:pte_lockptr: with split PTE ptlocks the lock inside the page the pmd
    value points to (which must be a table); otherwise mm->page_table_lock, without looking
    at the pmd value at all."""
    if not s.layout.objects["pgtables"].split_pte:
        return PAGE_TABLE_LOCK
    return pte_offset_map(s, pmdval).ptl


def pte_offset_map_nolock(s, slot=None):
    """___pte_offset_map() and pte_lockptr(): enter RCU, read the pmd once, and return that
    value with the ptl it implies; the ptl is None (and RCU left again) when the pmd maps no
    table (none, a migration entry, a huge pmd). The table may be unlinked right after: a
    caller that writes must recheck (pmd_same() under the ptl, or pte_same() against an entry
    that was not none). pte_offset_map_ro_nolock() and pte_offset_map_rw_nolock() are this."""
    rcu_read_lock(s)
    pmdval = s.load(_slot(s, slot))
    if pmdval.__class__ is not PT:
        rcu_read_unlock(s)
        return pmdval, None
    return pmdval, pte_lockptr(s, pmdval)


def ptep_get(s, table: PT, i: int):
    return s.load(table.entry(i))


ptep_get_lockless = ptep_get


def _linked_anywhere(s, table: PT) -> bool:
    v = s.v
    return any(v[cell].__class__ is PT and v[cell][0] == table[0]
               for cell in s.layout.objects["pgtables"].slot_cells)


def set_pte_at(s, table: PT, i: int, pte, *, unpublished: bool = False) -> None:
    """Write entry ``i``. ``unpublished``: the table is not linked yet (a split filling the
    deposited table), so no walker can see it."""
    s.store(table.entry(i), pte)
    if s.tid is not None and not unpublished and not _linked_anywhere(s, table):
        # a ghost check, not a kernel access
        s.report("pte-in-unlinked-table", f"{s.actor} writes {table}.e{i} := {pte}, but no pmd "
                                          f"links {table} any more")


def set_ptes(s, table: PT, i: int, pte: Present, nr: int) -> None:
    """set_ptes(): ``nr`` entries from ``i`` mapping consecutive pages (pte_advance_pfn())."""
    for k in range(nr):
        set_pte_at(s, table, i + k, present(pte[0] + k, pte[1], pte[2]) if pte[0] != ZERO_PAGE else pte)


def pte_clear(s, table: PT, i: int) -> None:
    s.store(table.entry(i), None)


def ptep_get_and_clear(s, table: PT, i: int):
    """ptep_get_and_clear(_full)(): one atomic exchange of the entry."""
    pte = s.load(table.entry(i))
    s.store(table.entry(i), None)
    return pte


# --- for properties

def linked_entries(s, slot=None) -> list:
    """The entries of the PTE page the pmd links (none if it links none): for properties."""
    tables = _tables(s)
    pmdval = s.v[s.layout.index[_slot(s, slot)]]
    if not pmd_table(pmdval):
        return []
    base = tables.base[pmdval[0]]
    return [s.v[base + tables.offset[f"e{i}"]] for i in range(tables.entries)]


def reachable_tables(s) -> list[int]:
    """PTE pages a walk of the page tables reaches: linked from a slot, or deposited with a
    huge pmd (what the mm still owns and accounts in nr_ptes)."""
    tables = _tables(s)
    v = s.v
    out = [v[cell][0] for cell in tables.slot_cells if v[cell].__class__ is PT]
    if tables.deposit:
        for name in tables.slots:
            out += [t[0] for t in v[s.layout.index[f"{name}.deposit"]]]
    return out


def linked_mappings(s) -> list:
    """(folio, 1) for every present pte of a linked table and every huge pmd: what folio
    mapcounts must add up to (ptmc.kernel.folio.mapcounts_match)."""
    from .folio import page_folio
    tables = _tables(s)
    v = s.v
    out = []
    for cell in tables.slot_cells:
        pmdval = v[cell]
        if pmdval.__class__ is HugePmd:
            folio = page_folio(s, pmdval[0])
            if folio is not None:
                out.append((folio, 1))
        elif pmdval.__class__ is PT:
            base = tables.base[pmdval[0]]
            for i in range(tables.entries):
                pte = v[base + tables.offset[f"e{i}"]]
                if pte.__class__ is Present:
                    folio = page_folio(s, pte[0])
                    if folio is not None:
                        out.append((folio, 1))
    return out


def allocated_pages(s) -> list[int]:
    """Indices of the PTE pages currently allocated: for properties."""
    return [page for page, base in enumerate(_tables(s).base) if s.v[base]]


# --- sub-paths that are calls

class PteOffsetMapLock(Procedure):
    """__pte_offset_map_lock() (mm/pgtable-generic.c): find the table under RCU, lock its ptl,
    recheck that the pmd still points to it, retry if not. Returns the table, or None (NULL)
    when the pmd maps no table; either way ``pmdval`` is the value it read last. On success the
    caller holds ``ptl`` and is inside rcu_read_lock(): pte_unmap_unlock() ends both.

    Call it as ``self.call(PteOffsetMapLock, then=..., map_slot=slot)`` (``map_slot`` may be left
    out in a one-slot model). The recheck is the guard ``pmd_same_recheck`` (``--without
    pmd_same_recheck``: the code without it)."""

    pmdval: object = None  # the pmd value read locklessly
    ptl: object = None  # pte_lockptr(pmdval): the table's split lock, or mm->page_table_lock
    map_slot: str = None  # the pmd slot to map (None: the only one)

    pmd_same_recheck = Guard(
        "__pte_offset_map_lock(): between the lockless pmd read and taking the ptl the table may have "
        "been unlinked (reclaim, retract) or replaced: only a table the pmd still links may be written (I2)",
        without="return the table mapped from the lockless read, locked but unchecked",
        against="a thread that unlinks a table under its ptl (zap reclaim, retract_page_tables())")

    def pte_offset_map_lock(self, slot=None, *, then):
        """The call by its kernel name: ``return self.pte_offset_map_lock(slot, then=...)``."""
        return self.call(PteOffsetMapLock, then=then, map_slot=slot)

    @step("mm/pgtable-generic.c:___pte_offset_map")
    def map_pmd(self, s):
        self.pmdval, ptl = pte_offset_map_nolock(s, self.map_slot)
        if ptl is None:
            return self.ret(None)
        self.ptl = ptl

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def map_spin_lock(self, s):
        spin_lock(s, self.ptl)
        if not self.pmd_same_recheck:
            return self.ret(self.pmdval)

    @step("mm/pgtable-generic.c:__pte_offset_map_lock")
    def map_pmd_same(self, s):
        # Between the lockless read and the lock, reclaim may have unlinked the table (or a
        # new one was installed): only a table the pmd still links may be written (I2).
        if pmd_same(self.pmdval, pmdp_get_lockless(s, self.map_slot)):
            return self.ret(self.pmdval)
        pte_unmap_unlock(s, self.ptl)
        return "map_pmd"


def pte_unmap_unlock(s, ptl) -> None:
    """include/linux/mm.h:pte_unmap_unlock: spin_unlock(ptl), then pte_unmap() leaves RCU."""
    spin_unlock(s, ptl)
    rcu_read_unlock(s)


def pte_unmap(s) -> None:
    """pte_unmap(): rcu_read_unlock()."""
    rcu_read_unlock(s)


class PmdInstall(Procedure):
    """pmd_install() (mm/memory.c): under the pml, link the preallocated table ``new`` if the pmd
    is still none (another thread may have installed one, or a huge pmd, meanwhile): nr_ptes
    counts it, smp_wmb() makes the zeroed table visible before the pmd. ``new`` is None after
    it was installed; __pte_alloc() frees it otherwise (pte_free(): never visible, so at once).

    Call it as ``self.call(PmdInstall, then=..., new=table, install_slot=slot)``."""

    new: object = None  # the preallocated table (vmf->prealloc_pte, or __pte_alloc()'s)
    install_slot: str = None

    pmd_install_lock = Guard(
        "pmd_install(): the pml serialises every change of a pmd that is none (other faults' "
        "pmd_install(), huge pmd installs, retract's and reclaim's clears under pml)",
        without="recheck and populate the pmd without taking the pml",
        against="a second fault, or a THP fault, installing into the same pmd")
    pmd_install_recheck = Guard(
        "pmd_install(): another thread may have installed a table or a huge pmd since the lockless "
        "pmd_none() that sent this one to allocate",
        without="populate the pmd with the new table unconditionally",
        against="a second fault on the same pmd")

    def pmd_install(self, new, slot=None, *, then):
        """The call by its kernel name: ``return self.pmd_install(table, slot, then=...)``."""
        return self.call(PmdInstall, then=then, new=new, install_slot=slot)

    @step("mm/memory.c:pmd_install")
    def install_lock(self, s):
        if self.pmd_install_lock:
            pmd_lock(s, self.install_slot)
        elif self.pmd_install_recheck and not pmd_none(pmdp_get(s, self.install_slot)):
            return self.ret(False)  # (without the lock: the recheck and the write are two steps)

    @step("mm/memory.c:pmd_install")
    def install(self, s):
        # recheck under pml: someone may have won
        if self.pmd_install_lock and self.pmd_install_recheck and not pmd_none(pmdp_get(s, self.install_slot)):
            return "install_unlock"
        mm_inc_nr_ptes(s)
        pmd_populate(s, self.new, self.install_slot)  # after smp_wmb(): the table is visible
        self.new = None
        if not self.pmd_install_lock:
            return self.ret(True)

    @step("mm/memory.c:pmd_install")
    def install_unlock(self, s):
        spin_unlock(s, pmd_lockptr(s, self.install_slot))
        return self.ret(self.new is None)

