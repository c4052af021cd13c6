"""The exit-code contract under every failure: 0 holds, 1 violated, 2 usage or input error in
one `ptmc: error: ...` line on stderr, 3 inconclusive (saying what was done); never a traceback.

Signals, rlimits and file-system failures are tested on a real `python -m ptmc` process."""
from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import MODEL, PROPERTY, ROOT, WITHOUT_RETRACT
from ptmc import workflow
from ptmc.cli import main
from ptmc.explore import check_model
from ptmc.limits import MemoryLimit, parse_size

WITHOUT_RETRACT_SET = [a for k, v in WITHOUT_RETRACT.items() for a in ("--set", f"{k}={v}")]

RECLAIM = ROOT / "model" / "reclaim.py"
needs_prlimit = pytest.mark.skipif(shutil.which("prlimit") is None, reason="util-linux prlimit is not installed")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(r, *fragments, code=2) -> str:
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.output and "internal error" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ptmc: error: "), r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    return lines[0]


def spawn(args, cwd, pythonpath=(), limit=None):
    """``python -m ptmc args``; ``limit``: a prlimit option, e.g. ``--as=160000000``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, pythonpath), str(ROOT / "src")])}
    env.pop("PTMC_DEBUG", None)
    return subprocess.Popen([*(["prlimit", limit] if limit else []), sys.executable, "-m", "ptmc",
                             *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(proc, marker: bytes, timeout=60) -> bytes:
    """Read the process's stderr until ``marker`` appears; what was read."""
    seen, end = b"", time.monotonic() + timeout
    while marker not in seen:
        assert time.monotonic() < end and proc.poll() is None, seen
        if select.select([proc.stderr], [], [], 0.5)[0]:
            seen += os.read(proc.stderr.fileno(), 65536)
    return seen


def finish(proc, seen=b"", timeout=120):
    out, err = proc.communicate(timeout=timeout)
    out, err = out.decode(), (seen + err).decode()
    assert "Traceback" not in out + err
    return proc.returncode, out, err


def write(path, text):
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------------------
# click's usage errors: one line
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["check", "properties"], "is a directory"),
    (["check", PROPERTY, "--max-states", "0"], "0 is not in the range x>=1"),
    (["check", PROPERTY, "--max-states", "-5"], "-5 is not in the range x>=1"),
    (["check", PROPERTY, "--max-states", "abc"], "'abc' is not a valid integer"),
    (["check", PROPERTY, "--timeout", "0"], "--timeout"),
    (["prove", PROPERTY, "--timeout", "0"], "--timeout"),
    (["check", PROPERTY, "--max-memory", "0"], "'0' is not a positive size"),
    (["graph", PROPERTY, "--max-memory", "lots"], "'lots' is not a size"),
    (["graph", PROPERTY, "--view", "nope"], "--view"),
    (["check"], "Missing argument 'PROPERTY_FILE'"),
    (["nope"], "No such command 'nope'"),
])
def test_usage_errors_are_one_line(in_repo, args, fragment):
    one_line_error(run(*args), fragment, "--help")


def test_out_naming_an_existing_file_is_a_usage_error(tmp_path):
    one_line_error(run("check", PROPERTY, "--out", write(tmp_path / "f", "")), "'--out'", "is a file")


def test_bare_ptmc_prints_its_help():
    r = run()
    assert r.exit_code == 2 and "Usage:" in r.output and "check" in r.output


# --------------------------------------------------------------------------------------------
# Wrong input is an input error, never an internal one
# --------------------------------------------------------------------------------------------

def _property(tmp_path, body, name="p.py"):
    return write(tmp_path / name, f'"""P."""\nfrom ptmc.properties import never\n{body}\n'
                                  'CHECKS = [never("use-after-free")]\n')


@pytest.mark.parametrize("body, message", [
    ('MODEL = ""', "MODEL must name the model file it checks"),
    (f'MODEL = "{MODEL}"\nPARAMS = [1, 2]', "PARAMS must be a dict of parameter values"),
    (f'MODEL = "{MODEL}"\nVARIANTS = "no_try_get"', "VARIANTS must be a list of variant names"),
    (f'MODEL = "{MODEL}"\nMODELS = "file.py"', "MODELS must be a list of model files"),
])
def test_malformed_property_file(tmp_path, body, message):
    prop = _property(tmp_path, body)
    one_line_error(run("check", prop, "--out", tmp_path), f"ptmc: error: {prop}: {message}")


