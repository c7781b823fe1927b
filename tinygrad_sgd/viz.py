"""Study tools: look at the computation graph the engine records.

Every differentiable operation links its output Tensor to the Tensors it was computed from (see
:mod:`tinygrad_sgd.autograd`).  For the book's neuron, z = w·x + b, a = σ(z), C = ½(y − a)², that
graph is::

    w ─┐
       MatMul ─ Add ─ Sigmoid ─ Sub ─ PowScalar ─ Mul ─ C
    x ─┘        b ┘        y ┘             0.5 ┘

and ``backward`` walks it from C back to w and b.  This module draws it:

* :func:`to_dot` -- Graphviz DOT text (deterministic: nodes are named ``n0, n1, ...`` by their
  position in a topological order, inputs before the ops that use them, never by ``id()``);
* :func:`to_text` -- the same graph as an indented tree for a terminal;
* :func:`render` -- an SVG/PNG/PDF picture through Graphviz's ``dot`` program;
* :func:`graph` -- an object that displays itself in Jupyter (SVG when ``dot`` is installed, the
  text tree otherwise); ``Tensor`` uses :func:`mimebundle` for its own Jupyter display.

Each node shows the op that made the tensor (or ``param``/``leaf``/``const`` for tensors made by
the user), its shape and dtype, and its value when it has one element.  ``params=`` names the
parameters: pass a ``Module`` (anything with ``named_parameters()``, giving names like
``0.weight``) or a dict ``{name: tensor}``; a named tensor that does not require grad is drawn as
a named input.

Gradients: with ``show_grad=True`` every tensor whose ``.grad`` is set shows ‖∂C/∂t‖.  After
``backward`` that is every leaf that requires grad, plus the non-leaf tensors that called
``retain_grad()`` (see :func:`retain_grads`, which does it for a whole graph).  NOTE: ``backward()``
frees the graph (the links from each op to its inputs) unless ``retain_graph=True``, so to draw a
graph *after* backward, call ``backward(retain_graph=True)``; drawing a freed graph raises a
``RuntimeError`` that says so.

The module also provides the ``graph`` command of ``python -m tinygrad_sgd`` (see
:func:`add_arguments`), whose expressions are parsed by :func:`parse_expression` with a strict
whitelist: the input is never given to ``eval``, ``exec`` or ``compile``.
"""

from __future__ import annotations

import argparse
import ast
import html
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .tensor import Tensor
from .tensor import maximum as _maximum
from .tensor import minimum as _minimum

__all__ = [
    "ExpressionError",
    "Graph",
    "GraphvizError",
    "add_arguments",
    "build_expression",
    "graph",
    "mimebundle",
    "neuron_graph",
    "parse_expression",
    "render",
    "retain_grads",
    "run_command",
    "to_dot",
    "to_text",
]

# --------------------------------------------------------------------------------------------
# Collecting the graph
# --------------------------------------------------------------------------------------------


class _Node:
    """One tensor of the graph, with its position, kind and the positions of its inputs."""

    __slots__ = ("index", "tensor", "inputs", "kind", "name")

    def __init__(self, index: int, tensor: Tensor, kind: str, name: str | None) -> None:
        self.index = index
        self.tensor = tensor
        self.inputs: list[int] = []  # positions of the Tensor arguments, in argument order
        self.kind = kind  # "op", "param", "leaf", "input" or "const"
        self.name = name

    @property
    def id(self) -> str:
        return f"n{self.index}"


