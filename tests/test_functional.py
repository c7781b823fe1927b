"""Costs in nn.functional: values against NumPy formulas, gradients against the book's
backpropagation equations and against central finite differences, stability at extreme inputs,
and input validation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from tinygrad_sgd import Tensor, nn
from tinygrad_sgd.nn import functional as F

# NOTE: e^(−2000) rounds to 0, which NumPy reports as "underflow" under all="raise" although 0 is
# the correctly rounded result; stability means no overflow, no division by zero and no NaN.
STRICT = dict(over="raise", divide="raise", invalid="raise", under="ignore")


def numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences (f(x + h e_i) − f(x − h e_i)) / 2h for every element of x."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        up = f(x)
        x[i] = old - eps
        down = f(x)
        x[i] = old
        g[i] = (up - down) / (2 * eps)
    return g


def check_loss_grad(
    loss: Callable[[Tensor], Tensor], x0: np.ndarray, rng: np.random.Generator
) -> None:
    """The analytic gradient of loss(x) (contracted with a random upstream gradient when the
    loss is not a scalar) equals central differences to 1e-7 relative."""
    out = loss(Tensor(x0.copy()))
    up = rng.standard_normal(out.shape)

    def scalar(x: np.ndarray) -> float:
        return float(np.sum(loss(Tensor(x.copy())).data * up))

    x = Tensor(x0.copy(), requires_grad=True)
    loss(x).backward(up)
    assert x.grad is not None
    expected = numeric_grad(scalar, x0.copy())
    # central differences have error O(eps²·f''') + O(1e-16/eps) ≈ 1e-10 here
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------- quadratic cost


def test_quadratic_cost_value_batch_and_single(rng: np.random.Generator) -> None:
    a = rng.random((6, 3))
    y = rng.random((6, 3))
    c = F.quadratic_cost(Tensor(a), y)
    assert c.shape == ()
    assert c.item() == pytest.approx(np.sum((y - a) ** 2) / (2 * 6), rel=1e-14)
    # a single example (1-D): n = 1
    c1 = F.quadratic_cost(Tensor(a[0]), y[0])
    assert c1.item() == pytest.approx(0.5 * np.sum((y[0] - a[0]) ** 2), rel=1e-14)


def test_quadratic_cost_with_integer_labels_is_one_hot(rng: np.random.Generator) -> None:
    a = rng.random((4, 5))
    labels = np.array([0, 4, 2, 2])
    onehot = np.zeros((4, 5))
    onehot[np.arange(4), labels] = 1.0
    assert F.quadratic_cost(Tensor(a), labels).item() == pytest.approx(
        np.sum((onehot - a) ** 2) / 8, rel=1e-14
    )


def test_quadratic_cost_gradient(rng: np.random.Generator) -> None:
    y = rng.random((3, 4))
    check_loss_grad(lambda a: F.quadratic_cost(a, y), rng.random((3, 4)), rng)
    a = Tensor(rng.random((3, 4)), requires_grad=True)
    F.quadratic_cost(a, y).backward()
    np.testing.assert_allclose(a.grad.numpy(), (a.data - y) / 3, rtol=1e-14)


def test_quadratic_cost_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"target shape \(3, 1\).*output shape \(3,\)"):
        F.quadratic_cost(Tensor(np.zeros(3)), np.zeros((3, 1)))
    with pytest.raises(TypeError, match="output must be a Tensor"):
        F.quadratic_cost(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="class index 7 is out of range for 3 classes"):
        F.quadratic_cost(Tensor(np.zeros((2, 3))), np.array([0, 7]))


# ---------------------------------------------------------------- the book's network: BP1–BP4


def sigma(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def backprop_by_hand(
    weights: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray, y: np.ndarray, cost: str
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The book's four equations, vectorised over a batch of n rows (written from chapter 2).

    Forward: z^l = a^(l−1) W^lᵀ + b^l, a^l = σ(z^l).  For C averaged over the n examples:
    BP1  δ^L = ∇_a C ⊙ σ'(z^L); quadratic: (a^L − y) ⊙ σ'(z^L) / n; cross-entropy: (a^L − y) / n
    BP2  δ^l = (δ^(l+1) W^(l+1)) ⊙ σ'(z^l)
    BP3  ∂C/∂b^l = Σ_rows δ^l
    BP4  ∂C/∂W^l = δ^lᵀ a^(l−1)
    """
    n = x.shape[0]
    activations, zs = [x], []
    for W, b in zip(weights, biases):
        zs.append(activations[-1] @ W.T + b)
        activations.append(sigma(zs[-1]))

    def sigma_prime(z: np.ndarray) -> np.ndarray:
        return sigma(z) * (1 - sigma(z))

    aL = activations[-1]
    if cost == "quadratic":
        delta = (aL - y) * sigma_prime(zs[-1]) / n
    else:
        delta = (aL - y) / n
    grads_w = [np.empty(0)] * len(weights)
    grads_b = [np.empty(0)] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        grads_b[layer] = delta.sum(axis=0)
        grads_w[layer] = delta.T @ activations[layer]
        if layer > 0:
            delta = (delta @ weights[layer]) * sigma_prime(zs[layer - 1])
    return grads_w, grads_b


