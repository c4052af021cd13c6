"""The house's import rules, read from the source (ast): the explorer calls per-transition
checks and reductions through observer.py's interfaces and never imports the z3 room, the
renderers or the command line; reductions and kernel primitives do not import the explorer."""
from __future__ import annotations

import ast

import pytest

from conftest import ROOT

SRC = ROOT / "src" / "ptmc"

RULES = [  # (package, packages it must not import)
    ("explore", ("ptmc.smt", "ptmc.render", "ptmc.cli", "ptmc.workflow")),
    ("reduce", ("ptmc.smt", "ptmc.explore", "ptmc.render", "ptmc.cli", "ptmc.workflow")),
    ("kernel", ("ptmc.explore", "ptmc.reduce", "ptmc.smt", "ptmc.render")),
]


def imported(path) -> set[str]:
    """The absolute names of the modules a file imports (relative imports resolved)."""
    package = ["ptmc", *path.relative_to(SRC).parent.parts]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(module)
            out |= {f"{module}.{alias.name}" for alias in node.names}
    return out


@pytest.mark.parametrize("package, forbidden", RULES, ids=[r[0] for r in RULES])
def test_import_rules(package, forbidden):
    files = sorted((SRC / package).glob("*.py"))
    assert files
    bad = [(f.name, name) for f in files for name in sorted(imported(f))
           if any(name == p or name.startswith(p + ".") for p in forbidden)]
    assert not bad, f"{package}/ imports what it must not: {bad}"


def test_the_scan_sees_relative_imports():
    assert "ptmc.state.encode" in imported(SRC / "reduce" / "symmetry.py")
    assert "ptmc.smt.link" in imported(SRC / "smt" / "counters.py") or "ptmc.smt.link.Link" in imported(SRC / "smt" / "counters.py")
