"""PyTorch habits that work here too (issue 19, "Habits that should just work")."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor


def test_format_of_a_one_element_tensor():
    loss = Tensor(0.123456)
    assert f"{loss:.4f}" == "0.1235"
    assert f"{Tensor([[2.5]]):.1f}" == "2.5"
    assert f"{loss}" == repr(loss)
    with pytest.raises(TypeError, match=r"one-element.*\(2,\)"):
        f"{Tensor([1.0, 2.0]):.2f}"


def test_tolist_numel_float_double():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert t.numel() == 4
    assert t.float().dtype == np.float32 and t.float().double().dtype == np.float64


def test_abs_clamp_view_cat_match_numpy_and_pass_gradients():
    x = np.array([[-2.0, -0.5], [0.5, 3.0]])
    w = Tensor(x, requires_grad=True)
    np.testing.assert_array_equal(abs(w).data, np.abs(x))
    np.testing.assert_array_equal(w.clamp(min=-1.0, max=1.0).data, np.clip(x, -1, 1))
    np.testing.assert_array_equal(w.clamp(max=0.0).data, np.minimum(x, 0))
    np.testing.assert_array_equal(w.view(4).data, x.reshape(4))
    np.testing.assert_array_equal(w.view(-1, 1).data, x.reshape(-1, 1))
    np.testing.assert_array_equal(tg.cat([w, w], dim=1).data, np.concatenate([x, x], axis=1))
    (abs(w).sum() + w.clamp(-1.0, 1.0).sum() + tg.cat([w, w]).sum()).backward()
    # ∂|x| = sign x; ∂clamp = 1 inside (−1, 1), 0 outside; ∂cat = 2 (w used twice)
    np.testing.assert_array_equal(w.grad.data, np.sign(x) + (np.abs(x) < 1) + 2)


# ---------------------------------------------------------------- dim= / keepdim= (issue 19)

A = np.arange(24.0).reshape(2, 3, 4) / 7 - 1


@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "max", "min", "logsumexp"])
def test_dim_and_keepdim_are_axis_and_keepdims(name):
    t = Tensor(A)
    want = getattr(t, name)(axis=1, keepdims=True).data
    np.testing.assert_array_equal(getattr(t, name)(dim=1, keepdim=True).data, want)
    np.testing.assert_array_equal(getattr(t, name)(1, keepdim=True).data, want)
    with pytest.raises(TypeError, match=rf"{name}: got both axis=1 and dim=1"):
        getattr(t, name)(axis=1, dim=1)
    with pytest.raises(TypeError, match=rf"{name}: got both keepdims=True and keepdim=True"):
        getattr(t, name)(1, keepdims=True, keepdim=True)


def test_dim_for_argmax_softmax_squeeze_unsqueeze_cat_stack_and_nn():
    t = Tensor(A)
    np.testing.assert_array_equal(t.argmax(dim=2, keepdim=True).data, A.argmax(2, keepdims=True))
    np.testing.assert_array_equal(t.argmin(dim=0).data, A.argmin(0))
    np.testing.assert_array_equal(t.softmax(dim=1).data, t.softmax(1).data)
    np.testing.assert_array_equal(t.log_softmax(dim=0).data, t.log_softmax(0).data)
    np.testing.assert_array_equal(tg.nn.F.softmax(t, dim=1).data, t.softmax(axis=1).data)
    np.testing.assert_array_equal(tg.nn.F.log_softmax(t, dim=1).data, t.log_softmax(1).data)
    np.testing.assert_array_equal(tg.nn.Softmax(dim=0)(t).data, t.softmax(0).data)
    np.testing.assert_array_equal(tg.nn.LogSoftmax(dim=0)(t).data, t.log_softmax(0).data)
    assert t.unsqueeze(dim=1).shape == (2, 1, 3, 4)
    assert t.unsqueeze(dim=1).squeeze(dim=1).shape == A.shape
    assert tg.concatenate([t, t], dim=2).shape == (2, 3, 8)
    assert tg.stack([t, t], dim=1).shape == (2, 2, 3, 4)
    for call in (
        lambda: t.softmax(1, dim=1),
        lambda: tg.nn.F.log_softmax(t, 0, dim=0),
        lambda: tg.nn.Softmax(1, dim=1),
        lambda: tg.nn.LogSoftmax(axis=1, dim=1),
        lambda: tg.stack([t], axis=0, dim=0),
        lambda: t.squeeze(axis=0, dim=0),
    ):
        with pytest.raises(TypeError, match="got both axis=.* and dim="):
            call()


# ---------------------------------------------------------------- std, round (issue 19)


@pytest.mark.parametrize("axis", [None, 0, (1, 2)])
def test_std_follows_numpy_and_torchs_correction_names(axis):
    t = Tensor(A)
    np.testing.assert_allclose(t.std(axis).data, np.std(A, axis=axis), rtol=1e-14)
    np.testing.assert_allclose(t.std(axis, ddof=1).data, np.std(A, axis=axis, ddof=1), rtol=1e-14)
    for kw in (dict(correction=1), dict(unbiased=True)):
        np.testing.assert_array_equal(t.std(axis, **kw).data, t.std(axis, ddof=1).data)
        np.testing.assert_array_equal(t.var(axis, **kw).data, t.var(axis, ddof=1).data)
    np.testing.assert_array_equal(t.std(axis, unbiased=False).data, t.std(axis).data)
    with pytest.raises(TypeError, match="got ddof=1 and correction=1"):
        t.std(ddof=1, correction=1)
    with pytest.raises(TypeError, match="unbiased must be True or False"):
        t.var(unbiased=1)


def test_std_matches_torchs_with_its_default_correction():
    torch = pytest.importorskip("torch")
    x = torch.tensor(A, requires_grad=True)
    torch.std(x, dim=1).sum().backward()  # PyTorch's default: correction = 1
    w = Tensor(A, requires_grad=True)
    w.std(dim=1, correction=1).sum().backward()
    # atol: the middle row's gradient is exactly 0 (x − mean = 0), here rounding of order ε
    np.testing.assert_allclose(w.grad.data, x.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_std_gradient_against_finite_differences():
    w = Tensor(A[0], requires_grad=True)
    assert tg.gradcheck(lambda t: t.std(1, ddof=1), [w])
    assert tg.gradcheck(lambda t: t.std(), [w])


def test_round_is_numpys_with_a_zero_gradient():
    x = np.array([-2.5, -1.5, -0.4, 0.5, 1.5, 2.675, 14.0])
    w = Tensor(x, requires_grad=True)
    r = round(w)
    assert isinstance(r, Tensor) and r.grad_fn is not None
    np.testing.assert_array_equal(r.data, np.round(x))  # halves to the even neighbour
    np.testing.assert_array_equal(round(w, 1).data, np.round(x, 1))
    np.testing.assert_array_equal(w.round(-1).data, np.round(x, -1))
    (r * 3 + w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.ones_like(x))  # round contributes 0
    with pytest.raises(TypeError, match="decimals must be an int"):
        w.round(0.5)


# ---------------------------------------------------------------- NumPy's ufuncs and functions


def test_numpy_ufuncs_with_a_tensor_op_are_recorded():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    w = Tensor(x, requires_grad=True)
    out = np.exp(w) + np.maximum(w, 0) * np.array([1.0, 2.0]) + np.sqrt(np.abs(w)) - np.tanh(w)
    assert isinstance(out, Tensor) and out.grad_fn is not None
    np.testing.assert_allclose(
        out.data, np.exp(x) + np.maximum(x, 0) * [1.0, 2.0] + np.sqrt(np.abs(x)) - np.tanh(x)
    )
    np.sum(out).backward()
    want = np.exp(x) + (x > 0) * [1.0, 2.0] + np.sign(x) / (2 * np.sqrt(np.abs(x)))
    np.testing.assert_allclose(w.grad.data, want - (1 - np.tanh(x) ** 2))
    # an ndarray on the left goes through the same ops
    left = np.array([1.0, 2.0]) @ w
    assert isinstance(left, Tensor) and left.grad_fn is not None
    assert isinstance(np.array(3.0) < w, Tensor) and (np.array(3.0) < w).dtype == np.bool_


def test_numpy_functions_with_a_tensor_version_take_numpys_arguments():
    x = np.arange(12.0).reshape(3, 4) / 5
    w = Tensor(x, requires_grad=True)
    for f in (np.sum, np.mean, np.var, np.std, np.max, np.min):
        got = f(w, axis=1, keepdims=True)
        assert isinstance(got, Tensor) and got.grad_fn is not None, f
        np.testing.assert_allclose(got.data, f(x, axis=1, keepdims=True), rtol=1e-14)
    np.testing.assert_array_equal(np.argmax(w, axis=0).data, np.argmax(x, axis=0))
    np.testing.assert_array_equal(np.clip(w, 0.5, 1.5).data, np.clip(x, 0.5, 1.5))
    np.testing.assert_array_equal(np.transpose(w).data, x.T)
    np.testing.assert_array_equal(np.reshape(w, (4, 3)).data, x.reshape(4, 3))
    np.testing.assert_array_equal(np.concatenate([w, x], axis=1).data, np.hstack([x, x]))
    np.testing.assert_array_equal(np.where(x > 1, w, 0.0).data, np.where(x > 1, x, 0.0))
    np.sum(np.concatenate([w, w])).backward()
    np.testing.assert_array_equal(w.grad.data, np.full_like(x, 2.0))
    with pytest.raises(TypeError, match=r"np.sum on a Tensor takes \(a, axis=None, keepdims"):
        np.sum(w, dtype=np.float32)


def test_numpy_without_a_tensor_op_never_silently_cuts_the_graph():
    w = Tensor([0.5, 1.5], requires_grad=True)
    with pytest.raises(TypeError, match=r"np.log1p has no Tensor operation.*\(1 \+ t\).log\(\)"):
        np.log1p(w)
    with pytest.raises(TypeError, match="np.cumsum has no Tensor version.*t.detach()"):
        np.cumsum(w)
    with pytest.raises(TypeError, match=r"np.exp\(..., out=...\).*write t.exp\(\)"):
        np.exp(w, out=np.empty(2))
    with pytest.raises(TypeError, match=r"np.add.reduce.*use t.sum\(axis\)"):
        np.add.reduce(w)
    # without a gradient to lose, NumPy's answer: a Tensor for a ufunc, NumPy's for a function
    np.testing.assert_array_equal(np.log1p(w.detach()).data, np.log1p([0.5, 1.5]))
    np.testing.assert_array_equal(np.cumsum(w.detach()), [0.5, 2.0])
    with tg.no_grad():
        np.testing.assert_array_equal(np.log1p(w).data, np.log1p([0.5, 1.5]))
    assert np.allclose(w, [0.5, 1.5]) and np.isfinite(w).data.all()  # bool results: fine


def test_array_follows_numpy_2s_copy_semantics():
    t = Tensor([1.0, 2.0])
    view = np.array(t, copy=False)
    view[0] = 5.0  # a view: the tensor changes
    assert t.data[0] == 5.0 and np.asarray(t) is t.data
    assert np.array(t) is not t.data and np.array(t, copy=True) is not t.data
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match="Unable to avoid copy"):
        np.array(t, dtype=np.float32, copy=False)
    # a tensor whose array a live graph saved: the view is read-only
    w = Tensor([1.0, 2.0], requires_grad=True)
    y = w * w
    with pytest.raises(ValueError, match="read-only"):
        np.array(w, copy=False)[0] = 0.0
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, [2.0, 4.0])


# ---------------------------------------------------------------- class labels as float Tensors


def test_cross_entropy_and_indexing_accept_labels_that_tensor_made_floats():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 10))
    y = np.array([3, 0, 9, 3, 1])
    labels = Tensor(y)  # the torch.Tensor rule: float64
    assert labels.dtype == np.float64
    F = tg.nn.F
    for cost in (F.cross_entropy, F.nll_loss, F.quadratic_cost):
        np.testing.assert_array_equal(cost(Tensor(z), labels).data, cost(Tensor(z), y).data)
    np.testing.assert_array_equal(
        F.cross_entropy(Tensor(z[0]), Tensor(y[0])).data, F.cross_entropy(Tensor(z[0]), y[0]).data
    )
    np.testing.assert_array_equal(Tensor(z)[np.arange(5), labels].data, z[np.arange(5), y])
    np.testing.assert_array_equal(Tensor(z.T)[labels.float()].data, z.T[y])  # float32 too


@pytest.mark.parametrize("bad", [2.5, np.nan, np.inf])
def test_labels_that_are_not_integers_say_how_to_keep_them_integers(bad):
    z = Tensor(np.zeros((3, 4)))
    labels = Tensor([1.0, bad, 0.0])
    with pytest.raises(
        TypeError,
        match=r"cross_entropy: class labels must be integers.*"
        r"Tensor\(y, dtype=np.int64\)",
    ):
        tg.nn.F.cross_entropy(z, labels)
    with pytest.raises(TypeError, match=r"must be integers.*dtype=np.int64"):
        z[labels]


def test_float_labels_out_of_range_are_still_refused():
    with pytest.raises(ValueError, match="class index 10 is out of range for 10 classes"):
        tg.nn.F.cross_entropy(Tensor(np.zeros((2, 10))), Tensor([1.0, 10.0]))


# ---------------------------------------------------------------- tg.manual_seed


def _script():
    """A script's worth of random draws, none given a seed=."""
    from tinygrad_sgd.data import DataLoader
    from tinygrad_sgd.train import build_network, fit

    X = np.arange(40.0).reshape(20, 2) / 40
    y = np.arange(20) % 2
    net = build_network([2, 4, 2], init="scaled", dropout=0.5, dtype=np.float64)
    fit(net, (X, y), epochs=2, batch_size=5, lr=0.5, log=None)
    lin = tg.nn.Linear(3, 2)
    tg.nn.init.xavier_normal_(lin.weight)
    drop = tg.nn.Dropout(0.5)
    loader = DataLoader(X, y, batch_size=7, shuffle=True)
    return [
        Tensor.randn(3).data,
        Tensor.uniform(2, 2).data,
        lin.weight.data,
        lin.bias.data,
        drop(Tensor(np.ones(8))).data,
        np.concatenate([b for _, b in loader]),
        *(p.data for p in net.parameters()),
    ]


def test_manual_seed_makes_a_script_reproducible():
    g = tg.manual_seed(123)
    assert g is tg.default_generator and tg.nn.init.manual_seed is tg.manual_seed
    first = _script()
    tg.manual_seed(123)
    again = _script()
    tg.manual_seed(124)
    other = _script()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    differ = [not np.array_equal(a, c) for a, c in zip(first, other)]
    assert all(differ), differ
    # the stream is numpy's default_rng(seed)
    tg.manual_seed(7)
    np.testing.assert_array_equal(Tensor.randn(4).data, np.random.default_rng(7).standard_normal(4))
    with pytest.raises(TypeError, match="manual_seed: seed must be an int"):
        tg.manual_seed(1.5)
