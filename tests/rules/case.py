"""A rule case: a small model, the checks, and the one outcome the rule it pins down implies."""
from __future__ import annotations

from dataclasses import dataclass

from ptmc import Model
from ptmc.explore import System, describe, explore


@dataclass(frozen=True)
class Case:
    name: str
    rule: str  # the rule the verdict depends on: "file: function: what it must do"
    build: object  # () -> (model, checks), fresh threads on every call
    verdict: str  # holds | violated | inconclusive
    check: str | None  # the violated check's name
    steps: int  # counterexample length (0 when it holds)
    states: int
    depth: int = -1  # the depth reported: BFS levels explored, or the counterexample's length
    max_states: int | None = None
    reset_dead_locals: bool = True

    def run(self, guard: bool = False):
        """Explore; ``guard`` bounds the states (a mutant that blows the state space up ends
        inconclusive instead of running on)."""
        model, checks = self.build()
        limit = self.max_states if self.max_states is not None else (2 * self.states + 100 if guard else None)
        # System's own default when the reduction is on: the default is a rule too
        system = System(model) if self.reset_dead_locals else System(model, reset_dead_locals=False)
        ex = explore(system, checks, max_states=limit, observers=model.observers(system))
        return describe(system, ex, model, checks, self.name)


def model(init, threads, name: str = "rule") -> Model:
    """A model from ``init(mem)`` and ``threads()`` (a factory: each exploration gets fresh ones)."""
    class Rule(Model):
        def init(self, mem):
            init(mem)

        def threads(self):
            return threads()
    Rule.name = name
    return Rule()


def cells(**values):
    """An init that declares plain shared variables."""
    def init(mem):
        for k, v in values.items():
            setattr(mem, k, v)
    return init
