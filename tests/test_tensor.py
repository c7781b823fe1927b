"""Tensor construction, dtype policy, properties, NumPy interop and error messages."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor

# ---------------------------------------------------------------- dtype policy


@pytest.mark.parametrize(
    "data",
    [1, 2.5, [1, 2], [[1.0, 2.0]], np.arange(3), np.arange(3, dtype=np.int8), np.uint16(7)],
)
def test_numbers_lists_and_integer_arrays_become_default_float(data):
    assert Tensor(data).dtype == np.float64
    tg.set_default_dtype(np.float32)
    assert Tensor(data).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_floating_numpy_input_keeps_its_dtype(dtype):
    tg.set_default_dtype(np.float32 if dtype == np.float64 else np.float64)
    assert Tensor(np.ones(2, dtype=dtype)).dtype == dtype
    assert Tensor(dtype(1.5)).dtype == dtype


def test_explicit_dtype_wins():
    assert Tensor([1, 2], dtype=np.int32).dtype == np.int32
    assert Tensor(np.ones(2), dtype="float32").dtype == np.float32


def test_bool_stays_bool():
    assert Tensor([True, False]).dtype == np.bool_


def test_requires_grad_needs_a_float_dtype():
    with pytest.raises(TypeError, match="floating"):
        Tensor([1, 2], dtype=np.int64, requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        Tensor([True], requires_grad=True)
    with pytest.raises(TypeError, match="floating"):
        Tensor([1], dtype=np.int32).requires_grad_()


def test_set_default_dtype_rejects_non_float():
    with pytest.raises(TypeError, match="floating"):
        tg.set_default_dtype(np.int32)


@pytest.mark.parametrize("bad", [["a", "b"], np.array([object()]), None, {"a": 1}, 1 + 2j])
def test_unsupported_data_raises_type_error(bad):
    with pytest.raises(TypeError):
        Tensor(bad)


def test_ragged_list_raises_value_error():
    with pytest.raises(ValueError):
        Tensor([[1.0, 2.0], [3.0]])


def test_constructor_copies_its_input():
    a = np.ones(3)
    t = Tensor(a)
    a[0] = 5
    assert t.data[0] == 1.0


def test_grad_has_shape_and_dtype_of_data():
    for dtype in (np.float32, np.float64):
        x = Tensor(np.ones((2, 3), dtype=dtype), requires_grad=True)
        (x * 2.0).sum().backward()
        assert x.grad.shape == (2, 3) and x.grad.dtype == dtype


def test_python_scalars_do_not_promote_float32():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = (2.0 * x + 1 - x / 3.0) ** 2
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------- properties


def test_properties():
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.size == 24 and len(t) == 2
    assert t.dtype == np.float64 and t.is_leaf and t.grad is None and not t.requires_grad
    assert Tensor(3.5).item() == 3.5 and isinstance(Tensor(3.5).item(), float)
    with pytest.raises(ValueError, match="3 elements"):
        Tensor([1.0, 2.0, 3.0]).item()
    with pytest.raises(TypeError):
        len(Tensor(1.0))


def test_numpy_and_array_interop():
    t = Tensor([[1.0, 2.0]])
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), [[1.0, 2.0]])
    r = np.array([10.0, 20.0]) * t
    assert isinstance(r, Tensor)
    np.testing.assert_array_equal(r.numpy(), [[10.0, 40.0]])
    r2 = np.ones((2, 1)) + t
    assert isinstance(r2, Tensor) and r2.shape == (2, 2)
    assert isinstance(np.eye(2) @ Tensor(np.ones((2, 2))), Tensor)


def test_reflected_operators_with_gradients():
    x = Tensor([1.0, 2.0, 4.0], requires_grad=True)
    y = (3.0 - x) + (8.0 / x) + (2.0**x) + (5 * x)
    y.sum().backward()
    expected = -1 - 8 / x.data**2 + np.log(2.0) * 2.0**x.data + 5
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-13)


def test_comparisons_give_bool_tensors_without_gradient():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for r in (x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2, x > Tensor([0.0, 5.0, 1.0])):
        assert isinstance(r, Tensor) and r.dtype == np.bool_ and not r.requires_grad
    np.testing.assert_array_equal((x == 2).numpy(), [False, True, False])


def test_tensors_are_hashable_by_identity():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert len({a, b}) == 2


def test_repr_shows_grad_fn_and_requires_grad():
    x = Tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2)
    assert "dtype=float32" in repr(Tensor(np.ones(1, np.float32)))


def test_iteration_and_t():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    rows = list(t)
    assert len(rows) == 2 and rows[1].numpy().tolist() == [3.0, 4.0, 5.0]
    assert t.T.shape == (3, 2)


# ---------------------------------------------------------------- constructors


def test_constructors():
    assert Tensor.zeros(2, 3).shape == (2, 3) and Tensor.zeros((2, 3)).numpy().sum() == 0
    assert Tensor.ones(4, dtype=np.float32).dtype == np.float32
    assert Tensor.full((2,), 7.0).numpy().tolist() == [7.0, 7.0]
    np.testing.assert_array_equal(Tensor.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(Tensor.arange(1, 7, 2).numpy(), [1.0, 3.0, 5.0])
    assert Tensor.arange(3).dtype == np.float64
    a = Tensor.randn(3, 4, seed=1)
    b = Tensor.randn(3, 4, seed=1)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(a.numpy(), np.random.default_rng(1).standard_normal((3, 4)))
    u = Tensor.uniform(1000, low=-2, high=-1, seed=0)
    assert u.numpy().min() >= -2 and u.numpy().max() < -1
    z = Tensor.zeros_like(Tensor(np.ones((2, 2), np.float32)), requires_grad=True)
    assert z.dtype == np.float32 and z.requires_grad and z.shape == (2, 2)
    assert Tensor.ones_like(z).numpy().sum() == 4.0
    assert Tensor.randn(2, requires_grad=True).requires_grad


# ---------------------------------------------------------------- errors name the shapes


def test_broadcast_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\)"):
        Tensor(np.ones((2, 3))) + Tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2,\)"):
        Tensor(np.ones((2, 3))) * np.ones(2)


def test_matmul_error_names_both_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match=r"\(3,\) and \(2,\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones(2))
    with pytest.raises(ValueError, match=r"\(\) and \(2,\)"):
        Tensor(1.0) @ Tensor(np.ones(2))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\) and \(3, 3, 1\)"):
        Tensor(np.ones((2, 2, 3))) @ Tensor(np.ones((3, 3, 1)))


def test_shape_errors():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
        t.reshape(4)
    with pytest.raises(ValueError, match="axis 2"):
        t.sum(axis=2)
    with pytest.raises(ValueError, match="repeated"):
        t.sum(axis=(0, 0))
    with pytest.raises(TypeError):
        t.sum(axis=1.0)
    with pytest.raises(ValueError, match="length 3"):
        t.squeeze(1)
    with pytest.raises(ValueError, match=r"\(2, 3\) to \(3, 3\)"):
        t.broadcast_to(3, 3)
    with pytest.raises(ValueError, match="permutation"):
        t.transpose(0, 0)
    with pytest.raises(ValueError, match=r"tensor 1 has shape \(2, 4\)"):
        tg.concatenate([t, Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ValueError, match="same shape"):
        tg.stack([t, Tensor(np.ones((3, 2)))])
    with pytest.raises(TypeError, match="boolean"):
        tg.where(Tensor([1.0]), t, t)
    with pytest.raises(IndexError, match="float"):
        t[0.5]
    with pytest.raises(ValueError, match="lo=2"):
        t.clip(2, 1)


# ---------------------------------------------------------------- semantics spot checks


def test_indexing_with_repeated_indices_accumulates():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_indexing_basic_slices_and_boolean_masks():
    data = np.arange(12.0).reshape(3, 4)
    x = Tensor(data, requires_grad=True)
    y = x[1:, ::2]
    np.testing.assert_array_equal(y.numpy(), data[1:, ::2])
    (y * 2).sum().backward()
    expected = np.zeros((3, 4))
    expected[1:, ::2] = 2
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    x.zero_grad()
    x[x > 5].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (data > 5).astype(float))


def test_squeeze_unsqueeze_flatten():
    t = Tensor(np.ones((1, 3, 1)))
    assert t.squeeze().shape == (3,)
    assert t.squeeze(0).shape == (3, 1)
    assert t.squeeze((0, 2)).shape == (3,)
    assert t.unsqueeze(-1).shape == (1, 3, 1, 1)
    assert t.unsqueeze(0).shape == (1, 1, 3, 1)
    assert t.flatten().shape == (3,)


def test_argmax_is_an_integer_tensor_without_gradient():
    x = Tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]], requires_grad=True)
    a = x.argmax(axis=1)
    assert a.dtype.kind == "i" and not a.requires_grad
    assert a.numpy().tolist() == [1, 0]
    assert x.argmax().item() == 3


def test_reductions_match_numpy():
    data = np.random.default_rng(0).normal(size=(3, 4, 5))
    t = Tensor(data)
    for axis in (None, 0, -1, (0, 2)):
        for keepdims in (False, True):
            np.testing.assert_allclose(
                t.sum(axis, keepdims).numpy(), data.sum(axis, keepdims=keepdims)
            )
            np.testing.assert_allclose(
                t.mean(axis, keepdims).numpy(), data.mean(axis, keepdims=keepdims)
            )
            np.testing.assert_allclose(
                t.var(axis, keepdims).numpy(), data.var(axis, keepdims=keepdims)
            )
            np.testing.assert_allclose(
                t.max(axis, keepdims).numpy(), data.max(axis, keepdims=keepdims)
            )
            np.testing.assert_allclose(
                t.min(axis, keepdims).numpy(), data.min(axis, keepdims=keepdims)
            )
    np.testing.assert_allclose(t.var(1, ddof=1).numpy(), data.var(1, ddof=1))


def test_requires_grad_and_zero_grad():
    x = Tensor([1.0]).requires_grad_()
    assert x.requires_grad
    (x * 3).sum().backward()
    assert x.grad.item() == 3.0
    x.zero_grad()
    assert x.grad is None
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2).requires_grad_(False)
