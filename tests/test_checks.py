"""What a check covers and refuses: witnesses and unreached steps on tiny models, model-declared
events, what a check needs from a model, thread views for properties, the set-up a model must
do, and paths that end in undefined behaviour."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT, edited_model
from ptmc import DONE, Model, Thread, step, workflow
from ptmc.errors import ModelError, PtmcError
from ptmc.explore import check_model
from ptmc.kernel import EVENTS
from ptmc.kernel.rcu import rcu_read_lock, rcu_read_unlock
from ptmc.properties import at_end, invariant, never, reachable
from ptmc.render import text


def flipper(look=None):
    """A thread that sets a flag (or not), then looks at it: ``look(s)`` may report events."""

    class Flipper(Thread):
        seen: bool = False

        @step("test.c:flip")
        def flip(self, s):
            if s.choose("flip", (False, True)):
                s.flag = True

        @step("test.c:look")
        def look(self, s):
            self.seen = s.flag
            if look is not None:
                look(s)
            return DONE

        @step("test.c:never_runs")
        def never_runs(self, s):
            s.report("bad-unlock", "a step nothing reaches")

    return Flipper


class Flip(Model):
    name = "flip"
    EVENTS = {"double-queue": "a request queued on a list it is already on"}

    def __init__(self, look=None):
        super().__init__()
        self.look = look

    def init(self, mem):
        mem.flag = False

    def threads(self):
        return [flipper(self.look)("f")]


# --- witnesses and unreached steps ----------------------------------------------------------

def test_unreached_steps_are_reported():
    r = check_model(Flip(), [])
    assert r.unreached == {"f": ["test.c:never_runs [never_runs]"]}


def test_state_witness_is_found_at_its_shortest():
    r = check_model(Flip(), [reachable(lambda s: s.flag, "the flag is set")], witness_traces=["the flag is set"])
    [w] = r.witnesses
    assert (r.verdict, w.found, w.length) == ("holds", True, 1)
    assert [(t.thread, t.step, t.choices) for t in w.trace] == [("f", "flip", [("flip", "true")])]


def test_step_witness_with_next_step():
    r = check_model(Flip(), [reachable("f.flip->look"), reachable("*.look->done")])
    assert [(w.name, w.found, w.length) for w in r.witnesses] == [("f.flip->look", True, 1),
                                                                  ("*.look->done", True, 2)]


def test_transition_witness_sees_before_and_after():
    def set_by_flip(before, after):
        return not before.flag and after.flag
    r = check_model(Flip(), [reachable(set_by_flip)])
    assert r.witnesses[0].found and r.witnesses[0].length == 1


def test_witness_not_found_fails_the_run():
    r = check_model(Flip(), [reachable("f.never_runs", "the dead step runs")])
    assert (r.verdict, r.exit_code) == ("violated", 1)
    assert (r.violation.kind, r.violation.check) == ("reachable", "f.never_runs")
    assert r.violation.message == "witness not found: the dead step runs"
    assert "==> witness f.never_runs not found: the dead step runs" in text.render(r)


def test_witness_naming_a_missing_thread_or_step_is_an_input_error():
    with pytest.raises(PtmcError, match="no thread 'zap'"):
        check_model(Flip(), [reachable("zap.flip")])
    with pytest.raises(PtmcError, match="no thread 'f' has a step 'flop'"):
        check_model(Flip(), [reachable("f.flop")])
    with pytest.raises(PtmcError, match="has no step 'nowhere' to go on to"):
        check_model(Flip(), [reachable("f.flip->nowhere")])
    with pytest.raises(PtmcError, match="no witness named 'nope'"):
        check_model(Flip(), [], witness_traces=["nope"])


def test_a_violation_leaves_unfound_witnesses_unknown():
    r = check_model(Flip(lambda s: s.report("double-queue", "queued twice")),
                    [never("double-queue"), reachable("f.flip"), reachable("f.never_runs")])
    assert r.verdict == "violated" and r.violation.check == "never double-queue"
    assert [w.found for w in r.witnesses] == [True, None]


# --- events ---------------------------------------------------------------------------------

def test_a_model_declares_its_own_bad_events():
    def requeue(s):
        if s.flag:
            s.report("double-queue", "f queues the request twice")

    r = check_model(Flip(requeue), [never("double-queue")])
    assert r.verdict == "violated" and r.violation.message == "f queues the request twice"
    assert r.trace[-1].events == [("double-queue", "f queues the request twice")]


def test_an_undeclared_event_is_a_model_error():
    with pytest.raises(ModelError, match="reports event 'double-queu', which neither"):
        check_model(Flip(lambda s: s.report("double-queu", "typo")), [])


def test_only_checked_events_are_marked_as_the_bug():
    def two(s):
        s.report("double-queue", "first")
        s.report("bad-unlock", "second")

    out = text.render(check_model(Flip(two), [never("bad-unlock")]))
    assert "!! bad-unlock" in out and "note: double-queue" in out and "!! double-queue" not in out


def test_every_primitive_event_is_checked_by_a_shipped_property():
    checked = set()
    for prop in (ROOT / "properties").glob("*.py"):
        for node in ast.walk(ast.parse(prop.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "never"
                    and isinstance(node.args[0], ast.Constant)):
                checked.add(node.args[0].value)
    assert set(EVENTS) <= checked, set(EVENTS) - checked


def test_unlocking_pml_twice_is_caught_by_no_deadlock(tmp_path):
    """The issue's planted bug: the fast path's give-up unlocks pml although its trylock failed."""
    model = edited_model(tmp_path, "reclaim", """            self.direct_reclaim = False
            return self.before_unlock()""", """            self.direct_reclaim = False
            spin_unlock(s, pmd_lockptr(s))
            return self.before_unlock()""")
    # With ptl == pml the trylock always fails, and the zap then unlocks its own ptl too.
    r = workflow.check(ROOT / "properties" / "no_deadlock.py", model_path=model,
                       settings={"split_ptlocks": "false"})
    assert r.verdict == "violated" and r.violation.check == "never bad-unlock"


# --- what checks need from a model ------------------------------------------------------------

def test_check_needing_what_a_model_does_not_maintain_is_refused():
    with pytest.raises(PtmcError, match="check 'allocated_is_reachable' needs a model that maintains "
                                        "nr_ptes; model refcount2021 does not"):
        workflow.check(ROOT / "properties" / "no_leak.py", model_path=ROOT / "model" / "refcount2021.py")
    with pytest.raises(PtmcError, match="needs a model that maintains mapcount"):
        workflow.check(ROOT / "properties" / "no_lost_pte.py", model_path=ROOT / "model" / "refcount2022.py")


def test_properties_read_threads_by_name():
    def f_finished_with_what_it_saw(s):
        f = s.thread("f")
        assert [t.name for t in s.threads()] == ["f"] and s.threads("g") == []
        return True if f.pc == "done" and f.seen is False else f"f at {f.pc}, saw {f.seen}"

    r = check_model(Flip(), [at_end(f_finished_with_what_it_saw)])
    assert r.verdict == "holds"  # the finished thread's locals are back to their initial values

    def at_look_the_flag_is_what_it_will_see(s):
        return s.thread("f").pc != "look" or s.thread("f").seen is False
    assert check_model(Flip(), [invariant(at_look_the_flag_is_what_it_will_see)]).verdict == "holds"


def test_reading_an_unknown_thread_or_local_says_what_exists():
    with pytest.raises(ModelError, match=r"no thread named 'zap' \(threads: f\)"):
        check_model(Flip(), [invariant(lambda s: s.thread("zap").pc)])
    with pytest.raises(ModelError, match=r"thread f has no local 'table' \(locals: seen\)"):
        check_model(Flip(), [invariant(lambda s: s.thread("f").table)])


# --- set-up ---------------------------------------------------------------------------------

class Reader(Thread):
    @step("mm/test.c:read")
    def read(self, s):
        rcu_read_lock(s)

    @step("mm/test.c:done")
    def unlock(self, s):
        rcu_read_unlock(s)
        return DONE


def test_a_forgotten_set_up_call_fails_when_the_model_is_built():
    class NoRcu(Model):
        name = "norcu"

        def init(self, mem):
            mem.x = 0

        def threads(self):
            return [Reader("r")]

    with pytest.raises(ModelError, match=r"step r.read reaches rcu_read_lock\(\), which uses rcu_readers; "
                                         r"its init\(\) never declared it: call rcu_init\(mem\)"):
        check_model(NoRcu(), [])


def test_a_gather_without_its_rcu_head_fails_when_the_model_is_built(tmp_path):
    model = edited_model(tmp_path, "reclaim", 'mmu_gather_init(mem, numbered("zap", self.zaps))',
                         'mmu_gather_init(mem, [])')
    with pytest.raises(ModelError, match="thread zap needs zap.tlb_batch_rcu, which init.. never declared: "
                                         "call mmu_gather_init"):
        workflow.check(ROOT / "properties" / "no_uaf.py", model_path=model)


# --- undefined behaviour ends a path -------------------------------------------------------

def test_a_path_ends_at_an_unchecked_use_after_free():
    def uaf_then_misuse(s):
        if s.flag:
            s.report("use-after-free", "f reads freed memory")
            s.flag = "corrupt"

    r = check_model(Flip(uaf_then_misuse), [invariant(lambda s: s.flag != "corrupt" or "corrupt")])
    # initial; flag false or true at look; done with flag false. The use-after-free path ends.
    assert (r.verdict, r.states, r.crashed) == ("holds", 4, 1)
    assert "note: 1 transitions end in a use-after-free" in text.render(r)
    assert check_model(Flip(uaf_then_misuse), [never("use-after-free")]).verdict == "violated"


# --- ptmc ablate --------------------------------------------------------------------------------

ABLATION = ROOT / "tests" / "data" / "ablation"


def test_ablate_prints_which_guard_protects_what(tmp_path):
    from click.testing import CliRunner
    from ptmc.cli import main
    out = CliRunner().invoke(main, ["ablate", str(ABLATION / "counts.py"), str(ABLATION / "fresh.py"),
                                    "--jobs", "2", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert out.stdout == """\
