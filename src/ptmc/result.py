"""The result of a check: one data object that every renderer reads."""
from __future__ import annotations

from dataclasses import dataclass, field

HOLDS, VIOLATED, INCONCLUSIVE = "holds", "violated", "inconclusive"
EXIT_CODES = {HOLDS: 0, VIOLATED: 1, INCONCLUSIVE: 3}


@dataclass
class TraceStep:
    thread: str
    step: str
    kernel_function: str
    changes: dict[str, tuple[str, str]]  # variable -> (before, after), as displayed
    choices: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    reads: dict[str, str] = field(default_factory=dict)  # shared variables read, not changed


@dataclass
class Violation:
    check: str  # the check's name, e.g. "never use-after-free"
    kind: str  # never | invariant | at_end | deadlock_free
    message: str


@dataclass
class Witness:
    name: str
    description: str
    found: bool | None  # None: the run stopped (a violation, a limit) before finding it
    length: int | None = None  # steps of the shortest trace reaching it
    trace: list[TraceStep] | None = None  # when asked for (ptmc check --witness NAME)


@dataclass
class Result:
    property: str
    model: str
    variants: list[str]
    params: dict
    threads: list[str]
    verdict: str
    states: int
    transitions: int
    depth: int
    seconds: float
    checks: list[str] = field(default_factory=list)
    violation: Violation | None = None
    initial: dict[str, str] = field(default_factory=dict)  # variable -> value, as displayed
    trace: list[TraceStep] = field(default_factory=list)
    reason: str = ""  # why inconclusive
    deadlocks: int = 0  # deadlocked states seen (reported even when not checked)
    obligations: list = field(default_factory=list)  # smt.ObligationResult
    explored: bool = True  # False when only z3 obligations ran (ptmc prove)
    explored_verdict: str = ""  # exploration's own verdict, when obligations also ran
    unreached: dict[str, list[str]] = field(default_factory=dict)  # thread -> steps never taken
    witnesses: list[Witness] = field(default_factory=list)
    checked_events: list[str] = field(default_factory=list)  # events some never() check watches
    crashed: int = 0  # transitions into undefined behaviour no check watches: their paths end
    store: str = "exact"  # the visited store: exact, or fingerprint (lossy)
    collision_probability: float | None = None  # fingerprint store: that a collision hid a state

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]
