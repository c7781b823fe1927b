"""Costs and activations as functions of Tensors (also available as ``nn.F``).

Notation of the book: a batch holds n examples x, one per row; a = a^L(x) is the network's output
for x and y = y(x) the desired output.  The formulas in the docstrings are what the tests check
against hand-derived derivatives and finite differences.

Most costs are compositions of Tensor operations.  Three are fused ops (a ``Function`` each, with
the derivative beside the forward, written in Tensor operations so ``create_graph`` still works):
:class:`QuadraticCost` and :class:`SoftmaxCrossEntropy` because they run once per mini-batch and
one node is cheaper than four, and :class:`SigmoidBinaryCrossEntropy` for stability.

Numerical care (see the ``NOTE:`` comments): costs that take logits shift by the maximum or use
softplus, so they stay finite for any finite input; costs that take probabilities never evaluate
0 · ln 0 (it is taken as 0, its limit).  Nothing is clipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd import Context, Function, Grad
from ..ops import (
    AvgPool2d,
    Conv2d,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Sigmoid,
    Softmax,
    shifted_max,
    stable_softplus,
)
from ..ops.conv import pair
from ..tensor import _NOT_GIVEN, Tensor, _integral_floats, where

__all__ = [
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv2d",
    "cross_entropy",
    "cross_entropy_cost",
    "l1_penalty",
    "l2_penalty",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "quadratic_cost",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- activations


def sigmoid(z: Tensor) -> Tensor:
    """σ(z) = 1 / (1 + e^(−z))."""
    return z.sigmoid()


def tanh(z: Tensor) -> Tensor:
    """tanh(z)."""
    return z.tanh()


def relu(z: Tensor) -> Tensor:
    """max(0, z)."""
    return z.relu()


def leaky_relu(z: Tensor, negative_slope: float = 0.01) -> Tensor:
    """z for z > 0, else negative_slope · z."""
    return z.leaky_relu(negative_slope)


def softmax(z: Tensor, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
    """e^(z_j) / Σ_k e^(z_k) along ``axis`` (PyTorch's ``dim``; default −1)."""
    return z.softmax(axis, dim=dim)


def log_softmax(z: Tensor, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
    """z_j − ln Σ_k e^(z_k) along ``axis`` (PyTorch's ``dim``; default −1)."""
    return z.log_softmax(axis, dim=dim)


def linear(x: Any, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """z = x Wᵀ + b (the book's z = w a + b for a batch of rows x), as ``nn.Linear`` computes it.

    One graph node (:class:`tinygrad_sgd.ops.Linear`), not the three of ``x @ weight.T + bias``
    (transpose, matmul, add): the same values, with ∂C/∂x = G W, ∂C/∂W = Gᵀ x, ∂C/∂b = Σ_rows G
    for G = ∂C/∂z.  ``x`` may be a Tensor or an array of shape (..., n_in); ``weight`` (n_out,
    n_in) and ``bias`` (n_out,) must be Tensors (a clear error names the argument otherwise).
    """
    if not isinstance(weight, Tensor):
        raise TypeError(f"linear: weight must be a Tensor, got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"linear: bias must be a Tensor or None, got {type(bias).__name__}")
    xt = weight._operand(x)
    w_shape, x_shape = weight.data.shape, xt.data.shape
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape {w_shape}")
    n_out, n_in = w_shape
    if not x_shape or x_shape[-1] != n_in:
        raise ValueError(
            f"linear: input of shape {x_shape} does not match weight of shape {w_shape}: "
            f"the input's last axis must have length {n_in}"
        )
    if bias is not None and bias.data.shape != (n_out,):
        raise ValueError(f"linear: bias must have shape ({n_out},), got {bias.data.shape}")
    return Linear.apply(xt, weight, bias)


# ---------------------------------------------------------------- convolution (chapter 6)


def _image(x: Tensor, fn: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{fn}: input must be 4-D (N, C, H, W), got shape {x.shape}")


def _fits(size: tuple[int, int], kernel: tuple[int, int], fn: str, what: str) -> None:
    if kernel[0] > size[0] or kernel[1] > size[1]:
        raise ValueError(
            f"{fn}: kernel_size {kernel} is bigger than the {what} {size} (H, W): no window fits"
        )


def conv2d(
    input: Any,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """The convolutional layer of the book's chapter 6, with PyTorch's semantics (a
    cross-correlation): z[n, o, i, j] = b[o] + Σ_{c,u,v} x̃[n, c, s·i + u, s·j + v] w[o, c, u, v],
    x̃ the input padded with ``padding`` zeros.

    ``input`` (N, C, H, W) (a Tensor or an array), ``weight`` (C_out, C, kH, kW), ``bias``
    (C_out,) or None; ``stride`` and ``padding`` an int or a pair (rows, columns).  Output
    (N, C_out, Ho, Wo), Ho = ⌊(H + 2p − kH)/s⌋ + 1.  Its backward is two convolutions
    (:class:`tinygrad_sgd.ops.Conv2d`), so second derivatives work.
    """
    fn = "conv2d"
    if not isinstance(weight, Tensor):
        raise TypeError(f"{fn}: weight must be a Tensor, got {type(weight).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{fn}: bias must be a Tensor or None, got {type(bias).__name__}")
    x = weight._operand(input)
    _image(x, fn)
    if weight.ndim != 4:
        raise ValueError(f"{fn}: weight must be 4-D (C_out, C, kH, kW), got shape {weight.shape}")
    for t, name in ((x, "input"), (weight, "weight"), (bias, "bias")):
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{fn}: {name} must be floating point, got dtype {t.dtype}")
    o, c, kh, kw = weight.shape
    if x.shape[1] != c:
        raise ValueError(
            f"{fn}: input has {x.shape[1]} channels (shape {x.shape}) but weight expects {c} "
            f"(shape {weight.shape}: C_out, C, kH, kW)"
        )
    if bias is not None and bias.shape != (o,):
        raise ValueError(f"{fn}: bias must have shape ({o},) (C_out), got {bias.shape}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{fn}: the kernel (weight of shape {weight.shape}) is empty")
    sh, sw = pair(stride, "stride", fn, 1)
    ph, pw = pair(padding, "padding", fn, 0)
    padded = (x.shape[2] + 2 * ph, x.shape[3] + 2 * pw)
    if x.shape[0] * c * padded[0] * padded[1] * x.dtype.itemsize > np.iinfo(np.intp).max:
        raise ValueError(f"{fn}: padding {padding!r} makes the padded input too large to store")
    _fits(padded, (kh, kw), fn, "padded input")
    # NOTE: positional, so that observers (tg.compile, trace) see every argument
    return Conv2d.apply(x, weight, bias, (sh, sw), (ph, ph, pw, pw), (1, 1))


def _pool_args(
    x: Any, kernel_size: Any, stride: Any, fn: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: input must be a Tensor, got {type(x).__name__}")
    _image(x, fn)
    kernel = pair(kernel_size, "kernel_size", fn, 1)
    step = kernel if stride is None else pair(stride, "stride", fn, 1)
    _fits((x.shape[2], x.shape[3]), kernel, fn, "input")
    return kernel, step


def max_pool2d(
    input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> Tensor:
    """The maximum of each kernel_size window of (N, C, H, W), windows ``stride`` apart (by
    default the kernel size: the book's max-pooling).  Tied maxima share the gradient equally
    (see :class:`tinygrad_sgd.ops.MaxPool2d`)."""
    kernel, step = _pool_args(input, kernel_size, stride, "max_pool2d")
    return MaxPool2d.apply(input, kernel, step)


def avg_pool2d(
    input: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> Tensor:
    """The mean of each kernel_size window of (N, C, H, W), windows ``stride`` apart (by default
    the kernel size)."""
    kernel, step = _pool_args(input, kernel_size, stride, "avg_pool2d")
    return AvgPool2d.apply(input, kernel, step)


# ---------------------------------------------------------------- helpers


def _tensor(x: Any, fn: str, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: {what} must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{fn}: {what} must be floating point, got dtype {x.dtype}")
    return x


def _float_target(target: Any, like: Tensor, fn: str) -> Tensor:
    """The target as a floating Tensor of ``like``'s shape (and dtype, unless it needs a grad)."""
    if isinstance(target, Tensor):
        t = target
        if t.dtype.kind not in "biuf":
            raise TypeError(f"{fn}: target has unsupported dtype {t.dtype}")
        if t.dtype != like.dtype and not t.requires_grad:
            t = Tensor._wrap(t.data.astype(like.dtype))
    else:
        arr = np.asarray(target)
        if arr.dtype.kind not in "biuf":
            raise TypeError(
                f"{fn}: target must be numbers (Tensor, ndarray or list), got dtype {arr.dtype}"
            )
        # A copy, as for any array operand: the caller's array stays theirs (to share it, pass
        # Tensor.from_numpy(target)).
        t = Tensor._wrap(np.array(arr, dtype=like.dtype))
    if t.shape != like.shape:
        raise ValueError(
            f"{fn}: target shape {t.shape} does not match the output shape {like.shape} "
            "(no broadcasting: the two must be equal)"
        )
    return t


def _class_indices(target: Any, logits: Tensor, fn: str) -> np.ndarray | None:
    """Integer class indices as an intp array, validated; None when the target is not integer.

    A floating Tensor of one label per row (shape ``logits.shape[:-1]``, what ``Tensor(y)``
    makes of integer labels) counts as class indices when every value is an exact integer, and
    is a ``TypeError`` saying to keep labels integers otherwise (never rounded)."""
    arr = target.data if isinstance(target, Tensor) else np.asarray(target)
    if isinstance(target, Tensor) and arr.dtype.kind == "f" and arr.shape == logits.shape[:-1]:
        arr = _integral_floats(arr, f"{fn}: class labels")
    if arr.dtype.kind not in "iu":
        return None
    if logits.ndim not in (1, 2):
        raise ValueError(
            f"{fn}: with class-index targets the input must be (classes,) or (n, classes), "
            f"got shape {logits.shape}"
        )
    expected = logits.shape[:-1]
    if arr.shape != expected:
        raise ValueError(
            f"{fn}: class-index target has shape {arr.shape} but the input {logits.shape} needs "
            f"shape {expected} (one index per row)"
        )
    k = logits.shape[-1]
    bad = (arr < 0) | (arr >= k)
    if np.any(bad):
        raise ValueError(
            f"{fn}: class index {arr[bad].flat[0]} is out of range for {k} classes "
            f"(valid: 0 .. {k - 1})"
        )
    return arr.astype(np.intp)


def _reduce(per_example: Tensor, reduction: str, fn: str, count: int | None = None) -> Tensor:
    if reduction == "none":
        return per_example
    if reduction == "sum":
        return per_example.sum()
    if reduction == "mean":
        n = per_example.size if count is None else count
        return per_example.sum() * (1.0 / max(n, 1))
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _scale(reduction: str, count: int, fn: str) -> float | None:
    """The factor a fused cost multiplies its sum by: 1/count ("mean"), 1 ("sum") or None."""
    if reduction == "none":
        return None
    if reduction == "sum":
        return 1.0
    if reduction == "mean":
        return 1.0 / max(count, 1)
    raise ValueError(f"{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _reduced(per: np.ndarray, scale: float | None, dtype: Any) -> np.ndarray:
    return per if scale is None else np.asarray(per.sum() * scale, dtype=dtype)


class QuadraticCost(Function):
    """Fused quadratic cost  C = (scale/2) Σ (a − y)²  (scale = 1/n for the book's cost).

    ∂C/∂a = scale (a − y),   ∂C/∂y = −scale (a − y).  One graph node instead of four, because
    this is the cost of the book's main experiment and it runs once per mini-batch.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, y: np.ndarray, scale: float) -> np.ndarray:
        d = a - y
        ctx.scale = scale
        ctx.save_for_backward(a, y)
        return np.asarray(0.5 * scale * np.vdot(d, d), dtype=np.result_type(a, y))

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad | None, Grad | None, None]:
        a, y = ctx.saved_tensors
        ga = a - y
        if isinstance(ga, np.ndarray):
            ga *= g * ctx.scale  # in place: ga is fresh (see Sigmoid)
        else:
            ga = ga * (g * ctx.scale)  # a Tensor under create_graph: recorded, so not in place
        return ga, (-ga if ctx.needs_input_grad[1] else None), None


class SoftmaxCrossEntropy(Function):
    """Fused, stable softmax cross-entropy for logits z of shape (n, k), per example x:

        ℓ_x = −Σ_j y_j ln softmax(z)_j,   ln softmax(z)_j = z_j − ln Σ_k e^(z_k)

    with y given as rows (``y``) or as class indices (``idx``, y = one-hot rows); the output is
    the n values ℓ_x, or their sum times ``scale`` (1/n for the mean).

    ∂ℓ_x/∂z = softmax(z) Σ_j y_j − y (= softmax(z) − y for one-hot or probability rows),
    ∂ℓ_x/∂y = −ln softmax(z).

    NOTE: z is shifted by its row maximum m, so e^(z_j − m) ≤ 1 never overflows and
    ln Σ ≥ 0 never takes the log of 0; e^(z_j − m) may underflow to 0, which is the correctly
    rounded value, so that is not reported even under ``np.errstate(all="raise")``.
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context,
        z: np.ndarray,
        y: np.ndarray | None,
        idx: np.ndarray | None,
        scale: float | None,
    ) -> np.ndarray:
        shifted = z - shifted_max(z, -1)
        with np.errstate(under="ignore"):
            lse = np.log(np.sum(np.exp(shifted), axis=-1))
        if idx is not None:
            per = lse - shifted[np.arange(z.shape[0]), idx]
        else:
            assert y is not None
            # NOTE: −Σ y (z − m − ln Σ) as written, not (Σ y) ln Σ − Σ y (z − m): the same value,
            # but a weight y_j = ∞ on a class of probability 0 (z_j = −∞) makes the second form
            # ∞ − ∞ = NaN where the loss is +∞ (found by the hostile-input fuzzer).
            per = -(y * (shifted - lse[..., None])).sum(axis=-1)
        ctx.idx, ctx.scale = idx, scale
        ctx.save_for_backward(z, y)
        return _reduced(per, scale, z.dtype)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad | None, Grad | None, None, None]:
        z, y = ctx.saved_tensors
        need_z, need_y = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gcol = g * ctx.scale if ctx.scale is not None else g.reshape(g.shape + (1,))
        gz = gy = None
        with np.errstate(under="ignore"):
            if need_z:
                s = Softmax.call(z, -1)
                if ctx.idx is not None:
                    onehot = np.zeros(z.shape, dtype=z.dtype)
                    onehot[np.arange(z.shape[0]), ctx.idx] = 1
                    gz = gcol * (s - onehot)
                else:
                    gz = gcol * (s * y.sum(axis=-1, keepdims=True) - y)
            if need_y:
                gy = -(gcol * LogSoftmax.call(z, -1))
        return gz, gy, None, None


class SigmoidBinaryCrossEntropy(Function):
    """Fused, stable binary cross-entropy of a = σ(z) from z, elementwise:

        ℓ = −[y ln σ(z) + (1 − y) ln(1 − σ(z))] = softplus(z) − y z,
        ∂ℓ/∂z = σ(z) − y,   ∂ℓ/∂y = −z;

    the output is ℓ, or its sum times ``scale``.

    NOTE: softplus is the stable :func:`~tinygrad_sgd.ops.stable_softplus` of the ``Softplus``
    op: finite for every finite z.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, z: np.ndarray, y: np.ndarray, scale: float | None) -> np.ndarray:
        ctx.scale = scale
        ctx.save_for_backward(z, y)
        return _reduced(stable_softplus(z) - y * z, scale, z.dtype)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad | None, Grad | None, None]:
        z, y = ctx.saved_tensors
        gfull = g * ctx.scale if ctx.scale is not None else g
        gz = gy = None
        if ctx.needs_input_grad[0]:
            with np.errstate(under="ignore"):
                gz = gfull * (Sigmoid.call(z) - y)
        if ctx.needs_input_grad[1]:
            gy = -(gfull * z)
        return gz, gy, None


def _batch_size(t: Tensor) -> int:
    """n in the book's 1/n: the number of rows, or 1 for a single example (0-d or 1-D)."""
    return 1 if t.ndim <= 1 else t.shape[0]


def one_hot(indices: Any, num_classes: int, dtype: Any = np.float64) -> np.ndarray:
    """Rows e_y: ``one_hot([2, 0], 3) = [[0, 0, 1], [1, 0, 0]]`` (the book's vectorized_result)."""
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: indices must be integers, got dtype {idx.dtype}")
    if np.any((idx < 0) | (idx >= num_classes)):
        raise ValueError(f"one_hot: indices must lie in 0 .. {num_classes - 1}")
    out = np.zeros(idx.shape + (num_classes,), dtype=dtype)
    np.put_along_axis(out, idx[..., None].astype(np.intp), 1, axis=-1)
    return out


# ---------------------------------------------------------------- costs


def quadratic_cost(output: Tensor, target: Any) -> Tensor:
    """The book's quadratic cost  C = (1/2n) Σ_x ‖y(x) − a(x)‖².

    ``output`` a: shape (n, k) for a batch of n examples (one per row), or (k,) / () for a single
    example (then n = 1).  ``target`` y: the same shape, or for a 2-D output the n integer class
    labels, which are turned into one-hot rows (the book's ``vectorized_result``).

    ∂C/∂a = (a − y)/n, so for sigmoid outputs the book's BP1 reads δ^L = (a − y) ⊙ σ'(z^L) (per
    example; the 1/n is the batch average).
    """
    a = _tensor(output, "quadratic_cost", "output")
    if a.ndim == 2:
        idx = _class_indices(target, a, "quadratic_cost")
        if idx is not None:
            target = one_hot(idx, a.shape[1], a.dtype)
    y = _float_target(target, a, "quadratic_cost")
    return QuadraticCost.apply(a, y, 1.0 / _batch_size(a))


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (PyTorch's): (1/N) Σ_i (a_i − y_i)² over all N elements
    (``reduction="sum"``: no 1/N; ``"none"``: the elementwise squares).

    Note quadratic_cost = mse_loss · k / 2 for k outputs per example: the book halves and
    averages over examples only.
    """
    a = _tensor(input, "mse_loss", "input")
    y = _float_target(target, a, "mse_loss")
    d = a - y
    return _reduce(d * d, reduction, "mse_loss")


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy from logits z (the book's chapter 3 softmax + log-likelihood):

        C = −(1/n) Σ_x Σ_j y_j ln softmax(z)_j = −(1/n) Σ_x ln softmax(z)_{y(x)}

    ``logits``: (n, k) or a single (k,).  ``target``: n integer class indices (a 0-d index for
    1-D logits) or rows of class probabilities / one-hot rows of the logits' shape.
    ``reduction``: ``"mean"`` (over the n examples), ``"sum"`` or ``"none"`` (one cost per example).

    ∂C/∂z = (softmax(z) − y)/n.

    NOTE: one fused op (:class:`SoftmaxCrossEntropy`) computes ln Σ e^(z − max z) − (z_y − max z):
    any finite logits (±1000 included) give a finite cost and gradient, probabilities are never
    formed and logged, and the graph gets a single node.
    """
    z = _tensor(logits, "cross_entropy", "logits")
    if z.ndim not in (1, 2):
        raise ValueError(f"cross_entropy: logits must be (k,) or (n, k), got shape {z.shape}")
    idx = _class_indices(target, z, "cross_entropy")
    y = None if idx is not None else _float_target(target, z, "cross_entropy")
    single = z.ndim == 1
    n = 1 if single else z.shape[0]
    scale = _scale(reduction, n, "cross_entropy")
    if single:  # one example: work on a batch of one row
        z = z.reshape(1, -1)
        y = None if y is None else y.reshape(1, -1)
        idx = None if idx is None else idx.reshape(1)
    out = SoftmaxCrossEntropy.apply(z, y, idx, scale)
    return out.reshape(()) if single and scale is None else out


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of the correct classes:  C = −(1/n) Σ_x log_probs[x, y(x)].

    ``log_probs``: (n, k) (or (k,)) log-probabilities, e.g. from ``log_softmax``; ``target``:
    integer class indices of shape (n,) (or 0-d).  ∂C/∂log_probs[x, j] = −[j = y(x)]/n.
    """
    lp = _tensor(log_probs, "nll_loss", "log_probs")
    idx = _class_indices(target, lp, "nll_loss")
    if idx is None:
        raise TypeError("nll_loss: target must be integer class indices")
    if lp.ndim == 1:
        picked = lp[int(idx)]
    else:
        picked = lp[np.arange(lp.shape[0]), idx]
    return _reduce(-picked, reduction, "nll_loss")


def _bce_terms(a: Tensor, y: Tensor) -> Tensor:
    """−[y ln a + (1 − y) ln(1 − a)] elementwise, with 0 · ln 0 taken as 0."""
    # NOTE: where a coefficient is 0 and its logarithm's argument is 0 too (a = y = 0, or
    # a = y = 1), ln is applied to the constant 1 instead, so the term is exactly 0 and its
    # gradient finite (never 0 · ln 0 = NaN).  Everywhere else the formula is used as it is,
    # so ∂ℓ/∂y = ln(1 − a) − ln a stays exact; an a of exactly 0 or 1 against the opposite
    # label gives +inf, which is the true value.
    yd, ad = y.data, a.data
    zero_zero = (yd == 0) & (ad == 0)
    pos = where(~zero_zero, a, 1.0) if zero_zero.any() else a
    one_minus = 1 - a
    one_one = (yd == 1) & (ad == 1)
    neg = where(~one_one, one_minus, 1.0) if one_one.any() else one_minus
    return -(y * pos.log() + (1 - y) * neg.log())


def binary_cross_entropy(probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of probabilities a ∈ [0, 1] (PyTorch's ``binary_cross_entropy``):

        ℓ = −[y ln a + (1 − y) ln(1 − a)] elementwise, averaged over all elements ("mean").

    ∂ℓ/∂a = (a − y) / (a (1 − a)).  0 · ln 0 is taken as 0 (no NaN for a = y ∈ {0, 1}).  Values
    of a outside [0, 1] raise ``ValueError``.  For saturating outputs prefer
    :func:`binary_cross_entropy_with_logits`, which never forms a.
    """
    a = _tensor(probs, "binary_cross_entropy", "probs")
    y = _float_target(target, a, "binary_cross_entropy")
    if np.any((a.data < 0) | (a.data > 1)) or np.isnan(a.data).any():
        raise ValueError("binary_cross_entropy: probs must lie in [0, 1]")
    return _reduce(_bce_terms(a, y), reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Any, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of a = σ(z) computed from z:

        ℓ = −[y ln σ(z) + (1 − y) ln(1 − σ(z))] = softplus(z) − y z,   ∂ℓ/∂z = σ(z) − y.

    NOTE: softplus(z) = max(z, 0) + ln(1 + e^(−|z|)) is finite for every finite z, so this is
    stable at ±1000 where σ(z) rounds to exactly 0 or 1.
    """
    z = _tensor(logits, "binary_cross_entropy_with_logits", "logits")
    y = _float_target(target, z, "binary_cross_entropy_with_logits")
    scale = _scale(reduction, z.size, "binary_cross_entropy_with_logits")
    return SigmoidBinaryCrossEntropy.apply(z, y, scale)


def cross_entropy_cost(output: Tensor, target: Any) -> Tensor:
    """The book's chapter 3 cross-entropy cost for sigmoid output neurons a = σ(z):

        C = −(1/n) Σ_x Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)]

    summed over the output neurons j and averaged over the n examples (rows; n = 1 for a single
    1-D example).  ``target`` as in :func:`quadratic_cost` (same shape, or integer labels for a
    2-D output).  With a = σ(z), BP1 becomes δ^L = a − y: the σ'(z) factor cancels, which is why
    learning does not slow down when the output neurons saturate.
    """
    a = _tensor(output, "cross_entropy_cost", "output")
    if a.ndim == 2:
        idx = _class_indices(target, a, "cross_entropy_cost")
        if idx is not None:
            target = one_hot(idx, a.shape[1], a.dtype)
    y = _float_target(target, a, "cross_entropy_cost")
    if np.any((a.data < 0) | (a.data > 1)) or np.isnan(a.data).any():
        raise ValueError("cross_entropy_cost: the output must lie in [0, 1] (sigmoid outputs)")
    return _bce_terms(a, y).sum() * (1.0 / _batch_size(a))


def _penalty_weights(weights: Any, lmbda: float, n: int, fn: str) -> list[Tensor]:
    """The weight Tensors of a penalty, after checking λ ≥ 0 and n > 0 (see :func:`l2_penalty`)."""
    from .module import Module

    number = isinstance(lmbda, (int, float)) and not isinstance(lmbda, bool)
    if not (number and math.isfinite(lmbda) and lmbda >= 0):
        raise ValueError(f"{fn}: lmbda must be a finite number >= 0, got {lmbda!r}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"{fn}: n (the training-set size) must be an int > 0, got {n!r}")
    ws: Iterable[Any] = (
        [p for p in weights.parameters() if p.ndim >= 2] if isinstance(weights, Module) else weights
    )
    out = [_tensor(w, fn, "each weight") for w in ws]
    if not out:
        raise ValueError(f"{fn}: no weights given")
    return out


def l2_penalty(weights: Any, lmbda: float, n: int) -> Tensor:
    """The book's L2 regularisation term  (λ / 2n) Σ_w w²  (chapter 3), added to the cost.

    ``weights``: an iterable of weight Tensors, or a Module, in which case its parameters with at
    least 2 dimensions are used (weights, not biases, as in the book).  ``n`` is the size of the
    whole training set.  Its gradient is (λ/n) w, so adding it equals SGD's ``weight_decay=λ/n``
    on the weights: w → (1 − ηλ/n) w − η ∂C₀/∂w.
    """
    total: Tensor | None = None
    for w in _penalty_weights(weights, lmbda, n, "l2_penalty"):
        s = (w * w).sum()
        total = s if total is None else total + s
    assert total is not None
    return total * (lmbda / (2.0 * n))


def l1_penalty(weights: Any, lmbda: float, n: int) -> Tensor:
    """The book's L1 regularisation term  (λ / n) Σ_w |w|  (chapter 3), added to the cost.

    ``weights``, ``lmbda`` and ``n`` as in :func:`l2_penalty`.  Its gradient is (λ/n) sgn(w)
    with sgn(0) = 0 (the convention abs'(0) = 0), so SGD on C = C₀ + (λ/n) Σ|w| is the book's
    rule  w → w − (ηλ/n) sgn(w) − η ∂C₀/∂w:  a constant pull towards 0, where L2's is
    proportional to w.
    """
    total: Tensor | None = None
    for w in _penalty_weights(weights, lmbda, n, "l1_penalty"):
        s = w.abs().sum()
        total = s if total is None else total + s
    assert total is not None
    return total * (lmbda / n)
