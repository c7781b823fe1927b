"""Convolution and pooling on images of shape (N, C, H, W): N examples, C channels, H×W pixels.

The book's chapter 6 in one formula.  A convolutional layer slides a kh×kw kernel w over the
image; the neuron at output position (i, j) of feature map o sees the window of the input at
(s·i, s·j) (s the stride) and computes, in every example n,

    z[n, o, i, j] = b[o] + Σ_{c, u, v} x̃[n, c, s·i + u, s·j + v] · w[o, c, u, v],

where x̃ is the input with p rows and columns of zeros added around it (the padding).  This is a
cross-correlation, as in PyTorch and in the book (it says "convolution" too).  The output has
Ho = ⌊(H + 2p − kh)/s⌋ + 1 rows and Wo = ⌊(W + 2p − kw)/s⌋ + 1 columns.

**The backward pass of a convolution is two convolutions** (δ = ∂C/∂z, ``g`` in the code):

* ∂C/∂w[o, c, u, v] = Σ_{n, i, j} δ[n, o, i, j] · x̃[n, c, s·i + u, s·j + v]: the input
  correlated with δ, which plays the kernel (its taps s apart: a *dilated* kernel);
* ∂C/∂x̃[n, c, h, w] = Σ_{o, u, v} δ̂[n, o, h − u, w − v] · w[o, c, u, v]: a *full* convolution
  of δ with the kernel, i.e. the correlation of δ̂, padded with kh − 1 rows of zeros, with the
  kernel flipped in both spatial axes and its two channel axes swapped.  δ̂ is δ with s − 1 zeros
  between its elements (the positions the strided windows skipped);
* ∂C/∂b[o] = Σ_{n, i, j} δ[n, o, i, j].

In the book's terms (the chapter 2 equations, with the weighted sum now a correlation) the first
is ∂C/∂w = δ a^(l−1), the second δ^(l−1) = (w^l)ᵀ δ^l, each read with the shared weights.  So
:class:`Conv2d` is written for the general case that these two need, asymmetric padding
(negative values crop), a stride and a dilation of the kernel, and its backward calls
:class:`Conv2d` itself (∂C/∂x) and :class:`ConvWeight` (∂C/∂w), whose own backward calls
:class:`Conv2d`: the gradient is a differentiable function of the inputs again, and the second
derivatives come for free.

Pooling: :class:`MaxPool2d` and :class:`AvgPool2d` reduce each window to one number.  Their
backward passes spread δ back over the windows, weighted per tap (1 on a window's maxima, or
1/(kh·kw) for the mean), and add up what lands on each pixel: :class:`Spread2d`, the adjoint of
the weighted window sums :class:`SumPool2d`.  :class:`Unfold2d` cuts an image into its windows
and :class:`Fold2d`, its adjoint, adds them back.

Memory: every op here reads the input through strided *views* of its windows (no copy), and the
matrix product of a convolution copies at most :data:`WINDOW_BYTES` of unfolded windows at a
time, by splitting the batch and the sum over channels into blocks (see :func:`correlate`).  A
convolution unfolded in one block keeps that copy until its backward pass, which sums ∂C/∂w
over the same windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd import Context, Function, Grad
from .shape import ScatterAdd

__all__ = [
    "WINDOW_BYTES",
    "AvgPool2d",
    "Conv2d",
    "ConvWeight",
    "Fold2d",
    "MaxPool2d",
    "Spread2d",
    "SumPool2d",
    "Unfold2d",
    "correlate",
    "out_size",
    "pad",
    "pair",
    "taps",
    "windows",
]

Pair = tuple[int, int]
Pads = tuple[int, int, int, int]  # top, bottom, left, right

#: The most memory that the unfolded windows of one convolution take at a time: 64 MiB.
WINDOW_BYTES = 64 * 2**20


# --------------------------------------------------------------------------------------------
# Windows of an image, and correlation as a matrix product
# --------------------------------------------------------------------------------------------


def out_size(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """How many windows of ``kernel`` taps ``dilation`` apart fit in ``size``, ``stride`` apart."""
    return (size - dilation * (kernel - 1) - 1) // stride + 1


def windows(
    x: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair = (1, 1), writeable: bool = False
) -> np.ndarray:
    """The windows of ``x`` (N, C, H, W) as a view of shape (N, C, kh, kw, Ho, Wo), no copy:
    ``windows(x)[n, c, u, v, i, j] = x[n, c, s·i + d·u, s·j + d·v]`` (s stride, d dilation).

    Tap (u, v) of every window, ``windows(x)[:, :, u, v]``, is one strided (N, C, Ho, Wo) view;
    the caller makes sure that at least one window fits.
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = out_size(h, kh, sh, dh), out_size(w, kw, sw, dw)
    s0, s1, s2, s3 = x.strides
    # NOTE: a step that is never taken (one window, one tap) may be any size: keep it small.
    sh, dh = (sh if ho > 1 else 1), (dh if kh > 1 else 1)
    sw, dw = (sw if wo > 1 else 1), (dw if kw > 1 else 1)
    return as_strided(
        x, (n, c, kh, kw, ho, wo), (s0, s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw), writeable=writeable
    )


