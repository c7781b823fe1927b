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

The package has three parts: ``dot.py`` walks the graph and writes it as DOT and as text,
``render.py`` runs Graphviz and makes the Jupyter display, and ``expression.py`` parses the
expressions of the ``graph`` command of ``python -m tinygrad_sgd`` (:func:`parse_expression`,
a strict whitelist: the input is never given to ``eval``, ``exec`` or ``compile``).
"""

from typing import Any

from ..tensor import Tensor
from .dot import retain_grads, to_dot, to_text
from .expression import ExpressionError, build_expression, neuron_graph, parse_expression
from .render import Graph, GraphvizError, graph, mimebundle, render


def _tensor_display(self: Tensor, include: Any = None, exclude: Any = None) -> dict[str, str]:
    """Jupyter display of a Tensor: the values and, below them, the graph that computed it (SVG
    when Graphviz is installed, else a text tree); see :func:`mimebundle`."""
    return mimebundle(self)


# The study tools give Tensor its Jupyter display here, so that the tensor layer never imports
# them (``import tinygrad_sgd`` imports this package).
Tensor._repr_mimebundle_ = _tensor_display  # type: ignore[attr-defined]

__all__ = [
    "ExpressionError",
    "Graph",
    "GraphvizError",
    "build_expression",
    "graph",
    "mimebundle",
    "neuron_graph",
    "parse_expression",
    "render",
    "retain_grads",
    "to_dot",
    "to_text",
]
