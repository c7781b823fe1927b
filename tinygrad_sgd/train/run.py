"""A whole training run of the book's network, as ``python -m tinygrad_sgd train`` does it.

:func:`train` loads a data set, builds the network ``[n_in, *hidden, 10]`` and calls
:func:`~tinygrad_sgd.train.loop.fit`; after each epoch it can write a checkpoint (weights,
optimizer state, epoch, shuffling state, history and config) from which :func:`train` resumes
exactly, and at the end it can draw the learning curves (:func:`plot_history`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn, optim
from .._atomic import atomic_open
from ..data import DataLoader, load_digits, load_mnist
from ..serialization import load as _load
from ..serialization import save as _save
from .arch import parse_arch
from .loop import (
    ACTIVATIONS,
    COSTS,
    INITS,
    OUTPUTS,
    PAIRS,
    History,
    NoImprovement,
    PlateauSchedule,
    Split,
    build_network,
    fit,
    plateau_patience,
)

__all__ = [
    "DATASETS",
    "PRESETS",
    "Preset",
    "TrainConfig",
    "load_checkpoint",
    "plot_history",
    "train",
    "write_history_json",
]

DATASETS = ("digits", "mnist")
_INPUTS = {"digits": 64, "mnist": 784}  # pixels of an image of each data set
CHECKPOINT_FORMAT = "tinygrad_sgd.train/1"


@dataclass
class TrainConfig:
    """Everything that decides a run (what a checkpoint records to resume it exactly)."""

    dataset: str = "digits"
    hidden: tuple[int, ...] = (30,)
    epochs: int = 30
    batch_size: int = 10
    lr: float = 3.0
    cost: str = "quadratic"
    init: str = "standard"
    seed: int = 0
    dtype: str = "float32"
    eval_set: str = "test"
    # chapters 3 and 5 (off by default: the run above is chapter 1's)
    output: str = "sigmoid"
    activation: str = "sigmoid"
    lmbda: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0
    early_stopping: int = 0
    lr_schedule: str = "constant"
    report_gradients: bool = False
    # chapter 6: the hidden layers as a spec such as "conv20x5,pool2,fc100" ("": from hidden)
    arch: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        if "hidden" in known:
            known["hidden"] = tuple(int(h) for h in known["hidden"])
        return cls(**known)

    def validate(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        if self.cost not in COSTS:
            raise ValueError(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.eval_set not in ("test", "validation"):
            raise ValueError(f"eval_set must be 'test' or 'validation', got {self.eval_set!r}")
        if self.eval_set == "validation" and self.dataset != "mnist":
            raise ValueError("only MNIST has a validation set; the digits have train and test")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden layer sizes must be positive, got {list(self.hidden)}")
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError("epochs must be >= 0 and batch_size >= 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the learning rate must be a positive number, got {self.lr}")
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {self.output!r}")
        if self.cost not in PAIRS[self.output]:
            pairs = "; ".join(f"{o} output with {' or '.join(c)}" for o, c in PAIRS.items())
            raise ValueError(
                f"the {self.cost} cost does not go with a {self.output} output; the pairs are: "
                f"{pairs}"
            )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        for name in ("lmbda", "l1"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.arch:
            parse_arch(self.arch)
        elif self.dropout and not self.hidden:
            raise ValueError("dropout acts on the hidden layers: the network has none")
        if self.early_stopping < 0:
            raise ValueError(f"early_stopping must be 0 (off) or >= 1, got {self.early_stopping}")
        plateau_patience(self.lr_schedule)


@dataclass(frozen=True)
class Preset:
    """A named experiment of the book: the :class:`TrainConfig` fields it sets, what it shows,
    and the book's figure for it on MNIST (the test set unless it says otherwise)."""

    about: str
    settings: dict[str, Any]
    book: str
    #: the settings that differ on MNIST (``--dataset mnist``): the book's own network where
    #: ``settings`` has one scaled to the 8x8 digits
    mnist: dict[str, Any] = field(default_factory=dict)