def test_non_python_files(tmp_path):
    notes = write(tmp_path / "notes.txt", "hello\n")
    one_line_error(run("check", _property(tmp_path, 'MODEL = "notes.txt"')),
                   f"model file is not a Python file (.py): {notes}")
    one_line_error(run("check", notes), f"property file is not a Python file (.py): {notes}")
    one_line_error(run("check", PROPERTY, "--model", notes), f"model file is not a Python file (.py): {notes}")
    one_line_error(run("list", notes), "not a Python file")
    one_line_error(run("doc", notes), "not a Python file")


MODEL_TEMPLATE = '''\
"""A one-thread model."""
import sys
from ptmc import Model, Thread, step


class Count(Thread):
    @step("lib/x.c:count")
    def count(self, s):
        {step}
        s.x = min(s.x + 1, 3)
        return "count"


class One(Model):
    def init(self, mem):
        {init}
        mem.x = 0

    def threads(self):
        return [Count("t")]
'''


def _model(tmp_path, step="pass", init="pass", top=""):
    write(tmp_path / "m.py", top + MODEL_TEMPLATE.format(step=step, init=init))
    return write(tmp_path / "m_prop.py", '"""P."""\nimport sys\nfrom ptmc.properties import invariant\n'
                                         'MODEL = "m.py"\n\ndef fine(s):\n    return True\n\n'
                                         'CHECKS = [invariant(fine)]\n')


def test_model_whose_init_raises_names_file_and_line(tmp_path):
    prop = _model(tmp_path, init='raise ValueError("no pmd declared")')
    line = one_line_error(run("check", prop, "--out", tmp_path))
    assert line == f"ptmc: error: {tmp_path / 'm.py'}:16: init() raised ValueError: no pmd declared"


@pytest.mark.parametrize("threads, message", [
    ('return None', "threads() must return a list of Thread instances, got None"),
    ('return [Count]', "threads() must return a list of Thread instances, got [<class "),
    ('raise KeyError("walker")', "m.py:20: threads() raised KeyError: 'walker'"),
])
def test_model_whose_threads_are_wrong(tmp_path, threads, message):
    prop = _model(tmp_path)
    write(tmp_path / "m.py", (tmp_path / "m.py").read_text().replace('return [Count("t")]', threads))
    one_line_error(run("check", prop, "--out", tmp_path), message)


def test_graph_of_a_violated_property_says_where_exploration_ended(tmp_path):
    r = run("graph", PROPERTY, "--model", MODEL, "--variant", "no_try_get", "--out", tmp_path)
    assert r.exit_code == 0
    assert r.stdout.startswith("no_uaf on refcount2021: pcs view (explored until never use-after-free "
                               "failed at depth 15): ")


def test_graph_of_an_obligations_only_property(in_repo):
    one_line_error(run("graph", "properties/refcount_arith.py"),
                   "properties/refcount_arith.py: declares only z3 OBLIGATIONS", "ptmc prove")


@pytest.mark.parametrize("where, expected", [
    ("top", "m.py:1: sys.exit(3) called at import"),
    ("init", "m.py:16: sys.exit(3) called in init()"),
    ("step", "m.py:9: sys.exit(3) called in count()"),
    ("check", "m_prop.py:7: sys.exit(3) called in fine()"),
    ("property", "m_prop.py:2: sys.exit(3) called at import"),
])
def test_sys_exit_in_a_model_or_property_is_an_input_error(tmp_path, where, expected):
    exit_ = "sys.exit(3)"
    prop = _model(tmp_path, step=exit_ if where == "step" else "pass", init=exit_ if where == "init" else "pass",
                  top=f"import sys; {exit_}\n" if where == "top" else "")
    if where in ("check", "property"):
        text = prop.read_text().replace("    return True", f"    {exit_}")
        write(prop, text.replace('"""P."""\n', f'"""P."""\nimport sys; {exit_}\n') if where == "property" else text)
    one_line_error(run("check", prop, "--out", tmp_path), expected, "a model or property file must not exit")


def test_sys_exit_in_a_real_process(tmp_path):
    prop = _model(tmp_path, step="sys.exit(0)")
    code, out, err = finish(spawn(["check", prop], tmp_path))
    assert (code, out) == (2, "")
    assert err == f"ptmc: error: {tmp_path / 'm.py'}:9: sys.exit(0) called in count(); " \
                  "a model or property file must not exit\n"


