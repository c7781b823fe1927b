"""The book's chapter 3 and 5 experiments in the training loop: L2 and L1 steps against the
book's rules by hand, softmax with the log-likelihood, dropout in the network, early stopping and
the plateau schedule on scripted accuracies, the gradient speeds against ‖∂C/∂bˡ‖ by hand, and
network2's history lists."""

from __future__ import annotations

import dataclasses
import math
import re

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


# ------------------------------------------------------------------- the train command


from tinygrad_sgd import load as tg_load  # noqa: E402
from tinygrad_sgd.cli import main  # noqa: E402
from tinygrad_sgd.train import PRESETS, TrainConfig, load_checkpoint, train  # noqa: E402


def run_cli(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k].data, sb[k].data, err_msg=k)


RESUMABLE = [
    pytest.param(dict(lmbda=2.0), 4, 2, id="lmbda"),
    pytest.param(dict(l1=0.5), 4, 2, id="l1"),
    pytest.param(dict(output="softmax", cost="log-likelihood", lr=0.5), 4, 2, id="softmax"),
    pytest.param(dict(activation="relu", lr=0.5, init="scaled"), 4, 2, id="relu"),
    pytest.param(dict(activation="tanh", lr=0.5), 4, 2, id="tanh"),
    pytest.param(dict(dropout=0.3), 4, 2, id="dropout"),
    pytest.param(dict(report_gradients=True), 4, 2, id="report-gradients"),
    # hidden=(10,): the accuracy first fails to improve at epoch 6 (see the asserts below)
    pytest.param(dict(early_stopping=1, hidden=(10,)), 8, 6, id="early-stopping"),
    pytest.param(dict(early_stopping=1, hidden=(10,)), 8, 7, id="early-stopping-after-stop"),
    pytest.param(dict(lr_schedule="plateau:1", hidden=(10,)), 8, 7, id="plateau"),
]


@pytest.mark.parametrize("options, epochs, part", RESUMABLE)
def test_resume_with_each_option_ends_at_the_uninterrupted_weights(tmp_path, options, epochs, part):
    full, ck = tmp_path / "full.npz", tmp_path / "ck.npz"
    m_full, h_full = train(epochs=epochs, seed=5, save=full, log=None, **options)
    train(epochs=part, seed=5, save=ck, log=None, **options)
    lines = []
    m_res, h_res = train(resume=ck, epochs=epochs, save=ck, log=lines.append)
    assert_same_weights(m_full, m_res)
    assert h_res.correct == h_full.correct and h_res.lr == h_full.lr
    assert h_res.gradient_speeds == h_full.gradient_speeds
    saved = load_checkpoint(ck)[1]["config"]  # (a run that had stopped saves nothing more)
    assert dataclasses.replace(saved, epochs=epochs) == TrainConfig(
        epochs=epochs, seed=5, **options
    )
    if "early_stopping" in options:  # the run stops after epoch 6 in both
        assert len(h_full) == 7
        if part == 7:
            assert "The run had already stopped after epoch 6: nothing to train" in lines
            assert not any(ln.startswith("Epoch") for ln in lines)
    if "lr_schedule" in options:  # η was halved after epoch 6: the resumed epoch 7 keeps it
        assert h_full.lr[-1] == 1.5 and h_full.lr[-2] == 3.0
    if "dropout" in options:
        saved = tg_load(ck)["dropout_rng"]
        assert list(saved) == ["2"]
        assert saved == tg_load(full)["dropout_rng"]
    if options.get("report_gradients"):
        assert all(len(v) == 1 for v in h_full.gradient_speeds)


def test_a_changed_option_cannot_resume(tmp_path):
    ck = tmp_path / "ck.npz"
    train(epochs=1, dropout=0.2, save=ck, log=None)
    with pytest.raises(ValueError, match="made with dropout=0.2.*cannot change"):
        train(resume=ck, epochs=2, dropout=0.5, log=None)
    raw = tg_load(ck)
    del raw["dropout_rng"]
    from tinygrad_sgd import save as tg_save

    tg_save(raw, tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="damaged training checkpoint.*dropout_rng"):
        load_checkpoint(tmp_path / "cut.npz")


