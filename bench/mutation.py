"""Mutation bench: which rules of the engine and the kernel primitives do the tests, and the
verdicts, depend on?

Every mutant is one small change of one file of src/ptmc/kernel/, src/ptmc/explore/ or
src/ptmc/state.py, made by the AST mutator below (deterministic, no extra dependency): a
negated condition, a swapped comparison, an integer constant or slice bound off by one, a
deleted statement (assignment, call, raise, break, return value), any/all or and/or swapped,
+/-, &/| or <</>> swapped, a dropped unary operator, a dropped element of a tuple or list
literal, a loop over all but the last (or first) element, a flipped boolean constant. Each
mutant is written into a private copy of the working tree (the real sources are never edited;
one copy per job, run with PYTHONPATH pointing into it) and judged twice:

- **killed by the suite**: ``pytest -x`` over the whole test suite fails (fast files first),
  or runs past its time-out (a mutant that loops forever; counted as killed and reported apart);
- **changes a verdict**: some run of the *verdict corpus* ends with another outcome than the
  unmutated code: another verdict, violated check or counterexample length (BFS promises the
  shortest), or another state count (the rule models also fix the depth reported). The corpus
  is the shipped properties on their models and the violated variants of README's verdict
  table (``SHIPPED`` below, ~6 s) and the rule models of tests/rules/ (``rules.CASES``: one
  small model per rule, ~2 s). A mutant that makes a run raise, or explore more than twice
  its states, changes that run's outcome too.

Mutants in code that only renders or explains (``DISPLAY``: traces, state graphs, value
display, messages) are counted apart: no verdict can depend on them by design.

Both numbers are reported "before" (the suite without tests/test_rules.py, the corpus without
the rule models) and "with the rule models". A mutant's phases run only as far as needed: the
rule phases only for what the shipped phases left alive, and each phase stops at its first
failure. Results are cached in ``out/mutation/results.jsonl`` by mutant, phase and the hash of
what the phase reads, so adding a rule model re-runs only the rule phases of the survivors.

    python3 bench/mutation.py --list                 # the mutants, nothing run
    python3 bench/mutation.py --jobs 2               # every mutant (see the estimate below)
    python3 bench/mutation.py --sample 400 --jobs 2  # a deterministic sample (seeded)
    python3 bench/mutation.py --files src/ptmc/kernel/rcu.py --no-rules

Time on the reference machine (2 cores, shared): 1,329 mutants. A mutant the suite kills costs
2-10 s, one it does not kill 40-80 s (the whole suite, with the other job running), and the
shipped corpus up to ~10 s when no verdict changes: about 9 s a mutant with --jobs 2 on
average, so a full run is about 3.5 hours; the 600-mutant sample of README's "Mutation score"
took ~80 minutes, and re-running the rule phases after a change to the rule models takes a
few minutes (everything else comes from the cache).
"""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["src/ptmc/kernel", "src/ptmc/explore", "src/ptmc/state.py"]

# The suite, fastest-killing files first (pytest -x stops at the first failure); any test file
# not named here runs after them. RULE_TESTS is what "with the rule models" adds.
SUITE_ORDER = ["tests/test_primitives.py", "tests/test_engine.py", "tests/test_locks.py", "tests/test_tlb.py",
               "tests/test_folio.py", "tests/test_config.py", "tests/test_slots.py", "tests/test_checks.py",
               "tests/test_store.py", "tests/test_reclaim.py", "tests/test_refcount2021.py",
               "tests/test_refcount2022.py", "tests/test_golden.py", "tests/test_graph.py", "tests/test_smt.py",
               "tests/test_cli.py", "tests/test_reductions.py", "tests/test_docs.py"]
RULE_TESTS = ["tests/test_rules.py"]
# Tests that depend on timing (a SIGINT 3 s into a subprocess): on a loaded machine they can
# fail unmutated, so a failure there is tried once more before it counts.
FLAKY = ["test_interrupt_ends_a_long_run_as_inconclusive"]