def _param_names(params: Any) -> dict[int, str]:
    """``id(tensor) -> name`` from a Module (``named_parameters()``), a dict or (name, t) pairs."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items: Iterable[Any] = params.named_parameters()
    elif isinstance(params, Mapping):
        items = params.items()
    elif isinstance(params, Iterable) and not isinstance(params, (str, bytes, Tensor)):
        items = params
    else:
        raise TypeError(
            "params: expected a Module (anything with named_parameters()), a dict "
            f"{{name: Tensor}} or (name, Tensor) pairs, got {type(params).__name__}"
        )
    names: dict[int, str] = {}
    for item in items:
        try:
            name, t = item
        except (TypeError, ValueError):
            raise TypeError(f"params: expected (name, Tensor) pairs, got {item!r}") from None
        if not isinstance(name, str) or not isinstance(t, Tensor):
            raise TypeError(
                f"params: expected a str name and a Tensor, got {type(name).__name__} and "
                f"{type(t).__name__}"
            )
        names.setdefault(id(t), name)
    return names


def _freed_error(fn: str) -> RuntimeError:
    return RuntimeError(
        f"{fn}: part of this graph was freed by backward() (the engine drops each op's links to "
        "its inputs once its gradient has been computed). Draw the graph before calling "
        "backward(), or call backward(retain_graph=True) to draw it afterwards."
    )


def _collect(root: Tensor, params: Any, fn: str) -> list[_Node]:
    """The tensors that ``root`` was computed from, each after all of its inputs (root last).

    Iterative depth-first post-order over each op's Tensor arguments in argument order, so the
    numbering depends only on the structure of the graph, never on memory addresses.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"{fn}: expected a Tensor, got {type(root).__name__}")
    names = _param_names(params)
    nodes: list[_Node] = []
    index_of: dict[int, int] = {}  # id(tensor) -> position; only used while walking
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    on_stack: set[int] = set()
    while stack:
        t, expanded = stack.pop()
        key = id(t)
        if expanded:
            ctx = t._ctx
            name = names.get(key)
            if ctx is not None:
                kind = "op"
            elif t.requires_grad:
                kind = "param" if name is not None else "leaf"
            else:
                kind = "input" if name is not None else "const"
            node = _Node(len(nodes), t, kind, name)
            if ctx is not None:
                node.inputs = [index_of[id(i)] for i in ctx.inputs if i is not None]
            index_of[key] = node.index
            nodes.append(node)
            continue
        if key in index_of or key in on_stack:
            continue
        on_stack.add(key)
        stack.append((t, True))
        ctx = t._ctx
        if ctx is not None:
            if ctx._freed:
                raise _freed_error(fn)
            for inp in reversed(ctx.inputs):
                if inp is not None and id(inp) not in index_of:
                    stack.append((inp, False))
    return nodes