BAD_OPTIONS = [
    (["--lmbda", "-1"], "argument --lmbda: expected a finite number >= 0, got -1"),
    (["--lmbda", "nan"], "argument --lmbda: expected a finite number >= 0, got nan"),
    (["--lmbda", "big"], "argument --lmbda: expected a finite number >= 0, got 'big'"),
    (["--l1", "-0.5"], "argument --l1: expected a finite number >= 0, got -0.5"),
    (["--l1", "inf"], "argument --l1: expected a finite number >= 0, got inf"),
    (["--dropout", "1"], "argument --dropout: expected a finite number >= 0 and < 1, got 1.0"),
    (["--dropout", "-0.1"], "argument --dropout: expected a finite number >= 0 and < 1, got -0.1"),
    (
        ["--dropout", "half"],
        "argument --dropout: expected a finite number >= 0 and < 1, got 'half'",
    ),
    (["--early-stopping", "-1"], "argument --early-stopping: expected an integer in [0, 10**9)"),
    (["--early-stopping", "ten"], "argument --early-stopping: expected an integer in [0, 10**9)"),
    (["--lr-schedule", "plateau:0"], "argument --lr-schedule: expected 'constant' or 'plateau:N'"),
    (["--lr-schedule", "step"], "'plateau:N' with N an integer in [1, 10**9), got 'step'"),
    (["--output", "tanh"], "argument --output: invalid choice: 'tanh'"),
    (["--activation", "softplus"], "argument --activation: invalid choice: 'softplus'"),
    (["--preset", "ch9"], "argument --preset: invalid choice: 'ch9'"),
    (["--report-gradients=yes"], "argument --report-gradients: ignored explicit argument 'yes'"),
]


@pytest.mark.parametrize("argv, msg", BAD_OPTIONS)
def test_each_bad_option_is_a_one_line_error(capsys, argv, msg):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert msg in err
    assert len([ln for ln in err.splitlines() if "error:" in ln]) == 1


@pytest.mark.parametrize(
    "argv, msg",
    [
        (
            ["--output", "softmax", "--cost", "quadratic"],
            "error: the quadratic cost does not go with a softmax output; the pairs are: sigmoid "
            "output with quadratic or cross-entropy; softmax output with log-likelihood",
        ),
        (
            ["--cost", "log-likelihood", "--output", "sigmoid"],
            "error: the log-likelihood cost does not go with a sigmoid output",
        ),
        (["--dropout", "0.5", "--hidden", ""], "error: dropout acts on the hidden layers"),
        (
            ["--preset", "ch3-softmax", "--cost", "cross-entropy"],
            "error: the cross-entropy cost does not go with a softmax output",
        ),
    ],
)
def test_inconsistent_options_are_a_one_line_error_before_training(capsys, argv, msg):
    code, out, err = run_cli(capsys, "--epochs", "1", *argv)
    assert code == 1 and "Epoch" not in out
    assert err.startswith(msg) and err.count("\n") == 1


def test_softmax_and_log_likelihood_imply_each_other(capsys, tmp_path):
    for argv in (["--output", "softmax"], ["--cost", "log-likelihood"]):
        ck = tmp_path / "ck.npz"
        code, out, err = run_cli(capsys, "--epochs", "1", "--lr", "0.5", "--save", str(ck), *argv)
        assert code == 0, err
        assert "sigmoid hidden neurons and a softmax output layer, log-likelihood cost" in out
        cfg = tg_load(ck)["config"]
        assert (cfg["output"], cfg["cost"]) == ("softmax", "log-likelihood")


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_set_the_books_settings_and_explicit_options_win(capsys, tmp_path, name):
    ck = tmp_path / "ck.npz"
    code, out, err = run_cli(
        capsys, "--preset", name, "--epochs", "1", "--batch-size", "100", "--save", str(ck)
    )
    assert code == 0, err
    first = out.splitlines()[0]
    assert first.startswith(f"Preset {name}, {PRESETS[name].about}: ")
    assert "(given explicitly: --epochs 1, --batch-size 100)" in first
    cfg = tg_load(ck)["config"]
    for key, value in PRESETS[name].settings.items():
        if key not in ("epochs", "batch_size"):
            want = list(value) if isinstance(value, tuple) else value
            assert cfg[key] == want, key
    assert cfg["epochs"] == 1 and cfg["batch_size"] == 100