def taps(kernel: Pair) -> list[Pair]:
    """The (u, v) positions of a kernel, row by row.

    NOTE: the pooling ops loop over these and work on one (N, C, Ho, Wo) tap at a time: NumPy
    reduces over the small window axes themselves 15 to 25 times slower (its inner loops then
    run over kw elements, a tap's over Wo; max over 2×2 windows of (10, 20, 24, 24): 5.6 ms
    against 0.22 ms).
    """
    return [(u, v) for u in range(kernel[0]) for v in range(kernel[1])]


def pad(x: np.ndarray, pads: Pads) -> np.ndarray:
    """x̃: ``x`` (N, C, H, W) with ``pads`` = (top, bottom, left, right) rows and columns of zeros
    added; a negative number removes that many instead.  x̃[..., h, w] = x[..., h − top, w − left]
    where that exists, else 0."""
    top, bottom, left, right = pads
    if pads == (0, 0, 0, 0):
        return x
    n, c, h, w = x.shape
    hp, wp = h + top + bottom, w + left + right
    out = np.zeros((n, c, max(hp, 0), max(wp, 0)), dtype=x.dtype)
    rows = slice(max(0, -top), min(h, hp - top))  # the rows of x that survive, ...
    cols = slice(max(0, -left), min(w, wp - left))
    if rows.start < rows.stop and cols.start < cols.stop:  # ... and where they go
        out[:, :, rows.start + top : rows.stop + top, cols.start + left : cols.stop + left] = x[
            :, :, rows, cols
        ]
    return out


