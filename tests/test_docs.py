"""Generated documents must match what the commands produce now: no hand-typed verdict or
step listing can drift from the models."""
from __future__ import annotations

import re

from click.testing import CliRunner

from ptmc.cli import main

from conftest import ROOT


def test_protocol_reference_is_generated_from_the_model(monkeypatch):
    monkeypatch.chdir(ROOT)
    out = CliRunner().invoke(main, ["doc", "model/reclaim.py"])
    assert out.exit_code == 0, out.output
    assert (ROOT / "docs" / "protocol.md").read_text() == out.output, \
        "regenerate: ptmc doc model/reclaim.py > docs/protocol.md"


def test_readme_verdict_table_is_what_ptmc_list_verdicts_prints(monkeypatch):
    monkeypatch.chdir(ROOT)
    out = CliRunner().invoke(main, ["list", "--verdicts"])
    assert out.exit_code == 0, out.output
    table = "\n".join(line for line in out.stdout.splitlines() if line.startswith("|")) + "\n"
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- verdicts -->\n(.*?)<!-- /verdicts -->", readme, re.S)
    assert block, "README.md lacks the <!-- verdicts --> block"
    assert block.group(1) == table, "regenerate the README table with: ptmc list --verdicts"
