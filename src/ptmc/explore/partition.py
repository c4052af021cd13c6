"""One worker's share of a distributed exploration (``--workers``, ``--cluster``): the states
whose fingerprint falls to it, level by level.

The coordinator (cluster.py) drives the level-synchronous BFS. Each level, every partition
*expands* its frontier (the states of the level it owns, in state-number order) exactly as the
single-process explorer would, and sends each successor to its owner as a compact record; the
owners *receive* them, keep the new ones and check them; the coordinator numbers the new
states as the single-process run would have, and the partitions take those numbers
(*enter*). Nothing here decides when exploration stops: each partition reports what it found
with the *key* that orders it in the single-process run, and the coordinator picks.

A key is ``(number of the state expanded) << KEY_BITS | (index of the transition among its
successors)``: the single-process explorer meets transitions in key order, and a state is
numbered in its level by the smallest key that reached it. So the shortest counterexample, the
counts at a stop and the witnesses are the single-process run's, on any number of workers.

Records: a state is one 16-bit value id per slot (``array('H')``, sent as one byte per slot
when every id fits). Ids are the sender's; a value travels once from each sender to each
receiver, pickled with the module files it comes from named by their digest (Job.files), and
the receiver keeps a translation per sender. Fingerprints are fingerprint.py's (stable
BLAKE2b slot hashes), so the owner of a state is the same on every run and machine.
"""
from __future__ import annotations

import gc
import hashlib
import io
import pickle
import sys
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..errors import ModelError, PtmcError
from ..kernel import UNDEFINED
from .cluster import CHECKED, INVARIANT, KEY_BITS, MOVE_WITNESS, STATE_WITNESS, STORED, TAKEN, order
from .fingerprint import _MASK, _Values

MAX_ID = 1 << 16  # distinct values per slot a record can name


@dataclass
class Job:
    """How a worker builds the run: the property file (its checks, minus ``exclude``), the
    model file and its parameters, and the store; ``files`` maps each file's
    SHA-256 to its path, so a worker on another machine can say it sees different files.
    ``build`` (tests) replaces the files with a function returning (model, checks)."""
    property_file: str = ""
    model_file: str = ""
    params: dict = field(default_factory=dict)
    variants: tuple = ()
    without: tuple = ()
    exclude: tuple = ()
    store: str = "exact"
    files: dict = field(default_factory=dict)
    source: str = ""  # digest of ptmc's own sources: workers must run the same ptmc
    build: object = None

    def model_and_checks(self):
        if self.build is not None:
            return self.build()
        from ..model import load_model_class
        from ..properties import load_property
        for digest, path in self.files.items():
            if file_digest(path) != digest:
                raise PtmcError(f"worker sees a different {path} than the coordinator (or none): "
                                "workers need the same files at the same paths")
        if self.source and self.source != source_digest():
            raise PtmcError("worker runs a different ptmc than the coordinator: install the same version")
        prop = load_property(self.property_file)
        checks = [c for c in prop.checks if c.name not in self.exclude]
        model = load_model_class(self.model_file)(self.params, list(self.variants), without=self.without)
        return model, checks


def file_digest(path) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return ""


def source_digest() -> str:
    """SHA-256 over ptmc's own source files (a worker must run the same code)."""
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


