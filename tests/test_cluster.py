"""Distributed exploration against the single-process explorer: the same states, transitions,
verdicts, counterexamples and witnesses on any number of workers, on shipped models (their
properties and variants) and on generated ones; first with the partitions in this process
(``Inline``: the protocol itself), then on a real local Ray cluster of two workers."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from test_compiled import CHECK_SETS, make_model
from ptmc.explore import ENGINES, describe, explore_model, with_witnesses
from ptmc.explore.cluster import Inline, explore_cluster
from ptmc.explore.partition import Job
from ptmc.model import load_model_class
from ptmc.properties import invariant, load_property


def both(model_of, checks, workers, store="exact", **kw):
    """The single-process and the distributed run of the same model: described results."""
    model = model_of()
    system, ex = explore_model(model, checks, store=store, **kw)
    single = dataclasses.replace(describe(system, ex, model, checks, "p", store=store), seconds=0)
    model = model_of()
    system = ENGINES["compiled"](model)
    bound = with_witnesses(model, [c.bind(type(model)) for c in checks])
    ex = explore_cluster(system, bound, Inline(workers), Job(build=lambda: (model_of(), checks), store=store),
                         observers=model.observers(system), **kw)
    distributed = describe(system, ex, model, checks, "p", store=store)
    assert distributed.workers == workers
    return single, dataclasses.replace(distributed, seconds=0, workers=0, exchanged=0, startup=0.0)


def shipped(names, **params):
    """Each property's checks on its model, with no variant and each one."""
    out = []
    for name in names:
        prop = load_property(ROOT / "properties" / f"{name}.py")
        cls = load_model_class(prop.model_path)
        for variants in [[], *([v] for v in cls.variants())]:
            out.append(pytest.param(prop, cls, {**prop.params, **params}, [*prop.variants, *variants],
                                    id="-".join([name, *variants])))
    return out


SMALL = {"walkers": 0, "readers": 0}  # the reclaim model's handshake alone: each run < 1 s


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("prop, cls, params, variants",
                         shipped(["no_uaf", "no_deadlock", "no_leak", "no_lost_pte", "tlb_coherent"], **SMALL))
def test_shipped_runs_agree(prop, cls, params, variants, workers):
    single, distributed = both(lambda: cls(params, variants), prop.checks, workers)
    assert distributed == single


@pytest.mark.parametrize("prop, cls, params, variants",
                         shipped(["refcount2022_exact", "refcount2022_no_lost_mapping", "gup_stable"]))
def test_other_models_agree(prop, cls, params, variants):
    single, distributed = both(lambda: cls(params, variants), prop.checks, 2)
    assert distributed == single


@pytest.mark.parametrize("store", ["exact", "fingerprint"])
@pytest.mark.parametrize("limit", [1, 2, 700, 1293, 1294])
def test_a_state_limit_stops_where_the_single_process_run_stops(limit, store):
    cls = load_model_class(ROOT / "model" / "reclaim.py")
    prop = load_property(ROOT / "properties" / "no_uaf.py")
    single, distributed = both(lambda: cls(SMALL), prop.checks, 2, max_states=limit, store=store)
    assert distributed == single
    assert single.verdict == ("holds" if limit == 1294 else "inconclusive")


@pytest.mark.parametrize("variants", [[], ["semi_rcu_fallback"]])
def test_the_fingerprint_store_agrees_collision_estimate_included(variants):
    cls = load_model_class(ROOT / "model" / "reclaim.py")
    prop = load_property(ROOT / "properties" / "no_uaf.py")
    single, distributed = both(lambda: cls(SMALL, variants), prop.checks, 2, store="fingerprint")
    assert distributed == single and single.collision_probability is not None


def c0_not_zero(s):
    return s.c0 != 0 or "c0 is 0"


@pytest.mark.parametrize("store", ["exact", "fingerprint"])
def test_an_initial_state_that_fails_agrees(store):
    cls = make_model([[("store", 0, 1)]])
    single, distributed = both(cls, [invariant(c0_not_zero)], 2, store=store)
    assert distributed == single and single.verdict == "violated" and single.states == 1


