"""``Tensor.register_hook`` and ``Tensor.retain_grad``, with PyTorch's semantics."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


def _neuron():
    """The README's neuron: z = w·x + b, a = σ(z), C = ½(y − a)²."""
    x = Tensor([1.0, 2.0])
    w = Tensor([0.6, -0.4], requires_grad=True)
    b = Tensor(0.1, requires_grad=True)
    z = w @ x + b
    a = z.sigmoid()
    cost = 0.5 * (1.0 - a) ** 2
    return x, w, b, z, a, cost


def _delta() -> float:
    """δ = ∂C/∂z = (a − y) σ'(z), by hand, for the neuron above."""
    z = 0.6 * 1.0 - 0.4 * 2.0 + 0.1
    a = 1.0 / (1.0 + np.exp(-z))
    return (a - 1.0) * a * (1.0 - a)


def test_hook_sees_gradient_of_intermediate_tensor():
    _, _, _, z, _, cost = _neuron()
    seen: list[np.ndarray] = []
    z.register_hook(lambda g: seen.append(g.numpy().copy()))
    cost.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], _delta(), rtol=1e-12)
    assert z.grad is None  # a hook alone does not keep a non-leaf's .grad


def test_hook_on_leaf_sees_gradient_before_accumulation():
    x, w, _, _, _, cost = _neuron()
    seen = []
    w.register_hook(lambda g: seen.append(g.numpy().copy()))
    cost.backward()
    np.testing.assert_allclose(seen[0], _delta() * x.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), seen[0])


def test_hook_replacement_flows_to_the_inputs():
    _, w, b, z, _, cost = _neuron()
    z.register_hook(lambda g: g * 10.0)
    cost.backward()
    np.testing.assert_allclose(b.grad.numpy(), 10.0 * _delta(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), 10.0 * _delta() * np.array([1.0, 2.0]), rtol=1e-12)


def test_hook_replacement_on_leaf_changes_its_grad():
    _, _, b, _, _, cost = _neuron()
    b.register_hook(lambda g: np.zeros(()))  # an ndarray replacement is accepted too
    cost.backward()
    assert b.grad is not None
    assert b.grad.numpy() == 0.0
    assert b.grad.dtype == b.dtype


def test_hooks_run_in_registration_order_and_chain():
    _, _, b, z, _, cost = _neuron()
    calls = []

    def double(g):
        calls.append(("double", g.item()))
        return g * 2.0

    def add_one(g):
        calls.append(("add_one", g.item()))
        return g + 1.0

    z.register_hook(double)
    z.register_hook(add_one)
    cost.backward()
    d = _delta()
    assert [c[0] for c in calls] == ["double", "add_one"]
    np.testing.assert_allclose([c[1] for c in calls], [d, 2 * d], rtol=1e-12)
    np.testing.assert_allclose(b.grad.item(), 2 * d + 1.0, rtol=1e-12)


def test_hook_is_called_once_with_the_total_fan_out_gradient():
    x = Tensor(3.0, requires_grad=True)
    h = x * 2.0
    seen = []
    h.register_hook(lambda g: seen.append(g.item()))
    (h * h + h).backward()  # d/dh (h² + h) = 2h + 1 = 13
    assert seen == [pytest.approx(13.0)]
    assert x.grad.item() == pytest.approx(26.0)


def test_removed_hook_is_not_called():
    _, _, b, z, _, cost = _neuron()
    calls = []
    handle = z.register_hook(lambda g: calls.append(1) or g * 100.0)
    handle.remove()
    handle.remove()  # removing twice is harmless
    cost.backward()
    assert calls == []
    np.testing.assert_allclose(b.grad.item(), _delta(), rtol=1e-12)


def test_hook_may_remove_itself_while_running():
    x = Tensor(2.0, requires_grad=True)
    y = x * 3.0
    calls = []
    handles = []

    def once(g):
        calls.append(g.item())
        handles[0].remove()

    handles.append(y.register_hook(once))
    y.backward(retain_graph=True)
    y.backward()
    assert calls == [1.0]
    assert x.grad.item() == pytest.approx(6.0)


def test_hook_returning_wrong_shape_raises_clearly():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0

    def bad(g):
        return Tensor([1.0, 2.0, 3.0])

    y.register_hook(bad)
    with pytest.raises(RuntimeError, match=r"hook 'bad' returned a gradient of shape \(3,\)"):
        y.sum().backward()


def test_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).register_hook(lambda g: g)


def test_hooks_also_apply_in_autograd_grad():
    x = Tensor(2.0, requires_grad=True)
    y = x * x
    y.register_hook(lambda g: g * 0.5)
    (gx,) = tg.grad(y * 3.0, x)
    assert gx.item() == pytest.approx(0.5 * 3.0 * 2 * 2.0)


def test_retain_grad_keeps_non_leaf_gradients():
    x, w, b, z, a, cost = _neuron()
    z.retain_grad()
    a.retain_grad()
    cost.backward()
    d = _delta()
    av = a.item()
    np.testing.assert_allclose(a.grad.item(), av - 1.0, rtol=1e-12)  # ∂C/∂a = a − y
    np.testing.assert_allclose(z.grad.item(), d, rtol=1e-12)  # δ
    assert z.grad.shape == z.shape and z.grad.dtype == z.dtype
    assert cost.grad is None  # not retained


def test_retain_grad_accumulates_like_a_leaf():
    x = Tensor(1.5, requires_grad=True)
    y = x * 2.0
    y.retain_grad()
    out = y * y
    out.backward(retain_graph=True)
    out.backward()
    assert y.grad.item() == pytest.approx(2 * (2 * 3.0))


def test_retained_grad_does_not_alias_the_flowing_gradient():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    y.retain_grad()
    y.sum().backward()
    y.grad.data[...] = 99.0
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_retain_grad_sees_hook_modified_gradient():
    x = Tensor(1.0, requires_grad=True)
    y = x * 4.0
    y.retain_grad()
    y.register_hook(lambda g: g * 3.0)
    y.backward()
    assert y.grad.item() == pytest.approx(3.0)
    assert x.grad.item() == pytest.approx(12.0)


def test_retain_grad_on_leaf_is_a_no_op_and_needs_grad():
    x = Tensor(1.0, requires_grad=True)
    x.retain_grad()
    (x * 2.0).backward()
    assert x.grad.item() == 2.0
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(1.0).retain_grad()
