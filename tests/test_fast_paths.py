"""Tests for the engine's speed shortcuts: each one must give exactly what the plain path gives.

* the fused linear op (ops.Linear: z = x Wᵀ + b as one node) against finite differences, first
  and second order, in float64, and against the composed x @ W.T + b;
* the fast branch of the stable sigmoid (plain 1/(1 + e⁻ˣ) when nothing can overflow) against
  the always-safe formula, on both sides of the switch;
* leaf gradients taken without a copy only when nothing else can see them (no aliasing);
* floating ndarray operands used without a copy, other operands through the dtype policy;
* the engine's one-sum un-broadcasting of added leading axes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, gradcheck, gradgradcheck, nn, ops
from tinygrad_sgd.nn import functional as F
from tinygrad_sgd.ops.elementwise import _exp_safe_limit

# ------------------------------------------------------------------------------------ fused linear

SHAPES = [((5, 4), 3), ((4,), 3), ((2, 3, 4), 2), ((1, 1), 1), ((0, 4), 3)]


def _linear_inputs(x_shape, n_out, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    n_in = x_shape[-1]
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = Tensor(rng.standard_normal((n_out, n_in)), requires_grad=True)
    b = Tensor(rng.standard_normal(n_out), requires_grad=True) if bias else None
    return x, w, b


@pytest.mark.parametrize("x_shape,n_out", SHAPES)
def test_linear_gradients_match_finite_differences(x_shape, n_out):
    x, w, b = _linear_inputs(x_shape, n_out)
    # a random upstream gradient through a weighted sum, not a sum of ones
    r = Tensor(np.random.default_rng(1).standard_normal(x_shape[:-1] + (n_out,)))

    def f(x, w, b):
        return (F.linear(x, w, b) * r).sum()

    assert gradcheck(f, [x, w, b], eps=1e-6, atol=1e-7, rtol=1e-6)
    assert gradgradcheck(f, [x, w, b], eps=1e-6, atol=1e-6, rtol=1e-5)


def test_linear_without_bias_and_partial_requires_grad():
    x, w, _ = _linear_inputs((6, 5), 4, seed=2, bias=False)
    assert gradcheck(lambda x, w: F.linear(x, w).tanh(), [x, w], eps=1e-6, atol=1e-7)
    # only the weight requires a gradient: the others get none, and W's is exact
    xc = Tensor(x.data)
    F.linear(xc, w).sum().backward()
    assert xc.grad is None
    np.testing.assert_allclose(w.grad.numpy(), np.ones((6, 4)).T @ x.data, rtol=1e-12)


@pytest.mark.parametrize("x_shape,n_out", SHAPES)
def test_linear_equals_the_composed_expression(x_shape, n_out):
    x, w, b = _linear_inputs(x_shape, n_out, seed=3)
    x2, w2, b2 = (Tensor(t.data.copy(), requires_grad=True) for t in (x, w, b))
    g = np.random.default_rng(4).standard_normal(x_shape[:-1] + (n_out,))
    fused = F.linear(x, w, b)
    composed = x2 @ w2.T + b2
    np.testing.assert_allclose(fused.numpy(), composed.numpy(), rtol=1e-12, atol=1e-12)
    fused.backward(g)
    composed.backward(g)
    for a, c in ((x, x2), (w, w2), (b, b2)):
        np.testing.assert_allclose(a.grad.numpy(), c.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "x_shape,n_out",
    [((3,), 0), ((0, 3), 2), ((2, 0), 4), ((2, 0, 3), 2), ((2, 2, 3), 0), ((0,), 0)],
)
def test_linear_with_empty_axes_gives_the_hand_written_gradients(x_shape, n_out):
    """Zero outputs, zero inputs or an empty batch (found by the hostile-input fuzzer: the
    backward reshaped with -1, which NumPy cannot infer next to a zero-length axis)."""
    rng = np.random.default_rng(6)
    n_in = x_shape[-1]
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = Tensor(rng.standard_normal((n_out, n_in)), requires_grad=True)
    b = Tensor(rng.standard_normal(n_out), requires_grad=True)
    z = F.linear(x, w, b)
    assert z.shape == x_shape[:-1] + (n_out,)
    g = rng.standard_normal(z.shape)
    z.backward(g)
    rows_g = g.reshape(int(np.prod(x_shape[:-1])), n_out)
    rows_x = x.data.reshape(int(np.prod(x_shape[:-1])), n_in)
    np.testing.assert_allclose(x.grad.numpy(), g @ w.data, rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), rows_g.T @ rows_x, rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), rows_g.sum(axis=0), rtol=1e-12)
    assert x.grad.shape == x.shape and w.grad.shape == w.shape and b.grad.shape == b.shape


def test_linear_dtypes_follow_numpy_promotion():
    x32 = Tensor(np.ones((2, 3), np.float32))
    w32 = Tensor(np.ones((4, 3), np.float32), requires_grad=True)
    b64 = Tensor(np.ones(4), requires_grad=True)
    assert F.linear(x32, w32, Tensor(np.ones(4, np.float32))).dtype == np.float32
    z = F.linear(x32, w32, b64)
    assert z.dtype == (np.ones((2, 4), np.float32) + np.ones(4)).dtype
    z.sum().backward()
    assert w32.grad.dtype == np.float32 and b64.grad.dtype == np.float64


def test_linear_accepts_an_array_input_without_copying_it():
    x = np.random.default_rng(5).standard_normal((3, 2))
    w = Tensor(np.ones((4, 2)), requires_grad=True)
    z = F.linear(x, w)
    z.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.ones((3, 4)).T @ x)


@pytest.mark.parametrize(
    "x_shape,w_shape,b_shape,message",
    [
        ((3, 5), (4, 6), (4,), "last axis must have length 6"),
        ((), (4, 1), (4,), "does not match weight"),
        ((3, 5), (5,), None, "weight must be 2-D"),
        ((3, 5), (4, 5), (5,), r"bias must have shape \(4,\)"),
    ],
)
def test_linear_bad_shapes_raise_clear_errors(x_shape, w_shape, b_shape, message):
    x = Tensor(np.ones(x_shape))
    w = Tensor(np.ones(w_shape), requires_grad=True)
    b = None if b_shape is None else Tensor(np.ones(b_shape))
    with pytest.raises(ValueError, match=message):
        F.linear(x, w, b)


def test_linear_rejects_non_tensor_parameters():
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        F.linear(np.ones((2, 3)), np.ones((4, 3)))
    with pytest.raises(TypeError, match="bias must be a Tensor"):
        F.linear(np.ones((2, 3)), Tensor(np.ones((4, 3))), np.ones(4))


def test_nn_linear_is_one_graph_node():
    layer = nn.Linear(3, 2, dtype=np.float64, seed=0)
    z = layer(Tensor(np.ones((4, 3))))
    assert z.grad_fn is not None and z.grad_fn.name == "Linear"
    assert all(i is None or i.is_leaf for i in z.grad_fn.inputs)


def test_functional_linear_is_the_same_single_node():
    x, w, b = _linear_inputs((4, 3), 2, seed=5)
    z = nn.functional.linear(x, w, b)
    assert z.grad_fn is not None and z.grad_fn.name == "Linear"
    assert all(i is None or i.is_leaf for i in z.grad_fn.inputs)
    with pytest.raises(TypeError, match="weight must be a Tensor"):
        nn.functional.linear(x, w.data, b)


# --------------------------------------------------------------------------------------- sigmoid


def _safe_sigmoid(x: np.ndarray) -> np.ndarray:
    """The always-safe formula, written independently of the op."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_sigmoid_fast_and_safe_branches_agree_on_both_sides_of_the_switch(dtype):
    lim = _exp_safe_limit(np.dtype(dtype))
    inside = np.array([-lim, -lim / 2, -1.0, 0.0, 1.0, lim, 3 * lim], dtype=dtype)
    outside = np.append(inside, dtype(-lim - 2))  # one element beyond: the safe branch
    for x in (inside, outside):
        out = Tensor(x).sigmoid().numpy()
        assert out.dtype == dtype
        # float16's own rounding of 1 + e⁻ˣ dominates; elsewhere a few ulp
        np.testing.assert_allclose(out, _safe_sigmoid(x), rtol=4 * np.finfo(dtype).eps, atol=0)
    with np.errstate(all="raise"):  # no overflow or underflow (not even a silenced one)
        Tensor(inside).sigmoid()
        Tensor(outside).sigmoid()
        Tensor(np.array([-1e300, 1e300, -np.inf, np.inf])).sigmoid()


@given(st.lists(st.floats(-800, 800), min_size=1, max_size=20))
def test_sigmoid_matches_the_safe_formula_anywhere(values):
    x = np.array(values)
    np.testing.assert_allclose(
        Tensor(x).sigmoid().numpy(), _safe_sigmoid(x), rtol=1e-15, atol=1e-300
    )


def test_sigmoid_keeps_tiny_values_relative_accuracy_in_the_fast_branch():
    x = np.array([-700.0, -100.0, -30.0, 0.5])  # all ≥ −708: the in-place branch
    np.testing.assert_allclose(Tensor(x).sigmoid().numpy(), _safe_sigmoid(x), rtol=1e-14)


def test_sigmoid_zero_d_and_empty_inputs():
    assert Tensor(0.0).sigmoid().item() == 0.5
    assert Tensor(np.zeros((0, 3))).sigmoid().shape == (0, 3)


# ------------------------------------------------------------------- leaf gradients: no aliasing


def _shares(a: Tensor | None, b: Tensor | np.ndarray | None) -> bool:
    assert a is not None and b is not None
    return np.shares_memory(a.data, b.data if isinstance(b, Tensor) else b)


class _Square(tg.Function):
    """x² with a backward that reports the id of the fresh array it returns."""

    made: list[int] = []

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        r = g * (2 * x)
        _Square.made.append(id(r.data))
        return r


