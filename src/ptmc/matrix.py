"""The configuration matrix (``ptmc matrix``): properties checked in every combination of the
kernel configuration that Kconfig allows (kernel/config.py: split PTE and PMD ptlocks, RCU
table free, IPI or broadcast TLB flush, PREEMPT_RCU, PT_RECLAIM), for the code as it is and for
each variant and guard ablation named. Runs go through ``batch``, in parallel; rows come out
in a fixed order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import workflow
from .batch import Run, properties_of_one_model, run_all
from .errors import PtmcError
from .kernel.config import ALIAS, PARAMS, allowed
from .properties import load_property


@dataclass
class Matrix:
    model: str
    properties: list[str]
    configurations: list[dict]  # each allowed combination, as parameter values
    cases: list[tuple]  # ("", ()) for the code as it is, (variant, ()) or ("", (guard,))
    results: dict = field(default_factory=dict)  # (configuration, case, property) index -> Result
    interrupted: str = ""


def plan(property_files, *, model_path=None, settings=None, variants=(), without=()) -> tuple[Matrix, list]:
    props, cls = properties_of_one_model(property_files, model_path, "matrix", "matrix")
    base = dict(settings or {})
    fixed = [n for n in base if n in PARAMS]
    if fixed:
        raise PtmcError(f"--set {fixed[0]}: the matrix varies the kernel configuration itself")
    cases = [("", ())] + [(v, ()) for v in variants] + [("", (g,)) for g in without]
    configurations = allowed()
    matrix = Matrix(cls.name, [p.name for p in props], configurations, cases)
    runs = [((c, k, p), Run(str(prop.path), model_path,
                            tuple({**base, **{n: _text(v) for n, v in config.items()}}.items()),
                            (variant,) if variant else (), guards))
            for c, config in enumerate(configurations) for k, (variant, guards) in enumerate(cases)
            for p, prop in enumerate(props)]
    return matrix, runs


def _text(value) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def run(matrix: Matrix, runs: list, *, jobs: int | None = None, progress=None) -> Matrix:
    results, matrix.interrupted = run_all([r for _, r in runs], jobs=jobs, progress=progress)
    matrix.results = {place: res for (place, _), res in zip(runs, results) if res is not None}
    return matrix


def verdict_table(root, *, jobs: int | None = None, progress=None) -> tuple[list, str]:
    """README's verdict table, one view of the matrix: every property file under ``root`` on
    each model it applies to, with no variant and with each variant, with split and with
    shared ptlocks where the model has them. Stops at a run that cannot finish. Obligation-only
    files are skipped."""
    runs = []
    for prop_file in sorted((root / "properties").glob("*.py")):
        prop = load_property(prop_file)
        if not prop.checks:
            continue
        for model_path in [prop.model_path, *prop.also_models]:
            cls = workflow.load_model_class(model_path)
            configs = [(), ((ALIAS, "false"),)] if ALIAS in cls.params() else [()]
            for variants in [(), *((v,) for v in cls.variants())]:
                runs += [Run(str(prop_file), model_path, config, variants) for config in configs]
    results, stopped = run_all(runs, jobs=jobs, progress=progress, stop_on_inconclusive=True)
    return [r for r in results if r is not None], stopped


def symbols() -> list[str]:
    """The configuration symbols the matrix varies, in their declared order."""
    return [n for n in PARAMS if n != ALIAS]
