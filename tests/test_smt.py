"""z3 obligations, declared step effects and the link between them and exploration."""
from __future__ import annotations

import json
import textwrap

import pytest
import z3
from click.testing import CliRunner

from ptmc import workflow
from ptmc.cli import main
from ptmc.errors import ModelError, PtmcError
from ptmc.model import Param, load_module
from ptmc.properties import load_property
from ptmc.smt import Claim, obligation
from ptmc.smt.expr import Expr

from conftest import ROOT, edited_model

ARITH = ROOT / "properties" / "refcount_arith.py"
EXACT = ROOT / "properties" / "refcount2022_exact.py"
rc2022 = load_module(ROOT / "model" / "refcount2022.py", "model")
ARITH_NAMES = [o.name for o in load_property(ARITH).obligations]


def prove(**settings):
    return workflow.prove(ARITH, settings={k: str(v) for k, v in settings.items()})


def by_name(result):
    return {o.name: o for o in result.obligations}


@pytest.fixture(scope="module")
def defaults():
    return by_name(prove())


# --- every obligation, default sizes ---------------------------------------------------------

@pytest.mark.parametrize("name", ARITH_NAMES)
def test_each_obligation_is_proved_for_the_defaults(defaults, name):
    o = defaults[name]
    assert o.status == "proved", (o.detail, o.counterexample)
    assert o.counterexample == {}


def test_defaults_are_those_of_the_seed(defaults):
    params = defaults["pte_refcount_decodes"].params
    assert params == {"ptrs_per_pte": 512, "mapped_bits": 10, "zero_bits": 10, "zero_shift": 10,
                      "bits_per_long": 64}
    assert defaults["refcount2021_never_wraps"].params["max_tasks"] == 4 * 1024 * 1024  # PID_MAX_LIMIT


# --- wrong encodings fail, and the counterexample is real ------------------------------------

def _decoded(o):
    """Recompute the counterexample with the model's own encoding on Python ints."""
    p = o.params
    ref = rc2022.PteRef(p["mapped_bits"], p["zero_bits"], p["zero_shift"], p["bits_per_long"])
    cex = o.counterexample
    word = cex["mapped"] * ref.PTE_MAPPED_OFFSET + cex["zero"] * ref.PTE_ZERO_OFFSET
    assert word == cex["pte_refcount"]
    return ref.pte_mapped_count(word), ref.pte_zero_count(word)


@pytest.mark.parametrize("settings", [{"ptrs_per_pte": 1024},   # 10 bits cannot count 1024 entries
                                      {"ptrs_per_pte": 2048},   # arm64 with 16 KiB pages
                                      {"zero_shift": 9},        # the fields overlap in bit 9
                                      {"mapped_bits": 11}])     # ... or in bit 10
def test_wrong_encoding_fails_decoding_with_the_values_z3_found(settings):
    o = by_name(prove(**settings))["pte_refcount_decodes"]
    assert o.status == "failed"
    cex = o.counterexample
    assert cex["PTRS_PER_PTE"] == settings.get("ptrs_per_pte", 512)
    assert 0 <= cex["mapped"] <= cex["PTRS_PER_PTE"] and 0 <= cex["zero"] <= cex["PTRS_PER_PTE"]
    got = _decoded(o)
    assert got == (cex["pte_mapped_count"], cex["pte_zero_count"])
    assert got != (cex["mapped"], cex["zero"])  # decoding does not give the counts back
    text = o.counterexample_text()
    assert text.startswith(f"mapped={cex['mapped']}, zero={cex['zero']}, PTRS_PER_PTE=")
    assert f"pte_refcount={cex['pte_refcount']:#x}" in text


def test_too_narrow_mapped_field_makes_the_empty_test_lie():
    o = by_name(prove(mapped_bits=9))["empty_test_exact"]  # 9 bits: at most 511 of 512 entries
    assert o.status == "failed"
    cex = o.counterexample
    assert cex["mapped"] == 512 and cex["pte_mapped_count"] == 0  # a full page reads as empty
    assert _decoded(o)[0] == 0