# --------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM: inconclusive, exit 3, saying what was done
# --------------------------------------------------------------------------------------------

SELF_INTERRUPT = '''\
"""Interrupts itself once it has seen {after} states."""
import os, signal
from ptmc.properties import invariant

MODEL = "{model}"
seen = []


def count(s):
    seen.append(1)
    if len(seen) == {after}:
        os.kill(os.getpid(), signal.{sig})
    return True


CHECKS = [invariant(count)]
'''


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupt_during_start_up_imports(tmp_path, sig):
    slow = tmp_path / "slow" / "networkx"  # stands in for the real one: slow, and says when
    slow.mkdir(parents=True)
    write(slow / "__init__.py", 'import sys, time\nprint("importing", file=sys.stderr, flush=True)\n'
                                'time.sleep(60)\n')
    proc = spawn(["check", PROPERTY], tmp_path, pythonpath=[tmp_path / "slow"])
    seen = wait_for(proc, b"importing")
    proc.send_signal(getattr(signal, sig))
    code, out, err = finish(proc, seen)
    assert code == 3 and out == ""
    assert err.endswith("ptmc: interrupted while starting: nothing was checked\n")


def test_interrupt_while_loading_a_property(tmp_path):
    prop = write(tmp_path / "p.py", '"""P."""\nimport os, signal, time\n'
                                    'os.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n')
    code, out, err = finish(spawn(["check", prop], tmp_path))
    assert (code, out) == (3, "")
    assert err == f"ptmc: interrupted while loading {prop}: nothing was checked\n"


def test_sigterm_during_exploration_is_inconclusive_with_counts(tmp_path):
    proc = spawn(["check", "properties/no_uaf.py", *WITHOUT_RETRACT_SET, "--set", "zaps=2"], ROOT)
    seen = wait_for(proc, b"states/s")  # progress: exploration is under way
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc, seen)
    assert code == 3
    assert "no_uaf: INCONCLUSIVE" in out
    assert "inconclusive: interrupted: " in out and " states not yet expanded" in out


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_graph_says_it_is_incomplete(tmp_path, sig):
    prop = write(tmp_path / "p.py", SELF_INTERRUPT.format(after=300, model=MODEL, sig=sig))
    code, out, err = finish(spawn(["graph", prop, "--view", "full", "--out", tmp_path / "out"], tmp_path))
    assert code == 3, err
    assert out.startswith("p on refcount2021: full view (INCOMPLETE: interrupted: ")
    assert "inconclusive: the graph is only what was explored: interrupted: " in out
    dot = (tmp_path / "out" / "p-refcount2021-full.dot").read_text()
    assert "full view (INCOMPLETE: interrupted: " in dot


def test_interrupt_while_drawing_a_graph_writes_nothing(tmp_path):
    # Exploration never shows a value of y (the run holds); the full view shows every state.
    prop = _model(tmp_path, init='mem.layout.cell("y", 0, shown=stop)',
                  top="import os, signal\n\ndef stop(value, layout):\n"
                      "    os.kill(os.getpid(), signal.SIGINT)\n    return str(value)\n")
    code, out, err = finish(spawn(["graph", prop, "--view", "full", "--out", tmp_path / "out"], tmp_path))
    assert (code, out) == (3, "")
    assert err == "ptmc: interrupted while drawing the full view of 4 explored states: no files written\n"
    assert not (tmp_path / "out").exists()


def test_interrupted_verdict_table_stops_and_prints_what_finished(tmp_path):
    # The runs go to worker processes; Ctrl-C reaches the ptmc process that runs the batch (here
    # b_second's worker sends it once the first runs are done), which stops the batch.
    (tmp_path / "properties").mkdir()
    write(tmp_path / "properties" / "a_first.py", f'"""Holds."""\nfrom ptmc.properties import never\n'
                                                  f'MODEL = "{MODEL}"\nCHECKS = [never("use-after-free")]\n')
    write(tmp_path / "properties" / "b_second.py", SELF_INTERRUPT.format(after=300, model=MODEL, sig="SIGINT")
          .replace("os.getpid()", "os.getppid()"))
    write(tmp_path / "properties" / "c_third.py", f'"""Never reached."""\nfrom ptmc.properties import never\n'
                                                  f'MODEL = "{MODEL}"\nCHECKS = [never("double-free")]\n')
    code, out, err = finish(spawn(["list", "--verdicts"], tmp_path))
    assert code == 3, err
    table, last = out.splitlines()[:-1], out.splitlines()[-1]
    assert table[0].startswith("| model | variant | ptlocks | a_first |")  # what finished, no c_third
    assert "c_third" not in table[0]
    assert last.startswith("inconclusive: interrupted after ") and last.endswith(" of 12 runs")