# The shipped verdict corpus: every property on its default model (split ptlocks) and on the
# other model it names, no_deadlock and no_hw_walk_free with ptl == pml, and every violated row
# of README's verdict table, in both lock configurations where it is cheap (~12 s in all). The
# properties run on the compiled system (check_model's default engine). Each run is
# (property, model, variants ("-GUARD": --without GUARD), split_ptlocks, verdict, violated
# check, counterexample steps, states); the verdict is the whole outcome a user reads: which check failed and how long the
# shortest counterexample is. The list is checked against the unmutated code at the start of
# every run, so it cannot silently go stale.
SHIPPED = [
    ("no_deadlock", "reclaim", (), True, "holds", None, 0, 47815),
    ("no_hw_walk_free", "reclaim", (), True, "holds", None, 0, 5525),
    ("no_leak", "reclaim", (), True, "holds", None, 0, 47815),
    ("no_lost_pte", "reclaim", (), True, "holds", None, 0, 47815),
    ("no_uaf", "reclaim", (), True, "holds", None, 0, 47815),
    ("tlb_coherent", "reclaim", (), True, "violated", "never tlb-incoherent", 22, 3479),
    ("no_deadlock", "reclaim", (), False, "holds", None, 0, 27337),
    ("no_hw_walk_free", "reclaim", (), False, "holds", None, 0, 3694),
    ("tlb_coherent", "reclaim", (), False, "violated", "never tlb-incoherent", 27, 3438),
    ("no_uaf", "reclaim", ("semi_rcu_fallback",), True, "violated", "never use-after-free", 16, 4636),
    ("no_uaf", "reclaim", ("semi_rcu_fallback",), False, "violated", "never use-after-free", 20, 7232),
    ("no_lost_pte", "reclaim", ("-pmd_same_recheck",), True, "violated", "never pte-in-unlinked-table", 17, 6804),
    ("no_lost_pte", "reclaim", ("-pmd_same_recheck",), False, "violated", "never pte-in-unlinked-table", 21, 8511),
    ("tlb_coherent", "reclaim", ("semi_rcu_fallback",), True, "violated", "never tlb-incoherent", 22, 3449),
    ("tlb_coherent", "reclaim", ("-pmd_same_recheck",), True, "violated", "never tlb-incoherent", 20, 3246),
    ("no_deadlock", "refcount2021", (), True, "holds", None, 0, 1853),
    ("no_uaf", "refcount2021", (), True, "holds", None, 0, 1853),
    ("no_uaf", "refcount2021", (), False, "holds", None, 0, 1523),
    ("no_uaf", "refcount2021", ("no_try_get",), True, "violated", "never use-after-free", 15, 468),
    ("no_uaf", "refcount2021", ("no_try_get",), False, "violated", "never use-after-free", 15, 343),
    ("refcount2022_exact", "refcount2022", (), True, "holds", None, 0, 333),
    ("refcount2022_no_lost_mapping", "refcount2022", (), True, "holds", None, 0, 333),
    ("refcount2022_exact", "refcount2022", ("refcount_outside_ptl",), True, "violated", "pte_refcount exact", 13, 208),
    ("refcount2022_no_lost_mapping", "refcount2022", ("refcount_outside_ptl",), True, "violated",
     "no_mapping_in_unlinked_table", 20, 385),
]
# Cheap runs first: a mutant that changes a verdict is usually seen in the first second.
SHIPPED.sort(key=lambda e: e[-1])
# --set values of a run over its property's PARAMS: no_uaf's default on reclaim includes
# khugepaged's retract on a shmem VMA (901,292 states, ~14 s: too long to run for every
# mutant); the corpus keeps its run without it (the actor has its own tests in the suite).
SETTINGS = {("no_uaf", "reclaim"): {"vma": "anon", "retracts": 0}}

# Functions that only render or explain (traces, diagrams, messages): no verdict can depend on
# them by design, so their mutants are reported apart from the rules'.
DISPLAY = {
    "src/ptmc/state.py": {"show", "Layout.show_slot", "Layout.thread_name", "Layout.describe",
                          "Layout.changes", "Mem.actor", "_Recording.__init__", "_Recording.slot",
                          "_Recording.load", "_Recording.store"},
    "src/ptmc/kernel/rcu.py": {"_names", "_show_readers", "_show_head", "_show_gp"},
    "src/ptmc/kernel/spinlock.py": {"show_holder"},
    "src/ptmc/kernel/config.py": {"_show"},
    "src/ptmc/kernel/rwsem.py": {"show_rwsem"},
    "src/ptmc/kernel/pgtable.py": {"PT.__str__", "HugePmd.__str__", "PmdMigration.__str__", "PageRef.__str__",
                                   "_page"},
    "src/ptmc/kernel/pte.py": {"Present.__str__", "SwapPte.__str__", "Marker.__str__"},
    "src/ptmc/kernel/tlb.py": {"_show_stale", "_show_tlb", "_show_psc"},
    "src/ptmc/kernel/vma.py": {"Vma.__str__"},
    "src/ptmc/kernel/folio.py": {"Folio.__str__"},
    "src/ptmc/explore/bfs.py": {"_deadlock_message", "Store.path"},
    "src/ptmc/explore/trace.py": {"*"},
    "src/ptmc/explore/graph.py": {"*"},
}


