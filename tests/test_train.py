"""The training loop against a hand-written NumPy version of the book's network.py, the
History, checkpoints and exact resumption, learning curves, and the default run's accuracy."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import nn
from tinygrad_sgd.data import DataLoader
from tinygrad_sgd.train import (
    History,
    TrainConfig,
    build_network,
    evaluate,
    fit,
    load_checkpoint,
    plot_history,
    train,
)
from tinygrad_sgd.train.run import CONFIG_FIELDS


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def book_sgd_epoch(weights, biases, X, y, m, eta, cost="quadratic", n_out=10):
    """One epoch of network.py's SGD over the examples in the given order, one example at a
    time with column vectors, exactly as the book writes it (BP1-BP4, then w -= η/m Σ ∇w)."""
    weights = [w.copy() for w in weights]
    biases = [b.copy() for b in biases]
    for start in range(0, len(X), m):
        batch = range(start, min(start + m, len(X)))
        nabla_w = [np.zeros_like(w) for w in weights]
        nabla_b = [np.zeros_like(b) for b in biases]
        for i in batch:
            a = X[i][:, None]
            target = np.zeros((n_out, 1))
            target[y[i]] = 1.0
            activations, zs = [a], []
            for w, b in zip(weights, biases):
                z = w @ a + b
                zs.append(z)
                a = sigmoid(z)
                activations.append(a)
            if cost == "quadratic":  # BP1: δ = (a − y) ⊙ σ'(z)
                delta = (activations[-1] - target) * sigmoid(zs[-1]) * (1 - sigmoid(zs[-1]))
            else:  # chapter 3, cross-entropy: δ = a − y
                delta = activations[-1] - target
            nabla_b[-1] += delta
            nabla_w[-1] += delta @ activations[-2].T
            for layer in range(2, len(weights) + 1):  # BP2
                sp = sigmoid(zs[-layer]) * (1 - sigmoid(zs[-layer]))
                delta = (weights[-layer + 1].T @ delta) * sp
                nabla_b[-layer] += delta  # BP3
                nabla_w[-layer] += delta @ activations[-layer - 1].T  # BP4
        k = len(batch)
        weights = [w - (eta / k) * nw for w, nw in zip(weights, nabla_w)]
        biases = [b - (eta / k) * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def _params(model):
    linears = [mod for mod in model if isinstance(mod, nn.Linear)]
    return [lin.weight.data.copy() for lin in linears], [
        lin.bias.data[:, None].copy() for lin in linears
    ]


def _toy(n=43, d=6, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(size=(classes, d))
    X = sigmoid(centres[y] * 2 + 0.5 * rng.normal(size=(n, d)))
    return X, y


@pytest.mark.parametrize("cost,eta", [("quadratic", 3.0), ("cross-entropy", 0.5)])
def test_fit_matches_the_books_network_py(cost, eta):
    """Two epochs of fit (last mini-batch smaller: 43 = 4*10 + 3) give the same weights as the
    book's per-example loop, to rounding."""
    X, y = _toy()
    model = build_network([6, 5, 4], seed=1, dtype=np.float64)
    w, b = _params(model)
    for _ in range(2):
        w, b = book_sgd_epoch(w, b, X, y, m=10, eta=eta, cost=cost, n_out=4)
    loader = DataLoader(X, nn.F.one_hot(y, 4), 10, shuffle=False)
    fit(model, (X, y), epochs=2, lr=eta, cost=cost, loader=loader, log=None)
    got_w, got_b = _params(model)
    for gw, ew in zip(got_w + got_b, w + b):
        np.testing.assert_allclose(gw, ew, rtol=1e-10, atol=1e-12)
    # and the run really moved the weights
    assert not np.allclose(_params(build_network([6, 5, 4], seed=1, dtype=np.float64))[0][0], w[0])


