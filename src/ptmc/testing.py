"""ptmc in a test suite: assert that a property holds, or that it is violated as expected.

    from ptmc.testing import assert_holds, assert_violated

    def test_mainline_is_safe_with_two_zaps():
        assert_holds("properties/no_uaf.py", zaps=2)

    def test_semi_rcu_free_is_the_k1_bug():
        assert_violated("properties/no_uaf.py", variants=["semi_rcu_fallback"],
                        check="never use-after-free", steps=16)

Keyword arguments are the model's parameters (``--set``), except ``model``, ``variants`` and
``max_states``, which are the options of the same names. Each returns the Result; a failure is
an AssertionError whose message is the text diagram, as ``ptmc check`` prints it. An
inconclusive run (a state or memory limit) is a failure of both: it proves nothing. The pytest
plugin (``pytest --ptmc properties/``) turns whole property files into tests.
"""
from __future__ import annotations

from . import workflow
from .render import text as render_text
from .result import HOLDS, VIOLATED, Result


def run(property, *, model=None, variants=(), max_states=None, witnesses=(), exclude=(), **params) -> Result:
    """Check ``property`` (a property file) with these parameters; the Result."""
    return workflow.check(property, model_path=model, variants=list(variants), settings=params,
                          max_states=max_states, witnesses=witnesses, exclude=exclude)


def assert_holds(property, *, model=None, variants=(), max_states=None, **params) -> Result:
    """The property holds (every check, witness and z3 obligation)."""
    __tracebackhide__ = True
    result = run(property, model=model, variants=variants, max_states=max_states, **params)
    if result.verdict != HOLDS:
        raise AssertionError(f"expected {result.property} to hold\n{render_text.render(result)}")
    return result


def assert_violated(property, *, check=None, steps=None, model=None, variants=(), max_states=None,
                    **params) -> Result:
    """The property is violated; by ``check`` (its name, e.g. "never use-after-free") and with a
    shortest counterexample of ``steps`` steps, when given."""
    __tracebackhide__ = True
    result = run(property, model=model, variants=variants, max_states=max_states, **params)
    problems = []
    if result.verdict != VIOLATED:
        problems.append(f"expected {result.property} to be violated, it is {result.verdict}")
    elif result.violation is None:  # only a z3 obligation failed
        if check is not None or steps is not None:
            problems.append("expected a counterexample, but only z3 obligations failed")
    else:
        if check is not None and result.violation.check != check:
            problems.append(f"expected {check!r} to be violated, but {result.violation.check!r} is")
        if steps is not None and len(result.trace) != steps:
            problems.append(f"expected a counterexample of {steps} steps, got {len(result.trace)}")
    if problems:
        raise AssertionError("; ".join(problems) + "\n" + render_text.render(result))
    return result
