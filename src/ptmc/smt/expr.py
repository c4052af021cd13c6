"""The small expression language of step effects and counting invariants.

Python syntax, restricted to what both a concrete state and z3 can evaluate: integer and
boolean constants, names, ``+ - *``, comparisons (chained too), ``and or not`` and
``x if c else y``. The explorer evaluates an expression on Python ints; the prover translates
the same parse tree into z3 integer terms. An integer used as a condition means ``!= 0``, as in C.
"""
from __future__ import annotations

import ast

from ..errors import ModelError

_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
          ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE,
          ast.Gt, ast.GtE, ast.IfExp, ast.Name, ast.Load, ast.Constant)


class Expr:
    """One parsed expression; ``where`` names its origin in error messages."""

    def __init__(self, text, where: str):
        self.text = str(text)
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as e:
            raise ModelError(f"{where}: cannot parse {self.text!r}: {e.msg}") from None
        for node in ast.walk(tree):
            if not isinstance(node, _NODES):
                raise ModelError(f"{where}: {self.text!r} uses {type(node).__name__}, which an "
                                 "effect expression cannot (only + - *, comparisons, and/or/not, if-else)")
            if isinstance(node, ast.Constant) and type(node.value) not in (int, bool):
                raise ModelError(f"{where}: {self.text!r}: only integer and boolean constants")
        self.tree = tree.body
        self.names = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
        self.code = compile(tree, f"<{where}>", "eval")
        self.where = where

    def __str__(self):
        return self.text

    def check_names(self, known) -> None:
        unknown = sorted(self.names - set(known))
        if unknown:
            raise ModelError(f"{self.where}: {self.text!r} names {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(known))}")

    def value(self, env: dict):
        """Evaluate on concrete values."""
        return eval(self.code, {"__builtins__": {}}, env)  # noqa: S307 - checked AST, no builtins

    def z3(self, env: dict):
        """Translate into a z3 term over the z3 values in ``env``."""
        return _z3(self.tree, env)


def _z3(node, env):
    import z3
    if isinstance(node, ast.Constant):
        return z3.BoolVal(node.value) if isinstance(node.value, bool) else z3.IntVal(node.value)
    if isinstance(node, ast.Name):
        value = env[node.id]
        if isinstance(value, bool):
            return z3.BoolVal(value)
        if isinstance(value, int):
            return z3.IntVal(value)
        return value
    if isinstance(node, ast.BoolOp):
        parts = [_bool(_z3(v, env)) for v in node.values]
        return z3.And(*parts) if isinstance(node.op, ast.And) else z3.Or(*parts)
    if isinstance(node, ast.UnaryOp):
        operand = _z3(node.operand, env)
        if isinstance(node.op, ast.Not):
            return z3.Not(_bool(operand))
        return -_int(operand) if isinstance(node.op, ast.USub) else _int(operand)
    if isinstance(node, ast.BinOp):
        a, b = _int(_z3(node.left, env)), _int(_z3(node.right, env))
        if isinstance(node.op, ast.Add):
            return a + b
        return a - b if isinstance(node.op, ast.Sub) else a * b
    if isinstance(node, ast.Compare):
        parts, left = [], _z3(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            right = _z3(right_node, env)
            if isinstance(op, (ast.Eq, ast.NotEq)) and z3.is_bool(left) and z3.is_bool(right):
                parts.append(left == right if isinstance(op, ast.Eq) else left != right)
            else:
                a, b = _int(left), _int(right)
                parts.append({ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b, ast.LtE: a <= b,
                              ast.Gt: a > b, ast.GtE: a >= b}[type(op)])
            left = right
        return z3.And(*parts) if len(parts) > 1 else parts[0]
    if isinstance(node, ast.IfExp):
        test, body, orelse = _bool(_z3(node.test, env)), _z3(node.body, env), _z3(node.orelse, env)
        if z3.is_bool(body) and z3.is_bool(orelse):
            return z3.If(test, body, orelse)
        return z3.If(test, _int(body), _int(orelse))
    raise AssertionError(f"unexpected node {type(node).__name__}")  # excluded by Expr.__init__


def _bool(term):
    import z3
    return term if z3.is_bool(term) else term != 0


def _int(term):
    import z3
    return z3.If(term, z3.IntVal(1), z3.IntVal(0)) if z3.is_bool(term) else term
