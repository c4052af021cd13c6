"""The known-bug corpus (``ptmc regress``): every race of the protocol's public history, replayed.

A corpus file (``corpus/*.py``) defines ``ENTRIES``, a list of ``Entry``: a check of a property on
a model, with the variants, guards switched off and parameters that reproduce one historical
version of the code (or the code that fixed it), the one-line history, and what must come out:
the verdict, and for a violation the check it breaks and the shape of its shortest
counterexample (the threads that take part, and key steps that must occur in that order).
``ptmc regress`` runs every entry, prints one row each and exits 0 only when every entry matches;
a shape is compared, not a whole trace, so that a change of the model that keeps the race the
same race keeps the entry green.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from . import workflow
from .errors import PtmcError
from .model import load_module
from .result import HOLDS, VIOLATED, Result


@dataclass
class Entry:
    name: str  # unique in the corpus: what the row is called
    race: str  # protocol.md section 4: K1 .. K7 (or "fixed" code of one)
    history: str  # one line: the commit and what it fixed (or introduced)
    property: str  # the property file, relative to the corpus file
    expected: str  # holds | violated
    variants: tuple = ()
    without: tuple = ()  # guards switched off (ptmc check --without)
    settings: dict = field(default_factory=dict)  # --set values
    model: str | None = None  # a model other than the property's, relative to the corpus file
    check: str | None = None  # the check a violation must break
    threads: tuple | None = None  # the threads that take a step in the shortest counterexample
    shape: tuple = ()  # (thread, step) pairs that occur in the counterexample in this order
    steps: int | None = None  # the counterexample's length, when pinned
    source: str = ""  # the corpus file it came from (set when loaded)

    def matches(self, r: Result) -> str:
        """'' when the result is what the entry expects; otherwise what differs."""
        if r.verdict != self.expected:
            return f"expected {self.expected}, found {r.verdict}" + (f" ({r.reason})" if r.reason else "")
        if r.verdict != VIOLATED:
            return ""
        v = r.violation
        if v is None:
            return "violated by a z3 obligation, not by a counterexample"
        if self.check is not None and v.check != self.check:
            return f"expected {self.check!r} to be violated, {v.check!r} is"
        trace = [(st.thread, st.step) for st in r.trace]
        if self.steps is not None and len(trace) != self.steps:
            return f"expected a counterexample of {self.steps} steps, found {len(trace)}"
        if self.threads is not None:
            found = tuple(dict.fromkeys(t for t, _ in trace))
            if set(found) != set(self.threads):
                return f"expected threads {', '.join(sorted(self.threads))}, found {', '.join(sorted(found))}"
        at = 0
        for key in self.shape:
            while at < len(trace) and trace[at] != tuple(key):
                at += 1
            if at == len(trace):
                return f"key step {key[0]}.{key[1]} not found in order"
            at += 1
        return ""


@dataclass
class Row:
    entry: Entry
    result: Result | None
    problem: str  # '' when it matches
    seconds: float

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.problem


def load(corpus_dir) -> list[Entry]:
    """Every entry of every corpus file of ``corpus_dir``, in file order; names must be unique."""
    folder = Path(corpus_dir)
    if not folder.is_dir():
        raise PtmcError(f"corpus directory not found: {folder}")
    entries = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = load_module(path, "corpus")
        found = getattr(module, "ENTRIES", None)
        if not isinstance(found, list) or not all(isinstance(e, Entry) for e in found):
            raise PtmcError(f"{path}: a corpus file defines ENTRIES, a list of ptmc.regress.Entry")
        for e in found:
            if e.expected not in (HOLDS, VIOLATED):
                raise PtmcError(f"{path}: entry {e.name}: expected is holds or violated, got {e.expected!r}")
            e.source = str(path)
            entries.append(e)
    if not entries:
        raise PtmcError(f"corpus directory {folder} has no entries")
    names = [e.name for e in entries]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate:
        raise PtmcError(f"corpus entry name {duplicate!r} is used twice")
    return entries


def run_entry(entry: Entry, progress=None) -> Row:
    base = Path(entry.source).parent
    start = time.monotonic()
    result = workflow.check(base / entry.property, model_path=base / entry.model if entry.model else None,
                            variants=entry.variants, settings={k: str(v) for k, v in entry.settings.items()},
                            without=entry.without, progress=progress)
    return Row(entry, result, entry.matches(result), time.monotonic() - start)


def run(entries, progress=None, done=None) -> tuple[list[Row], str]:
    """Run the entries in order; the rows, and why the run stopped early ('' if it did not)."""
    rows = []
    for entry in entries:
        try:
            row = run_entry(entry, progress)
        except KeyboardInterrupt as e:
            return rows, f"interrupted at {entry.name} {e}".rstrip()
        rows.append(row)
        if done:
            done(row)
    return rows, ""


COLUMNS = ("entry", "race", "expected", "found", "states", "steps", "seconds", "")


def render(rows) -> str:
    """One row per entry: expected and found verdict, states, counterexample steps, seconds."""
    table = [COLUMNS]
    for row in rows:
        r = row.result
        steps = str(len(r.trace)) if r.verdict == VIOLATED and r.violation is not None else "-"
        table.append((row.entry.name, row.entry.race, row.entry.expected, r.verdict, f"{r.states:,}", steps,
                      f"{row.seconds:.2f}", "ok" if row.ok else f"MISMATCH: {row.problem}"))
    widths = [max(len(line[k]) for line in table) for k in range(len(COLUMNS) - 1)]
    right = {4, 5, 6}
    out = []
    for line in table:
        cells = [line[k].rjust(w) if k in right else line[k].ljust(w) for k, w in enumerate(widths)]
        out.append("  ".join(cells + [line[-1]]).rstrip())
    matched = sum(row.ok for row in rows)
    out.append(f"{matched} of {len(rows)} entries match")
    return "\n".join(out) + "\n"
