"""Symmetry reduction (``--symmetry``): interchangeable threads explored up to permutation.

A model declares the thread kinds whose threads are interchangeable (``Model.symmetric``): the
zaps, the faults, the walkers. Two such threads run the same code with the same configuration,
except for the data pages each owns (a fault's new folio). A permutation of them, applied to a
state, moves each thread's pc, locals and call stack to the other's place, and with them
everything that names a thread: its per-thread cells (``Layout.cell(..., owner=...)``: a zap's
batch rcu_head, a fault's folio counters), the thread ids inside values (``holds=``: lock holders,
RCU reader sets and callback masks, irqs_off, rwsem holders) and its data pages inside values
(``present(d5)`` becomes ``present(d10)``: value classes with a ``renamed`` method). Steps are
equivariant under it (a step of one thread from a state is the permuted step of the other from
the permuted state: same code, same configuration, every name renamed), so the reachable states
are closed under it when the initial state is (which is checked), and exploring one state of
each orbit finds every orbit, with the same distances: a violation is found at the same depth.

The representative of an orbit (``canonical``): within each kind, threads sorted by (pc, call
stack), a key no renaming changes; threads with equal keys are tried in every order, and the
least image (slot by slot, in the type-aware encoding of the fingerprint store) is taken. So
every state of an orbit has the same representative, and it is itself a reachable state.

What is stored is representatives; every transition the explorer looks at is a concrete one
(from a representative, before its successor is canonicalised), so per-transition checks and
witnesses see real transitions. A counterexample is replayed from the initial state (each step
the first successor whose representative is the stored one) and the whole path is then mapped
by the permutation that takes its last state to the stored representative: a concrete trace of
the same (shortest) length, ending in the very transition that was found.

Properties checked with the reduction must not tell interchangeable threads apart: a step
witness naming one of them (``zap1.x`` beside ``zap2``) is refused; functions of the state are
the author's word (as in TLC and SPIN), and tests compare every shipped property with and
without the reduction.
"""
from __future__ import annotations

from collections import Counter
from itertools import permutations, product
from operator import itemgetter

from ..errors import PtmcError
from ..state import Names, apply_writes, encode, identical, thread_matches

_CONFIG = ("name", "tid", "model")  # what two interchangeable threads may differ in besides pages


