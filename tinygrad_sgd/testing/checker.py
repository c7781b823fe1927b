"""The op checker: everything one generated input must satisfy, for any operation.

:func:`check_case` runs one :class:`~.op_table.Case` through one :class:`~.op_table.OpSpec` and
checks, in float64:

1. the forward against the NumPy reference (shape, dtype and values);
2. ``out.backward(u)`` for a random upstream gradient u ~ N(0, 1) against central finite
   differences of ⟨u, f(x)⟩ (see :mod:`tinygrad_sgd.gradcheck`), elementwise
   |analytic − numeric| ≤ atol + rtol·|numeric|;
3. every ``.grad`` has its input's shape and dtype;
4. neither forward nor backward mutated the inputs (or u);
5. no two gradients share memory, and no gradient shares memory with an input, the output or u;
6. the graph is freed after backward: a second ``backward`` raises ``RuntimeError`` naming
   ``retain_graph``;
7. where the row says so, second derivatives (:func:`~tinygrad_sgd.gradcheck.gradgradcheck`'s
   check, with random upstream gradients).

Nothing here imports Hypothesis: the ``gradcheck`` command calls :func:`check_case` with inputs
from NumPy's generator, the tests with inputs from Hypothesis.

Tolerances.  Central differences with ε = 1e-6 are accurate to about 1e-9 relative on the table's
domains (truncation ε²·f'''/6 ≈ 1e-12·f''', rounding ≈ 1e-16·|f|/ε ≈ 1e-10·|f|), so
``RTOL = 1e-5`` and ``ATOL = 1e-7`` leave a margin of ~100 while still flagging a derivative
that is off by 0.1 % (relative error 1e-3, a hundred times RTOL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..gradcheck import (
    Comparison,
    GradcheckResult,
    _check_settings,
    _numeric,
    check_second_derivatives,
)
from ..tensor import Tensor
from .op_table import Case, OpSpec

__all__ = ["ATOL", "EPS", "RTOL", "CaseReport", "OpCheckError", "assert_case", "check_case"]

#: ε, the step of the central differences (f(x + ε) − f(x − ε)) / 2ε.
EPS = 1e-6
#: The absolute tolerance: |analytic − numeric| ≤ ATOL + RTOL·|numeric| (module docstring).
ATOL = 1e-7
#: The relative tolerance of the same test.
RTOL = 1e-5
FORWARD_RTOL = 1e-10  # forward vs NumPy: only rounding differs (e.g. stable vs naive softmax)
FORWARD_ATOL = 1e-12


class OpCheckError(AssertionError):
    """An operation failed the op checker; the message says which check, on which input."""


@dataclass
class CaseReport:
    """What :func:`check_case` found for one input."""

    op: str
    case: Case
    first: GradcheckResult
    second: GradcheckResult | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def first_passed(self) -> bool:
        """The forward and the gradient (first order) passed, with no other problem."""
        return not self.problems and self.first.passed

    @property
    def second_passed(self) -> bool | None:
        """Whether the second derivatives passed; ``None`` when the row does not check them."""
        return None if self.second is None else self.second.passed

    @property
    def passed(self) -> bool:
        """Every check that ran passed."""
        return self.first_passed and self.second_passed is not False

    def message(self) -> str:
        """What failed on this input, with the input itself, for a failing test's report."""
        lines = [f"op {self.op!r} failed on this input:", self.case.describe()]
        lines += [f"  {p}" for p in self.problems]
        if not self.first.passed:
            lines.append(self.first.message())
        if self.second is not None and not self.second.passed:
            lines.append(self.second.message())
        return "\n".join(lines)


def _shares(a: np.ndarray, b: np.ndarray) -> bool:
    return a.size > 0 and b.size > 0 and np.shares_memory(a, b)


