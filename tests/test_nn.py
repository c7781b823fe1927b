"""nn.Module registration and traversal, Linear, Sequential, activation modules, state_dict."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2, seed=0)
        self.scale = nn.Parameter(np.ones(2))
        self.act = nn.Tanh()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.lin(x)) * self.scale


def test_registration_order_and_dotted_names() -> None:
    net = nn.Sequential(Block(), nn.Sigmoid(), nn.Linear(2, 4, seed=1))
    names = [n for n, _ in net.named_parameters()]
    # as in PyTorch: each module's own parameters, then those of its sub-modules
    assert names == ["0.scale", "0.lin.weight", "0.lin.bias", "2.weight", "2.bias"]
    params = list(net.parameters())
    assert params[0] is net[0].scale and params[1] is net[0].lin.weight
    assert params[-1] is net[2].bias
    assert list(net.state_dict()) == names
    assert [n for n, _ in net.named_modules()] == ["", "0", "0.lin", "0.act", "1", "2"]
    assert [type(m).__name__ for m in net.children()] == ["Block", "Sigmoid", "Linear"]
    assert net.num_parameters() == 6 + 2 + 2 + 8 + 4


def test_shared_parameters_are_yielded_once() -> None:
    shared = nn.Linear(2, 2, seed=0)
    net = nn.Sequential(shared, nn.Tanh(), shared)
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(net.parameters())) == 2
    # but the state dict names every path, like PyTorch's
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_plain_tensor_attributes_and_reassignment() -> None:
    m = nn.Module()
    m.w = Tensor([1.0, 2.0], requires_grad=True)  # a leaf that requires grad registers
    m.const = Tensor([3.0])  # a constant does not
    m.register_buffer("running", Tensor([0.0]))
    assert [n for n, _ in m.named_parameters()] == ["w"]
    assert list(m.state_dict()) == ["w", "running"]
    m.running = Tensor([1.0], requires_grad=True)  # a buffer stays a buffer
    assert [n for n, _ in m.named_buffers()] == ["running"]
    assert [n for n, _ in m.named_parameters()] == ["w"]
    with pytest.raises(TypeError, match="cannot assign str to buffer 'running'"):
        m.running = "x"
    m.w = None
    assert list(m.parameters()) == []
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'w'"):
        m.w = np.zeros(2)
    m.sub = nn.Linear(1, 1)
    with pytest.raises(TypeError, match="cannot assign int to sub-module 'sub'"):
        m.sub = 3
    del m.sub
    assert list(m.named_modules()) == [("", m)]


def test_forgetting_super_init_is_a_clear_error() -> None:
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\)"):
        Bad()


def test_parameter_is_a_tensor() -> None:
    p = nn.Parameter(np.arange(3.0))
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    y = (p * p).sum()
    y.backward()
    np.testing.assert_array_equal(p.grad.numpy(), 2 * np.arange(3.0))
    t = Tensor([1.0, 2.0])
    shared = nn.Parameter(t)
    assert shared.data is t.data  # made from a Tensor it shares the array, as in PyTorch
    assert repr(p).startswith("Parameter containing:\nTensor(")
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(Tensor(np.array([1, 2]), dtype=np.int64))


def test_zero_grad_train_eval() -> None:
    net = nn.Sequential(nn.Linear(3, 2, seed=0), nn.Sigmoid())
    net(Tensor(np.ones((4, 3)))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    old = net[0].weight.grad
    old_values = old.numpy().copy()
    net.zero_grad(set_to_none=False)
    assert (net[0].weight.grad.numpy() == 0).all() and net[0].weight.grad is not old
    np.testing.assert_array_equal(old.numpy(), old_values)  # the old gradient is not mutated
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.training and net[0].training
    with pytest.raises(TypeError, match="mode must be a bool"):
        net.train("no")  # type: ignore[arg-type]
    visited: list[str] = []
    assert net.apply(lambda m: visited.append(type(m).__name__)) is net
    assert visited == ["Linear", "Sigmoid", "Sequential"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    assert net.eval() is net
    assert not net.training and not net[0].training and not net[1].training
    net.train()
    assert all(m.training for m in net.modules())


def test_linear_forward_shapes_and_formula(rng: np.random.Generator) -> None:
    lin = nn.Linear(3, 2, seed=0)
    assert lin.weight.shape == (2, 3) and lin.bias.shape == (2,)
    x = rng.random((5, 3))
    np.testing.assert_allclose(
        lin(Tensor(x)).numpy(), x @ lin.weight.numpy().T + lin.bias.numpy(), rtol=1e-15
    )
    np.testing.assert_allclose(
        lin(Tensor(x[0])).numpy(), lin.weight.numpy() @ x[0] + lin.bias.numpy(), rtol=1e-15
    )
    nobias = nn.Linear(3, 2, bias=False)
    assert nobias.bias is None and [n for n, _ in nobias.named_parameters()] == ["weight"]
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): expected input whose last dimension"):
        lin(Tensor(np.ones((5, 4))))
    with pytest.raises(ValueError, match="in_features must be positive"):
        nn.Linear(0, 2)
    with pytest.raises(TypeError, match="out_features must be an int"):
        nn.Linear(2, 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown init 'bogus'"):
        nn.Linear(2, 2, init="bogus")
    assert repr(lin) == "Linear(in_features=3, out_features=2, bias=True)"


def test_linear_dtype_follows_default() -> None:
    tg.set_default_dtype(np.float32)
    lin = nn.Linear(3, 2, seed=0)
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    assert lin(Tensor(np.ones((2, 3), dtype=np.float32))).dtype == np.float32
    assert nn.Linear(3, 2, dtype=np.float64).weight.dtype == np.float64


def test_linear_seeding() -> None:
    a = nn.Linear(5, 4, seed=3)
    b = nn.Linear(5, 4, seed=3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    rng = np.random.default_rng(3)
    c, d = nn.Linear(5, 4, seed=rng), nn.Linear(5, 4, seed=rng)
    assert not np.array_equal(c.weight.numpy(), d.weight.numpy())
    nn.init.manual_seed(11)
    e = nn.Linear(5, 4)
    nn.init.manual_seed(11)
    f = nn.Linear(5, 4)
    np.testing.assert_array_equal(e.bias.numpy(), f.bias.numpy())


def test_sequential_container() -> None:
    a, b, c = nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Linear(3, 1, seed=1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and list(head) == [a, b] and head[0] is a
    x = Tensor(np.array([[1.0, -2.0]]))
    np.testing.assert_allclose(seq(x).numpy(), c(b(a(x))).numpy())
    with pytest.raises(IndexError, match="out of range for length 3"):
        seq[3]
    with pytest.raises(TypeError, match="must be a Module"):
        nn.Sequential(a, lambda t: t)  # type: ignore[arg-type]
    assert "(1): ReLU()" in repr(seq)


def test_activation_modules(rng: np.random.Generator) -> None:
    z0 = rng.standard_normal((3, 4))
    z = Tensor(z0)
    np.testing.assert_allclose(nn.Sigmoid()(z).numpy(), 1 / (1 + np.exp(-z0)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(z).numpy(), np.tanh(z0), rtol=1e-15)
    np.testing.assert_array_equal(nn.ReLU()(z).numpy(), np.maximum(z0, 0))
    np.testing.assert_allclose(
        nn.LeakyReLU(0.2)(z).numpy(), np.where(z0 > 0, z0, 0.2 * z0), rtol=1e-15
    )
    e = np.exp(z0 - z0.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax()(z).numpy(), e / e.sum(-1, keepdims=True), rtol=1e-14)
    e0 = np.exp(z0 - z0.max(axis=0, keepdims=True))
    np.testing.assert_allclose(
        nn.Softmax(dim=0)(z).numpy(), e0 / e0.sum(0, keepdims=True), rtol=1e-14
    )
    np.testing.assert_allclose(
        nn.LogSoftmax()(z).numpy(), np.log(e / e.sum(-1, keepdims=True)), rtol=1e-13
    )


# ---------------------------------------------------------------- state_dict


def make_net(seed: int, dtype: object = np.float64) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Linear(4, 3, seed=rng, dtype=dtype), nn.Sigmoid(), nn.Linear(3, 2, seed=rng, dtype=dtype)
    )


def test_state_dict_is_a_snapshot_and_round_trips() -> None:
    net = make_net(0)
    sd = net.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    w_before = sd["0.weight"].numpy().copy()
    net[0].weight.data += 1.0  # training goes on: the snapshot must not change
    np.testing.assert_array_equal(sd["0.weight"].numpy(), w_before)
    other = make_net(1)
    weight_obj = other[0].weight
    result = other.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert other[0].weight is weight_obj  # loaded in place: optimizers keep working
    np.testing.assert_array_equal(other[0].weight.numpy(), w_before)
    # plain arrays are accepted as well
    other.load_state_dict({k: v.numpy() for k, v in make_net(2).state_dict().items()})
    np.testing.assert_array_equal(other[2].bias.numpy(), make_net(2)[2].bias.numpy())


def test_load_state_dict_reports_every_mismatch() -> None:
    net = make_net(0)
    sd = dict(net.state_dict())
    sd.pop("2.bias")
    sd["extra.weight"] = Tensor(np.zeros(1))
    sd["0.weight"] = Tensor(np.zeros((4, 3)))
    sd["0.bias"] = Tensor(np.zeros(3, dtype=np.float32))
    before = net[2].weight.numpy().copy()
    with pytest.raises(ValueError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert "missing key(s): '2.bias'" in msg
    assert "unexpected key(s): 'extra.weight'" in msg
    assert "'0.weight': shape mismatch: checkpoint has (4, 3), the model has (3, 4)" in msg
    assert "'0.bias': dtype mismatch: checkpoint has float32, the model has float64" in msg
    # nothing was written, not even the entries that matched
    np.testing.assert_array_equal(net[2].weight.numpy(), before)


def test_load_state_dict_non_strict() -> None:
    net = make_net(0)
    sd = make_net(1).state_dict()
    del sd["2.bias"]
    sd["junk"] = Tensor([1.0])
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["2.bias"] and res.unexpected_keys == ["junk"]
    np.testing.assert_array_equal(net[0].weight.numpy(), make_net(1)[0].weight.numpy())
    with pytest.raises(TypeError, match="expected a mapping"):
        net.load_state_dict([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'0.bias': expected a Tensor or ndarray, got list"):
        net.load_state_dict({**make_net(1).state_dict(), "0.bias": [0.0, 0.0, 0.0]})


def test_module_to_dtype_keeps_parameter_objects() -> None:
    net = make_net(0)
    w = net[0].weight
    net.to(np.float32)
    assert net[0].weight is w and w.dtype == np.float32
    net.load_state_dict(make_net(1, np.float32).state_dict())


# ---------------------------------------------------------------- Dropout


def test_dropout_keeps_the_expectation_and_scales_the_kept_units() -> None:
    """E[dropout(a)] = a: each unit is kept with probability 1 − p and then multiplied by
    1/(1 − p).  Over N = 400,000 units of value 1 the mean has standard deviation
    √(p/(1 − p)/N) ≈ 0.0011 (p = 0.3), so 0.006 is more than 5 standard deviations."""
    p = 0.3
    drop = nn.Dropout(p, seed=0)
    out = drop(Tensor(np.ones((400, 1000)))).numpy()
    kept = out != 0
    np.testing.assert_array_equal(out[kept], 1 / (1 - p))  # exactly 1/(1 − p), nothing else
    assert abs(kept.mean() - (1 - p)) < 0.006
    assert abs(out.mean() - 1.0) < 0.006
    # and per unit, averaged over many fresh masks: a fixed input comes back on average
    a = np.array([[0.5, -2.0, 3.0]])
    mean = np.mean([drop(Tensor(a)).numpy() for _ in range(20_000)], axis=0)
    # per unit: std of one draw is |a| √(p/(1 − p)) ≤ 3 · 0.655; over 20,000 draws ≤ 0.014
    np.testing.assert_allclose(mean, a, atol=0.07)


def test_dropout_gradient_flows_through_the_kept_units_only(rng: np.random.Generator) -> None:
    p = 0.5
    drop = nn.Dropout(p, seed=1)
    x = Tensor(rng.uniform(0.5, 1.5, size=(6, 7)), requires_grad=True)
    out = drop(x)
    upstream = rng.standard_normal((6, 7))
    out.backward(upstream)
    mask = out.numpy() / x.numpy()  # 0 or 1/(1 − p), elementwise
    assert set(np.unique(mask)) <= {0.0, 2.0}
    np.testing.assert_allclose(x.grad.numpy(), upstream * mask, rtol=1e-15)


def test_dropout_eval_is_the_identity_and_p_zero_draws_nothing() -> None:
    drop = nn.Dropout(0.5, seed=2)
    x = Tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    state = drop.generator.bit_generator.state
    drop.eval()
    out = drop(x)
    np.testing.assert_array_equal(out.numpy(), x.numpy())
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4)))
    assert drop.generator.bit_generator.state == state  # eval() draws no random numbers
    zero = nn.Dropout(0.0, seed=2)
    np.testing.assert_array_equal(zero(x).numpy(), x.numpy())
    assert zero.generator.bit_generator.state == state
    drop.train()
    assert np.any(drop(x).numpy() != x.numpy())


def test_dropout_draws_a_fresh_mask_each_call_from_its_own_seeded_generator() -> None:
    x = Tensor(np.ones((4, 50), dtype=np.float32))
    a, b = nn.Dropout(0.5, seed=7), nn.Dropout(0.5, seed=7)
    first, second = a(x).numpy(), a(x).numpy()
    assert first.dtype == np.float32
    assert np.any(first != second)  # a new mask every call
    np.testing.assert_array_equal(b(x).numpy(), first)  # same seed, same masks
    np.testing.assert_array_equal(b(x).numpy(), second)
    # the generator's state is all that decides the next mask (what a checkpoint saves)
    state = a.generator.bit_generator.state
    third = a(x).numpy()
    a.generator.bit_generator.state = state
    np.testing.assert_array_equal(a(x).numpy(), third)
    # the global NumPy generator and nn.init's generator are left alone
    np.random.seed(0)
    before = np.random.random()
    np.random.seed(0)
    nn.Dropout(0.5)(x)
    assert np.random.random() == before
    assert "p=0.5" in repr(a) and nn.Dropout().p == 0.5


@pytest.mark.parametrize(
    "p, error, match",
    [
        (1.0, ValueError, r"must lie in \[0, 1\), got 1.0"),
        (-0.1, ValueError, r"must lie in \[0, 1\), got -0.1"),
        (float("nan"), ValueError, r"must lie in \[0, 1\), got nan"),
        ("0.5", TypeError, "p must be a number in \\[0, 1\\), got str"),
        (True, TypeError, "got bool"),
    ],
)
def test_dropout_rejects_a_bad_p(p: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        nn.Dropout(p)  # type: ignore[arg-type]