class _Kind:
    """The threads of one symmetric kind: where each one's slots are."""

    def __init__(self, system, kind: str, tids: list[int]):
        layout, threads = system.layout, system.threads
        self.kind, self.tids = kind, tids
        first = threads[tids[0]]
        for tid in tids[1:]:
            if type(threads[tid]) is not type(first):
                raise PtmcError(f"--symmetry: {first.name} and {threads[tid].name} are of different classes "
                                f"({type(first).__name__}, {type(threads[tid]).__name__}): kind {kind!r} is not symmetric")
        # Each thread's block: its pc, locals and call stack, in layout order.
        self.blocks = []
        for tid in tids:
            block = [layout.pc_slot[tid], *layout.local_slots[tid]]
            if layout.stack_slot[tid] is not None:
                block.append(layout.stack_slot[tid])
            self.blocks.append(block)
        stacks = [layout.stack_slot[t] for t in tids]
        keys = [layout.pc_slot[t] for t in tids] if stacks[0] is None else \
            [s for t in tids for s in (layout.pc_slot[t], layout.stack_slot[t])]
        getter = itemgetter(*keys)
        if stacks[0] is None:
            self.keys = getter if len(keys) > 1 else (lambda st: (getter(st),))
        else:
            self.keys = lambda st: (lambda v: list(zip(v[0::2], v[1::2])))(getter(st))
        self.identity = tuple(range(len(tids)))
        self.swapped = (1, 0)
        # Per-thread cells by role, and the data pages each thread's configuration names.
        self.cells = [_owned(layout, threads[tid].name) for tid in tids]
        self.pages = [{} for _ in tids]  # attribute -> (first page, pages)
        config = [{k: v for k, v in vars(threads[t]).items() if k not in _CONFIG and not k.startswith("_")}
                  for t in tids]
        extents = {o[1]: o[2] for o in layout.owner.values() if isinstance(o, tuple) and o[0] == "pages"}
        for m, tid in enumerate(tids):
            if set(config[m]) != set(config[0]):
                raise PtmcError(f"--symmetry: {first.name} and {threads[tid].name} are configured differently")
            if set(self.cells[m]) != set(self.cells[0]):
                raise PtmcError(f"--symmetry: {first.name} and {threads[tid].name} own different cells")
            for attr, value in config[m].items():
                other = config[0][attr]
                if value is other or (type(value) is type(other) and value == other):
                    continue
                if type(value) is not int or type(other) is not int or value <= 0 or other <= 0:
                    raise PtmcError(f"--symmetry: {first.name} and {threads[tid].name} differ in {attr} "
                                    f"({other!r}, {value!r}), which names no data page: kind {kind!r} is not symmetric")
                self.pages[0][attr] = (other, extents.get(other, 1))
                self.pages[m][attr] = (value, extents.get(value, 1))
        for m in range(len(tids)):
            for attr, (first_page, n) in self.pages[0].items():
                if self.pages[m].get(attr, (None, n))[1] != n:
                    raise PtmcError(f"--symmetry: the {attr} folios of {kind} threads differ in size")
                self.pages[m].setdefault(attr, (first_page, n))
        owned = [{p + k for first, n in pages.values() for p in [first] for k in range(n)} for pages in self.pages]
        if sum(map(len, owned)) != len(set().union(*owned)):
            raise PtmcError(f"--symmetry: the data pages of the {kind} threads overlap: they are not each "
                            "thread's own, and renaming them would not be a permutation")
        self.page_cells = [{(attr, role): slot for attr, (p, n) in pages.items()
                            for role, slot in _owned(layout, ("pages", p, n)).items()} for pages in self.pages]

    def moves(self, order: tuple) -> tuple[list, dict, dict]:
        """For the permutation taking thread ``order[i]`` (a position in the kind) to position
        ``i``: the slot moves (destination, source), the thread-id and the page renaming."""
        moves, tids, pages = [], {}, {}
        for new, old in enumerate(order):
            if new == old:
                continue
            moves += zip(self.blocks[new], self.blocks[old])
            moves += [(self.cells[new][role], slot) for role, slot in self.cells[old].items()]
            moves += [(self.page_cells[new][key], slot) for key, slot in self.page_cells[old].items()]
            tids[self.tids[old]] = self.tids[new]
            for attr, (first, n) in self.pages[old].items():
                to = self.pages[new][attr][0]
                pages.update((first + k, to + k) for k in range(n))
        return moves, tids, pages

    def orders(self, state) -> list[tuple]:
        """Every permutation (as ``order``) that sorts the threads by key, ties in every order."""
        keys = self.keys(state)
        if len(keys) == 2:  # the common case, without sorting
            a, b = keys
            return [self.identity] if a < b else [self.swapped] if b < a else [self.identity, self.swapped]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        runs, start = [], 0
        for k in range(1, len(order) + 1):
            if k == len(order) or keys[order[k]] != keys[order[start]]:
                runs.append(order[start:k])
                start = k
        if len(runs) == len(order):
            return [tuple(order)]
        return [tuple(p for run in choice for p in run) for choice in product(*(permutations(r) for r in runs))]


def _owned(layout, owner) -> dict:
    """role -> slot of the cells ``owner`` owns (a cell is named ``<owner's name>.<role>``)."""
    return {layout.names[slot].split(".", 1)[1]: slot for slot, o in layout.owner.items() if o == owner}