def retain_grads(root: Tensor) -> int:
    """Call ``retain_grad()`` on every non-leaf tensor of ``root``'s graph that requires grad, so
    that after ``backward`` each of them keeps ∂C/∂t in ``.grad`` (for ``show_grad=True``).

    Returns how many tensors were marked.
    """
    n = 0
    for node in _collect(root, None, "retain_grads"):
        t = node.tensor
        if node.kind == "op" and t.requires_grad:
            t.retain_grad()
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def _fmt_number(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _grad_norm(t: Tensor) -> float | None:
    g = t.grad
    if g is None:
        return None
    d = np.asarray(g.data, dtype=np.float64)
    return float(np.sqrt(np.sum(d * d)))


def _label_lines(node: _Node, show_grad: bool) -> list[str]:
    """The lines of a node's label: what it is, shape and dtype, value, gradient norm."""
    t = node.tensor
    if node.kind == "op":
        assert t._ctx is not None
        head = t._ctx.name
    elif node.kind in ("param", "input"):
        head = f"{node.name} ({node.kind})"
    else:
        head = node.kind
    lines = [head, f"{t.shape} {t.dtype}"]
    if t.size == 1:
        lines.append(f"= {_fmt_number(t.data.reshape(()).item())}")
    if show_grad:
        norm = _grad_norm(t)
        if norm is not None:
            lines.append(f"‖grad‖ = {norm:.4g}")
    return lines


_STYLE = {
    "op": 'shape=ellipse, style=filled, fillcolor="#fff2cc"',
    "param": 'shape=box, style="rounded,filled", fillcolor="#cfe2ff"',
    "leaf": 'shape=box, style="rounded,filled", fillcolor="#cfe2ff"',
    "input": 'shape=box, style=filled, fillcolor="#eeeeee"',
    "const": 'shape=box, style=filled, fillcolor="#eeeeee"',
}


def _dot_string(s: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines as centred breaks)."""
    s = s.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\r", "").replace("\n", "\\n") + '"'


# --------------------------------------------------------------------------------------------
# DOT, text and pictures
# --------------------------------------------------------------------------------------------


def to_dot(tensor: Tensor, show_grad: bool = False, params: Any = None) -> str:
    """The graph that computed ``tensor``, as Graphviz DOT text.

    Arrows follow the forward pass (from each input to the op that uses it; an edge is labelled
    with the argument position when the op has several Tensor arguments, e.g. ``0`` for y and
    ``1`` for a in ``y - a``).  Nodes are ``n0 ... n{N-1}`` in topological order, ``tensor`` last
    (drawn with a double border).  The text depends only on the graph's structure and values, so
    the same computation gives the same DOT in every run and every process.

    ``show_grad``: add ‖grad‖ to every tensor whose ``.grad`` is set (see the module docstring).
    ``params``: a Module or ``{name: Tensor}`` naming parameters, e.g. ``0.weight``.

    >>> w = Tensor([0.6, -0.4], requires_grad=True)      # doctest: +SKIP
    >>> print(to_dot((w @ Tensor([1.0, 2.0])).sigmoid(), params={"w": w}))
    """
    nodes = _collect(tensor, params, "to_dot")
    out = [
        "digraph tinygrad_sgd {",
        '  graph [rankdir=TB, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    last = len(nodes) - 1
    for node in nodes:
        label = _dot_string("\n".join(_label_lines(node, show_grad)))
        extra = ", peripheries=2" if node.index == last else ""
        out.append(f"  {node.id} [label={label}, {_STYLE[node.kind]}{extra}];")
    for node in nodes:
        several = len(node.inputs) > 1
        for pos, i in enumerate(node.inputs):
            attr = f' [label="{pos}"]' if several else ""
            out.append(f"  n{i} -> {node.id}{attr};")
    out.append("}")
    return "\n".join(out) + "\n"


_MAX_INDENT = 40  # levels of indentation drawn in full by to_text


def to_text(tensor: Tensor, show_grad: bool = False, params: Any = None) -> str:
    """The graph that computed ``tensor`` as an indented tree, ``tensor`` at the top and each op's
    inputs below it, for a terminal.

    Node names ``n0, n1, ...`` are the same as in :func:`to_dot`.  A tensor used by several ops is
    expanded once; later uses say ``(see above)``.  Below 40 levels of nesting a line starts with
    ``[depth d] …`` and only the last levels' guides.  Example for a = σ(w·x + b)::

        n5 Sigmoid () float64 = 0.4502
        └── n4 Add () float64 = -0.1
            ├── n2 MatMul () float64 = -0.2
            │   ├── n0 w (param) (2,) float64
            │   └── n1 const (2,) float64
            └── n3 b (param) () float64 = 0.1
    """
    nodes = _collect(tensor, params, "to_text")
    lines: list[str] = []
    width = 4 * _MAX_INDENT
    shown: set[int] = set()
    # (node position, depth, guides drawn for its ancestors, connector to its parent)
    stack: list[tuple[int, int, str, str]] = [(len(nodes) - 1, 0, "", "")]
    while stack:
        i, depth, guides, connector = stack.pop()
        node = nodes[i]
        text = " ".join(_label_lines(node, show_grad))
        lead = guides + connector
        if depth > _MAX_INDENT:  # very deep graphs: the last levels' guides, and the depth
            lead = f"[depth {depth}] …" + lead[-width // 2 :]
        if i in shown and node.inputs:
            lines.append(f"{lead}{node.id} {text} (see above)")
            continue
        shown.add(i)
        lines.append(f"{lead}{node.id} {text}")
        child_guides = guides + ("    " if connector == "└── " else "│   " if connector else "")
        child_guides = child_guides[-width:]  # bounded memory however deep the graph
        kids = node.inputs
        for k in range(len(kids) - 1, -1, -1):
            stack.append(
                (kids[k], depth + 1, child_guides, "└── " if k == len(kids) - 1 else "├── ")
            )
    return "\n".join(lines) + "\n"


class GraphvizError(RuntimeError):
    """Graphviz's ``dot`` program is missing or failed."""


_INSTALL_HINT = (
    "Graphviz's 'dot' program was not found on PATH. Install Graphviz: "
    "Debian/Ubuntu 'sudo apt-get install graphviz', Fedora 'sudo dnf install graphviz', "
    "macOS 'brew install graphviz', conda 'conda install -c conda-forge graphviz', "
    "Windows: https://graphviz.org/download/ (then reopen the terminal). "
    "Without it, to_dot() and to_text() still work."
)

_FORMATS = ("svg", "png", "pdf")


def _run_dot(dot_text: str, fmt: str) -> bytes:
    """Lay out ``dot_text`` with Graphviz (no shell involved) and return the picture's bytes."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizError(_INSTALL_HINT)
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}"],
            input=dot_text.encode("utf-8"),
            capture_output=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphvizError(f"running {exe} failed: {e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"dot -T{fmt} exited with status {proc.returncode}: {err}")
    return proc.stdout


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def render(
    tensor: Tensor,
    path: str | os.PathLike[str],
    format: str | None = None,
    show_grad: bool = False,
    params: Any = None,
) -> Path:
    """Draw ``tensor``'s graph into ``path`` (SVG, PNG or PDF, from ``format`` or the file's
    suffix) with Graphviz's ``dot`` program; the file is written atomically.  Returns the path.

    Raises :class:`GraphvizError` (a ``RuntimeError``) that says how to install Graphviz when
    ``dot`` is not installed.
    """
    p = Path(path)
    fmt = (format or p.suffix.lstrip(".")).lower()
    if fmt not in _FORMATS:
        raise ValueError(
            f"render: cannot tell the picture format from {str(path)!r}; use a .svg, .png or "
            f".pdf file name or format='svg'/'png'/'pdf'"
        )
    data = _run_dot(to_dot(tensor, show_grad=show_grad, params=params), fmt)
    _atomic_write(p, data)
    return p


def _inline_svg(svg: bytes) -> str:
    """The ``<svg>`` element of dot's output, without the XML prolog, for embedding in HTML."""
    text = svg.decode("utf-8")
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


