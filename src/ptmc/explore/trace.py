"""Traces: the path to a violation, replayed from the store into readable steps."""
from __future__ import annotations

from ..kernel.context import pages_named, step_context
from ..result import TraceStep
from ..state import identical, show
from .system import System, Transition


def transition_between(system: System, before: tuple, after: tuple, like: Transition | None = None
                       ) -> Transition:
    """The first transition (in exploration order) from ``before`` to ``after`` (the same step
    and choices as ``like``, if given), replayed with the slots it touched recorded."""
    for tr, nxt in system.successors(before, record=True):
        if identical(nxt, after) and (like is None or (tr.tid, tr.pc, tr.choices) == (like.tid, like.pc, like.choices)):
            return tr
    raise AssertionError("stored parent does not lead to its child")


def trace_steps(system: System, store, found) -> list[TraceStep]:
    """The steps from the initial state to what ``found`` (a violation or a witness) names."""
    states = store.path_states(store.path(found.state), system)
    hops = [(transition_between(system, a, b), a, b) for a, b in zip(states, states[1:])]
    if found.transition is not None:
        before = states[-1]
        hops.append((transition_between(system, before, found.target, like=found.transition), before,
                     found.target))
    return [_step(system, tr, before, after) for tr, before, after in hops]


def _step(system: System, tr: Transition, before: tuple, after: tuple) -> TraceStep:
    info, layout = system.step_info(tr), system.layout
    return TraceStep(
        thread=system.threads[tr.tid].name,
        step=info.name,
        kernel_function=info.kernel_function,
        changes=system.layout.changes(before, after),
        choices=[(label, show(value)) for label, value in tr.choices],
        reads={layout.names[slot]: layout.show_slot(slot, before[slot])
               for slot in tr.touched if before[slot] == after[slot] and slot not in layout.quiet},
        events=list(tr.events),
        state={name: layout.show_slot(slot, value) for slot, (name, value) in enumerate(zip(layout.names, after))},
        context=_context(system, tr, before, after),
        source=step_source(info.fn),
    )


def _context(system: System, tr: Transition, before: tuple, after: tuple) -> list[str]:
    pages = _pages(system, tr, before, after)
    return (step_context(system.view(before, tr.tid), system.view(after, tr.tid), tr.tid, pages)
            + system.model.context(system.layout, after, pages))


def _pages(system: System, tr: Transition, before: tuple, after: tuple) -> set[int]:
    """The PTE pages a step touched (a cell inside one) or named in what it changed."""
    tables = system.layout.objects.get("pgtables")
    if tables is None:
        return set()
    size = len(tables.offset)
    pages = {page for slot in tr.touched for page, base in enumerate(tables.base) if base <= slot < base + size}
    for slot, (a, b) in enumerate(zip(before, after)):
        if not identical(a, b):
            pages |= pages_named(a) | pages_named(b)
    return pages


def step_source(fn) -> tuple[str, int] | None:
    """The file and line where a step is defined (its ``@step`` line), for the CI formats."""
    code = getattr(fn, "__code__", None)
    return (code.co_filename, code.co_firstlineno) if code else None
