"""optim.SGD against hand-written NumPy formulas (every option combination, 10 steps), its
bookkeeping (grad untouched, params kept, params without grad skipped), validation, param groups
and state_dict."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn, optim

Q = np.array([[3.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 1.0]])
C = np.array([0.2, -1.0, 0.7])


def cost(p: Tensor) -> Tensor:
    """f(p) = ½ pᵀ Q p + cᵀ p + Σ sin p  (a non-quadratic bowl)."""
    return 0.5 * (p @ (Q @ p)) + (p * C).sum() + p.sin().sum()


def grad_np(p: np.ndarray) -> np.ndarray:
    return Q @ p + C + np.cos(p)


def sgd_reference(
    p0: np.ndarray,
    steps: int,
    lr: float,
    momentum: float,
    dampening: float,
    nesterov: bool,
    weight_decay: float,
    maximize: bool = False,
) -> list[np.ndarray]:
    """PyTorch's documented SGD, written out: g_t = ∇f(θ) (negated if maximize);
    g_t += λ θ; b_1 = g_1, b_t = μ b_(t−1) + (1 − τ) g_t; g_t = g_t + μ b_t (Nesterov) or b_t;
    θ ← θ − γ g_t."""
    theta = p0.copy()
    buf = None
    out = []
    for _ in range(steps):
        g = grad_np(theta)
        if maximize:
            g = -g
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr * g
        out.append(theta.copy())
    return out


COMBOS = list(itertools.product([0.0, 0.9], [0.0, 0.3], [False, True], [0.0, 0.05], [False, True]))


@pytest.mark.parametrize("momentum,dampening,nesterov,weight_decay,maximize", COMBOS)
def test_sgd_trajectory_matches_formulas(
    momentum: float, dampening: float, nesterov: bool, weight_decay: float, maximize: bool
) -> None:
    p0 = np.array([0.5, -1.2, 2.0])
    kwargs = dict(
        lr=0.05,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        maximize=maximize,
    )
    if nesterov and (momentum == 0 or dampening != 0):
        with pytest.raises(ValueError, match="Nesterov momentum requires momentum > 0"):
            optim.SGD([Tensor(p0, requires_grad=True)], **kwargs)
        return
    p = Tensor(p0.copy(), requires_grad=True)
    opt = optim.SGD([p], **kwargs)
    expected = sgd_reference(p0, 10, **kwargs)
    for k in range(10):
        opt.zero_grad()
        cost(p).backward()
        opt.step()
        np.testing.assert_allclose(p.numpy(), expected[k], rtol=1e-13, atol=1e-14)
    # the trajectory really moved, and momentum really made a difference
    assert not np.allclose(p.numpy(), p0)
    if momentum:
        plain = sgd_reference(p0, 10, 0.05, 0.0, 0.0, False, weight_decay, maximize)
        assert not np.allclose(expected[-1], plain[-1])


def test_default_step_is_the_books_rule(rng: np.random.Generator) -> None:
    net = nn.Sequential(nn.Linear(4, 3, seed=1), nn.Sigmoid(), nn.Linear(3, 2, seed=2))
    x = rng.random((10, 4))
    y = rng.random((10, 2))
    opt = optim.SGD(net.parameters(), lr=3.0)
    before = [p.numpy().copy() for p in net.parameters()]
    nn.F.quadratic_cost(net(Tensor(x)), y).backward()
    grads = [p.grad.numpy().copy() for p in net.parameters()]
    opt.step()
    for p, w, g in zip(net.parameters(), before, grads):
        np.testing.assert_allclose(p.numpy(), w - 3.0 * g, rtol=0, atol=0)


def test_step_keeps_params_and_grads() -> None:
    p = Tensor([1.0, 2.0], requires_grad=True)
    q = Tensor([3.0], requires_grad=True)  # never gets a gradient: skipped
    opt = optim.SGD([p, q], lr=0.1, momentum=0.9, weight_decay=0.5)
    (p * p).sum().backward()
    g_before = p.grad.numpy().copy()
    grad_obj, data_obj = p.grad, p.data
    opt.step()
    assert p.grad is grad_obj
    np.testing.assert_array_equal(p.grad.numpy(), g_before)
    assert p.data is data_obj  # updated in place: views and Module references stay valid
    np.testing.assert_allclose(p.numpy(), [1.0, 2.0] - 0.1 * (g_before + 0.5 * np.array([1, 2])))
    assert q.numpy().tolist() == [3.0] and q not in opt.state
    # the momentum buffer is a copy, not the gradient array
    assert opt.state[p]["momentum_buffer"] is not p.grad.data
    opt.step()  # same grad again: buffer grows, grad still untouched
    np.testing.assert_array_equal(p.grad.numpy(), g_before)


def test_weight_decay_equals_books_l2_rule(rng: np.random.Generator) -> None:
    """w → (1 − ηλ/n) w − η ∂C₀/∂w  ==  SGD(weight_decay=λ/n) on weights  ==  adding l2_penalty."""
    eta, lmbda, n_train = 0.5, 5.0, 1000
    x, y = rng.random((8, 4)), rng.random((8, 3))
    nets = [nn.Linear(4, 3, seed=3) for _ in range(3)]
    # 1: the book's formula by hand
    w0 = nets[0].weight.numpy().copy()
    b0 = nets[0].bias.numpy().copy()
    nn.F.quadratic_cost(nets[0](Tensor(x)), y).backward()
    w_book = (1 - eta * lmbda / n_train) * w0 - eta * nets[0].weight.grad.numpy()
    b_book = b0 - eta * nets[0].bias.grad.numpy()
    # 2: weight decay on the weights' group only
    net = nets[1]
    opt = optim.SGD(
        [{"params": [net.weight], "weight_decay": lmbda / n_train}, {"params": [net.bias]}],
        lr=eta,
    )
    nn.F.quadratic_cost(net(Tensor(x)), y).backward()
    opt.step()
    np.testing.assert_allclose(net.weight.numpy(), w_book, rtol=1e-14)
    np.testing.assert_allclose(net.bias.numpy(), b_book, rtol=1e-14)
    # 3: the penalty term added to the cost
    net = nets[2]
    opt = optim.SGD(net.parameters(), lr=eta)
    c = nn.F.quadratic_cost(net(Tensor(x)), y) + nn.F.l2_penalty(net, lmbda, n_train)
    c.backward()
    opt.step()
    np.testing.assert_allclose(net.weight.numpy(), w_book, rtol=1e-13)
    np.testing.assert_allclose(net.bias.numpy(), b_book, rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(lr=-0.1), "invalid learning rate"),
        (dict(lr=0.1, momentum=-1), "invalid momentum"),
        (dict(lr=0.1, weight_decay=-1e-3), "invalid weight_decay"),
        (dict(lr=0.1, nesterov=True), "Nesterov momentum requires momentum > 0"),
        (dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "dampening = 0"),
        (dict(lr=float("nan")), "lr must be finite"),
    ],
)
def test_sgd_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        optim.SGD([Tensor([1.0], requires_grad=True)], **kwargs)


def test_sgd_rejects_bad_params() -> None:
    with pytest.raises(TypeError, match="lr must be a number"):
        optim.SGD([Tensor([1.0], requires_grad=True)], lr="0.1")
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(Tensor([1.0], requires_grad=True), lr=0.1)
    with pytest.raises(TypeError, match="is a list, not a Tensor"):
        optim.SGD([[1.0]], lr=0.1)
    p = Tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="appears twice"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="required hyper-parameter 'lr'"):
        optim.SGD([p])


def test_param_groups_and_changing_lr() -> None:
    a = Tensor([1.0], requires_grad=True)
    b = Tensor([1.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    assert opt.param_groups[1]["momentum"] == 0.0 and opt.param_groups[0]["params"] == [a]
    (a * 2 + b * 2).sum().backward()
    opt.step()
    assert a.item() == pytest.approx(1 - 0.2) and b.item() == pytest.approx(1 - 1.0)
    opt.param_groups[0]["lr"] = 1.0
    opt.step()
    assert a.item() == pytest.approx(0.8 - 2.0)
    c = Tensor([0.0], requires_grad=True)
    opt.add_param_group({"params": c, "momentum": 0.9})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.9
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_closure_is_evaluated_with_grad() -> None:
    p = Tensor([2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.25)

    def closure() -> Tensor:
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tg.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0 and p.item() == pytest.approx(2.0 - 0.25 * 4.0)


def test_optimizer_state_dict_resumes_exactly() -> None:
    p0 = np.array([0.5, -1.2, 2.0])
    kwargs = dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)
    # an uninterrupted run of 6 steps
    p = Tensor(p0.copy(), requires_grad=True)
    opt = optim.SGD([p], **kwargs)
    for _ in range(6):
        opt.zero_grad()
        cost(p).backward()
        opt.step()
    # 3 steps, save, build everything anew, load, 3 more steps
    q = Tensor(p0.copy(), requires_grad=True)
    opt1 = optim.SGD([q], **kwargs)
    for _ in range(3):
        opt1.zero_grad()
        cost(q).backward()
        opt1.step()
    sd = opt1.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and set(sd["state"]) == {0}
    saved_buf = sd["state"][0]["momentum_buffer"]
    assert saved_buf is not opt1.state[q]["momentum_buffer"]  # a snapshot
    r = Tensor(q.numpy().copy(), requires_grad=True)
    opt2 = optim.SGD([r], lr=123.0)  # hyper-parameters come from the state dict
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["lr"] == 0.05 and opt2.param_groups[0]["momentum"] == 0.9
    for _ in range(3):
        opt2.zero_grad()
        cost(r).backward()
        opt2.step()
    np.testing.assert_array_equal(r.numpy(), p.numpy())


def test_optimizer_load_state_dict_mismatches() -> None:
    a = Tensor(np.zeros(3), requires_grad=True)
    b = Tensor(np.zeros(2), requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    (a.sum() + b.sum()).backward()
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="group 0 has 2 parameter"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="1 parameter group"):
        optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match=r"shape \(3,\) but the parameter has shape \(2,\)"):
        optim.SGD([b, a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="keys 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_sgd_matches_torch_oracle() -> None:
    torch = pytest.importorskip("torch")  # optional oracle; the formulas above are the real test
    p0 = np.array([[0.5, -1.2], [2.0, 0.1]])
    g_seq = [np.sin(np.arange(4).reshape(2, 2) + k) for k in range(10)]
    for momentum, dampening, nesterov, wd in [(0.9, 0.0, True, 0.1), (0.8, 0.4, False, 0.05)]:
        p = Tensor(p0.copy(), requires_grad=True)
        tp = torch.tensor(p0.copy(), requires_grad=True)
        kw = dict(
            lr=0.1, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=wd
        )
        ours, theirs = optim.SGD([p], **kw), torch.optim.SGD([tp], **kw)
        for g in g_seq:
            p.grad = Tensor(g)
            tp.grad = torch.tensor(g)
            ours.step()
            theirs.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-14, atol=1e-15)
