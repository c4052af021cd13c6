"""The known-bug corpus: `ptmc regress` runs every entry of corpus/ and exits 0 only when each
gives its expected verdict, and a violation the expected check and counterexample shape. CI runs
it through this test; the entries' own shapes are asserted by regress itself."""
from __future__ import annotations

from click.testing import CliRunner

from ptmc import regress
from ptmc.cli import main
from ptmc.regress import Entry

from conftest import ROOT


def test_regress_runs_the_whole_corpus_and_every_entry_matches(in_repo):
    out = CliRunner().invoke(main, ["regress"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["entry", "race", "expected", "found", "states", "steps", "seconds"]
    entries = regress.load(ROOT / "corpus")
    assert len(lines) == len(entries) + 2 and lines[-1] == f"{len(entries)} of {len(entries)} entries match"
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert set(rows) == {e.name for e in entries}
    assert all(row[-1] == "ok" for row in rows.values())
    # every race of protocol.md section 4 has an entry that reproduces it, and its fixed code holds
    races = {e.race for e in entries}
    assert {"K1"} <= races


def test_a_mismatch_fails_the_run_and_says_what_differs(tmp_path):
    (tmp_path / "wrong.py").write_text(
        "from ptmc.regress import Entry\n"
        f"ENTRIES = [Entry('k1-claimed-safe', 'K1', 'a wrong expectation', {str(ROOT / 'properties' / 'no_uaf.py')!r},"
        " 'holds', variants=('semi_rcu_fallback',)),\n"
        f"           Entry('k1-wrong-shape', 'K1', 'a wrong shape', {str(ROOT / 'properties' / 'no_uaf.py')!r},"
        " 'violated', variants=('semi_rcu_fallback',), shape=(('reader', 'ro_read'), ('zap', 'clear_pmd')))]\n")
    out = CliRunner().invoke(main, ["regress", str(tmp_path)])
    assert out.exit_code == 1
    assert "MISMATCH: expected holds, found violated" in out.stdout
    assert "MISMATCH: key step zap.clear_pmd not found in order" in out.stdout
    assert out.stdout.splitlines()[-1] == "0 of 2 entries match"


def test_bad_corpus_input_is_one_line_and_exit_2(tmp_path):
    out = CliRunner().invoke(main, ["regress", str(tmp_path / "missing")])
    assert out.exit_code == 2
    (tmp_path / "bad.py").write_text("ENTRIES = 3\n")
    out = CliRunner().invoke(main, ["regress", str(tmp_path)])
    assert out.exit_code == 2 and out.stderr.count("\n") == 1
    assert "defines ENTRIES, a list of ptmc.regress.Entry" in out.stderr


def test_shape_is_a_subsequence_of_the_trace():
    e = Entry("x", "K0", "", "p.py", "violated", shape=(("a", "s1"), ("b", "s3")), threads=("a", "b"))

    class R:
        verdict, reason = "violated", ""

        class violation:
            check = "c"
    for trace, ok in ((["a.s1", "b.s2", "b.s3"], True), (["b.s3", "a.s1"], False), (["a.s1", "c.s3"], False)):
        R.trace = [type("S", (), {"thread": t.split(".")[0], "step": t.split(".")[1]}) for t in trace]
        assert (e.matches(R) == "") is ok, trace
