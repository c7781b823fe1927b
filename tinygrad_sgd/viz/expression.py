"""Expressions for the ``graph`` command: a strict whitelist, never ``eval``.

:func:`parse_expression` checks every node of Python's syntax tree of the input against a
whitelist (names, numbers, ``+ - * / **``, the functions in :data:`FUNCTIONS`); the input is never
given to ``eval``, ``exec`` or ``compile``.  :func:`build_expression` then computes the checked
tree with Tensor operations alone.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor
from ..testing.op_table import OP_TABLE


class ExpressionError(ValueError):
    """An expression for ``graph`` uses something outside the whitelist (or is malformed)."""


MAX_LENGTH = 200  # characters
MAX_NODES = 120  # syntax-tree nodes
MAX_DEPTH = 30  # nesting
MAX_VARIABLES = 16
MAX_EXPONENT = 16.0  # |p| of a constant exponent in x ** p
MAX_CONSTANT = 1e6  # |c| of a number

# name -> (number of arguments, the Tensor function): the op table's rows that name themselves
# for expressions (OpSpec.expression), so a new elementwise op is added in one place.
FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    spec.expression: (spec.arity, spec.fn) for spec in OP_TABLE if spec.expression is not None
}

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")

_FORBIDDEN: dict[type, str] = {
    ast.Attribute: "attribute access (a.b) is not allowed",
    ast.Subscript: "subscripts (a[i]) are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Compare: "comparisons are not allowed",
    ast.BoolOp: "'and'/'or' are not allowed",
    ast.IfExp: "conditional expressions (a if c else b) are not allowed",
    ast.Starred: "starred arguments (*a) are not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Slice: "slices are not allowed",
}

_ALLOWED_HELP = (
    "an expression may use variable names, numbers, + - * / ** (constant exponents up to "
    f"{MAX_EXPONENT:g}), unary -, parentheses and the functions " + ", ".join(sorted(FUNCTIONS))
)


def _where(node: ast.AST) -> str:
    col = getattr(node, "col_offset", None)
    return "" if col is None else f" (at column {col + 1})"


def _number(node: ast.AST) -> float | None:
    """The value of a number literal, or of ``-literal`` / ``+literal``; otherwise None."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    v = node.value if isinstance(node, ast.Constant) else None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return sign * _as_float(v)


def _as_float(v: int | float) -> float:
    """``float(v)``, except that integers too large for a float give infinity (no OverflowError)."""
    if isinstance(v, int) and v.bit_length() > 1000:
        return math.inf if v > 0 else -math.inf
    return float(v)


def _check_node(node: ast.AST) -> None:
    """Raise :class:`ExpressionError` unless ``node`` itself is whitelisted (children aside)."""
    here = _where(node)
    if isinstance(node, ast.Expression):
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise ExpressionError(
                f"operator {type(node.op).__name__} is not allowed{here}; use + - * / **"
            )
        if isinstance(node.op, ast.Pow):
            p = _number(node.right)
            if p is None and not _has_variable(node.right):
                raise ExpressionError(
                    f"a constant exponent must be a single number{here}, e.g. x ** 2"
                )
            if p is not None and abs(p) > MAX_EXPONENT:
                raise ExpressionError(
                    f"exponent {p:g} is too large{here}: at most {MAX_EXPONENT:g} in absolute value"
                )
        return
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ExpressionError(
                f"unary operator {type(node.op).__name__} is not allowed{here}; only - and +"
            )
        return
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            kind = "strings are" if isinstance(v, (str, bytes)) else f"the constant {v!r} is"
            raise ExpressionError(f"{kind} not allowed{here}; only real numbers")
        fv = _as_float(v)
        if not math.isfinite(fv) or abs(fv) > MAX_CONSTANT:
            raise ExpressionError(
                f"number {str(v)[:20]} is too large{here}: at most {MAX_CONSTANT:g} "
                "in absolute value"
            )
        return
    if isinstance(node, ast.Name):
        if not isinstance(node.ctx, ast.Load):
            raise ExpressionError(f"assignment to {node.id!r} is not allowed{here}")
        if node.id.startswith("_"):
            raise ExpressionError(
                f"names starting with '_' (such as {node.id!r}) are not allowed{here}"
            )
        if not _NAME_RE.match(node.id):
            raise ExpressionError(
                f"variable name {node.id[:40]!r} is not allowed{here}: use ASCII letters, digits "
                "and '_', starting with a letter, at most 32 characters"
            )
        return
    if isinstance(node, ast.Call):
        f = node.func
        if not isinstance(f, ast.Name):
            raise ExpressionError(f"only the known functions may be called{here}; {_ALLOWED_HELP}")
        if f.id not in FUNCTIONS:
            raise ExpressionError(
                f"unknown function {f.id[:40]!r}{here}; known functions: "
                + ", ".join(sorted(FUNCTIONS))
            )
        if node.keywords:
            raise ExpressionError(f"keyword arguments are not allowed{here}")
        arity = FUNCTIONS[f.id][0]
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError(f"starred arguments (*a) are not allowed{here}")
        if len(node.args) != arity:
            raise ExpressionError(
                f"{f.id}() takes {arity} argument{'s' if arity > 1 else ''}, "
                f"got {len(node.args)}{here}"
            )
        return
    reason = _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed")
    raise ExpressionError(f"{reason}{here}; {_ALLOWED_HELP}")