class Graph:
    """A drawn graph: ``.dot`` and ``.text`` (computed when made), ``render(path)``, and a Jupyter
    display (SVG when Graphviz is installed, the text tree otherwise).  Made by :func:`graph`."""

    def __init__(self, tensor: Tensor, show_grad: bool = False, params: Any = None) -> None:
        self.dot = to_dot(tensor, show_grad=show_grad, params=params)
        self.text = to_text(tensor, show_grad=show_grad, params=params)

    def svg(self) -> str:
        """The picture as SVG text (needs Graphviz)."""
        return _run_dot(self.dot, "svg").decode("utf-8")

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> Path:
        """Write the picture to ``path`` (see :func:`render`)."""
        p = Path(path)
        fmt = (format or p.suffix.lstrip(".")).lower()
        if fmt not in _FORMATS:
            raise ValueError(f"Graph.render: use a .svg, .png or .pdf file name, not {str(path)!r}")
        _atomic_write(p, _run_dot(self.dot, fmt))
        return p

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": self.text}
        if shutil.which("dot") is not None:
            try:
                bundle["image/svg+xml"] = self.svg()
            except GraphvizError:
                pass  # the text tree is still shown
        return bundle


def graph(tensor: Tensor, show_grad: bool = False, params: Any = None) -> Graph:
    """``tensor``'s graph as a :class:`Graph`: evaluate ``tg.viz.graph(cost)`` as the last line of a
    Jupyter cell to see the picture."""
    return Graph(tensor, show_grad=show_grad, params=params)


MAX_DISPLAY_NODES = 300


def mimebundle(tensor: Tensor) -> dict[str, str]:
    """Jupyter display of a Tensor: its values (``repr``) and, when it was computed by recorded
    ops, its graph underneath: SVG when Graphviz is installed, the text tree otherwise.

    Graphs of more than ``MAX_DISPLAY_NODES`` tensors and freed graphs show the values only.
    """
    plain = repr(tensor)
    bundle = {"text/plain": plain}
    if tensor._ctx is None:
        return bundle
    try:
        nodes = _collect(tensor, None, "display")
    except RuntimeError:  # freed graph: values only
        return bundle
    if len(nodes) > MAX_DISPLAY_NODES:
        return bundle
    body = f"<pre>{html.escape(plain)}</pre>"
    picture = None
    if shutil.which("dot") is not None:
        try:
            picture = _inline_svg(_run_dot(to_dot(tensor), "svg"))
        except (GraphvizError, UnicodeDecodeError):
            picture = None
    if picture is None:
        picture = f"<pre>{html.escape(to_text(tensor))}</pre>"
    bundle["text/html"] = body + picture
    return bundle


