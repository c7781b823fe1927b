"""Costs in nn.functional: values against NumPy formulas, gradients against the book's
backpropagation equations and against central finite differences, stability at extreme inputs,
and input validation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn
from tinygrad_sgd.nn import functional as F


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
    with np.errstate(all="raise"):
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
    with np.errstate(all="raise"):  # probability rows, and a single example
        zt = Tensor(z0, requires_grad=True)
        F.cross_entropy(zt, np.eye(3)[t], reduction="sum").backward()
        single = F.cross_entropy(Tensor(z0[0]), np.int64(1))
    np.testing.assert_allclose(zt.grad.numpy(), [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-300)
    assert single.item() == 2000.0


def test_cross_entropy_rows_of_infinite_weight_on_an_impossible_class_give_infinity() -> None:
    """−Σ y ln softmax(z) with z_0 = −∞ (probability 0) and y_0 = ∞: the loss is +∞.  Written
    as (Σ y) ln Σ eᶻ − Σ y z it was ∞ − ∞ = NaN (found by the hostile-input fuzzer)."""
    with np.errstate(invalid="ignore", over="ignore"):  # ∞ · 0 in the other class is expected
        loss = F.cross_entropy(Tensor([[-np.inf, 0.0]]), Tensor([[np.inf, 0.0]]), reduction="sum")
    assert loss.item() == np.inf
    # and as written it stays exact where it matters: weight 1 on a class of probability 1
    certain = F.cross_entropy(Tensor([[-1000.0, 0.0]]), Tensor([[0.0, 1.0]]), reduction="sum")
    assert certain.item() == 0.0


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


# ---------------------------------------------------------------- mse, binary cross-entropy


def test_mse_loss_reductions_and_gradient(rng: np.random.Generator) -> None:
    a, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    assert F.mse_loss(Tensor(a), y).item() == pytest.approx(np.mean((a - y) ** 2), rel=1e-14)
    assert F.mse_loss(Tensor(a), y, reduction="sum").item() == pytest.approx(
        np.sum((a - y) ** 2), rel=1e-14
    )
    np.testing.assert_allclose(F.mse_loss(Tensor(a), y, "none").numpy(), (a - y) ** 2)
    # the book's cost is k/2 times PyTorch's mean squared error for k outputs per example
    assert F.quadratic_cost(Tensor(a), y).item() == pytest.approx(
        F.mse_loss(Tensor(a), y).item() * 3 / 2, rel=1e-14
    )
    check_loss_grad(lambda t: F.mse_loss(t, y), a, rng)
    check_loss_grad(lambda t: F.mse_loss(t, y, "none"), a, rng)


def bce_np(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -(y * np.log(a) + (1 - y) * np.log(1 - a))


def test_binary_cross_entropy_value_and_gradient(rng: np.random.Generator) -> None:
    a = rng.uniform(0.05, 0.95, (5, 2))
    y = rng.uniform(0, 1, (5, 2))
    assert F.binary_cross_entropy(Tensor(a), y).item() == pytest.approx(
        bce_np(a, y).mean(), rel=1e-14
    )
    x = Tensor(a, requires_grad=True)
    F.binary_cross_entropy(x, y).backward()
    np.testing.assert_allclose(x.grad.numpy(), (a - y) / (a * (1 - a)) / 10, rtol=1e-12)
    check_loss_grad(lambda t: F.binary_cross_entropy(t, y), a, rng)
    hard = (y > 0.5).astype(float)
    check_loss_grad(lambda t: F.binary_cross_entropy(t, hard, "none"), a, rng)
    # the target may require a gradient too: ∂ℓ/∂y = ln(1 − a) − ln a
    t = Tensor(y, requires_grad=True)
    F.binary_cross_entropy(Tensor(a), t, reduction="sum").backward()
    np.testing.assert_allclose(t.grad.numpy(), np.log(1 - a) - np.log(a), rtol=1e-12)


def test_binary_cross_entropy_at_saturated_probabilities() -> None:
    a0 = np.array([0.0, 1.0, 0.0, 1.0, 0.5])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    with np.errstate(all="raise"):  # no log(0), no 0·∞, no 0/0 anywhere
        a = Tensor(a0, requires_grad=True)
        loss = F.binary_cross_entropy(a, y, reduction="sum")
        loss.backward()
    assert loss.item() == pytest.approx(math.log(2), rel=1e-15)
    # at a = y ∈ {0, 1} the one-sided derivative: +1 at a = 0 (y = 0), −1 at a = 1 (y = 1)
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, -1.0, 1.0, -1.0, -2.0])
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        F.binary_cross_entropy(Tensor([1.5]), [1.0])
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\]"):
        F.binary_cross_entropy(Tensor([float("nan")]), [1.0])


def test_binary_cross_entropy_with_logits(rng: np.random.Generator) -> None:
    z0 = rng.standard_normal((3, 4)) * 3
    y = (rng.random((3, 4)) > 0.5).astype(float)
    s = 1 / (1 + np.exp(-z0))
    expected = bce_np(s, y).mean()
    assert F.binary_cross_entropy_with_logits(Tensor(z0), y).item() == pytest.approx(
        expected, rel=1e-12
    )
    z = Tensor(z0, requires_grad=True)
    F.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    np.testing.assert_allclose(z.grad.numpy(), s - y, rtol=1e-12, atol=1e-15)
    check_loss_grad(lambda t: F.binary_cross_entropy_with_logits(t, y, "none"), z0, rng)


def test_binary_cross_entropy_with_logits_extreme() -> None:
    z0 = np.array([1000.0, -1000.0, 1000.0, -1000.0])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    with np.errstate(all="raise"):
        z = Tensor(z0, requires_grad=True)
        loss = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        loss.backward(np.ones(4))
    np.testing.assert_array_equal(loss.numpy(), [0.0, 1000.0, 1000.0, 0.0])
    np.testing.assert_array_equal(z.grad.numpy(), [0.0, -1.0, 1.0, 0.0])


def test_cross_entropy_cost_is_the_books_formula(rng: np.random.Generator) -> None:
    a = rng.uniform(0.05, 0.95, (6, 3))
    y = np.eye(3)[rng.integers(0, 3, 6)]
    c = F.cross_entropy_cost(Tensor(a), y)
    assert c.item() == pytest.approx(bce_np(a, y).sum() / 6, rel=1e-14)
    assert F.cross_entropy_cost(Tensor(a[0]), y[0]).item() == pytest.approx(
        bce_np(a[0], y[0]).sum(), rel=1e-14
    )
    check_loss_grad(lambda t: F.cross_entropy_cost(t, y), a, rng)
    # sigmoid outputs: δ^L = ∂C/∂z = (a − y)/n, the σ' factor cancels
    z = Tensor(rng.standard_normal((6, 3)), requires_grad=True)
    out = z.sigmoid()
    F.cross_entropy_cost(out, y).backward()
    np.testing.assert_allclose(z.grad.numpy(), (out.numpy() - y) / 6, rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        F.cross_entropy_cost(Tensor(a - 1), y)


# ---------------------------------------------------------------- the L2 term, one_hot, dtypes


def test_l2_penalty_value_gradient_and_module_form(rng: np.random.Generator) -> None:
    net = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Sigmoid(), nn.Linear(4, 2, seed=1))
    ws = [net[0].weight, net[2].weight]
    lmbda, n = 0.1, 500
    expected = lmbda / (2 * n) * sum(np.sum(w.numpy() ** 2) for w in ws)
    assert F.l2_penalty(ws, lmbda, n).item() == pytest.approx(expected, rel=1e-14)
    pen = F.l2_penalty(net, lmbda, n)  # a Module: weights only, biases excluded
    assert pen.item() == pytest.approx(expected, rel=1e-14)
    pen.backward()
    for w in ws:
        np.testing.assert_allclose(w.grad.numpy(), lmbda / n * w.numpy(), rtol=1e-14)
    assert net[0].bias.grad is None
    with pytest.raises(ValueError, match="lmbda must be a finite number >= 0"):
        F.l2_penalty(ws, -1.0, n)
    with pytest.raises(ValueError, match=r"n \(the training-set size\) must be an int > 0"):
        F.l2_penalty(ws, 0.1, 0)
    with pytest.raises(ValueError, match="no weights given"):
        F.l2_penalty([], 0.1, 10)


def test_l1_penalty_value_and_gradient_with_sgn_zero_is_zero() -> None:
    """(λ/n) Σ|w| and its gradient (λ/n) sgn(w), with sgn(0) = 0 (a weight at 0 is not pushed)."""
    net = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Sigmoid(), nn.Linear(4, 2, seed=1))
    net[0].weight.data[1, 2] = 0.0
    ws = [net[0].weight, net[2].weight]
    lmbda, n = 0.3, 700
    expected = lmbda / n * sum(np.sum(np.abs(w.numpy())) for w in ws)
    assert F.l1_penalty(ws, lmbda, n).item() == pytest.approx(expected, rel=1e-14)
    pen = F.l1_penalty(net, lmbda, n)  # a Module: weights only, biases excluded
    assert pen.item() == pytest.approx(expected, rel=1e-14)
    pen.backward()
    for w in ws:
        np.testing.assert_array_equal(w.grad.numpy(), lmbda / n * np.sign(w.numpy()))
    assert net[0].weight.grad.numpy()[1, 2] == 0.0
    assert net[0].bias.grad is None
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="l1_penalty: lmbda must be a finite number >= 0"):
            F.l1_penalty(ws, bad, n)
    with pytest.raises(ValueError, match=r"l1_penalty: n \(the training-set size\)"):
        F.l1_penalty(ws, 0.1, 0)
    with pytest.raises(ValueError, match="l1_penalty: no weights given"):
        F.l1_penalty([], 0.1, 10)


def test_one_hot() -> None:
    np.testing.assert_array_equal(F.one_hot([2, 0], 3), [[0, 0, 1], [1, 0, 0]])
    assert F.one_hot(np.array([1]), 2, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="indices must lie in 0 .. 2"):
        F.one_hot([3], 3)
    with pytest.raises(TypeError, match="indices must be integers"):
        F.one_hot([0.5], 3)


@pytest.mark.parametrize(
    "loss",
    [
        F.quadratic_cost,
        F.mse_loss,
        F.cross_entropy,
        F.cross_entropy_cost,
        F.binary_cross_entropy,
        F.binary_cross_entropy_with_logits,
    ],
)
def test_losses_keep_float32(loss: Callable[..., Tensor]) -> None:
    a = Tensor(np.full((2, 3), 0.25, dtype=np.float32), requires_grad=True)
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # float64 target: follows the output
    c = loss(a, y)
    c.backward()
    assert c.dtype == np.float32 and a.grad.dtype == np.float32


@pytest.mark.parametrize(
    "name,fn,make",
    [
        ("quadratic", lambda a, y: F.quadratic_cost(a, y), "prob"),
        ("mse", lambda a, y: F.mse_loss(a, y), "prob"),
        ("cross_entropy", lambda a, y: F.cross_entropy(a, y), "onehot"),
        ("cross_entropy_cost", lambda a, y: F.cross_entropy_cost(a, y), "prob"),
        ("bce", lambda a, y: F.binary_cross_entropy(a, y, "none"), "prob"),
        ("bce_logits", lambda a, y: F.binary_cross_entropy_with_logits(a, y, "none"), "prob"),
    ],
)
def test_library_gradcheck_on_output_and_target(name: str, fn, make: str) -> None:
    """tg.gradcheck (random upstream gradient) with respect to both output and target."""
    rng = np.random.default_rng(7)
    a = Tensor(rng.uniform(0.1, 0.9, (3, 4)), requires_grad=True)
    y0 = np.eye(4)[[0, 2, 3]] if make == "onehot" else rng.uniform(0.1, 0.9, (3, 4))
    y = Tensor(y0, requires_grad=True)
    assert tg.gradcheck(fn, [a, y])
    if make == "prob":  # hard 0/1 labels too (∂C/∂y at y = 0 must not be lost)
        assert tg.gradcheck(fn, [a, Tensor(np.round(y0), requires_grad=True)])


def test_loss_oracle_torch() -> None:
    torch = pytest.importorskip("torch")  # optional oracle; the formulas above are the test
    tf = torch.nn.functional
    rng = np.random.default_rng(3)
    z0, t = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    p0, y0 = rng.uniform(0.01, 0.99, (5, 4)), rng.uniform(0, 1, (5, 4))
    cases = [
        (F.cross_entropy(Tensor(z0), t), tf.cross_entropy(torch.tensor(z0), torch.tensor(t))),
        (F.mse_loss(Tensor(p0), y0), tf.mse_loss(torch.tensor(p0), torch.tensor(y0))),
        (
            F.binary_cross_entropy(Tensor(p0), y0),
            tf.binary_cross_entropy(torch.tensor(p0), torch.tensor(y0)),
        ),
        (
            F.binary_cross_entropy_with_logits(Tensor(z0), y0),
            tf.binary_cross_entropy_with_logits(torch.tensor(z0), torch.tensor(y0)),
        ),
        (
            F.nll_loss(Tensor(z0).log_softmax(), t),
            tf.nll_loss(torch.tensor(z0).log_softmax(-1), torch.tensor(t)),
        ),
    ]
    for ours, theirs in cases:
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-13)


def test_fused_costs_are_one_node_and_twice_differentiable() -> None:
    rng = np.random.default_rng(11)
    z = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    t = np.array([0, 3, 1])
    assert F.cross_entropy(z, t).grad_fn.name == "SoftmaxCrossEntropy"  # speed: a single node
    soft = Tensor(rng.dirichlet(np.ones(4), size=3), requires_grad=True)
    y = Tensor(rng.random((3, 4)), requires_grad=True)
    assert tg.gradgradcheck(lambda a: F.cross_entropy(a, t, reduction="none"), [z])
    assert tg.gradgradcheck(lambda a, b: F.cross_entropy(a, b), [z, soft])
    assert tg.gradgradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b), [z, y])
    assert tg.gradgradcheck(lambda a, b: F.quadratic_cost(a, b), [z, y])
    assert F.quadratic_cost(z, y).grad_fn.name == "QuadraticCost"
    a0 = Tensor(0.3, requires_grad=True)  # a 0-d output: C = ½ (y − a)²
    F.quadratic_cost(a0, 1.0).backward()
    assert a0.grad.item() == pytest.approx(0.3 - 1.0, rel=1e-15)
    assert tg.gradcheck(lambda a: F.cross_entropy(a[0], np.int64(2)), [z])
