"""The merged PT_RECLAIM model: the verdicts issue 3 asks for, with exact state counts, and
counterexamples of the shape of the bugs the variants reintroduce."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ptmc import workflow
from ptmc.actors.khugepaged import Retract
from ptmc.cli import main
from ptmc.testing import assert_violated

from conftest import ROOT, WITHOUT_RETRACT, edited_model

PROPS = ["no_uaf", "no_lost_pte", "no_leak", "no_deadlock"]


def run(prop, *variants, without=(), **settings):
    return workflow.check(ROOT / "properties" / f"{prop}.py", variants=variants, without=without,
                          settings={k: str(v) for k, v in {**WITHOUT_RETRACT, **settings}.items()})


def test_default_no_uaf_includes_retract(monkeypatch, tmp_path):
    """THE ONE TEST OF THE TRUE DEFAULT RUN of properties/no_uaf.py (~15 s; every other test
    runs it with WITHOUT_RETRACT): `ptmc check properties/no_uaf.py` has zap, fault, walker,
    reader and khugepaged's retract_page_tables() on a shmem VMA (the property's PARAMS), holds,
    and reaches every step of the retraction."""
    results = []  # the Result the command renders, for its thread list
    real = workflow.check
    monkeypatch.setattr(workflow, "check", lambda *a, **k: results.append(real(*a, **k)) or results[-1])
    out = CliRunner().invoke(main, ["check", str(ROOT / "properties" / "no_uaf.py"), "--json", "--out", str(tmp_path)])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert (r["model"], r["verdict"], r["states"]) == ("reclaim", "holds", 901292)
    assert (r["parameters"]["vma"], r["parameters"]["retracts"]) == ("shmem", 1)
    assert results[0].threads == ["zap", "fault", "walker", "reader", "retract", "rcu"]
    assert {"retract frees", "retract recheck"} <= {w["name"] for w in r["witnesses"] if w["found"]}
    # every step of khugepaged's own is taken; what is not is try_to_unmap()'s, which it inherits
    # for a mapped folio (collapse_file() unmaps one; here the faults map none of the old folios)
    khugepaged = [f"{s.kernel_function} [{s.name}]" for s in Retract.step_list() if s.owner is Retract]
    assert "mm/khugepaged.c:retract_page_tables [retract_pmd_lock]" in khugepaged
    assert "mm/pgtable-generic.c:pte_free_defer [retract_free]" in khugepaged
    assert not set(khugepaged) & set(r["unreached"]["retract"])
    assert r["unreached"]["retract"] == ["mm/page_vma_mapped.c:page_vma_mapped_walk [pvmw_pmd_lock]",
                                         "mm/page_vma_mapped.c:page_vma_mapped_walk [pvmw_pmd_locked]",
                                         "mm/rmap.c:try_to_unmap_one [set_swap_pte]"]


@pytest.mark.parametrize("prop", PROPS)
# 31,355 and 18,441 before the page-table world: the walker's walk_pmd_range() read and
# ACTION_AGAIN retry, the ro_nolock reader's lockless read, tlb_finish_mmu() as a step (it reads
# mm->tlb_flush_pending) add states; dead procedure locals that no longer linger remove some.
@pytest.mark.parametrize("split, states", [(True, 47815), (False, 27337)])
def test_mainline_holds_in_both_lock_configurations(prop, split, states):
    r = run(prop, split_ptlocks=split)
    assert r.model == "reclaim"
    assert r.verdict == "holds", r.violation
    assert r.states == states  # regression value of the default configuration
    assert r.deadlocks == 0


def test_semi_rcu_fallback_frees_under_a_walker():
    r = assert_violated(ROOT / "properties" / "no_uaf.py", variants=["semi_rcu_fallback"],
                        check="never use-after-free", steps=16, **WITHOUT_RETRACT)
    steps = [(st.thread, st.step) for st in r.trace]
    # The batch page allocation failed ...
    fail = next(i for i, st in enumerate(r.trace)
                if ("batch page allocation (GFP_NOWAIT) fails", "true") in st.choices)
    # ... so the table went to the IPI, which did not wait for the RCU reader, and was freed ...
    ipi = steps.index(("zap", "tlb_remove_table_sync_one"))
    freed = steps.index(("zap", "tlb_remove_table_now"))
    assert fail < ipi < freed == len(steps) - 2
    assert r.trace[freed].changes["pt0.state"] == ("allocated", "free")
    # ... while a walker that had mapped it under rcu_read_lock() then touched it.
    last = r.trace[-1]
    assert last.thread in ("walker", "reader")
    assert [k for k, _ in last.events] == ["use-after-free"]
    mapped = next(i for i, st in enumerate(r.trace) if st.thread == last.thread and "pmdval" in
                  {n.split(".", 1)[1] for n in st.changes if n.startswith(last.thread + ".")})
    assert mapped < freed


@pytest.mark.parametrize("split", [True, False])
def test_semi_rcu_is_only_a_use_after_free(split):
    for prop in ("no_lost_pte", "no_leak", "no_deadlock"):
        assert run(prop, "semi_rcu_fallback", split_ptlocks=split).verdict == "holds"


def test_without_pmd_same_recheck_writes_into_an_unlinked_table():
    r = run("no_lost_pte", without=["pmd_same_recheck"])
    assert r.verdict == "violated"
    assert r.violation.check == "never pte-in-unlinked-table"
    last = r.trace[-1]
    assert (last.thread, last.step) == ("fault", "anon_set_pte")
    assert [k for k, _ in last.events] == ["pte-in-unlinked-table"]
    # The fault read the pmd before reclaim unlinked the table, and locked it after.
    steps = [(st.thread, st.step) for st in r.trace]
    unlinked = next(i for i, (t, s) in enumerate(steps) if t == "zap" and s in ("clear_pmd", "slow_clear_pmd"))
    read = max(i for i, (t, s) in enumerate(steps) if t == "fault" and s == "map_pmd")
    locked = max(i for i, (t, s) in enumerate(steps) if t == "fault" and s == "map_spin_lock")
    assert read < unlinked < locked
    # RCU kept the table's memory alive: this is a lost mapping, not a use-after-free.
    assert run("no_uaf", without=["pmd_same_recheck"]).verdict == "holds"


def test_ptl_equal_pml_takes_the_slow_path():
    """With one lock, the fast path's trylock always fails: every reclaim goes through
    try_to_free_pte(), and the model never spins on the lock it holds."""
    r = run("no_deadlock", split_ptlocks=False)
    assert r.verdict == "holds"
    from ptmc.explore import System, explore
    from ptmc.model import load_model_class
    system = System(load_model_class(ROOT / "model" / "reclaim.py")({"split_ptlocks": False}))
    ex = explore(system, [])
    zap = system.threads[0]
    pc = {st.name: i for i, st in enumerate(zap.steps)}
    slot = system.layout.pc_slot[0]
    reached = {state[slot] for state in ex.store.states}
    assert pc["slow_clear_pmd"] in reached and pc["clear_pmd"] not in reached


GUP_ONLY = dict(gup_fast=1, walkers=0, readers=0, faults=0)


def test_semi_rcu_ipi_does_wait_for_gup_fast():
    """The IPI is held off by a CPU with IRQs disabled: GUP-fast alone is safe under the old
    semi-RCU free, which is why the bug only appeared with rcu_read_lock() walkers."""
    r = run("no_uaf", "semi_rcu_fallback", **GUP_ONLY)
    # 486 before: an IPI TLB flush now also waits for the IRQs-off GUP-fast (tlb_flush=ipi); 333
    # before GUP-fast was whole (ptmc.actors.gup): the grab, the back-off and the pin kept until
    # unpin_user_page() are steps of their own now
    assert (r.verdict, r.states) == ("holds", 594)


def test_gup_fast_is_an_rcu_reader_in_mainline():
    r = run("no_uaf", **GUP_ONLY)
    assert r.verdict == "holds" and r.states > 0
    ipi_free = run("no_uaf", "semi_rcu_fallback", **{**GUP_ONLY, "faults": 1})
    assert ipi_free.verdict == "violated"  # the fault's rw_nolock walk is an RCU reader
    assert ipi_free.trace[-1].thread == "fault"


def test_counterexample_steps_show_what_they_read():
    """Reads that change nothing are shown (the pmd a walker saw); primitives' bookkeeping
    (RCU grace periods, generations) is not."""
    r = run("no_lost_pte", without=["pmd_same_recheck"])
    fault_reads = [st.reads for st in r.trace if st.thread == "fault"]
    assert {"pmd": "pt0"} in fault_reads
    assert any(reads.get("pt0.e0") == "none" for reads in fault_reads)
    assert not any(name in ("rcu_gp", "rcu_readers", "pt0.gen") for st in r.trace for name in st.reads)


# --------------------------------------------------------------------------------------------
# Witnesses: the load-bearing paths are really taken, in both lock configurations.
# --------------------------------------------------------------------------------------------

RACE = dict(faults=2, walkers=0, readers=0, need_resched=False)  # small enough to lose pmd_install()
WITNESSES = {"zap.slow_clear_pmd", "rcu.rcu_do_batch", "zap.tlb_table_invalidate", "slow path gives up",
             "pmd_same retry", "fault.free_unpublished"}  # (no walker: no ACTION_AGAIN witness)


@pytest.mark.parametrize("split", [True, False])
def test_every_reclaim_path_is_witnessed(split):
    r = run("no_uaf", split_ptlocks=split, **RACE)
    assert r.verdict == "holds", r.violation
    found = {w.name: w.length for w in r.witnesses if w.found}
    # The fast path exists only with split ptlocks: with ptl == pml its trylock always fails.
    assert set(found) == WITNESSES | ({"zap.clear_pmd"} if split else set())
    assert all(w.found for w in r.witnesses)
    assert all(length > 0 for length in found.values())


def test_a_disabled_path_fails_the_run(tmp_path):
    """An edit that makes the fast path's trylock always fail changes no safety verdict, but
    the run says the fast-path witness was never found (exit code 1)."""
    model = edited_model(tmp_path, "reclaim", "if not spin_trylock(s, pmd_lockptr(s)):", "if True:")
    r = workflow.check(ROOT / "properties" / "no_uaf.py", model_path=model, settings=WITHOUT_RETRACT)
    assert r.verdict == "violated" and r.exit_code == 1
    assert r.violation.kind == "reachable" and r.violation.check == "zap.clear_pmd"
    assert r.violation.message.startswith("witness not found: fast-path reclaim")
    assert r.trace == []
    assert "mm/pt_reclaim.c:try_get_and_clear_pmd [clear_pmd]" in r.unreached["zap"]


def test_unreached_steps_of_the_default_run():
    r = run("no_uaf")
    expected = {
        "zap": ["mm/mmu_gather.c:tlb_remove_table_sync_one [tlb_remove_table_sync_one]",
                "mm/mmu_gather.c:__tlb_remove_table [tlb_remove_table_now]",  # semi-RCU only
                # tlb_flush_mmu() after the unlock: the forced flush under the ptl left nothing
                "include/asm-generic/tlb.h:tlb_flush_mmu_tlbonly [tlb_flush_mmu_tlbonly]",
                "mm/mmu_gather.c:tlb_batch_pages_flush [tlb_batch_pages_flush]"],  # no RCU table free only
        "fault": ["mm/memory.c:wp_page_copy [wp_page_copy]",  # a write fault on the zero page
                  "mm/memory.c:__pte_alloc [free_unpublished]"],  # needs a second fault
    }
    # No thread takes mmap_lock for write here, so nobody takes it for read (MmapReader).
    lock = ["include/linux/mmap_lock.h:mmap_read_lock [mmap_read_lock]",
            "include/linux/mmap_lock.h:mmap_read_unlock [mmap_read_unlock]"]
    assert {thread: steps[-2:] for thread, steps in r.unreached.items()} == dict.fromkeys(
        ["zap", "fault", "walker", "reader"], lock)
    assert {thread: steps[:-2] for thread, steps in r.unreached.items() if steps[:-2]} == expected


def test_with_an_mmap_lock_writer_every_other_thread_holds_it_for_read(tmp_path):
    """MmapReader: each thread's path runs between mmap_read_lock() and mmap_read_unlock(),
    whichever way it finishes; a read lock excludes nobody, so the verdicts stay."""
    model = edited_model(tmp_path, "reclaim", "        return self.anon_collapses + self.mremaps + self.munmaps\n",
                         "        return 1\n")
    for prop in ("no_uaf", "no_deadlock"):
        r = workflow.check(ROOT / "properties" / f"{prop}.py", model_path=model, settings=WITHOUT_RETRACT)
        assert r.verdict == "holds", prop
        assert not any("mmap_read" in step for steps in r.unreached.values() for step in steps)
        assert r.states == 162875  # (47,815 without the read locks)


def test_witness_trace_is_shortest_and_rendered():
    from ptmc.render import text
    r = workflow.check(ROOT / "properties" / "no_uaf.py", witnesses=["zap.clear_pmd"], settings=WITHOUT_RETRACT)
    [w] = [w for w in r.witnesses if w.name == "zap.clear_pmd"]
    assert w.found and w.length == len(w.trace) == 8
    assert (w.trace[-1].thread, w.trace[-1].step) == ("zap", "clear_pmd")
    out = text.render(r)
    assert "witness zap.clear_pmd: fast-path reclaim" in out and "8. try_get_and_clear_pmd()\n  [clear_pmd]" in out
