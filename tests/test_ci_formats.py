"""The CI formats: SARIF 2.1.0 (validated against the official schema, vendored in
tests/schemas/), JUnit XML, and the --events stream (validated against its own schema)."""
from __future__ import annotations

import json
import linecache
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import MODEL, PROPERTY, ROOT
from ptmc.cli import main
from ptmc.render import events as render_events
from ptmc.render import sarif as render_sarif

SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text())
NO_UAF = ROOT / "properties" / "no_uaf.py"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def validate_sarif(log: dict) -> None:
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)


@pytest.fixture(scope="module")
def semi_rcu(tmp_path_factory):
    """``ptmc check --sarif --junit`` on the K1 counterexample, run from the repository root."""
    out = tmp_path_factory.mktemp("ci")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        r = run("check", "properties/no_uaf.py", "--variant", "semi_rcu_fallback", "--out", out,
                "--sarif", out / "no_uaf.sarif", "--junit", out / "junit" / "no_uaf.xml", "--json")
    assert r.exit_code == 1, r.output
    return json.loads(r.stdout), out


def test_sarif_is_valid_and_locates_the_violating_step(semi_rcu):
    data, out = semi_rcu
    log = json.loads((out / "no_uaf.sarif").read_text())
    validate_sarif(log)
    assert log["version"] == "2.1.0"
    (run_,) = log["runs"]
    assert run_["invocations"][0]["executionSuccessful"] is True
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert rules[:3] == ["never-use-after-free", "never-double-free", "never-double-call-rcu"]
    (result,) = run_["results"]  # one violated check
    assert result["ruleId"] == "never-use-after-free" and result["level"] == "error"
    assert "reader reads pt0.e0, but pt0 is free" in result["message"]["text"]
    loc = result["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "model/reclaim.py", "uriBaseId": "%SRCROOT%"}
    last = data["counterexample"][-1]
    assert loc["region"]["startLine"] == last["source"]["line"]
    line = linecache.getline(str(ROOT / "model" / "reclaim.py"), loc["region"]["startLine"])
    assert line.strip() == f'@step("{last["kernel_function"]}")'  # the violating step's own line
    (flow,) = result["codeFlows"]
    assert [t["id"] for t in flow["threadFlows"]] == ["zap", "reader"]  # one per thread that steps
    orders = sorted((loc["executionOrder"], t["id"]) for t in flow["threadFlows"] for loc in t["locations"])
    assert orders == [(n, st["thread"]) for n, st in enumerate(data["counterexample"], 1)]
    final = flow["threadFlows"][1]["locations"][-1]
    assert final["importance"] == "essential" and final["state"]["reader.pc"] == {"text": "ro_lock"}


def test_sarif_of_a_holding_run_and_of_a_failed_obligation_is_valid(tmp_path):
    holds = run("check", PROPERTY, "--model", MODEL, "--out", tmp_path, "--sarif", tmp_path / "h.sarif")
    assert holds.exit_code == 0
    log = json.loads((tmp_path / "h.sarif").read_text())
    validate_sarif(log)
    assert log["runs"][0]["results"] == []
    failed = run("check", ROOT / "properties" / "refcount_arith.py", "--set", "ptrs_per_pte=2048",
                 "--sarif", tmp_path / "z3.sarif", "--out", tmp_path)
    assert failed.exit_code == 1, failed.output
    log = json.loads((tmp_path / "z3.sarif").read_text())
    validate_sarif(log)
    results = log["runs"][0]["results"]
    assert results and all(r["ruleId"].startswith("obligation/") for r in results)
    assert "pte_refcount_decodes" in {r["ruleId"].split("/", 1)[1] for r in results}


def test_sarif_of_an_inconclusive_run_says_so(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--max-states", "10", "--out", tmp_path,
            "--sarif", tmp_path / "i.sarif")
    assert r.exit_code == 3
    log = json.loads((tmp_path / "i.sarif").read_text())
    validate_sarif(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False and invocation["exitCode"] == 3
    assert "state limit 10 reached" in invocation["toolExecutionNotifications"][0]["message"]["text"]


def test_junit_has_one_case_per_check_and_the_diagram_as_failure(semi_rcu):
    _, out = semi_rcu
    root = ET.parse(out / "junit" / "no_uaf.xml").getroot()
    (suite,) = root.findall("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases)[:3] == ["never use-after-free", "never double-free", "never double-call-rcu"]
    assert "witness zap.clear_pmd" in cases
    failure = cases["never use-after-free"].find("failure")
    assert failure.get("message") == "reader reads pt0.e0, but pt0 is free"
    assert "!! use-after-free" in failure.text and failure.text.startswith("no_uaf: VIOLATED")
    skipped = cases["never double-free"].find("skipped")  # the search stopped first: not a pass
    assert "undecided: the search stopped at the first violation" in skipped.get("message")
    assert cases["witness zap.clear_pmd"].find("*") is None  # found: passed
    assert suite.get("tests") == str(len(cases)) and suite.get("failures") == "1"
    assert suite.get("skipped") == str(sum(c.find("skipped") is not None for c in cases.values()))


def test_events_stream_follows_its_schema_and_ends_with_the_result(tmp_path):
    r = run("check", NO_UAF, "--variant", "semi_rcu_fallback", "--events", "--out", tmp_path,
            "--junit", tmp_path / "j.xml")
    assert r.exit_code == 1, r.output
    events = [json.loads(line) for line in r.stdout.splitlines()]  # JSON lines, nothing else
    for e in events:
        jsonschema.validate(e, render_events.SCHEMA)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "result"
    assert kinds.index("violation") < kinds.index("file")  # the verdict before any file
    violation = next(e for e in events if e["event"] == "violation")
    assert violation["check"] == "never use-after-free" and violation["steps"] == 16
    assert violation["location"]["file"].endswith("model/reclaim.py")
    files = [e["path"] for e in events if e["event"] == "file"]
    assert any(p.endswith(".html") for p in files) and files[-1] == str(tmp_path / "j.xml")
    as_json = json.loads(run("check", NO_UAF, "--variant", "semi_rcu_fallback", "--json", "--out", tmp_path).stdout)
    result = events[-1]["result"]
    assert result.pop("seconds") >= 0 and as_json.pop("seconds") >= 0
    assert result == as_json and events[-1]["exit_code"] == 1
    assert [e["elapsed"] for e in events] == sorted(e["elapsed"] for e in events)


def test_events_progress_lines_follow_the_schema():
    lines = []
    clock = iter([0.0, 2.5]).__next__
    stream = render_events.EventStream(lines.append, clock=clock)
    stream(12_000, 30_000, 17, 900, 2.4)
    (e,) = map(json.loads, lines)
    jsonschema.validate(e, render_events.SCHEMA)
    assert e["event"] == "progress" and e["elapsed"] == 2.5 and e["states_per_second"] == 5000.0
    assert (e["states"], e["transitions"], e["depth"], e["frontier"]) == (12_000, 30_000, 17, 900)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"event": "progress", "elapsed": 1.0}, render_events.SCHEMA)


def test_events_and_json_together_is_a_usage_error():
    r = run("check", NO_UAF, "--events", "--json")
    assert r.exit_code == 2 and "--json and --events" in r.stderr


def test_sarif_rule_ids_are_stable_slugs():
    assert render_sarif._rule_id("check", "never use-after-free") == "never-use-after-free"
    assert render_sarif._rule_id("witness", "slow path gives up") == "witness/slow-path-gives-up"


def test_events_document_names_every_event_and_field_of_the_schema():
    doc = (ROOT / "docs" / "events.md").read_text()
    assert f"`schema` (this document's version: {render_events.SCHEMA_VERSION})" in doc
    for variant in render_events.SCHEMA["oneOf"]:
        event = variant["properties"]["event"]["const"]
        row = next(line for line in doc.splitlines() if line.startswith(f"| `{event}` |"))
        for field in variant["required"]:
            assert f"`{field}`" in row, (event, field)
