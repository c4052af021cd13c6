"""A rule case: a small model, the checks, and the one outcome the rule it pins down implies."""
from __future__ import annotations

from dataclasses import dataclass

from ptmc import Model
from ptmc.errors import PtmcError
from ptmc.explore import System, describe, explore
from ptmc.explore.compiled import CompiledSystem

ENGINES = {"reference": System, "compiled": CompiledSystem}


@dataclass(frozen=True)
class Case:
    name: str
    rule: str  # the rule the verdict depends on: "file: function: what it must do"
    build: object  # () -> (model, checks), fresh threads on every call
    verdict: str  # holds | violated | inconclusive | error (the model is refused: a PtmcError)
    check: str | None  # the violated check's name; for an error, a part of its message
    steps: int  # counterexample length (0 when it holds)
    states: int
    depth: int = -1  # the depth reported: BFS levels explored, or the counterexample's length
    max_states: int | None = None
    reset_dead_locals: bool = True

    def run(self, guard: bool = False, engine: str = "reference"):
        """Explore; ``guard`` bounds the states (a mutant that blows the state space up ends
        inconclusive instead of running on). ``engine``: the reference interpreter
        (explore/system.py) or the compiled system every command runs (explore/compiled.py)."""
        model, checks = self.build()
        limit = self.max_states if self.max_states is not None else (2 * self.states + 100 if guard else None)
        kind = ENGINES[engine]
        # System's own default when the reduction is on: the default is a rule too
        system = kind(model) if self.reset_dead_locals else kind(model, reset_dead_locals=False)
        ex = explore(system, checks, max_states=limit, observers=model.observers(system))
        return describe(system, ex, model, checks, self.name)

    def outcome(self, guard: bool = False, engine: str = "reference") -> tuple:
        """(verdict, violated check, counterexample steps, states, depth). A model or step that
        raises a PtmcError (a refused configuration, a model error a primitive raises) is the
        outcome ("error", the expected part of the message if it is there, else the message)."""
        try:
            r = self.run(guard, engine)
        except PtmcError as e:
            message = str(e)
            return ("error", self.check if self.check and self.check in message else message, 0, 0, 0)
        return (r.verdict, r.violation.check if r.violation else None, len(r.trace), r.states, r.depth)

    @property
    def expected(self) -> tuple:
        if self.verdict == "error":
            return ("error", self.check, 0, 0, 0)
        return (self.verdict, self.check, self.steps, self.states, self.depth)


def error(name: str, rule: str, build, message: str) -> Case:
    """A case whose model must be refused with a PtmcError whose message contains ``message``."""
    return Case(name, rule, build, "error", message, 0, 0, 0)


def model(init, threads, name: str = "rule", **params) -> Model:
    """A model from ``init(mem)`` and ``threads()`` (a factory: each exploration gets fresh ones);
    ``params``: the kernel configuration (ptmc.kernel.config), e.g. ``split_ptlocks=False``."""
    class Rule(Model):
        def init(self, mem):
            init(mem)

        def threads(self):
            return threads()
    Rule.name = name
    return Rule(params)


def cells(**values):
    """An init that declares plain shared variables."""
    def init(mem):
        for k, v in values.items():
            setattr(mem, k, v)
    return init
