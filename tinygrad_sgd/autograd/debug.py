"""Study tools that watch the engine: :class:`trace` and :class:`detect_anomaly`.

Both attach to the core through its one observer point (``mode._state.observers``, per thread):
an observer's ``forward(fn, ctx, out, args, kwargs)`` runs after every ``Function.apply`` and its
``backward(ctx, delta, input_grads)`` after every op's backward.  The core knows nothing else
about them, and costs nothing extra when none is active.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import ContextDecorator
from typing import Any, TextIO, TypeVar

import numpy as np

from . import core
from .core import Context, Function
from .mode import _state

_O = TypeVar("_O", bound="_Observer")


class _Observer(ContextDecorator):
    """Entering adds this object to the thread's observers; leaving removes it."""

    def __enter__(self: _O) -> _O:
        _state.observers += (self,)
        return self

    def __exit__(self, *exc: object) -> None:
        obs = list(_state.observers)
        del obs[len(obs) - 1 - obs[::-1].index(self)]  # the innermost entry of this object
        _state.observers = tuple(obs)

    def forward(
        self, fn: type[Function], ctx: Context | None, out: Any, args: Any, kwargs: Any
    ) -> None:
        """Called after each op's forward with the op, its context, its output, its positional
        inputs and its keyword arguments."""
        pass

    def backward(self, ctx: Context, delta: Any, input_grads: list[Any]) -> None:
        """Called after each op's backward with δ = ∂C/∂z and the gradients it gave its inputs."""
        pass


# ------------------------------------------------------------------ tracing


class TraceStep:
    """One backward step: the op, the shapes, and the norms of the gradients in and out."""

    __slots__ = ("index", "op", "output_shape", "grad_norm", "input_shapes", "input_grad_norms")

    def __init__(
        self,
        index: int,
        op: str,
        output_shape: tuple[int, ...],
        grad_norm: float,
        input_shapes: list[tuple[int, ...] | None],
        input_grad_norms: list[float | None],
    ) -> None:
        self.index = index
        self.op = op
        self.output_shape = output_shape
        self.grad_norm = grad_norm
        self.input_shapes = input_shapes
        self.input_grad_norms = input_grad_norms

    def __str__(self) -> str:
        ins = ", ".join(
            "const" if s is None else f"{s}" + ("" if n is None else f" |g|={n:.4g}")
            for s, n in zip(self.input_shapes, self.input_grad_norms)
        )
        return (
            f"step {self.index}: {self.op}  out {self.output_shape} |g|={self.grad_norm:.4g}"
            f"  ->  [{ins}]"
        )

    def __repr__(self) -> str:
        return f"TraceStep({self})"


class trace(_Observer):
    """Report each backward step in the order the engine runs it.

    >>> with tg.trace() as steps:          # doctest: +SKIP
    ...     cost.backward()
    step 0: Mul  out () |g|=1  ->  [() |g|=0.5, () |g|=2]

    Each step names the op whose ``backward`` ran, its output's shape and the norm of δ, the
    gradient arriving there (‖∂C/∂output‖), and for each input its shape and the norm of the
    gradient passed to it.  Steps are printed to ``file`` (default: standard output) unless
    ``file=None``, and always kept in ``.steps``.
    """

    def __init__(self, file: TextIO | None | str = "stdout") -> None:
        self.steps: list[TraceStep] = []
        if isinstance(file, str) and file != "stdout":
            raise TypeError(
                f"trace(file=...) takes a text stream (e.g. sys.stderr or an open file) or None, "
                f"not the string {file!r}"
            )
        self._file: TextIO | None = sys.stdout if file == "stdout" else file  # type: ignore[assignment]

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def backward(self, ctx: Context, delta: Any, input_grads: list[Any]) -> None:
        """Record one :class:`TraceStep`: the op, ‖δ‖ and the norm of each input gradient."""

        def norm(g: Any) -> float:  # arrays or Tensors: np.asarray reads both
            return float(np.linalg.norm(np.asarray(g)))

        step = TraceStep(
            len(self.steps),
            ctx.name,
            delta.shape,
            norm(delta),
            [None if t is None else t.shape for t in ctx.inputs],
            [None if g is None else norm(g) for g in input_grads],
        )
        self.steps.append(step)
        if self._file is not None:
            print(step, file=self._file)


# ------------------------------------------------------------------ anomaly detection


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` where a NaN or an infinity first appears."""


class detect_anomaly(_Observer):
    """Raise :class:`AnomalyError` at the first op whose forward result or backward gradient
    contains NaN or infinity, naming the op and the file and line of the user's code that
    created it.  Slower (every result is scanned), so meant for debugging.
    """

    def forward(
        self, fn: type[Function], ctx: Context | None, out: Any, args: Any, kwargs: Any
    ) -> None:
        """Raise :class:`AnomalyError` when an op's output holds NaN or ±∞, naming the op and
        where it was created."""
        if ctx is not None:
            ctx.anomaly_site = _user_site()
        if out.dtype.kind != "f" or np.isfinite(out.data).all():
            return
        bad = [
            i
            for i, a in enumerate(args)
            if isinstance(a, core._Tensor) and a.dtype.kind == "f" and not np.isfinite(a.data).all()
        ]
        why = f"its input(s) {bad} already contained NaN or infinity" if bad else None
        why = why or "all of its inputs were finite"
        owner = _backward_running()
        if owner is not None:  # an op inside some op's backward formula: blame that op
            raise AnomalyError(
                f"{owner.name}.backward produced NaN or infinity in the backward pass (at its "
                f"{fn.__name__} step: {why}); the {owner.name} op was created at {_site(owner)}"
            )
        raise AnomalyError(
            f"{fn.__name__} produced NaN or infinity in the forward pass ({why}); "
            f"created at {_user_site()}"
        )

    def backward(self, ctx: Context, delta: Any, input_grads: list[Any]) -> None:
        """Raise :class:`AnomalyError` when an op's backward gives NaN or ±∞, naming the op."""
        for i, g in enumerate(input_grads):
            if g is not None and not np.isfinite(np.asarray(g)).all():
                ok = "finite" if np.isfinite(np.asarray(delta)).all() else "not finite"
                raise AnomalyError(
                    f"{ctx.name}.backward produced NaN or infinity in the backward pass: a "
                    f"non-finite gradient for input {i} (shape {np.shape(g)}) from a δ that was "
                    f"{ok}; the op was created at {_site(ctx)}"
                )


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _user_site() -> str:
    """``file:line`` of the innermost caller outside this package (where the user made the op)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def _backward_running() -> Context | None:
    """The op whose backward formula is running in this thread, if any: found on the call stack
    (the core's ``_propagate`` frame), so the core keeps no state for this debugging aid."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is core._propagate.__code__:
            ctx: Context = frame.f_locals["ctx"]
            return ctx
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _site(ctx: Context) -> str:
    """Where the op was created, as recorded when its forward ran under ``detect_anomaly``."""
    site = ctx.__dict__.get("anomaly_site")
    if site is not None:
        return str(site)
    return "<unknown: its forward pass ran outside detect_anomaly(); run it inside to see the line>"