def pair(value: Any, name: str, fn: str, least: int) -> Pair:
    """An int or a pair of ints, each at least ``least``, as a pair; else an error that names
    ``fn`` and the argument ``name``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in items
    ):
        raise TypeError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")
    h, w = int(items[0]), int(items[1])
    if min(h, w) < least:
        what = "positive" if least == 1 else "non-negative"
        raise ValueError(f"{fn}: {name} must be {what}, got {value!r}")
    return h, w


def _block(total: int, per_item: int, budget: int) -> int:
    """How many items of ``per_item`` elements fit in ``budget`` elements (at least one)."""
    return max(1, min(total, budget // max(per_item, 1)))


def correlate(
    xp: np.ndarray, w: np.ndarray, stride: Pair, dilation: Pair
) -> tuple[np.ndarray, np.ndarray | None]:
    """z[n, o, i, j] = Σ_{c, u, v} xp[n, c, s·i + d·u, s·j + d·v] · w[o, c, u, v], for an already
    padded ``xp`` (N, C, H, W) and a kernel ``w`` (O, C, kh, kw); returns z (N, O, Ho, Wo) and
    the windows as rows[n, (i, j), (c, u, v)] = xp[n, c, s·i + d·u, s·j + d·v], a (N, Ho·Wo,
    C·kh·kw) array, or None when they were unfolded in blocks.

    The windows are unfolded into a matrix of N · Ho·Wo rows and C·kh·kw columns (a copy: the
    only one) and multiplied by the kernel as a (C·kh·kw, O) matrix.  The unfolded copy takes at
    most max(:data:`WINDOW_BYTES`, one example's windows of one channel, Ho·Wo·kh·kw elements)
    bytes: blocks of examples are done one after another, and blocks of channels add up.
    """
    n, c, _, _ = xp.shape
    o, _, kh, kw = w.shape
    win = windows(xp, (kh, kw), stride, dilation)
    ho, wo = win.shape[4:]
    dtype = np.result_type(xp, w)
    per_channel = ho * wo * kh * kw
    budget = WINDOW_BYTES // dtype.itemsize
    cb = _block(c, per_channel, budget)
    nb = _block(n, per_channel * cb, budget)
    if nb >= n and cb >= c:
        return _correlate_block(win, w)
    out = np.empty((n, o, ho, wo), dtype=dtype)
    for n0 in range(0, n, nb):
        acc = None
        for c0 in range(0, c, cb):
            part, _ = _correlate_block(win[n0 : n0 + nb, c0 : c0 + cb], w[:, c0 : c0 + cb])
            acc = part if acc is None else np.add(acc, part, out=acc)
        out[n0 : n0 + nb] = 0 if acc is None else acc
    return out, None


def _correlate_block(win: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One block of :func:`correlate`: the windows ``win`` (N, C, kh, kw, Ho, Wo) times ``w``,
    and the windows as (N, Ho·Wo, C·kh·kw) rows."""
    n, c, kh, kw, ho, wo = win.shape
    o = w.shape[0]
    wm = w.reshape(o, c * kh * kw)
    # The copy runs fastest along the longer contiguous stretch of the input: a row of the
    # output (Wo pixels) or a row of the kernel (kw pixels).  Both orders give the same sums.
    if wo >= kw:
        cols = win.reshape(n, c * kh * kw, ho * wo)
        return np.matmul(wm, cols).reshape(n, o, ho, wo), cols.transpose(0, 2, 1)
    rows = win.transpose(0, 4, 5, 1, 2, 3).reshape(n, ho * wo, c * kh * kw)
    z = np.ascontiguousarray(np.matmul(rows, wm.T).transpose(0, 2, 1)).reshape(n, o, ho, wo)
    return z, rows


# --------------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------------


class Conv2d(Function):
    """z = b + x̃ ⋆ w: the cross-correlation of the module docstring, generalised to what its own
    backward needs: x̃ is x with ``padding`` = (top, bottom, left, right) (negative crops), the
    windows are ``stride`` = (sh, sw) apart and the kernel taps ``dilation`` = (dh, dw) apart:

        z[n, o, i, j] = b[o] + Σ_{c,u,v} x̃[n, c, sh·i + dh·u, sw·j + dw·v] · w[o, c, u, v].

    With δ = ∂C/∂z (``g``):

    * ∂C/∂x = the correlation of δ̂ (δ with sh − 1, sw − 1 zeros between its rows and columns)
      with w flipped and its channel axes swapped, dilation d, padded so that the result lines
      up with x: dh·(kh − 1) − top rows above, H + top − sh·(Ho − 1) − 1 below;
    * ∂C/∂w = Σ_{n,i,j} δ[n, o, i, j] · x̃[n, c, sh·i + dh·u, sw·j + dw·v] (:class:`ConvWeight`:
      the correlation of xᵀ, channels and examples swapped, with δᵀ as its kernel);
    * ∂C/∂b = Σ_{n,i,j} δ.

    Both are ops, so they are recorded under ``create_graph``.  x: (N, C, H, W),
    w: (O, C, kh, kw), b: (O,) or None; z: (N, O, Ho, Wo).
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        w: np.ndarray,
        b: np.ndarray | None,
        stride: Pair,
        padding: Pads,
        dilation: Pair,
    ) -> np.ndarray:
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        z, rows = correlate(pad(x, padding), w, stride, dilation)
        ctx.save_for_backward(x, w, rows)
        if b is None:
            return z
        if b.dtype == z.dtype:
            z += b.reshape(-1, 1, 1)  # z is a fresh array: adding in place saves an allocation
            return z
        return z + b.reshape(-1, 1, 1)  # NumPy's promotion decides the dtype

    @staticmethod
    def backward(
        ctx: Context, g: Grad
    ) -> tuple[Grad | None, Grad | None, Grad | None, None, None, None]:
        x, w, rows = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if need_x:
            gx = _input_grad(g, w, x.shape, ctx.stride, ctx.padding, ctx.dilation)
        if need_w:
            gw = ConvWeight.call(x, g, rows, w.shape[2:], ctx.stride, ctx.padding, ctx.dilation)
        if need_b:
            # Σ_{n,i,j} δ as a product with ones: the same bits on arrays and Tensors, and
            # faster than summing over three axes (benchmarks/README.md, chapter 6)
            n, o, ho, wo = g.shape
            gb = (g.reshape(n, o, ho * wo) @ np.ones(ho * wo, g.dtype)).sum(axis=0)
        return gx, gw, gb, None, None, None


def _input_grad(
    g: Grad, w: Grad, size: tuple[int, ...], stride: Pair, padding: Pads, dilation: Pair
) -> Grad:
    """∂C/∂x of z = Conv2d(x, w) at δ = ``g``, for x of shape ``size``: the correlation of δ̂
    with w flipped and its channel axes swapped (see :class:`Conv2d`)."""
    (sh, sw), (dh, dw) = stride, dilation
    top, _, left, _ = padding
    _, _, h, wd = size
    _, _, kh, kw = w.shape
    n, o, ho, wo = g.shape
    spread = g
    if (sh, sw) != (1, 1):
        every_s = (slice(None), slice(None), slice(None, None, sh), slice(None, None, sw))
        spread = ScatterAdd.call(g, every_s, (n, o, sh * (ho - 1) + 1, sw * (wo - 1) + 1))
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    full = (
        dh * (kh - 1) - top,
        h + top - sh * (ho - 1) - 1,
        dw * (kw - 1) - left,
        wd + left - sw * (wo - 1) - 1,
    )
    return Conv2d.call(spread, flipped, None, (1, 1), full, (dh, dw))


class ConvWeight(Function):
    """∂C/∂w of :class:`Conv2d` as an op: for x, δ (``g``, (N, O, Ho, Wo)) and the kernel size
    (kh, kw), with x̃ the padded x,

        z[o, c, u, v] = Σ_{n,i,j} δ[n, o, i, j] · x̃[n, c, sh·i + dh·u, sw·j + dw·v].

    ``rows`` are the windows of x̃ as Conv2d's forward unfolded them, (N, Ho·Wo, C·kh·kw), so
    z = Σ_n δ_n rows_n; None: x̃ is unfolded again (in blocks), as the correlation of xᵀ with δᵀ
    (channels and examples swapped; stride d, dilation s; the rows and columns that no window
    reached cut off).  z is linear in x and in δ; with Γ = ∂C/∂z:

    * ∂C/∂δ = Conv2d(x, Γ): the forward, with Γ as the kernel;
    * ∂C/∂x = ∂C/∂x of Conv2d(x, Γ) at δ (the correlation of δ̂ with Γ flipped).
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        g: np.ndarray,
        rows: np.ndarray | None,
        kernel: Pair,
        stride: Pair,
        padding: Pads,
        dilation: Pair,
    ) -> np.ndarray:
        ctx.save_for_backward(x, g)
        ctx.stride, ctx.padding, ctx.dilation = stride, padding, dilation
        n, o, ho, wo = g.shape
        c, (kh, kw) = x.shape[1], kernel
        if rows is not None:
            return np.matmul(g.reshape(n, o, ho * wo), rows).sum(axis=0).reshape(o, c, kh, kw)
        (sh, sw), (dh, dw) = stride, dilation
        top, bottom, left, right = padding
        _, _, h, wd = x.shape
        unreached_h = h + top + bottom - sh * (ho - 1) - 1 - dh * (kh - 1)
        unreached_w = wd + left + right - sw * (wo - 1) - 1 - dw * (kw - 1)
        cut = (top, bottom - unreached_h, left, right - unreached_w)
        xt, gt = x.transpose(1, 0, 2, 3), g.transpose(1, 0, 2, 3)
        z, _ = correlate(pad(xt, cut), gt, (dh, dw), (sh, sw))
        return z.transpose(1, 0, 2, 3)

    @staticmethod
    def backward(
        ctx: Context, gamma: Grad
    ) -> tuple[Grad | None, Grad | None, None, None, None, None, None]:
        x, g = ctx.saved_tensors
        need_x, need_g = ctx.needs_input_grad[:2]
        gx = gg = None
        if need_x:
            gx = _input_grad(g, gamma, x.shape, ctx.stride, ctx.padding, ctx.dilation)
        if need_g:
            gg = Conv2d.call(x, gamma, None, ctx.stride, ctx.padding, ctx.dilation)
        return gx, gg, None, None, None, None, None


