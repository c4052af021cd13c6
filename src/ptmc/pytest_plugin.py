"""The pytest plugin (registered as ``ptmc`` through the ``pytest11`` entry point).

``pytest --ptmc properties/`` collects each property file (a ``.py`` file that assigns
``CHECKS`` or ``OBLIGATIONS`` at top level) as tests: one per check, per witness (the
property's and its model's) and per z3 obligation, each passing or failing with the text
diagram as its report. A file is explored once; a search stops at the first violation, so
the file is explored again without the violated check until every check is decided (a check
the run cannot decide, e.g. after an observer failed, is skipped, saying why). A run that
cannot finish (a state or memory limit) fails what it did not decide: it proves nothing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from .errors import PtmcError
from .result import FAILED, INCONCLUSIVE, UNDECIDED, Outcome, Result

_DECLARES = re.compile(r"^(CHECKS|OBLIGATIONS)\s*=", re.MULTILINE)


def pytest_addoption(parser):
    group = parser.getgroup("ptmc", "ptmc property files")
    group.addoption("--ptmc", action="store_true", default=False,
                    help="collect ptmc property files (CHECKS = [...]) as tests, one per check")


def pytest_collect_file(file_path: Path, parent):
    if not parent.config.getoption("ptmc") or file_path.suffix != ".py":
        return None
    try:
        declares = _DECLARES.search(file_path.read_text(errors="replace"))
    except OSError:
        return None
    if declares and not file_path.name.startswith(("test_", "conftest")):
        return PropertyFile.from_parent(parent, path=file_path)
    return None


class CheckFailed(Exception):
    """A check that did not pass; its text is the report (the text diagram)."""


class PropertyFile(pytest.File):
    def collect(self):
        from .explore import System
        from .model import load_model_class
        from .properties import load_property
        try:
            prop = load_property(self.path)
            names = [(c.name, "witness" if c.kind == "reachable" else "check") for c in prop.checks]
            if prop.checks:
                cls = load_model_class(prop.model_path)
                model = cls({k: v for k, v in prop.params.items() if k in cls.params()},
                            [v for v in prop.variants if v in cls.variants()])
                names += [(o.check.name, "check") for o in model.observers(System(model))]
                names += [(w.name, "witness") for w in model.witnesses()]
            names += [(o.name, "obligation") for o in prop.obligations]
        except PtmcError as e:
            raise self.CollectError(f"ptmc: error: {e}") from None
        seen = set()
        for name, kind in names:
            if name not in seen:
                seen.add(name)
                yield CheckItem.from_parent(self, name=name if kind == "check" else f"{kind} {name}",
                                            check=name)

    def decide(self) -> dict[str, tuple[Outcome, Result]]:
        """Every check's outcome and the run that decided it (explored once per violation)."""
        cached = getattr(self, "_decided", None)
        if cached is not None:
            return cached
        from .testing import run
        decided: dict[str, tuple[Outcome, Result]] = {}
        exclude: list[str] = []
        while True:
            result = run(self.path, exclude=exclude)
            for o in result.outcomes():
                if o.status != UNDECIDED and o.name not in decided:
                    decided[o.name] = (o, result)
            v = result.violation
            if v is None or v.kind == "reachable" or v.check in exclude or result.reason:
                break
            exclude.append(v.check)  # decide the others without it
        for o in result.outcomes():  # what no run could decide
            decided.setdefault(o.name, (o, result))
        self._decided = decided
        return decided


class CheckItem(pytest.Item):
    def __init__(self, *, check: str, **kwargs):
        super().__init__(**kwargs)
        self.check = check

    def runtest(self):
        from .render import text as render_text
        outcome, result = self.parent.decide().get(self.check, (None, None))
        if outcome is None:
            raise CheckFailed(f"{self.check}: not reported by the run (the property changed since collection?)")
        if outcome.status == UNDECIDED:
            pytest.skip(f"{self.check}: {outcome.message}")
        if outcome.status in (FAILED, INCONCLUSIVE):
            raise CheckFailed(f"{self.check}: {outcome.status}: {outcome.message}\n\n{render_text.render(result)}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        if isinstance(excinfo.value, PtmcError):
            return f"ptmc: error: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.stem}: {self.name}"
