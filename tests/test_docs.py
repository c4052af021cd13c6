"""Generated documents must match what the commands produce now: no hand-typed verdict or
step listing can drift from the models."""
from __future__ import annotations

import re

from click.testing import CliRunner

from ptmc.cli import main

from conftest import ROOT, WITHOUT_RETRACT

WITHOUT_RETRACT_SET = [a for k, v in WITHOUT_RETRACT.items() for a in ("--set", f"{k}={v}")]


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


# --- docs/authoring.md's example ---------------------------------------------------------------

EXAMPLE = ROOT / "docs" / "examples"


def test_authoring_example_holds_with_its_hand_counted_states():
    from ptmc import workflow
    r = workflow.check(EXAMPLE / "retract_no_uaf.py")
    # khugepaged at k = 0..4 (before lock_pml .. before free), 5q (table queued for RCU, the
    # reader's bit in its mask or not) or 5f (freed); the reader at map, read (it mapped pt0,
    # so only before the clear, k < 2, and it holds off the free) or done (locals reset):
    #   reader at map:  k = 0..4, 5q, 5f                  7
    #   reader at read: k = 0..4, 5q waiting for it       6
    #   reader done:    k = 0..4, 5q ready, 5f            7      total 20
    assert (r.verdict, r.states, r.transitions, r.depth) == ("holds", 20, 30, 7)
    assert [(w.name, w.length) for w in r.witnesses] == [("reads_a_retracted_table", 4),
                                                         ("rcu.rcu_do_batch", 6)]


def test_authoring_example_variant_frees_under_the_reader():
    from ptmc.testing import assert_violated
    r = assert_violated(EXAMPLE / "retract_no_uaf.py", variants=["free_at_once"], check="never use-after-free",
                        steps=7)
    assert r.violation.message == "reader reads pt0.e0, but pt0 is free"
    assert [(st.thread, st.step) for st in r.trace] == [
        ("khugepaged", "lock_pml"), ("reader", "map"), ("khugepaged", "collapse"),
        ("khugepaged", "flush"), ("khugepaged", "unlock_pml"), ("khugepaged", "free"), ("reader", "read")]


def test_authoring_guide_shows_what_ptmc_prints(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    guide = (ROOT / "docs" / "authoring.md").read_text()
    out = CliRunner().invoke(main, ["check", "docs/examples/retract_no_uaf.py", "--out", str(tmp_path)])
    assert out.exit_code == 0
    headline = re.sub(r"[\d.]+s$", "0.00s", out.stdout.splitlines()[0])
    assert headline in guide
    assert "\n".join(out.stdout.splitlines()[1:]) in guide
    source = (EXAMPLE / "retract.py").read_text()
    (tmp_path / "retract.py").write_text(source.replace("        rcu_init(mem)\n", ""))
    (tmp_path / "p.py").write_text((EXAMPLE / "retract_no_uaf.py").read_text())
    out = CliRunner().invoke(main, ["check", str(tmp_path / "p.py"), "--out", str(tmp_path)])
    assert out.exit_code == 2
    message = out.stderr.strip().removeprefix("ptmc: error: ")
    assert " ".join(message.split()) in " ".join(guide.split())


def test_teaching_views_are_generated_by_the_commands_docs_teaching_md_gives(monkeypatch, tmp_path):
    """Each view in docs/views/ is what its line in docs/teaching.md draws now, and every view
    the page shows exists: a model change that moves a box or an arrow must be regenerated."""
    monkeypatch.chdir(ROOT)
    page = (ROOT / "docs" / "teaching.md").read_text()
    commands = re.search(r"```\n(.*?)```", page, re.S).group(1).splitlines()
    assert len(commands) == 5
    drawn = set()
    for line in commands:
        args = [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', line)]
        assert args[:2] == ["ptmc", "graph"] and args[-2:] == ["--out", "docs/views"], line
        out = CliRunner().invoke(main, [*args[1:-2], "--out", str(tmp_path)])
        assert out.exit_code == 0, out.output
        for dot in tmp_path.glob("*.dot"):
            assert dot.read_text() == (ROOT / "docs" / "views" / dot.name).read_text(), f"regenerate: {line}"
            drawn.add(dot.stem)
            dot.unlink()
    shown = set(re.findall(r"\]\(views/(.*?)\.svg\)", page))
    assert shown == drawn
    assert all((ROOT / "docs" / "views" / f"{stem}.svg").exists() for stem in shown)


def test_project_view_labels_nodes_with_the_projection_and_marks_the_counterexample(tmp_path):
    out = CliRunner().invoke(main, ["graph", str(ROOT / "properties" / "no_uaf.py"), *WITHOUT_RETRACT_SET, "--variant",
                                    "semi_rcu_fallback", "--project", "pmd,pt0.state", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    dot = (tmp_path / "no_uaf-reclaim-semi_rcu_fallback-pmd_pt0_state-retracts=0-vma=anon.dot").read_text()
    # pt0's lifecycle, each box with the states it stands for; the K1 arrow, red, straight to free
    assert 'label="pmd: pt0\npt0.state: linked\n(' in dot
    assert re.search(r'label="zap.tlb_remove_table_now" color=red', dot)
    assert "violation:" in dot and "(0 states)" not in dot
    bad = CliRunner().invoke(main, ["graph", str(ROOT / "properties" / "no_uaf.py"), *WITHOUT_RETRACT_SET,
                                    "--project", "pmd,nosuch",
                                    "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "'nosuch' is neither a cell of model reclaim" in bad.output
    assert "Traceback" not in bad.output
