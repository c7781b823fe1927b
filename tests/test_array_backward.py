"""Backward formulas on arrays: what an op's backward receives, and that one formula serves both
kinds of backward pass (see ``Function`` in autograd.py)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, ops
from tinygrad_sgd.autograd import Function, grad
from tinygrad_sgd.nn import functional
from tinygrad_sgd.testing.draw import NumpyDraw
from tinygrad_sgd.testing.op_table import OP_TABLE, OpSpec


def _probe(array_backward: bool) -> tuple[type[Function], list[tuple[type, type, type]]]:
    """y = x² · w with a backward that records the types it was given."""
    seen: list[tuple[type, type, type]] = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * x * w

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            seen.append((type(g), type(x), type(w)))
            return g * 2 * x * w, g * x * x

    Probe.array_backward = array_backward
    return Probe, seen


def test_array_backward_receives_arrays_in_an_ordinary_backward() -> None:
    Probe, seen = _probe(True)
    x = Tensor([1.5, -2.0], requires_grad=True)
    w = Tensor([3.0, 0.5], requires_grad=True)
    Probe.apply(x, w).backward(np.array([1.0, 2.0]))
    assert seen == [(np.ndarray, np.ndarray, np.ndarray)]
    np.testing.assert_allclose(x.grad.data, [1.0 * 2 * 1.5 * 3.0, 2.0 * 2 * -2.0 * 0.5])
    np.testing.assert_allclose(w.grad.data, [1.5**2, 2.0 * 4.0])
    assert type(x.grad) is Tensor and x.grad.dtype == x.dtype


def test_the_same_formula_receives_tensors_under_create_graph() -> None:
    Probe, seen = _probe(True)
    x = Tensor([1.5, -2.0], requires_grad=True)
    w = Tensor([3.0, 0.5], requires_grad=True)
    (gx,) = grad(Probe.apply(x, w).sum(), x, create_graph=True)
    assert seen == [(Tensor, Tensor, Tensor)]
    # d/dx Σ 2 x w = 2 w: the formula was recorded, so it can be differentiated again
    (gxx,) = grad(gx.sum(), x)
    np.testing.assert_allclose(gxx.data, 2 * w.data)


def test_detect_anomaly_watches_the_array_path_without_changing_it() -> None:
    # detect_anomaly observes each op's gradients (autograd/debug.py); the formula still runs
    # on arrays, and the gradient is the same.
    Probe, seen = _probe(True)
    x = Tensor([1.5], requires_grad=True)
    w = Tensor([3.0], requires_grad=True)
    with tg.detect_anomaly():
        Probe.apply(x, w).sum().backward()
    assert seen == [(np.ndarray, np.ndarray, np.ndarray)]
    np.testing.assert_array_equal(x.grad.data, 2 * x.data * w.data)


def test_a_function_that_does_not_declare_it_always_receives_tensors() -> None:
    Probe, seen = _probe(False)
    x = Tensor([1.5], requires_grad=True)
    w = Tensor([3.0], requires_grad=True)
    Probe.apply(x, w).sum().backward()
    assert seen == [(Tensor, Tensor, Tensor)]
    np.testing.assert_allclose(x.grad.data, [9.0])


def test_numbers_and_numpy_scalars_returned_on_arrays_become_gradients_of_the_input_dtype() -> None:
    class Halve(Function):
        array_backward = True

        @staticmethod
        def forward(ctx, x):
            return x / 2

        @staticmethod
        def backward(ctx, g):
            return g * 0.5  # on a 0-d array NumPy returns a scalar, not an array

    x = Tensor(np.float32(3.0), requires_grad=True)
    Halve.apply(x).backward()
    assert isinstance(x.grad.data, np.ndarray) and x.grad.shape == () and x.grad.dtype == np.float32
    assert x.grad.item() == 0.5


def test_call_runs_forward_on_arrays_and_records_on_tensors() -> None:
    a = np.array([0.25, 0.5])
    raw = ops.SigmoidSlope.call(a)
    assert type(raw) is np.ndarray
    np.testing.assert_array_equal(raw, a * (1 - a))
    t = Tensor(a, requires_grad=True)
    rec = ops.SigmoidSlope.call(t)
    assert isinstance(rec, Tensor) and rec.grad_fn is not None
    rec.sum().backward()
    np.testing.assert_allclose(t.grad.data, 1 - 2 * a)
    with pytest.raises(ValueError, match="reshape"):  # forward's own checks still apply
        ops.Reshape.call(np.zeros(6), (4,))


def test_hooks_see_tensors_while_gradients_travel_as_arrays() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x.sigmoid()
    seen = []
    y.register_hook(lambda g: seen.append(type(g)) or g * 2)
    y.sum().backward()
    assert seen == [Tensor]
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad.data, 2 * s * (1 - s))


def _builtin_functions() -> list[type[Function]]:
    found = []
    for module in (ops.elementwise, ops.reduce, ops.shape, ops.linalg, ops.fused, functional):
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, Function)
                and obj is not Function
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    return found


def test_every_builtin_op_runs_its_backward_on_arrays() -> None:
    functions = _builtin_functions()
    assert len(functions) >= 40  # the discovery itself works
    missing = [f.__name__ for f in functions if not f.array_backward]
    assert missing == []


def test_a_retained_gradient_passed_on_unchanged_is_not_shared_with_the_leaf() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    a = x + 0.0  # Add passes its gradient array on as it is
    a.retain_grad()
    (a * 3.0).sum().backward()
    assert a.grad is not None and x.grad is not None
    assert not np.shares_memory(a.grad.data, x.grad.data)
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])
    a.grad.data[...] = 0  # the leaf's gradient is its own
    np.testing.assert_array_equal(x.grad.data, [3.0, 3.0])


def test_grad_returns_unshared_arrays_when_two_inputs_get_the_same_gradient() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor([3.0, 4.0], requires_grad=True)
    gx, gy = grad((x + y).sum(), [x, y])
    np.testing.assert_array_equal(gx.data, [1.0, 1.0])
    np.testing.assert_array_equal(gy.data, [1.0, 1.0])
    assert not np.shares_memory(gx.data, gy.data)
    gx.data[0] = 5.0  # writeable arrays of their own, not the read-only broadcast of the sum
    assert gy.data[0] == 1.0


@pytest.mark.parametrize("spec", OP_TABLE, ids=lambda s: s.name)
def test_both_kinds_of_backward_give_the_same_gradients(spec: OpSpec) -> None:
    """The same formula on arrays (an ordinary backward) and on Tensors (create_graph=True)
    must give the same numbers, for every row of the op table: the array path is not checked
    against finite differences at second order, and the Tensor path not at first order."""
    rng = np.random.default_rng(7)
    for seed in range(5):
        case = spec.draw_case(NumpyDraw([seed, 1]))
        ts = [Tensor(a.copy(), requires_grad=True) for a in case.arrays]
        out = spec.fn(*ts, **case.params)
        u = rng.standard_normal(out.shape)
        plain = grad(out, ts, grad_outputs=u, retain_graph=True, allow_unused=True)
        recorded = grad(out, ts, grad_outputs=u, create_graph=True, allow_unused=True)
        for k, (p, r) in enumerate(zip(plain, recorded)):
            assert type(p.data) is np.ndarray and p.dtype == r.dtype and p.shape == r.shape
            np.testing.assert_array_equal(p.data, r.data, err_msg=f"{spec.name}, input {k}")


def test_zero_dimensional_gradients_stay_arrays_through_fan_out_and_accumulation() -> None:
    x = Tensor(3.0, requires_grad=True)
    (x * x).backward()  # fan-out: two gradients for x, added (NumPy gives a scalar for 0-d + 0-d)
    (x * x).backward()  # accumulation into the existing .grad
    assert type(x.grad.data) is np.ndarray and x.grad.shape == ()
    assert x.grad.item() == 12.0


def test_a_formula_that_is_not_array_ready_gets_a_clear_error() -> None:
    class Wrong(Function):
        array_backward = True  # but the formula calls a Tensor method

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return np.sin(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos()

    x = Tensor([0.5], requires_grad=True)
    with pytest.raises(TypeError, match=r"Wrong\.backward declares array_backward.*cos"):
        Wrong.apply(x).sum().backward()
    x.grad = None
    (gx,) = grad(Wrong.apply(x).sum(), x, create_graph=True)  # on Tensors the formula works
    np.testing.assert_allclose(gx.data, np.cos(0.5))
