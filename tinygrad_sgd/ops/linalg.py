"""Matrix multiplication, the op that carries a layer's z = w a + b.

For C depending on Z = A B:  ∂C/∂A = G Bᵀ and ∂C/∂B = Aᵀ G, with G = ∂C/∂Z.  In the book's
terms, ∂C/∂w = δ aᵀ and ∂C/∂a = wᵀ δ are these two products.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Context, Function, Grad


def _swap(t: Grad) -> Grad:
    """Transpose the last two axes (the matrix transpose of a batch of matrices)."""
    axes = list(range(t.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return t.transpose(*axes)


class MatMul(Function):
    """Z = A @ B with NumPy's rules: 1-D operands are promoted to a row (A) or a column (B) and
    the added axis is removed again; leading axes are batch axes and broadcast.

    ∂C/∂A = G Bᵀ, ∂C/∂B = Aᵀ G (summed over broadcast batch axes by the engine).
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad | None, Grad | None]:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        # Put back the axes NumPy removed for 1-D operands, so every product below is a matrix one.
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        gshape = g.shape
        if a.ndim == 1:
            gshape = gshape[:-1] + (1,) + gshape[-1:] if b.ndim > 1 else gshape + (1,)
        if b.ndim == 1:
            gshape = gshape + (1,)
        g2 = g.reshape(gshape) if gshape != g.shape else g
        ga = gb = None
        if need_a:
            ga = g2 @ _swap(b2)
            if a.ndim == 1:  # (..., 1, n) -> (..., n); the engine sums the batch axes
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if need_b:
            gb = _swap(a2) @ g2
            if b.ndim == 1:  # (..., n, 1) -> (..., n)
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb
