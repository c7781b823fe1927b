"""Hostile input: every case gives the right answer or a TypeError/ValueError that says what is
wrong (IndexError for out-of-range indices, as NumPy users expect); never a crash, a hang, or a
silently wrong result.
"""

from __future__ import annotations

import warnings

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor

EXPECTED_ERRORS = (TypeError, ValueError)

# ---------------------------------------------------------------- constructors

weird_values = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(object),
    st.lists(st.text(max_size=2), min_size=1, max_size=3),
    hnp.arrays(dtype=hnp.unicode_string_dtypes(), shape=hnp.array_shapes(max_dims=2, max_side=3)),
    hnp.arrays(dtype=np.complex128, shape=hnp.array_shapes(max_dims=2, max_side=3)),
    hnp.arrays(dtype=np.dtype(object), shape=(2,), elements=st.just(None)),
    hnp.arrays(dtype=hnp.datetime64_dtypes(), shape=(2,)),
)


@given(weird_values)
def test_constructor_rejects_non_numeric_data_with_type_error(value):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(value)


float_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=32),
)


@given(float_arrays, st.booleans())
def test_constructor_keeps_any_float_data_exactly(arr, requires_grad):
    t = Tensor(arr, requires_grad=requires_grad)
    assert t.shape == arr.shape and t.dtype == arr.dtype
    np.testing.assert_array_equal(t.numpy(), arr)  # NaN compares equal to NaN here


@given(st.sampled_from([[], [[]], np.zeros((0, 3)), np.zeros((2, 0, 1), np.float32)]))
def test_empty_data(value):
    t = Tensor(value, requires_grad=True)
    assert t.size == 0
    (t * 2).sum().backward()
    assert t.grad.shape == t.shape and t.grad.size == 0


@given(st.one_of(st.text(max_size=3), st.none(), st.builds(object), st.just({1: 2})))
def test_bad_operands_raise_type_error(other):
    x = Tensor([1.0, 2.0], requires_grad=True)
    for op in (
        lambda: x + other,
        lambda: other * x,
        lambda: x / other,
        lambda: x - other,
        lambda: x @ other,
    ):
        with pytest.raises(EXPECTED_ERRORS):
            op()


@given(st.sampled_from([np.float32, "float64", "int8", "U3", "complex64", object]))
def test_dtype_argument(dtype):
    d = np.dtype(dtype)
    if d.kind in "biuf":
        assert Tensor([1, 0], dtype=dtype).dtype == d
    else:
        with pytest.raises(TypeError, match="dtype"):
            Tensor([1, 0], dtype=dtype)


def test_requires_grad_rejected_for_non_float_and_set_default_dtype_checks():
    with pytest.raises(TypeError):
        Tensor(np.arange(3), dtype=np.int64, requires_grad=True)
    for bad in ("int32", np.bool_, "U1"):
        with pytest.raises(TypeError):
            tg.set_default_dtype(bad)


# ---------------------------------------------------------------- axes and shapes

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
axes = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.lists(st.integers(-5, 5), max_size=3).map(tuple),
    st.floats(allow_nan=True),
    st.text(max_size=2),
    st.just([0, 0]),
)


def _valid_axis(shape, axis):
    """The rule for every reduction: None, or ints in [-ndim, ndim) without repeats.

    NOTE: NumPy's ufunc reductions also accept axis=0 and -1 on a 0-d array (np.sum, np.max) while
    np.mean and np.var reject them; we apply the one rule to all reductions.
    """
    if axis is None:
        return True
    items = axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, int) for a in items):
        return False
    norm = [a % len(shape) for a in items if -len(shape) <= a < len(shape)]
    return len(norm) == len(items) and len(set(norm)) == len(norm)


@given(shapes, axes, st.sampled_from(["sum", "mean", "max", "min", "var", "logsumexp"]))
def test_reductions_with_any_axis(shape, axis, name):
    data = np.random.default_rng(0).normal(size=shape)
    x = Tensor(data, requires_grad=True)
    if isinstance(axis, list):
        axis = tuple(axis)
    if _valid_axis(shape, axis):
        out = getattr(x, name)(axis=axis)
        ref = {
            "sum": np.sum,
            "mean": np.mean,
            "max": np.max,
            "min": np.min,
            "var": np.var,
            "logsumexp": lambda a, axis: np.log(np.sum(np.exp(a), axis=axis)),
        }[name](data, axis=axis)
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12, atol=1e-12)
        out.sum().backward()
        assert x.grad.shape == shape
    else:
        with pytest.raises(EXPECTED_ERRORS):
            getattr(x, name)(axis=axis)


