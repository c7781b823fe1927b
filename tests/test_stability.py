"""The stable functions at |x| = 1000: finite values and gradients, with NumPy's floating-point
warnings turned into errors (so an overflow inside, even one later hidden by a division or a
``where``, fails the test).  Expected values are the mathematical limits, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor

X = np.array([-1000.0, -1.0, 0.0, 1.0, 1000.0])

# logsumexp's gradient is e^(x − lse): lse ≈ ±1000 is stored to ulp(1000) ≈ 1.1e-13, and the
# exponential turns that absolute error into a relative one of the same size.
LSE_RTOL = 1e-12


def value_and_grad(fn, x, upstream=None):
    t = Tensor(x, requires_grad=True)
    with np.errstate(all="raise"):
        y = fn(t)
        u = np.ones(y.shape) if upstream is None else upstream
        y.backward(Tensor(u))
    assert np.isfinite(y.numpy()).all(), y
    assert np.isfinite(t.grad.numpy()).all(), t.grad
    return y.numpy(), t.grad.numpy()


def sigma(x):
    return 0.5 * (1 + np.tanh(x / 2))  # overflow-free reference for moderate x


def test_sigmoid() -> None:
    y, g = value_and_grad(lambda t: t.sigmoid(), X)
    np.testing.assert_allclose(y[[0, 4]], [0.0, 1.0], atol=1e-300)
    np.testing.assert_allclose(y[1:4], sigma(X[1:4]), rtol=1e-15)
    np.testing.assert_allclose(g, y * (1 - y), rtol=1e-15)
    assert g[0] == 0.0 and g[4] == 0.0  # σ'(±1000) = e^-1000 underflows to exactly 0


def test_tanh() -> None:
    y, g = value_and_grad(lambda t: t.tanh(), X)
    np.testing.assert_array_equal(y[[0, 4]], [-1.0, 1.0])
    np.testing.assert_allclose(g, 1 - np.tanh(X) ** 2, atol=1e-300)


def test_softplus() -> None:
    y, g = value_and_grad(lambda t: t.softplus(), X)
    assert y[0] == 0.0 and y[4] == 1000.0  # ln(1 + e^x) -> 0 and -> x
    np.testing.assert_allclose(y[1:4], np.log1p(np.exp(X[1:4])), rtol=1e-15)
    np.testing.assert_allclose(g[[0, 4]], [0.0, 1.0], atol=1e-300)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_logsumexp(sign) -> None:
    x = sign * np.array([[1000.0, 999.0, 0.0], [1000.0, 1000.0, 1000.0]])
    y, g = value_and_grad(lambda t: t.logsumexp(axis=1), x)
    # ln(e^a + e^(a-1) + e^0) = a + ln(1 + e^-1) for a = 1000 (e^-1000 vanishes); ln 3 + a
    a = sign * 1000.0
    expected = (
        [a + np.log1p(np.exp(-1.0)), a + np.log(3.0)]
        if sign > 0
        else [0.0 + np.log1p(np.exp(-999.0)), a + np.log(3.0)]
    )
    np.testing.assert_allclose(y, expected, rtol=1e-15)
    np.testing.assert_allclose(g.sum(axis=1), [1.0, 1.0], rtol=LSE_RTOL)  # softmax rows
    np.testing.assert_allclose(g[1], [1 / 3] * 3, rtol=LSE_RTOL)


def test_logsumexp_over_all_axes_at_minus_1000() -> None:
    y, g = value_and_grad(lambda t: t.logsumexp(), np.full((2, 2), -1000.0))
    np.testing.assert_allclose(y, -1000.0 + np.log(4.0), rtol=1e-15)
    np.testing.assert_allclose(g, 0.25, rtol=LSE_RTOL)


def test_softmax() -> None:
    x = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
    u = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, -1.0]])
    y, g = value_and_grad(lambda t: t.softmax(axis=-1), x, u)
    np.testing.assert_allclose(y, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], atol=1e-300)
    # ∂C/∂x = s ⊙ (u − Σ u s): row 0 is saturated (0), row 1 is (u − 0) / 3
    np.testing.assert_allclose(g, [[0.0, 0.0, 0.0], [1 / 3, 0.0, -1 / 3]], atol=1e-15)


def test_log_softmax() -> None:
    x = np.array([[1000.0, 0.0, -1000.0]])
    u = np.array([[1.0, 2.0, 3.0]])
    y, g = value_and_grad(lambda t: t.log_softmax(axis=-1), x, u)
    np.testing.assert_allclose(y, [[0.0, -1000.0, -2000.0]], rtol=1e-15)
    # ∂C/∂x = u − softmax(x) Σ u = [1, 2, 3] − [6, 0, 0]
    np.testing.assert_allclose(g, [[-5.0, 2.0, 3.0]], rtol=1e-15)


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.sigmoid(),
        lambda t: t.tanh(),
        lambda t: t.softplus(),
        lambda t: t.logsumexp(axis=0),
        lambda t: t.softmax(axis=0),
        lambda t: t.log_softmax(axis=0),
    ],
    ids=["sigmoid", "tanh", "softplus", "logsumexp", "softmax", "log_softmax"],
)
def test_second_derivatives_stay_finite_at_1000(fn) -> None:
    x = Tensor(X, requires_grad=True)
    with np.errstate(all="raise"):
        y = fn(x)
        u = Tensor(np.linspace(-1.0, 1.0, y.size).reshape(y.shape))
        (g,) = tg.grad(y, [x], grad_outputs=u, create_graph=True)
        (gg,) = tg.grad(g.sum(), [x])
    assert np.isfinite(g.numpy()).all() and np.isfinite(gg.numpy()).all()


def test_float32_at_100_is_finite() -> None:
    # float32 overflows e^x at x ≈ 88.7: the same formulas must hold there too.
    x = Tensor(np.array([-100.0, 100.0], dtype=np.float32), requires_grad=True)
    with np.errstate(all="raise"):
        y = x.sigmoid() + x.softplus() + x.tanh() + x.softmax() + x.log_softmax()
        y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.isfinite(y.numpy()).all() and np.isfinite(x.grad.numpy()).all()
