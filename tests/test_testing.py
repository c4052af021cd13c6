"""ptmc in test suites: ptmc.testing's assertions, and the pytest plugin (``pytest --ptmc``)
run as a user runs it, in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata

import pytest

from conftest import MODEL, PROPERTY, ROOT
from ptmc.testing import assert_holds, assert_violated


def test_assert_holds_returns_the_result():
    r = assert_holds(PROPERTY, model=MODEL, split_ptlocks=False)
    assert r.verdict == "holds" and r.params["split_ptlocks"] is False


def test_assert_holds_fails_with_the_text_diagram():
    with pytest.raises(AssertionError) as e:
        assert_holds(PROPERTY, model=MODEL, variants=["no_try_get"])
    message = str(e.value)
    assert message.startswith("expected no_uaf to hold\nno_uaf: VIOLATED on model refcount2021")
    assert "!! use-after-free" in message and "==> never use-after-free violated" in message


def test_assert_holds_fails_when_inconclusive():
    with pytest.raises(AssertionError, match="expected no_uaf to hold\nno_uaf: INCONCLUSIVE"):
        assert_holds(PROPERTY, model=MODEL, max_states=10)


def test_assert_violated_checks_the_check_and_the_length():
    r = assert_violated(PROPERTY, model=MODEL, variants=["no_try_get"], check="never use-after-free",
                        steps=15)
    assert len(r.trace) == 15
    with pytest.raises(AssertionError, match="expected a counterexample of 14 steps, got 15"):
        assert_violated(PROPERTY, model=MODEL, variants=["no_try_get"], steps=14)
    with pytest.raises(AssertionError, match="expected 'never double-free' to be violated, but "
                                             "'never use-after-free' is"):
        assert_violated(PROPERTY, model=MODEL, variants=["no_try_get"], check="never double-free")
    with pytest.raises(AssertionError, match="expected no_uaf to be violated, it is holds"):
        assert_violated(PROPERTY, model=MODEL)


# --------------------------------------------------------------------------------------------
# pytest --ptmc
# --------------------------------------------------------------------------------------------

def test_plugin_is_registered_through_a_pytest11_entry_point():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"ptmc": "ptmc.pytest_plugin"}


def _pytest(args, cwd):
    """pytest as a user runs it; the plugin by its entry point when this ptmc is installed with
    it (./setup.sh), else named with -p."""
    installed = any(ep.value == "ptmc.pytest_plugin" for ep in metadata.entry_points(group="pytest11"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    plugin = [] if installed else ["-p", "ptmc.pytest_plugin"]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *plugin, *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _property(path, checks, variants=()):
    path.write_text(f'"""A property for the plugin test."""\nfrom ptmc.properties import never\n'
                    f'MODEL = "{MODEL}"\nVARIANTS = {list(variants)!r}\nCHECKS = [{checks}]\n')
    return path


def test_pytest_ptmc_collects_one_test_per_check(tmp_path):
    props = tmp_path / "props"
    props.mkdir()
    _property(props / "safe.py", 'never("use-after-free"), never("double-free")')
    _property(props / "broken.py", 'never("use-after-free"), never("double-free")', ["no_try_get"])
    (props / "helper.py").write_text("X = 1\n")  # not a property: not collected
    ran = _pytest(["--ptmc", "-q", "-rA", props], tmp_path)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "1 failed, 5 passed" in ran.stdout
    # the checks, then the model's own: its z3 effect link (an observer)
    checks = ["never use-after-free", "never double-free", "effects match code"]
    ids = [line.split(" ", 1)[1].split(" - ", 1)[0] for line in ran.stdout.splitlines()
           if line.startswith(("PASSED ", "FAILED "))]
    assert sorted(ids) == sorted(f"props/{name}.py::{check}" for name in ("broken", "safe") for check in checks)
    assert "FAILED props/broken.py::never use-after-free" in ran.stdout
    # The failure report is the text diagram; the check the first run stopped before is decided
    # by a second run without the violated one.
    report = ran.stdout.split("= FAILURES =", 1)[1]
    assert "broken: never use-after-free" in report
    assert "never use-after-free: failed: " in report and "!! use-after-free" in report
    assert "Traceback" not in report and "ptmc/pytest_plugin.py" not in report
    assert "PASSED props/broken.py::never double-free" in ran.stdout


def test_pytest_ptmc_reports_a_broken_property_file_in_one_line(tmp_path):
    (tmp_path / "bad.py").write_text('"""Bad."""\nfrom ptmc.properties import never\nMODEL = "gone.py"\n'
                                     'CHECKS = [never("use-after-free")]\n')
    r = _pytest(["--ptmc", "-q", tmp_path / "bad.py"], tmp_path)
    assert r.returncode == 2, r.stdout
    assert "ptmc: error: model file not found" in r.stdout and "Traceback" not in r.stdout