# --------------------------------------------------------------------------------------------
# Windows and their adjoint, and pooling
# --------------------------------------------------------------------------------------------


class Unfold2d(Function):
    """z[n, c, u, v, i, j] = x[n, c, s·i + u, s·j + v]: the kh×kw windows of x, ``stride`` apart,
    as a (N, C, kh, kw, Ho, Wo) array.   ∂C/∂x = Fold2d(δ): each pixel collects the gradients
    of every window copy of it."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
        ctx.size, ctx.stride = x.shape[2:], stride
        return np.ascontiguousarray(windows(x, kernel, stride))

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return Fold2d.call(g, ctx.size, ctx.stride), None, None


class Fold2d(Function):
    """z[n, c, h, w] = Σ over the taps (u, v) and windows (i, j) with s·i + u = h, s·j + v = w of
    y[n, c, u, v, i, j]: windows (N, C, kh, kw, Ho, Wo) put back into an image of ``size``
    (H, W), overlaps added (the adjoint of :class:`Unfold2d`).   ∂C/∂y = Unfold2d(δ)."""

    array_backward = True

    @staticmethod
    def forward(ctx: Context, y: np.ndarray, size: Pair, stride: Pair) -> np.ndarray:
        n, c, kh, kw, _, _ = y.shape
        ctx.kernel, ctx.stride = (kh, kw), stride
        out = np.zeros((n, c) + tuple(size), dtype=y.dtype)
        win = windows(out, (kh, kw), stride, writeable=True)
        for u, v in taps((kh, kw)):
            win[:, :, u, v] += y[:, :, u, v]  # one tap at a time: overlapping windows add up
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        return Unfold2d.call(g, ctx.kernel, ctx.stride), None, None


class SumPool2d(Function):
    """z[n, c, i, j] = Σ_{u,v} m_uv[n, c, i, j] · x[n, c, s·i + u, s·j + v]: the sum of each kh×kw
    window of x, ``stride`` apart, tap (u, v) weighted by ``masks[u·kw + v]`` (constants of z's
    shape; every weight 1 when ``masks`` is None).

    ∂C/∂x = Spread2d(δ, masks): each pixel collects m·δ from every window it is in.
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context,
        x: np.ndarray,
        masks: list[np.ndarray] | None,
        kernel: Pair,
        stride: Pair,
    ) -> np.ndarray:
        ctx.masks, ctx.kernel, ctx.stride, ctx.size = masks, kernel, stride, x.shape[2:]
        win = windows(x, kernel, stride)
        # the dtype of np.sum: bool and integers add up in the platform's (unsigned) integer
        kind = x.dtype.kind
        total = (
            x.dtype
            if kind not in "biu"
            else np.result_type(x.dtype, np.uint if kind == "u" else np.int_)
        )
        out = np.zeros(win.shape[:2] + win.shape[4:], dtype=total)
        for t, (u, v) in enumerate(taps(kernel)):
            out += win[:, :, u, v] if masks is None else win[:, :, u, v] * masks[t]
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None, None]:
        return Spread2d.call(g, ctx.masks, ctx.kernel, ctx.stride, ctx.size), None, None, None


