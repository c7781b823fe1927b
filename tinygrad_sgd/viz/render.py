"""Pictures: Graphviz's ``dot`` program run as a subprocess (SVG, PNG, PDF), and the Jupyter
display of graphs and Tensors (SVG when Graphviz is installed, the text tree otherwise)."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .._atomic import atomic_write
from ..tensor import Tensor
from .dot import _collect, to_dot, to_text


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
    atomic_write(p, data)
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
        atomic_write(p, _run_dot(self.dot, fmt))
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
