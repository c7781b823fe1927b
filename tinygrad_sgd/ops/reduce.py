"""Reductions and the softmax family.

``axis`` reaches these ops already normalised by :func:`normalize_axis`: ``None`` (all axes) or a
sorted tuple of non-negative axes.  A reduction's gradient is dC/dz spread back over the reduced
axes: the backward passes first restore the reduced axes as length 1 (``keepdims``), then let
broadcasting do the spreading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..autograd import Context, Function, Grad
from .elementwise import Exp
from .shape import BroadcastTo


def normalize_axis(axis: int | Sequence[int] | None, ndim: int, single: bool = False) -> Any:
    """Check ``axis`` against ``ndim`` and return ``None`` or a sorted tuple of axes ≥ 0.

    With ``single=True`` exactly one int axis is expected and returned as an int.
    """
    if axis is None:
        if single:
            raise TypeError("axis must be an int here, not None")
        return None
    if single:
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis must be an int, got {type(axis).__name__}")
        items: Sequence[Any] = (axis,)
    elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        items = (axis,)
    elif isinstance(axis, (tuple, list)):
        items = axis
    else:
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {type(axis).__name__}")
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis entries must be ints, got {a!r}")
        lim = max(ndim, 1) if single else ndim
        if not -lim <= a < lim:
            raise ValueError(f"axis {a} is out of bounds for a tensor with {ndim} dimension(s)")
        out.append(int(a) % lim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {tuple(items)}")
    return out[0] if single else tuple(sorted(out))


def count(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> int:
    """How many elements a reduction over ``axis`` combines into each result."""
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    return int(np.prod([shape[a] for a in axis], dtype=np.int64))


def keepdims_shape(shape: tuple[int, ...], axis: tuple[int, ...] | None) -> tuple[int, ...]:
    """``shape`` with the reduced axes set to 1."""
    if axis is None:
        return (1,) * len(shape)
    return tuple(1 if i in axis else n for i, n in enumerate(shape))


def _restore(g: Grad, shape: tuple[int, ...], axis: tuple[int, ...] | None) -> Grad:
    """Give a reduction's output gradient back its reduced axes (as length 1)."""
    kd = keepdims_shape(shape, axis)
    return g if g.shape == kd else g.reshape(kd)


_add_reduce: Any = np.add.reduce  # (typed Any: NumPy's stubs want keepdims as a literal)


class Sum(Function):
    """z = Σ_{axis} x.   ∂z/∂x_i = 1 for every summed element: g is broadcast back."""

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool
    ) -> np.ndarray:
        ctx.shape, ctx.axis = x.shape, axis
        # np.add.reduce is what np.sum calls, without its 1 µs Python wrapper (same dtypes)
        return _add_reduce(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return BroadcastTo.call(_restore(g, ctx.shape, ctx.axis), ctx.shape), None, None


def _extremum_backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
    """∂z/∂x_i = [x_i = z] / #{j : x_j = z}: ties share the gradient equally."""
    x, out = ctx.saved_tensors
    out_kd = np.asarray(out).reshape(keepdims_shape(x.shape, ctx.axis))
    hit = np.asarray(x) == out_kd
    share = hit / np.sum(hit, axis=ctx.axis, keepdims=True)
    return _restore(g, x.shape, ctx.axis) * share.astype(x.dtype), None, None


class Max(Function):
    """z = max_{axis} x.   ∂z/∂x_i = 1/k for the k elements equal to the maximum, else 0."""

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool
    ) -> np.ndarray:
        out = np.asarray(np.max(x, axis=axis, keepdims=keepdims))  # an array, even for 0-d
        ctx.axis = axis
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return _extremum_backward(ctx, g)


class Min(Function):
    """z = min_{axis} x.   ∂z/∂x_i = 1/k for the k elements equal to the minimum, else 0."""

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool
    ) -> np.ndarray:
        out = np.asarray(np.min(x, axis=axis, keepdims=keepdims))  # an array, even for 0-d
        ctx.axis = axis
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return _extremum_backward(ctx, g)


def shifted_max(x: np.ndarray, axis: Any) -> np.ndarray:
    """m = max over ``axis`` (keepdims), the shift of the stable exponentials e^(x − m) ≤ 1;
    non-finite maxima are replaced by 0 so that x − m stays defined."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.where(np.isfinite(m), m, 0)


class LogSumExp(Function):
    """z = ln Σ_i e^(x_i).   ∂z/∂x_i = e^(x_i − z) = softmax(x)_i.

    NOTE: computed as m + ln Σ e^(x_i − m) with m = max x, so no exponent is positive.
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context, x: np.ndarray, axis: tuple[int, ...] | None, keepdims: bool
    ) -> np.ndarray:
        m = shifted_max(x, axis)
        with np.errstate(under="ignore"):  # NOTE: e^(x − m) may underflow to 0, harmlessly
            out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        if not keepdims:
            out = out.reshape(()) if axis is None else np.squeeze(out, axis=axis)
        ctx.axis = axis
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        x, out = ctx.saved_tensors
        softmax = Exp.call(x - _restore(out, x.shape, ctx.axis))
        return _restore(g, x.shape, ctx.axis) * softmax, None, None


class Softmax(Function):
    """s_i = e^(x_i) / Σ_j e^(x_j) along one axis.   ∂C/∂x = s ⊙ (g − Σ_j g_j s_j).

    NOTE: the maximum is subtracted first (softmax is shift-invariant), so nothing overflows.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int) -> np.ndarray:
        with np.errstate(under="ignore"):  # NOTE: e^(x − m) may underflow to 0, harmlessly
            e = np.exp(x - shifted_max(x, axis))
        out = e / np.sum(e, axis=axis, keepdims=True)
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        (s,) = ctx.saved_tensors
        return s * (g - (g * s).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y_i = x_i − ln Σ_j e^(x_j) along one axis.   ∂C/∂x = g − e^y Σ_j g_j."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int) -> np.ndarray:
        shifted = x - shifted_max(x, axis)
        with np.errstate(under="ignore"):  # NOTE: e^(x − m) may underflow to 0, harmlessly
            out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
        ctx.axis = axis
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        (y,) = ctx.saved_tensors
        return g - Exp.call(y) * g.sum(axis=ctx.axis, keepdims=True), None
