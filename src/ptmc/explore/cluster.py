"""Exploration on several workers (``--workers N``, ``--cluster ADDRESS``): the same BFS, level
by level, with the visited states partitioned by fingerprint (partition.py).

Each level the coordinator asks every partition to expand its share of the frontier; the
successors travel to their owners as compact records, worker to worker; the owners keep the
new ones. The coordinator then numbers the level's new states in the order the single-process
explorer would have stored them (by the smallest key that reached each), and decides, from the
keys of what the partitions found, where the single-process run would have stopped: a
deadlock at state n, a violation at transition (n, j), or the state limit. The counts at that
point are tallied from the partitions. So states, transitions, verdict, counterexample and
witnesses are the single-process run's whatever the number of workers (tests/test_cluster.py).

The counterexample is rebuilt by replay: the partitions keep, per state, the key it was first
reached by, i.e. its parent's number and the index of the transition among the parent's
successors.

Backends move the records: ``Inline`` (partitions in this process, for tests of the protocol)
and ``RayCluster`` (ray_backend.py: one Ray actor per partition; a batch goes from the actor
that made it to the one that owns it through Ray's object store, not through the
coordinator).
"""
from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from heapq import merge
from itertools import islice

from ..result import HOLDS, INCONCLUSIVE, VIOLATED
from .bfs import Exploration, Found, Witnesses, _invariant_failure
from .fingerprint import collision_probability, fingerprint
from .store import parent_path

KEY_BITS = 20  # transitions per state below 2**20
KEY_MASK = (1 << KEY_BITS) - 1


# Phases of one transition, in the order the single-process explorer looks at it: a step is
# noted as taken, then the events and observers are checked, then the successor is stored (a
# state limit stops here), then the witnesses of the transition, of the new state, and the
# invariants of the new state. (Deadlocks and end-state failures of a state come before all
# of its transitions: it has none.)
TAKEN, CHECKED, STORED, MOVE_WITNESS, STATE_WITNESS, INVARIANT = range(6)
STUCK = -1  # the phase of a deadlock or end-state failure, at transition index 0


def order(key: int, phase: int) -> tuple[int, int]:
    """Where a finding sits in the single-process run: compare these."""
    return key, phase


class WorkerLost(Exception):
    """A worker is gone (killed, or out of memory): the run ends as inconclusive."""


