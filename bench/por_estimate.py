"""How much could a partial-order reduction remove? An upper bound, from measured footprints.

A persistent (stubborn) set reduction may expand one thread's transitions alone in a state
only if nothing the other threads can still do depends on them: no other thread's *future*
step writes what this step reads or writes, or reads what it writes (condition C1), and the
step is invisible to the property (C2), with the cycle proviso (C3) on top. This script
measures footprints exactly (the slots each step read and wrote, from the compiled system's
decision trees over a full exploration), takes a thread's future as every step reachable from
its pc in the step graph the exploration saw, and counts the states where some thread's
transitions alone would satisfy C1, ignoring C2 and C3 (each can only forbid more). Every such
state is one where a reduction could prune; in all others it must expand everything.

Then, precisely, why the rest cannot be pruned: for each state where no thread passes C1, the
category of shared state (locks, RCU bookkeeping, page-table entries, ...) that alone stands in
the way (every candidate would pass C1 if that category were ignored), and, among the states
that pass C1, how many C2 forbids (the step may report an event a never() check watches). And
the number that matters: the states a persistent-set BFS with these footprints, C2 and the
cycle proviso (C3 as in BFS: a candidate is refused when one of its successors was already
reached) actually reaches, beside the full count. That reduced BFS is a measurement only: it
is not checked against the plain explorer and ptmc does not ship it.

    python3 bench/por_estimate.py [--set NAME=VALUE ...]     # the reclaim model by default
    python3 bench/por_estimate.py --rows [--large]            # every row of bench/run.py
    python3 bench/por_estimate.py --model bench/models/lost_update.py --set incrementers=3
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ptmc.explore.bfs import explore  # noqa: E402
from ptmc.explore.compiled import CompiledSystem, _Leaf, _Read  # noqa: E402
from ptmc.model import load_model_class  # noqa: E402


def footprints(system: CompiledSystem, visible=None):
    """(tid, pc) -> (slots read, slots written, pcs it may go to), over the whole tree; steps
    some outcome of which reported an event are added to ``visible`` (a set)."""
    out = {}
    for ct in system._threads:
        for pc, root in enumerate(ct.roots):
            reads, writes, nexts = set(), set(), set()
            todo = [root] if root.__class__ in (_Read, _Leaf) else []
            while todo:
                node = todo.pop()
                if node.__class__ is _Read:
                    reads.update(node.slots)
                    todo += [c for first in node.children.values() for c in (first, *first.twins)]
                else:
                    for tr, written in node.outcomes:
                        if tr.events and visible is not None:
                            visible.add((ct.tid, pc))
                        for slot, value in written:
                            writes.add(slot)
                            if slot == ct.pc_slot:
                                nexts.add(value)
            own = {ct.pc_slot}  # a thread's own pc is its own
            out[ct.tid, pc] = (reads - own, writes - own, {n for n in nexts if n >= 0})
    return out


def futures(system, fp):
    """(tid, pc) -> the union footprint (reads, writes) of every step reachable from pc."""
    out = {}
    for (tid, pc) in fp:
        seen, todo, reads, writes = set(), [pc], set(), set()
        while todo:
            p = todo.pop()
            if p in seen or (tid, p) not in fp:
                continue
            seen.add(p)
            r, w, nexts = fp[tid, p]
            reads |= r
            writes |= w
            todo += nexts
        out[tid, pc] = (reads, writes)
    return out


CATEGORIES = [  # (name, test on a slot's name): the first that matches
    ("locks", lambda n: n.endswith(".ptl") or n in ("pml",) or "lock" in n),
    ("RCU and IRQ bookkeeping", lambda n: n in ("rcu_readers", "rcu_gp", "irqs_off") or n.endswith("_rcu")
     or n.endswith("rcu_head")),
    ("page-table entries and the pmd", lambda n: n == "pmd" or ".e" in n),
    ("page allocation (pt*.state, gen)", lambda n: n.endswith(".state") or n.endswith(".gen")),
    ("counters and the rest", lambda n: True),
]


def category(name: str) -> str:
    return next(c for c, test in CATEGORIES if test(name))


def estimate(model_path: str, settings: list[str]) -> dict:
    cls = load_model_class(model_path)
    system = CompiledSystem(cls(dict(s.split("=", 1) for s in settings)))
    ex = explore(system, [])
    visible: set = set()
    fp = footprints(system, visible)
    fut = futures(system, fp)
    layout = system.layout
    cats = {slot: category(name) for slot, name in enumerate(layout.names)}
    choice = c1 = c1c2 = 0
    blockers: dict[str, int] = {}
    only: dict[str, int] = {}  # category -> states where it alone blocks every candidate
    several = 0

    def clashes(state, t):
        r, w, _ = fp[t, state[layout.pc_slot[t]]]
        clash = set()
        for u, slot in enumerate(layout.pc_slot):
            if u != t and state[slot] >= 0:
                fr, fw = fut[u, state[slot]]
                clash |= (w & (fr | fw)) | (r & fw)
        return clash

    for state in ex.store.states:
        enabled = sorted({tr.tid for tr, _ in system.successors(state)})
        if len(enabled) < 2:
            continue
        choice += 1
        per = {t: clashes(state, t) for t in enabled}
        passing = [t for t in enabled if not per[t]]
        if passing:
            c1 += 1
            c1c2 += any((t, state[layout.pc_slot[t]]) not in visible for t in passing)
            continue
        for clash in per.values():
            for slot in clash:
                blockers[layout.names[slot]] = blockers.get(layout.names[slot], 0) + 1
        alone = {c for c in dict(CATEGORIES) if any({cats[x] for x in clash} == {c} for clash in per.values())}
        if alone:
            for c in alone:
                only[c] = only.get(c, 0) + 1
        else:
            several += 1
    reduced = reduced_bfs(system, fp, fut, visible)
    return {"states": len(ex.store), "choice": choice, "c1": c1, "c1c2": c1c2, "blockers": blockers,
            "only": only, "several": several, "reduced": reduced}


def reduced_bfs(system, fp, fut, visible) -> int:
    """States a persistent-set BFS reaches: in each state the first thread (by id) whose step
    passes C1 and C2 and none of whose successors was reached before (C3) is expanded alone;
    otherwise every thread. A measurement, not a checked reduction."""
    layout = system.layout
    seen = {system.initial: None}
    queue = [system.initial]
    for state in queue:
        succ = system.successors(state)
        by_tid: dict[int, list] = {}
        for tr, nxt in succ:
            by_tid.setdefault(tr.tid, []).append(nxt)
        chosen = None
        if len(by_tid) > 1:
            for t, nexts in sorted(by_tid.items()):
                pc = state[layout.pc_slot[t]]
                if (t, pc) in visible or any(n in seen for n in nexts):
                    continue
                r, w, _ = fp[t, pc]
                if all(not ((w & (fr | fw)) | (r & fw)) for u, slot in enumerate(layout.pc_slot)
                       if u != t and state[slot] >= 0 for fr, fw in [fut[u, state[slot]]]):
                    chosen = nexts
                    break
        for nxt in (chosen if chosen is not None else [n for _, n in succ]):
            if nxt not in seen:
                seen[nxt] = None
                queue.append(nxt)
    return len(seen)


def report(label: str, r: dict) -> None:
    choice = max(r["choice"], 1)
    print(f"{label}: {r['states']:,} states, {r['choice']:,} with two or more threads enabled; "
          f"C1 passes in {r['c1']:,} ({r['c1'] / choice:.1%}), C1 and C2 (no event) in {r['c1c2']:,} "
          f"({r['c1c2'] / choice:.1%}); a persistent-set BFS with C3 reaches {r['reduced']:,} states "
          f"({1 - r['reduced'] / r['states']:.1%} fewer)")
    blocked = r["choice"] - r["c1"]
    print(f"  of the {blocked:,} states no thread passes C1 in, ignoring one category of shared state "
          f"would let some thread pass in: " + ", ".join(f"{c} {n:,}" for c, n in sorted(r["only"].items(), key=lambda kv: -kv[1]))
          + f"; in {r['several']:,} no single category would do")
    top = sorted(r["blockers"].items(), key=lambda kv: -kv[1])[:8]
    print("  shared variables that make a candidate dependent most often: " +
          ", ".join(f"{name} ({n:,})" for name, n in top))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "model" / "reclaim.py"))
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--rows", action="store_true", help="every row of bench/run.py's ROWS")
    parser.add_argument("--large", action="store_true", help="with --rows: its LARGE rows too (millions of states)")
    args = parser.parse_args()
    if not args.rows:
        report(" ".join(args.settings) or "default", estimate(args.model, args.settings))
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from run import LARGE, ROWS
    for _, model, settings in [*ROWS, *(LARGE if args.large else ())]:
        sets = settings[1::2]
        report(f"{model} {' '.join(sets) or 'default'}", estimate(str(ROOT / "model" / f"{model}.py"), sets))


if __name__ == "__main__":
    main()
