"""Which guard protects what (``ptmc ablate``): every guard of a model switched off in turn (or
in pairs), every property checked, in every configuration asked for. Each run is a whole,
independent check (nothing of the run with the guard on is reused), done in parallel by
``batch``; the table comes out in a fixed order whatever finishes first.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from . import workflow
from .batch import Run, properties_of_one_model, run_all
from .errors import PtmcError


@dataclass
class Ablation:
    model: str
    properties: list[str]
    configurations: list[dict]  # the --set values of each configuration tried
    guards: dict  # name -> Guard, in declaration order
    rows: list[tuple]  # () for all guards on, then (guard,) or (guard, guard)
    results: dict = field(default_factory=dict)  # (row, property index, configuration index) -> Result
    interrupted: str = ""  # why the table is not complete


def plan(property_files, *, model_path=None, settings=None, sweep=(), pairs=False) -> tuple[Ablation, list]:
    """The ablation of the guards of the properties' model, and the runs it takes (each with
    its place in the table)."""
    props, cls = properties_of_one_model(property_files, model_path, "ablate", "ablation")
    configurations = configurations_of(cls, dict(settings or {}), sweep)
    guards = cls({**props[0].params_for(cls), **configurations[0]}).guards()
    if not guards:
        raise PtmcError(f"model {cls.name} declares no guards (Guard): nothing to ablate")
    rows = [()] + [(g,) for g in guards]
    if pairs:
        rows += list(itertools.combinations(guards, 2))
    ablation = Ablation(cls.name, [p.name for p in props], configurations, guards, rows)
    runs = [((r, p, c), Run(str(prop.path), model_path, tuple(config.items()), without=row))
            for r, row in enumerate(rows) for p, prop in enumerate(props)
            for c, config in enumerate(configurations)]
    return ablation, runs


def configurations_of(cls, base: dict, sweep) -> list[dict]:
    """``base`` with every combination of the values of the swept parameters (bools: both;
    parameters with choices: each)."""
    params = cls.params()
    axes = []
    for name in sweep:
        param = params.get(name)
        if param is None:
            raise PtmcError(f"unknown parameter {name!r} to sweep for model {cls.name} "
                            f"(known: {', '.join(params)})")
        if isinstance(param.default, bool):
            axes.append([(name, "true"), (name, "false")])
        elif getattr(param, "choices", None):
            axes.append([(name, c) for c in param.choices])
        else:
            raise PtmcError(f"--sweep {name}: only a boolean parameter or one with choices can be swept")
    return [{**base, **dict(combo)} for combo in itertools.product(*axes)] or [base]


def run(ablation: Ablation, runs: list, *, jobs: int | None = None, progress=None, out_dir=None) -> Ablation:
    """Do the runs; record each result in its cell; write each violation's counterexample to
    ``out_dir`` as any check does."""
    places = [place for place, _ in runs]

    def write(r, result):
        if out_dir is not None and result.violation and result.trace:
            workflow.write_counterexample(result, out_dir, dict(r.settings))
    results, ablation.interrupted = run_all([r for _, r in runs], jobs=jobs, progress=progress,
                                            on_result=write)
    ablation.results = {place: res for place, res in zip(places, results) if res is not None}
    return ablation


def finding(ablation: Ablation, row: tuple) -> str:
    """What removing the row's guards shows: which properties need them, or that nothing
    explored here needs them (and what might)."""
    def violated(r, p):
        return any(cell(ablation, r, p, c)[0] == "violated" for c in range(len(ablation.configurations)))
    already = [p for p in range(len(ablation.properties)) if violated((), p)]
    if not row:
        return ("the code as it is violates " + ", ".join(ablation.properties[p] for p in already)
                + ": removing a guard says nothing about that") if already else ""
    broken = [prop for p, prop in enumerate(ablation.properties) if p not in already and violated(row, p)]
    if broken:
        return "needed for " + ", ".join(broken)
    if any(cell(ablation, row, p, c)[0] != "holds" for p in range(len(ablation.properties))
           for c in range(len(ablation.configurations))):
        return "undecided (a run did not finish)"
    tried = "; ".join(config_label(c) for c in ablation.configurations)
    against = [ablation.guards[g].against for g in row if ablation.guards[g].against]
    text = f"not needed here (tried: {tried})"
    return text + (f"; needed against: {', '.join(against)}" if against else
                   "; either an actor that needs it is missing, or the check is redundant")


def cell(ablation, row, p, c) -> tuple:
    result = ablation.results.get((ablation.rows.index(row), p, c))
    return (result.verdict if result else "not run"), result


def config_label(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items()) or "defaults"
