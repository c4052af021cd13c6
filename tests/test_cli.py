"""The command line: exit codes, one-line errors, --json, counterexample files, list."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import MODEL, PROPERTY
from ptmc.cli import main
from ptmc.model import load_model_class

JSON_KEYS = {"property", "model", "variants", "parameters", "verdict", "states", "transitions",
             "depth", "seconds"}


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ptmc: error: ")
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# Exit codes
# --------------------------------------------------------------------------------------------

def test_holds_exits_0(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("no_uaf: HOLDS on model refcount2021 (")
    assert not (tmp_path / "out").exists()  # nothing to write when it holds


def test_violated_exits_1_and_writes_counterexample_files(tmp_path):
    out = tmp_path / "out"
    r = run("check", PROPERTY, "--model", MODEL, "--variant", "no_try_get", "--out", out)
    assert r.exit_code == 1, r.output
    assert r.stdout.startswith("no_uaf: VIOLATED on model refcount2021 variants=no_try_get (")
    assert "==> never use-after-free violated: " in r.stdout
    stem = out / "no_uaf-refcount2021-no_try_get"
    suffixes = [".txt", ".json", ".dot"] + ([".svg"] if _has_dot() else [])
    for suffix in suffixes:
        path = stem.with_name(stem.name + suffix)
        assert path.is_file() and path.stat().st_size > 0, path
        assert f"wrote {path}" in r.stdout
    txt = (out / "no_uaf-refcount2021-no_try_get.txt").read_text()
    assert txt.splitlines()[0].startswith("no_uaf: VIOLATED")
    assert "!! use-after-free" in txt
    data = json.loads((out / "no_uaf-refcount2021-no_try_get.json").read_text())
    assert data["verdict"] == "violated" and data["counterexample"][0]["step"] == "check_pmd"
    dot = (out / "no_uaf-refcount2021-no_try_get.dot").read_text()
    assert dot.startswith("digraph counterexample {")
    assert "cluster_0" in dot and "walker" in dot and "violation" in dot
    if _has_dot():
        svg = (out / "no_uaf-refcount2021-no_try_get.svg").read_text()
        assert "<svg" in svg


def _has_dot():
    import shutil
    return shutil.which("dot") is not None


def test_inconclusive_exits_3(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--max-states", "10", "--out", tmp_path)
    assert r.exit_code == 3, r.output
    assert "INCONCLUSIVE" in r.stdout.splitlines()[0]
    assert "inconclusive: state limit 10 reached" in r.stdout


def test_inconclusive_json_has_reason(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--max-states", "10", "--json", "--out", tmp_path)
    assert r.exit_code == 3
    data = json.loads(r.stdout)
    assert data["verdict"] == "inconclusive"
    assert data["reason"].startswith("state limit 10 reached")
    assert data["states"] >= 10


@pytest.mark.parametrize("args", [[], ["check"], ["check", "p.py", "--max-states", "0"], ["nope"]])
def test_click_usage_errors_exit_2(args):
    r = run(*args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output


# --------------------------------------------------------------------------------------------
# One-line input errors
# --------------------------------------------------------------------------------------------

def test_missing_property_file(tmp_path):
    missing = tmp_path / "nope.py"
    assert_one_line_error(run("check", missing, "--out", tmp_path), f"property file not found: {missing}")


def test_syntax_error_in_property_file(tmp_path):
    prop = tmp_path / "bad.py"
    prop.write_text('"""A broken property."""\nMODEL = "x.py"\nCHECKS = [never("use-after-free"\n')
    line = assert_one_line_error(run("check", prop, "--out", tmp_path), str(prop), "syntax error")
    assert line.startswith(f"ptmc: error: {prop}:3: syntax error: ")  # the unclosed '(' is on line 3


def test_exception_while_loading_property_names_file_and_line(tmp_path):
    prop = tmp_path / "raises.py"
    prop.write_text(f'"""Raises."""\nfrom ptmc.properties import never\nMODEL = "{MODEL}"\n'
                    'CHECKS = [never("typo-event")]\n')
    assert_one_line_error(run("check", prop, "--out", tmp_path),
                          "unknown event 'typo-event' for model refcount2021", "use-after-free")
    prop.write_text('"""Raises."""\nx = 1\ny = x / 0\n')
    assert_one_line_error(run("check", prop, "--out", tmp_path), f"{prop}:3: ZeroDivisionError")


def test_unknown_variant(tmp_path):
    assert_one_line_error(run("check", PROPERTY, "--model", MODEL, "--variant", "nope", "--out", tmp_path),
                          "unknown variant 'nope' for model refcount2021", "no_try_get")


def test_unknown_parameter(tmp_path):
    assert_one_line_error(run("check", PROPERTY, "--model", MODEL, "--set", "nope=1", "--out", tmp_path),
                          "unknown parameter 'nope' for model refcount2021", "entries")


def test_property_params_apply_where_the_model_has_them(tmp_path):
    """The rule of Property.params_for, both halves. no_uaf's PARAMS (vma=shmem, retracts=1) are
    its MODEL's, reclaim's: refcount2021, one of its MODELS, has neither, so they are not applied
    there; a --set of one is still an error, as is any name neither model knows."""
    r = run("check", PROPERTY, "--model", MODEL, "--json", "--out", tmp_path)
    data = json.loads(r.stdout)
    assert (r.exit_code, data["model"], data["verdict"], data["states"]) == (0, "refcount2021", "holds", 1853)
    assert not {"vma", "retracts"} & set(data["parameters"])
    for setting in ("retracts=1", "vma=shmem"):
        assert_one_line_error(run("check", PROPERTY, "--model", MODEL, "--set", setting, "--out", tmp_path),
                              f"unknown parameter {setting.split('=')[0]!r} for model refcount2021", "entries")
    assert_one_line_error(run("check", PROPERTY, "--set", "nope=1", "--out", tmp_path),
                          "unknown parameter 'nope' for model reclaim", "retracts")
    # On the property's own MODEL every PARAMS name must be the model's: a typo is an error.
    prop, reclaim = tmp_path / "p.py", str(PROPERTY.parent.parent / "model" / "reclaim.py")
    prop.write_text(f'"""P."""\nfrom ptmc.properties import never\nMODEL = {reclaim!r}\n'
                    'PARAMS = {"retract": 1}\nCHECKS = [never("use-after-free")]\n')
    assert_one_line_error(run("check", prop, "--out", tmp_path), "unknown parameter 'retract' for model reclaim",
                          "retracts")


@pytest.mark.parametrize("setting", ["entries", "=3", "entries3"])
def test_malformed_set(tmp_path, setting):
    assert_one_line_error(run("check", PROPERTY, "--model", MODEL, "--set", setting, "--out", tmp_path),
                          f"--set takes NAME=VALUE, got {setting!r}")


@pytest.mark.parametrize("setting, message", [
    ("entries=two", "parameter entries is an integer, got 'two'"),
    ("split_ptlocks=maybe", "parameter split_ptlocks is a boolean, got 'maybe'"),
])
def test_badly_typed_set(tmp_path, setting, message):
    assert_one_line_error(run("check", PROPERTY, "--model", MODEL, "--set", setting, "--out", tmp_path), message)


def test_missing_model_file(tmp_path):
    prop = tmp_path / "p.py"
    prop.write_text('"""P."""\nfrom ptmc.properties import never\nMODEL = "gone.py"\n'
                    'CHECKS = [never("use-after-free")]\n')
    assert_one_line_error(run("check", prop, "--out", tmp_path), "model file not found", "gone.py")


BOOM_MODEL = '''\
"""A model whose only step divides by zero."""
from ptmc import Model, Thread, step


class Divider(Thread):
    """Divides by the shared counter."""

    @step("lib/div.c:divide")
    def divide(self, s):
        s.x = 1 // s.x


class Boom(Model):
    """Divides by zero."""

    def init(self, mem):
        mem.x = 0

    def threads(self):
        return [Divider("divider")]
'''

BOOM_PROPERTY = '''\
"""Nothing bad happens."""
from ptmc.properties import never

MODEL = "boom.py"
CHECKS = [never("use-after-free")]
'''


def test_exception_in_model_step_names_thread_step_and_state(tmp_path):
    (tmp_path / "boom.py").write_text(BOOM_MODEL)
    (tmp_path / "boom_prop.py").write_text(BOOM_PROPERTY)
    line = assert_one_line_error(run("check", tmp_path / "boom_prop.py", "--out", tmp_path / "out"),
                                 "divider.divide", "lib/div.c:divide", "ZeroDivisionError")
    assert line.endswith("state: x=0, divider.pc=divide")
    assert not (tmp_path / "out").exists()


def test_counterexample_files_keep_dotted_names(tmp_path):
    (tmp_path / "stuck.v2.py").write_text(
        '"""Deadlocks at once."""\nfrom ptmc import Blocked, Model, Thread, step\n\n'
        'class W(Thread):\n    @step("x.c:wait")\n    def wait(self, s):\n        raise Blocked\n\n'
        'class Stuck(Model):\n    def init(self, mem):\n        mem.x = 0\n\n'
        '    def threads(self):\n        return [W("w")]\n')
    (tmp_path / "dl.v1.py").write_text('"""No deadlock."""\nfrom ptmc.properties import deadlock_free\n'
                                       'MODEL = "stuck.v2.py"\nCHECKS = [deadlock_free()]\n')
    r = run("check", tmp_path / "dl.v1.py", "--out", tmp_path / "out")
    assert r.exit_code == 1
    assert (tmp_path / "out" / "dl.v1-stuck.v2.txt").is_file()


# --------------------------------------------------------------------------------------------
# --json
# --------------------------------------------------------------------------------------------

def test_json_holds(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--json", "--out", tmp_path)
    assert r.exit_code == 0
    data = json.loads(r.stdout)  # exactly one JSON object, nothing else on stdout
    assert JSON_KEYS <= set(data)
    assert data["property"] == "no_uaf" and data["model"] == "refcount2021"
    assert data["variants"] == [] and data["verdict"] == "holds"
    assert data["parameters"] == {p: v.default for p, v in load_model_class(MODEL).params().items()}
    assert "counterexample" not in data
    assert isinstance(data["seconds"], float) and data["states"] > 0


def test_json_violated(tmp_path):
    r = run("check", PROPERTY, "--model", MODEL, "--variant", "no_try_get", "--json", "--out", tmp_path)
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert JSON_KEYS <= set(data)
    assert data["verdict"] == "violated" and data["variants"] == ["no_try_get"]
    ce = data["counterexample"]
    assert isinstance(ce, list) and len(ce) > 2
    for st in ce:
        assert {"thread", "step", "kernel_function", "changes"} <= set(st)
        assert st["thread"] in ("walker", "madvise", "fault")
        assert ":" in st["kernel_function"]
        for before_after in st["changes"].values():
            assert isinstance(before_after, list) and len(before_after) == 2
    assert (ce[0]["thread"], ce[0]["step"]) == ("walker", "check_pmd")
    assert ce[-1]["events"][0]["kind"] == "use-after-free"
    assert data["violation"]["check"] == "never use-after-free"


# --------------------------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------------------------

def test_list_catalogue(in_repo):
    r = run("list")
    assert r.exit_code == 0, r.output
    assert "models (model/):" in r.stdout and "properties (properties/):" in r.stdout
    lines = r.stdout.splitlines()
    assert any(line.split()[:1] == ["refcount2021"] and "pte_refcount" in line for line in lines)
    assert any(line.split()[:1] == ["no_uaf"] and "use-after-free" in line for line in lines)


def test_list_model_shows_parameters_and_variants_with_help(in_repo):
    r = run("list", "model/refcount2021.py")
    assert r.exit_code == 0, r.output
    out = r.stdout
    cls = load_model_class(MODEL)
    assert out.startswith("model refcount2021: ")
    assert "  parameters:" in out and "  variants:" in out and "  threads:" in out
    for name, p in cls.params().items():
        line = next(line for line in out.splitlines() if line.strip().startswith(f"{name}="))
        assert line.strip().startswith(f"{name}={p.default!r}")
        assert p.help in line
    for name, v in cls.variants().items():
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert v.help in line
    assert "no_try_get" in cls.variants()
    for thread in ("walker", "madvise", "fault"):
        assert any(line.strip().startswith(thread) for line in out.splitlines())


def test_list_property(tmp_path):
    prop = tmp_path / "my_prop.py"
    prop.write_text('"""Locks are balanced.\n\nMore text."""\n'
                    'from ptmc.properties import never, deadlock_free\n'
                    'MODEL = "m/some_model.py"\nPARAMS = {"entries": 3}\nVARIANTS = ["v1"]\n'
                    'CHECKS = [never("bad-unlock", "no unlock of a free lock"), deadlock_free()]\n')
    r = run("list", prop)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "property my_prop: Locks are balanced.",
        f"  model: {os.path.relpath(tmp_path / 'm' / 'some_model.py')}",  # relative to where ptmc runs
        "  parameters: entries=3",
        "  variants: v1",
        "  check never bad-unlock: no unlock of a free lock",
        "  check deadlock free: no state where an unfinished thread can never move",
    ]


def test_list_repo_property(in_repo):
    r = run("list", "properties/no_uaf.py")
    assert r.exit_code == 0
    assert r.stdout.startswith("property no_uaf: No use-after-free of a PTE page table.")
    assert "  check never use-after-free: " in r.stdout


def test_list_missing_file(in_repo):
    assert_one_line_error(run("list", "model/nope.py"), "file not found")


# --------------------------------------------------------------------------------------------
# Real subprocesses: python3 -m ptmc, and determinism across PYTHONHASHSEED
# --------------------------------------------------------------------------------------------

def _ptmc(args, tmp_path, seed):
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    env.pop("PTMC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ptmc", *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)


def test_subprocess_violated_is_deterministic_across_hash_seeds(tmp_path):
    runs = []
    for seed in (0, 12345):
        p = _ptmc(["check", PROPERTY, "--model", MODEL, "--variant", "no_try_get", "--json", "--out", tmp_path / f"o{seed}"],
                  tmp_path, seed)
        assert p.returncode == 1, p.stderr
        assert "Traceback" not in p.stderr
        data = json.loads(p.stdout)
        data.pop("seconds")
        runs.append(data)
    assert runs[0] == runs[1]
    # and the same as in this process (whatever its hash seed)
    from ptmc import workflow
    r = workflow.check(PROPERTY, model_path=MODEL, variants=["no_try_get"])
    assert (r.states, r.transitions) == (runs[0]["states"], runs[0]["transitions"])
    assert [(st.thread, st.step) for st in r.trace] == [(st["thread"], st["step"]) for st in runs[0]["counterexample"]]
    assert (tmp_path / "o0" / "no_uaf-refcount2021-no_try_get.txt").read_text().splitlines()[1:] == \
        (tmp_path / "o12345" / "no_uaf-refcount2021-no_try_get.txt").read_text().splitlines()[1:]


def test_subprocess_error_is_one_line(tmp_path):
    p = _ptmc(["check", "missing.py"], tmp_path, 0)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr == "ptmc: error: property file not found: missing.py\n"


def test_subprocess_holds(tmp_path):
    p = _ptmc(["check", PROPERTY, "--model", MODEL, "--out", tmp_path / "out"], tmp_path, 7)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("no_uaf: HOLDS")


def test_parameter_below_its_minimum_is_a_one_line_error(in_repo):
    for setting, message in (("entries=0", "parameter entries must be at least 1, got 0"),
                             ("zaps=-1", "parameter zaps must be at least 0, got -1")):
        r = run("check", "properties/no_uaf.py", "--set", setting)
        assert r.exit_code == 2
        assert message in r.output and "Traceback" not in r.output
