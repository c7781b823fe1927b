"""A whole training run of the book's network, as ``python -m tinygrad_sgd train`` does it.

:func:`train` loads a data set, builds the network ``[n_in, *hidden, 10]`` and calls
:func:`~tinygrad_sgd.train.loop.fit`; after each epoch it can write a checkpoint (weights,
optimizer state, epoch, shuffling state, history and config) from which :func:`train` resumes
exactly, and at the end it can draw the learning curves (:func:`plot_history`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn, optim
from .._atomic import atomic_open
from ..data import DataLoader, load_digits, load_mnist
from ..serialization import load as _load
from ..serialization import save as _save
from .loop import COSTS, INITS, History, Split, build_network, fit

__all__ = ["DATASETS", "TrainConfig", "load_checkpoint", "plot_history", "train"]

DATASETS = ("digits", "mnist")
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


def _checkpoint(
    config: TrainConfig,
    epoch: int,
    model: nn.Module,
    optimizer: optim.Optimizer,
    loader: DataLoader,
    history: History,
) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "epoch": int(epoch),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "shuffle_rng": loader.rng.bit_generator.state,
        "history": history.to_dict(),
    }


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
        n_in = int(ck["model"]["0.weight"].shape[1])
        n_out = int(ck["model"][f"{2 * len(config.hidden)}.weight"].shape[0])
        model = build_network([n_in, *config.hidden, n_out], config.init, 0, config.dtype)
        model.load_state_dict(ck["model"])
        ck["config"] = config
        ck["history"] = History.from_dict(ck["history"])
        for key in ("epoch", "optimizer", "shuffle_rng"):
            ck[key]  # noqa: B018  (present, or KeyError below)
        # Everything resuming needs must load here, so a bad file is reported with its name.
        ck["epoch"] = int(ck["epoch"])
        np.random.PCG64().state = ck["shuffle_rng"]
        optim.SGD(model.parameters(), lr=config.lr).load_state_dict(ck["optimizer"])
    except (KeyError, TypeError, AttributeError) as e:
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
    """Learning curves as a PNG: accuracy (left) and cost (right) per epoch. Needs matplotlib.

    Written atomically (a temporary file beside ``path``, then renamed; see
    :mod:`tinygrad_sgd._atomic`).
    """
    _check_plot_available()
    # NOTE: a bare Figure (no pyplot) draws with Agg and leaves the user's backend alone.
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    target = Path(path)
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_open(target) as f:
        fig.savefig(f, format="png", dpi=100)
    return target


def train(
    config: TrainConfig | None = None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    save: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
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
    exactly that of an uninterrupted run. ``plot``: learning curves as a PNG at the end.
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
        model = build_network(sizes, cfg.init, init_rng, cfg.dtype)
    elif model.state_dict()["0.weight"].shape[1] != n_in:
        raise ValueError(f"--resume {resume}: the checkpoint's network does not fit {source}")
    opt = optim.SGD(model.parameters(), lr=cfg.lr)
    targets = nn.F.one_hot(train_set[1], n_out, dtype=train_set[0].dtype)
    loader = DataLoader(train_set[0], targets, cfg.batch_size, seed=shuffle_seed)
    if resume is not None:
        opt.load_state_dict(ck["optimizer"])
        loader.rng.bit_generator.state = ck["shuffle_rng"]

    if log is not None:
        eval_name = "validation" if cfg.eval_set == "validation" else "test"
        neurons = "sigmoid neurons"
        log(
            f"Network {sizes} of {neurons}, {cfg.cost} cost, {cfg.init} init, "
            f"η = {cfg.lr}, m = {cfg.batch_size}, {cfg.epochs} epochs, seed {cfg.seed}, "
            f"{cfg.dtype}"
        )
        log(
            f"Data: {source}: {len(train_set[1])} training images, "
            f"{len(eval_set[1])} {eval_name} images"
        )
        if start_epoch:
            log(f"Resuming from {resume} after epoch {start_epoch - 1}")

    def after_epoch(k: int, h: History) -> None:
        if save is not None:
            _save(_checkpoint(cfg, k, model, opt, loader, h), save)

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
        title = f"{cfg.dataset}: network {sizes}, {cfg.cost} cost, η = {cfg.lr}"
        plot_history(history, plot, title=title)
        if log is not None:
            log(f"Learning curves written to {plot}")
    return model, history