class _Image:
    """One permutation of every kind at once: how to build the image of a state."""

    def __init__(self, symmetry, orders: tuple):
        size = len(symmetry.system.initial)
        src, tids, pages = list(range(size)), {}, {}
        moved = set()
        for kind, order in zip(symmetry.kinds, orders):
            moves, t, p = kind.moves(order)
            for dst, s in moves:
                src[dst] = s
                moved.add(dst)
            tids.update(t)
            pages.update(p)
        self.get = itemgetter(*src)
        self.names = Names(tids, pages)
        holds = symmetry.system.layout.holds
        self.pages = {} if pages else None  # id(value) -> (value, renamed)
        # Only the moved slots and those holding thread ids change, and every slot when data
        # pages are renamed too: per slot, what each value becomes there, renamed and made the
        # destination slot's canonical object (memoised by identity when the states' values are
        # canonical objects, as the compiled system's are).
        touched = sorted(moved | set(holds)) if not pages else range(size)
        self.plan = [(slot, holds.get(slot), {}) for slot in touched]

    def __call__(self, state: tuple, canonical) -> tuple:
        values = list(self.get(state))
        names, pages = self.names, self.pages
        if canonical is None:  # (values are not shared objects: no memo)
            for slot, fn, _ in self.plan:
                out = values[slot] if fn is None else fn(values[slot], names)
                values[slot] = out if pages is None else self._page(out)
            return tuple(values)
        for slot, fn, memo in self.plan:
            value = values[slot]
            hit = memo.get(id(value))
            if hit is None or hit[0] is not value:
                out = value if fn is None else fn(value, names)
                if pages is not None:
                    out = self._page(out)
                hit = memo[id(value)] = (value, canonical(slot, out))
            values[slot] = hit[1]
        return tuple(values)

    def _page(self, value):
        """``value`` with the data pages it names renamed (values with ``renamed``, inside
        plain tuples too)."""
        hit = self.pages.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        renamed = getattr(value.__class__, "renamed", None)
        if renamed is not None:
            out = renamed(value, self.names)
        elif value.__class__ is tuple:
            out = tuple(map(self._page, value))
            out = value if all(map(identical, out, value)) else out
        else:
            out = value
        self.pages[id(value)] = (value, out)
        return out