# ============================================================================================
# The mutator
# ============================================================================================

@dataclass(frozen=True)
class Mutant:
    file: str  # relative to the repository root
    line: int
    col: int
    op: str
    start: int  # byte offsets of the replaced text in the file
    end: int
    new: str
    function: str  # enclosing function (qualified), or "<module>"
    shown: bool = False  # inside a cell's display argument (shown=, quiet=)

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.col}:{self.op}:{hashlib.sha1(self.new.encode()).hexdigest()[:6]}"

    def apply(self, source: bytes) -> bytes:
        return source[:self.start] + self.new.encode() + source[self.end:]

    def diff(self, source: bytes) -> tuple[str, str]:
        """The first changed line, before and after."""
        before = source.decode().splitlines()
        after = self.apply(source).decode().splitlines()
        i = self.line - 1
        return before[i].strip(), after[i].strip()

    @property
    def display(self) -> bool:
        names = DISPLAY.get(self.file, ())
        return self.shown or "*" in names or self.function in names or self.function.split(".")[0] in names


CMP_SWAP = {ast.Eq: "!=", ast.NotEq: "==", ast.Lt: "<=", ast.LtE: "<", ast.Gt: ">=", ast.GtE: ">",
            ast.Is: "is not", ast.IsNot: "is", ast.In: "not in", ast.NotIn: "in"}
BIN_SWAP = {ast.Add: "-", ast.Sub: "+", ast.BitAnd: "|", ast.BitOr: "&", ast.LShift: ">>", ast.RShift: "<<"}
SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr, ast.Raise, ast.Break, ast.Continue, ast.Return)