class Spread2d(Function):
    """z[n, c, h, w] = Σ over the taps (u, v) and windows (i, j) with s·i + u = h, s·j + v = w of
    m_uv[n, c, i, j] · y[n, c, i, j]: each y (N, C, Ho, Wo) spread over the kh×kw window it
    stands for in an image of ``size`` (H, W), tap (u, v) weighted by ``masks[u·kw + v]``
    (constants of y's shape; all 1 when None), overlaps added: the adjoint of
    :class:`SumPool2d`.

    ∂C/∂y = SumPool2d(δ, masks).
    """

    array_backward = True

    @staticmethod
    def forward(
        ctx: Context,
        y: np.ndarray,
        masks: list[np.ndarray] | None,
        kernel: Pair,
        stride: Pair,
        size: Pair,
    ) -> np.ndarray:
        ctx.masks, ctx.kernel, ctx.stride = masks, kernel, stride
        (kh, kw), (sh, sw) = kernel, stride
        n, c, ho, wo = y.shape
        apart = sh >= kh and sw >= kw  # no pixel is in two windows: write, don't add
        tiled = (sh, sw) == (kh, kw) and tuple(size) == (kh * ho, kw * wo)  # every pixel in one
        out = (np.empty if tiled else np.zeros)((n, c) + tuple(size), dtype=y.dtype)
        win = windows(out, kernel, stride, writeable=True)
        for t, (u, v) in enumerate(taps(kernel)):
            tap = win[:, :, u, v]
            if not apart:
                tap += y if masks is None else y * masks[t]
            elif masks is None:
                tap[...] = y
            else:
                np.multiply(y, masks[t], out=tap)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None, None, None]:
        return SumPool2d.call(g, ctx.masks, ctx.kernel, ctx.stride), None, None, None, None


