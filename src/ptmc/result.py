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
    state: dict[str, str] = field(default_factory=dict)  # every variable after the step, as displayed
    source: tuple[str, int] | None = None  # where the step is defined: (file, line of its @step)
    context: list[str] = field(default_factory=list)  # kernel context after the step, if computed


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
    without: list[str] = field(default_factory=list)  # guards switched off (--without)
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
    property_file: str = ""  # the files checked, as given (the CI formats locate results there)
    model_file: str = ""
    property_doc: str = ""  # the property file's docstring: what it means, for a reviewer
    descriptions: dict[str, str] = field(default_factory=dict)  # check name -> what it checks
    store: str = "exact"  # the visited store: exact, or fingerprint (lossy)
    collision_probability: float | None = None  # fingerprint store: that a collision hid a state
    reductions: list[str] = field(default_factory=list)  # e.g. ["symmetry"]: states are orbit representatives
    workers: int = 0  # a distributed run's workers (0: one process)
    exchanged: int = 0  # bytes of state records sent between workers
    startup: float = 0.0  # seconds the workers took to start (not in ``seconds``)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def outcomes(self) -> list[Outcome]:
        """One outcome per check, witness and z3 obligation: what the CI formats and the pytest
        plugin report as one test each. A search stops at the first violation, so the checks it
        did not get to are ``undecided``, never passed."""
        v = self.violation
        # A witness is missed only by a complete search: then every check was decided.
        stopped = (f"inconclusive: {self.reason}" if self.reason else
                   f"undecided: the search stopped at the first violation ({v.check})"
                   if v and v.kind != "reachable" else "")
        out = []
        for name in self.checks:
            if v and v.check == name:
                out.append(Outcome(name, "check", FAILED, v.message))
            elif stopped:
                out.append(Outcome(name, "check", INCONCLUSIVE if self.reason else UNDECIDED, stopped))
            else:
                out.append(Outcome(name, "check", PASSED, f"holds on {self.states} states"))
        for w in self.witnesses:
            if w.found:
                out.append(Outcome(w.name, "witness", PASSED, f"witnessed in {w.length} steps"))
            elif w.found is False:
                out.append(Outcome(w.name, "witness", FAILED, f"witness not found: {w.description}"))
            else:
                out.append(Outcome(w.name, "witness", INCONCLUSIVE if self.reason else UNDECIDED,
                                   stopped or "not witnessed"))
        for o in self.obligations:
            status = {"proved": PASSED, "failed": FAILED}.get(o.status, INCONCLUSIVE)
            message = {"proved": "proved",
                       "failed": "; ".join(filter(None, ["failed", o.detail, o.counterexample_text()]))
                       }.get(o.status, f"inconclusive: {o.detail}")
            out.append(Outcome(o.name, "obligation", status, message))
        return out


PASSED, FAILED, UNDECIDED = "passed", "failed", "undecided"


@dataclass
class Outcome:
    name: str  # the check's, witness's or obligation's name
    kind: str  # check | witness | obligation
    status: str  # passed | failed | undecided | inconclusive
    message: str
