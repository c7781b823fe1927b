"""The book's chapter 3 and 5 experiments in the training loop: L2 and L1 steps against the
book's rules by hand, softmax with the log-likelihood, dropout in the network, early stopping and
the plateau schedule on scripted accuracies, the gradient speeds against ‖∂C/∂bˡ‖ by hand, and
network2's history lists."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tinygrad_sgd import nn
from tinygrad_sgd.data import DataLoader
from tinygrad_sgd.train import (
    History,
    NoImprovement,
    PlateauSchedule,
    build_network,
    evaluate,
    fit,
    gradient_speeds,
    plateau_patience,
)
from tinygrad_sgd.train import loop as loop_module


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def hand_backprop(weights, biases, x, Y, output="sigmoid"):
    """∂C₀/∂w, ∂C₀/∂b of the mini-batch mean cost by BP1-BP4, rows as examples: the quadratic
    cost with sigmoid outputs, or the log-likelihood with a softmax output (δᴸ = a − y)."""
    m = len(x)
    activations, zs = [x], []
    for i, (w, b) in enumerate(zip(weights, biases)):
        z = activations[-1] @ w.T + b
        zs.append(z)
        if i == len(weights) - 1 and output == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            activations.append(e / e.sum(axis=1, keepdims=True))
        else:
            activations.append(sigmoid(z))
    a = activations[-1]
    if output == "softmax":
        delta = (a - Y) / m  # BP1 for softmax + log-likelihood
    else:
        delta = (a - Y) * a * (1 - a) / m  # BP1 for the quadratic cost
    grads_w, grads_b = [None] * len(weights), [None] * len(weights)
    for layer in range(len(weights) - 1, -1, -1):
        grads_w[layer] = delta.T @ activations[layer]  # BP4
        grads_b[layer] = delta.sum(axis=0)  # BP3
        if layer:
            s = activations[layer]
            delta = (delta @ weights[layer]) * s * (1 - s)  # BP2
    return grads_w, grads_b


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def weights_and_biases(model):
    layers = linears(model)
    return [m.weight.numpy().copy() for m in layers], [m.bias.numpy().copy() for m in layers]


def small_problem(n=10, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, d))
    y = rng.integers(0, k, size=n)
    return X, y, nn.F.one_hot(y, k)


# ------------------------------------------------------------------- L2 and L1: the book's rules


@pytest.mark.parametrize("kind", ["l2", "l1"])
def test_regularised_step_is_the_books_rule(kind):
    """Chapter 3's updates with n (training-set size) ≠ m (mini-batch size), in float64:

    L2: w → (1 − ηλ/n) w − η ∂C₀/∂w;   L1: w → w − (ηλ/n) sgn(w) − η ∂C₀/∂w;   b → b − η ∂C₀/∂b.

    Two mini-batches of m = 5 out of n = 10, each step computed by hand from the weights before it.
    """
    X, y, Y = small_problem()
    n, m, eta, lam = len(X), 5, 0.8, 2.5
    model = build_network([4, 6, 3], init="scaled", seed=1, dtype=np.float64)
    linears(model)[0].weight.data[2, 1] = 0.0  # sgn(0) = 0: L1 leaves a zero weight alone
    ws, bs = weights_and_biases(model)
    loader = DataLoader(X, Y, m, shuffle=False)
    reg = {"lmbda": lam} if kind == "l2" else {"l1": lam}
    fit(model, (X, y), epochs=1, lr=eta, loader=loader, log=None, **reg)
    for start in (0, 5):
        gw, gb = hand_backprop(ws, bs, X[start : start + m], Y[start : start + m])
        if kind == "l2":
            ws = [(1 - eta * lam / n) * w - eta * g for w, g in zip(ws, gw)]
        else:
            if start == 0:
                assert gw[0][2, 1] != 0  # the weight moves by the gradient of C₀ only
                zero_before = ws[0][2, 1]
            ws = [w - eta * lam / n * np.sign(w) - eta * g for w, g in zip(ws, gw)]
            if start == 0:
                assert zero_before == 0.0
        bs = [b - eta * g for b, g in zip(bs, gb)]
    got_w, got_b = weights_and_biases(model)
    for a, b in zip(got_w + got_b, ws + bs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_regularisation_changes_the_weights_and_not_the_biases_rule():
    """Control for the test above: the same run without λ ends elsewhere (the λ terms matter),
    and the recorded costs include the penalty (λ/2n) Σ w²."""
    X, y, Y = small_problem()
    runs = {}
    for lam in (0.0, 2.5):
        model = build_network([4, 6, 3], init="scaled", seed=1, dtype=np.float64)
        h = fit(
            model,
            (X, y),
            (X, y),
            epochs=1,
            lr=0.8,
            loader=DataLoader(X, Y, 5, shuffle=False),
            lmbda=lam,
            log=None,
            monitor_training=True,
        )
        runs[lam] = (model, h)
    w0 = linears(runs[0.0][0])[0].weight.numpy()
    w1 = linears(runs[2.5][0])[0].weight.numpy()
    assert np.max(np.abs(w0 - w1)) > 1e-3
    model, h = runs[2.5]
    penalty = 2.5 / (2 * 10) * sum(np.sum(m.weight.numpy() ** 2) for m in linears(model))
    c0 = evaluate(model, X, y)[1]
    assert h.eval_cost[0] == pytest.approx(c0 + penalty, rel=1e-12)
    assert h.train_eval_cost[0] == pytest.approx(c0 + penalty, rel=1e-12)


def test_fit_rejects_bad_regularisation():
    X, y, _ = small_problem()
    model = build_network([4, 3], seed=0)
    for bad in (-1.0, math.nan, math.inf, True, "1"):
        with pytest.raises(ValueError, match="lmbda must be a finite number >= 0"):
            fit(model, (X, y), lmbda=bad, log=None)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="l1 must be a finite number >= 0"):
            fit(model, (X, y), l1=bad, log=None)  # type: ignore[arg-type]


# ------------------------------------------------------------------- softmax and log-likelihood


def test_softmax_log_likelihood_step_is_bp1_with_delta_a_minus_y():
    X, y, Y = small_problem()
    model = build_network([4, 6, 3], init="scaled", seed=2, dtype=np.float64, output="softmax")
    assert isinstance(model[-1], nn.Softmax)
    ws, bs = weights_and_biases(model)
    fit(
        model,
        (X, y),
        epochs=1,
        lr=0.5,
        cost="log-likelihood",
        loader=DataLoader(X, Y, 10, shuffle=False),
        log=None,
    )
    gw, gb = hand_backprop(ws, bs, X, Y, output="softmax")
    got_w, got_b = weights_and_biases(model)
    for a, w, g in zip(got_w + got_b, ws + bs, gw + gb):
        np.testing.assert_allclose(a, w - 0.5 * g, rtol=0, atol=1e-12)
    # evaluate's cost is −(1/n) Σ ln a_y, and stays finite where a_y underflows to 0
    a = model(X).numpy()
    c = evaluate(model, X, y, cost="log-likelihood")[1]
    assert c == pytest.approx(-np.mean(np.log(a[np.arange(10), y])), rel=1e-12)
    linears(model)[-1].weight.data *= 1e4
    assert math.isfinite(evaluate(model, X, y, cost="log-likelihood")[1])


def test_log_likelihood_needs_a_softmax_output():
    X, y, _ = small_problem()
    with pytest.raises(ValueError, match="needs a network whose last layer is nn.Softmax"):
        fit(build_network([4, 3], seed=0), (X, y), cost="log-likelihood", log=None)


def test_build_network_activation_output_and_dropout_layers():
    net = build_network([8, 6, 5, 3], activation="relu", output="softmax", dropout=0.3, seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear", "Softmax"]
    tanh = build_network([8, 6, 3], activation="tanh", seed=0)
    assert [type(m).__name__ for m in tanh] == ["Linear", "Tanh", "Linear", "Sigmoid"]
    # the weights do not depend on the extra layers: same seed, same initial weights
    plain = build_network([8, 6, 5, 3], seed=0)
    for a, b in zip(linears(net), linears(plain)):
        np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    # each dropout layer has its own generator, decided by dropout_seed
    d1 = build_network([8, 6, 5, 3], dropout=0.5, dropout_seed=4)
    d2 = build_network([8, 6, 5, 3], dropout=0.5, dropout_seed=4)
    g = [m.generator.random() for m in d1 if isinstance(m, nn.Dropout)]
    assert g == [m.generator.random() for m in d2 if isinstance(m, nn.Dropout)]
    assert g[0] != g[1]
    for bad, match in [
        (dict(activation="softplus"), "activation must be one of sigmoid, tanh, relu"),
        (dict(output="tanh"), "output must be one of sigmoid, softmax"),
        (dict(dropout=1.0), r"must lie in \[0, 1\)"),
    ]:
        with pytest.raises(ValueError, match=match):
            build_network([8, 6, 3], **bad)


def test_dropout_is_on_while_training_and_off_while_evaluating(monkeypatch):
    """fit trains with fresh masks (the same batch twice gives two costs) and evaluates the
    whole network (evaluate sees a deterministic model)."""
    X, y, Y = small_problem()
    model = build_network([4, 50, 3], dropout=0.5, dropout_seed=0, seed=0, dtype=np.float64)
    seen = []
    real = loop_module.evaluate

    def spy(model, *args, **kwargs):
        seen.append(model.training)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(loop_module, "evaluate", spy)
    h = fit(model, (X, y), (X, y), epochs=2, lr=1e-12, batch_size=10, seed=0, log=None)
    assert seen == [False, False]
    assert h.train_cost[0] != h.train_cost[1]  # new masks (η ≈ 0 leaves the weights alone)
    assert evaluate(model, X, y) == evaluate(model, X, y)


# ------------------------------------------------------------------- stopping rules


def test_no_improvement_in_n_on_a_scripted_sequence():
    rule = NoImprovement(3)
    accuracies = [0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.69, 0.7, 0.9]
    fired = [rule.update(k, a) for k, a in enumerate(accuracies[:8])]
    # equal is not better: 0.6 at epoch 2 counts as no improvement
    assert fired == [False] * 7 + [True]
    assert (rule.best, rule.best_epoch, rule.since) == (0.7, 4, 3)
    copy = NoImprovement(3)
    copy.load_state_dict(rule.state_dict())
    assert copy.state_dict() == rule.state_dict() and copy.done
    with pytest.raises(ValueError, match="state is for n = 3, not 4"):
        NoImprovement(4).load_state_dict(rule.state_dict())
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be an int >= 1"):
            NoImprovement(bad)  # type: ignore[arg-type]


def scripted(monkeypatch, corrects, total=100):
    """Make fit's evaluation return the scripted numbers of correct answers, one per epoch."""
    it = iter(corrects)
    monkeypatch.setattr(loop_module, "evaluate", lambda *a, **k: (next(it), 0.5))
    return total


