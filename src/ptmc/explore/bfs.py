"""Exhaustive breadth-first exploration: every interleaving, shortest counterexample first.

Exploration goes level by level. A violation found while expanding level d is d+1 steps
long; the rest of level d is still scanned for deadlocks and end-state failures, which are d
steps long, so what is reported is a shortest counterexample, and always the same one.
Witnesses (``reachable`` checks) are found the same way: the first found is a shortest one.

Per-transition checks that are not properties of the state (the z3 effect link) are
*observers* the model supplies (``Model.observers``), and state-space reductions are
*reductions* (ptmc.reduce): the two small interfaces of ``observer.py``. The explorer knows
nothing else about them.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

from ..errors import ModelError, PtmcError
from ..result import HOLDS, INCONCLUSIVE, VIOLATED
from ..state import STOPPED, thread_matches
from ..kernel import UNDEFINED
from ..limits import release_reserve
from .fingerprint import FingerprintStore
from .store import Store, StoreFull, exact_store
from .system import System, Transition


@dataclass
class Found:
    """A violation or a witness: where exploration found it."""
    check: object  # properties.Check
    message: str
    length: int
    state: int  # number of the last state before the transition (or the state itself)
    transition: Transition | None = None  # the transition that violates or witnesses
    target: tuple | None = None


@dataclass
class Exploration:
    verdict: str
    store: Store
    transitions: int
    depth: int
    seconds: float
    found: Found | None = None
    reason: str = ""
    deadlocks: int = 0
    taken: set = field(default_factory=set)  # (tid, pc) of every step taken
    witnesses: dict = field(default_factory=dict)  # witness name -> Found
    missing: list = field(default_factory=list)  # witness checks not found by a complete run
    observed: list = field(default_factory=list)  # names of the observers' checks
    crashed: int = 0  # transitions into undefined behaviour that no check watches (paths end)
    reductions: list = field(default_factory=list)  # names of the reductions explored under
    workers: int = 0  # a distributed run's workers (cluster.py; 0: this process)
    exchanged: int = 0  # bytes of state records sent between workers
    startup: float = 0.0  # seconds the workers took to start (not in ``seconds``)


# The visited stores (--store): every state exactly, or 64-bit fingerprints.
STORES = {"exact": exact_store,
          "fingerprint": lambda system, capacity: FingerprintStore(len(system.initial), capacity,
                                                                   system.canonical)}


def explore(system: System, checks, max_states: int | None = None, progress=None,
            limit=None, observers=(), store: str = "exact", reductions=()) -> Exploration:
    """``limit``: called every 32 states expanded; a reason (str) to stop as inconclusive, or
    None (see limits.MemoryLimit). ``store``: one of STORES. ``observers``, ``reductions``: see
    observer.py."""
    # States are tuples of immutable values: they make no reference cycles, and the cyclic
    # garbage collector would only rescan the growing store again and again, during the run
    # and after it (hence the freeze: what exploration built stays out of its way).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _explore(system, checks, max_states, progress, limit, observers, STORES[store], reductions)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _explore(system, checks, max_states, progress, limit, observers, new_store, reductions) -> Exploration:
    events = {c.event: c for c in checks if c.kind == "never"}
    undefined = {e for e in UNDEFINED if e not in events}
    invariants = [c for c in checks if c.kind == "invariant"]
    at_end = [c for c in checks if c.kind == "at_end"]
    deadlock_check = next((c for c in checks if c.kind == "deadlock_free"), None)
    witnesses = Witnesses(system, [c for c in checks if c.kind == "reachable"])

    store = new_store(system, max_states)
    for reduction in reductions:
        reduction.refuse(checks)
        store = reduction.wrap(store)
    store.add(system.initial, -1)
    start = time.monotonic()
    transitions = deadlocks = depth = crashed = 0
    found = _invariant_failure(system, invariants, system.initial, 0, None, -1)
    for obs in observers:
        if found is None and (message := obs.initial(system.initial)):
            found = Found(obs.check, message, 0, 0)
    witnesses.state(system.initial, 0, None, -1)
    taken = set()
    note_taken, add, successors = taken.add, store.add, system.successors
    # With nothing to check per transition, a compiled system expands a state straight into
    # the store, as the slots each step writes: the same states in the same order, without
    # looking at each transition or building a successor the store already has.
    changes = getattr(system, "changer", lambda: None)() if not (observers or invariants) else None
    marks = [False] * system.marks if changes is not None else None
    add_changes, watch, fresh = store.add_changes, witnesses.watch, []
    # Pending step witnesses are watched by ``changes`` itself, transition witnesses asked of
    # each state (moves_quiet), and state witnesses of each new state (not under a reduction,
    # which stores another state than the successor).
    states_seen = not reductions

    def reached(number: int):
        """The first transition from the state being expanded to state ``number``."""
        return next(tr for tr, nxt in successors(state) if store.is_stored(number, nxt))
    level_end, i, reason = 1, 0, ""
    next_report = start + 1.0
    take = store.take

    def counts():
        return (f"{len(store)} states, {transitions} transitions, depth {depth}, "
                f"{len(store) - i} states not yet expanded")
    try:
        while found is None or found.length > depth:
            if i == level_end:
                if found is not None or i == len(store):
                    break
                depth += 1
                level_end = len(store)
            state = take(i)
            nexts = changes(state, marks, watch, fresh) if changes is not None and found is None and (
                not witnesses.pending or (witnesses.moves_quiet(state) and (
                    states_seen or not witnesses.on_states))) else None
            if nexts is not None:  # no transition reports an event or is watched
                first = len(store)
                try:
                    add_changes(state, nexts, i)
                except StoreFull:
                    # The state limit among these successors: the general way below meets it
                    # again, at the same one, and says which steps were taken up to there.
                    for m in fresh:
                        marks[m] = False
                    nexts = None
                if witnesses.on_states:
                    witnesses.new_states(store, first, depth + 1, i, reached)
            if nexts is not None:
                transitions += len(nexts)
                succ = ()
            else:
                succ = successors(state)
                transitions += len(succ)
            if not (succ or nexts):
                stuck = system.unfinished(state)
                if stuck:
                    deadlocks += 1
                    if deadlock_check and (found is None or found.length > depth):
                        found = Found(deadlock_check, _deadlock_message(system, state, stuck), depth, i)
                elif at_end and (found is None or found.length > depth):
                    found = _end_failure(system, at_end, state, depth, i) or found
            if found is None:
                for tr, nxt in succ:
                    note_taken(tr[:2])
                    if tr.events:
                        for kind, message in tr.events:
                            check = events.get(kind)
                            if check is not None:
                                found = Found(check, message, depth + 1, i, tr, nxt)
                                break
                        if found is not None:
                            break
                        if not undefined.isdisjoint(kind for kind, _ in tr.events):
                            crashed += 1  # undefined behaviour: this path ends here
                            continue
                    if observers:
                        for obs in observers:
                            if message := obs.transition(state, tr, nxt):
                                found = Found(obs.check, message, depth + 1, i, tr, nxt)
                                break
                        if found is not None:
                            break
                    new = add(nxt, i)
                    if witnesses.pending:
                        witnesses.transition(state, tr, nxt, depth + 1, i)
                        if new:
                            witnesses.state(nxt, depth + 1, tr, i)
                    if new and invariants:
                        found = _invariant_failure(system, invariants, nxt, depth + 1, tr, i)
                        if found is not None:
                            break
            i += 1
            if i & 31:  # the limit and the progress line are looked at every 32 states
                continue
            if limit is not None and (stop := limit()):
                reason = f"{stop}: {counts()}{store.MEMORY_HINT}"
                break
            if progress is not None and time.monotonic() >= next_report:
                now = time.monotonic()
                progress(len(store), transitions, depth, len(store) - i, now - start)
                next_report = now + 1.0
    except StoreFull:
        reason = f"state limit {max_states} reached: {counts()}"
    except KeyboardInterrupt:
        reason = f"interrupted: {counts()}"
    except MemoryError:  # the limit came too late: report what the store holds
        release_reserve()  # (what follows, the report included, needs a little memory)
        reason = f"out of memory (MemoryError): {counts()}{store.MEMORY_HINT}"
    seconds = time.monotonic() - start
    if marks is not None:
        taken |= system.taken(marks)
    for reduction in reductions:
        taken = reduction.taken(taken)
    missing = witnesses.missing() if found is None and not reason else []
    if found is not None or missing:
        verdict = VIOLATED
    elif reason:
        verdict = INCONCLUSIVE
    else:
        verdict = HOLDS
    return Exploration(verdict, store, transitions, depth, seconds, found, reason, deadlocks,
                       taken, witnesses.found, missing, [o.check.name for o in observers], crashed,
                       [r.name for r in reductions])


class Witnesses:
    """The ``reachable`` checks of a run, and the first (shortest) place each was found."""

    def __init__(self, system: System, checks):
        self.system, self.checks = system, checks
        self.found: dict[str, Found] = {}
        self.on_states = [c for c in checks if c.fn is not None and c.arity == 1]
        self.on_moves = [c for c in checks if c.fn is not None and c.arity == 2]
        self.move_judges = [(c, system.judge(c.fn)) for c in self.on_moves]
        self.on_steps: dict[tuple, list] = {}  # (tid, pc) -> [(check, pc after or None)]
        for check in checks:
            if check.step is not None:
                for where, then in _resolve_step(system, check):
                    self.on_steps.setdefault(where, []).append((check, then))
        names = [c.name for c in checks]
        if len(set(names)) != len(names):
            raise PtmcError(f"two witnesses share a name: {', '.join(sorted(names))}")
        self.pending = bool(checks)
        # The steps a pending step witness names, as CompiledSystem.changer's ``watch`` flags.
        self.watch = [False] * getattr(system, "marks", 0)
        self._watch()

    def _watch(self) -> None:
        if self.watch:
            self.watch[:] = [False] * len(self.watch)
            for tid, pc in self.on_steps:
                self.watch[self.system.flag(tid, pc)] = True

    def _hit(self, check, length, number, tr, target) -> None:
        self.found[check.name] = Found(check, check.description, length, number, tr, target)
        self.on_states = [c for c in self.on_states if c is not check]
        self.on_moves = [c for c in self.on_moves if c is not check]
        self.move_judges = [(c, j) for c, j in self.move_judges if c is not check]
        self.on_steps = {k: kept for k, v in self.on_steps.items()
                         if (kept := [(c, t) for c, t in v if c is not check])}
        self.pending = bool(self.on_states or self.on_moves or self.on_steps)
        self._watch()

    def state(self, state, length, tr, parent) -> None:
        """``state`` was just stored, reached by ``tr`` from state ``parent``."""
        if not self.on_states:
            return
        for check in list(self.on_states):
            if _evaluate_witness(self.system, check, (state,), state):
                if tr is None:
                    self._hit(check, 0, 0, None, None)
                else:
                    self._hit(check, length, parent, tr, state)

    def transition(self, state, tr, nxt, length, number) -> None:
        hits = self.on_steps.get(tr[:2])
        if hits:
            pc_after = nxt[self.system.layout.pc_slot[tr.tid]]
            for check, then in hits:
                if then is None or then == pc_after:
                    self._hit(check, length, number, tr, nxt)
        if self.on_moves:
            pair = (state, nxt)
            for check, judge in self.move_judges:
                try:
                    hit = judge(pair)
                except (PtmcError, MemoryError):
                    raise
                except Exception:  # noqa: BLE001 - _call says which check, and where
                    hit = _call(self.system, check, pair, nxt)
                if hit:
                    self._hit(check, length, number, tr, nxt)

    def quiet(self, state) -> bool:
        """No pending witness can be hit by a transition from ``state``: only transition
        witnesses are pending, and each says false of every transition from it (it reads
        only ``state`` to say so)."""
        if self.on_states or self.on_steps:
            return False
        return self.moves_quiet(state)

    def moves_quiet(self, state) -> bool:
        """No pending transition witness can be hit by a transition from ``state`` (see
        ``quiet``); step and state witnesses aside."""
        return all(self.system.settled(check.fn, state) is False for check, _ in self.move_judges)

    def new_states(self, store, first: int, length: int, parent: int, reached) -> None:
        """States ``first``... of ``store`` were just stored, reached from state ``parent``;
        ``reached(number)`` gives the transition to one of them (looked for only on a hit)."""
        for number, state in enumerate(store.stored_since(first) if len(store) > first else (), first):
            if not self.on_states:
                return
            for check in list(self.on_states):
                if _evaluate_witness(self.system, check, (state,), state):
                    self._hit(check, length, parent, reached(number), state)

    def missing(self) -> list:
        return [c for c in self.checks if c.name not in self.found]


def _resolve_step(system: System, check) -> list[tuple]:
    """The (tid, pc) places and the pc after them (None: any) that a 'thread.step->next'
    witness names; an input error if no thread of the model has such a step."""
    pattern, step, then = check.step
    threads = [t for t in system.threads if thread_matches(pattern, t.name)]
    if not threads:
        raise PtmcError(f"witness {check.name!r}: the model has no thread {pattern!r} "
                        f"(threads: {', '.join(t.name for t in system.threads)})")
    out = []
    stopped = {name: pc for pc, name in STOPPED.items()}
    for t in threads:
        by_name = {st.name: pc for pc, st in enumerate(t.steps)}
        if step not in by_name:
            continue
        if then is not None and then not in by_name and then not in stopped:
            raise PtmcError(f"witness {check.name!r}: {t.name} has no step {then!r} to go on to")
        out.append(((t.tid, by_name[step]), None if then is None else by_name.get(then, stopped.get(then))))
    if not out:
        raise PtmcError(f"witness {check.name!r}: no thread {pattern!r} has a step {step!r} "
                        f"(steps: {', '.join(st.name for st in threads[0].steps)})")
    return out


def _invariant_failure(system, invariants, state, length, tr, parent) -> Found | None:
    for check in invariants:
        message = _evaluate(system, check, state)
        if message is not None:
            if tr is None:
                return Found(check, message, 0, 0)
            return Found(check, message, length, parent, tr, state)
    return None


def _end_failure(system, at_end, state, depth, number) -> Found | None:
    for check in at_end:
        message = _evaluate(system, check, state)
        if message is not None:
            return Found(check, message, depth, number)
    return None


def _call(system, check, states, state):
    try:
        return system.judge(check.fn)(states)
    except (PtmcError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - a bug in a property: say which, and where
        raise ModelError(f"check {check.name} raised {type(e).__name__}: {e}; "
                         f"state: {system.layout.describe(state)}") from None


def _evaluate(system, check, state) -> str | None:
    verdict = _call(system, check, (state,), state)
    if verdict is True or verdict is None:
        return None
    return verdict if isinstance(verdict, str) else f"{check.name} is false"


def _evaluate_witness(system, check, states, state) -> bool:
    return bool(_call(system, check, states, state))


def _deadlock_message(system, state, stuck) -> str:
    where = ", ".join(f"{system.threads[t].name} at {system.layout.show_slot(system.layout.pc_slot[t], state[system.layout.pc_slot[t]])}"
                      for t in stuck)
    return f"no thread can move; unfinished: {where}"