def test_build_network_structure_and_initialisation():
    net = build_network([400, 300, 10], init="standard", seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Linear", "Sigmoid", "Linear", "Sigmoid"]
    assert net[0].weight.shape == (300, 400) and net[2].weight.shape == (10, 300)
    assert all(p.dtype == np.float32 for p in net.parameters())
    w = net[0].weight.data
    assert abs(w.std() - 1.0) < 0.01 and abs(w.mean()) < 0.01  # N(0, 1): 120,000 draws
    scaled = build_network([400, 300, 10], init="scaled", seed=0, dtype=np.float64)
    ws = scaled[0].weight.data
    assert abs(ws.std() - 1 / np.sqrt(400)) < 0.001  # N(0, 1/n_in)
    assert abs(scaled[0].bias.data.std() - 1.0) < 0.15  # biases stay N(0, 1)
    assert scaled[0].weight.dtype == np.float64
    same = build_network([400, 300, 10], init="standard", seed=0)
    np.testing.assert_array_equal(same[2].weight.data, net[2].weight.data)
    with pytest.raises(ValueError, match="at least two positive"):
        build_network([5])
    with pytest.raises(ValueError, match="init must be one of"):
        build_network([5, 2], init="zeros")


def test_evaluate_counts_argmax_and_quadratic_cost():
    X, y = _toy(n=57)
    model = build_network([6, 7, 4], seed=3, dtype=np.float64)
    w, b = _params(model)
    a = sigmoid(w[1] @ sigmoid(w[0] @ X.T + b[0]) + b[1])  # outputs as columns
    Y = np.eye(4)[y].T
    correct, cost = evaluate(model, X, y, batch_size=10)
    assert correct == int((a.argmax(0) == y).sum())
    np.testing.assert_allclose(cost, 0.5 * ((a - Y) ** 2).sum() / len(y), rtol=1e-12)
    _, ce = evaluate(model, X, y, cost="cross-entropy")
    ref = -(Y * np.log(a) + (1 - Y) * np.log(1 - a)).sum() / len(y)
    np.testing.assert_allclose(ce, ref, rtol=1e-10)


def test_fit_learns_a_small_problem_and_logs_the_books_lines():
    X, y = _toy(n=400, seed=5)
    lines = []
    calls = []
    model = build_network([6, 12, 4], seed=0)
    h = fit(
        model,
        (X[:300], y[:300]),
        (X[300:], y[300:]),
        epochs=8,
        lr=3.0,
        seed=0,
        log=lines.append,
        on_epoch_end=lambda k, hist: calls.append((k, len(hist))),
    )
    assert calls == [(k, k + 1) for k in range(8)]
    assert len(lines) == 8
    for k, line in enumerate(lines):
        m = re.match(
            rf"Epoch {k}: (\d+) / 100 \(\d+\.\d\d%\)  train cost \d\.\d{{4}}, "
            r"eval cost \d\.\d{4}, \d+\.\d\d s$",
            line,
        )
        assert m, line
        assert int(m.group(1)) == h.correct[k]
    assert h.epoch == list(range(8)) and h.total == [100] * 8
    assert h.accuracy[-1] >= 0.9
    assert h.train_cost[-1] < h.train_cost[0]
    assert all(s > 0 for s in h.seconds)


def test_fit_and_train_are_silent_by_default_and_report_through_logging(capsys, caplog):
    """No print from the library: the epoch lines go to the logger tinygrad_sgd.train (which
    prints nothing unless the application configures logging)."""
    X, y = _toy(n=120, seed=1)
    caplog.set_level(logging.INFO, logger="tinygrad_sgd.train")
    fit(build_network([6, 5, 4], seed=0), (X[:100], y[:100]), (X[100:], y[100:]), epochs=2)
    assert capsys.readouterr() == ("", "")
    epochs = [r.getMessage() for r in caplog.records if r.name == "tinygrad_sgd.train"]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 0", "Epoch 1"]
    assert all(" / 20 (" in line for line in epochs)
    caplog.clear()
    train(epochs=1, hidden=(5,), seed=0)
    assert capsys.readouterr() == ("", "")
    lines = [r.getMessage() for r in caplog.records if r.name == "tinygrad_sgd.train"]
    assert any(line.startswith("Epoch 0: ") for line in lines) and len(lines) >= 2


def test_fit_without_eval_set_and_float32_throughout():
    X, y = _toy()
    model = build_network([6, 5, 4], seed=0)  # float32
    seen = []
    orig = nn.F.quadratic_cost

    def spy(a, Y):
        seen.append((a.dtype, Y.dtype))
        return orig(a, Y)

    nn.F.quadratic_cost, restore = spy, orig
    try:
        h = fit(model, (X, y), epochs=1, log=None)
    finally:
        nn.F.quadratic_cost = restore
    assert {d for pair in seen for d in pair} == {np.dtype(np.float32)}
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert h.total == [0] and np.isnan(h.accuracy[0]) and np.isnan(h.eval_cost[0])


def test_fit_rejects_bad_input():
    X, y = _toy()
    model = build_network([6, 5, 4], seed=0)
    with pytest.raises(ValueError, match="cost must be one of"):
        fit(model, (X, y), cost="hinge", log=None)
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        fit(model, (X, y + 1), log=None)
    with pytest.raises(TypeError, match="labels must be integers"):
        fit(model, (X, y.astype(float)), log=None)
    with pytest.raises(ValueError, match="train_data must be"):
        fit(model, (X, y[:-1]), log=None)
    bad = X.copy()
    bad[7, 2] = np.nan
    with pytest.raises(FloatingPointError, match="cost became nan in epoch 0"):
        fit(model, (bad, y), epochs=1, log=None, seed=0)


def test_history_roundtrip_best_and_repr():
    h = History()
    assert repr(h) == "History(0 epochs)"
    with pytest.raises(ValueError):
        h.best()
    h.append(0, 0.5, 0.4, 80, 100, 1.0)
    h.append(1, 0.3, 0.2, 95, 100, 1.5)
    h.append(2, 0.2, 0.25, 95, 100, 1.1)
    assert h.best() == 1 and h.accuracy == [0.8, 0.95, 0.95]
    assert History.from_dict(h.to_dict()) == h
    assert repr(h) == "History(3 epochs, last 95 / 100, best 95 / 100 at epoch 1)"
    with pytest.raises(ValueError, match="missing seconds"):
        History.from_dict({k: v for k, v in h.to_dict().items() if k != "seconds"})


def test_default_run_reaches_96_percent():
    """The acceptance figure: the book's [64, 30, 10], η = 3.0, m = 10, 30 epochs on the shipped
    digits reaches at least 96% on the 360 test digits (seed 0, the default)."""
    model, h = train(log=None, progress=False)
    assert len(h) == 30 and h.total[-1] == 360
    assert h.accuracy[-1] >= 0.96, h.accuracy
    # the README states the measured figure; it must be the one this run gives (within two
    # images: another BLAS may round float32 sums differently and flip a borderline image)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    m = re.search(r"default run ends at \*\*(\d+) / 360 =\s+(\d+\.\d+) %", readme)
    assert m, "README: the measured default-run figure is missing"
    assert abs(int(m.group(1)) - h.correct[-1]) <= 2
    assert float(m.group(2)) == round(100 * int(m.group(1)) / 360, 2) >= 96.0
    assert [p.shape for p in model.parameters()] == [(30, 64), (30,), (10, 30), (10,)]


def test_resume_reaches_exactly_the_uninterrupted_weights(tmp_path):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    m_full, h_full = train(epochs=4, seed=3, save=full, log=None)
    train(epochs=2, seed=3, save=part, log=None)
    lines = []
    m_res, h_res = train(epochs=4, resume=part, save=part, log=lines.append)
    assert any("Resuming from" in ln and "after epoch 1" in ln for ln in lines)
    assert [ln.split(":")[0] for ln in lines if ln.startswith("Epoch")] == ["Epoch 2", "Epoch 3"]
    for (name, a), (_, b) in zip(m_full.state_dict().items(), m_res.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert h_res.correct == h_full.correct and h_res.train_cost == h_full.train_cost
    ck_full, ck_part = tg.load(full), tg.load(part)
    for k in ck_full["model"]:
        np.testing.assert_array_equal(ck_full["model"][k].data, ck_part["model"][k].data)
    assert ck_full["shuffle_rng"] == ck_part["shuffle_rng"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_checkpoint_contents_and_load_checkpoint(tmp_path):
    path = tmp_path / "ck.npz"
    model, h = train(epochs=2, hidden=(12, 8), seed=1, save=path, log=None, dtype="float64")
    loaded, ck = load_checkpoint(path)
    assert ck["epoch"] == 1 and ck["config"] == TrainConfig(
        hidden=(12, 8), epochs=2, seed=1, dtype="float64"
    )
    assert ck["history"].correct == h.correct
    assert ck["optimizer"]["param_groups"][0]["lr"] == 3.0
    for (n1, a), (n2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert n1 == n2 and a.dtype == np.float64
        np.testing.assert_array_equal(a.data, b.data)
    (_, _), (X_test, y_test) = tg.data.load_digits()
    assert evaluate(loaded, X_test, y_test)[0] == h.correct[-1]
    tg.save({"model": model.state_dict()}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a tinygrad_sgd training checkpoint"):
        load_checkpoint(tmp_path / "other.npz")
    raw = tg.load(path)
    del raw["shuffle_rng"]
    tg.save(raw, tmp_path / "cut.npz")
    with pytest.raises(ValueError, match="damaged training checkpoint.*shuffle_rng"):
        load_checkpoint(tmp_path / "cut.npz")


def test_resume_refuses_a_changed_run(tmp_path):
    path = tmp_path / "ck.npz"
    train(epochs=1, save=path, log=None)
    with pytest.raises(ValueError, match="made with lr=3.0.*cannot change"):
        train(resume=path, epochs=2, lr=0.1, log=None)
    with pytest.raises(ValueError, match="hidden=\\[30\\]"):
        train(resume=path, hidden=(10,), log=None)


def test_config_validation():
    for bad, msg in [
        (dict(dataset="cifar"), "'dataset': expected one of digits, mnist, got 'cifar'"),
        (dict(eval_set="validation"), "only MNIST has a validation set"),
        (dict(lr=-1.0), "'lr': expected a finite number > 0, got -1.0"),
        (dict(hidden=(0,)), r"'hidden': layer sizes: expected an integer in \[1, 10\*\*9\)"),
        (dict(dtype="float16"), "'dtype': expected one of float32, float64"),
        (dict(epochs=10**9), r"'epochs': expected an integer in \[0, 10\*\*9\), got 1000000000"),
        (dict(seed=-1), "'seed': expected an integer >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=msg):
            train(log=None, **bad)
    for bad, msg in [
        (dict(seed="abc"), "'seed': expected an integer >= 0, got 'abc'"),
        (dict(batch_size="10"), r"'batch_size': expected an integer in \[1, 10\*\*9\)"),
        (dict(lr=True), "'lr': expected a finite number > 0, got True"),
        (dict(hidden=30), "'hidden': expected layer sizes"),
        # a misspelt field is not silently ignored: named, with what was meant and all accepted
        (dict(epoch=3), r"train: unknown keyword argument\(s\) 'epoch' \(did you mean 'epochs'"),
    ]:
        with pytest.raises(TypeError, match=msg):
            train(log=None, **bad)


def test_unknown_keywords_to_train_fit_and_build_network_name_the_accepted_ones():
    """Python's own TypeError names only the bad keyword; these name the closest accepted one
    and all of them (issue 19 item 2)."""
    X, y = np.zeros((4, 2)), np.zeros(4, dtype=np.int64)
    net = build_network([2, 2])
    calls = [
        ("train", lambda: train(log=None, lmbdaa=5.0), "lmbdaa", "lmbda", "resume"),
        ("fit", lambda: fit(net, (X, y), epoch=2, log=None), "epoch", "epochs", "early_stopping"),
        ("build_network", lambda: build_network([2, 2], intt="scaled"), "intt", "init", "arch"),
    ]
    for fn, call, bad, meant, other in calls:
        with pytest.raises(TypeError) as e:
            call()
        msg = str(e.value)
        assert msg.startswith(f"{fn}: unknown keyword argument(s) {bad!r}"), msg
        assert f"did you mean {meant!r}" in msg and other in msg.split("accepted: ")[1], msg
    with pytest.raises(TypeError, match=r"'bogus'; accepted: sizes, init"):
        build_network([2, 2], bogus=1)  # nothing close: no suggestion


def test_every_config_field_has_a_row_in_the_table():
    """TrainConfig's fields and CONFIG_FIELDS (their types and ranges) are the same names, in
    the same order, and each default passes its own check."""
    assert list(TrainConfig.__dataclass_fields__) == list(CONFIG_FIELDS)
    default = TrainConfig()
    for name, check in CONFIG_FIELDS.items():
        assert check(getattr(default, name)) == getattr(default, name), name


def test_cross_entropy_chapter3_settings_learn_the_digits():
    _, h = train(epochs=10, cost="cross-entropy", init="scaled", lr=0.5, log=None)
    assert h.accuracy[-1] >= 0.94


def test_plot_writes_a_png(tmp_path):
    h = History()
    for k in range(3):
        h.append(k, 1.0 / (k + 1), 0.5 / (k + 1), 50 + k, 60, 0.1)
    out = plot_history(h, tmp_path / "curves.png", title="t")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]


def test_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    lines = []
    with pytest.raises(ImportError, match=r"pip install 'tinygrad-sgd\[plot\]'"):
        train(epochs=1, plot=tmp_path / "c.png", log=lines.append)
    assert lines == []  # no time was spent training
    assert not (tmp_path / "c.png").exists()


def test_build_network_and_the_train_command_take_every_initialiser_of_the_layers():
    """One table (nn.layers.INITIALISERS) names the schemes; "xavier" and "he" are the normal
    variants (issue 19)."""
    from tinygrad_sgd.cli import build_parser
    from tinygrad_sgd.nn.layers import INITIALISERS
    from tinygrad_sgd.train import INITS

    assert set(INITS) == set(INITIALISERS) >= {"xavier", "he", "kaiming_uniform", "scaled"}
    for alias, name in (("xavier", "xavier_normal"), ("he", "kaiming_normal")):
        a = build_network([6, 5, 3], init=alias, seed=4)
        b = build_network([6, 5, 3], init=name, seed=4)
        for p, q in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p.data, q.data)
        args = build_parser().parse_args(["train", "--init", alias])
        assert args.init == alias
    w = build_network([400, 10], init="he", seed=0, dtype=np.float64)[0].weight.data
    assert abs(w.std() - np.sqrt(2 / 400)) < 0.005  # He: σ = √(2 / n_in); n = 4000 draws
    assert not build_network([400, 10], init="he", seed=0)[0].bias.data.any()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"cost": "cross-entropy", "lr": 0.5},
        {"dropout": 0.5},
        {"lmbda": 5.0, "report_gradients": True},
        {"momentum": 0.9},
    ],
)
def test_fit_compiled_ends_at_the_eager_weights_bit_for_bit(options):
    """fit's default compiled step against compile=False: 4 epochs of 43 examples in batches of
    10 (so the short last batch of 3 is recorded, verified and then replayed), same seeds."""
    X, y = _toy()
    runs = []
    for compile in (False, True):
        kw = dict(options)
        dropout = kw.pop("dropout", 0.0)
        momentum = kw.pop("momentum", 0.0)
        model = build_network([6, 5, 5, 4], seed=1, dtype=np.float64, dropout=dropout,
                              dropout_seed=3)  # fmt: skip
        opt = tg.optim.SGD(model.parameters(), lr=kw.pop("lr", 3.0), momentum=momentum)
        h = fit(model, (X, y), (X, y), epochs=4, batch_size=10, seed=2, optimizer=opt, log=None,
                compile=compile, **kw)  # fmt: skip
        runs.append((model, h))
    (m_eager, h_eager), (m_comp, h_comp) = runs
    for (name, a), (_, b) in zip(m_eager.state_dict().items(), m_comp.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert h_comp.train_cost == h_eager.train_cost and h_comp.correct == h_eager.correct
    assert h_comp.gradient_speeds == h_eager.gradient_speeds


def test_resume_of_a_compiled_run_equals_an_eager_run(tmp_path):
    part = tmp_path / "part.npz"
    m_eager, h_eager = train(epochs=3, seed=3, log=None, eager=True)
    train(epochs=1, seed=3, save=part, log=None)  # compiled (the default)
    m_res, h_res = train(epochs=3, resume=part, save=part, log=None)
    for (name, a), (_, b) in zip(m_eager.state_dict().items(), m_res.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert h_res.train_cost == h_eager.train_cost