def test_a_fresh_gradient_becomes_the_leaf_gradient_without_a_copy():
    _Square.made.clear()
    x = Tensor(np.arange(3.0), requires_grad=True)
    _Square.apply(x).sum().backward()
    assert id(x.grad.data) == _Square.made[0]  # taken, not copied
    np.testing.assert_array_equal(x.grad.numpy(), 2 * np.arange(3.0))


def test_a_gradient_kept_by_a_hook_is_copied():
    kept = []
    x = Tensor(np.arange(3.0), requires_grad=True)
    x.register_hook(lambda g: kept.append(g))
    _Square.apply(x).sum().backward()
    assert not _shares(x.grad, kept[0])
    x.grad.data += 1  # changing the leaf gradient in place must not change what the hook saw
    np.testing.assert_array_equal(kept[0].numpy(), 2 * np.arange(3.0))


def test_the_same_gradient_passed_to_two_leaves_is_not_shared():
    a = Tensor(np.ones(3), requires_grad=True)
    b = Tensor(np.ones(3), requires_grad=True)
    g = Tensor(np.arange(3.0))
    (a + b).backward(g)  # Add passes the same gradient object to both inputs
    assert not _shares(a.grad, b.grad)
    assert not _shares(a.grad, g) and not _shares(b.grad, g)


def test_a_user_gradient_given_to_a_leaf_is_copied():
    x = Tensor(np.ones(3), requires_grad=True)
    g = Tensor(np.arange(3.0))
    x.backward(g)
    assert not _shares(x.grad, g)
    g.data += 5
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(3.0))


def test_retained_and_leaf_gradients_do_not_share_a_buffer():
    x = Tensor(np.ones(3), requires_grad=True)
    y = x.clone()  # Clone passes its gradient through unchanged
    y.retain_grad()
    (y * Tensor(np.arange(3.0))).sum().backward()
    assert not _shares(x.grad, y.grad)


def test_views_are_copied_into_leaf_gradients():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    x.sum().backward()  # Sum's backward broadcasts: a read-only view
    assert x.grad.data.flags.writeable and x.grad.data.base is None
    x.grad.data += 1
    np.testing.assert_array_equal(x.grad.numpy(), np.full((2, 3), 2.0))


def test_accumulation_across_backward_calls_is_out_of_place():
    _Square.made.clear()
    x = Tensor(np.arange(3.0), requires_grad=True)
    _Square.apply(x).sum().backward()
    first = x.grad
    first_values = first.numpy().copy()
    _Square.apply(x).sum().backward()
    np.testing.assert_array_equal(first.numpy(), first_values)  # the old gradient is untouched
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first_values)