class _Mutator:
    def __init__(self, rel: str, source: bytes):
        self.rel, self.src = rel, source
        self.starts = [0]
        for line in source.split(b"\n"):
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.found: list[Mutant] = []
        self.scope: list[str] = []
        self.shown = 0  # depth inside shown=/quiet= arguments: how a cell is displayed

    def off(self, line: int, col: int) -> int:
        return self.starts[line - 1] + col

    def seg(self, node) -> str:
        return self.src[self.off(node.lineno, node.col_offset):self.off(node.end_lineno, node.end_col_offset)].decode()

    def add(self, node, op: str, new: str, *, whole=None) -> None:
        at = whole or node
        self.found.append(Mutant(self.rel, at.lineno, at.col_offset, op,
                                 self.off(at.lineno, at.col_offset), self.off(at.end_lineno, at.end_col_offset),
                                 new, ".".join(self.scope) or "<module>", self.shown > 0))

    # -- traversal -------------------------------------------------------------------------
    def visit(self, node, *, in_class=False, top=False) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.JoinedStr)):
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in node.decorator_list:
                self.visit(d)
            if not isinstance(node, ast.ClassDef):
                for default in node.args.defaults + [d for d in node.args.kw_defaults if d]:
                    self.visit(default)
            self.scope.append(node.name)
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                body = body[1:]  # the docstring
            for stmt in body:
                self.statement(stmt, in_class=isinstance(node, ast.ClassDef))
            self.scope.pop()
            return
        if isinstance(node, ast.keyword) and node.arg in ("shown", "quiet"):
            self.shown += 1
            self.visit(node.value)
            self.shown -= 1
            return
        self.expression(node)
        for field, value in ast.iter_fields(node):
            if field in ("annotation", "returns"):
                continue
            for child in value if isinstance(value, list) else [value]:
                if isinstance(child, ast.AST):
                    if isinstance(child, ast.stmt):
                        self.statement(child)
                    else:
                        self.visit(child)

    def statement(self, stmt, *, in_class=False, top=False) -> None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.visit(stmt)
            return
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            return
        in_function = bool(self.scope) and not in_class
        if isinstance(stmt, SIMPLE) and (in_function or (in_class and not self._slots(stmt))):
            if isinstance(stmt, ast.Return):
                if stmt.value is not None:
                    self.add(stmt, "return-value", "return")
            elif not (isinstance(stmt, ast.AnnAssign) and stmt.value is None):
                self.add(stmt, "delete", "pass")
        if isinstance(stmt, (ast.If, ast.While)):
            self.negate(stmt.test)
        if isinstance(stmt, ast.For):
            self.drop_iteration(stmt.iter)
        if isinstance(stmt, ast.AugAssign) and type(stmt.op) in BIN_SWAP:
            self.add(stmt, "binop", f"{self.seg(stmt.target)} {BIN_SWAP[type(stmt.op)]}= {self.seg(stmt.value)}")
        self.visit(stmt)

    @staticmethod
    def _slots(stmt) -> bool:
        return isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                    for t in stmt.targets)

    def visit_module(self, tree) -> None:
        for stmt in tree.body[1:] if ast.get_docstring(tree) else tree.body:
            self.statement(stmt, top=True)

    # -- expression operators ---------------------------------------------------------------
    def negate(self, test) -> None:
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            self.add(test, "negate", f"({self.seg(test.operand)})")
        else:
            self.add(test, "negate", f"(not ({self.seg(test)}))")

    def drop_iteration(self, it) -> None:
        self.add(it, "loop-drop-last", f"list({self.seg(it)})[:-1]")
        self.add(it, "loop-drop-first", f"list({self.seg(it)})[1:]")

    def expression(self, node) -> None:
        if isinstance(node, ast.IfExp):
            self.negate(node.test)
        elif isinstance(node, ast.comprehension):
            self.drop_iteration(node.iter)
            for cond in node.ifs:
                self.negate(cond)
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                ops = [self._op(o) for o in node.ops]
                ops[k] = CMP_SWAP[type(op)]
                text = f"({self.seg(node.left)})" + "".join(
                    f" {o} ({self.seg(c)})" for o, c in zip(ops, node.comparators))
                self.add(node, "compare", f"({text})")
        elif isinstance(node, ast.BoolOp):
            other = " and " if isinstance(node.op, ast.Or) else " or "
            self.add(node, "and-or", "(" + other.join(f"({self.seg(v)})" for v in node.values) + ")")
        elif isinstance(node, ast.BinOp) and type(node.op) in BIN_SWAP:
            self.add(node, "binop", f"(({self.seg(node.left)}) {BIN_SWAP[type(node.op)]} ({self.seg(node.right)}))")
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
            self.add(node, "unary", f"({self.seg(node.operand)})")
        elif isinstance(node, ast.Constant) and type(node.value) is bool:
            self.add(node, "bool", str(not node.value))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            self.add(node, "const+1", str(node.value + 1))
            self.add(node, "const-1", str(node.value - 1))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("any", "all"):
            self.add(node.func, "any-all", "all" if node.func.id == "any" else "any")
        elif isinstance(node, ast.Slice):
            for bound in (node.lower, node.upper):
                if bound is not None and not isinstance(bound, ast.Constant):
                    self.add(bound, "slice+1", f"({self.seg(bound)}) + 1")
                    self.add(bound, "slice-1", f"({self.seg(bound)}) - 1")
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)) and isinstance(getattr(node, "ctx", ast.Load()), ast.Load) \
                and 2 <= len(node.elts) <= 6 and not any(isinstance(e, ast.Starred) for e in node.elts) \
                and self.seg(node)[:1] in "([{":
            for k in range(len(node.elts)):
                rest = [self.seg(e) for i, e in enumerate(node.elts) if i != k]
                open_, close = {ast.Tuple: "()", ast.List: "[]", ast.Set: "{}"}[type(node)]
                text = ", ".join(rest) + ("," if isinstance(node, ast.Tuple) and len(rest) == 1 else "")
                if isinstance(node, ast.Set) and not rest:
                    continue
                self.add(node, "drop-element", f"{open_}{text}{close}")

    @staticmethod
    def _op(op) -> str:
        return {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
                ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}[type(op)]


