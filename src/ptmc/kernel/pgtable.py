"""Page tables of one 2 MiB range: the pmd entry, its lock (pml) and a pool of PTE pages.

A PTE page (ptdesc) has its entries, its split ptlock and any per-page fields a design adds
(``pte_refcount``). Pages are allocated lowest-free-first and carry a generation number that
grows on every allocation. A thread holds a pointer as ``PT(page, generation)``; every access
through it checks that the page is still allocated *and* is the same generation, so an access
to a free page, or to a page freed and reused since the thread read its pointer, is reported as
a use-after-free naming thread and step, even where the kernel's own ``pmd_same()`` (which
compares pfns) would be fooled.
"""
from functools import lru_cache

from ..errors import ModelError
from ..state import OOPS, Stop
from .rcu import rcu_head_cell, rcu_read_lock, rcu_read_unlock
from .spinlock import show_holder, spinlock_init
from .tlb import tlb_init, tlb_may_walk, tlb_unlinked

HUGE = "huge"  # a pmd mapping a huge page (pmd_trans_huge)
ZERO_PAGE = 0  # data page 0 is the shared zero page


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


class Present(tuple):
    """A present PTE mapping data page ``self[0]``."""

    __slots__ = ()

    def __str__(self):
        return "zero-page" if self[0] == ZERO_PAGE else f"present(d{self[0]})"

    __repr__ = __str__


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
def present(page: int) -> Present:
    return Present((page,))


@lru_cache(maxsize=None)
def _ref(ptr: PT, field: str) -> PageRef:
    return PageRef((ptr, field))


def _page(ptr: PT) -> str:
    return f"pt{ptr[0]}"


class PageTables:
    """Declares the pmd, the pmd lock and ``pages`` PTE pages of ``entries`` entries each."""

    def __init__(self, mem, *, pages: int, entries: int, fields: dict | None = None,
                 split_ptlocks: bool = True, rcu_head: bool = False):
        layout = mem.layout
        layout.objects["pgtables"] = self
        self.entries, self.split_ptlocks = entries, split_ptlocks
        layout.cell("pmd", None)
        spinlock_init(mem, "pml")
        layout.cell("nr_ptes", 0)  # mm->nr_ptes: PTE pages linked into the mm
        tlb_init(layout)
        self.base, self.defaults = [], []
        for k in range(pages):
            base = layout.cell(f"pt{k}.state", False, shown=lambda v, _: "allocated" if v else "free")
            layout.cell(f"pt{k}.gen", -1, quiet=True)
            cells = [layout.cell(f"pt{k}.ptl", None, shown=show_holder)]
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
    tables.reset(s, ptr[0])
    s.store(base, False)


def pmd_none(pmdval) -> bool:
    return pmdval is None


def pmd_table(pmdval) -> bool:
    """The pmd maps a PTE table (present and not a leaf)."""
    return pmdval.__class__ is PT


def pmd_same(a, b) -> bool:
    """What the kernel compares: the raw pmd value, i.e. the pfn, not the generation."""
    return (a[0] if a.__class__ is PT else a) == (b[0] if b.__class__ is PT else b)


def pte_offset_map(s, pmdval) -> PT:
    """Map the PTE table a pmd value points to; a pmd that is not a table cannot be mapped."""
    if not pmd_table(pmdval):
        s.report("use-after-free", f"{s.actor} maps pmd value {pmdval if pmdval else 'none'},"
                                   " which is no longer a page table")
        raise Stop(OOPS)
    return pmdval


def pte_lockptr(s, pmdval):
    """The ptl for a pmd value: the split lock in the PTE page, or the mm-wide lock (== pml)."""
    table = pte_offset_map(s, pmdval)
    return table.ptl if s.layout.objects["pgtables"].split_ptlocks else "pml"


def pte_offset_map_nolock(s):
    """___pte_offset_map() and pte_lockptr(): enter RCU, read the pmd once, and return that
    value with the ptl it implies; the ptl is None (and RCU left again) when the pmd maps no
    table. The table may be unlinked right after: a caller that writes must recheck
    (pmd_same() under the ptl, or pte_same() against an entry that was not none)."""
    rcu_read_lock(s)
    pmdval = s.pmd
    if not pmd_table(pmdval):
        rcu_read_unlock(s)
        return pmdval, None
    return pmdval, pte_lockptr(s, pmdval)


def pmd_lockptr(s) -> str:
    return "pml"


def ptep_get(s, table: PT, i: int):
    return s.load(table.entry(i))


def set_pte_at(s, table: PT, i: int, pte) -> None:
    s.store(table.entry(i), pte)
    if s.tid is not None and not pmd_same(s.pmd, table):  # a ghost check, not a kernel access
        s.report("pte-in-unlinked-table", f"{s.actor} writes {table}.e{i} := {pte}, but the pmd no "
                                          f"longer links {table}")


def pte_clear(s, table: PT, i: int) -> None:
    s.store(table.entry(i), None)


def pmd_populate(s, table: PT) -> None:
    """Link a PTE page into the pmd: it becomes visible to every walker."""
    s.pmd = table


def pmd_clear(s):
    """Unlink the PTE page from the pmd; returns the old pmd value."""
    old = s.pmd
    s.pmd = None
    if pmd_table(old):
        tables = s.layout.objects["pgtables"]
        # Ghost checks: a mapping must not be lost with the table (the shared zero page is not
        # lost: a refault maps it again), and until the next TLB flush a CPU may still walk the
        # table through its paging-structure cache.
        base = tables.base[old[0]]
        entries = (s.v[base + tables.offset[f"e{i}"]] for i in range(tables.entries))
        if any(pte is not None and pte[0] != ZERO_PAGE for pte in entries):
            s.report("unlink-mapped-table", f"{s.actor} unlinks {old}, which still maps a page")
        tlb_unlinked(s, old[0])
    return old


def mm_inc_nr_ptes(s) -> None:
    s.nr_ptes += 1


def mm_dec_nr_ptes(s) -> None:
    s.nr_ptes -= 1


def pte_none(pte) -> bool:
    return pte is None


def _tables(s) -> PageTables:
    tables = s.layout.objects.get("pgtables")
    if tables is None:
        raise ModelError(f"model {type(s.model).name} declares no page tables (PageTables), "
                         "which this check reads")
    return tables


def linked_entries(s) -> list:
    """The entries of the PTE page the pmd links (none if it links none): for properties."""
    tables = _tables(s)
    if not pmd_table(s.pmd):
        return []
    base = tables.base[s.pmd[0]]
    return [s.v[base + tables.offset[f"e{i}"]] for i in range(tables.entries)]


def allocated_pages(s) -> list[int]:
    """Indices of the PTE pages currently allocated: for properties."""
    return [page for page, base in enumerate(_tables(s).base) if s.v[base]]
