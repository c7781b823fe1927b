"""Shape primitives: they move numbers around without changing them.

So each backward moves the gradient back: reshape it, transpose it back, sum what broadcasting
copied (done by the engine), or scatter it into the positions that indexing read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function, Grad


class Reshape(Function):
    """z = x with a new shape (same elements, same order).   ∂C/∂x = reshape(g, x.shape)."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into shape {shape}"
            ) from None

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        return g.reshape(ctx.shape), None


class Transpose(Function):
    """z = x with its axes permuted (reversed when ``axes`` is None).   ∂C/∂x = g permuted back."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
        if axes is not None and sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of a {x.ndim}-d shape")
        ctx.axes = axes
        return x.transpose(axes)  # the method: np.transpose adds a 1 µs Python wrapper

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        if ctx.axes is None:
            return g.transpose(), None
        inverse = tuple(int(i) for i in np.argsort([a % g.ndim for a in ctx.axes]))
        return g.transpose(*inverse), None


class BroadcastTo(Function):
    """z = x repeated along new leading axes and stretched size-1 axes.

    ∂C/∂x = g summed over the repeated axes, which is exactly the engine's un-broadcasting, so
    this backward only passes g on.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        return g, None


def _is_advanced(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, np.ndarray) for p in parts)


class GetItem(Function):
    """z = x[index] (basic slicing or integer/boolean array indexing).

    ∂C/∂x = zeros of x's shape with g added at the positions read; an element read k times
    receives the sum of its k gradients.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.index = x.shape, index
        return np.asarray(x[index])

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None]:
        return ScatterAdd.call(g, ctx.index, ctx.shape), None


class ScatterAdd(Function):
    """z = zeros(shape) with g added at ``index`` (the adjoint of GetItem).

    ∂C/∂g = (∂C/∂z)[index].
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, g: np.ndarray, index: Any, shape: tuple[int, ...]) -> np.ndarray:
        ctx.index = index
        out = np.zeros(shape, dtype=g.dtype)
        if _is_advanced(index):
            np.add.at(out, index, g)  # NOTE: plain `out[index] += g` drops repeated indices
        else:
            out[index] = g
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return GetItem.call(g, ctx.index), None, None


class Concatenate(Function):
    """z = [x₁, x₂, …] joined along ``axis``.   ∂C/∂x_k = the slice of g that x_k filled."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, *xs: np.ndarray, axis: int) -> np.ndarray:
        ctx.axis = axis
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad | None, ...]:
        lead = (slice(None),) * ctx.axis
        b = ctx.bounds
        return tuple(
            g[lead + (slice(int(b[k]), int(b[k + 1])),)] if need else None
            for k, need in enumerate(ctx.needs_input_grad)
        )