def target_files(selected=None) -> list[str]:
    files = []
    for t in TARGETS:
        p = ROOT / t
        files += sorted(str(f.relative_to(ROOT)) for f in ([p] if p.is_file() else p.glob("*.py")))
    if selected:
        wanted = {str((Path.cwd() / s).resolve().relative_to(ROOT)) for s in selected}
        files = [f for f in files if f in wanted or any(f.startswith(w.rstrip("/") + "/") for w in wanted)]
    return files


def mutants_of(rel: str) -> list[Mutant]:
    source = (ROOT / rel).read_bytes()
    tree = ast.parse(source)
    m = _Mutator(rel, source)
    m.visit_module(tree)
    original = ast.dump(tree)
    out, seen = [], set()
    for mutant in sorted(m.found, key=lambda x: (x.start, x.end, x.op, x.new)):
        text = mutant.apply(source)
        try:
            dumped = ast.dump(ast.parse(text))
        except SyntaxError:
            continue
        if dumped == original or dumped in seen:  # no change, or the same mutant as another
            continue
        seen.add(dumped)
        out.append(mutant)
    return out


def all_mutants(files=None) -> list[Mutant]:
    return [m for f in target_files(files) for m in mutants_of(f)]


# ============================================================================================
# The verdict corpus (runs inside a job's copy, on the mutated code)
# ============================================================================================

def outcome(result) -> list:
    """What a corpus run compares: verdict, violated check, counterexample steps, states."""
    return [result.verdict, result.violation.check if result.violation else None, len(result.trace),
            result.states]


def corpus_entries(which: str, root: Path):
    """(name, run, expected) triples; ``run()`` returns the outcome."""
    from ptmc.explore import check_model
    from ptmc.model import load_model_class
    from ptmc.properties import load_property

    def shipped(prop, model, variants, split, verdict, check, steps, states):
        def run():
            p = load_property(root / "properties" / f"{prop}.py")
            cls = load_model_class(root / "model" / f"{model}.py")
            m = cls({**p.params_for(cls), **SETTINGS.get((prop, model), {}), "split_ptlocks": split},
                    [*p.variants, *(v for v in variants if not v.startswith("-"))],
                    without=[v[1:] for v in variants if v.startswith("-")])
            return outcome(check_model(m, p.checks, property_name=prop, max_states=2 * states + 100))
        name = f"{prop} {model} {'+'.join(variants) or '-'} {'split' if split else 'ptl==pml'}"
        return name, run, [verdict, check, steps, states]

    if which == "shipped":
        return [shipped(*e) for e in SHIPPED]
    sys.path.insert(0, str(root / "tests"))
    import rules

    from rules.case import ENGINES

    def rule(case, engine):  # the rule models also fix the depth reported (BFS levels, or the counterexample's)
        def run():
            return list(case.outcome(guard=True, engine=engine))
        return f"{case.name} [{engine}]", run, list(case.expected)
    # Each on the reference interpreter and on the compiled system every command runs, so that
    # a mutant of either (explore/system.py, explore/compiled.py) can change a verdict.
    return [rule(c, engine) for c in rules.CASES for engine in ENGINES]


def corpus_main(which: str, root: Path, stop_early: bool) -> int:
    """Run a corpus; print one JSON line per run; exit 1 at the first run that differs."""
    differs = 0
    for name, run, expected in corpus_entries(which, root):
        try:
            got = run()
        except Exception as e:  # noqa: BLE001 - a mutant may break anything: that is a change
            got = [f"error: {type(e).__name__}: {str(e)[:200]}"]
        print(json.dumps({"name": name, "got": got, "expected": expected}), flush=True)
        if got != expected:
            differs = 1
            if stop_early:
                break
    return differs


# ============================================================================================
# Running mutants
# ============================================================================================

PHASES = ("suite", "corpus", "rule_suite", "rule_corpus")


def tree_hash(paths) -> str:
    h = hashlib.sha1()
    for p in paths:
        p = ROOT / p
        files = sorted(f for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file() and "__pycache__" not in f.parts)
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def suite_files(with_rules: bool) -> list[str]:
    present = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").glob("test_*.py"))
    ordered = [f for f in SUITE_ORDER if f in present] + [f for f in present if f not in SUITE_ORDER]
    return [f for f in ordered if f not in RULE_TESTS] if not with_rules else [f for f in RULE_TESTS if f in present]