@given(shapes, st.lists(st.integers(-2, 7), min_size=0, max_size=4))
def test_reshape_any_target(shape, target):
    data = np.arange(int(np.prod(shape)), dtype=float).reshape(shape)
    x = Tensor(data, requires_grad=True)
    try:
        expected = data.reshape(target)
    except ValueError:
        with pytest.raises(ValueError, match="reshape"):
            x.reshape(*target) if target else x.reshape(())
        return
    y = x.reshape(tuple(target))
    np.testing.assert_array_equal(y.numpy(), expected)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(shape))


@given(shapes, st.lists(st.integers(-4, 4), max_size=4))
def test_transpose_any_axes(shape, perm):
    data = np.random.default_rng(1).normal(size=shape)
    x = Tensor(data)
    try:
        expected = np.transpose(data, perm if perm else None)
    except (ValueError, TypeError):
        with pytest.raises(ValueError):
            x.transpose(*perm)
        return
    np.testing.assert_array_equal(x.transpose(*perm).numpy(), expected)


@given(shapes, st.integers(-6, 6))
def test_softmax_axis(shape, axis):
    x = Tensor(np.random.default_rng(2).normal(size=shape))
    ndim = len(shape)
    if -max(ndim, 1) <= axis < max(ndim, 1) and ndim > 0:
        s = x.softmax(axis=axis).numpy()
        np.testing.assert_allclose(s.sum(axis=axis), 1.0)
    elif ndim > 0:
        with pytest.raises(ValueError, match="out of bounds"):
            x.softmax(axis=axis)


@given(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4), st.integers(-10, 10))
def test_index_out_of_range_raises_index_error(shape, i):
    data = np.zeros(shape)
    x = Tensor(data, requires_grad=True)
    if -shape[0] <= i < shape[0]:
        assert x[i].shape == data[i].shape
    else:
        with pytest.raises(IndexError):
            x[i]
        with pytest.raises(IndexError):
            x[[0, i]]


# ---------------------------------------------------------------- NaN, infinity, zero-size

special = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e308, -1e308, 5e-324])

ELEMENTWISE = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0),
    "softplus": lambda a: np.logaddexp(0, a),
}


@given(st.lists(special, min_size=1, max_size=6), st.sampled_from(sorted(ELEMENTWISE)))
def test_special_values_propagate_like_numpy(values, name):
    data = np.array(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = getattr(Tensor(data), name)().numpy()
        ref = ELEMENTWISE[name](data)
    np.testing.assert_array_equal(out, ref)


@given(st.lists(special, min_size=1, max_size=6))
def test_sigmoid_special_values(values):
    data = np.array(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = Tensor(data).sigmoid().numpy()
    finite = np.isfinite(data)
    assert np.isnan(out[np.isnan(data)]).all()
    np.testing.assert_array_equal(out[data == np.inf], 1.0)
    np.testing.assert_array_equal(out[data == -np.inf], 0.0)
    assert ((out[finite] >= 0) & (out[finite] <= 1)).all()


@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3))
def test_zero_size_reductions(shape):
    data = np.zeros(shape)
    x = Tensor(data, requires_grad=True)
    np.testing.assert_array_equal(x.sum(axis=0).numpy(), data.sum(axis=0))
    if data.size == 0:
        with pytest.raises(ValueError):
            x.max()
    else:
        assert x.max().item() == 0.0
    x.sum().backward()
    assert x.grad.shape == shape


def test_matmul_with_zero_size_inner_dimension():
    a = Tensor(np.zeros((2, 0)), requires_grad=True)
    b = Tensor(np.zeros((0, 3)), requires_grad=True)
    out = a @ b
    np.testing.assert_array_equal(out.numpy(), np.zeros((2, 3)))
    out.sum().backward()
    assert a.grad.shape == (2, 0) and b.grad.shape == (0, 3)