def test_early_stopping_stops_where_it_must(monkeypatch):
    X, y, _ = small_problem(n=100)
    scripted(monkeypatch, [50, 60, 60, 55, 70, 70, 69, 70, 90, 95])
    lines = []
    model = build_network([4, 3], seed=0)
    h = fit(model, (X, y), (X, y), epochs=10, early_stopping=3, log=lines.append)
    assert h.epoch == list(range(8))  # stopped after epoch 7, three epochs after the best
    assert lines[-1] == (
        "Stopping after epoch 7: no better evaluation accuracy in 3 epochs; "
        "best 70 / 100 at epoch 4"
    )
    # no stop while there is improvement
    scripted(monkeypatch, list(range(40, 50)))
    h = fit(build_network([4, 3], seed=0), (X, y), (X, y), epochs=10, early_stopping=1, log=None)
    assert len(h) == 10


def test_plateau_schedule_halves_then_stops_at_one_128th(monkeypatch):
    """Constant accuracy with N = 2: η halves after epochs 2, 4, 6, ..., and the seventh halving
    (after epoch 14) reaches η₀/128: stop.  An improvement restarts the count."""
    X, y, _ = small_problem(n=100)
    scripted(monkeypatch, [50] * 30)
    lines = []
    h = fit(
        build_network([4, 3], seed=0),
        (X, y),
        (X, y),
        epochs=30,
        lr=2.0,
        lr_schedule="plateau:2",
        log=lines.append,
    )
    assert h.epoch == list(range(15))
    assert h.lr == [2.0] * 3 + [2.0 / 2**j for j in range(1, 7) for _ in range(2)]
    assert "η halved to 1 (η₀/2)" in "\n".join(lines)
    assert lines[-1].startswith("Stopping after epoch 14: η has fallen to η₀/128; best 50 / 100")

    scripted(monkeypatch, [50, 50, 50, 60, 60, 60, 60])  # halve after 2; improve at 3; halve at 5
    h = fit(
        build_network([4, 3], seed=0),
        (X, y),
        (X, y),
        epochs=7,
        lr=1.0,
        lr_schedule="plateau:2",
        log=None,
    )
    assert h.lr == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]