class Inline:
    """Partitions in this process: the protocol without a framework (tests)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.parts: list = []  # partition.Partition
        self.exchanged = 0  # bytes sent from one partition to another

    def start(self, job) -> None:
        from .partition import Partition
        self.parts = [Partition(job, i, self.workers) for i in range(self.workers)]

    def call(self, method: str, args: list) -> list:
        """``method`` of each partition with its arguments (None: not called, result None)."""
        assert len(args) == self.workers, "one argument tuple (or None) per worker"
        return [None if a is None else getattr(p, method)(*a) for p, a in zip(self.parts, args)]

    def level(self, depth: int) -> tuple[list, list]:
        expanded = [p.expand(depth) for p in self.parts]
        self.exchanged += sum(out[-1]["sent"] for out in expanded)
        received = [p.receive(depth, *(out[i] for out in expanded)) for i, p in enumerate(self.parts)]
        return [out[-1] for out in expanded], received

    def stop(self) -> None:
        self.parts = []


class ClusterStore:
    """What a distributed run keeps on the coordinator: the count, and the parent links of the
    paths it reports (the store interface ``describe`` and ``trace_steps`` use)."""

    def __init__(self, states: int, links: dict, probability: float | None):
        self.states, self.links, self.probability = states, links, probability

    def __len__(self) -> int:
        return self.states

    def path(self, number: int) -> list[int]:
        return parent_path({n: p for n, (p, _) in self.links.items()}, number)

    def path_states(self, numbers: list[int], system) -> list[tuple]:
        state = system.initial
        out = [state]
        for number in numbers[1:]:
            state = system.successors(state)[self.links[number][1]][1]
            out.append(state)
        return out

    def collision_probability(self) -> float | None:
        return self.probability


def explore_cluster(system, checks, backend, job, *, max_states=None, progress=None, limit=None,
                    observers=()) -> Exploration:
    """Explore ``system`` (the coordinator's copy, used for the initial state and for replay)
    on ``backend``'s workers, each of which builds the same system from ``job``."""
    start = time.monotonic()
    invariants = [c for c in checks if c.kind == "invariant"]
    by_name = {c.name: c for c in checks} | {o.check.name: o.check for o in observers}
    witnesses = Witnesses(system, [c for c in checks if c.kind == "reachable"])
    found = _invariant_failure(system, invariants, system.initial, 0, None, -1)
    for obs in observers:
        if found is None and (message := obs.initial(system.initial)):
            found = Found(obs.check, message, 0, 0)
    witnesses.state(system.initial, 0, None, -1)
    hits = {name: None for name in witnesses.found}  # witness name -> (length, key), None: initial
    if found is not None:  # no worker is needed to say so
        probability = None if job.store == "exact" else collision_probability(1, 1)
        ex = _exploration(system, witnesses, ClusterStore(1, {0: (-1, 0)}, probability), VIOLATED, 0, 0,
                          start, found, "", 0, set(), {}, 0, observers)
        ex.workers = backend.workers
        return ex

    run = _Run(backend, job, system, max_states, by_name)
    try:
        ex = run.explore(start, progress, limit, witnesses, hits, observers)
    finally:
        backend.stop()
    ex.workers, ex.exchanged, ex.startup = backend.workers, backend.exchanged, getattr(run, "startup", 0.0)
    return ex


class _Run:
    def __init__(self, backend, job, system, max_states, by_name):
        self.backend, self.job, self.system = backend, job, system
        self.max_states, self.by_name = max_states, by_name

    def explore(self, start, progress, limit, witnesses, hits, observers) -> Exploration:
        backend, system = self.backend, self.system
        began = time.monotonic()
        backend.start(self.job)
        self.startup = time.monotonic() - began  # (not exploration: reported apart)
        start += self.startup
        self.workers = workers = backend.workers  # (known once started: a cluster says how many)
        owner = fingerprint(system.initial) % workers
        backend.call("seed", [() if w == owner else None for w in range(workers)])
        # (generated: the fingerprints looked up, the initial state's included, as the
        # fingerprint store counts them for its collision estimate)
        states, transitions, deadlocks, crashed, generated, depth, frontier = 1, 0, 0, 0, 1, 0, 1
        taken: set = set()
        found, found_index, reason = None, None, ""
        last_report = start
        while True:
            try:
                if limit is not None and (stop := limit()):
                    reason = stop
                    break
                expanded, received = backend.level(depth)
            except KeyboardInterrupt:
                reason = "interrupted"
                break
            except WorkerLost as e:
                reason = str(e)
                break
            mine = [array("q", k) for k, _ in received]  # each worker's new keys, sorted
            new = sum(map(len, mine))
            stop = self._first_stop(expanded, received, mine, new, states)
            if stop is None:
                more, stuck, lost, steps = _totals(expanded)
                transitions, deadlocks, crashed = transitions + more, deadlocks + stuck, crashed + lost
                generated += sum(r["generated"] for _, r in received)
                taken |= steps
                self._note_hits(hits, expanded, received, depth, None)
                if not new:
                    break
                backend.call("enter", [(_numbers(mine, w, states).tobytes(),) for w in range(workers)])
                states += new
                frontier = new
                depth += 1
                if progress is not None and time.monotonic() - last_report >= 1.0:
                    last_report = time.monotonic()
                    progress(states, transitions, depth, frontier, last_report - start)
                continue
            kind, at = stop
            # Where the single-process run stops, and what it has looked at by then.
            if kind == "violation":
                key, phase, name, message = at
                found = Found(self.by_name[name], message, depth + 1, key >> KEY_BITS)
                found_index, cut = key & KEY_MASK, order(key, phase)
                after = [s for s in backend.call("stuck_after", [(key >> KEY_BITS,)] * workers) if s]
                last = 1 << 62
                if after:
                    number, (name, message) = min(after)
                    found, found_index, last = Found(self.by_name[name], message, depth, number), None, number
            elif kind == "stuck":
                number, (name, message) = at
                found, found_index = Found(self.by_name[name], message, depth, number), None
                last, cut = number, (number << KEY_BITS, STUCK)
            else:  # the state limit
                key = at
                last, cut = key >> KEY_BITS, order(key, STORED)
                reason = f"state limit {self.max_states} reached"
            # (the store looks a state up before it finds itself full: that one counts too)
            looked_up = (cut[0], STORED + 1) if kind == "limit" else cut
            tallies = backend.call("tally", [(last, cut, looked_up)] * workers)
            more, stuck, lost, steps = _totals(tallies)
            transitions, deadlocks, crashed = transitions + more, deadlocks + stuck, crashed + lost
            generated += sum(t["generated"] for t in tallies)
            taken |= steps
            self._note_hits(hits, [{"hits": t["hits"]} for t in tallies], received, depth, cut)
            states += sum(1 for k in merge(*mine) if order(k, STORED) < cut)
            frontier = states - last if kind == "limit" else 0
            break
        if reason:
            reason = (f"{reason}: {states} states, {transitions} transitions, depth {depth}, "
                      f"{frontier} states not yet expanded")
        wanted = [f.state for f in [found] if f is not None] + [k >> KEY_BITS for _, k in filter(None, hits.values())]
        try:
            links = self._links(wanted)
        except WorkerLost as e:  # the paths are gone with the worker: nothing found is reported
            links, hits = {}, {n: h for n, h in hits.items() if h is None}
            found = found_index = None
            reason = reason or f"{e}: {states} states, {transitions} transitions, depth {depth}"
        probability = None if self.job.store == "exact" else collision_probability(states, generated)
        store = ClusterStore(states, links, probability)
        verdict = VIOLATED if found is not None else (INCONCLUSIVE if reason else HOLDS)
        if found_index is not None:
            found.transition, found.target = _replay(system, store, found.state, found_index)
        return _exploration(system, witnesses, store, verdict, transitions, depth, start, found, reason,
                            deadlocks, taken, hits, crashed, observers)

    def _first_stop(self, expanded, received, mine, new, states):
        """The first place, in single-process order, where this level's exploration stops: a
        deadlock or end-state failure, a violation, or the state limit; None if it does not."""
        candidates = []
        stuck = [e["stuck"] for e in expanded if e["stuck"]]
        if stuck:
            number, finding = min(stuck)
            candidates.append(((number << KEY_BITS, STUCK), "stuck", (number, finding)))
        violations = [e["found"] for e in expanded if e["found"]] + [r["found"] for _, r in received if r["found"]]
        if violations:
            v = min(violations, key=lambda f: order(f[0], f[1]))
            candidates.append((order(v[0], v[1]), "violation", v))
        if self.max_states is not None and states + new > self.max_states:
            key = next(islice(merge(*mine), self.max_states - states, None))
            candidates.append((order(key, STORED), "limit", key))
        if not candidates:
            return None
        _, kind, at = min(candidates, key=lambda c: c[0])
        return kind, at

    def _note_hits(self, hits, expanded, received, depth, cut) -> None:
        """The first witness hits of this level (before ``cut``), for witnesses not hit yet."""
        level = {}
        for part in [e["hits"] for e in expanded] + [r["hits"] for _, r in received]:
            for name, kp in part.items():
                if (cut is None or kp < cut) and (name not in level or kp < level[name]):
                    level[name] = kp
        for name, (key, _) in level.items():
            if name not in hits:
                hits[name] = (depth + 1, key)

    def _links(self, numbers) -> dict:
        """Parent number and transition index of every state on the paths to ``numbers``."""
        links, want = {}, set(numbers)
        while want:
            got = {}
            for part in self.backend.call("parent_keys", [(sorted(want),)] * self.workers):
                got.update(part)
            links.update({n: (-1, 0) if k < 0 else (k >> KEY_BITS, k & KEY_MASK) for n, k in got.items()})
            want = {p for p, _ in (links[n] for n in want) if p >= 0 and p not in links}
        return links


def _totals(parts: list) -> tuple:
    """Transitions, deadlocks and crashed transitions summed over the workers' summaries, and
    the steps they took."""
    taken = set()
    for p in parts:
        taken |= p["taken"].keys()
    return (sum(p["transitions"] for p in parts), sum(p["deadlocks"] for p in parts),
            sum(p["crashed"] for p in parts), taken)


def _numbers(mine: list, w: int, first: int) -> array:
    """The numbers of worker ``w``'s new states: ``first`` plus each key's rank among all the
    workers' new keys (each list sorted, no key in two)."""
    others = [keys for v, keys in enumerate(mine) if v != w]
    return array("q", [first + i + sum(bisect_left(o, key) for o in others) for i, key in enumerate(mine[w])])


def _exploration(system, witnesses, store, verdict, transitions, depth, start, found, reason, deadlocks,
                 taken, hits, crashed, observers) -> Exploration:
    """The Exploration of a distributed run: what was found, replayed into transitions."""
    for name, hit in hits.items():
        if hit is not None:
            check = next(c for c in witnesses.checks if c.name == name)
            length, key = hit
            tr, target = _replay(system, store, key >> KEY_BITS, key & KEY_MASK)
            witnesses.found[name] = Found(check, check.description, length, key >> KEY_BITS, tr, target)
    missing = witnesses.missing() if found is None and not reason else []
    if missing and verdict == HOLDS:
        verdict = VIOLATED
    return Exploration(verdict, store, transitions, depth, time.monotonic() - start, found, reason, deadlocks,
                       taken, witnesses.found, missing, [o.check.name for o in observers], crashed, [])


def _replay(system, store, number: int, index: int):
    state = store.path_states(store.path(number), system)[-1]
    return system.successors(state)[index]