@pytest.mark.parametrize("cost", ["quadratic", "cross-entropy"])
def test_book_network_gradients_equal_bp1_to_bp4(cost: str) -> None:
    sizes = [5, 4, 6, 3]
    rng = np.random.default_rng(42)
    net = nn.Sequential()
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        net.append(nn.Linear(n_in, n_out, init="standard", seed=rng))
        net.append(nn.Sigmoid())
    x = rng.random((7, sizes[0]))
    labels = rng.integers(0, sizes[-1], 7)
    y = np.eye(sizes[-1])[labels]
    out = net(Tensor(x))
    c = F.quadratic_cost(out, y) if cost == "quadratic" else F.cross_entropy_cost(out, y)
    c.backward()
    linears = [m for m in net if isinstance(m, nn.Linear)]
    ws = [m.weight.numpy().copy() for m in linears]
    bs = [m.bias.numpy().copy() for m in linears]
    gw, gb = backprop_by_hand(ws, bs, x, y, cost)
    for layer, m in enumerate(linears):
        np.testing.assert_allclose(m.weight.grad.numpy(), gw[layer], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(m.bias.grad.numpy(), gb[layer], rtol=1e-10, atol=1e-10)
    # the value too, from the book's formulas
    a = x
    for W, b in zip(ws, bs):
        a = sigma(a @ W.T + b)
    if cost == "quadratic":
        expected = np.sum((a - y) ** 2) / (2 * 7)
    else:
        expected = -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a)) / 7
    assert c.item() == pytest.approx(expected, rel=1e-12)
    # labels give the same cost as their one-hot rows
    same = F.quadratic_cost if cost == "quadratic" else F.cross_entropy_cost
    assert same(net(Tensor(x)), labels).item() == pytest.approx(c.item(), rel=1e-14)


# ---------------------------------------------------------------- softmax cross-entropy


def log_softmax_np(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def test_cross_entropy_indices_and_one_hot_agree(rng: np.random.Generator) -> None:
    z = rng.standard_normal((5, 4))
    t = np.array([3, 0, 1, 1, 2])
    expected = -np.mean(log_softmax_np(z)[np.arange(5), t])
    a = F.cross_entropy(Tensor(z), t)
    b = F.cross_entropy(Tensor(z), np.eye(4)[t])
    c = F.cross_entropy(Tensor(z), Tensor(t, dtype=np.int64))
    for v in (a, b, c):
        assert v.item() == pytest.approx(expected, rel=1e-13)
    assert F.cross_entropy(Tensor(z), t, reduction="sum").item() == pytest.approx(
        5 * expected, rel=1e-13
    )
    per = F.cross_entropy(Tensor(z), t, reduction="none")
    np.testing.assert_allclose(per.numpy(), -log_softmax_np(z)[np.arange(5), t], rtol=1e-13)
    # a single example
    assert F.cross_entropy(Tensor(z[1]), np.int64(0)).item() == pytest.approx(
        -log_softmax_np(z[1])[0], rel=1e-13
    )


def test_cross_entropy_gradient_is_softmax_minus_target(rng: np.random.Generator) -> None:
    z0 = rng.standard_normal((4, 3))
    t = np.array([2, 0, 0, 1])
    z = Tensor(z0, requires_grad=True)
    F.cross_entropy(z, t).backward()
    p = np.exp(log_softmax_np(z0))
    np.testing.assert_allclose(z.grad.numpy(), (p - np.eye(3)[t]) / 4, rtol=1e-12, atol=1e-15)
    check_loss_grad(lambda x: F.cross_entropy(x, t), z0, rng)
    soft = rng.dirichlet(np.ones(3), size=4)
    check_loss_grad(lambda x: F.cross_entropy(x, soft), z0, rng)
    check_loss_grad(lambda x: F.cross_entropy(x, t, reduction="none"), z0, rng)


def test_cross_entropy_extreme_logits_are_finite() -> None:
    z0 = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    t = np.array([1, 2])
    with np.errstate(**STRICT):
        z = Tensor(z0, requires_grad=True)
        loss = F.cross_entropy(z, t)
        loss.backward()
        onehot = F.cross_entropy(Tensor(z0), np.eye(3)[t])
    # example 0: −log softmax = 1000 − (−1000) = 2000; example 1: 0
    assert loss.item() == pytest.approx(1000.0, rel=1e-15)
    assert onehot.item() == pytest.approx(1000.0, rel=1e-15)
    np.testing.assert_allclose(
        z.grad.numpy(), np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]) / 2, atol=1e-300
    )


def test_cross_entropy_validation() -> None:
    z = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class index 3 is out of range for 3 classes"):
        F.cross_entropy(z, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"needs shape \(2,\)"):
        F.cross_entropy(z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target shape \(2, 4\)"):
        F.cross_entropy(z, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(z, np.array([0, 1]), reduction="avg")
    with pytest.raises(TypeError, match="logits must be floating point"):
        F.cross_entropy(Tensor(np.zeros((2, 3), dtype=np.int64), dtype=np.int64), [0, 1])


def test_nll_loss_picks_the_correct_class(rng: np.random.Generator) -> None:
    lp = log_softmax_np(rng.standard_normal((3, 4)))
    t = np.array([1, 3, 0])
    assert F.nll_loss(Tensor(lp), t).item() == pytest.approx(-lp[[0, 1, 2], t].mean(), rel=1e-14)
    check_loss_grad(lambda x: F.nll_loss(x, t), lp, rng)
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(Tensor(lp), np.zeros((3, 4)))
