"""Every built-in differentiable operation through the one op checker, plus the conventions at
kinks and ties (pinned with exact examples, since the random inputs stay away from them).

The property test is driven by ``tinygrad_sgd.testing.OP_TABLE`` (one row per operation) and
``tinygrad_sgd.testing.check_op`` (Hypothesis): forward vs NumPy, backward vs central finite
differences with random upstream gradients, gradient shapes/dtypes, no mutation, no aliasing,
graph freed, second derivatives.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import settings

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor
from tinygrad_sgd.testing import OP_TABLE, NumpyDraw, check_op

# Examples per operation: the active profile's number (40 under HYPOTHESIS_PROFILE=ci), capped
# at 100 for anyone who raises the profile.  Deliberate: 77 rows x 40 examples, each with first-
# and second-order finite differences, take about 10 s here (measured on 2 shared cores), and
# `python -m tinygrad_sgd gradcheck` checks more NumPy-generated inputs on top.
EXAMPLES_PER_OP = min(settings.default.max_examples, 100)


def test_table_lists_every_differentiable_op_of_the_api() -> None:
    names = {op.name for op in OP_TABLE}
    required = set(
        """
        add sub mul div radd rsub rmul rdiv neg pow_int pow_real pow_method pow_tensor rpow
        radd_ndarray rsub_ndarray rmul_ndarray rdiv_ndarray rpow_ndarray rmatmul_ndarray
        matmul_1d matmul_2d matmul_1d_2d matmul_2d_1d matmul_batched matmul_batched_1d
        matmul_broadcast
        exp log sqrt abs sin cos tanh sigmoid relu softplus leaky_relu clip
        maximum minimum where
        sum mean max min var logsumexp softmax log_softmax
        reshape transpose T flatten squeeze unsqueeze broadcast_to
        getitem_basic getitem_int_array concatenate stack astype clone
        linear linear_no_bias
        quadratic_cost quadratic_cost_labels mse_loss cross_entropy_rows cross_entropy_indices
        nll_loss binary_cross_entropy binary_cross_entropy_with_logits
        cross_entropy_cost cross_entropy_cost_labels
        """.split()
    )
    assert required <= names, f"missing from OP_TABLE: {sorted(required - names)}"
    assert len(names) == len(OP_TABLE), "duplicate names in OP_TABLE"
    assert all(op.second_order for op in OP_TABLE), "every built-in has second derivatives"


def _package_functions() -> set[type]:
    """Every ``Function`` subclass defined in the package (all its modules imported first)."""
    for info in pkgutil.walk_packages(tg.__path__, "tinygrad_sgd."):
        if not info.name.endswith("__main__"):  # running it would start the command line
            importlib.import_module(info.name)
    found: set[type] = set()
    todo = [tg.Function]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("tinygrad_sgd."):
                found.add(sub)
    return found


def _recorded(roots) -> set[type]:
    """The Function classes of every node in the graphs of ``roots``."""
    seen: set[int] = set()
    classes: set[type] = set()
    stack = [t for t in roots if t is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen or t._ctx is None:
            continue
        seen.add(id(t))
        classes.add(t._ctx.fn)
        stack.extend(i for i in t._ctx.inputs if i is not None)
    return classes


def _functions_of_row(spec) -> set[type]:
    """The Functions one case of ``spec`` runs, forward and (recorded with create_graph=True)
    in its backward formulas, e.g. ScatterAdd in the backward of GetItem."""
    case = spec.draw_case(NumpyDraw(0))
    xs = [Tensor(a, requires_grad=True) for a in case.arrays]
    out = spec.fn(*xs, **case.params)
    # u requires grad so that every op of the backward formulas is recorded, even those that
    # act on the upstream gradient alone (ScatterAdd in GetItem's backward)
    u = Tensor(np.random.default_rng(0).standard_normal(out.shape), requires_grad=True)
    grads = tg.grad(out, xs, grad_outputs=u, create_graph=True, allow_unused=True)
    return _recorded([out, *grads])


@pytest.fixture(scope="module")
def functions_per_row() -> dict[str, set[type]]:
    return {spec.name: _functions_of_row(spec) for spec in OP_TABLE}


def _without_rows(
    functions_per_row: dict[str, set[type]], rows: frozenset[str] = frozenset()
) -> list[str]:
    covered = set().union(*(fs for name, fs in functions_per_row.items() if name not in rows))
    return sorted(f"{f.__module__}.{f.__qualname__}" for f in _package_functions() - covered)


def test_every_function_of_the_package_has_an_op_table_row(functions_per_row) -> None:
    """Each Function subclass in tinygrad_sgd is run by some row of OP_TABLE (forward or inside
    a backward formula), so the checker tests it: a new op without a row fails here."""
    missing = _without_rows(functions_per_row)
    assert not missing, (
        f"Function subclasses that no row of OP_TABLE runs: {missing}; add a row to "
        "tinygrad_sgd/testing/op_table.py (see docs/adding_an_operation.md)"
    )


def test_the_coverage_check_notices_a_missing_row(functions_per_row) -> None:
    assert _without_rows(functions_per_row, {"clip"}) == ["tinygrad_sgd.ops.elementwise.Clip"]
    # ScatterAdd runs only in backward formulas (GetItem's, and others since): still seen, and
    # missed once every row that runs it is gone
    from tinygrad_sgd.ops.shape import ScatterAdd

    rows = {name for name, fs in functions_per_row.items() if ScatterAdd in fs}
    assert {"getitem_basic", "getitem_int_array"} <= rows
    assert "tinygrad_sgd.ops.shape.ScatterAdd" in _without_rows(functions_per_row, rows)


@pytest.mark.parametrize("spec", OP_TABLE, ids=lambda s: s.name)
def test_op(spec) -> None:
    check_op(spec, max_examples=EXAMPLES_PER_OP)


# ---- conventions at kinks and ties (API.md): exact values, worked out by hand ----------------


def _grad(fn, *values):
    xs = [Tensor(v, requires_grad=True) for v in values]
    fn(*xs).sum().backward()
    return [x.grad.numpy() for x in xs]


def test_relu_derivative_at_zero_is_zero() -> None:
    (g,) = _grad(lambda x: x.relu(), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_abs_derivative_at_zero_is_zero() -> None:
    (g,) = _grad(lambda x: x.abs(), [-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(g, [-1.0, 0.0, 1.0])


def test_leaky_relu_derivative_at_zero_is_the_slope() -> None:
    (g,) = _grad(lambda x: x.leaky_relu(0.1), [-1.0, 0.0, 2.0])
    np.testing.assert_allclose(g, [0.1, 0.1, 1.0], rtol=0, atol=1e-15)


def test_max_shares_the_gradient_among_ties() -> None:
    (g,) = _grad(lambda x: x.max(), [1.0, 3.0, 3.0, 3.0, 2.0])
    np.testing.assert_allclose(g, [0, 1 / 3, 1 / 3, 1 / 3, 0], rtol=0, atol=1e-15)


def test_min_shares_the_gradient_among_ties_along_an_axis() -> None:
    (g,) = _grad(lambda x: x.min(axis=1), [[1.0, 1.0, 5.0], [0.0, 2.0, 3.0]])
    np.testing.assert_allclose(g, [[0.5, 0.5, 0], [1, 0, 0]], rtol=0, atol=1e-15)


def test_maximum_and_minimum_split_ties_in_half() -> None:
    ga, gb = _grad(tg.maximum, [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(ga, [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(gb, [0.5, 1.0, 0.0])
    ga, gb = _grad(tg.minimum, [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])
    np.testing.assert_array_equal(ga, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(gb, [0.5, 0.0, 1.0])


def test_maximum_tie_with_broadcast_scalar() -> None:
    # the scalar 2.0 ties with two elements: it collects half of each of their gradients
    ga, gb = _grad(tg.maximum, [2.0, 2.0, 1.0], 2.0)
    np.testing.assert_array_equal(ga, [0.5, 0.5, 0.0])
    assert gb == 2.0  # 0.5 + 0.5 + 1 (it wins over 1.0)


# ---- regression tests for engine bugs found by the property test -----------------------------


@pytest.mark.parametrize(
    "fn, second",
    [
        (lambda x: x.exp(), lambda x: np.exp(x)),  # saves its output
        (lambda x: x.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        (lambda x: x.sqrt(), lambda x: -0.25 * x**-1.5),
        (lambda x: 1.0 / x, lambda x: 2 / x**3),
    ],
)
def test_second_derivative_of_a_0d_tensor(fn, second) -> None:
    # NumPy returns a scalar (not an array) from np.exp of a 0-d array; the engine once saved
    # that scalar as a constant, so d²/dx² of exp(x) at a 0-d x came out as 0.
    x = Tensor(0.7, requires_grad=True)
    (g,) = tg.grad(fn(x), [x], create_graph=True)
    (gg,) = tg.grad(g, [x])
    np.testing.assert_allclose(gg.item(), second(0.7), rtol=1e-12)
