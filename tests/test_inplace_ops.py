"""In-place updates (issue 19 item 1): PyTorch's semantics for ``w -= lr * w.grad``."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


def test_manual_sgd_step_updates_the_same_leaf():
    w = Tensor([1.0, -2.0], requires_grad=True)
    arr = w.data
    (w * w).sum().backward()  # ∂/∂w Σw² = 2w
    with tg.no_grad():
        w -= 0.25 * w.grad
    np.testing.assert_allclose(w.data, [0.5, -1.0])  # w − ¼·2w
    assert w.data is arr and w.is_leaf and w.requires_grad
    w.grad = None
    (w * w).sum().backward()  # still a leaf that requires grad: the next backward works
    np.testing.assert_allclose(w.grad.data, [1.0, -2.0])


@pytest.mark.parametrize(
    "update, expected",
    [
        (lambda t: t.__iadd__(2.0), [3.0, 4.0]),
        (lambda t: t.__isub__(Tensor([1.0, 1.0])), [0.0, 1.0]),
        (lambda t: t.__imul__(np.array([2.0, 3.0])), [2.0, 6.0]),
        (lambda t: t.__itruediv__(2.0), [0.5, 1.0]),
        (lambda t: t.add_(1.0), [2.0, 3.0]),
        (lambda t: t.sub_(1.0), [0.0, 1.0]),
        (lambda t: t.mul_(-1.0), [-1.0, -2.0]),
        (lambda t: t.div_(Tensor([1.0, 4.0])), [1.0, 0.5]),
        (lambda t: t.zero_(), [0.0, 0.0]),
        (lambda t: t.copy_([7.0, 8.0]), [7.0, 8.0]),
        (lambda t: t.copy_(5.0), [5.0, 5.0]),
    ],
)
def test_each_inplace_op_writes_into_the_array_and_returns_self(update, expected):
    t = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    arr = t.data
    with tg.no_grad():
        out = update(t)
    assert out is t and t.data is arr and t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.array(expected, dtype=np.float32))


def test_inplace_on_a_tensor_without_grad_works_in_grad_mode():
    t = Tensor([1.0, 2.0])
    t0, arr = t, t.data
    t += 1.0
    assert t is t0 and t.data is arr
    np.testing.assert_array_equal(arr, [2.0, 3.0])


def test_grad_zero_():
    w = Tensor([1.0, 2.0], requires_grad=True)
    (3 * w).sum().backward()
    w.grad.zero_()
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])


def test_leaf_that_requires_grad_refuses_inplace_in_grad_mode():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"-=.*leaf.*requires grad.*no_grad"):
        w -= 1.0
    np.testing.assert_array_equal(w.data, [1.0, 2.0])


def test_operators_on_a_non_leaf_in_grad_mode_are_recorded_out_of_place():
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w.exp()
    y0 = y
    y *= 2.0  # loss += penalty style: a new recorded tensor, y0 unchanged
    y += w
    assert y is not y0 and y.grad_fn is not None
    np.testing.assert_array_equal(y0.data, np.exp([1.0, 2.0]))
    y.sum().backward()  # ∂/∂w Σ(2eʷ + w) = 2eʷ + 1
    np.testing.assert_allclose(w.grad.data, 2 * np.exp([1.0, 2.0]) + 1)


def test_operator_with_an_operand_that_requires_grad_is_recorded():
    acc = Tensor([0.0, 0.0])
    w = Tensor([1.0, 2.0], requires_grad=True)
    acc += 3 * w
    acc.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [3.0, 3.0])


def test_inplace_methods_refuse_what_would_need_recording():
    w = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"mul_ on a tensor computed by Exp.*not recorded"):
        w.exp().mul_(2.0)
    with pytest.raises(RuntimeError, match=r"add_ .*operand that requires grad"):
        Tensor([1.0, 2.0]).add_(w)
    with pytest.raises(RuntimeError, match=r"sub_ on a leaf .*requires grad.*no_grad"):
        w.sub_(1.0)


def test_inplace_on_an_array_saved_by_a_live_graph_names_the_op():
    w = Tensor([1.0, 2.0], requires_grad=True)
    x = Tensor([3.0, 4.0])
    loss = (w * x).sum()  # Mul saved w's and x's arrays for backward
    with tg.no_grad():
        with pytest.raises(RuntimeError, match=r"saved for backward by Mul.*backward\(\)"):
            w -= 1.0
        with pytest.raises(RuntimeError, match=r"saved for backward by Mul"):
            x.zero_()
    loss.backward()  # the graph is freed: the arrays are writeable again
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])  # computed from the unchanged values
    with tg.no_grad():
        w -= 1.0
    np.testing.assert_array_equal(w.data, [0.0, 1.0])


def test_inplace_on_a_view_of_a_saved_base_names_the_op():
    base = np.arange(4.0)
    t = Tensor.from_numpy(base).requires_grad_()
    loss = (t * t).sum()  # Mul saves t's array, and so locks its base
    v = Tensor.from_numpy(base[:2])  # a view made while the base is locked
    with pytest.raises(RuntimeError, match=r"saved for backward by Mul"):
        v += 1.0
    del loss


def test_inplace_on_a_read_only_array_says_so():
    a = np.ones(2)
    a.setflags(write=False)
    t = Tensor.from_numpy(a)
    with pytest.raises(RuntimeError, match=r"read-only"):
        t += 1.0


def test_inplace_shape_and_dtype_errors_are_clear():
    t = Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(3,\).*shape \(2,\)"):
        t += np.ones(3)
    i = Tensor([1, 2], dtype=np.int64)
    with pytest.raises(TypeError, match=r"int64 and float64.*int64"):
        i += 0.5