def test_the_default_run_agrees_on_two_workers():
    cls = load_model_class(ROOT / "model" / "reclaim.py")
    prop = load_property(ROOT / "properties" / "no_deadlock.py")
    single, distributed = both(lambda: cls(), prop.checks, 2)
    assert distributed == single and single.states == 47815




@settings(max_examples=200, deadline=None)
@given(st.integers(1, 3), st.sampled_from(range(len(CHECK_SETS))), st.data())
def test_generated_models_agree(workers, checks, data):
    from test_compiled import PROGRAMS
    cls = make_model(data.draw(PROGRAMS))
    try:
        explore_model(cls(), CHECK_SETS[checks])
    except Exception:  # noqa: BLE001 - a program the explorer refuses (tests/test_compiled.py)
        return
    single, distributed = both(cls, CHECK_SETS[checks], workers)
    assert distributed == single


# --------------------------------------------------------------------------------------------
# A real local Ray cluster of two workers, through the command line.
# --------------------------------------------------------------------------------------------

def run_ptmc(*args):
    return subprocess.run([sys.executable, "-m", "ptmc", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def _without_timing(text: str) -> str:
    """A run's text report, less what differs between runs (seconds) and the workers line."""
    import re
    lines = [line for line in text.splitlines() if not line.startswith("  on 2 workers (started in ")]
    return re.sub(r"\d+\.\d+s$", "", "\n".join(lines), flags=re.M)


@pytest.mark.parametrize("variant, code", [([], 0), (["--variant", "semi_rcu_fallback"], 1)])
def test_two_ray_workers_give_the_single_process_result(tmp_path, variant, code):
    pytest.importorskip("ray")
    args = ["check", "properties/no_uaf.py", "--set", "walkers=0", *variant]
    single = run_ptmc(*args, "--out", str(tmp_path / "a"))
    distributed = run_ptmc(*args, "--workers", "2", "--out", str(tmp_path / "b"))
    assert single.returncode == distributed.returncode == code
    assert "  on 2 workers (started in " in distributed.stdout
    assert _without_timing(distributed.stdout.replace(str(tmp_path / "b"), "OUT")) == \
        _without_timing(single.stdout.replace(str(tmp_path / "a"), "OUT"))
    assert "Ray" not in distributed.stderr and "Traceback" not in distributed.stderr  # nothing of Ray's leaks out
    if code:  # the counterexample files are the same too
        dots = sorted((tmp_path / "a").glob("*.dot"))
        assert dots and all(d.read_text() == (tmp_path / "b" / d.name).read_text() for d in dots)


@pytest.mark.parametrize("args, message", [
    (["--cluster", "127.0.0.1:1"], "cannot reach the Ray cluster at 127.0.0.1:1"),
    (["--cluster", "nohost"], "--cluster takes HOST:PORT"),
    (["--workers", "2", "--symmetry"], "--symmetry does not combine with --workers or --cluster"),
    (["--workers", "0"], "Invalid value for '--workers'"),
])
def test_bad_cluster_options_are_one_line_errors(args, message):
    r = run_ptmc("check", "properties/no_uaf.py", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("ptmc: error: ") and message in r.stderr and len(r.stderr.splitlines()) == 1


def test_a_running_ray_cluster_by_address_gives_the_single_process_result(tmp_path):
    pytest.importorskip("ray")
    ray = [sys.executable, "-m", "ray.scripts.scripts"]
    port = "6391"
    started = subprocess.run([*ray, "start", "--head", "--port", port, "--num-cpus", "2",
                              "--include-dashboard", "false", "--disable-usage-stats"],
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    try:
        args = ["check", "properties/no_uaf.py", "--set", "walkers=0", "--set", "readers=0"]
        single = run_ptmc(*args, "--out", str(tmp_path))
        distributed = run_ptmc(*args, "--cluster", f"127.0.0.1:{port}", "--out", str(tmp_path))
    finally:
        subprocess.run([*ray, "stop"], capture_output=True, timeout=120)
    assert single.returncode == distributed.returncode == 0, distributed.stderr
    assert "  on 2 workers (started in " in distributed.stdout  # one worker per CPU the cluster offers
    assert _without_timing(distributed.stdout) == _without_timing(single.stdout)
