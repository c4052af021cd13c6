"""Many results as one markdown table: a row per model configuration, a column per property."""
from __future__ import annotations

from ..result import Result


def _config(r: Result) -> tuple:
    split = r.params.get("split_ptlocks")
    return (r.model, ", ".join(r.variants) or "mainline" if r.model == "reclaim" else ", ".join(r.variants) or "-",
            "-" if split is None else ("split" if split else "ptl == pml"))


def render(results: list[Result]) -> str:
    props = list(dict.fromkeys(r.property for r in results))
    rows: dict[tuple, dict[str, Result]] = {}
    for r in results:
        rows.setdefault(_config(r), {})[r.property] = r
    out = ["| model | variant | ptlocks | " + " | ".join(props) + " |",
           "|---|---|---|" + "---|" * len(props)]
    for (model, variant, ptl), cells in rows.items():
        shown = []
        for p in props:
            r = cells.get(p)
            if r is None:
                shown.append("")
            elif r.verdict == "holds":
                shown.append(f"holds ({r.states:,})")
            else:
                shown.append(f"**{r.verdict}** ({r.states:,})")
        out.append(f"| {model} | {variant} | {ptl} | " + " | ".join(shown) + " |")
    return "\n".join(out) + "\n"