def test_plateau_schedule_state_and_parsing():
    from tinygrad_sgd import optim

    p = nn.Parameter(np.zeros(2))
    opt = optim.SGD([p], lr=0.4)
    s = PlateauSchedule(opt, 1)
    for k in range(3):
        s.step(k, 0.5)
    assert s.halvings == 2 and opt.param_groups[0]["lr"] == 0.1
    opt2 = optim.SGD([p], lr=0.1)
    t = PlateauSchedule(opt2, 1)
    t.load_state_dict(s.state_dict())
    assert t.lr0 == [0.4] and t.halvings == 2 and t.watch.best == 0.5
    assert plateau_patience("constant") is None and plateau_patience("plateau:10") == 10
    for bad in ("plateau", "plateau:0", "plateau:-2", "plateau:x", "step:3", ""):
        with pytest.raises(ValueError, match="must be 'constant' or 'plateau:N' with N >= 1"):
            plateau_patience(bad)


def test_stopping_rules_need_an_evaluation_set():
    X, y, _ = small_problem()
    with pytest.raises(ValueError, match="need eval_data"):
        fit(build_network([4, 3], seed=0), (X, y), early_stopping=2, log=None)


# ------------------------------------------------------------------- gradient speeds


def test_gradient_speeds_are_the_norms_of_the_bias_gradients_by_hand():
    """‖∂C/∂bˡ‖ of each hidden layer, averaged over the epoch's mini-batches, each computed by
    BP1-BP3 at the weights before that mini-batch's step."""
    X, y, Y = small_problem(n=12)
    model = build_network([4, 5, 6, 3], seed=3, dtype=np.float64)
    ws, bs = weights_and_biases(model)
    lines = []
    h = fit(
        model,
        (X, y),
        epochs=1,
        lr=0.7,
        loader=DataLoader(X, Y, 4, shuffle=False),
        report_gradients=True,
        log=lines.append,
    )
    speeds = []
    for start in range(0, 12, 4):
        gw, gb = hand_backprop(ws, bs, X[start : start + 4], Y[start : start + 4])
        speeds.append([np.linalg.norm(g) for g in gb[:-1]])  # hidden layers only
        ws = [w - 0.7 * g for w, g in zip(ws, gw)]
        bs = [b - 0.7 * g for b, g in zip(bs, gb)]
    expected = np.mean(speeds, axis=0)
    assert len(h.gradient_speeds[0]) == 2
    np.testing.assert_allclose(h.gradient_speeds[0], expected, rtol=1e-12)
    assert any(ln.startswith("  speed of learning ‖∂C/∂bˡ‖ of the hidden layers: ") for ln in lines)
    # the helper on its own: one backward, then the norms
    model.zero_grad()
    nn.F.quadratic_cost(model(X), Y).backward()
    gw, gb = hand_backprop(*weights_and_biases(model), X, Y)
    np.testing.assert_allclose(
        gradient_speeds(model), [np.linalg.norm(g) for g in gb[:-1]], rtol=1e-12
    )


# ------------------------------------------------------------------- History


def test_history_network2_lists_and_old_dicts():
    h = History()
    h.append(0, 0.5, 0.4, 80, 100, 1.0, 0.5, 0.3, 900, 1000, [0.1, 0.2])
    h.append(1, 0.3, 0.2, 95, 100, 1.5, 0.25, 0.2, 950, 1000, [0.05, 0.1])
    assert History.from_dict(h.to_dict()) == h
    assert h.network2() == {
        "epoch": [0, 1],
        "evaluation_cost": [0.4, 0.2],
        "evaluation_accuracy": [0.8, 0.95],
        "training_cost": [0.3, 0.2],
        "training_accuracy": [0.9, 0.95],
        "learning_rate": [0.5, 0.25],
        "gradient_speeds": [[0.1, 0.2], [0.05, 0.1]],
    }
    old = {k: v for k, v in h.to_dict().items() if k in History._FIELDS}  # a first-format dict
    back = History.from_dict(old)
    assert back.correct == h.correct and back.train_total == [0, 0]
    n2 = back.network2()
    assert n2["training_accuracy"] == [None, None] and "gradient_speeds" not in n2