#: The book's experiments, ``--preset NAME``; every one keeps the data set (the digits unless
#: ``--dataset mnist``; chapter 6's networks are scaled to the digits, the book's are in
#: ``Preset.mnist``).  The book's λ is for n = 50,000 training images: on the 1,437 digits
#: the same λ decays the weights 35 times as fast per example (λ/n).
PRESETS: dict[str, Preset] = {
    "ch1": Preset(
        "chapter 1: sigmoid neurons, quadratic cost (network.py)",
        dict(hidden=(30,), epochs=30, batch_size=10, lr=3.0, cost="quadratic", init="standard"),
        "95.42 % (peak, [784, 30, 10])",
    ),
    "ch3-cross-entropy": Preset(
        "chapter 3: the cross-entropy cost",
        dict(hidden=(30,), epochs=30, batch_size=10, lr=0.5, cost="cross-entropy", init="standard"),
        "95.49 % ([784, 30, 10])",
    ),
    "ch3-l2": Preset(
        "chapter 3: L2 regularisation with the scaled initialisation",
        dict(
            hidden=(30,),
            epochs=30,
            batch_size=10,
            lr=0.5,
            cost="cross-entropy",
            init="scaled",
            lmbda=5.0,
        ),
        "96.49 % ([784, 30, 10], λ = 5.0; just over 96 % with the scaled init)",
    ),
    "ch3-softmax": Preset(
        "chapter 3: a softmax output layer with the log-likelihood cost",
        dict(
            hidden=(100,),
            epochs=60,
            batch_size=10,
            lr=0.1,
            output="softmax",
            cost="log-likelihood",
            init="scaled",
        ),
        "97.80 % ([784, 100, 10], network3's fully connected baseline in chapter 6)",
    ),
    "ch3-dropout": Preset(
        "chapter 3: dropout (p = 0.5) on the hidden layer",
        dict(
            hidden=(100,),
            epochs=30,
            batch_size=10,
            lr=0.5,
            cost="cross-entropy",
            init="scaled",
            dropout=0.5,
        ),
        "none run with network2 (the book quotes 98.7 % from Hinton et al. 2012)",
    ),
    "ch5-deep": Preset(
        "chapter 5: three hidden layers and the speed of learning of each",
        dict(
            hidden=(30, 30, 30),
            epochs=30,
            batch_size=10,
            lr=0.1,
            cost="cross-entropy",
            init="scaled",
            lmbda=5.0,
            report_gradients=True,
        ),
        "96.57 % (validation set, [784, 30, 30, 30, 10], λ = 5.0)",
    ),
    # Chapter 6 (network3.py): on the digits 3x3 kernels where the book has 5x5 on MNIST's 28x28
    # (8 -> 6 -> 3 for one conv-pool layer; padded, 8 -> 8 -> 4 -> 4 -> 2, for two).
    "ch6-conv": Preset(
        "chapter 6: a convolutional-pooling layer, a fully connected layer and a softmax",
        dict(
            arch="conv20x3,pool2,fc100",
            epochs=60,
            batch_size=10,
            lr=0.1,
            output="softmax",
            cost="log-likelihood",
            init="scaled",
        ),
        "98.78 % (conv20x5,pool2,fc100)",
        mnist=dict(arch="conv20x5,pool2,fc100"),
    ),
    "ch6-conv2": Preset(
        "chapter 6: two convolutional-pooling layers (20 and 40 feature maps)",
        dict(
            arch="conv20x3p1,pool2,conv40x3p1,pool2,fc100",
            epochs=60,
            batch_size=10,
            lr=0.1,
            output="softmax",
            cost="log-likelihood",
            init="scaled",
        ),
        "99.06 % (conv20x5,pool2,conv40x5,pool2,fc100)",
        mnist=dict(arch="conv20x5,pool2,conv40x5,pool2,fc100"),
    ),
    "ch6-relu": Preset(
        "chapter 6: two convolutional-pooling layers of rectified linear units, L2",
        dict(
            arch="conv20x3p1,pool2,conv40x3p1,pool2,fc100",
            epochs=60,
            batch_size=10,
            lr=0.03,
            output="softmax",
            cost="log-likelihood",
            init="scaled",
            activation="relu",
            lmbda=0.1,
        ),
        "99.23 % (conv20x5,pool2,conv40x5,pool2,fc100, λ = 0.1)",
        mnist=dict(arch="conv20x5,pool2,conv40x5,pool2,fc100"),
    ),
    "ch6-dropout": Preset(
        "chapter 6: two fully connected layers with dropout (p = 0.5) above the conv layers",
        dict(
            arch="conv20x3p1,pool2,conv40x3p1,pool2,fc100,fc100",
            epochs=40,
            batch_size=10,
            lr=0.03,
            output="softmax",
            cost="log-likelihood",
            init="scaled",
            activation="relu",
            dropout=0.5,
        ),
        "99.60 % (conv20x5,pool2,conv40x5,pool2,fc1000,fc1000, on the expanded training data)",
        mnist=dict(arch="conv20x5,pool2,conv40x5,pool2,fc1000,fc1000"),
    ),
}