def test_too_small_ptrs_field_makes_updates_spill_into_the_other_count():
    results = by_name(prove(ptrs_per_pte=1024))
    o = results["mapped_update_keeps_zero"]
    assert o.status == "failed"
    cex = o.counterexample
    ref = rc2022.PteRef()
    up = cex["pte_refcount"] + ref.PTE_MAPPED_OFFSET
    down = (cex["pte_refcount"] - ref.PTE_MAPPED_OFFSET) % 2**64
    assert (cex["added.pte_refcount"], cex["subtracted.pte_refcount"]) == (up, down)
    spilled = (cex["mapped"] < 1024 and ref.pte_zero_count(up) != cex["zero"]) or \
              (cex["mapped"] > 0 and ref.pte_zero_count(down) != cex["zero"]) or \
              (cex["mapped"] < 1024 and ref.pte_mapped_count(up) != cex["mapped"] + 1) or \
              (cex["mapped"] > 0 and ref.pte_mapped_count(down) != cex["mapped"] - 1)
    assert spilled
    # The symbolic proofs about counts do not depend on the widths: they still hold.
    assert results["refcount2022_counting_invariant_inductive"].status == "proved"


def test_2021_count_exceeds_int_max_but_never_wraps_to_zero(defaults):
    assert defaults["refcount2021_never_wraps"].status == "proved"
    o = by_name(prove(below_int_max="true"))["refcount2021_never_wraps"]
    assert o.status == "failed"
    cex = o.counterexample
    assert cex["true count"] > 2**31 - 1
    assert cex["true count"] == cex["entries"] + cex["visitor refs"] + cex["zapped entry refs"]
    assert cex["pte_refcount"] == cex["true count"] % 2**32 != 0
    assert cex["zapped entry refs"] <= cex["tasks"] * 512 and cex["visitor refs"] <= cex["tasks"]


def test_variant_breaks_the_inductive_proof_at_the_batched_update():
    result = workflow.prove(ARITH, variants=["refcount_outside_ptl"])
    o = by_name(result)["refcount2022_counting_invariant_inductive"]
    assert o.status == "failed"
    assert o.detail.startswith("step madvise.account_store (mm/pte_ref.c:pte_refcount_sub)")
    cex = o.counterexample
    # The symbolic shadow of the lost update: the snapshot read before another thread's
    # update is stale, and the store writes it back.
    assert (cex["old_mapped"], cex["old_zero"]) != (cex["mapped"], cex["zero"])
    assert cex["after.mapped"] == cex["old_mapped"] - cex["nr_mapped"]
    assert result.verdict == "violated" and result.exit_code == 1
    # Everything not about the variant still holds.
    assert [x.name for x in result.obligations if x.status != "proved"] == [o.name]


# --- time-outs are inconclusive, never proved -------------------------------------------------

@obligation({"bits": Param(64, "width")})
def factor_a_semiprime(p):
    """No two factors multiply to 4611686014132420609 ((2^31-1)^2): false, and hard to refute."""
    x, y = z3.BitVecs("x y", p.bits)
    n = (2**31 - 1) ** 2
    return Claim(given=[z3.UGT(x, 1), z3.UGT(y, 1), z3.ULT(x, n), z3.ULT(y, n)], goal=x * y != n,
                 show={"x": x, "y": y})


@obligation({"n": Param(4, "a bound")})
def bounded_by_n(p):
    """x below n is below n + 1."""
    x = z3.Int("x")
    return Claim(given=[x >= 0, x < p.n], goal=x < p.n + 1, show={"x": x})


def test_obligation_with_unsatisfiable_assumptions_is_refused_not_proved():
    assert bounded_by_n.run().status == "proved"
    with pytest.raises(PtmcError, match="bounded_by_n is vacuous with n=0: no value satisfies"):
        bounded_by_n.run({"n": "0"})