def test_create_graph_leaf_gradient_stays_differentiable():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g is not None and g.requires_grad
    (gx,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(gx.numpy(), 6 * x.data)


# ------------------------------------------------------------------------- operands and broadcast


def test_float_array_operands_are_used_without_a_copy_and_keep_numpy_dtype_rules():
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    a32 = np.arange(3, dtype=np.float32)
    out = w * a32
    assert out.dtype == np.float32
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), a32)
    # integer arrays still become the default float dtype (the constructor's policy)
    assert (w * np.arange(3)).dtype == np.result_type(np.float32, np.float64)
    assert (Tensor(np.ones(2)) + np.array([1, 2])).dtype == np.float64


def test_python_scalars_are_weak_for_floating_and_promote_for_integer_tensors():
    assert (Tensor(np.ones(2, np.float32)) * 3.5).dtype == np.float32
    assert (Tensor(np.ones(2, np.float16)) + 1).dtype == np.float16
    assert (Tensor(np.arange(2)) * 2.5).dtype == np.result_type(np.float64, 2.5)
    ints = Tensor(np.arange(3), dtype=np.int64)
    assert (ints + 1).dtype == np.int64
    assert (ints * 0.5).dtype == np.float64


@pytest.mark.parametrize(
    "shape_in,shape_out",
    [((3,), (4, 3)), ((3,), (2, 4, 3)), ((1, 3), (4, 3)), ((4, 1), (4, 3)), ((), (2, 3))],
)
def test_unbroadcasting_sums_exactly_the_broadcast_axes(shape_in, shape_out):
    rng = np.random.default_rng(6)
    x = Tensor(rng.standard_normal(shape_in), requires_grad=True)
    g = rng.standard_normal(shape_out)
    (x + np.zeros(shape_out)).backward(g)
    lead = len(shape_out) - len(shape_in)
    expected = g.sum(axis=tuple(range(lead)))
    axes = tuple(k for k, n in enumerate(shape_in) if n == 1 and shape_out[lead + k] != 1)
    expected = expected.sum(axis=axes, keepdims=True).reshape(shape_in)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda x: (x * Tensor(g)).sum(), [x])


# ---------------------------------------------------------------------------- sigmoid's slope op


def test_sigmoid_slope_matches_finite_differences():
    a = Tensor(np.random.default_rng(7).uniform(0.05, 0.95, (4, 3)), requires_grad=True)
    r = Tensor(np.random.default_rng(8).standard_normal((4, 3)))
    f = lambda a: (ops.SigmoidSlope.apply(a) * r).sum()  # noqa: E731
    assert gradcheck(f, [a], eps=1e-6, atol=1e-8, rtol=1e-6)
    assert gradgradcheck(f, [a], eps=1e-6, atol=1e-7, rtol=1e-5)
    np.testing.assert_allclose(ops.SigmoidSlope.apply(a).numpy(), a.data * (1 - a.data))


def test_sigmoid_first_and_second_derivatives_by_hand():
    z = np.array([-3.0, -0.5, 0.0, 0.7, 4.0])
    x = Tensor(z, requires_grad=True)
    s = 1 / (1 + np.exp(-z))
    (g,) = tg.grad(x.sigmoid().sum(), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), s * (1 - s), rtol=1e-14)
    (gg,) = tg.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), s * (1 - s) * (1 - 2 * s), rtol=1e-12, atol=1e-16)
    assert gradgradcheck(lambda x: x.sigmoid(), [Tensor(z, requires_grad=True)])


def test_a_hook_returning_a_tensor_that_requires_grad_does_not_leak_it_into_grad():
    x = Tensor(np.ones(2), requires_grad=True)
    x.register_hook(lambda g: Tensor(np.full(2, 7.0), requires_grad=True))
    (x * 2).sum().backward()
    assert x.grad is not None and not x.grad.requires_grad and x.grad.is_leaf
    np.testing.assert_array_equal(x.grad.numpy(), [7.0, 7.0])
