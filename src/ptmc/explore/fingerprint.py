"""The fingerprint store (``--store fingerprint``): 64-bit fingerprints instead of states.

What is kept per state: its fingerprint (8 bytes), its parent's number (4) and its place in an
open-addressing table of state numbers (4 bytes a slot, at most 70% full): 18-24 bytes, where
the exact store keeps the whole tuple (~750 bytes for the reclaim model). States waiting to be
expanded are kept as bytes, one small value id per slot; expanded ones are forgotten. A
counterexample is rebuilt by replay: from the initial state, each step is the first successor
(in exploration order) whose fingerprint is the stored one.

The fingerprint is type-aware and stable: each slot's value is written in a canonical
type-tagged encoding (``False``, ``0`` and ``0.0`` differ, so do a ``PT`` and a tuple; classes
and functions by qualified name), hashed with BLAKE2b to 64 bits together with the slot's
index, and a state's fingerprint is the sum of its slots' hashes mod 2**64. The sum changes only
by the slots a step changed, so a successor's fingerprint costs a few look-ups. Nothing here uses
Python's ``hash()``: the same state has the same fingerprint in every run, on every machine.

Two different states may share a fingerprint, and then the second is never explored. As TLC
does, the probability that this happened is estimated from n states and g fingerprints
generated (one per transition that reached the store) as n * (g - n) / 2**64, and reported with
every "holds".
"""
from __future__ import annotations

from array import array
from collections import deque
from contextlib import contextmanager
from hashlib import blake2b
from itertools import compress
from operator import is_not


from ..errors import ModelError
from ..state import apply_writes, encode, identical  # noqa: F401 (encode: re-exported)
from .store import UNHASHABLE, StoreFull, parent_path

_MASK = (1 << 64) - 1
CHUNK = 1024  # states per chunk of the queue
LOAD = 0.7  # the table grows when it is fuller than this


def slot_hash(slot: int, value) -> int:
    return int.from_bytes(blake2b(b"%d=" % slot + encode(value), digest_size=8).digest(), "little")


def fingerprint(state: tuple) -> int:
    return sum(slot_hash(slot, value) for slot, value in enumerate(state)) & _MASK


def collision_probability(states: int, generated: int) -> float:
    """TLC's estimate that a fingerprint collision hid a state: n * (g - n) / 2**64."""
    return states * max(generated - states, 0) / 2.0 ** 64


class _Values:
    """Per slot, the distinct values seen: a small id each (the frontier's encoding) and the
    slot's hash of the value. Values are told apart by type (``identical``)."""

    def __init__(self, slots: int):
        self.first = [{} for _ in range(slots)]  # value -> id of the first value equal to it
        self.twins: dict[tuple, list[int]] = {}  # (slot, first id) -> ids of equal values of other types
        self.values = [[] for _ in range(slots)]  # id -> value
        self.hashes = [[] for _ in range(slots)]  # id -> slot hash
        self.width, self.limit = 1, 1 << 8  # bytes per id in the frontier's encoding, ids below

    def id(self, slot: int, value) -> int:
        values = self.values[slot]
        try:
            vid = self.first[slot].setdefault(value, len(values))
        except TypeError:
            raise ModelError(UNHASHABLE) from None
        if vid == len(values):
            return self._new(slot, value)
        known = values[vid]
        if known is value or identical(known, value):
            return vid
        twins = self.twins.setdefault((slot, vid), [])
        for other in twins:
            if identical(values[other], value):
                return other
        twins.append(len(values))
        return self._new(slot, value)

    def _new(self, slot: int, value) -> int:
        self.values[slot].append(value)
        self.hashes[slot].append(slot_hash(slot, value))
        return len(self.values[slot]) - 1


