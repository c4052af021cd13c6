"""TLBs and paging-structure caches (arch/x86/mm/tlb.c, arch/arm64/include/asm/tlbflush.h).

Addresses. Pmd slot k covers the addresses ``k * PTRS_PER_PTE`` up to ``(k + 1) * PTRS_PER_PTE``
(one PMD_SIZE range); entry i of the table it links translates address ``k * PTRS_PER_PTE + i``.

Two views of what CPUs cache, both invalidated by the same flushes:

- The ghost ``tlb_stale``: every PTE page unlinked since the last flush that covered its range
  (with ``freed_tables``), as (page, slot). Some CPU may still walk it through its
  paging-structure cache, so freeing it before then is a use-after-free (invariant H of
  docs/protocol.md). It needs no hardware actor: it stands for any CPU.
- Per modelled CPU (``cpu_caches_init(mem, cpus=n)``, filled by ptmc.kernel.hw's walker):
  ``cpu<k>.tlb``, the leaf translations it caches, each (address, size, table, page), where
  the table is the PTE page it was read through (None for a huge pmd, whose size is
  PTRS_PER_PTE); and ``cpu<k>.psc``, the table walks it caches, each (slot, table).

Flushes. ``flush_tlb_mm_range(start, end, freed_tables)`` is what an mmu_gather's tlb_flush()
does: leaf translations in the range go on every CPU; cached walks of the range go only when
``freed_tables`` is set (arm64 flushes only the last level otherwise, INVLPGB sets FINAL_ONLY,
and x86 then skips CPUs in lazy TLB mode: the model takes the weakest of these). ``end=None``
is TLB_FLUSH_ALL. ``flush_tlb_range()`` (pmdp_collapse_flush(), free_ptes) invalidates both
levels of its range. With ``tlb_flush=ipi`` a flush is complete only when every other CPU has
taken the IPI: a thread with IRQs disabled holds it off; with ``broadcast`` nobody does.
"""
from __future__ import annotations

from ..errors import ModelError
from .config import config
from .irq import irqs_disabled_elsewhere

_canon: dict = {}


def _interned(items) -> tuple:
    """A sorted tuple, one shared object per value (items are tuples of ints and PT pointers)."""
    key = tuple(sorted(set(items), key=repr))
    return _canon.setdefault(key, key)


def _show_stale(value, layout) -> str:
    return ",".join(f"pt{page}" for page, _ in value) or "none"


def tlb_init(layout) -> None:
    layout.cell("tlb_stale", (), shown=_show_stale, quiet=True)


def ptrs_per_pte(s) -> int:
    return s.layout.objects["pgtables"].entries


def slot_range(s, slot_index: int) -> tuple[int, int]:
    n = ptrs_per_pte(s)
    return slot_index * n, (slot_index + 1) * n


def _overlaps(lo: int, hi: int, start: int, end) -> bool:
    return end is None or (lo < end and start < hi)


# --- the ghost

def tlb_unlinked(s, page: int, slot_index: int = 0) -> None:
    """A PTE page was just unlinked from pmd slot ``slot_index``: CPUs may still cache walks
    through it."""
    if all(p != page for p, _ in s.tlb_stale):
        s.tlb_stale = _interned(s.tlb_stale + ((page, slot_index),))


def tlb_may_walk(s, page: int) -> bool:
    return any(p == page for p, _ in s.tlb_stale)


# --- per-CPU caches

def _show_tlb(value, layout) -> str:
    return ", ".join(f"{a}->{'huge ' if table is None else ''}d{page}" + (f" via {table}" if table else "")
                     for a, _, table, page in value) or "empty"


def _show_psc(value, layout) -> str:
    return ", ".join(f"slot{k}->{table}" for k, table in value) or "empty"


