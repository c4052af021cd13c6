"""The configuration matrix as a markdown table (a row per configuration and case, a column per
property, each cell the verdict with its state count) and as JSON."""
from __future__ import annotations

import json

from ..matrix import Matrix, symbols


def _cell(result) -> str:
    if result is None:
        return "not run"
    if result.verdict == "holds":
        return f"holds ({result.states:,})"
    return f"**{result.verdict}** ({result.states:,})"


def _case(variant: str, guards: tuple) -> str:
    return variant or (f"without {', '.join(guards)}" if guards else "mainline")


def _value(v) -> str:
    return ("y" if v else "n") if isinstance(v, bool) else str(v)


def render(matrix: Matrix) -> str:
    names = symbols()
    head = [*names, "case", *matrix.properties]
    lines = [f"Model {matrix.model} in every kernel configuration Kconfig allows "
             f"({len(matrix.configurations)}).", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c, config in enumerate(matrix.configurations):
        for k, case in enumerate(matrix.cases):
            cells = [_cell(matrix.results.get((c, k, p))) for p in range(len(matrix.properties))]
            lines.append("| " + " | ".join([*(_value(config[n]) for n in names), _case(*case), *cells]) + " |")
    if matrix.interrupted:
        lines += ["", f"inconclusive: {matrix.interrupted}"]
    return "\n".join(lines) + "\n"


def render_json(matrix: Matrix) -> str:
    rows = []
    for c, config in enumerate(matrix.configurations):
        for k, (variant, guards) in enumerate(matrix.cases):
            cells = {}
            for p, prop in enumerate(matrix.properties):
                r = matrix.results.get((c, k, p))
                cells[prop] = None if r is None else {"verdict": r.verdict, "states": r.states,
                                                      "violation": r.violation.check if r.violation else None}
            rows.append({"configuration": config, "variant": variant or None, "without": list(guards),
                         "results": cells})
    out = {"model": matrix.model, "properties": matrix.properties, "rows": rows}
    if matrix.interrupted:
        out["interrupted"] = matrix.interrupted
    return json.dumps(out, indent=2) + "\n"
