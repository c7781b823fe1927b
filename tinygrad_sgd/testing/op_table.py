"""The table of every built-in differentiable operation, and the row type users fill for theirs.

One row (:class:`OpSpec`) says everything the checker needs to know about an operation:

* ``name``;
* ``fn(*tensors, **params)``: the operation as a user calls it;
* ``ref(*arrays, **params)``: the same mathematics in plain NumPy (the forward's reference);
* the input domain: how many tensor inputs and their shapes (``arity`` mutually broadcastable
  shapes, 0-d included, unless ``shapes`` says otherwise), their values (:class:`Domain`: bounds
  and points to stay away from), ``distinct`` when ties must be avoided, and ``params`` for the
  non-tensor arguments (axes, exponents, indices);
* ``second_order``: whether second derivatives are checked too.

The same rows feed the project's Hypothesis tests (``tests/test_ops.py``) and the
``python -m tinygrad_sgd gradcheck`` command.  Nothing here imports Hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..nn import functional as F
from ..ops.conv import Fold2d, SumPool2d, Unfold2d, out_size, pair
from ..tensor import Tensor, concatenate, maximum, minimum, stack, where
from .draw import Domain, Draw, Shape

__all__ = ["OP_TABLE", "Case", "OpSpec", "find_ops"]


@dataclass(frozen=True)
class Case:
    """One generated input: the tensor inputs as float64 arrays, and the other arguments."""

    arrays: tuple[np.ndarray, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """The input, one array or parameter a line, with every digit needed to reproduce it."""
        parts = [
            f"x{i}: shape {a.shape} = {np.array2string(a, precision=17, separator=', ')}"
            for i, a in enumerate(self.arrays)
        ]
        parts += [f"{k} = {v!r}" for k, v in self.params.items()]
        return "\n".join("    " + p.replace("\n", "\n    ") for p in parts)


DomainSpec = Domain | Sequence[Domain] | Callable[[dict[str, Any]], "Domain | Sequence[Domain]"]


@dataclass(frozen=True)
class OpSpec:
    """One row of the op table (see the module docstring).

    ``shapes(draw)`` returns the tensor inputs' shapes (default: ``arity`` mutually broadcastable
    shapes); ``params(draw, shapes)`` returns the keyword arguments passed to both ``fn`` and
    ``ref``; ``domain`` is one :class:`Domain` for all inputs, one per input, or a function of the
    params (for kinks that depend on them, like ``clip``'s bounds).  ``atol``/``rtol`` override
    the checker's tolerances for this op (give the numerical reason beside them).
    ``expression``: the name under which the ``graph`` command's expressions may call ``fn``
    (only for elementwise ops of ``arity`` scalar Tensors and no params; None: not callable there).
    """

    name: str
    fn: Callable[..., Tensor]
    ref: Callable[..., Any]
    domain: DomainSpec = Domain()
    arity: int = 1
    shapes: Callable[[Draw], Sequence[Shape]] | None = None
    params: Callable[[Draw, Sequence[Shape]], dict[str, Any]] | None = None
    distinct: bool = False
    second_order: bool = True
    atol: float | None = None
    rtol: float | None = None
    expression: str | None = None

    def draw_case(self, draw: Draw) -> Case:
        """Generate one input for this op from ``draw`` (NumPy or Hypothesis randomness)."""
        shapes = (
            tuple(tuple(s) for s in self.shapes(draw))
            if self.shapes is not None
            else draw.broadcastable_shapes(self.arity)
        )
        params = self.params(draw, shapes) if self.params is not None else {}
        dom: Any = self.domain(params) if callable(self.domain) else self.domain
        if self.distinct:
            d0 = dom if isinstance(dom, Domain) else dom[0]
            arrays = draw.distinct_arrays(shapes, d0)
        else:
            doms = [dom] * len(shapes) if isinstance(dom, Domain) else list(dom)
            if len(doms) != len(shapes):
                raise ValueError(f"{self.name}: {len(doms)} domains for {len(shapes)} inputs")
            arrays = [draw.array(s, d) for s, d in zip(shapes, doms)]
        return Case(tuple(arrays), params)


# --------------------------------------------------------------------------------------------
# Small generators shared by several rows
# --------------------------------------------------------------------------------------------


def _nd(min_dims: int = 0, max_dims: int = 3, max_side: int = 4) -> Callable[[Draw], list[Shape]]:
    return lambda d: [d.shape(min_dims, max_dims, 1, max_side)]


def _axis_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """``axis`` as None, an int (negative too) or a tuple; ``keepdims`` either way."""
    ndim = len(shapes[0])
    kind = draw.integers(0, 2) if ndim else 0
    axis: Any = None
    if kind == 1:
        axis = draw.integers(-ndim, ndim - 1)
    elif kind == 2:
        axis = tuple(a - ndim if draw.boolean() else a for a in range(ndim) if draw.boolean())
    return {"axis": axis, "keepdims": draw.boolean()}


def _reduced_count(shape: Shape, axis: Any) -> int:
    if axis is None:
        return int(np.prod(shape, dtype=np.int64))
    axes = (axis,) if isinstance(axis, int) else axis
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


def _var_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    p = _axis_params(draw, shapes)
    p["ddof"] = draw.choice([0, 1]) if _reduced_count(shapes[0], p["axis"]) >= 2 else 0
    return p


def _one_axis(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    ndim = len(shapes[0])
    return {"axis": draw.integers(-ndim, ndim - 1)}


def _compatible(draw: Draw, target: Shape) -> Shape:
    """A shape that broadcasts to ``target``: a suffix of it with some axes set to 1."""
    k = draw.integers(0, len(target))
    return tuple(1 if draw.boolean() else n for n in target[len(target) - k :])


def _scalar(values: Sequence[float]) -> Callable[[Draw, Sequence[Shape]], dict[str, Any]]:
    return lambda d, s: {"c": d.choice(values)}


# --------------------------------------------------------------------------------------------
# Shape-specific generators
# --------------------------------------------------------------------------------------------


def _matmul_shapes(kind: str) -> Callable[[Draw], list[Shape]]:
    def gen(d: Draw) -> list[Shape]:
        m, k, n = d.integers(1, 4), d.integers(1, 4), d.integers(1, 4)
        b = d.integers(1, 3)
        if kind == "1d":
            return [(k,), (k,)]
        if kind == "2d":
            return [(m, k), (k, n)]
        if kind == "1d@2d":
            return [(k,), (k, n)]
        if kind == "2d@1d":
            return [(m, k), (k,)]
        if kind == "batched":
            return [(b, m, k), (b, k, n)]
        if kind == "batched@1d":
            return [(b, m, k), (k,)]
        # broadcast batch axes: (b, 1, m, k) @ (c, k, n) -> (b, c, m, n)
        c = d.integers(1, 3)
        return [(b, 1, m, k), (c, k, n)] if d.boolean() else [(m, k), (b, c, k, n)]

    return gen


def _reshape_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    s = shapes[0]
    size = int(np.prod(s, dtype=np.int64))
    options: list[Shape] = [(size,), tuple(reversed(s)), (1,) + s, s + (1,), (-1,), (size, 1)]
    if len(s) >= 2:
        options += [(s[0] * s[1],) + s[2:], (s[0], -1)]
    if size == 1:
        options.append(())
    return {"shape": draw.choice(options)}


def _transpose_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    ndim = len(shapes[0])
    if draw.integers(0, 3) == 0:
        return {"axes": None}
    rest = list(range(ndim))
    perm = []
    while rest:
        perm.append(rest.pop(draw.integers(0, len(rest) - 1)))
    return {"axes": tuple(perm)}


def _transpose(x: Tensor, axes: Any) -> Tensor:
    return x.transpose() if axes is None else x.transpose(*axes)


def _squeeze_shapes(draw: Draw) -> list[Shape]:
    s = list(draw.shape(0, 2))
    for _ in range(draw.integers(1, 2)):
        s.insert(draw.integers(0, len(s)), 1)
    return [tuple(s)]


def _squeeze_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    s = shapes[0]
    ones = [i for i, n in enumerate(s) if n == 1]
    kind = draw.integers(0, 2)
    if kind == 0:
        return {"axis": None}
    a = draw.choice(ones)
    a = a - len(s) if draw.boolean() else a
    return {"axis": a if kind == 1 else (a,)}


def _squeeze_ref(x: np.ndarray, axis: Any) -> np.ndarray:
    return np.squeeze(x, axis=axis)


def _broadcast_shapes(draw: Draw) -> list[Shape]:
    return [draw.broadcastable_shapes(2)[0]]


def _broadcast_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    s = shapes[0]
    lead = tuple(draw.integers(1, 3) for _ in range(draw.integers(0, 2)))
    stretched = tuple(draw.integers(1, 3) if n == 1 else n for n in s)
    return {"shape": lead + stretched}


def _basic_index(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """Ints (negative too), slices with steps (negative too), ``None`` and ``...``."""
    s = shapes[0]
    k = draw.integers(1, len(s))  # how many axes get an explicit index
    ellipsis = k < len(s) and draw.boolean()
    parts: list[Any] = []
    for n in s[len(s) - k :] if ellipsis else s[:k]:
        kind = draw.integers(0, 3)
        if kind == 0:
            parts.append(draw.integers(-n, n - 1))
        elif kind == 1:
            start = draw.integers(0, n - 1)
            parts.append(slice(start, draw.integers(start + 1, n), draw.choice([1, 2])))
        elif kind == 2:  # backwards, from the end down to (and including) `stop`
            stop = draw.integers(0, n - 1)
            parts.append(slice(None, stop - 1 if stop > 0 else None, -1))
        else:
            parts.append(slice(None))
    if ellipsis:
        parts.insert(0, Ellipsis)
    if draw.integers(0, 3) == 0:
        parts.insert(draw.integers(0, len(parts)), None)  # np.newaxis
    return {"index": parts[0] if len(parts) == 1 and draw.boolean() else tuple(parts)}


def _array_index(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """Integer-array indexing with repeated indices (their gradients must accumulate)."""
    s = shapes[0]
    k = draw.integers(1, 6)
    idx0 = draw.int_array((k,), -s[0], s[0] - 1)
    idx0[draw.integers(0, k - 1)] = idx0[0]  # at least one repeat when k > 1
    kind = draw.integers(0, 2) if len(s) >= 2 else 0
    if kind == 0:
        return {"index": idx0}
    if kind == 1:
        return {"index": (idx0, draw.int_array((k,), 0, s[1] - 1))}
    return {"index": (slice(None), draw.int_array((2, k), -s[1], s[1] - 1))}


def _mask_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    return {"index": draw.bool_array(shapes[0])}


def _index_ref(x: np.ndarray, index: Any) -> np.ndarray:
    return np.asarray(x[index])


def _concat_shapes(draw: Draw) -> list[Shape]:
    base = list(draw.shape(1, 3))
    ax = draw.integers(0, len(base) - 1)
    out = []
    for _ in range(draw.integers(1, 3)):
        s = list(base)
        s[ax] = draw.integers(1, 3)
        out.append(tuple(s))
    return out


def _concat_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    ndim = len(shapes[0])
    fits = [
        i
        for i in range(ndim)
        if all(t[j] == shapes[0][j] for t in shapes for j in range(ndim) if j != i)
    ]
    ax = draw.choice(fits)
    return {"axis": ax - ndim if draw.boolean() else ax}


def _stack_shapes(draw: Draw) -> list[Shape]:
    s = draw.shape(0, 2)
    return [s] * draw.integers(1, 3)


def _stack_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    n = len(shapes[0]) + 1
    return {"axis": draw.integers(-n, n - 1)}


def _where_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    target = np.broadcast_shapes(*shapes)
    return {"cond": draw.bool_array(_compatible(draw, target))}


def _clip_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    lo = draw.choice([-1.5, -0.5, None])
    hi = draw.choice([0.25, 1.0, None] if lo is not None else [0.25, 1.0])
    return {"lo": lo, "hi": hi}


def _clip_domain(p: dict[str, Any]) -> Domain:
    return Domain(avoid=tuple(v for v in (p["lo"], p["hi"]) if v is not None), margin=0.05)


def _array_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """A constant ndarray operand whose shape broadcasts with the tensor's."""
    return {"c": draw.array(_compatible(draw, shapes[0]), Domain(-2.0, 2.0))}


def _positive_array_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    return {"c": draw.array(_compatible(draw, shapes[0]), Domain(0.2, 3.0))}


def _matrix_for(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """A constant (m, k) ndarray to multiply the tensor (k,) or (k, n) from the left."""
    return {"c": draw.array((draw.integers(1, 3), shapes[0][0]), Domain(-2.0, 2.0))}


# --------------------------------------------------------------------------------------------
# The fused layer and the costs: shapes, parameters and plain-NumPy references
# --------------------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


def _linear_shapes(bias: bool) -> Callable[[Draw], list[Shape]]:
    """x (..., n_in) with 0 to 2 batch axes, W (n_out, n_in) and, with ``bias``, b (n_out,)."""

    def gen(d: Draw) -> list[Shape]:
        batch = d.shape(0, 2, 1, 3)
        n_in, n_out = d.integers(1, 4), d.integers(1, 4)
        shapes = [batch + (n_in,), (n_out, n_in)]
        return shapes + [(n_out,)] if bias else shapes

    return gen


def _linear_ref(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    # z_o = Σ_i x_i W_oi for every batch index.  NOTE: matmul, not einsum: with infinities
    # among the values the order of the sum decides between inf and nan (inf − inf).
    z: np.ndarray = np.matmul(x, w.T)
    return z if b is None else z + b


def _same_shapes(min_dims: int, max_dims: int) -> Callable[[Draw], list[Shape]]:
    """An output and a target of one shape (the costs do not broadcast)."""

    def gen(d: Draw) -> list[Shape]:
        s = d.shape(min_dims, max_dims, 1, 4)
        return [s, s]

    return gen


def _class_shapes(with_target: bool) -> Callable[[Draw], list[Shape]]:
    """Logits of one example (k,) or of a batch (n, k); with ``with_target``, target rows too."""

    def gen(d: Draw) -> list[Shape]:
        k = d.integers(1, 4)
        s = (k,) if d.boolean() else (d.integers(1, 4), k)
        return [s, s] if with_target else [s]

    return gen


def _reduction(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    return {"reduction": draw.choice(_REDUCTIONS)}


def _class_indices(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """One integer class per example: shape () for logits (k,), (n,) for logits (n, k)."""
    s = shapes[0]
    return {"target": draw.int_array(s[:-1], 0, s[-1] - 1)}


def _class_indices_and_reduction(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    return {**_class_indices(draw, shapes), **_reduction(draw, shapes)}


def _reduce_ref(per: np.ndarray, reduction: str) -> Any:
    if reduction == "mean":
        return np.mean(per)
    if reduction == "sum":
        return np.sum(per)
    return per


def _one_hot_ref(target: Any, k: int) -> np.ndarray:
    rows: np.ndarray = np.eye(k)[np.asarray(target)]  # (a tuple would index eye's axes instead)
    return rows


def _log_softmax_ref(z: np.ndarray) -> np.ndarray:
    log_softmax: np.ndarray = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    return log_softmax


def _examples(a: np.ndarray) -> int:
    """The book's n: the rows of a 2-D output, 1 for a single example."""
    return a.shape[0] if a.ndim == 2 else 1


def _quadratic_ref(a: np.ndarray, y: np.ndarray) -> Any:
    return 0.5 / _examples(a) * np.sum((a - y) ** 2)


def _bce_ref(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """−[y ln a + (1 − y) ln(1 − a)], with the documented 0 · ln 0 = 0 at a = y = 0 and
    a = y = 1 (the limit; NumPy alone would give NaN there)."""
    pos = np.where((y == 0) & (a == 0), 1.0, a)
    neg = np.where((y == 1) & (a == 1), 1.0, 1 - a)
    bce: np.ndarray = -(y * np.log(pos) + (1 - y) * np.log(neg))
    return bce


def _cross_entropy_rows_ref(z: np.ndarray, y: np.ndarray, reduction: str) -> Any:
    return _reduce_ref(-np.sum(y * _log_softmax_ref(z), axis=-1), reduction)


def _cross_entropy_indices_ref(z: np.ndarray, target: Any, reduction: str) -> Any:
    if np.asarray(target).dtype.kind not in "iu":  # the API reads a float target as rows
        return _cross_entropy_rows_ref(z, np.asarray(target), reduction)
    return _nll_ref(_log_softmax_ref(z), target, reduction)


def _nll_ref(lp: np.ndarray, target: np.ndarray, reduction: str) -> Any:
    """−ln p of the target class, picked (a one-hot product would turn a NaN or −∞ in another
    class into NaN, as 0 · NaN is NaN; the loss does not depend on the other classes)."""
    picked = np.take_along_axis(lp, np.asarray(target)[..., None], axis=-1)[..., 0]
    return _reduce_ref(-picked, reduction)


def _bce_with_logits_ref(z: np.ndarray, y: np.ndarray, reduction: str) -> Any:
    return _reduce_ref(_bce_ref(1 / (1 + np.exp(-z)), y), reduction)


def _cross_entropy_cost_ref(a: np.ndarray, y: np.ndarray) -> Any:
    return np.sum(_bce_ref(a, y)) / _examples(a)


# --------------------------------------------------------------------------------------------
# Convolution and pooling (chapter 6): images (N, C, H, W), references as direct loops
# --------------------------------------------------------------------------------------------


def _pair_ref(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else (int(v[0]), int(v[1]))


def _pair_draw(d: Draw, low: int, high: int) -> Any:
    """An int, or a pair of ints, in [low, high]."""
    if d.boolean():
        return d.integers(low, high)
    return (d.integers(low, high), d.integers(low, high))


def _conv_shapes(bias: bool) -> Callable[[Draw], list[Shape]]:
    """x (N, C, H, W), w (C_out, C, kH, kW) and, with ``bias``, b (C_out,); the image may be
    smaller than the kernel (the padding drawn in :func:`_conv_params` makes it fit)."""

    def gen(d: Draw) -> list[Shape]:
        n, c, o = d.integers(1, 2), d.integers(1, 2), d.integers(1, 2)
        kh, kw = d.integers(1, 3), d.integers(1, 3)
        shapes: list[Shape] = [(n, c, d.integers(1, 4), d.integers(1, 4)), (o, c, kh, kw)]
        return shapes + [(o,)] if bias else shapes

    return gen


def _conv_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """A stride of 1 to 3 and a padding of 0 to 2, at least what the kernel needs to fit."""
    (_, _, h, w), (_, _, kh, kw) = shapes[0], shapes[1]
    ph = draw.integers(max(0, -(-(kh - h) // 2)), 2)
    pw = draw.integers(max(0, -(-(kw - w) // 2)), 2)
    padding = ph if ph == pw and draw.boolean() else (ph, pw)
    return {"stride": _pair_draw(draw, 1, 3), "padding": padding}


def _conv2d_ref(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, stride: Any = 1, padding: Any = 0
) -> np.ndarray:
    """z[n, o, i, j] = b[o] + Σ_{c,u,v} x̃[n, c, s·i + u, s·j + v] w[o, c, u, v], one output
    element at a time, summed in float64 and rounded once to the result's dtype (float16 and
    float32 too: the reference for the correctly rounded sum)."""
    (sh, sw), (ph, pw) = _pair_ref(stride), _pair_ref(padding)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, _, h, wd = xp.shape
    o, _, kh, kw = w.shape
    z = np.zeros((n, o, (h - kh) // sh + 1, (wd - kw) // sw + 1), dtype=np.result_type(x, w))
    for k in range(n):
        for f in range(o):
            for i in range(z.shape[2]):
                for j in range(z.shape[3]):
                    window = xp[k, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    z[k, f, i, j] = np.sum(np.multiply(window, w[f], dtype=np.float64))
    return z if b is None else z + b[:, None, None]


def _pool_shapes(d: Draw) -> list[Shape]:
    return [(d.integers(1, 2), d.integers(1, 2), d.integers(1, 5), d.integers(1, 5))]


def _pool_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """A kernel that fits, and a stride of None (the kernel size) or 1 to 3."""
    _, _, h, w = shapes[0]
    kernel: Any = (draw.integers(1, min(h, 3)), draw.integers(1, min(w, 3)))
    if kernel[0] == kernel[1] and draw.boolean():
        kernel = kernel[0]
    return {"kernel_size": kernel, "stride": None if draw.boolean() else _pair_draw(draw, 1, 3)}


def _pool_ref(reduce: Callable[..., Any]) -> Callable[..., np.ndarray]:
    """``reduce`` (np.max, np.mean, np.sum) of each window, one window at a time."""

    def ref(x: np.ndarray, kernel_size: Any, stride: Any) -> np.ndarray:
        kh, kw = _pair_ref(kernel_size)
        sh, sw = (kh, kw) if stride is None else _pair_ref(stride)
        ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        rows = [
            [
                reduce(x[:, :, i * sh : i * sh + kh, j * sw : j * sw + kw], axis=(2, 3))
                for j in range(wo)
            ]
            for i in range(ho)
        ]
        return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)

    return ref


def _sum_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    """ops.SumPool2d with every tap's weight 1 (whose adjoint, Spread2d, is pooling's backward)
    with its arguments checked: the sum of each window of (N, C, H, W)."""
    if x.ndim != 4:
        raise ValueError(f"sum_pool2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    kernel = pair(kernel_size, "kernel_size", "sum_pool2d", 1)
    if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
        raise ValueError(f"sum_pool2d: kernel_size {kernel} is bigger than the input {x.shape}")
    step = kernel if stride is None else pair(stride, "stride", "sum_pool2d", 1)
    return SumPool2d.apply(x, None, kernel, step)


def _unfold2d(x: Tensor, kernel_size: Any, stride: Any) -> Tensor:
    """ops.Unfold2d (which pooling's backward runs) with its arguments checked, as users' ops
    check theirs: the windows of (N, C, H, W) as (N, C, kh, kw, Ho, Wo)."""
    if x.ndim != 4:
        raise ValueError(f"unfold2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    kernel = pair(kernel_size, "kernel_size", "unfold2d", 1)
    if kernel[0] > x.shape[2] or kernel[1] > x.shape[3]:
        raise ValueError(f"unfold2d: kernel_size {kernel} is bigger than the input {x.shape}")
    return Unfold2d.apply(x, kernel, pair(stride, "stride", "unfold2d", 1))


def _fold2d(y: Tensor, size: Any, stride: Any) -> Tensor:
    """ops.Fold2d with its arguments checked: windows (N, C, kh, kw, Ho, Wo) added back into
    (N, C, H, W) images of ``size``, which must hold exactly Ho × Wo windows."""
    if y.ndim != 6:
        raise ValueError(f"fold2d: input must be 6-D (N, C, kh, kw, Ho, Wo), got {y.shape}")
    hw = pair(size, "size", "fold2d", 0)
    step = pair(stride, "stride", "fold2d", 1)
    kh, kw, ho, wo = y.shape[2:]
    if kh < 1 or kw < 1 or (out_size(hw[0], kh, step[0]), out_size(hw[1], kw, step[1])) != (ho, wo):
        raise ValueError(
            f"fold2d: size {hw} with kernel ({kh}, {kw}) and stride {step} does not hold the "
            f"{ho}×{wo} windows of an input of shape {y.shape}"
        )
    return Fold2d.apply(y, hw, step)


def _unfold_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    p = _pool_params(draw, shapes)
    return {"kernel_size": p["kernel_size"], "stride": _pair_draw(draw, 1, 3)}


def _unfold_ref(x: np.ndarray, kernel_size: Any, stride: Any) -> np.ndarray:
    (kh, kw), (sh, sw) = _pair_ref(kernel_size), _pair_ref(stride)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    z = np.zeros((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            for i in range(ho):
                for j in range(wo):
                    z[:, :, u, v, i, j] = x[:, :, i * sh + u, j * sw + v]
    return z


def _fold_shapes(d: Draw) -> list[Shape]:
    n, c = d.integers(1, 2), d.integers(1, 2)
    return [(n, c, d.integers(1, 3), d.integers(1, 3), d.integers(1, 3), d.integers(1, 3))]


def _fold_params(draw: Draw, shapes: Sequence[Shape]) -> dict[str, Any]:
    """A stride, and the image size that holds exactly the windows (plus up to stride − 1
    rows and columns that no window reaches)."""
    _, _, kh, kw, ho, wo = shapes[0]
    sh, sw = _pair_ref(_pair_draw(draw, 1, 3))
    size = (
        (ho - 1) * sh + kh + draw.integers(0, sh - 1),
        (wo - 1) * sw + kw + draw.integers(0, sw - 1),
    )
    return {"size": size, "stride": (sh, sw) if sh != sw or draw.boolean() else sh}


def _fold_ref(y: np.ndarray, size: Any, stride: Any) -> np.ndarray:
    (h, w), (sh, sw) = _pair_ref(size), _pair_ref(stride)
    n, c, kh, kw, ho, wo = y.shape
    z = np.zeros((n, c, h, w), dtype=y.dtype)
    for u in range(kh):
        for v in range(kw):
            for i in range(ho):
                for j in range(wo):
                    z[:, :, i * sh + u, j * sw + v] += y[:, :, u, v, i, j]
    return z


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------

_POS = Domain(0.2, 3.0)  # log, sqrt, real powers: away from the pole/branch point at 0
_NONZERO = Domain(-3.0, 3.0, avoid=(0.0,), margin=0.25)  # divisors: |1/x''| stays moderate
# round: jumps at the half-integers, flat (derivative 0) in between
_HALVES = Domain(-3.0, 3.0, avoid=(-2.5, -1.5, -0.5, 0.5, 1.5, 2.5), margin=0.01)
_KINK0 = Domain(-3.0, 3.0, avoid=(0.0,), margin=0.01)  # relu, abs, leaky_relu: kink at 0
_AXES = Domain(-3.0, 3.0)
_PROB = Domain(0.05, 0.95)  # probabilities fed to ln a and ln(1 − a): away from the poles
_TARGET = Domain(0.0, 1.0)  # targets: probabilities, 0 and 1 included (no pole in y)

#: One row for every built-in operation (the property tests, the fuzzers and the ``gradcheck``
#: command run them all).
OP_TABLE: tuple[OpSpec, ...] = (
    # ---- arithmetic, with broadcasting, and the reflected operators
    OpSpec("add", lambda a, b: a + b, np.add, arity=2),
    OpSpec("sub", lambda a, b: a - b, np.subtract, arity=2),
    OpSpec("mul", lambda a, b: a * b, np.multiply, arity=2),
    OpSpec("div", lambda a, b: a / b, np.divide, domain=(_AXES, _NONZERO), arity=2),
    OpSpec("radd", lambda x, c: c + x, lambda x, c: c + x, params=_scalar([2.5, -1.0])),
    OpSpec("rsub", lambda x, c: c - x, lambda x, c: c - x, params=_scalar([2.5, -1.0])),
    OpSpec("rmul", lambda x, c: c * x, lambda x, c: c * x, params=_scalar([2.5, -0.5])),
    OpSpec(
        "rdiv", lambda x, c: c / x, lambda x, c: c / x, domain=_NONZERO, params=_scalar([2.5, -1.0])
    ),
    # ndarray (op) Tensor: NumPy must defer to the Tensor's reflected operator
    OpSpec("radd_ndarray", lambda x, c: c + x, lambda x, c: c + x, params=_array_params),
    OpSpec("rsub_ndarray", lambda x, c: c - x, lambda x, c: c - x, params=_array_params),
    OpSpec("rmul_ndarray", lambda x, c: c * x, lambda x, c: c * x, params=_array_params),
    OpSpec(
        "rdiv_ndarray",
        lambda x, c: c / x,
        lambda x, c: c / x,
        domain=_NONZERO,
        params=_array_params,
    ),
    OpSpec(
        "rpow_ndarray",
        lambda x, c: c**x,
        lambda x, c: c**x,
        domain=Domain(-2.0, 2.0),
        params=_positive_array_params,
    ),
    OpSpec(
        "rmatmul_ndarray",
        lambda x, c: c @ x,
        lambda x, c: c @ x,
        shapes=_nd(1, 2),
        params=_matrix_for,
    ),
    OpSpec("neg", lambda x: -x, np.negative),
    OpSpec(
        "pow_int",
        lambda x, c: x**c,
        lambda x, c: x**c,
        domain=_NONZERO,
        params=_scalar([2, 3, -1, -2, 0, 1]),
    ),
    OpSpec(
        "pow_real",
        lambda x, c: x**c,
        lambda x, c: x**c,
        domain=_POS,
        params=_scalar([0.5, -1.5, 2.5, 1.0]),
    ),
    OpSpec(
        "pow_method",
        lambda x, c: x.pow(c),
        lambda x, c: x**c,
        domain=_POS,
        params=_scalar([3, 0.5, -0.5]),
    ),
    OpSpec("pow_tensor", lambda a, b: a**b, np.power, domain=(_POS, Domain(-2.0, 2.0)), arity=2),
    OpSpec(
        "rpow",
        lambda x, c: c**x,
        lambda x, c: c**x,
        domain=Domain(-2.0, 2.0),
        params=_scalar([0.5, 2.0, 3.0]),
    ),
    # ---- matmul: 1-D, 2-D, batched and broadcast batch axes
    OpSpec("matmul_1d", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("1d")),
    OpSpec("matmul_2d", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("2d")),
    OpSpec("matmul_1d_2d", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("1d@2d")),
    OpSpec("matmul_2d_1d", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("2d@1d")),
    OpSpec("matmul_batched", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("batched")),
    OpSpec("matmul_batched_1d", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("batched@1d")),
    OpSpec("matmul_broadcast", lambda a, b: a @ b, np.matmul, shapes=_matmul_shapes("broadcast")),
    # ---- elementwise functions
    OpSpec("exp", lambda x: x.exp(), np.exp, expression="exp"),
    OpSpec("log", lambda x: x.log(), np.log, domain=_POS, expression="log"),
    OpSpec("sqrt", lambda x: x.sqrt(), np.sqrt, domain=_POS, expression="sqrt"),
    OpSpec("abs", lambda x: x.abs(), np.abs, domain=_KINK0, expression="abs"),
    OpSpec("round", lambda x: x.round(), np.round, domain=_HALVES),
    OpSpec("sin", lambda x: x.sin(), np.sin, expression="sin"),
    OpSpec("cos", lambda x: x.cos(), np.cos, expression="cos"),
    OpSpec("tanh", lambda x: x.tanh(), np.tanh, expression="tanh"),
    OpSpec("sigmoid", lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), expression="sigmoid"),
    OpSpec(
        "relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), domain=_KINK0, expression="relu"
    ),
    OpSpec(
        "softplus", lambda x: x.softplus(), lambda x: np.log1p(np.exp(x)), expression="softplus"
    ),
    OpSpec(
        "leaky_relu",
        lambda x, c: x.leaky_relu(c),
        lambda x, c: np.where(x > 0, x, c * x),
        domain=_KINK0,
        params=_scalar([0.01, 0.2]),
    ),
    OpSpec(
        "leaky_relu_default",
        lambda x: x.leaky_relu(),
        lambda x: np.where(x > 0, x, 0.01 * x),
        domain=_KINK0,
        expression="leaky_relu",
    ),
    OpSpec(
        "clip",
        lambda x, lo, hi: x.clip(lo, hi),
        lambda x, lo, hi: np.clip(x, lo, hi),
        domain=_clip_domain,
        params=_clip_params,
    ),
    OpSpec("maximum", maximum, np.maximum, arity=2, distinct=True, expression="maximum"),
    OpSpec("minimum", minimum, np.minimum, arity=2, distinct=True, expression="minimum"),
    OpSpec(
        "where",
        lambda a, b, cond: where(cond, a, b),
        lambda a, b, cond: np.where(cond, a, b),
        arity=2,
        params=_where_params,
    ),
    # ---- reductions: axis None / int / tuple, keepdims
    OpSpec(
        "sum",
        lambda x, axis, keepdims: x.sum(axis, keepdims),
        lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
        params=_axis_params,
    ),
    OpSpec(
        "mean",
        lambda x, axis, keepdims: x.mean(axis, keepdims),
        lambda x, axis, keepdims: np.mean(x, axis=axis, keepdims=keepdims),
        params=_axis_params,
    ),
    OpSpec(
        "max",
        lambda x, axis, keepdims: x.max(axis, keepdims),
        lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims),
        params=_axis_params,
        distinct=True,
    ),
    OpSpec(
        "min",
        lambda x, axis, keepdims: x.min(axis, keepdims),
        lambda x, axis, keepdims: np.min(x, axis=axis, keepdims=keepdims),
        params=_axis_params,
        distinct=True,
    ),
    OpSpec(
        "var",
        lambda x, axis, keepdims, ddof: x.var(axis, keepdims, ddof=ddof),
        lambda x, axis, keepdims, ddof: np.var(x, axis=axis, keepdims=keepdims, ddof=ddof),
        params=_var_params,
    ),
    OpSpec(
        "logsumexp",
        lambda x, axis, keepdims: x.logsumexp(axis, keepdims),
        lambda x, axis, keepdims: np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
        params=_axis_params,
    ),
    OpSpec(
        "softmax",
        lambda x, axis: x.softmax(axis),
        lambda x, axis: np.exp(x) / np.sum(np.exp(x), axis=axis, keepdims=True),
        shapes=_nd(1),
        params=_one_axis,
    ),
    OpSpec(
        "log_softmax",
        lambda x, axis: x.log_softmax(axis),
        lambda x, axis: x - np.log(np.sum(np.exp(x), axis=axis, keepdims=True)),
        shapes=_nd(1),
        params=_one_axis,
    ),
    # ---- shape operations
    OpSpec(
        "reshape",
        lambda x, shape: x.reshape(shape),
        lambda x, shape: np.reshape(x, shape),
        params=_reshape_params,
    ),
    OpSpec(
        "transpose", _transpose, lambda x, axes: np.transpose(x, axes), params=_transpose_params
    ),
    OpSpec("T", lambda x: x.T, lambda x: x.T),
    OpSpec("flatten", lambda x: x.flatten(), lambda x: np.ravel(x)),
    OpSpec(
        "squeeze",
        lambda x, axis: x.squeeze(axis),
        _squeeze_ref,
        shapes=_squeeze_shapes,
        params=_squeeze_params,
    ),
    OpSpec(
        "unsqueeze",
        lambda x, axis: x.unsqueeze(axis),
        lambda x, axis: np.expand_dims(x, axis),
        params=lambda d, s: {"axis": d.integers(-len(s[0]) - 1, len(s[0]))},
    ),
    OpSpec(
        "broadcast_to",
        lambda x, shape: x.broadcast_to(shape),
        lambda x, shape: np.broadcast_to(x, shape),
        shapes=_broadcast_shapes,
        params=_broadcast_params,
    ),
    OpSpec(
        "getitem_basic", lambda x, index: x[index], _index_ref, shapes=_nd(1), params=_basic_index
    ),
    OpSpec(
        "getitem_int_array",
        lambda x, index: x[index],
        _index_ref,
        shapes=_nd(1),
        params=_array_index,
    ),
    OpSpec(
        "getitem_bool_mask",
        lambda x, index: x[index],
        _index_ref,
        shapes=_nd(1),
        params=_mask_params,
    ),
    OpSpec(
        "concatenate",
        lambda *xs, axis: concatenate(list(xs), axis=axis),
        lambda *xs, axis: np.concatenate(xs, axis=axis),
        shapes=_concat_shapes,
        params=_concat_params,
    ),
    OpSpec(
        "stack",
        lambda *xs, axis: stack(list(xs), axis=axis),
        lambda *xs, axis: np.stack(xs, axis=axis),
        shapes=_stack_shapes,
        params=_stack_params,
    ),
    OpSpec("astype", lambda x: x.astype(np.float64), lambda x: x.astype(np.float64)),
    OpSpec("clone", lambda x: x.clone(), np.copy),
    # ---- fused: the linear layer and the costs (nn.functional).  A target given as a Tensor is
    # an input like the output (its gradient is checked too); class indices are params.
    OpSpec("linear", F.linear, _linear_ref, shapes=_linear_shapes(bias=True)),
    OpSpec("linear_no_bias", F.linear, _linear_ref, shapes=_linear_shapes(bias=False)),
    OpSpec("quadratic_cost", F.quadratic_cost, _quadratic_ref, shapes=_same_shapes(0, 2)),
    OpSpec(
        "quadratic_cost_labels",
        F.quadratic_cost,
        lambda a, target: _quadratic_ref(a, _one_hot_ref(target, a.shape[1])),
        shapes=_nd(2, 2),  # labels only for a batch (n, k): one per row
        params=_class_indices,
    ),
    OpSpec(
        "mse_loss",
        F.mse_loss,
        lambda a, y, reduction: _reduce_ref((a - y) ** 2, reduction),
        shapes=_same_shapes(0, 3),
        params=_reduction,
    ),
    OpSpec(
        "cross_entropy_rows",
        F.cross_entropy,
        _cross_entropy_rows_ref,
        # rows not normalised on purpose: the fused formula (Σy) ln Σe^z − Σ y z holds for any y
        domain=(_AXES, _TARGET),
        shapes=_class_shapes(with_target=True),
        params=_reduction,
    ),
    OpSpec(
        "cross_entropy_indices",
        F.cross_entropy,
        _cross_entropy_indices_ref,
        shapes=_class_shapes(with_target=False),
        params=_class_indices_and_reduction,
    ),
    OpSpec(
        "nll_loss",
        F.nll_loss,
        _nll_ref,
        domain=Domain(-4.0, 0.0),
        shapes=_class_shapes(with_target=False),
        params=_class_indices_and_reduction,
    ),
    OpSpec(
        "binary_cross_entropy",
        F.binary_cross_entropy,
        lambda a, y, reduction: _reduce_ref(_bce_ref(a, y), reduction),
        domain=(_PROB, _TARGET),
        shapes=_same_shapes(0, 3),
        params=_reduction,
    ),
    OpSpec(
        "binary_cross_entropy_with_logits",
        F.binary_cross_entropy_with_logits,
        _bce_with_logits_ref,
        domain=(_AXES, _TARGET),
        shapes=_same_shapes(0, 3),
        params=_reduction,
    ),
    OpSpec(
        "cross_entropy_cost",
        F.cross_entropy_cost,
        _cross_entropy_cost_ref,
        domain=(_PROB, _TARGET),
        shapes=_same_shapes(1, 2),
    ),
    OpSpec(
        "cross_entropy_cost_labels",
        F.cross_entropy_cost,
        lambda a, target: _cross_entropy_cost_ref(a, _one_hot_ref(target, a.shape[1])),
        domain=_PROB,
        shapes=_nd(2, 2),  # labels only for a batch (n, k): one per row
        params=_class_indices,
    ),
    # ---- convolution and pooling (chapter 6), and the windows that pooling's backward uses
    OpSpec("conv2d", F.conv2d, _conv2d_ref, shapes=_conv_shapes(bias=True), params=_conv_params),
    OpSpec(
        "conv2d_no_bias",
        F.conv2d,
        _conv2d_ref,
        shapes=_conv_shapes(bias=False),
        params=_conv_params,
    ),
    OpSpec(
        "max_pool2d",
        F.max_pool2d,
        _pool_ref(np.max),
        shapes=_pool_shapes,
        params=_pool_params,
        distinct=True,
    ),
    OpSpec(
        "avg_pool2d", F.avg_pool2d, _pool_ref(np.mean), shapes=_pool_shapes, params=_pool_params
    ),
    OpSpec("sum_pool2d", _sum_pool2d, _pool_ref(np.sum), shapes=_pool_shapes, params=_pool_params),
    OpSpec("unfold2d", _unfold2d, _unfold_ref, shapes=_pool_shapes, params=_unfold_params),
    OpSpec("fold2d", _fold2d, _fold_ref, shapes=_fold_shapes, params=_fold_params),
)


def find_ops(patterns: Sequence[str], table: Sequence[OpSpec] = OP_TABLE) -> list[OpSpec]:
    """The rows whose name matches any of ``patterns`` (shell-style: ``matmul*``), in table order.

    Raises ``ValueError`` naming a pattern that matches nothing.
    """
    from fnmatch import fnmatchcase

    chosen: list[OpSpec] = []
    for pat in patterns:
        hits = [op for op in table if fnmatchcase(op.name, pat)]
        if not hits:
            names = ", ".join(op.name for op in table)
            raise ValueError(f"no operation matches {pat!r}; known operations: {names}")
        chosen += [op for op in hits if op not in chosen]
    return [op for op in table if op in chosen]