def parse_expression(source: str) -> ast.Expression:
    """Parse ``source`` into a syntax tree and check every node against the whitelist.

    Allowed: variable names, real numbers, ``+ - * / **``, unary ``-``/``+``, parentheses and
    calls of the functions in :data:`FUNCTIONS` with positional arguments.  Everything else
    (attribute access, subscripts, strings, lambdas, comprehensions, keywords, names starting
    with ``_``, unknown functions, huge numbers or exponents, overly long or deep input) raises
    :class:`ExpressionError` with the reason.  ``ast.parse`` only builds the tree: nothing is
    executed, and the tree is evaluated by :func:`build_expression` with Tensor operations alone.
    """
    if not isinstance(source, str):
        raise ExpressionError(f"expected the expression as a string, got {type(source).__name__}")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(source)} characters long; at most {MAX_LENGTH} are allowed"
        )
    if not source.strip():
        raise ExpressionError("the expression is empty")
    for pos, ch in enumerate(source):
        if not (" " <= ch <= "~" or ch == "\t"):
            raise ExpressionError(
                f"character {ch!r} (at column {pos + 1}) is not allowed: use printable ASCII"
            )
    try:
        with warnings.catch_warnings():
            # Python warns about odd literals ("1_", "0x"); the parser below explains instead.
            warnings.simplefilter("error", SyntaxWarning)
            tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, SyntaxWarning, ValueError, RecursionError, MemoryError) as e:
        msg = getattr(e, "msg", None) or str(e) or type(e).__name__
        raise ExpressionError(f"not a valid expression: {msg}; {_ALLOWED_HELP}") from None
    # Iterative walk (no recursion), bounded in size and depth.
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(f"the expression is too large: more than {MAX_NODES} parts")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested too deeply (more than {MAX_DEPTH})")
        _check_node(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.operator, ast.unaryop, ast.expr_context)):
                continue  # operator tokens, checked with their parent
            stack.append((child, depth + 1))
    names = _variables(tree)
    if not names:
        raise ExpressionError("the expression has no variables: nothing to differentiate")
    if len(names) > MAX_VARIABLES:
        raise ExpressionError(f"too many variables ({len(names)}); at most {MAX_VARIABLES}")
    return tree


def _variables(tree: ast.AST) -> list[str]:
    """Variable names (not function names) in order of first appearance in the source text."""
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    found: dict[str, tuple[int, int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called:
            where = (node.lineno, node.col_offset)
            if node.id not in found or where < found[node.id]:
                found[node.id] = where
    return sorted(found, key=lambda n: found[n])


def _has_variable(node: ast.AST) -> bool:
    return bool(_variables(node))


def _evaluate(node: ast.AST, leaves: Mapping[str, Tensor], dtype: Any) -> Any:
    """Evaluate a checked tree with Tensor operations (numbers become constant Tensors)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, leaves, dtype)
    if isinstance(node, ast.Name):
        return leaves[node.id]
    if isinstance(node, ast.Constant):
        assert isinstance(node.value, (int, float))  # checked by _check_node
        return Tensor(float(node.value), dtype=dtype)
    if isinstance(node, ast.UnaryOp):
        v = _evaluate(node.operand, leaves, dtype)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        a = _evaluate(node.left, leaves, dtype)
        b = _evaluate(node.right, leaves, dtype)
        op = type(node.op)
        if op is ast.Add:
            return a + b
        if op is ast.Sub:
            return a - b
        if op is ast.Mult:
            return a * b
        if op is ast.Div:
            return a / b
        p = _number(node.right)
        return a**p if p is not None else a**b  # constant exponent: the PowScalar op
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        fn = FUNCTIONS[node.func.id][1]
        return fn(*[_evaluate(a, leaves, dtype) for a in node.args])
    raise ExpressionError(f"{type(node).__name__} is not allowed")  # unreachable after checking


def build_expression(
    source: str,
    values: Mapping[str, float] | None = None,
    seed: int = 0,
    dtype: Any = np.float64,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Parse ``source`` (see :func:`parse_expression`) and compute it with Tensor operations.

    Each variable becomes a scalar leaf with ``requires_grad=True``, valued from ``values`` or
    else drawn from N(0, 1) with ``numpy.random.default_rng(seed)`` in order of first
    appearance (rounded to 4 decimals, so the graph's labels can be recomputed by hand).
    Returns ``(result, {name: leaf})``.
    """
    tree = parse_expression(source)
    names = _variables(tree)
    given = dict(values or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ExpressionError(
            f"--set names {', '.join(unknown)} not in the expression (its variables: "
            f"{', '.join(names)})"
        )
    rng = np.random.default_rng(seed)
    leaves: dict[str, Tensor] = {}
    for name in names:
        drawn = round(float(rng.standard_normal()), 4)
        v = given.get(name, drawn)
        leaves[name] = Tensor(v, dtype=dtype, requires_grad=True)
    with np.errstate(all="ignore"):  # log(-1) etc. give NaN in the picture, not a warning
        result = _evaluate(tree, leaves, dtype)
    if not isinstance(result, Tensor):  # pragma: no cover - variables always give a Tensor
        result = Tensor(result, dtype=dtype)
    return result, leaves


def neuron_graph() -> tuple[Tensor, dict[str, Tensor]]:
    """The seed's neuron with its quadratic cost, as in the README:

    z = w·x + b,  a = σ(z),  C = ½ (y − a)²  with x = (1, 2), y = 1, w = (0.6, −0.4), b = 0.1.

    Returns ``(C, {"w": w, "b": b, "x": x, "y": y})``.
    """
    x = Tensor([1.0, 2.0])
    y = Tensor(1.0)
    w = Tensor([0.6, -0.4], requires_grad=True)
    b = Tensor(0.1, requires_grad=True)
    a = (w @ x + b).sigmoid()
    cost = 0.5 * (y - a) ** 2
    return cost, {"w": w, "b": b, "x": x, "y": y}