def test_zero_entries_per_table_is_refused():
    result = CliRunner().invoke(main, ["prove", str(ARITH), "--set", "ptrs_per_pte=0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == "ptmc: error: parameter ptrs_per_pte must be at least 1, got 0"


def test_solver_timeout_is_inconclusive():
    o = factor_a_semiprime.run(timeout=0.05)
    assert o.status == "inconclusive"
    assert o.detail  # z3's reason, e.g. "timeout" or "canceled"
    assert o.counterexample == {}


def test_inconclusive_obligation_makes_prove_exit_3(tmp_path):
    prop = tmp_path / "hard.py"
    prop.write_text(textwrap.dedent('''
        """A property whose only obligation cannot finish in time."""
        import z3
        from ptmc.smt import Claim, obligation

        @obligation()
        def factor(p):
            """(2^31-1)^2 has no factors: false, and hard for z3 to refute in time."""
            x, y = z3.BitVecs("x y", 64)
            n = (2**31 - 1) ** 2
            return Claim(given=[z3.UGT(x, 1), z3.UGT(y, 1), z3.ULT(x, n), z3.ULT(y, n)], goal=x * y != n)

        OBLIGATIONS = [factor]
    '''))
    result = CliRunner().invoke(main, ["prove", str(prop), "--timeout", "0.05"])
    assert result.exit_code == 3, result.output
    assert "INCONCLUSIVE" in result.output and "not a proof" in result.output


# --- the CLI -----------------------------------------------------------------------------------

def test_prove_command_exit_codes_and_json():
    runner = CliRunner()
    ok = runner.invoke(main, ["prove", str(ARITH)])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"refcount_arith: HOLDS, {len(ARITH_NAMES)} z3 obligations:")
    bad = runner.invoke(main, ["prove", str(ARITH), "--set", "ptrs_per_pte=1024", "--json"])
    assert bad.exit_code == 1
    data = json.loads(bad.output)
    assert data["verdict"] == "violated"
    decodes = next(o for o in data["obligations"] if o["name"] == "pte_refcount_decodes")
    assert decodes["status"] == "failed" and decodes["params"]["ptrs_per_pte"] == 1024
    assert set(decodes["counterexample"]) >= {"mapped", "zero", "PTRS_PER_PTE", "pte_refcount"}
    usage = runner.invoke(main, ["prove", str(ARITH), "--set", "nope=1"])
    assert usage.exit_code == 2 and "unknown parameter 'nope'" in usage.output


def test_check_runs_exploration_and_obligations(tmp_path):
    result = CliRunner().invoke(main, ["check", str(EXACT), "--variant", "refcount_outside_ptl",
                                       "--json", "--out", str(tmp_path)])
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["exploration_verdict"] == "violated" and data["verdict"] == "violated"
    assert data["violation"]["check"] == "pte_refcount exact"
    assert [o["status"] for o in data["obligations"]] == ["failed"]
    fine = workflow.check(EXACT)
    assert (fine.verdict, fine.explored_verdict) == ("holds", "holds")
    assert [o.status for o in fine.obligations] == ["proved"]


# --- the link: declared effects against the code ----------------------------------------------

COUNTING_MODEL = '''
"""A counter and the items it counts."""
from ptmc import Model, Param, Thread, step
from ptmc.kernel.pgtable import PageTables, present, pte_alloc_one, set_pte_at, pte_clear
from ptmc.smt import Counters


class PerTable(Counters):
    page = ("count", "entries")
    sizes = {"PTRS_PER_PTE": "entries"}
    domain = "0 <= entries <= PTRS_PER_PTE"
    invariant = "count == entries"

    def of_page(self, page):
        return {"count": page.field("count"), "entries": sum(e is not None for e in page.entries)}


class Filler(Thread):
    @step("mm/memory.c:do_anonymous_page", effect=EFFECT)
    def fill(self, s):
        table = s.pmd
        set_pte_at(s, table, 0, present(1))
        s.store(table.field("count"), s.load(table.field("count")) + INCREMENT)


class Counting(Model):
    entries = Param(2, "entries")
    counters = PerTable()

    def init(self, mem):
        PageTables(mem, pages=1, entries=self.entries, fields={"count": INITIAL})
        mem.pmd = pte_alloc_one(mem)

    def threads(self):
        return [Filler("filler")]
'''

GOOD_EFFECT = '{"when": "entries < PTRS_PER_PTE", "entries": "entries + 1", "count": "count + 1"}'


def counting_model(tmp_path, effect=GOOD_EFFECT, increment=1, initial=0, checks="counting_invariant()"):
    path = tmp_path / "counting.py"
    path.write_text(COUNTING_MODEL.replace("EFFECT", effect).replace("INCREMENT", str(increment))
                    .replace("INITIAL", str(initial)))
    prop = tmp_path / "p.py"
    prop.write_text(f'"""Counts."""\nfrom ptmc.smt import counting_invariant, inductive\n'
                    f'from ptmc.properties import never\n'
                    f'MODEL = {str(path)!r}\nCHECKS = [{checks}]\nOBLIGATIONS = [inductive()]\n')
    return prop


def test_code_that_matches_its_effect_passes(tmp_path):
    result = workflow.check(counting_model(tmp_path))
    assert result.verdict == "holds" and result.states == 2
    assert [o.status for o in result.obligations] == ["proved"]


def test_effect_that_disagrees_with_the_code_is_caught_by_the_link(tmp_path):
    # The code adds 2, the declared effect 1: z3 proves the (declared) effect fine, so only the
    # link can tell that the explored step is not the step z3 reasoned about.
    result = workflow.check(counting_model(tmp_path, increment=2))
    assert result.explored_verdict == "violated"
    assert [o.status for o in result.obligations] == ["proved"]
    v = result.violation
    assert (v.check, v.kind) == ("effects match code", "effects")
    assert v.message == ("filler.fill (mm/memory.c:do_anonymous_page) changed pt0: count 0->2, "
                         "entries 0->1; declared: 'when entries < PTRS_PER_PTE: entries := entries + 1, "
                         "count := count + 1' expects count 0->1, entries 0->1")
    assert [(st.thread, st.step) for st in result.trace] == [("filler", "fill")]


def test_step_without_declared_effect_that_changes_a_counter_is_an_error(tmp_path):
    result = workflow.check(counting_model(tmp_path, effect="None"))
    assert result.violation.check == "effects match code"
    assert result.violation.message.endswith("changed pt0: count 0->1, entries 0->1, but declares no effect")


def test_effect_whose_condition_is_false_does_not_excuse_the_step(tmp_path):
    effect = '{"when": "entries == PTRS_PER_PTE", "entries": "entries + 1", "count": "count + 1"}'
    result = workflow.check(counting_model(tmp_path, effect=effect))
    assert "no declared effect applies (each 'when' is false)" in result.violation.message


def test_initial_state_must_satisfy_the_counting_invariant(tmp_path):
    result = workflow.check(counting_model(tmp_path, initial=5, checks='never("use-after-free")'))
    assert result.violation.check == "effects match code"
    assert result.violation.message.startswith("the initial state breaks the counting invariant on pt0")
    assert result.depth == 0 and result.trace == []


def test_wrong_effect_in_the_2021_model_is_caught(tmp_path):
    """A real model: declare that pte_put_many() drops one reference, while it drops refs."""
    model = edited_model(tmp_path, "refcount2021", '"refcount": "refcount - refs", "refs": "0"',
                         '"refcount": "refcount - 1", "refs": "0"')
    result = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=model)
    assert result.verdict == "violated"
    assert result.violation.check == "effects match code"
    assert ".put (include/linux/pte_ref.h:pte_put_many) changed pt0: refcount" in result.violation.message
    # This wrong effect is also inconsistent on its own (refs := 0 but only one reference
    # dropped), so z3 fails it too; the counting model above shows a wrong effect only the
    # link can catch.
    from ptmc.smt import inductive
    assert inductive(str(model)).run().status == "failed"