class Symmetry:
    """The symmetric kinds of a system's model and the representatives of its states."""

    name = "symmetry"

    def __init__(self, system, kinds=None):
        self.system = system
        layout = system.layout
        kinds = system.model.symmetric if kinds is None else kinds
        self.kinds = [_Kind(system, k, layout.of_kind(k)) for k in kinds if len(layout.of_kind(k)) > 1]
        self.group = {tid: kind.tids for kind in self.kinds for tid in kind.tids}
        self.identity = tuple(k.identity for k in self.kinds)
        self._images: dict[tuple, _Image] = {}
        self._codes: dict[int, tuple] = {}
        self.canonical_value = getattr(system, "canonical", None)
        for kind, orders in self.generators():  # the initial state must be one of its own images
            if not identical(self.image(system.initial, orders), system.initial):
                names = ", ".join(system.threads[t].name for t in kind.tids)
                raise PtmcError(f"--symmetry: the initial state tells {names} apart: kind {kind.kind!r} "
                                "is not symmetric")

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def image(self, state: tuple, orders: tuple) -> tuple:
        image = self._images.get(orders)
        if image is None:
            image = self._images[orders] = _Image(self, orders)
        return image(state, self.canonical_value)

    def canonical_with(self, state: tuple) -> tuple[tuple, tuple | None]:
        """The representative of ``state``'s orbit, and the permutation (``orders``) that
        takes ``state`` there (None: it is its own)."""
        if len(self.kinds) == 1:  # (the common case, spelt out)
            choices = [self.kinds[0].orders(state)]
            if len(choices[0]) == 1 and choices[0][0] == self.kinds[0].identity:
                return state, None
        else:
            choices = [kind.orders(state) for kind in self.kinds]
            if all(len(c) == 1 and c[0] == ident for c, ident in zip(choices, self.identity)):
                return state, None
        best = best_orders = None
        for orders in product(*choices):
            image = state if orders == self.identity else self.image(state, orders)
            if best is None or self._less(image, best):
                best, best_orders = image, orders
        return best, (None if best_orders == self.identity else best_orders)

    def canonical(self, state: tuple) -> tuple:
        return self.canonical_with(state)[0]

    def generators(self) -> list[tuple]:
        """(kind, orders) for permutations that generate the whole group: per kind, a swap of
        its first two threads and a rotation of all of them."""
        out = []
        for k, kind in enumerate(self.kinds):
            n = len(kind.tids)
            for gen in dict.fromkeys([(1, 0, *range(2, n)), (*range(1, n), 0)]):
                out.append((kind, tuple(gen if j == k else ident for j, ident in enumerate(self.identity))))
        return out

    def equivariance_failure(self, state: tuple) -> str | None:
        """What makes the successors of ``state`` other than the images of those of its images
        under every generator (None: the steps are equivariant here). The reduction is sound
        for a model when this holds in every reachable state; tests ask it of every state of
        the models they compare (the module docstring's premise, checked rather than assumed)."""
        def successors(st, orders=None, tids=None):  # (Python equality: fast, and fine for a test)
            return Counter((tr.tid if tids is None else tids.get(tr.tid, tr.tid),
                            frozenset(kind for kind, _ in tr.events),
                            nxt if orders is None else self.image(nxt, orders))
                           for tr, nxt in self.system.successors(st))
        for _, orders in self.generators():
            self.image(state, orders)  # (builds the image's renaming)
            tids = self._images[orders].names.tids
            if successors(state, orders, tids) != successors(self.image(state, orders)):
                return (f"--symmetry: the successors of the image under {orders} of state "
                        f"{self.system.layout.describe(state)} are not the images of its successors")
        return None

    def _less(self, a: tuple, b: tuple) -> bool:
        for x, y in zip(a, b):
            if x is not y and not identical(x, y):
                return self._code(x) < self._code(y)
        return False

    def _code(self, value) -> bytes:
        hit = self._codes.get(id(value))
        if hit is None or hit[0] is not value:
            hit = self._codes[id(value)] = (value, encode(value))
        return hit[1]

    # --- what the explorer asks of a reduction

    def refuse(self, checks) -> None:
        """A step witness that names one of several interchangeable threads tells them apart."""
        names = {t: self.system.threads[t].name for t in self.group}
        for check in checks:
            if check.step is None:
                continue
            for kind in self.kinds:
                hits = [thread_matches(check.step[0], names[t]) for t in kind.tids]
                if any(hits) and not all(hits):
                    raise PtmcError(f"--symmetry: witness {check.name!r} names one of the interchangeable "
                                    f"{kind.kind} threads; name the kind ({kind.kind}) or run without --symmetry")

    def wrap(self, store):
        return SymmetricStore(store, self)

    def taken(self, taken: set) -> set:
        """A step one thread of a kind takes, each of them takes in some image."""
        return {(other, pc) for tid, pc in taken for other in self.group.get(tid, (tid,))}


class SymmetricStore:
    """A visited store of representatives: what is added is canonicalised first. Everything
    else is the store's, but for the path to a state, which is replayed (module docstring)."""

    def __init__(self, store, symmetry: Symmetry):
        self.inner, self.symmetry = store, symmetry
        canonical, add, add_all = symmetry.canonical, store.add, store.add_all
        self.add = lambda state, parent: add(canonical(state), parent)
        self.add_all = lambda batch, parent: add_all(list(map(canonical, batch)), parent)
        self.add_changes = lambda state, changes, parent: self.add_all(apply_writes(state, changes), parent)

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def path_states(self, numbers: list[int], system) -> list[tuple]:
        canonical, stored = self.symmetry.canonical, self.inner.is_stored
        state = system.initial
        out = [state]
        for number in numbers[1:]:
            state = next((nxt for _, nxt in system.successors(state) if stored(number, canonical(nxt))), None)
            if state is None:
                raise AssertionError("replay lost the path: no successor is in the stored orbit")
            out.append(state)
        _, orders = self.symmetry.canonical_with(out[-1])
        return out if orders is None else [self.symmetry.image(s, orders) for s in out]