class Partition:
    """The states of one worker: ``index`` of ``workers``."""

    def __init__(self, job: Job, index: int, workers: int):
        from . import with_witnesses
        from .compiled import CompiledSystem
        from .bfs import Witnesses
        model, checks = job.model_and_checks()
        checks = [c.bind(type(model)) for c in checks]
        # (compiled: a successor is encoded from its step's writes, which the compiled steps give)
        self.system = system = CompiledSystem(model)
        checks = with_witnesses(model, checks)
        self.observers = model.observers(system)
        self.index, self.workers, self.exact = index, workers, job.store == "exact"
        self.events = {c.event: c for c in checks if c.kind == "never"}
        self.undefined = {e for e in UNDEFINED if e not in self.events}
        self.invariants = [c for c in checks if c.kind == "invariant"]
        self.at_end = [c for c in checks if c.kind == "at_end"]
        self.deadlock_check = next((c for c in checks if c.kind == "deadlock_free"), None)
        self.witnesses = Witnesses(system, [c for c in checks if c.kind == "reachable"])
        self.vals = _Values(len(system.initial))
        self.slots = range(len(system.initial))
        self.known = [{} for _ in self.slots]  # id of a canonical object (they live as long as the run) -> id
        self.told = [[0] * len(self.slots) for _ in range(workers)]  # ids sent to each worker, per slot
        self.heard = [[[] for _ in self.slots] for _ in range(workers)]  # sender id -> local id, per slot
        self.modules = _user_modules(model, checks)
        self.by_writes: dict = {}  # id(writes) -> _coded(writes)
        self.alive: list = []  # the writes cached (kept alive: their ids must stay theirs)
        self.tables = [None] * workers  # per sender: its value ids -> ours, per slot (numpy)
        self.columns = np.arange(len(self.slots))
        self.seen: set = set()  # records (exact) or fingerprints of every state kept
        self.frontier: list = []  # (number, ids, fingerprint) of this level, in number order
        self.numbers, self.parents = array("q"), array("q")  # every state kept: number -> parent key
        self.new: list = []  # the level's new states in key order

    # -- records -----------------------------------------------------------------------------

    def _ids(self, state: tuple) -> array:
        return array("H", [self._id(slot, value) for slot, value in enumerate(state)])

    def _id(self, slot: int, value) -> int:
        """The id of ``value``, a canonical object of this partition's system, in ``slot``."""
        vid = self.known[slot].get(id(value))
        if vid is None:
            vid = self.known[slot][id(value)] = self.vals.id(slot, value)
            if vid >= MAX_ID:
                raise ModelError(f"slot {self.system.layout.names[slot]} holds more than {MAX_ID} values: "
                                 "too many for a distributed run's records")
        return vid

    def _fingerprint(self, ids) -> int:
        hashes = self.vals.hashes
        return sum(hashes[slot][vid] for slot, vid in enumerate(ids)) & _MASK

    def _state(self, ids) -> tuple:
        return tuple(map(list.__getitem__, self.vals.values, ids))

    # -- the level ---------------------------------------------------------------------------

    def seed(self) -> None:
        """Keep the initial state (number 0): this partition owns it."""
        ids = self._ids(self.system.initial)
        fp = self._fingerprint(ids)
        self.seen.add(ids.tobytes() if self.exact else fp)
        self.frontier = [(0, ids, fp)]
        self.numbers.append(0)
        self.parents.append(-1)

    def expand(self, depth: int) -> list:
        """Expand the frontier (level ``depth``): the records for each worker (bytes), and last
        what was found, each with its key (see ``order``)."""
        with _no_gc():
            return self._expand(depth)

    def _expand(self, depth: int) -> list:
        system, workers = self.system, self.workers
        out_fps = [array("Q") for _ in range(workers)]
        out_keys = [array("Q") for _ in range(workers)]
        out_ids = [array("H") for _ in range(workers)]
        events, undefined, observers = self.events, self.undefined, self.observers
        witnesses = self.witnesses
        self.counts = array("I")  # transitions of each frontier state
        self.stuck: list = []  # (number, found, stuck) of frontier states with no transition
        self.crashes = array("Q")  # keys of transitions into unchecked undefined behaviour
        taken: dict = {}  # (tid, pc) -> first key, of the transitions looked at one by one
        hits: dict = {}  # witness name -> (key, phase)
        found = None  # (key, phase, check name, message): the first violation here
        # A compiled system gives the writes of each successor when no transition reports an
        # event (as in the single-process explorer): no Transition, no state tuple.
        changes = system.changer() if not observers else None
        moves = system.mover()
        marks = [False] * system.marks if changes is not None else None
        fresh: list = []
        by_writes = self.by_writes
        for number, ids, fp in self.frontier:
            state = self._state(ids)
            quick = changes(state, marks, witnesses.watch, fresh) if changes is not None and found is None and (
                not witnesses.pending or witnesses.quiet(state)) else None
            base = number << KEY_BITS
            if quick is not None:
                self.counts.append(len(quick))
                if not quick:
                    self._stuck(number, state)
                send = [(base | j, writes) for j, writes in enumerate(quick)]
            else:
                succ = moves(state)
                self.counts.append(len(succ))
                if not succ:
                    self._stuck(number, state)
                    continue
                if found is not None:
                    continue  # as the single-process run: after a violation, only deadlocks count
                send = []  # (key, writes) of the successors that go to their owners
                for j, (tr, writes) in enumerate(succ):
                    key = base | j
                    nxt = None  # the state after, only where a check looks at it
                    if observers or witnesses.pending:
                        values = list(state)
                        for slot, value in writes:
                            values[slot] = value
                        nxt = tuple(values)
                    taken.setdefault(tr[:2], key)
                    if tr.events:
                        check = next((events[k] for k, _ in tr.events if k in events), None)
                        if check is not None:
                            message = next(m for k, m in tr.events if k == check.event)
                            found = (key, CHECKED, check.name, message)
                            break
                        if not undefined.isdisjoint(k for k, _ in tr.events):
                            self.crashes.append(key)
                            continue
                    if observers:
                        for obs in observers:
                            if message := obs.transition(state, tr, nxt):
                                found = (key, CHECKED, obs.check.name, message)
                                break
                        if found is not None:
                            break
                    if witnesses.pending:
                        before = set(witnesses.found)
                        witnesses.transition(state, tr, nxt, depth + 1, number)
                        for name in set(witnesses.found) - before:
                            hits[name] = (key, MOVE_WITNESS)
                    send.append((key, writes))
            # Each successor's record and fingerprint: only the slots its step writes.
            for key, writes in send:
                new_ids, new_fp = ids[:], fp
                coded = by_writes.get(id(writes))
                if coded is None:
                    coded = self._coded(writes)
                for slot, vid, row in coded:
                    old = new_ids[slot]
                    if vid != old:
                        new_fp += row[vid] - row[old]
                        new_ids[slot] = vid
                new_fp &= _MASK
                to = new_fp % workers
                out_fps[to].append(new_fp)
                out_keys[to].append(key)
                out_ids[to].extend(new_ids)
        if marks is not None:
            taken.update(dict.fromkeys(system.taken(marks) - taken.keys()))
        self.hits, self.found = hits, found
        self.sent_keys = out_keys  # (tally counts the ones looked up before a stop)
        batches = [self._batch(to, out_fps[to], out_keys[to], out_ids[to]) for to in range(workers)]
        self.sent_bytes = sum(len(b) for to, b in enumerate(batches) if to != self.index)
        first_stuck = next(((n, f) for n, f, _ in self.stuck if f is not None), None)
        return [*batches, {"transitions": sum(self.counts), "deadlocks": sum(s for _, _, s in self.stuck),
                           "crashed": len(self.crashes), "found": found, "stuck": first_stuck,
                           "taken": taken, "hits": hits, "sent": self.sent_bytes}]

    def _coded(self, writes) -> tuple:
        """A step's writes as (slot, value id, the slot's hashes), cached by identity: writes
        are the compiled system's, which live as long as it does (and are kept alive here)."""
        coded = self.by_writes[id(writes)] = tuple((slot, self._id(slot, value), self.vals.hashes[slot])
                                                    for slot, value in writes)
        self.alive.append(writes)
        return coded

    def _stuck(self, number: int, state: tuple) -> None:
        """A frontier state with no transition: a deadlock or an end state (and what fails)."""
        from .bfs import _deadlock_message, _end_failure
        stuck = self.system.unfinished(state)
        finding = None
        if stuck and self.deadlock_check is not None:
            finding = self.deadlock_check.name, _deadlock_message(self.system, state, stuck)
        elif not stuck and self.at_end:
            failure = _end_failure(self.system, self.at_end, state, 0, 0)
            if failure is not None:
                finding = failure.check.name, failure.message
        self.stuck.append((number, finding, bool(stuck)))

    def _batch(self, to: int, fps, keys, ids) -> bytes:
        """Records for worker ``to``, with the values it has not heard of from us."""
        told, values = self.told[to], self.vals.values
        fresh = []
        if to != self.index:
            for slot in self.slots:
                if len(values[slot]) > told[slot]:
                    fresh.append((slot, told[slot], values[slot][told[slot]:]))
                    told[slot] = len(values[slot])
        narrow = max((len(v) for v in values), default=0) <= 256
        body = np.frombuffer(ids, np.uint16).astype(np.uint8).tobytes() if narrow and ids else ids.tobytes()
        head = _dumps((self.index, narrow, fresh), self.modules)
        return b"".join([len(head).to_bytes(4, "little"), head, len(fps).to_bytes(4, "little"),
                         fps.tobytes(), keys.tobytes(), body])

    def receive(self, depth: int, *batches: bytes) -> tuple[bytes, dict]:
        """Keep the new states among the records sent to us (``batches``, one per sender) and
        check them: their keys in order (bytes of int64s), and what was found."""
        with _no_gc():
            return self._receive(depth, batches)

    def _receive(self, depth: int, batches) -> tuple[bytes, dict]:
        seen, pending, exact = self.seen, {}, self.exact
        size = 2 * len(self.slots)  # bytes of a record
        generated = 0
        for batch in batches:
            fps, keys, records = self._unpack(batch)
            generated += len(fps)
            for r, fp in enumerate(fps):
                rec = records[r * size:(r + 1) * size]
                ident = rec if exact else fp
                if ident in seen:
                    continue
                key = keys[r]
                entry = pending.get(ident)
                if entry is None:
                    pending[ident] = [key, rec, fp]
                elif key < entry[0]:
                    entry[0] = key
        self.new = sorted(pending.values(), key=lambda e: e[0])
        found, hits = None, {}
        witnesses = self.witnesses
        if self.invariants or witnesses.on_states:
            from .bfs import _invariant_failure
            for key, rec, _ in self.new:
                state = self._state(array("H", rec))
                if witnesses.on_states:
                    before = set(witnesses.found)
                    witnesses.state(state, depth + 1, True, key >> KEY_BITS)
                    for name in set(witnesses.found) - before:
                        hits[name] = (key, STATE_WITNESS)
                if self.invariants:
                    failure = _invariant_failure(self.system, self.invariants, state, depth + 1, True, 0)
                    if failure is not None:
                        found = (key, INVARIANT, failure.check.name, failure.message)
                        break
        keys = array("q", [e[0] for e in self.new])
        return keys.tobytes(), {"found": found, "hits": hits, "generated": generated}

    def _unpack(self, batch: bytes):
        """A batch's fingerprints, keys, and records in this partition's value ids (bytes)."""
        n = int.from_bytes(batch[:4], "little")
        sender, narrow, fresh = _loads(batch[4:4 + n], self.modules)
        at = 4 + n
        count = int.from_bytes(batch[at:at + 4], "little")
        at += 4
        fps = array("Q", batch[at:at + 8 * count])
        at += 8 * count
        keys = array("Q", batch[at:at + 8 * count])
        at += 8 * count
        ids = np.frombuffer(batch, np.uint8 if narrow else np.uint16, offset=at).astype(np.uint16)
        if sender != self.index:
            heard = self.heard[sender]
            # Values from elsewhere become this system's canonical objects: its compiled steps
            # tell values apart by identity while no slot is mixed (state.Canonical).
            canonical = self.system.canonical
            for slot, first, values in fresh:
                assert len(heard[slot]) == first, "values arrive in order"
                heard[slot].extend(self._id(slot, canonical(slot, v)) for v in values)
            if fresh or self.tables[sender] is None:
                table = np.zeros((len(heard), max(map(len, heard), default=0) or 1), np.uint16)
                for slot, h in enumerate(heard):
                    table[slot, :len(h)] = h
                self.tables[sender] = table
            if count:
                ids = self.tables[sender][self.columns, ids.reshape(count, len(self.slots))]
        return fps, keys, ids.tobytes()

    def enter(self, numbers: bytes) -> int:
        """The numbers of this level's new states, in key order (bytes of int64s), up to as many
        as were kept: they are the next frontier. Returns how many this partition holds."""
        with _no_gc():
            return self._enter(numbers)

    def _enter(self, numbers: bytes) -> int:
        numbers = array("q", numbers)
        frontier = []
        for number, (key, rec, fp) in zip(numbers, self.new):
            self.seen.add(rec if self.exact else fp)
            self.numbers.append(number)
            self.parents.append(key)
            frontier.append((number, array("H", rec), fp))
        self.frontier, self.new = frontier, []
        return len(self.numbers)

    def tally(self, last: int, limit: tuple, looked_up: tuple) -> dict:
        """The counts of the level as the single-process run has them when it stops: the states
        numbered up to ``last`` expanded, and nothing after ``limit`` (a key, phase) looked at
        (``looked_up``: the same for the successors looked up in the store)."""
        expanded = [k for k, (number, _, _) in enumerate(self.frontier) if number <= last]
        taken = set()  # (the quick path marks steps without keys: look again, up to the limit)
        for number, ids, _ in self.frontier:
            if order(number << KEY_BITS, TAKEN) >= limit:
                break
            for j, (tr, _) in enumerate(self.system.successors(self._state(ids))):
                if order(number << KEY_BITS | j, TAKEN) < limit:
                    taken.add(tr[:2])
        return {"transitions": sum(self.counts[k] for k in expanded),
                "deadlocks": sum(s for n, _, s in self.stuck if n <= last),
                "crashed": sum(1 for key in self.crashes if order(key, CHECKED) < limit),
                "taken": dict.fromkeys(taken),
                "generated": sum(1 for keys in self.sent_keys for key in keys if order(key, STORED) < looked_up),
                "hits": {name: kp for name, kp in self.hits.items() if kp < limit}}

    def stuck_after(self, number: int):
        """The first deadlock or end-state failure of a state numbered above ``number``."""
        return next(((n, f) for n, f, _ in self.stuck if n > number and f is not None), None)

    def parent_keys(self, numbers: list) -> dict:
        """For each of ``numbers`` this partition keeps: the key it was reached by (-1 for the
        initial state)."""
        out = {}
        from bisect import bisect_left
        for number in numbers:
            k = bisect_left(self.numbers, number)
            if k < len(self.numbers) and self.numbers[k] == number:
                out[number] = self.parents[k]
        return out

    def memory(self) -> int:
        """Peak resident memory of this worker's process, in bytes."""
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextmanager
def _no_gc():
    """As the single-process explorer: records and arrays make no reference cycles, and the
    cyclic collector would only rescan the growing visited set (frozen after each call)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


# -- values across processes -----------------------------------------------------------------

def _user_modules(model, checks) -> dict:
    """The model and property modules of this run (loaded from files, so not importable by
    name in another process), by file digest: a class or function of one travels as (digest,
    qualified name)."""
    names = {type(model).__module__, *(getattr(c.fn, "__module__", None) for c in checks)}
    return {file_digest(m.__file__): m for n in names
            if n and n.startswith("_ptmc_") and getattr(m := sys.modules[n], "__file__", None)}


class _Pickler(pickle.Pickler):
    def __init__(self, f, modules):
        super().__init__(f, protocol=pickle.HIGHEST_PROTOCOL)
        # Every loaded copy of a file (tests load one file many times) maps to its digest.
        self.digests = {n: d for d, m in modules.items() for n, other in list(sys.modules.items())
                        if n.startswith("_ptmc_") and getattr(other, "__file__", None) == m.__file__}

    def persistent_id(self, obj):
        if isinstance(obj, type) or callable(obj):
            digest = self.digests.get(getattr(obj, "__module__", None))
            if digest is not None:
                return digest, obj.__qualname__
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, modules):
        super().__init__(f)
        self.modules = modules

    def persistent_load(self, pid):
        digest, qualname = pid
        obj = self.modules[digest]
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj


def _dumps(value, modules) -> bytes:
    f = io.BytesIO()
    _Pickler(f, modules).dump(value)
    return f.getvalue()


def _loads(data: bytes, modules):
    return _Unpickler(io.BytesIO(data), modules).load()