def check_case(
    spec: OpSpec,
    case: Case,
    seed: int = 0,
    eps: float = EPS,
    atol: float | None = None,
    rtol: float | None = None,
    second_order: bool | None = None,
) -> CaseReport:
    """Run every check of the module docstring on one input; never raises on a failed check.

    ``atol``/``rtol`` default to the row's own, else :data:`ATOL`/:data:`RTOL`;
    ``second_order`` defaults to the row's ``second_order``.  ``eps`` must be a finite number
    > 0 and ``atol``/``rtol`` finite numbers ≥ 0 (``ValueError`` naming the argument); a
    non-finite analytic or numeric gradient fails, as in :func:`~tinygrad_sgd.gradcheck`.
    """
    _check_settings(eps, atol, rtol, f"check_case({spec.name!r}): ")
    atol = atol if atol is not None else spec.atol if spec.atol is not None else ATOL
    rtol = rtol if rtol is not None else spec.rtol if spec.rtol is not None else RTOL
    do_second = spec.second_order if second_order is None else second_order
    params = case.params
    originals = [np.array(a, dtype=np.float64) for a in case.arrays]
    report = CaseReport(spec.name, case, GradcheckResult(order=1))
    problems = report.problems

    def fn(*ts: Tensor) -> Tensor:
        return spec.fn(*ts, **params)

    # 1. forward against NumPy
    xs = [Tensor._wrap(a.copy(), True) for a in originals]
    out = fn(*xs)
    if not isinstance(out, Tensor):
        problems.append(f"fn returned a {type(out).__name__}, not a Tensor")
        return report
    expected = np.asarray(spec.ref(*[a.copy() for a in originals], **params))
    if out.shape != expected.shape:
        problems.append(f"forward: shape {out.shape}, but the NumPy reference has {expected.shape}")
    elif out.dtype != expected.dtype:
        problems.append(f"forward: dtype {out.dtype}, but the NumPy reference has {expected.dtype}")
    elif not np.allclose(out.data, expected, rtol=FORWARD_RTOL, atol=FORWARD_ATOL, equal_nan=True):
        worst = np.unravel_index(int(np.argmax(np.abs(out.data - expected))), out.shape)
        problems.append(
            f"forward: value {out.data[worst]!r} at index {tuple(int(i) for i in worst)}, but "
            f"the NumPy reference gives {expected[worst]!r} (rtol={FORWARD_RTOL}, "
            f"atol={FORWARD_ATOL})"
        )
    for i, (x, a) in enumerate(zip(xs, originals)):
        if not np.array_equal(x.data, a, equal_nan=True):
            problems.append(f"forward mutated input {i}")
    if not out.requires_grad:
        problems.append("the output does not require grad although its inputs do")
        return report

    # 2.-6. backward with a random upstream gradient
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(out.shape)
    u_kept = u.copy()
    out.backward(Tensor._wrap(u))
    analytic: list[np.ndarray] = []
    for i, (x, a) in enumerate(zip(xs, originals)):
        g = x.grad
        if g is None:
            analytic.append(np.zeros(a.shape))
            continue
        if g.shape != x.shape:
            problems.append(f"input {i}: .grad has shape {g.shape}, the input {x.shape}")
        if g.dtype != x.dtype:
            problems.append(f"input {i}: .grad has dtype {g.dtype}, the input {x.dtype}")
        analytic.append(np.asarray(g.data, dtype=np.float64))
        if not np.array_equal(x.data, a, equal_nan=True):
            problems.append(f"backward mutated input {i}")
        for name, other in [("the output", out.data), ("the upstream gradient", u)] + [
            (f"input {j}", y.data) for j, y in enumerate(xs)
        ]:
            if _shares(g.data, other):
                problems.append(f"input {i}: .grad shares memory with {name}")
        for j in range(i):
            gj = xs[j].grad
            if gj is not None and _shares(g.data, gj.data):
                problems.append(f"the .grad of inputs {j} and {i} share memory")
    if not np.array_equal(u, u_kept):
        problems.append("backward mutated the upstream gradient")
    if out.grad_fn is not None:
        try:
            out.backward(Tensor._wrap(u_kept.copy()))
        except RuntimeError as e:
            if "retain_graph" not in str(e):
                problems.append(
                    f"a second backward raised RuntimeError without naming retain_graph: {e}"
                )
        else:
            problems.append("the graph was not freed: a second backward succeeded")

    args = [Tensor._wrap(a.copy(), True) for a in originals]
    num = _numeric(fn, args, list(range(len(args))), [u_kept], eps, spec.name)[0]
    for i, (a_i, n_i) in enumerate(zip(analytic, num)):
        report.first.comparisons.append(
            Comparison(
                f"input {i}",
                f"output (shape {out.shape})",
                originals[i].shape,
                a_i,
                n_i,
                atol,
                rtol,
                eps,
            )
        )

    # 7. second derivatives
    if do_second:
        report.second = check_second_derivatives(
            fn,
            [Tensor._wrap(a.copy(), True) for a in originals],
            eps=eps,
            atol=atol,
            rtol=rtol,
            seed=seed,
        )
    return report


def assert_case(spec: OpSpec, case: Case, **kwargs: Any) -> CaseReport:
    """:func:`check_case`, raising :class:`OpCheckError` with the full account on failure."""
    report = check_case(spec, case, **kwargs)
    if not report.passed:
        raise OpCheckError(report.message())
    return report
