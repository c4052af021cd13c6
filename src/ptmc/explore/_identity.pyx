# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The exact store's index, in C: states of canonical objects, by the identity of those objects.

The compiled system builds every state of ``state.Canonical`` objects: one object per typed
value and slot, alive for the whole run. Two such states are the same state exactly when they
hold the same object in every slot. So a state is looked up by a Zobrist hash of its objects'
addresses (the XOR of one mixed word per slot and object, which a successor's step changes by
the few slots it writes) and compared as an array of pointers. A successor is thus found, or
found new, without building its tuple, hashing 80 values or comparing them: the tuple is made
only for a new state. (Python's ``hash()`` hashes every element of a tuple, every time.)

Addresses differ between runs, so the hash decides only where a state sits in the table; which
states are stored, their numbers and their order do not depend on it.
"""
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.stdint cimport int32_t, uint64_t, uintptr_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcmp, memcpy


cdef extern from "Python.h":
    PyObject** PySequence_Fast_ITEMS(object o)
    Py_ssize_t PyTuple_GET_SIZE(object o)


cdef inline uint64_t _word(Py_ssize_t slot, PyObject* value) noexcept nogil:
    """The hash word of ``value`` in ``slot`` (splitmix64's finaliser)."""
    cdef uint64_t x = <uint64_t><uintptr_t>value + <uint64_t>(slot + 1) * 0x9E3779B97F4A7C15ULL
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
    return x ^ (x >> 31)


cdef class IdentityIndex:
    """The states (``states``, a list of tuples, by number), their parents (``parent``, an
    ``array('q')``) and an open-addressing table from hash to number, at most 70% full.
    ``full``: the exception raised when a new state would be number ``capacity``."""

    cdef uint64_t* keys
    cdef int32_t* numbers  # -1: a free place
    cdef Py_ssize_t size, count, slots, capacity
    cdef PyObject** buffer  # the successor being looked up
    cdef readonly list states
    cdef readonly object parent
    cdef object full

    def __cinit__(self, Py_ssize_t slots, parent, Py_ssize_t capacity, full):
        self.slots, self.capacity, self.full = slots, capacity, full
        self.states, self.parent = [], parent
        self.buffer = <PyObject**>malloc(max(slots, 1) * sizeof(PyObject*))
        self.keys, self.numbers, self.size, self.count = NULL, NULL, 0, 0
        if self.buffer == NULL:
            raise MemoryError
        self._table(1024)

    def __dealloc__(self):
        free(self.keys)
        free(self.numbers)
        free(self.buffer)

    cdef int _table(self, Py_ssize_t size) except -1:
        """A free table of ``size`` places (a power of two), the states re-entered into it."""
        cdef uint64_t* keys = <uint64_t*>malloc(size * sizeof(uint64_t))
        cdef int32_t* numbers = <int32_t*>malloc(size * sizeof(int32_t))
        cdef Py_ssize_t pos, i, mask = size - 1
        if keys == NULL or numbers == NULL:
            free(keys)
            free(numbers)
            raise MemoryError
        for pos in range(size):
            numbers[pos] = -1
        for i in range(self.size):
            if self.numbers[i] >= 0:
                pos = self.keys[i] & mask
                while numbers[pos] >= 0:
                    pos = (pos + 1) & mask
                keys[pos], numbers[pos] = self.keys[i], self.numbers[i]
        free(self.keys)
        free(self.numbers)
        self.keys, self.numbers, self.size = keys, numbers, size
        return 0

    cdef inline uint64_t _hash(self, PyObject** items) noexcept:
        cdef uint64_t h = 0
        cdef Py_ssize_t slot
        for slot in range(self.slots):
            h ^= _word(slot, items[slot])
        return h

    cdef Py_ssize_t _place(self, uint64_t h, PyObject** items):
        """Where the state of ``items`` is in the table, or the free place where it goes."""
        cdef Py_ssize_t mask = self.size - 1, pos = h & mask
        cdef int32_t n
        cdef size_t width = self.slots * sizeof(PyObject*)
        while True:
            n = self.numbers[pos]
            if n < 0:
                return pos
            if self.keys[pos] == h and memcmp(PySequence_Fast_ITEMS(self.states[n]), items, width) == 0:
                return pos
            pos = (pos + 1) & mask

    cdef int _store(self, Py_ssize_t pos, uint64_t h, PyObject** items, object state, long long parent) except -1:
        """Store a new state at free place ``pos``: ``state``, or a tuple of ``items``."""
        cdef Py_ssize_t number = len(self.states), slot
        if number == self.capacity:
            raise self.full
        if state is None:
            state = PyTuple_New(self.slots)
            for slot in range(self.slots):
                Py_INCREF(<object>items[slot])
                PyTuple_SET_ITEM(state, slot, <object>items[slot])
        self.parent.append(parent)  # (first: a MemoryError leaves every stored state a parent)
        self.states.append(state)
        self.keys[pos], self.numbers[pos] = h, <int32_t>number
        self.count += 1
        if self.count * 10 > self.size * 7:
            self._table(self.size * 2)
        return 0

    cdef int _check(self, tuple state) except -1:
        if PyTuple_GET_SIZE(state) != self.slots:
            raise ValueError(f"a state of {PyTuple_GET_SIZE(state)} slots in a store of {self.slots}")
        return 0

    def __len__(self):
        return len(self.states)

    def add(self, tuple state, long long parent):
        """Store ``state`` (first reached from state number ``parent``); false if it was
        already there."""
        self._check(state)
        cdef PyObject** items = PySequence_Fast_ITEMS(state)
        cdef uint64_t h = self._hash(items)
        cdef Py_ssize_t pos = self._place(h, items)
        if self.numbers[pos] >= 0:
            return False
        self._store(pos, h, items, state, parent)
        return True

    def add_changes(self, tuple state, list changes, long long parent):
        """Store each successor of ``state`` that ``changes`` gives as the (slot, value) pairs
        its step writes, in order."""
        self._check(state)
        cdef PyObject** items = PySequence_Fast_ITEMS(state)
        cdef PyObject** buffer = self.buffer
        cdef uint64_t h0 = self._hash(items), h
        cdef Py_ssize_t pos, slot
        cdef size_t width = self.slots * sizeof(PyObject*)
        cdef tuple pair
        for writes in changes:
            memcpy(buffer, items, width)
            h = h0
            for pair in writes:
                slot = pair[0]
                if not 0 <= slot < self.slots:
                    raise IndexError("state index out of range")
                value = pair[1]
                h ^= _word(slot, buffer[slot]) ^ _word(slot, <PyObject*>value)
                buffer[slot] = <PyObject*>value
            pos = self._place(h, buffer)
            if self.numbers[pos] < 0:
                self._store(pos, h, buffer, None, parent)

    def find(self, tuple state):
        """The number of ``state`` (of canonical objects), or None."""
        self._check(state)
        cdef PyObject** items = PySequence_Fast_ITEMS(state)
        cdef Py_ssize_t pos = self._place(self._hash(items), items)
        return None if self.numbers[pos] < 0 else self.numbers[pos]
