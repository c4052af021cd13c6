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

    python3 bench/por_estimate.py [--set NAME=VALUE ...]     # the reclaim model by default
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


def footprints(system: CompiledSystem):
    """(tid, pc) -> (slots read, slots written, pcs it may go to), over the whole tree."""
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "model" / "reclaim.py"))
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    cls = load_model_class(args.model)
    system = CompiledSystem(cls(dict(s.split("=", 1) for s in args.settings)))
    ex = explore(system, [])
    fp = footprints(system)
    fut = futures(system, fp)
    layout = system.layout
    choice_states = prunable = 0
    blockers: dict[str, int] = {}
    for state in ex.store.states:
        succ = system.successors(state)
        enabled = sorted({tr.tid for tr, _ in succ})
        if len(enabled) < 2:
            continue
        choice_states += 1
        alive = [t for t, slot in enumerate(layout.pc_slot) if state[slot] >= 0]
        found = False
        for t in enabled:
            r, w, _ = fp[t, state[layout.pc_slot[t]]]
            clash = set()
            for u in alive:
                if u == t:
                    continue
                fr, fw = fut[u, state[layout.pc_slot[u]]]
                clash |= (w & (fr | fw)) | (r & fw)
            if not clash:
                found = True
                break
            for slot in clash:
                blockers[layout.names[slot]] = blockers.get(layout.names[slot], 0) + 1
        prunable += found
    print(f"{len(ex.store):,} states, {choice_states:,} with two or more threads enabled; "
          f"in {prunable:,} ({prunable / max(choice_states, 1):.1%}) one thread's transitions "
          f"alone pass C1 (an upper bound: C2 and C3 ignored)")
    top = sorted(blockers.items(), key=lambda kv: -kv[1])[:8]
    print("shared variables that make a candidate dependent most often: " +
          ", ".join(f"{name} ({n:,})" for name, n in top))


if __name__ == "__main__":
    main()