def phase_inputs() -> dict[str, str]:
    src = tree_hash(["src"])
    shipped = tree_hash(["tests/conftest.py", "tests/golden", "model", "properties", "README.md", "docs",
                         *suite_files(False)])
    rules = tree_hash(["tests/rules", *RULE_TESTS]) if (ROOT / "tests/rules").is_dir() else "none"
    me = hashlib.sha1(repr((SHIPPED, SETTINGS)).encode()).hexdigest()[:8]  # the corpus, not the report code
    return {"suite": f"{src}-{shipped}", "corpus": f"{src}-{shipped}-{me}",
            "rule_suite": f"{src}-{rules}", "rule_corpus": f"{src}-{rules}-{me}"}


class Job:
    """One private copy of the working tree, where one mutant at a time is written."""

    def __init__(self, base: Path, k: int):
        self.root = base / f"job{k}"
        ignore = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".hypothesis", "out",
                                        ".benchmarks", "*.egg-info")
        shutil.copytree(ROOT, self.root, ignore=ignore)
        self.env = {**os.environ, "PYTHONPATH": str(self.root / "src"), "PYTHONDONTWRITEBYTECODE": "1",
                    "PYTHONHASHSEED": "0"}
        self.env.pop("PTMC_DEBUG", None)

    def run(self, cmd, timeout: float) -> tuple[str, float, str]:
        """('pass' | 'fail' | 'timeout', seconds, last output line)."""
        shutil.rmtree(self.root / ".hypothesis", ignore_errors=True)
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return "timeout", time.monotonic() - start, ""
        lines = [line for line in out.splitlines() if line.strip()]
        failed = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
        return ("pass" if proc.returncode == 0 else "fail"), time.monotonic() - start, \
            (failed or lines or [""])[-1]

    def suite(self, files, timeout):
        # An installed ptmc (e.g. another checkout, pip install -e) may register a pytest plugin
        # that this tree does not have: only this tree's code may run.
        own_plugin = (self.root / "src" / "ptmc" / "pytest_plugin.py").exists()
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider",
               *([] if own_plugin else ["-p", "no:ptmc"]), "--hypothesis-seed=0", *files]
        outcome, seconds, last = self.run(cmd, timeout)
        if outcome == "fail" and any(name in last for name in FLAKY):
            outcome, more, last = self.run(cmd, timeout)  # timing-dependent: once more
            seconds += more
        return outcome, seconds, last

    def corpus(self, which, timeout):
        return self.run([sys.executable, str(self.root / "bench" / "mutation.py"), "--corpus-run", which], timeout)

    def write(self, rel: str, data: bytes) -> None:
        (self.root / rel).write_bytes(data)


def baseline(job: Job, with_rules: bool) -> dict[str, float]:
    """Run every phase on the unmutated copy: each must pass (the corpus must reproduce its
    expected verdicts); return each phase's duration, from which the time-outs are set."""
    times = {}
    checks = [("suite", lambda: job.suite(suite_files(False), 1800)),
              ("corpus", lambda: job.corpus("shipped", 600))]
    if with_rules:
        checks += [("rule_suite", lambda: job.suite(suite_files(True), 600)),
                   ("rule_corpus", lambda: job.corpus("rules", 600))]
    for phase, fn in checks:
        outcome, seconds, last = fn()
        if outcome != "pass":
            outcome, seconds, last = fn()  # a loaded machine: once more
        if outcome != "pass":
            raise SystemExit(f"unmutated code fails phase {phase}: {last}")
        times[phase] = seconds
    return times


def judge(job: Job, mutant: Mutant, phases, timeouts, cache, keys, lock) -> dict:
    """Run the phases a mutant needs, from the cache where possible."""
    rec = {}
    original = (ROOT / mutant.file).read_bytes()
    written = False
    try:
        for phase in phases:
            if phase == "rule_suite" and rec.get("suite", {}).get("outcome") != "pass":
                continue
            if phase == "rule_corpus" and rec.get("corpus", {}).get("outcome") != "pass":
                continue
            key = f"{mutant.id}|{phase}|{keys[phase]}"
            with lock:
                hit = cache.get(key)
            if hit is None:
                if not written:
                    job.write(mutant.file, mutant.apply(original))
                    written = True
                if phase in ("suite", "rule_suite"):
                    outcome, seconds, last = job.suite(suite_files(phase == "rule_suite"), timeouts[phase])
                else:
                    outcome, seconds, last = job.corpus("shipped" if phase == "corpus" else "rules", timeouts[phase])
                hit = {"outcome": outcome, "seconds": round(seconds, 1), "last": last[:300]}
                with lock:
                    cache.put(key, hit)
            rec[phase] = hit
    finally:
        if written:
            job.write(mutant.file, original)
    return rec