def test_the_2021_model_does_what_its_effects_say(tmp_path):
    result = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=ROOT / "model" / "refcount2021.py")
    assert result.verdict == "holds"  # every transition passed the link


# --- declarations are checked --------------------------------------------------------------------

def test_effect_on_an_unknown_counter_is_a_model_error(tmp_path):
    prop = counting_model(tmp_path, effect='{"cnt": "cnt + 1"}')
    with pytest.raises(ModelError, match="sets 'cnt', which is not a page or thread counter"):
        workflow.check(prop)


def test_expression_language_is_restricted():
    with pytest.raises(ModelError, match="uses Call"):
        Expr("len(x)", "here")
    with pytest.raises(ModelError, match="cannot parse"):
        Expr("a +", "here")


@pytest.mark.parametrize("text", ["a + 2 * b - 3", "a < b <= 7", "not a or b == 0", "a if b else -b",
                                  "(a > 0) == (b > 0)", "a and b"])
def test_expressions_mean_the_same_concretely_and_in_z3(text):
    e = Expr(text, "test")
    for a in (-2, 0, 1, 3):
        for b in (-1, 0, 2, 7):
            concrete = e.value({"a": a, "b": b})
            term = z3.simplify(e.z3({"a": z3.IntVal(a), "b": z3.IntVal(b)}))
            if z3.is_bool(term):
                assert z3.is_true(term) == bool(concrete), (text, a, b)
            else:
                assert term.as_long() == concrete, (text, a, b)


