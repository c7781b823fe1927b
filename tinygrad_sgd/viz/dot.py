"""The graph as text: Graphviz DOT and an indented tree for a terminal.

:func:`to_dot` names nodes ``n0, n1, ...`` by their position in a topological order (inputs
before the ops that use them, never by ``id()``), so its text is deterministic; :func:`to_text`
draws the same graph as a tree.  See :mod:`tinygrad_sgd.viz` for what the nodes show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..tensor import Tensor

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
