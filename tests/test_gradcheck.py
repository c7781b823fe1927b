"""gradcheck / gradgradcheck: right gradients pass, wrong ones are caught, with useful messages."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Function, GradcheckError, Tensor, gradcheck, gradgradcheck
from tinygrad_sgd.gradcheck import GradcheckWarning, check_gradients

# Tolerances that catch a 0.1 % error: float64 central differences with eps = 1e-6 are good to
# ~1e-9 relative on these smooth functions, so rtol = 1e-5 leaves a margin of 1e4 below it and
# 100 above the numerical noise.  (The API defaults, those of PyTorch, flag errors above ~0.1 %.)
TIGHT = {"rtol": 1e-5, "atol": 1e-8}


def rand(*shape, seed=0, low=-2.0, high=2.0, requires_grad=True):
    rng = np.random.default_rng(seed)
    return Tensor(rng.uniform(low, high, shape), requires_grad=requires_grad)


# ---- planted errors -------------------------------------------------------------------------


class Cube(Function):
    """y = x³, right."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x**2


class CubeOffByTenthPercent(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x**2 * 1.001


class CubeWithConstantBackward(Cube):
    """First derivative right, but written on .data: not differentiable a second time."""

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * Tensor(3 * x.data**2)


class SoftmaxZeroBackward(Function):
    @staticmethod
    def forward(ctx, x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def backward(ctx, g):
        return g * 0.0


class RowSumWrongAxis(Function):
    """z = Σ_j x_ij (sum over axis 1), but backward spreads g along the wrong axis."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.sum(axis=1)

    @staticmethod
    def backward(ctx, g):
        # g has shape (n,) = (rows,); right: g[:, None] broadcast over columns.  Wrong: as if
        # it were indexed by columns (works only because the test matrix is square).
        return g.reshape(1, -1).broadcast_to(ctx.shape)


def test_right_gradients_pass() -> None:
    x, w = rand(3, 4), rand(4, 2, seed=1)
    assert gradcheck(lambda x, w: (x @ w).tanh().softmax(axis=0), [x, w], **TIGHT)
    assert gradcheck(Cube.apply, [x], **TIGHT)
    assert gradgradcheck(lambda x, w: (x @ w).sigmoid(), [x, w], **TIGHT)
    assert gradgradcheck(Cube.apply, [x], **TIGHT)


def test_backward_off_by_a_tenth_of_a_percent_is_caught() -> None:
    x = rand(3, 4)
    with pytest.raises(GradcheckError):
        gradcheck(CubeOffByTenthPercent.apply, [x], **TIGHT)
    with pytest.raises(GradcheckError):
        gradcheck(CubeOffByTenthPercent.apply, [x], fast_mode=True, **TIGHT)


def test_default_tolerances_catch_a_one_percent_error() -> None:
    class OffByOnePercent(Cube):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x**2 * 1.01

    assert gradcheck(Cube.apply, [rand(5)])
    with pytest.raises(GradcheckError):
        gradcheck(OffByOnePercent.apply, [rand(5)])


def test_softmax_with_zero_backward_is_caught() -> None:
    # Projected on all ones this softmax would pass: Σ_i ∂s_i/∂x_j = 0.  The random u catches it.
    x = rand(2, 5)
    with pytest.raises(GradcheckError):
        gradcheck(SoftmaxZeroBackward.apply, [x])
    with pytest.raises(GradcheckError):
        gradcheck(SoftmaxZeroBackward.apply, [x], fast_mode=True)


def test_all_ones_projection_would_miss_the_zero_softmax() -> None:
    # Why u must be random: the all-ones projection of softmax's Jacobian is exactly zero.
    x = rand(2, 5)
    y = x.softmax(axis=-1)
    (g,) = tg.grad(y, [x], grad_outputs=Tensor(np.ones(y.shape)))
    np.testing.assert_allclose(g.numpy(), 0.0, atol=1e-15)


def test_gradient_summed_over_the_wrong_axis_is_caught() -> None:
    x = rand(3, 3)
    with pytest.raises(GradcheckError):
        gradcheck(RowSumWrongAxis.apply, [x])


def test_second_derivative_error_is_caught_by_gradgradcheck_only() -> None:
    x = rand(4)
    assert gradcheck(CubeWithConstantBackward.apply, [x], **TIGHT)
    with pytest.raises(GradcheckError, match="second derivative"):
        gradgradcheck(CubeWithConstantBackward.apply, [x])
    # gradgradcheck differentiates the engine's own first derivative: a first derivative that
    # is consistently scaled is gradcheck's business, not gradgradcheck's.
    assert gradgradcheck(CubeOffByTenthPercent.apply, [x], **TIGHT)


# ---- the message ------------------------------------------------------------------------------


def test_message_names_input_output_worst_element_values_errors_and_tolerances() -> None:
    x = rand(3, 4)
    w = rand(4, seed=1, requires_grad=False)

    def f(w_const, x):  # the broken op is applied to input 1 only
        return CubeOffByTenthPercent.apply(x) + w_const

    with pytest.raises(GradcheckError) as info:
        gradcheck(f, [w, x], **TIGHT)
    msg = str(info.value)
    assert "input 1 (shape (3, 4))" in msg
    assert "output 0 (shape (3, 4))" in msg
    m = re.search(r"worst element: index \((\d), (\d)\)", msg)
    assert m, msg
    i, j = int(m.group(1)), int(m.group(2))
    # the worst element is where |3x²·u| (hence the 0.1 % error) is largest
    result = info.value.result
    (cmp,) = result.comparisons
    bad = np.abs(cmp.analytic - cmp.numeric)
    assert (i, j) == np.unravel_index(np.argmax(bad), bad.shape)
    analytic = float(re.search(r"analytic\s+=\s+(\S+)", msg).group(1))
    numeric = float(re.search(r"numeric\s+=\s+(\S+)", msg).group(1))
    assert analytic == pytest.approx(1.001 * numeric, rel=1e-6)
    assert "abs error" in msg and "rel error = 1.000e-03" in msg
    assert "atol=1e-08" in msg and "rtol=1e-05" in msg and "eps=1e-06" in msg


def test_raise_exception_false_returns_false() -> None:
    assert gradcheck(SoftmaxZeroBackward.apply, [rand(2, 3)], raise_exception=False) is False
    assert gradgradcheck(CubeWithConstantBackward.apply, [rand(3)], raise_exception=False) is False


def test_gradcheck_error_is_an_assertion_error() -> None:
    assert issubclass(GradcheckError, AssertionError)
    assert tg.GradcheckError is GradcheckError


def test_fast_mode_message_says_how_to_locate_the_element() -> None:
    with pytest.raises(GradcheckError, match="fast_mode=False"):
        gradcheck(SoftmaxZeroBackward.apply, [rand(2, 3)], fast_mode=True)


# ---- what is checked, and how -----------------------------------------------------------------


def test_any_output_shape_and_several_outputs() -> None:
    x = rand(2, 3)
    assert gradcheck(lambda x: x.sum(), [x])  # 0-d output
    assert gradcheck(lambda x: (x.exp(), x.sum(axis=0), x[0, 1]), [x])

    class TwoOutputsOneWrong(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return g * 2.5

    with pytest.raises(GradcheckError, match="output 1"):
        gradcheck(lambda x: (x.exp(), TwoOutputsOneWrong.apply(x)), [x])


def test_non_tensor_and_constant_inputs_pass_through() -> None:
    x, c = rand(3), rand(3, seed=1, requires_grad=False)
    assert gradcheck(lambda x, c, p: (x * c) ** p, [x, c, 2])


class MulWrongForB(Function):
    """z = a·b with the right gradient for a and a wrong one (zero) for b."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        (b,) = ctx.saved_tensors
        return g * b, g * 0.0


def test_only_inputs_that_require_grad_are_checked() -> None:
    a, b = rand(3), rand(3, seed=1, requires_grad=False)
    assert gradcheck(MulWrongForB.apply, [a, b])  # b's wrong gradient is never asked for
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(MulWrongForB.apply, [a, rand(3, seed=1)])


def test_callers_tensors_are_not_touched() -> None:
    x = rand(3)
    before = x.numpy().copy()
    gradcheck(lambda x: x.sin(), [x])
    gradgradcheck(lambda x: x.sin(), [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None


def test_float32_inputs_warn_naming_them_and_are_checked_in_float64() -> None:
    x32 = Tensor(np.array([0.3, -1.2], dtype=np.float32), requires_grad=True)
    x64 = rand(2)
    with pytest.warns(GradcheckWarning, match=r"input 1 \(float32, shape \(2,\)\)"):
        assert gradcheck(lambda a, b: a * b.exp(), [x64, x32], **TIGHT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradcheck(lambda a: a.exp(), [x64])  # float64: no warning


def test_fast_mode_checks_large_inputs_cheaply() -> None:
    calls = {"n": 0}

    def f(x):
        calls["n"] += 1
        return (x * x).sum(axis=1)

    x = rand(50, 40)
    assert gradcheck(f, [x], fast_mode=True, **TIGHT)
    assert calls["n"] < 10  # 2000 elements would need 4000 calls in full mode
    assert gradgradcheck(f, [x], fast_mode=True, **TIGHT)


def test_unused_input_has_zero_gradient() -> None:
    assert gradcheck(lambda a, b: a.exp(), [rand(2), rand(3, seed=1)])


def test_nondeterministic_function_is_reported() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(GradcheckError, match="nondeterministic"):
        gradcheck(lambda x: x * float(rng.uniform()), [rand(2)])


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="no input requires grad"):
        gradcheck(lambda x: x.exp(), [rand(2, requires_grad=False)])
    with pytest.raises(TypeError, match="output 0 is a ndarray"):
        gradcheck(lambda x: x.exp().numpy(), [rand(2)])
    with pytest.raises(TypeError, match="inputs must be a Tensor"):
        gradcheck(lambda x: x, {"x": rand(2)})
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        gradcheck(lambda x: x, [rand(2)], eps=0.0)
    with pytest.raises(ValueError, match="no floating-point output"):
        gradcheck(lambda x: x > 0, [rand(2)])


def test_gradgradcheck_with_given_grad_outputs() -> None:
    x = rand(2, 3)
    w = np.ones((2,))
    assert gradgradcheck(lambda x: (x * x).sum(axis=1), [x], grad_outputs=[w], **TIGHT)
    with pytest.raises(ValueError, match="shape"):
        gradgradcheck(lambda x: (x * x).sum(axis=1), [x], grad_outputs=[np.ones(3)])


def test_result_object_reports_worst_errors() -> None:
    res = check_gradients(CubeOffByTenthPercent.apply, [rand(4)], **TIGHT)
    assert not res.passed
    assert res.max_rel_err == pytest.approx(1e-3, rel=1e-3)
    ok = check_gradients(Cube.apply, [rand(4)], **TIGHT)
    assert ok.passed and ok.max_rel_err < 1e-7


# ---- non-finite values and bad settings (issue 20, item 1) ----------------------------------


class ExpZeroBackward(Function):
    """y = eˣ with a backward that is wrong everywhere: g · 0 · x instead of g · eˣ."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.exp(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 0.0 * x


# The point: e^709.78 ≈ 1.8e308, so the difference quotient u·(f(x+ε) − f(x−ε))/2ε
# overflows to ±inf when |u| > 1.0015; seed 3 draws u = 2.04 (seed 0 would draw 0.126, and the
# wrong backward is then caught by finite numbers).  Then the bound atol + rtol·|numeric| is inf.
NEAR_OVERFLOW, OVERFLOWING_SEED = 709.78, 3
# Just below ln(max float64) = 709.782712893384: e^x is finite, e^(x + ε) is inf for any u.
AT_OVERFLOW = 709.782712893


def test_a_wrong_backward_fails_where_the_finite_difference_overflows() -> None:
    x = Tensor(np.array([NEAR_OVERFLOW]), requires_grad=True)
    with np.errstate(over="ignore"):
        with pytest.raises(GradcheckError, match="not finite") as info:
            gradcheck(lambda t: ExpZeroBackward.apply(t), [x], seed=OVERFLOWING_SEED)
        assert not np.isfinite(info.value.result.comparisons[0].numeric).any()
        ok = gradcheck(ExpZeroBackward.apply, [x], seed=OVERFLOWING_SEED, raise_exception=False)
    assert ok is False


def test_a_non_finite_value_never_passes_even_with_a_right_backward() -> None:
    """Where f overflows the check confirms nothing, so a right exp fails too; so does the second
    order (the first derivative w·eˣ overflows the same way), and an infinite analytic value."""
    x = Tensor(np.array([AT_OVERFLOW]), requires_grad=True)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        assert not gradcheck(lambda t: t.exp(), [x], raise_exception=False)
        assert not gradgradcheck(lambda t: t.exp(), [x], raise_exception=False)
        assert not gradcheck(lambda t: t.exp(), [x], fast_mode=True, raise_exception=False)
        # d√t/dt = inf at 0, and the one-sided step of the central difference gives nan
        y = Tensor(np.array([0.0]), requires_grad=True)
        assert not gradcheck(lambda t: t.sqrt(), [y], raise_exception=False)


@pytest.mark.parametrize(
    "name,value",
    [
        ("eps", 0.0),
        ("eps", -1e-6),
        ("eps", float("inf")),
        ("eps", float("nan")),
        ("eps", "1e-6"),
        ("atol", -1e-8),
        ("atol", float("inf")),
        ("atol", float("nan")),
        ("rtol", -1e-5),
        ("rtol", float("inf")),
        ("rtol", float("nan")),
    ],
)
def test_bad_eps_atol_rtol_are_refused_naming_the_argument(name, value) -> None:
    x = rand(2)
    calls = []

    def fn(t):
        calls.append(1)
        return t.exp()

    for check, who in [(gradcheck, "gradcheck"), (gradgradcheck, "gradgradcheck")]:
        with pytest.raises(ValueError, match=rf"^{who}: {name} must be a finite number >=? 0"):
            check(fn, [x], **{name: value})
        assert calls == []  # refused before fn runs
