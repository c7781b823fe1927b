"""Gradient checking: compare the engine's gradients with central finite differences.

For a function y = f(x₁, …, x_k) the engine computes, for an upstream gradient u = ∂C/∂y, the
vector-Jacobian product ∂C/∂x_i = uᵀ ∂y/∂x_i (backpropagation).  Finite differences estimate the
same numbers without any derivative formula: for each element j of x_i,

    ∂⟨u, y⟩/∂x_ij ≈ (⟨u, f(x + ε e_j)⟩ − ⟨u, f(x − ε e_j)⟩) / 2ε,

whose error is O(ε²) (central differences) plus the rounding of f divided by ε, which is why the
check runs in float64.  u is drawn at RANDOM (standard normal): projecting with all ones alone
would make many wrong backwards look right (for softmax, Σ_i ∂s_i/∂x_j = 0 whatever the
formula).  Two numbers a (analytic) and n (numeric) agree when

    |a − n| ≤ atol + rtol · |n|                                (elementwise, as ``np.allclose``)

and both are finite: an overflowing difference (n = ±∞) or an infinite or NaN analytic value is a
failure, since the bound would be ∞ and could not tell a right gradient from a wrong one.
:func:`gradcheck` checks first derivatives, :func:`gradgradcheck` second derivatives by applying
the same check to the gradient itself, computed with ``create_graph=True``.  Both raise
:class:`GradcheckError` (a subclass of ``AssertionError``, so a failed check inside a test reads
as a failed assertion) with a message naming the input, the output, the worst element, the two
values, the errors and the tolerances.

>>> import tinygrad_sgd as tg
>>> x = tg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
>>> tg.gradcheck(lambda t: t.tanh() * t, [x])
True
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .autograd import enable_grad, grad, no_grad
from .tensor import Tensor

__all__ = [
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "Comparison",
    "check_gradients",
    "check_second_derivatives",
    "gradcheck",
    "gradgradcheck",
]


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate.

    It derives from ``AssertionError`` on purpose: gradcheck is an assertion about your code, and
    test runners (pytest, unittest) report it as a test failure rather than an error.  The full
    comparison is kept in ``.result`` (a :class:`GradcheckResult`).
    """

    def __init__(self, message: str, result: GradcheckResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class GradcheckWarning(UserWarning):
    """A check ran under conditions that weaken it (e.g. an input that was not float64)."""


@dataclass
class Comparison:
    """One comparison: d⟨u, output⟩/d(input) analytic versus numeric."""

    input_name: str
    output_name: str
    input_shape: tuple[int, ...]
    analytic: np.ndarray
    numeric: np.ndarray
    atol: float
    rtol: float
    eps: float
    fast_mode: bool = False
    passed: bool = True
    max_abs_err: float = 0.0
    max_rel_err: float = 0.0
    worst_index: tuple[int, ...] = ()
    n_bad: int = 0
    n_nonfinite: int = 0

    def __post_init__(self) -> None:
        a = np.asarray(self.analytic, dtype=np.float64)
        n = np.asarray(self.numeric, dtype=np.float64)
        if a.size == 0:
            return
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(a - n)
            diff = np.where(np.isfinite(a) & np.isfinite(n), diff, np.inf)
            bound = self.atol + self.rtol * np.abs(n)
            # Relative error |a − n| / |n|, floored at atol so that it stays finite where the true
            # derivative is 0 (there only the absolute error means something).
            rel = np.where(
                diff < np.inf, diff / np.maximum(np.abs(n), max(self.atol, 1e-300)), np.inf
            )
            ratio = diff / bound
        # NOTE: a non-finite value fails whatever the bound says: an overflowing difference makes
        # numeric = ±inf, and then the bound atol + rtol·|n| = inf would pass any analytic value.
        self.n_nonfinite = int(np.sum(~(np.isfinite(a) & np.isfinite(n))))
        bad = ~(diff <= bound) | ~np.isfinite(diff)
        self.n_bad = int(bad.sum())
        self.passed = self.n_bad == 0
        self.max_abs_err = float(np.max(diff))
        self.max_rel_err = float(np.max(rel))
        flat = int(np.nanargmax(np.where(np.isnan(ratio), np.inf, ratio)))
        self.worst_index = tuple(int(i) for i in np.unravel_index(flat, a.shape))

    def describe(self) -> str:
        """A readable account of this comparison (used in :class:`GradcheckError`)."""
        a = np.asarray(self.analytic, dtype=np.float64)
        n = np.asarray(self.numeric, dtype=np.float64)
        idx = self.worst_index
        lines = [f"  {self.input_name} (shape {self.input_shape}), {self.output_name}:"]
        if self.fast_mode:
            lines.append("    fast mode: compared the projection <u, J v> for random u and v;")
            lines.append("    run with fast_mode=False to locate the worst element")
            where = "    projection <u, J v>:"
        else:
            where = f"    worst element: index {idx} of the input"
        lines.append(where)
        av, nv = float(a[idx]), float(n[idx])
        abs_err = abs(av - nv)
        rel_err = abs_err / max(abs(nv), self.atol, 1e-300) if abs_err < np.inf else np.inf
        lines += [
            f"      analytic  = {av:.12g}",
            f"      numeric   = {nv:.12g}",
            f"      abs error = {abs_err:.3e}   rel error = {rel_err:.3e}",
            f"    tolerance: |analytic - numeric| <= atol + rtol*|numeric| with "
            f"atol={self.atol:g}, rtol={self.rtol:g} (eps={self.eps:g})",
        ]
        if self.n_nonfinite:
            lines.append(
                f"    {self.n_nonfinite} value(s) are not finite (inf or nan), which fails: an "
                "overflowing finite difference (or an infinite analytic value) confirms nothing; "
                "check at a point where f and its gradient are finite, or with a smaller eps"
            )
        if not self.fast_mode and a.size > 1:
            lines.append(f"    {self.n_bad} of {a.size} elements are outside the tolerance")
        return "\n".join(lines)


@dataclass
class GradcheckResult:
    """Everything one check compared; ``passed`` is the verdict."""

    order: int
    comparisons: list[Comparison] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every comparison is within tolerance and nothing else went wrong."""
        return not self.problems and all(c.passed for c in self.comparisons)

    @property
    def max_abs_err(self) -> float:
        """The largest |analytic − numeric| over all comparisons."""
        return max((c.max_abs_err for c in self.comparisons), default=0.0)

    @property
    def max_rel_err(self) -> float:
        """The largest |analytic − numeric| / |numeric| over all comparisons."""
        return max((c.max_rel_err for c in self.comparisons), default=0.0)

    def message(self) -> str:
        """What failed, one comparison or problem a line (``"gradcheck: passed"`` otherwise)."""
        what = "gradient" if self.order == 1 else "second derivative"
        check = "gradcheck" if self.order == 1 else "gradgradcheck"
        parts = []
        failed = [c for c in self.comparisons if not c.passed]
        if failed:
            parts.append(
                f"{check}: the analytic {what} does not match the finite differences "
                f"(projected on a random upstream gradient u) for {len(failed)} "
                f"input/output pair(s):"
            )
            parts += [c.describe() for c in failed]
        parts += [f"{check}: {p}" for p in self.problems]
        return "\n".join(parts) if parts else f"{check}: passed"


# --------------------------------------------------------------------------------------------
# Preparing inputs and calling the function
# --------------------------------------------------------------------------------------------


def _as_input_list(inputs: Any) -> list[Any]:
    if isinstance(inputs, Tensor):
        return [inputs]
    if isinstance(inputs, (list, tuple)):
        return list(inputs)
    raise TypeError(
        f"gradcheck: inputs must be a Tensor or a list/tuple of arguments, "
        f"got {type(inputs).__name__}"
    )


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def _prepare(inputs: Any, who: str) -> tuple[list[Any], list[int]]:
    """Copy the Tensor inputs into fresh float64 leaves; return (args, indices to differentiate).

    Copies keep the caller's tensors (their data and ``.grad``) untouched.  Floating inputs that
    are not float64 are checked on a float64 copy, with a warning naming them: in float32 the
    rounding error of f divided by ε ≈ 1e-6 swamps the derivative.
    """
    args = _as_input_list(inputs)
    out: list[Any] = []
    diff: list[int] = []
    low: list[str] = []
    for i, a in enumerate(args):
        if not isinstance(a, Tensor):
            out.append(a)
            continue
        data = a.data
        if data.dtype.kind == "f" and data.dtype != np.float64:
            low.append(f"input {i} ({data.dtype}, shape {a.shape})")
            data = data.astype(np.float64)
        else:
            data = data.copy()
        out.append(Tensor._wrap(data, a.requires_grad))
        if a.requires_grad:
            diff.append(i)
    if low:
        verb = "is" if len(low) == 1 else "are"
        warnings.warn(
            f"{who}: {', '.join(low)} {verb} not float64; finite differences need float64, so "
            "the check runs on a float64 copy. Create the inputs with dtype=np.float64 to check "
            "exactly what you run.",
            GradcheckWarning,
            stacklevel=_caller_stacklevel(),
        )
    if not diff:
        raise ValueError(
            f"{who}: no input requires grad, so there is nothing to check; "
            "create the inputs to differentiate with requires_grad=True"
        )
    return out, diff


def _call(fn: Callable[..., Any], args: Sequence[Any], who: str) -> tuple[Tensor, ...]:
    out = fn(*args)
    outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(
                f"{who}: fn must return a Tensor or a tuple of Tensors; output {k} is a "
                f"{type(o).__name__}"
            )
    if not any(o.dtype.kind == "f" for o in outs):
        raise ValueError(
            f"{who}: fn has no floating-point output (dtypes: "
            f"{', '.join(str(o.dtype) for o in outs)}), so there is no gradient to check"
        )
    return outs


def _differentiable(o: Tensor) -> bool:
    return o.dtype.kind == "f" and o.size > 0


def _substitute(
    args: Sequence[Any], diff: Sequence[int], arrays: dict[int, np.ndarray]
) -> list[Any]:
    """``args`` with the differentiated inputs replaced by (perturbed) arrays as Tensors."""
    new = list(args)
    for i in diff:
        new[i] = Tensor._wrap(arrays[i], True)
    return new


def _numeric(
    fn: Callable[..., Any],
    args: Sequence[Any],
    diff: Sequence[int],
    us: Sequence[np.ndarray | None],
    eps: float,
    who: str,
) -> list[list[np.ndarray]]:
    """Central differences of ⟨u_k, y_k⟩ with respect to every element of every input in ``diff``.

    Returns ``num[k][m]`` for output k and the m-th differentiated input.  The difference
    y(x + ε e_j) − y(x − ε e_j) is formed before projecting on u, to lose as little as possible.
    """
    base = {i: args[i].data for i in diff}
    num = [[np.zeros(args[i].shape) for i in diff] for _ in us]
    with no_grad():
        for m, i in enumerate(diff):
            x = base[i]
            for j in range(x.size):
                arrays = dict(base)
                xp = x.copy()
                xp.flat[j] += eps
                arrays[i] = xp
                plus = _call(fn, _substitute(args, diff, arrays), who)
                xm = x.copy()
                xm.flat[j] -= eps
                arrays[i] = xm
                minus = _call(fn, _substitute(args, diff, arrays), who)
                for k, u in enumerate(us):
                    if u is None:
                        continue
                    d = plus[k].data.astype(np.float64) - minus[k].data.astype(np.float64)
                    num[k][m].flat[j] = float(np.sum(u * d)) / (2 * eps)
    return num


def _analytic(
    outs: Sequence[Tensor],
    xs: Sequence[Tensor],
    us: Sequence[np.ndarray | None],
) -> list[list[np.ndarray]]:
    """uᵀ ∂y_k/∂x for every output k and input x, by the engine (``grad`` with ``grad_outputs``)."""
    res = []
    for o, u in zip(outs, us):
        if u is None or not o.requires_grad:
            res.append([np.zeros(x.shape) for x in xs])
            continue
        gs = grad(o, list(xs), grad_outputs=Tensor._wrap(u), retain_graph=True, allow_unused=True)
        row = []
        for x, g in zip(xs, gs):
            if g.shape != x.shape:
                raise RuntimeError(
                    f"the engine returned a gradient of shape {g.shape} for an input of shape "
                    f"{x.shape}"
                )
            row.append(np.asarray(g.data, dtype=np.float64))
        res.append(row)
    return res


def _upstream(outs: Sequence[Tensor], rng: np.random.Generator) -> list[np.ndarray | None]:
    return [rng.standard_normal(o.shape) if _differentiable(o) else None for o in outs]


def _forward_values(
    fn: Callable[..., Any], args: Sequence[Any], outs: Sequence[Tensor], who: str, tol: float
) -> list[str]:
    """Calling fn again on the same values must give the same outputs (else differences lie).

    The second call runs in the same grad mode as the first, so that an op with a separate
    inference path (e.g. a fused kernel under ``no_grad``) is compared with itself.
    """
    problems = []
    again = _call(fn, args, who)
    if len(again) != len(outs):
        return [f"fn returned {len(outs)} outputs, then {len(again)} on the same inputs"]
    for k, (o, p) in enumerate(zip(outs, again)):
        if o.shape != p.shape or not np.allclose(o.data, p.data, rtol=0, atol=tol, equal_nan=True):
            problems.append(
                f"output {k} changed when fn was called again on the same inputs "
                "(nondeterministic fn, or it mutates its inputs); finite differences need a "
                "deterministic function"
            )
    return problems


def _check_settings(
    eps: Any, atol: Any, rtol: Any, prefix: str, names: Sequence[str] = ("eps", "atol", "rtol")
) -> None:
    """Refuse a step ε that is not a finite number > 0 and tolerances that are not finite numbers
    ≥ 0 (``None`` for a tolerance means "the default" and passes), with a ``ValueError`` that
    starts with ``prefix`` and names the argument (``names``: how the caller spells them, e.g.
    ``--eps`` on the command line)."""
    for name, value, positive in zip(names, (eps, atol, rtol), (True, False, False)):
        if value is None and not positive:
            continue
        number = isinstance(value, (int, float, np.integer, np.floating))
        if (
            isinstance(value, (bool, np.bool_))
            or not number
            or not np.isfinite(value)
            or (value <= 0 if positive else value < 0)
        ):
            need = "> 0" if positive else ">= 0"
            raise ValueError(f"{prefix}{name} must be a finite number {need}, got {value!r}")


def check_gradients(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    seed: int | None = 0,
    nondet_tol: float = 0.0,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    _who: str = "gradcheck",
    _order: int = 1,
    _prepared: tuple[list[Any], list[int]] | None = None,
) -> GradcheckResult:
    """Run the first-order check and return its :class:`GradcheckResult` (never raises on a
    mismatch); :func:`gradcheck` is this plus the verdict.  Arguments as for :func:`gradcheck`."""
    _check_settings(eps, atol, rtol, f"{_who}: ")
    args, diff = _prepared if _prepared is not None else _prepare(inputs, _who)
    rng = np.random.default_rng(seed)
    result = GradcheckResult(order=_order)
    outs = _call(fn, args, _who)
    in_names = list(input_names) if input_names else [f"input {i}" for i in range(len(args))]
    out_names = list(output_names) if output_names else [f"output {k}" for k in range(len(outs))]
    if len(out_names) < len(outs):
        out_names += [f"output {k}" for k in range(len(out_names), len(outs))]
    us = _upstream(outs, rng)
    xs = [args[i] for i in diff]
    result.problems += _forward_values(fn, args, outs, _who, nondet_tol)
    ana = _analytic(outs, xs, us)

    if not fast_mode:
        num = _numeric(fn, args, diff, us, eps, _who)
        for k, u in enumerate(us):
            if u is None:
                continue
            for m, i in enumerate(diff):
                result.comparisons.append(
                    Comparison(
                        in_names[i],
                        f"{out_names[k]} (shape {outs[k].shape})",
                        args[i].shape,
                        ana[k][m],
                        num[k][m],
                        atol,
                        rtol,
                        eps,
                    )
                )
        return result

    # Fast mode: one random direction v per input; compare ⟨u, J v⟩ = Σ_j (uᵀJ)_j v_j with the
    # directional difference (⟨u, f(x + εv)⟩ − ⟨u, f(x − εv)⟩) / 2ε: 2 calls per input, not 2n.
    base = {i: args[i].data for i in diff}
    for m, i in enumerate(diff):
        v = rng.standard_normal(args[i].shape)
        v /= max(float(np.sqrt(np.sum(v * v))), 1e-300)
        arrays = dict(base)
        with no_grad():
            arrays[i] = base[i] + eps * v
            plus = _call(fn, _substitute(args, diff, arrays), _who)
            arrays[i] = base[i] - eps * v
            minus = _call(fn, _substitute(args, diff, arrays), _who)
        for k, u in enumerate(us):
            if u is None:
                continue
            d = plus[k].data.astype(np.float64) - minus[k].data.astype(np.float64)
            numeric = np.asarray(float(np.sum(u * d)) / (2 * eps))
            analytic = np.asarray(float(np.sum(ana[k][m] * v)))
            result.comparisons.append(
                Comparison(
                    in_names[i],
                    f"{out_names[k]} (shape {outs[k].shape})",
                    args[i].shape,
                    analytic,
                    numeric,
                    atol,
                    rtol,
                    eps,
                    fast_mode=True,
                )
            )
    return result


def _finish(result: GradcheckResult, raise_exception: bool) -> bool:
    if result.passed:
        return True
    if raise_exception:
        raise GradcheckError(result.message(), result)
    return False


def gradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int | None = 0,
    nondet_tol: float = 0.0,
) -> bool:
    """Check the gradients of ``fn(*inputs)`` against central finite differences.

    ``inputs`` is a Tensor or a list/tuple of arguments; every Tensor with ``requires_grad`` is
    checked, anything else (numbers, axes, constant tensors) is passed through.  ``fn`` returns a
    Tensor of any shape or a tuple of Tensors.  For each output y_k a random upstream gradient
    u_k ~ N(0, 1) of y_k's shape is drawn (``seed``), and for each input x the engine's
    ∂⟨u_k, y_k⟩/∂x is compared elementwise with (⟨u_k, f(x + εe_j)⟩ − ⟨u_k, f(x − εe_j)⟩)/2ε:
    pass when |analytic − numeric| ≤ atol + rtol·|numeric| everywhere and both are finite (a
    difference that overflows to ±∞, or an analytic inf/NaN, fails).  ``eps`` must be a finite
    number > 0 and ``atol``/``rtol`` finite numbers ≥ 0, else ``ValueError`` naming the argument.

    The check runs on float64 copies of the inputs (a :class:`GradcheckWarning` names any input
    that was not float64); the caller's tensors and their ``.grad`` are left untouched.  Calling
    ``fn`` twice on the same values must give outputs within ``nondet_tol``.

    ``fast_mode=True`` (for large inputs) compares ⟨u, J v⟩ for one random unit direction v per
    input, two calls of fn per input instead of two per element; it detects the same errors but
    cannot say which element is wrong.

    Returns True, or on a mismatch raises :class:`GradcheckError` (returns False when
    ``raise_exception=False``).  The message names the input, the output, the worst element's
    index, the analytic and numeric values, the absolute and relative errors and the tolerances.

    With the defaults (those of ``torch.autograd.gradcheck``) a relative error must exceed about
    rtol = 0.1 % to be flagged; float64 central differences are accurate to ~1e-8 relative on
    smooth functions, so pass ``rtol=1e-5, atol=1e-8`` to catch smaller errors.
    """
    result = check_gradients(
        fn,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        fast_mode=fast_mode,
        seed=seed,
        nondet_tol=nondet_tol,
    )
    return _finish(result, raise_exception)


# --------------------------------------------------------------------------------------------
# Second order
# --------------------------------------------------------------------------------------------


def check_second_derivatives(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Sequence[Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    seed: int | None = 0,
    nondet_tol: float = 0.0,
) -> GradcheckResult:
    """Run the second-order check and return its :class:`GradcheckResult`; see
    :func:`gradgradcheck`."""
    who = "gradgradcheck"
    _check_settings(eps, atol, rtol, f"{who}: ")
    args, diff = _prepare(inputs, who)
    rng = np.random.default_rng(None if seed is None else seed + 1)
    outs = _call(fn, args, who)
    if grad_outputs is None:
        ws: list[np.ndarray | None] = _upstream(outs, rng)
    else:
        gos = list(grad_outputs)
        if len(gos) != len(outs):
            raise ValueError(
                f"{who}: grad_outputs has {len(gos)} entries but fn returned {len(outs)} outputs"
            )
        ws = []
        for k, (o, w) in enumerate(zip(outs, gos)):
            if w is None or not _differentiable(o):
                ws.append(None)
                continue
            arr = np.asarray(w.data if isinstance(w, Tensor) else w, dtype=np.float64)
            if arr.shape != o.shape:
                raise ValueError(
                    f"{who}: grad_outputs[{k}] has shape {arr.shape} but output {k} has "
                    f"shape {o.shape}"
                )
            ws.append(arr.copy())
    # The upstream gradients w_k are inputs of G too: ∂C/∂x is linear in them, and its
    # derivative with respect to w checks that the backward is differentiable in grad_output.
    w_pos = [k for k, w in enumerate(ws) if w is not None]
    if not w_pos:  # only empty float outputs: nothing to compare, vacuously right
        return GradcheckResult(order=2)
    n_args = len(args)

    def first_derivatives(*a: Any) -> tuple[Tensor, ...]:
        xs_all, w_all = list(a[:n_args]), a[n_args:]
        with enable_grad():
            ys = _call(fn, xs_all, who)
            xs = [xs_all[i] for i in diff]
            total: list[Tensor | None] = [None] * len(xs)
            for w, k in zip(w_all, w_pos):
                if not ys[k].requires_grad:
                    continue
                gs = grad(ys[k], xs, grad_outputs=w, create_graph=True, allow_unused=True)
                total = [g if t is None else t + g for t, g in zip(total, gs)]
        return tuple(Tensor._wrap(np.zeros(x.shape)) if t is None else t for t, x in zip(total, xs))

    g_args = list(args) + [Tensor._wrap(ws[k], True) for k in w_pos]  # type: ignore[arg-type]
    g_diff = list(diff) + list(range(n_args, n_args + len(w_pos)))
    in_names = [f"input {i}" for i in range(n_args)] + [f"grad_output {k}" for k in w_pos]
    out_names = [f"first derivative d/d(input {i})" for i in diff]
    return check_gradients(
        first_derivatives,
        g_args,
        eps=eps,
        atol=atol,
        rtol=rtol,
        fast_mode=fast_mode,
        seed=None if seed is None else seed + 2,
        nondet_tol=nondet_tol,
        input_names=in_names,
        output_names=out_names,
        _who=who,
        _order=2,
        _prepared=(g_args, g_diff),
    )


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Any,
    grad_outputs: Sequence[Any] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int | None = 0,
    nondet_tol: float = 0.0,
) -> bool:
    """Check second derivatives of ``fn(*inputs)`` against finite differences of its gradient.

    The first derivatives G(x, w) = ∂⟨w, f(x)⟩/∂x (one per differentiated input, for upstream
    gradients w: ``grad_outputs`` or random N(0, 1)) are computed by the engine with
    ``create_graph=True``; then :func:`gradcheck` is applied to G with respect to both x and w.
    So every Hessian-vector product uᵀ ∂²⟨w, f⟩/∂x² is compared with central differences of the
    engine's own first derivative, and the backward's dependence on ``grad_output`` is checked
    too.  This fails for a backward written with ``.data`` (constants) where a Tensor operation
    was needed.  Arguments, result and error as for :func:`gradcheck`.
    """
    result = check_second_derivatives(
        fn,
        inputs,
        grad_outputs=grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        fast_mode=fast_mode,
        seed=seed,
        nondet_tol=nondet_tol,
    )
    return _finish(result, raise_exception)