class Cache:
    def __init__(self, path: Path):
        self.path = path
        self.data = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.data[item["key"]] = item["value"]
        path.parent.mkdir(parents=True, exist_ok=True)

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = value
        with self.path.open("a") as f:
            f.write(json.dumps({"key": key, "value": value}) + "\n")


# ============================================================================================
# Report
# ============================================================================================

def killed(rec, rules: bool) -> bool:
    return rec.get("suite", {}).get("outcome", "pass") != "pass" or \
        (rules and rec.get("rule_suite", {}).get("outcome", "pass") != "pass")


def changed(rec, rules: bool) -> bool:
    return rec.get("corpus", {}).get("outcome", "pass") != "pass" or \
        (rules and rec.get("rule_corpus", {}).get("outcome", "pass") != "pass")


def timed_out(rec, rules: bool) -> bool:
    phases = ("suite", "rule_suite") if rules else ("suite",)
    return any(rec.get(p, {}).get("outcome") == "timeout" for p in phases)


def table(results, rules: bool, title: str) -> str:
    rows = {}
    for m, rec in results:
        row = rows.setdefault(m.file, [0] * 6)
        k, c = killed(rec, rules), changed(rec, rules)
        row[0] += 1
        row[1] += k
        row[2] += timed_out(rec, rules)
        row[3] += c
        row[4] += not k and not c
        row[5] += m.display
    width = max([len(f) for f in rows] + [5])
    out = [title, f"{'file':<{width}} {'mutants':>8} {'killed':>7} {'(timeout)':>9} {'verdict':>8} "
                  f"{'survived':>8} {'display':>8}"]
    total = [0] * 6
    for f in sorted(rows):
        out.append(f"{f:<{width}} " + " ".join(f"{v:>{w}}" for v, w in zip(rows[f], (8, 7, 9, 8, 8, 8))))
        total = [a + b for a, b in zip(total, rows[f])]
    out.append(f"{'total':<{width}} " + " ".join(f"{v:>{w}}" for v, w in zip(total, (8, 7, 9, 8, 8, 8))))
    n = max(total[0], 1)
    rule_n = sum(1 for m, _ in results if not m.display) or 1
    rule_changed = sum(1 for m, rec in results if not m.display and changed(rec, rules))
    out.append(f"killed by the suite {total[1]}/{total[0]} = {100 * total[1] / n:.1f}% "
               f"({total[2]} by time-out); changed a verdict {total[3]}/{total[0]} = {100 * total[3] / n:.1f}% "
               f"(outside display-only code: {rule_changed}/{rule_n} = {100 * rule_changed / rule_n:.1f}%)")
    return "\n".join(out)


def listing(results, rules: bool, sources) -> str:
    out = []
    survived = [(m, r) for m, r in results if not killed(r, rules) and not changed(r, rules)]
    quiet = [(m, r) for m, r in results if killed(r, rules) and not changed(r, rules)]
    for title, items in (("Survived (neither the suite nor a verdict)", survived),
                         ("Killed by the suite, but no verdict depends on it", quiet)):
        out.append(f"\n{title}: {len(items)}")
        for m, _ in items:
            before, after = m.diff(sources[m.file])
            tag = " [display]" if m.display else ""
            out.append(f"  {m.file}:{m.line} {m.op} in {m.function}{tag}\n      - {before}\n      + {after}")
    return "\n".join(out)