def _load_dataset(
    config: TrainConfig,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    validation_size: int = 10_000,
) -> tuple[Split, Split, str]:
    """(train, eval, description) for the config's data set, in the config's dtype."""
    dt = np.dtype(config.dtype)
    if config.dataset == "digits":
        train_set, test_set = load_digits(dtype=dt)
        return train_set, test_set, "the 8x8 digits shipped in the package"
    train_set, validation, test_set = load_mnist(
        data_dir, download=download, dtype=dt, validation_size=validation_size
    )
    ev = test_set if config.eval_set == "test" else validation
    return train_set, ev, "MNIST"


def _rng_seeds(seed: int) -> tuple[np.random.Generator, int]:
    """Two independent streams from one seed: the initial weights and the shuffling."""
    init_ss, shuffle_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(init_ss), int(shuffle_ss.generate_state(1)[0])


def _dropout_seed(seed: int) -> np.random.SeedSequence:
    """The third stream of the run's seed (after :func:`_rng_seeds`' two): the dropout masks."""
    return np.random.SeedSequence(seed, spawn_key=(2,))


def _network(config: TrainConfig, n_in: int, n_out: int, init_rng: Any) -> nn.Sequential:
    """The run's network ``[n_in, *hidden, n_out]`` (or ``arch``'s) as the config describes it."""
    return build_network(
        [n_in, n_out] if config.arch else [n_in, *config.hidden, n_out],
        config.init,
        init_rng,
        config.dtype,
        activation=config.activation,
        output=config.output,
        dropout=config.dropout,
        dropout_seed=_dropout_seed(config.seed),
        arch=config.arch or None,
    )


def _dropout_layers(model: nn.Module) -> dict[str, nn.Dropout]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.Dropout)}


def _rules(
    config: TrainConfig, optimizer: optim.Optimizer
) -> tuple[NoImprovement | None, PlateauSchedule | None]:
    """The run's early-stopping rule and learning-rate schedule (None where off)."""
    stopping = NoImprovement(config.early_stopping) if config.early_stopping else None
    patience = plateau_patience(config.lr_schedule)
    schedule = PlateauSchedule(optimizer, patience) if patience is not None else None
    return stopping, schedule