class FingerprintStore:
    """The store interface of ``Store`` (add, add_all, add_changes, take, stored_since, path,
    path_states, len) over fingerprints; ``generated`` counts the fingerprints looked up."""

    MEMORY_HINT = ""  # nothing smaller to suggest

    def __init__(self, slots: int, capacity: int | None = None, canonical=None):
        self.capacity = -1 if capacity is None else capacity
        self.vals = _Values(slots)
        self.slots = range(slots)
        # States of canonical objects (the compiled system's): those objects live as long as
        # the run, so a value's id per slot may be looked up by identity.
        self.known = [{} for _ in range(slots)] if canonical is not None else None
        self.fps = array("Q")  # number -> fingerprint
        self.parent = array("i")  # number -> parent number
        self.table = array("i", [-1]) * 1024  # open addressing: fingerprint -> number
        self.mask = len(self.table) - 1
        # The states not yet taken, in number order, one record of ids each: chunks of CHUNK
        # records, the first read from ``head``.
        self.chunks, self.head, self.record = deque([bytearray()]), 0, slots
        self.taken = 0  # the number of the queue's first state
        self.current = None  # (state, its encoding as ids, its fingerprint): being expanded
        self.generated = 0

    def __len__(self) -> int:
        return len(self.fps)

    # -- states as ids -----------------------------------------------------------------------

    def _encode(self, ids) -> bytes:
        width = self.vals.width
        if width == 1:
            return ids if ids.__class__ in (bytes, bytearray) else bytes(ids)
        return array("H" if width == 2 else "I", ids).tobytes()

    def _ids(self, encoded: bytes):
        width = self.vals.width
        return encoded if width == 1 else array("H" if width == 2 else "I", encoded)

    def _widen(self, vid: int) -> None:
        """An id that does not fit the encoding: re-encode the queue wider."""
        old = self._ids(b"".join(self.chunks)[self.head:])
        width = 2 if vid < 1 << 16 else 4
        self.vals.width, self.vals.limit = width, 1 << (8 * width)
        self.record = len(self.slots) * width
        encoded = self._encode(list(old))
        step = CHUNK * self.record
        self.chunks = deque(bytearray(encoded[k:k + step]) for k in range(0, len(encoded), step)) or \
            deque([bytearray()])
        self.head = 0
        if self.current is not None:
            state, ids, fp = self.current
            self.current = (state, array("H" if width == 2 else "I", list(ids)), fp)

    def _decode(self, encoded: bytes) -> tuple:
        return tuple(map(list.__getitem__, self.vals.values, self._ids(encoded)))

    # -- the table ---------------------------------------------------------------------------

    def _find(self, fp: int) -> int:
        """The table position of ``fp``, or of the free slot where it goes."""
        table, fps, mask = self.table, self.fps, self.mask
        pos = fp & mask
        while True:
            n = table[pos]
            if n < 0 or fps[n] == fp:
                return pos
            pos = (pos + 1) & mask

    def _grow(self) -> None:
        """Twice the table, refilled in place of the old one. (Refilling costs about two
        probes per state over a whole run; a vectorised rebuild would need several temporary
        arrays of the table's size, and peak memory is what this store is for.)"""
        size = len(self.table) * 2
        mask = size - 1
        self.table = table = array("i", [-1]) * size
        for number, fp in enumerate(self.fps):
            pos = fp & mask
            while table[pos] >= 0:
                pos = (pos + 1) & mask
            table[pos] = number
        self.mask = mask

    # -- the store interface -----------------------------------------------------------------

    def _insert(self, fp: int, ids, parent: int) -> bool:
        self.generated += 1
        pos = self._find(fp)
        if self.table[pos] >= 0:
            return False
        number = len(self.fps)
        if number == self.capacity:
            raise StoreFull
        self.table[pos] = number
        self.fps.append(fp)
        self.parent.append(parent)
        last = self.chunks[-1]
        if len(last) == CHUNK * self.record:
            last = bytearray()
            self.chunks.append(last)
        last += self._encode(ids)
        if len(self.fps) > LOAD * len(self.table):
            self._grow()
        return True

    def add(self, state: tuple, parent: int) -> bool:
        vals = self.vals
        if parent < 0:  # the initial state
            ids = [vals.id(slot, value) for slot, value in enumerate(state)]
            if max(ids, default=0) >= vals.limit:
                self._widen(max(ids))
            fp = sum(vals.hashes[slot][vid] for slot, vid in enumerate(ids)) & _MASK
            return self._insert(fp, ids, parent)
        before, ids, fp = self.current
        changed = list(compress(self.slots, map(is_not, before, state)))
        if not changed:
            return self._insert(fp, ids, parent)
        written = self._write(ids, fp, [(slot, state[slot]) for slot in changed])
        if written is None:
            return self.add(state, parent)
        return self._insert(*written, parent)

    def _write(self, ids, fp: int, writes):
        """The fingerprint and ids of the state of ``ids`` and ``fp`` after ``writes`` (slot,
        value); None if a value's new id made the queue wider (``_widen``: try again)."""
        vals, known = self.vals, self.known
        ids = bytearray(ids) if vals.width == 1 else array(ids.typecode, ids)
        hashes = vals.hashes
        for slot, value in writes:
            vid = known[slot].get(id(value)) if known is not None else None
            if vid is None:
                vid = vals.id(slot, value)
                if vid >= vals.limit:
                    self._widen(vid)
                    return None
                if known is not None:
                    known[slot][id(value)] = vid
            fp += hashes[slot][vid] - hashes[slot][ids[slot]]
            ids[slot] = vid
        return fp & _MASK, ids

    @contextmanager
    def _batch(self):
        """A batch refused at the state limit is added again the general way (bfs.py): its
        fingerprints are counted then, once."""
        generated = self.generated
        try:
            yield
        except StoreFull:
            self.generated = generated
            raise

    def add_all(self, batch: list, parent: int) -> None:
        with self._batch():
            for state in batch:
                self.add(state, parent)

    def add_changes(self, state: tuple, changes: list, parent: int) -> None:
        """``add`` each successor of ``state`` (the one being expanded) that ``changes`` gives
        as its step's writes: only the written slots are looked at, no tuple is built."""
        with self._batch():
            self._add_changes(state, changes, parent)

    def _add_changes(self, state: tuple, changes: list, parent: int) -> None:
        _, before, start = self.current
        for k, writes in enumerate(changes):
            written = self._write(before, start, writes)
            if written is None:  # the queue was re-encoded wider: the rest the general way
                return self.add_all(apply_writes(state, changes[k:]), parent)
            self._insert(*written, parent)

    def take(self, number: int) -> tuple:
        """The state numbered ``number``, to expand: the frontier's first (states are taken in
        order, and then forgotten)."""
        assert number == self.taken, "states are expanded in order"
        head, record, first = self.head, self.record, self.chunks[0]
        encoded = bytes(first[head:head + record])
        self.head = head + record
        if self.head == CHUNK * record:  # that chunk is all taken
            self.chunks.popleft()
            if not self.chunks:
                self.chunks.append(bytearray())
            self.head = 0
        self.taken += 1
        state = self._decode(encoded)
        self.current = (state, self._ids(encoded), self.fps[number])
        return state

    def path(self, number: int) -> list[int]:
        return parent_path(self.parent, number)

    def stored_since(self, first: int) -> list[tuple]:
        """The states numbered ``first`` on, decoded from the end of the queue (they are not
        expanded yet)."""
        count, record, out = len(self.fps) - first, self.record, []
        for chunk in reversed(self.chunks):
            end = len(chunk)
            while count > len(out) and end > 0:
                out.append(self._decode(bytes(chunk[end - record:end])))
                end -= record
            if count == len(out):
                break
        return out[::-1]

    def is_stored(self, number: int, state: tuple) -> bool:
        """State ``number`` is ``state`` (has its fingerprint)."""
        return fingerprint(state) == self.fps[number]

    def path_states(self, numbers: list[int], system) -> list[tuple]:
        """The states numbered ``numbers`` (a path from the initial state), by replay."""
        state = system.initial
        out = [state]
        for number in numbers[1:]:
            state = next((nxt for _, nxt in system.successors(state) if self.is_stored(number, nxt)), None)
            if state is None:
                raise AssertionError("replay lost the path: no successor has the stored fingerprint")
            out.append(state)
        return out

    def collision_probability(self) -> float:
        return collision_probability(len(self), self.generated)
