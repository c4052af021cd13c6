"""The kernel context of a step, the way changelogs draw races: what the thread holds after the
step (``L={pml, pt0.ptl}``), who is inside an RCU read-side section and which CPUs have IRQs
off, and the state of each PTE page the step touched (linked, deposited, unlinked, queued for
RCU, free). Read by the trace renderers; it only looks at the state, it never changes it.
"""
from __future__ import annotations

from .folio import FOLIO_LOCK
from .pgtable import PT, reachable_tables
from .rwsem import RWSEM
from .spinlock import LOCK
from .vma import VMA_LOCK


def step_context(before, after, tid: int, pages) -> list[str]:
    """Lines for the step thread ``tid`` took from state ``before`` to ``after`` (views):
    the locks it holds (when it holds any, or the step changed them), RCU readers and IRQs-off
    CPUs (when there are any, or the step changed them), and the state after the step of the PTE
    ``pages`` the step touched or named."""
    out = []
    held = held_locks(after, tid)
    if held or held != held_locks(before, tid):
        out.append(f"L={{{', '.join(held)}}}")
    layout = after.layout
    sections = []
    for cell, title in (("rcu_readers", "RCU"), ("irqs_off", "IRQs off")):
        slot = layout.index.get(cell)
        if slot is not None and (after.v[slot] or before.v[slot] != after.v[slot]):
            who = dict.fromkeys(layout.thread_name(t) for t in after.v[slot])
            sections.append(f"{title}: {','.join(who) or 'none'}")
    if sections:
        out.append("; ".join(sections))
    if pages and layout.objects.get("pgtables") is not None:
        out.append(", ".join(f"pt{page} {table_state(after, page)}" for page in sorted(pages)))
    return out


def held_locks(s, tid: int) -> list[str]:
    """Every lock thread ``tid`` holds in state ``s``: spinlocks (the ptls inside PTE pages
    too), rwsems and VMA locks (with r or w), folio locks."""
    names, v, tags = s.layout.names, s.v, s.layout.tags
    held = [names[slot] for slot in tags.get(LOCK, ()) if v[slot] == tid]
    for tag in (RWSEM, VMA_LOCK):
        for slot in tags.get(tag, ()):
            value = v[slot]
            if value is not None and (value[1] == tid if value[0] == "write" else tid in value[1]):
                held.append(f"{names[slot]}({value[0][0]})")
    return held + [names[slot] for slot in tags.get(FOLIO_LOCK, ()) if v[slot] == tid]


def pages_named(value) -> set[int]:
    """The PTE pages a value points to (a pmd, a table pointer, a batch, an rcu_head's argument)."""
    if value.__class__ is PT:
        return {value[0]}
    if isinstance(value, tuple):
        return set().union(*map(pages_named, value)) if value else set()
    return set()


def table_state(s, page: int) -> str:
    """linked, deposited (kept under a huge pmd), queued for RCU, unlinked, or free."""
    tables = s.layout.objects["pgtables"]
    v = s.v
    base = tables.base[page]
    if not v[base]:
        return "free"
    if any(v[cell].__class__ is PT and v[cell][0] == page for cell in tables.slot_cells):
        return "linked"
    if page in reachable_tables(s):
        return "deposited"
    for slot in s.layout.tags.get("rcu_head", ()):
        head = v[slot]
        if head is not None and page in pages_named(head[1]):
            return "queued for RCU"
    return "unlinked"