def test_preset_values_in_the_book():
    assert PRESETS["ch3-l2"].settings == dict(
        hidden=(30,),
        epochs=30,
        batch_size=10,
        lr=0.5,
        cost="cross-entropy",
        init="scaled",
        lmbda=0.14,  # the book's λ/n on the 1,437 digits
    )
    assert PRESETS["ch3-l2"].mnist == dict(lmbda=5.0)  # the book's own, for n = 50,000
    for name, preset in PRESETS.items():  # every λ keeps the book's λ/n on the digits
        if "lmbda" in preset.settings:
            book = preset.mnist["lmbda"]
            assert preset.settings["lmbda"] == pytest.approx(book * 1437 / 50000, rel=0.05), name
    assert PRESETS["ch1"].settings["lr"] == 3.0 and PRESETS["ch1"].settings["cost"] == "quadratic"
    assert PRESETS["ch5-deep"].settings["hidden"] == (30, 30, 30)
    assert PRESETS["ch5-deep"].settings["report_gradients"] is True


def test_history_json_report_gradients_and_plot(capsys, tmp_path):
    import json

    hist, png, ck = tmp_path / "h.json", tmp_path / "c.png", tmp_path / "ck.npz"
    argv = ["--hidden", "20,20", "--epochs", "2", "--report-gradients", "--history", str(hist)]
    code, out, err = run_cli(capsys, *argv, "--plot", str(png), "--save", str(ck))
    assert code == 0, err
    speed_lines = [ln for ln in out.splitlines() if ln.startswith("  speed of learning")]
    assert len(speed_lines) == 2
    lists = json.loads(hist.read_text())
    assert set(lists) == {
        "epoch",
        "evaluation_cost",
        "evaluation_accuracy",
        "training_cost",
        "training_accuracy",
        "learning_rate",
        "gradient_speeds",
    }
    correct = [int(ln.split(":")[1].split("/")[0]) for ln in out.splitlines() if ln[:6] == "Epoch "]
    assert lists["evaluation_accuracy"] == [c / 360 for c in correct]
    assert all(0 <= a <= 1 for a in lists["training_accuracy"]) and len(lists["epoch"]) == 2
    printed = [float(v) for v in speed_lines[-1].split(": ")[1].split(", ")]
    np.testing.assert_allclose(lists["gradient_speeds"][-1], printed, rtol=1e-2)
    assert png.read_bytes()[:4] == b"\x89PNG"
    # resuming with --history writes every epoch, the checkpoint's and the new ones
    code, out, err = run_cli(capsys, "--resume", str(ck), "--epochs", "3", "--history", str(hist))
    assert code == 0, err
    assert json.loads(hist.read_text())["epoch"] == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "ck.npz", "h.json"]


def test_readme_preset_table_lists_every_preset():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z0-9-]+)` \| `--", readme, re.M)
    assert listed == list(PRESETS)
    for name, preset in PRESETS.items():  # each row shows the preset's own values
        row = next(ln for ln in readme.splitlines() if ln.startswith(f"| `{name}` |"))
        for key, value in preset.settings.items():
            if key in ("epochs", "batch_size") and f"--{key.replace('_', '-')}" not in row:
                continue  # the book's 30 epochs and m = 10 may be said in words
            shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
            flag = "--" + key.replace("_", "-")
            assert (f"{flag} {shown}" if value is not True else flag) in row, (name, key)


@pytest.mark.parametrize("dropout", [0.0, 0.5])
@pytest.mark.parametrize("hidden", [[], [3], [3, 4, 5]])
@pytest.mark.parametrize("activation, output", [("sigmoid", "sigmoid"), ("relu", "softmax")])
def test_network_shapes_are_those_of_build_network(dropout, hidden, activation, output):
    """network_shapes (a checkpoint's weights are checked against it before building) names
    and sizes the arrays of build_network's state_dict, the dropout layers shifting the
    module numbers."""
    sizes = [2, *hidden, 6]
    model = build_network(sizes, activation=activation, output=output, dropout=dropout)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert loop_module.network_shapes(sizes, dropout=dropout) == shapes


@pytest.mark.parametrize("cost", ["cross-entropy", "quadratic"])
def test_fit_refuses_a_cost_that_does_not_fit_a_softmax_output(cost):
    # Issue 19, item 4: cross-entropy on a softmax network silently applied the sigmoid's formula
    # (and diverged to an infinite cost).
    net = build_network([4, 3, 2], output="softmax")
    X = np.zeros((6, 4))
    y = np.array([0, 1, 0, 1, 0, 1])
    with pytest.raises(ValueError, match=rf"the {cost} cost does not fit .*nn\.Softmax.*pairs"):
        fit(net, (X, y), epochs=1, cost=cost, log=None)