PROVE_INTERRUPT = '''\
"""Two obligations; Ctrl-C arrives while z3 works on the second."""
import os, subprocess
import z3
from ptmc.smt import Claim, obligation


@obligation({})
def easy(p):
    """x + 0 == x"""
    x = z3.BitVec("x", 64)
    return Claim(goal=x + 0 == x)


@obligation({})
def hard(p):
    """A factoring problem z3 needs a long time for."""
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill -INT {os.getpid()}"])
    x, y, z, w = z3.BitVecs("x y z w", 64)
    return Claim(given=[x > 1, y > 1, z > 1, w > 1,
                        x * x * w + y * y * z == z * z * x + 12345 * w * y],
                 goal=x * y * z * w != 0x123456789abcdef1)


OBLIGATIONS = [easy, hard]
'''


@pytest.mark.parametrize("as_json", [False, True])
def test_interrupted_prove_reports_what_was_proved(tmp_path, as_json):
    prop = write(tmp_path / "p.py", PROVE_INTERRUPT)
    code, out, err = finish(spawn(["prove", prop, "--timeout", "60", *(["--json"] if as_json else [])], tmp_path))
    assert code == 3, (out, err)
    if as_json:
        data = json.loads(out)
        assert data["verdict"] == "inconclusive" and [o["name"] for o in data["obligations"]] == ["easy"]
        assert data["reason"] == "interrupted: 1 of 2 z3 obligations done"
        return
    assert out.startswith("p: INCONCLUSIVE, 1 z3 obligations: 1 proved")
    assert "PROVED       easy" in out and "hard" not in out
    assert out.rstrip().endswith("inconclusive: interrupted: 1 of 2 z3 obligations done")


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------