def _checkpoint(
    config: TrainConfig,
    epoch: int,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    history: History,
    stopping: NoImprovement | None = None,
    schedule: PlateauSchedule | None = None,
) -> dict[str, Any]:
    ck = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffle_rng": loader.rng.bit_generator.state,
        "history": history.to_dict(),
    }
    # What chapters 3 and 5 add, only when on (so chapter 1's checkpoints stay as they were).
    drops = _dropout_layers(model)
    if drops:
        ck["dropout_rng"] = {name: m.generator.bit_generator.state for name, m in drops.items()}
    if stopping is not None:
        ck["early_stopping"] = stopping.state_dict()
    if schedule is not None:
        ck["lr_schedule"] = schedule.state_dict()
    return ck


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Sequential, dict[str, Any]]:
    """(model, checkpoint dict) from a file written by ``train(save=...)`` / ``--save``.

    The model is rebuilt from the recorded configuration and its weights loaded; the dict holds
    ``config`` (a :class:`TrainConfig`), ``epoch`` (the last completed epoch), ``history`` (a
    :class:`History`), ``optimizer`` and ``shuffle_rng`` (the states needed to resume).
    """
    ck = _load(path)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a tinygrad_sgd training checkpoint")
    try:
        config = TrainConfig.from_dict(ck["config"])
        layers = sorted(
            (int(k.split(".")[0]), v) for k, v in ck["model"].items() if k.endswith(".weight")
        )
        n_in, n_out = int(layers[0][1].shape[1]), int(layers[-1][1].shape[0])
        if config.arch:  # a conv layer's weight does not say the image size: the data set does
            n_in = _INPUTS[config.dataset]
        model = _network(config, n_in, n_out, 0)
        model.load_state_dict(ck["model"])
        ck["config"] = config
        ck["history"] = History.from_dict(ck["history"])
        for key in ("epoch", "optimizer", "shuffle_rng"):
            ck[key]  # noqa: B018  (present, or KeyError below)
        # Everything resuming needs must load here, so a bad file is reported with its name.
        ck["epoch"] = int(ck["epoch"])
        np.random.PCG64().state = ck["shuffle_rng"]
        opt = optim.SGD(model.parameters(), lr=config.lr)
        opt.load_state_dict(ck["optimizer"])
        drops = _dropout_layers(model)
        if drops:
            if sorted(ck["dropout_rng"]) != sorted(drops):
                raise ValueError("the dropout generators do not match the network's layers")
            for name, m in drops.items():
                m.generator.bit_generator.state = ck["dropout_rng"][name]
        stopping, schedule = _rules(config, opt)
        if stopping is not None:
            stopping.load_state_dict(ck["early_stopping"])
        if schedule is not None:
            schedule.load_state_dict(ck["lr_schedule"])
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(f"{path}: damaged training checkpoint (missing or wrong {e})") from None
    except ValueError as e:
        raise ValueError(f"{path}: damaged or mismatched training checkpoint: {e}") from None
    return model, ck


def _check_plot_available() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            "--plot needs matplotlib, which is an optional extra: "
            "pip install 'tinygrad-sgd[plot]'  (or: pip install matplotlib)"
        ) from None


def plot_history(history: History, path: str | os.PathLike[str], title: str = "") -> Path:
    """Learning curves as a PNG: accuracy (left) and cost (right) per epoch, and when the
    history has them, the gradient speeds ‖∂C/∂bˡ‖ of the hidden layers (a third panel, log
    scale: chapter 5's figure). Needs matplotlib.

    Written atomically (a temporary file beside ``path``, then renamed; see
    :mod:`tinygrad_sgd._atomic`).
    """
    _check_plot_available()
    # NOTE: a bare Figure (no pyplot) draws with Agg and leaves the user's backend alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    target = Path(path)
    speeds = [(k, v) for k, v in zip(history.epoch, history.gradient_speeds) if v]
    fig = Figure(figsize=(15 if speeds else 10, 4))
    axes = fig.subplots(1, 3 if speeds else 2)
    ax1, ax2 = axes[0], axes[1]
    ax1.plot(history.epoch, [100 * a for a in history.accuracy], marker="o", ms=3)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("accuracy (%)")
    ax1.set_title("classification accuracy")
    ax1.grid(alpha=0.3)
    ax2.plot(history.epoch, history.train_cost, marker="o", ms=3, label="training (during epoch)")
    if not all(math.isnan(c) for c in history.eval_cost):
        ax2.plot(history.epoch, history.eval_cost, marker="o", ms=3, label="evaluation set")
    ax2.set_xlabel("epoch")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_ylabel("cost")
    ax2.set_title("cost")
    ax2.legend()
    ax2.grid(alpha=0.3)
    if speeds:
        ax3 = axes[2]
        for layer in range(len(speeds[0][1])):
            ax3.plot(
                [k for k, _ in speeds],
                [v[layer] for _, v in speeds],
                marker="o",
                ms=3,
                label=f"hidden layer {layer + 1}",
            )
        ax3.set_yscale("log")
        ax3.set_xlabel("epoch")
        ax3.set_ylabel("‖∂C/∂bˡ‖ (mean over mini-batches)")
        ax3.set_title("speed of learning")
        ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax3.legend()
        ax3.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(target) as f:
        fig.savefig(f, format="png", dpi=100)
    return target


