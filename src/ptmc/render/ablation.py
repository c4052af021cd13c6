"""The ablation table (``ptmc ablate``): one row per guard switched off, one column per property,
each cell the verdict in every configuration tried; as markdown and as JSON."""
from __future__ import annotations

import json

from ..ablation import Ablation, cell, config_label, finding


def _verdict(result) -> str:
    if result is None:
        return "not run"
    if result.verdict == "violated":
        if result.violation and result.violation.kind == "reachable":
            return f"witness lost: {result.violation.check}"
        return f"**violated** ({len(result.trace)})"
    return result.verdict


def render(ablation: Ablation) -> str:
    configs = [config_label(c) for c in ablation.configurations]
    lines = [f"Guards of model {ablation.model}, each switched off in turn; cells: "
             + (" / ".join(configs) if len(configs) > 1 else configs[0])
             + "; violated (shortest counterexample length).", ""]
    head = ["guard", "reason", *ablation.properties, "states", "finding"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r, row in enumerate(ablation.rows):
        name = " + ".join(row) if row else "(all guards on)"
        reason = "; ".join(ablation.guards[g].reason for g in row) if row else "the code as it is"
        cells = [" / ".join(_verdict(cell(ablation, row, p, c)[1]) for c in range(len(configs)))
                 for p in range(len(ablation.properties))]
        states = " / ".join(f"{max((res.states for p in range(len(ablation.properties)) if (res := cell(ablation, row, p, c)[1])), default=0):,}"
                            for c in range(len(configs)))
        lines.append("| " + " | ".join([f"`{name}`", reason, *cells, states, finding(ablation, row)]) + " |")
    if ablation.interrupted:
        lines += ["", f"inconclusive: {ablation.interrupted}"]
    return "\n".join(lines) + "\n"


def to_dict(ablation: Ablation) -> dict:
    rows = []
    for row in ablation.rows:
        runs = []
        for p, prop in enumerate(ablation.properties):
            for c, config in enumerate(ablation.configurations):
                verdict, res = cell(ablation, row, p, c)
                runs.append({"property": prop, "configuration": config, "verdict": verdict,
                             "states": res.states if res else None,
                             "counterexample_length": len(res.trace) if res and res.trace else None})
        rows.append({"without": list(row), "runs": runs,
                     "reason": [ablation.guards[g].reason for g in row],
                     "finding": finding(ablation, row)})
    return {"model": ablation.model, "properties": ablation.properties,
            "configurations": ablation.configurations, "rows": rows,
            **({"interrupted": ablation.interrupted} if ablation.interrupted else {})}


def render_json(ablation: Ablation) -> str:
    return json.dumps(to_dict(ablation), indent=2) + "\n"
