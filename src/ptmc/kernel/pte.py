"""PTE values and the kernel's predicates on them (include/linux/pgtable.h, swapops.h, mm_inline.h).

An entry of a PTE page is one of

    None                    pte_none(): nothing mapped
    present(page)           pte_present(): maps data page ``page`` (dirty and uffd-wp bits);
                            page 0 is the shared zero page (is_zero_pfn(), a special pte)
    swap_pte(n)             a genuine swap entry (!non_swap_entry()), slot n
    migration_pte(page)     is_migration_entry(): ``page`` is being migrated
    uffd_wp_marker()        pte_marker_uffd_wp(): userfaultfd-wp protection kept for a none pte
                            of a file-backed VMA (PTE_MARKER_UFFD_WP)
    guard_marker()          is_guard_pte_marker(): MADV_GUARD_INSTALL (PTE_MARKER_GUARD)

Swap and migration entries carry the uffd-wp bit too (pte_swp_uffd_wp()). Every value is an
interned tuple, so equal entries are one object and states stay hashable and exact.
"""
from __future__ import annotations

from functools import lru_cache

ZERO_PAGE = 0  # data page 0 is the shared zero page


class Present(tuple):
    """A present PTE: (data page, dirty, uffd_wp)."""

    __slots__ = ()

    def __str__(self):
        flags = [f for f, on in (("dirty", self[1]), ("uffd-wp", self[2])) if on]
        if self[0] == ZERO_PAGE:
            return "zero-page" + (f"({','.join(flags)})" if flags else "")
        return f"present({','.join([f'd{self[0]}', *flags])})"

    __repr__ = __str__

    def renamed(self, names):
        return present(names.page(self[0]), self[1], self[2])


class SwapPte(tuple):
    """A non-present PTE holding a swap entry: ("swap" | "migration", offset or page, uffd_wp)."""

    __slots__ = ()

    def __str__(self):
        return f"{self[0]}({'d' if self[0] == 'migration' else ''}{self[1]}" + \
            (",uffd-wp" if self[2] else "") + ")"

    __repr__ = __str__

    def renamed(self, names):
        return migration_pte(names.page(self[1]), self[2]) if self[0] == "migration" else self


class Marker(tuple):
    """A PTE marker (make_pte_marker()): ("uffd-wp",) or ("guard",)."""

    __slots__ = ()

    def __str__(self):
        return f"marker({self[0]})"

    __repr__ = __str__


@lru_cache(maxsize=None)
def present(page: int, dirty: bool = False, uffd_wp: bool = False) -> Present:
    return Present((page, dirty, uffd_wp))


def zero_pte(uffd_wp: bool = False) -> Present:
    """pte_mkspecial(pfn_pte(my_zero_pfn(addr))): what a read fault of anonymous memory maps."""
    return present(ZERO_PAGE, False, uffd_wp)


@lru_cache(maxsize=None)
def swap_pte(offset: int, uffd_wp: bool = False) -> SwapPte:
    return SwapPte(("swap", offset, uffd_wp))


@lru_cache(maxsize=None)
def migration_pte(page: int, uffd_wp: bool = False) -> SwapPte:
    return SwapPte(("migration", page, uffd_wp))


@lru_cache(maxsize=None)
def _marker(kind: str) -> Marker:
    return Marker((kind,))


def uffd_wp_marker() -> Marker:
    return _marker("uffd-wp")


def guard_marker() -> Marker:
    return _marker("guard")


# --- predicates, named as in the kernel

def pte_none(pte) -> bool:
    return pte is None


def pte_present(pte) -> bool:
    return pte.__class__ is Present


def is_swap_pte(pte) -> bool:
    """!pte_none() && !pte_present(): a swap entry of some kind (swap, migration, marker)."""
    return pte is not None and pte.__class__ is not Present


def non_swap_entry(pte) -> bool:
    """A swap-format entry that is not a genuine swap slot (migration, marker, device, ...)."""
    return is_swap_pte(pte) and not (pte.__class__ is SwapPte and pte[0] == "swap")


def is_migration_entry(pte) -> bool:
    return pte.__class__ is SwapPte and pte[0] == "migration"


def is_pte_marker(pte) -> bool:
    return pte.__class__ is Marker


def pte_marker_uffd_wp(pte) -> bool:
    return pte.__class__ is Marker and pte[0] == "uffd-wp"


def is_guard_pte_marker(pte) -> bool:
    return pte.__class__ is Marker and pte[0] == "guard"


def is_zero_pte(pte) -> bool:
    """A present pte of the shared zero page (is_zero_pfn(pte_pfn(pte)))."""
    return pte.__class__ is Present and pte[0] == ZERO_PAGE


def pte_write(pte) -> bool:
    """Writable: a present pte other than the zero page (special, read-only) and other than a
    uffd-wp protected one (write-protected until userspace resolves it). Mappings the models
    here install read-only otherwise do not occur."""
    return pte.__class__ is Present and pte[0] != ZERO_PAGE and not pte[2]


def pte_dirty(pte) -> bool:
    return pte.__class__ is Present and pte[1]


def pte_uffd_wp(pte) -> bool:
    """The uffd-wp bit of a present pte."""
    return pte.__class__ is Present and pte[2]


def pte_swp_uffd_wp(pte) -> bool:
    """The uffd-wp bit of a swap or migration entry."""
    return pte.__class__ is SwapPte and pte[2]


def pte_page(pte):
    """The data page a present pte maps or a migration entry stands for (None otherwise)."""
    if pte.__class__ is Present or is_migration_entry(pte):
        return pte[1] if pte.__class__ is SwapPte else pte[0]
    return None


def pte_maps_something(pte, zero_page_is_lost: bool = True) -> bool:
    """Whether unlinking a table holding ``pte`` loses something: every non-none entry holds
    state a walk of the page tables is the only way to (a mapping, a swap slot, a migration in
    progress, uffd-wp protection, a guard region). The shared zero page is the one exception
    a design may choose to make (a read fault maps it again): ``zero_page_is_lost=False``."""
    if pte is None:
        return False
    return zero_page_is_lost or not is_zero_pte(pte)


KINDS = {
    "none": None,
    "present": "present",  # a distinct data page per entry
    "dirty": "dirty",  # present and dirty (a written shared file page: zap delays its rmap)
    "present_wp": "present_wp",  # present with the uffd-wp bit (a uffd-wp protected page)
    "zero": zero_pte(),
    "swap": "swap",
    "migration": "migration",
    "uffd_wp": uffd_wp_marker(),
    "guard": guard_marker(),
}


def parse_kinds(text: str, entries: int, what: str = "ptes") -> list[str]:
    """A comma-separated list of entry kinds (``present,swap``), one per entry; '' means every
    entry present. A wrong name or count is a one-line input error."""
    from ..errors import PtmcError
    if not text:
        return ["present"] * entries
    kinds = [k.strip() for k in text.split(",")]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise PtmcError(f"parameter {what}: unknown entry kind {bad[0]!r} (known: {', '.join(KINDS)})")
    if len(kinds) != entries:
        raise PtmcError(f"parameter {what} lists {len(kinds)} entries but entries={entries}: "
                        "give one kind per entry")
    return kinds