def write_history_json(history: History, path: str | os.PathLike[str]) -> Path:
    """network2's lists (:meth:`History.network2`) as a JSON file, written atomically."""
    target = Path(path)
    lists = history.network2()
    text = (
        "{\n"
        + ",\n".join(
            f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in lists.items()
        )
        + "\n}\n"
    )
    with atomic_open(target) as f:
        f.write(text.encode("utf-8"))
    return target


def train(
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    save: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
    history_path: str | os.PathLike[str] | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
    validation_size: int = 10_000,
    **overrides: Any,
) -> tuple[nn.Sequential, History]:
    """Train the book's network on a data set, as ``python -m tinygrad_sgd train`` does.

    ``config`` (or keyword ``overrides`` of :class:`TrainConfig`'s fields, e.g.
    ``train(dataset="digits", epochs=5, seed=1)``) chooses the data set, hidden layers, epochs,
    m, η, cost, initialisation, seed and dtype. The network is ``[n_in, *hidden, 10]`` with n_in
    from the data (64 for the digits, 784 for MNIST). ``save``: write a checkpoint after each
    epoch (atomically): weights, optimizer state, epoch, shuffling state, history and config.
    ``resume``: continue such a checkpoint up to ``config.epochs`` epochs in total; the result is
    exactly that of an uninterrupted run. ``plot``: learning curves as a PNG at the end (and
    the gradient speeds with ``report_gradients``). ``history_path``: after each epoch, write
    (atomically) a JSON file of network2's lists (:meth:`History.network2`); the training set is
    then evaluated after each epoch too.
    ``data_dir``, ``download`` and ``validation_size`` go to :func:`~tinygrad_sgd.data.load_mnist`.
    Returns ``(model, history)``.
    """
    if plot is not None:
        _check_plot_available()
    start_epoch = 0
    history = History()
    if resume is not None:
        model, ck = load_checkpoint(resume)
        saved: TrainConfig = ck["config"]
        requested = config.to_dict() if config is not None else {}
        requested.update({k: list(v) if k == "hidden" else v for k, v in overrides.items()})
        have = saved.to_dict()
        clash = [k for k, v in requested.items() if k != "epochs" and have.get(k) != v]
        if clash:
            raise ValueError(
                f"--resume {resume}: the checkpoint was made with "
                + ", ".join(f"{k}={have[k]!r}" for k in clash)
                + "; resuming continues that run, so these cannot change"
            )
        cfg = TrainConfig.from_dict({**have, "epochs": requested.get("epochs", saved.epochs)})
        start_epoch = int(ck["epoch"]) + 1
        history = ck["history"]
    else:
        cfg = config if config is not None else TrainConfig()
        cfg = TrainConfig.from_dict({**cfg.to_dict(), **overrides})
    cfg.validate()

    train_set, eval_set, source = _load_dataset(cfg, data_dir, download, validation_size)
    n_in = train_set[0].shape[1]
    n_out = 10
    sizes = [n_in, *cfg.hidden, n_out]
    init_rng, shuffle_seed = _rng_seeds(cfg.seed)
    if resume is None:
        model = _network(cfg, n_in, n_out, init_rng)
    elif not cfg.arch and model.state_dict()["0.weight"].shape[1] != n_in:
        raise ValueError(f"--resume {resume}: the checkpoint's network does not fit {source}")
    opt = optim.SGD(model.parameters(), lr=cfg.lr)
    targets = nn.F.one_hot(train_set[1], n_out, dtype=train_set[0].dtype)
    loader = DataLoader(train_set[0], targets, cfg.batch_size, seed=shuffle_seed)
    stopping, schedule = _rules(cfg, opt)
    if resume is not None:
        opt.load_state_dict(ck["optimizer"])
        loader.rng.bit_generator.state = ck["shuffle_rng"]
        if stopping is not None:
            stopping.load_state_dict(ck["early_stopping"])
        if schedule is not None:
            schedule.load_state_dict(ck["lr_schedule"])

    if log is not None:
        eval_name = "validation" if cfg.eval_set == "validation" else "test"
        neurons = (
            "sigmoid neurons"
            if cfg.activation == cfg.output == "sigmoid"
            else f"{cfg.activation} hidden neurons and a {cfg.output} output layer"
        )
        shown = f"[{n_in}, {cfg.arch}, {n_out}]" if cfg.arch else str(sizes)
        log(
            f"Network {shown} of {neurons}, {cfg.cost} cost, {cfg.init} init, "
            f"η = {cfg.lr}, m = {cfg.batch_size}, {cfg.epochs} epochs, seed {cfg.seed}, "
            f"{cfg.dtype}"
        )
        extras = [
            f"L2 λ = {cfg.lmbda}" if cfg.lmbda else "",
            f"L1 λ = {cfg.l1}" if cfg.l1 else "",
            f"dropout p = {cfg.dropout} on the hidden layers" if cfg.dropout else "",
            f"early stopping after {cfg.early_stopping} epochs without improvement"
            if cfg.early_stopping
            else "",
            f"η schedule {cfg.lr_schedule} (halve η, stop at η₀/128)" if schedule else "",
            "gradient speeds reported" if cfg.report_gradients else "",
        ]
        if any(extras):
            log("With " + ", ".join(e for e in extras if e))
        log(
            f"Data: {source}: {len(train_set[1])} training images, "
            f"{len(eval_set[1])} {eval_name} images"
        )
        if start_epoch:
            log(f"Resuming from {resume} after epoch {start_epoch - 1}")

    def after_epoch(k: int, h: History) -> None:
        if save is not None:
            _save(_checkpoint(cfg, k, model, opt, loader, h, stopping, schedule), save)
        if history_path is not None:
            write_history_json(h, history_path)

    history = fit(
        model,
        train_set,
        eval_set,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        cost=cfg.cost,
        optimizer=opt,
        loader=loader,
        start_epoch=start_epoch,
        history=history,
        on_epoch_end=after_epoch,
        log=log,
        progress=progress,
        lmbda=cfg.lmbda,
        l1=cfg.l1,
        early_stopping=stopping,
        lr_schedule=schedule,
        report_gradients=cfg.report_gradients,
        monitor_training=history_path is not None,
    )
    if log is not None and len(history):
        k = history.best()
        i = history.epoch.index(k)
        log(
            f"Best: {history.correct[i]} / {history.total[i]} "
            f"({100 * history.accuracy[i]:.2f}%) at epoch {k}; "
            f"total {sum(history.seconds):.1f} s"
        )
    if plot is not None and len(history):
        title = f"{cfg.dataset}: network {cfg.arch or sizes}, {cfg.cost} cost, η = {cfg.lr}"
        if cfg.lmbda:
            title += f", λ = {cfg.lmbda}"
        if cfg.dropout:
            title += f", dropout {cfg.dropout}"
        plot_history(history, plot, title=title)
        if log is not None:
            log(f"Learning curves written to {plot}")
    return model, history