def _max_of_taps(taps: np.ndarray) -> np.ndarray:
    """z = max_t taps[:, :, t] over the third axis, a new array, one ``np.maximum`` per tap."""
    if taps.shape[2] == 1:
        return taps[:, :, 0].copy()
    out = np.maximum(taps[:, :, 0], taps[:, :, 1])
    for t in range(2, taps.shape[2]):
        np.maximum(out, taps[:, :, t], out=out)
    return out


class MaxPool2d(Function):
    """z[n, c, i, j] = max of the kh×kw window of x at (s·i, s·j).

    ∂z/∂x = 1/k for the k elements of a window equal to its maximum, else 0 (ties share, as
    :class:`~.reduce.Max` does): ∂C/∂x = Spread2d(δ/k, the masks of the maxima), the masks and
    k locally constant.
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
        (kh, kw), (sh, sw) = kernel, stride
        # the max over a window is the max over its columns of the max over its rows.  NOTE:
        # the first pass runs along whole image rows, so it costs less than one per tap
        rows = _max_of_taps(windows(x, (kh, 1), (sh, 1))[:, :, :, 0])  # (N, C, Ho, W)
        out = _max_of_taps(windows(rows, (1, kw), (1, sw))[:, :, 0])
        ctx.kernel, ctx.stride = kernel, stride
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        x, out = ctx.saved_tensors
        xv, ov = np.asarray(x), np.asarray(out)
        win = windows(xv, ctx.kernel, ctx.stride)
        hits = [np.equal(win[:, :, u, v], ov) for u, v in taps(ctx.kernel)]
        k = hits[0].astype(xv.dtype)  # the tied maxima of each window
        for hit in hits[1:]:
            np.add(k, hit, out=k)
        if k.max(initial=1) > 1:  # NOTE: without ties δ/k = δ: skip the division
            g = g / k
        return Spread2d.call(g, hits, ctx.kernel, ctx.stride, xv.shape[2:]), None, None


class AvgPool2d(Function):
    """z[n, c, i, j] = (1/(kh·kw)) Σ_{u,v} x[n, c, s·i + u, s·j + v], the mean of each window.

    ∂z/∂x = 1/(kh·kw) for every element of the window: ∂C/∂x = Spread2d(δ/(kh·kw)).
    """

    array_backward = True

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, kernel: Pair, stride: Pair) -> np.ndarray:
        ctx.kernel, ctx.stride, ctx.size = kernel, stride, x.shape[2:]
        # the dtypes of np.mean: float16 summed in float32, integers averaged in float64
        total = np.result_type(x.dtype, np.float32) if x.dtype.kind == "f" else np.float64
        win = windows(x, kernel, stride)
        out = win[:, :, 0, 0].astype(total)
        for u, v in taps(kernel)[1:]:
            out += win[:, :, u, v]
        out /= kernel[0] * kernel[1]
        return out.astype(x.dtype if x.dtype.kind == "f" else np.float64, copy=False)

    @staticmethod
    def backward(ctx: Context, g: Grad) -> tuple[Grad, None, None]:
        kh, kw = ctx.kernel
        return Spread2d.call(g / (kh * kw), None, ctx.kernel, ctx.stride, ctx.size), None, None