def cpu_caches_init(mem, cpus: int) -> None:
    """Declare the TLB and paging-structure cache of ``cpus`` CPUs (for hardware walkers)."""
    layout = mem.layout
    for k in range(cpus):
        layout.cell(f"cpu{k}.tlb", (), tag="cpu_tlb", shown=_show_tlb,
                    holds=lambda v, names: _interned((a, n, t, names.page(p)) for a, n, t, p in v))
        layout.cell(f"cpu{k}.psc", (), tag="cpu_psc", shown=_show_psc)
    layout.objects["cpus"] = cpus


def psc_holds(s, page: int) -> list[str]:
    """The CPUs whose paging-structure cache holds a walk through PTE page ``page``."""
    v, names = s.v, s.layout.names
    return [names[slot].split(".")[0] for slot in s.layout.tags.get("cpu_psc", ())
            if any(table[0] == page for _, table in v[slot])]


def tlb_fill(s, cpu: int, address: int, size: int, table, page: int) -> bool:
    """Cache a leaf translation on ``cpu``; false if it was cached already. A CPU that would
    then hold two translations of one address through different tables or page sizes is the
    incoherence protocol.md K6 describes (x86 app note 317080, arm64 break-before-make)."""
    cell = f"cpu{cpu}.tlb"
    entries = s.load(cell)
    new = (address, size, table, page)
    if new in entries:
        return False
    for a, n, t, p in entries:
        if a < address + size and address < a + n and (n != size or t != table):
            old = f"{'a huge pmd' if t is None else t} (d{p})"
            now = f"{'a huge pmd' if table is None else table} (d{page})"
            s.report("tlb-incoherent", f"cpu{cpu} caches address {address} through {now} while it "
                                       f"still caches a translation of it through {old}")
            break
    s.store(cell, _interned(entries + (new,)))
    return True


def psc_fill(s, cpu: int, slot_index: int, table) -> bool:
    cell = f"cpu{cpu}.psc"
    entries = s.load(cell)
    if (slot_index, table) in entries:
        return False
    s.store(cell, _interned(entries + ((slot_index, table),)))
    return True


def _invalidate(s, start: int, end, walks: bool) -> None:
    n = ptrs_per_pte(s)
    v = s.v
    if walks and s.tlb_stale:
        s.tlb_stale = _interned(e for e in s.tlb_stale if not _overlaps(e[1] * n, (e[1] + 1) * n, start, end))
    for slot in s.layout.tags.get("cpu_tlb", ()):
        if v[slot]:
            v[slot] = _interned(e for e in v[slot] if not _overlaps(e[0], e[0] + e[1], start, end))
    if walks:
        for slot in s.layout.tags.get("cpu_psc", ()):
            if v[slot]:
                v[slot] = _interned(e for e in v[slot] if not _overlaps(e[0] * n, (e[0] + 1) * n, start, end))


def _wait_for_ipi(s) -> None:
    from ..state import Blocked
    if config(s).tlb_flush == "ipi" and irqs_disabled_elsewhere(s):
        raise Blocked  # native_flush_tlb_multi(): smp_call_function_many(..., wait=true)


def flush_tlb_mm_range(s, start: int = 0, end: int | None = None, freed_tables: bool = True) -> None:
    """arch/x86/mm/tlb.c:flush_tlb_mm_range(mm, start, end, stride, freed_tables), also what
    arm64's tlb_flush() does: ``end=None`` flushes everything (TLB_FLUSH_ALL)."""
    if end is not None and start >= end:
        raise ModelError(f"{s.actor}: flush of an empty range [{start}, {end})")
    _wait_for_ipi(s)
    _invalidate(s, start, end, walks=freed_tables or end is None)


def flush_tlb_range(s, start: int, end: int) -> None:
    """flush_tlb_range(vma, start, end): both levels of the range (arm64 last_level=false; on x86
    the INVLPG of every CPU the IPI reaches also drops its paging-structure caches)."""
    _wait_for_ipi(s)
    _invalidate(s, start, end, walks=True)


def flush_tlb_mm(s) -> None:
    """flush_tlb_mm(): everything the mm's CPUs cache."""
    flush_tlb_mm_range(s)