# --- the link's fast path agrees with measuring everything -------------------------------------

def _naive(link, state, tr, nxt):
    """The link's verdict when every page is measured in full, before and after."""
    meter = link.meter
    for k in range(len(meter.pages)):
        page, vb, tb = meter.measure_page(k, state)
        _, va, ta = meter.measure_page(k, nxt)
        old, new = {**vb, **tb[tr.tid]}, {**va, **ta[tr.tid]}
        if old != new and (message := link._explain(tr, page, old, new)):
            return message
    return None


def _wrong_2021(tmp_path):
    source = (ROOT / "model" / "refcount2021.py").read_text()
    model = tmp_path / "wrong2021.py"
    model.write_text(source.replace('"refcount": "refcount - refs", "refs": "0"', '"refcount": "refcount - 1", "refs": "0"')
                     .replace('"entries": "entries - 1", "refs": "refs + 1"', '"entries": "entries - 1"'))
    return model


@pytest.mark.parametrize("case", ["2021", "2021-wrong", "2022-outside-ptl", "2022-narrow"])
def test_fast_change_detection_agrees_with_measuring_everything(tmp_path, monkeypatch, case):
    from ptmc.explore import System, explore
    from ptmc.model import load_model_class
    path, params, variants = {
        "2021": (ROOT / "model" / "refcount2021.py", {}, []),
        "2021-wrong": (_wrong_2021(tmp_path), {}, []),
        "2022-outside-ptl": (ROOT / "model" / "refcount2022.py", {"zaps": 2}, ["refcount_outside_ptl"]),
        "2022-narrow": (ROOT / "model" / "refcount2022.py", {"mapped_bits": 1}, []),
    }[case]
    system = System(load_model_class(path)(params, variants))
    states = explore(system, []).store.states  # no observers: every state, wrong or not
    [link] = system.model.observers(system)
    reported = 0
    for state in states:
        for tr, nxt in system.successors(state):
            fast = link.transition(state, tr, nxt)
            assert fast == _naive(link, state, tr, nxt), (case, tr)
            reported += fast is not None
    # With two zaps a lost update can also leave a stale count smaller than what a zap
    # subtracts: the unsigned long borrows across the fields, which no declared effect covers.
    assert (reported > 0) == (case in ("2021-wrong", "2022-narrow", "2022-outside-ptl"))