Guards of model guards, each switched off in turn; cells: defaults; violated (shortest counterexample length).

| guard | reason | counts | fresh | states | finding |
|---|---|---|---|---|---|
| `(all guards on)` | the code as it is | holds | holds | 112 |  |
| `counter_lock` | x++ is a read and a write: without the lock an update is lost | **violated** (11) | holds | 252 | needed for counts |
| `sane_value` | x is never negative (redundant: nothing makes it negative) | holds | holds | 112 | not needed here (tried: defaults); either an actor that needs it is missing, or the check is redundant |
| `revalidate` | the object may be retired between the lookup and the use | holds | **violated** (3) | 112 | needed for fresh |
"""
    # one progress line per run, and each violation's counterexample written like any other
    assert len([line for line in out.stderr.splitlines() if line.strip().startswith("[")]) == 8
    assert {p.name for p in tmp_path.glob("*.txt")} == {"counts-guards-without-counter_lock.txt",
                                                        "fresh-guards-without-revalidate.txt"}


def test_without_switches_a_guard_off_and_names_it():
    r = workflow.check(ABLATION / "fresh.py", without=["revalidate"])
    assert r.verdict == "violated" and r.without == ["revalidate"]
    assert "without=revalidate" in text.render(r).splitlines()[0]
    with pytest.raises(PtmcError, match="unknown guard 'revalidat' for model guards .known: counter_lock, "
                                        "sane_value, revalidate."):
        workflow.check(ABLATION / "fresh.py", without=["revalidat"])


def test_ablate_pairs_and_json():
    from ptmc import ablation
    from ptmc.render import ablation as render
    plan, runs = ablation.plan([ABLATION / "counts.py"], pairs=True)
    assert plan.rows == [(), ("counter_lock",), ("sane_value",), ("revalidate",),
                         ("counter_lock", "sane_value"), ("counter_lock", "revalidate"), ("sane_value", "revalidate")]
    ablation.run(plan, runs, jobs=1)
    data = render.to_dict(plan)
    # with counts alone, revalidate protects nothing checked: its declared actor is named
    assert [row["finding"] for row in data["rows"]][4:] == ["needed for counts", "needed for counts",
                                                            "not needed here (tried: defaults); needed against: "
                                                            "a retirer"]


# --- ptmc matrix --------------------------------------------------------------------------------

def test_matrix_checks_every_allowed_configuration(tmp_path):
    from click.testing import CliRunner
    from ptmc.cli import main
    from ptmc.kernel.config import allowed
    example = ROOT / "docs" / "examples" / "retract_no_uaf.py"
    out = CliRunner().invoke(main, ["matrix", str(example), "--variant", "free_at_once", "--jobs", "2"])
    assert out.exit_code == 0, out.output
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 2 * len(allowed()) == 60  # each configuration: mainline, then the variant
    assert all(r.endswith("| mainline | holds (20) |") for r in rows[0::2])
    assert all("| free_at_once | **violated** (18) |" in r for r in rows[1::2])
    assert rows[0].startswith("| y | y | y | ipi | y | y |")
    out = CliRunner().invoke(main, ["matrix", str(example), "--set", "tlb_flush=ipi"])
    assert out.exit_code == 2 and "the matrix varies the kernel configuration itself" in out.stderr