def test_parse_size():
    assert parse_size("800M") == 800 << 20 and parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == 3 << 29 and parse_size("4096") == 4096 and parse_size("64kb") == 64 << 10
    for bad in ("", "0", "2X", "-1G", "G"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_default_memory_limit_is_a_share_of_what_the_process_may_use():
    limit = MemoryLimit()
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < limit.budget <= 0.8 * physical
    assert limit() is None  # this test process is far below it


def test_max_memory_ends_exploration_as_inconclusive_with_counts(tmp_path):
    code, out, err = finish(spawn(["check", "properties/no_uaf.py", *WITHOUT_RETRACT_SET, "--set", "zaps=2",
                                   "--max-memory", "80M",
                                   "--out", tmp_path], ROOT))
    assert code == 3, err
    assert "no_uaf: INCONCLUSIVE" in out
    assert "inconclusive: memory limit 80 MiB reached (resident " in out
    assert " states, " in out and " transitions, depth " in out
    assert "--store fingerprint keeps ~30 bytes a state" in out  # what would fit


@needs_prlimit
def test_rlimit_as_ends_exploration_as_inconclusive_with_counts(tmp_path):
    code, out, err = finish(spawn(["check", "properties/no_uaf.py", *WITHOUT_RETRACT_SET, "--set", "zaps=2",
                                   "--out", tmp_path], ROOT,
                                  limit="--as=160000000"))
    assert code == 3, err
    # Whichever comes first: the address space against RLIMIT_AS, or resident memory against the
    # default budget, 80% of it (122 MiB of 153 MiB).
    assert ("inconclusive: memory limit reached (address space " in out and "of RLIMIT_AS 153 MiB" in out
            or "inconclusive: memory limit 122 MiB reached (resident " in out), out
    assert " states not yet expanded" in out


@needs_prlimit
def test_memory_error_is_a_last_resort_with_counts(tmp_path):
    prop = _model(tmp_path, step="bytearray(1 << 40) if s.x == 2 else None")
    code, out, err = finish(spawn(["check", prop], tmp_path, limit="--as=2000000000"))
    assert code == 3, err
    assert "inconclusive: out of memory (MemoryError): 3 states, 2 transitions, depth 2" in out


def test_memory_error_outside_exploration_is_inconclusive(tmp_path):
    prop = write(tmp_path / "p.py", '"""P."""\nraise MemoryError\n')
    r = run("check", prop)
    assert r.exit_code == 3 and "Traceback" not in r.output
    assert r.stderr.startswith("ptmc: out of memory: the run did not finish")


# --------------------------------------------------------------------------------------------
# --out: the verdict first, files atomically
# --------------------------------------------------------------------------------------------

VIOLATED = ["check", PROPERTY, "--model", MODEL, "--variant", "no_try_get"]


def test_unwritable_out_keeps_the_verdict(tmp_path):
    blocker = write(tmp_path / "file", "")
    r = run(*VIOLATED, "--out", blocker / "sub")
    one_line_error(r, f"cannot write {blocker / 'sub'}: Not a directory", code=1)
    assert r.stdout.startswith("no_uaf: VIOLATED") and "==> never use-after-free violated" in r.stdout
    r = run(*VIOLATED, "--json", "--out", blocker / "sub")
    assert r.exit_code == 1 and json.loads(r.stdout)["verdict"] == "violated"


@needs_prlimit
def test_full_disk_leaves_no_truncated_file(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = write(out / "no_uaf-refcount2021-no_try_get.json", '{"old": true}\n')
    # Files over 3000 bytes cannot be written: a disk that fills up in the middle of a file.
    code, stdout, err = finish(spawn([*VIOLATED, "--out", out], tmp_path, limit="--fsize=3000"))
    assert code == 1
    assert "==> never use-after-free violated" in stdout
    assert err.startswith("ptmc: error: cannot write ") and err.endswith(": File too large\n")
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == [old.name]  # no temporary or partial file
    assert old.read_text() == '{"old": true}\n'


def test_graph_write_failure_is_one_line(tmp_path):
    one_line_error(run("graph", PROPERTY, "--model", MODEL, "--out", write(tmp_path / "f", "") / "g"),
                   "cannot write")


def test_files_are_replaced_whole(tmp_path):
    path = write(tmp_path / "a.txt", "old and long " * 100)
    assert workflow.write_files(tmp_path, {"a.txt": "new", "b.bin": b"\x00"}) == [path, tmp_path / "b.bin"]
    assert path.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


# --------------------------------------------------------------------------------------------
# --max-states N stores exactly N states
# --------------------------------------------------------------------------------------------

def test_max_states_stops_at_exactly_n():
    from ptmc.workflow import instantiate
    for n in (1, 2, 7, 100, 1000):
        r = check_model(instantiate(RECLAIM, {}, []), [], max_states=n)
        assert (r.verdict, r.states) == ("inconclusive", n)
        assert r.reason.startswith(f"state limit {n} reached: {n} states, ")


def test_max_states_equal_to_the_state_space_holds(tmp_path):
    full = run("check", PROPERTY, "--model", MODEL, "--json", "--out", tmp_path)
    states = json.loads(full.stdout)["states"]
    r = run("check", PROPERTY, "--model", MODEL, "--max-states", states, "--json", "--out", tmp_path)
    assert r.exit_code == 0 and json.loads(r.stdout)["states"] == states
    r = run("check", PROPERTY, "--model", MODEL, "--max-states", states - 1, "--json", "--out", tmp_path)
    assert r.exit_code == 3 and json.loads(r.stdout)["states"] == states - 1


# --------------------------------------------------------------------------------------------
# Output names: one run, one set of files
# --------------------------------------------------------------------------------------------

def test_output_names_carry_variants_and_settings(tmp_path):
    out = tmp_path / "out"
    assert run(*VIOLATED, "--out", out).exit_code == 1
    assert run(*VIOLATED, "--set", "entries=3", "--set", "faults=0", "--out", out).exit_code == 1
    names = {p.name for p in out.glob("*.json")}
    assert names == {"no_uaf-refcount2021-no_try_get.json",
                     "no_uaf-refcount2021-no_try_get-entries=3-faults=0.json"}
    assert run("graph", PROPERTY, "--model", MODEL, "--set", "entries=1", "--out", out).exit_code == 0
    assert (out / "no_uaf-refcount2021-pcs-entries=1.dot").is_file()


def test_output_names_are_filesystem_safe_and_distinct():
    stem = workflow.output_stem("p", "m", "v", settings={"b": "x/y", "a": "1"})
    assert stem == "p-m-v-a=1-b=x%2Fy"
    assert stem != workflow.output_stem("p", "m", "v", settings={"b": "x_y", "a": "1"})