# --------------------------------------------------------------------------------------------
# Expressions for the `graph` command: a strict whitelist, never eval
# --------------------------------------------------------------------------------------------


class ExpressionError(ValueError):
    """An expression for ``graph`` uses something outside the whitelist (or is malformed)."""


MAX_LENGTH = 200  # characters
MAX_NODES = 120  # syntax-tree nodes
MAX_DEPTH = 30  # nesting
MAX_VARIABLES = 16
MAX_EXPONENT = 16.0  # |p| of a constant exponent in x ** p
MAX_CONSTANT = 1e6  # |c| of a number

# name -> (number of arguments, the Tensor function)
FUNCTIONS: dict[str, tuple[int, Callable[..., Tensor]]] = {
    "sigmoid": (1, Tensor.sigmoid),
    "tanh": (1, Tensor.tanh),
    "relu": (1, Tensor.relu),
    "leaky_relu": (1, Tensor.leaky_relu),
    "softplus": (1, Tensor.softplus),
    "exp": (1, Tensor.exp),
    "log": (1, Tensor.log),
    "sqrt": (1, Tensor.sqrt),
    "abs": (1, Tensor.abs),
    "sin": (1, Tensor.sin),
    "cos": (1, Tensor.cos),
    "maximum": (2, _maximum),
    "minimum": (2, _minimum),
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


# --------------------------------------------------------------------------------------------
# The `graph` command
# --------------------------------------------------------------------------------------------


def _assignment(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=NUMBER, got {text!r}")
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number (in {text!r})") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r}: the value must be finite")
    return name.strip(), v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m tinygrad_sgd graph``."""
    parser.add_argument(
        "expr",
        nargs="?",
        metavar="EXPR",
        help="an expression such as 'sigmoid(w*x + b)'; its variables become scalar leaves. "
        "Default: the neuron a = σ(w·x + b) with its quadratic cost C = ½(y − a)². "
        "Put '--' before an expression that starts with '-'.",
    )
    parser.add_argument(
        "--format", choices=("dot", "text"), default="dot", help="output format (default: dot)"
    )
    parser.add_argument(
        "--backward",
        action="store_true",
        help="run backward first and show ‖grad‖ on every node",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="write to FILE (atomically) instead of standard output; a .svg, .png or .pdf name "
        "draws the picture with Graphviz",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for the variables' values (default: 0)"
    )
    parser.add_argument(
        "--set",
        dest="values",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=NUMBER",
        help="give a variable a value (repeatable)",
    )


def run_command(args: argparse.Namespace) -> int:
    """Build the graph, optionally backpropagate, and print or write it.  Exit status: 0 on
    success, 2 for a rejected expression, 1 when Graphviz is needed and missing or fails."""
    prog = "tinygrad-sgd graph"
    try:
        if args.expr is None:
            if args.values:
                raise ExpressionError(
                    "--set applies to an EXPR; the default neuron has fixed values"
                )
            root, names = neuron_graph()
        else:
            root, names = build_expression(args.expr, dict(args.values), seed=args.seed)
    except ExpressionError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    if args.backward:
        retain_grads(root)
        with np.errstate(all="ignore"):
            root.backward(retain_graph=True)
    if args.output:
        out = Path(args.output)
        suffix = out.suffix.lstrip(".").lower()
        try:
            if suffix in _FORMATS:
                render(root, out, show_grad=args.backward, params=names)
            else:
                fn = to_dot if args.format == "dot" else to_text
                text = fn(root, show_grad=args.backward, params=names)
                _atomic_write(out, text.encode("utf-8"))
        except GraphvizError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"{prog}: error: cannot write {out}: {e}", file=sys.stderr)
            return 1
        print(f"wrote {out}")
        return 0
    fn = to_dot if args.format == "dot" else to_text
    sys.stdout.write(fn(root, show_grad=args.backward, params=names))
    return 0
