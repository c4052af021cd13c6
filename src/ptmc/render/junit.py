"""The result as a JUnit XML report: one test case per check, witness and z3 obligation.

A violated check is a failure carrying the text diagram; a witness not found and a failed
obligation are failures too. A check the search did not get to (it stops at the first
violation) is skipped, saying so, never passed; a run that could not finish (a limit, an
interrupt, a solver time-out) makes its undecided cases errors, so CI cannot read it as green.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ..result import FAILED, INCONCLUSIVE, PASSED, UNDECIDED, Result
from . import text as render_text


def render(result: Result) -> str:
    outcomes = result.outcomes()
    variants = f" variants={','.join(result.variants)}" if result.variants else ""
    suite_name = f"{result.property} on {result.model or 'z3'}{variants}"
    classname = ".".join(filter(None, [result.property, result.model, *result.variants]))
    counts = {s: sum(o.status == s for o in outcomes) for s in (FAILED, INCONCLUSIVE, UNDECIDED)}
    attrs = {"tests": str(len(outcomes)), "failures": str(counts[FAILED]),
             "errors": str(counts[INCONCLUSIVE]), "skipped": str(counts[UNDECIDED]),
             "time": f"{result.seconds + sum(o.seconds for o in result.obligations):.3f}"}
    root = ET.Element("testsuites", {"name": "ptmc", **attrs})
    suite = ET.SubElement(root, "testsuite", {"name": suite_name, **attrs})
    props = ET.SubElement(suite, "properties")
    for name, value in [("verdict", result.verdict), ("model", result.model), ("variants", ",".join(result.variants)),
                        ("states", result.states), ("transitions", result.transitions), ("depth", result.depth),
                        *((f"param.{k}", json.dumps(v)) for k, v in result.params.items())]:
        ET.SubElement(props, "property", {"name": name, "value": str(value)})
    diagram = render_text.render(result)
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": _case_name(o),
                                                 "file": result.property_file, "time": _time(result, o)})
        if o.status == PASSED:
            continue
        if o.status == FAILED:
            ET.SubElement(case, "failure", {"message": o.message, "type": o.kind}).text = diagram
        elif o.status == UNDECIDED:
            ET.SubElement(case, "skipped", {"message": o.message})
        else:
            ET.SubElement(case, "error", {"message": o.message, "type": "inconclusive"}).text = diagram
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _case_name(outcome) -> str:
    return outcome.name if outcome.kind == "check" else f"{outcome.kind} {outcome.name}"


def _time(result: Result, outcome) -> str:
    if outcome.kind == "obligation":
        return f"{next((o.seconds for o in result.obligations if o.name == outcome.name), 0.0):.3f}"
    return f"{result.seconds:.3f}"  # one exploration decides every check at once