# ============================================================================================

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, help="a deterministic sample of N mutants")
    ap.add_argument("--seed", type=int, default=7, help="the sample's seed (default 7)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--files", nargs="+", help="only these files (or folders) of the targets")
    ap.add_argument("--only", nargs="+", help="only these mutant ids (or id prefixes)")
    ap.add_argument("--no-rules", action="store_true", help="only the shipped suite and corpus (the 'before' score)")
    ap.add_argument("--list", action="store_true", help="list the mutants and stop")
    ap.add_argument("--report-only", action="store_true", help="report from the cache; run nothing")
    ap.add_argument("--results", default=str(ROOT / "out" / "mutation" / "results.jsonl"))
    ap.add_argument("--corpus-run", choices=["shipped", "rules"], help=argparse.SUPPRESS)
    ap.add_argument("--all", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    # A shell starts a background job with SIGINT ignored, and children inherit that: the
    # suite's Ctrl-C test would fail. A handler here means SIGINT is default again in children.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.corpus_run:
        return corpus_main(args.corpus_run, ROOT, stop_early=not args.all)

    mutants = all_mutants(args.files)
    if args.only:
        mutants = [m for m in mutants if any(m.id.startswith(p) for p in args.only)]
    # Mutants run in a seeded random order, and a sample is a prefix of that order: an
    # interrupted full run has cached exactly the sample of its size. Reports are in file order.
    order = list(range(len(mutants)))
    random.Random(args.seed).shuffle(order)
    if args.sample and args.sample < len(mutants):
        order = order[:args.sample]
    run_order = [mutants[i] for i in order]
    mutants = [mutants[i] for i in sorted(order)]
    sources = {f: (ROOT / f).read_bytes() for f in {m.file for m in mutants}}
    if args.list:
        for m in mutants:
            before, after = m.diff(sources[m.file])
            print(f"{m.id}  {m.function}\n    - {before}\n    + {after}")
        print(f"{len(mutants)} mutants")
        return 0

    rules = not args.no_rules and (ROOT / "tests" / "rules").is_dir()
    phases = PHASES if rules else PHASES[:2]
    keys = phase_inputs()
    cache = Cache(Path(args.results))
    lock = threading.Lock()
    start = time.monotonic()
    results = {}
    if not args.report_only:
        base = Path(tempfile.mkdtemp(prefix="ptmc-mutation-"))
        try:
            jobs = queue.Queue()
            first = Job(base, 0)
            times = baseline(first, rules)
            timeouts = {p: max(3 * t, t + 30) for p, t in times.items()}
            print("baseline " + ", ".join(f"{p} {t:.1f} s" for p, t in times.items()) +
                  f"; {len(mutants)} mutants, {args.jobs} jobs", file=sys.stderr, flush=True)
            jobs.put(first)
            for k in range(1, args.jobs):
                jobs.put(Job(base, k))
            done = [0]

            def work(m):
                job = jobs.get()
                try:
                    t0 = time.monotonic()
                    rec = judge(job, m, phases, timeouts, cache, keys, lock)
                finally:
                    jobs.put(job)
                with lock:
                    done[0] += 1
                    results[m.id] = rec
                    state = ("killed" if killed(rec, rules) else "lives") + "/" + \
                            ("verdict" if changed(rec, rules) else "no-verdict")
                    print(f"[{done[0]}/{len(mutants)}] {m.id} {state} {time.monotonic() - t0:.0f} s "
                          f"(elapsed {time.monotonic() - start:.0f} s)", file=sys.stderr, flush=True)

            threads = []
            todo = queue.Queue()
            for m in run_order:
                todo.put(m)

            def worker():
                while True:
                    try:
                        m = todo.get_nowait()
                    except queue.Empty:
                        return
                    work(m)
            for _ in range(args.jobs):
                t = threading.Thread(target=worker)
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
        finally:
            shutil.rmtree(base, ignore_errors=True)
    else:
        for m in mutants:
            rec = {}
            for phase in phases:
                hit = cache.get(f"{m.id}|{phase}|{keys[phase]}")
                if hit is not None:
                    rec[phase] = hit
            needed = {"suite", "corpus"}
            if rules:
                needed |= {"rule_suite"} if rec.get("suite", {}).get("outcome") == "pass" else set()
                needed |= {"rule_corpus"} if rec.get("corpus", {}).get("outcome") == "pass" else set()
            if needed <= set(rec):  # only mutants whose every needed phase has run
                results[m.id] = rec
    ordered = [(m, results[m.id]) for m in mutants if m.id in results]
    print(table(ordered, False, "Before the rule models (suite without tests/test_rules.py, shipped corpus only)"))
    if rules:
        print()
        print(table(ordered, True, "With the rule models (tests/test_rules.py, tests/rules/ in the corpus)"))
    print(listing(ordered, rules, sources))
    if not args.report_only:
        print(f"\n{len(ordered)} mutants in {time.monotonic() - start:.0f} s with {args.jobs} jobs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
