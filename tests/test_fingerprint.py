"""The fingerprint store (--store fingerprint) against the exact store: the same counts,
verdicts and counterexamples (rebuilt by replay) on generated and shipped models; fingerprints
are type-aware and the same on every run and machine."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT, WITHOUT_RETRACT
from ptmc import DONE, Model, Thread, step
from ptmc.explore import check_model
from ptmc.explore.fingerprint import collision_probability, encode, fingerprint
from ptmc.kernel.pgtable import pt
from ptmc.model import load_model_class
from ptmc.properties import at_end, never
from test_compiled import CHECK_SETS, PROGRAMS, make_model


def same_result(model_of, checks, **kw):
    exact, fp = (check_model(model_of(), checks, store=store, **kw) for store in ("exact", "fingerprint"))
    assert fp.store == "fingerprint" and exact.collision_probability is None
    if fp.verdict == "holds":
        generated = 1 + fp.transitions - fp.crashed  # the initial state and every transition stored
        assert fp.collision_probability == collision_probability(fp.states, generated)
    assert dataclasses.replace(fp, seconds=0, store="exact", collision_probability=None) == \
        dataclasses.replace(exact, seconds=0)
    return fp


def test_the_encoding_tells_types_apart():
    values = [False, 0, 0.0, True, 1, 1.0, None, "0", (0,), (False,), pt(0, 0), (0, 0), frozenset({1}),
              frozenset({True}), ((0, (False,)),), ((0, (0,)),)]
    assert len({encode(v) for v in values}) == len(values)
    assert fingerprint((False, 0)) != fingerprint((0, False)) != fingerprint((0, 0))


def test_fingerprints_do_not_depend_on_the_hash_seed():
    code = ("from ptmc.explore.fingerprint import fingerprint; from ptmc.kernel.pgtable import pt;"
            "print(fingerprint((None, False, 3, 'pml', (1, 2), pt(1, 2), frozenset({'a', 'b', 'c'}))))")
    seen = {subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT / "src")},
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert len(seen) == 1


@settings(max_examples=150, deadline=None)
@given(PROGRAMS, st.sampled_from(range(len(CHECK_SETS))))
def test_generated_models_agree(programs, checks):
    cls = make_model(programs)
    try:
        check_model(cls(), CHECK_SETS[checks])
    except Exception:  # noqa: BLE001 - refused programs are test_compiled's business
        return
    same_result(cls, CHECK_SETS[checks])


def test_reclaim_holds_and_its_violation_replays():
    cls = load_model_class(ROOT / "model" / "reclaim.py")
    r = same_result(lambda: cls(), [never("use-after-free")])
    assert (r.verdict, r.states) == ("holds", 47815) and 0 < r.collision_probability < 1e-6
    r = same_result(lambda: cls({}, ["semi_rcu_fallback"]), [never("use-after-free")])
    assert r.verdict == "violated" and len(r.trace) == 16


def test_state_limit_is_exact():
    cls = load_model_class(ROOT / "model" / "reclaim.py")
    r = same_result(lambda: cls(), [never("use-after-free")], max_states=1000)
    assert r.verdict == "inconclusive" and r.states == 1000


def test_many_values_in_one_slot_widen_the_queue():
    class Count(Thread):
        @step("x.c:count")
        def count(self, s):
            s.x = s.x + 1 if s.x < 70000 else s.x
            return "count" if s.x < 70000 else DONE

    class M(Model):
        def init(self, mem):
            mem.x = 0

        def threads(self):
            return [Count("t")]

    r = same_result(M, [at_end(lambda s: s.x == 70000)])
    assert r.states == 70001


def test_the_command_prints_the_collision_probability(tmp_path):
    old = [f"--set={k}={v}" for k, v in WITHOUT_RETRACT.items()]
    out = subprocess.run([sys.executable, "-m", "ptmc", "check", "properties/no_uaf.py", *old, "--store",
                          "fingerprint"],
                         cwd=ROOT, capture_output=True, text=True).stdout
    assert "fingerprint store: probability that a collision hid a state " in out
    out = subprocess.run([sys.executable, "-m", "ptmc", "check", "properties/no_uaf.py", *old, "--store",
                          "fingerprint", "--json"], cwd=ROOT, capture_output=True, text=True).stdout
    assert json.loads(out)["store"] == "fingerprint"
