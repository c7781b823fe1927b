"""The book's training loop: mini-batch stochastic gradient descent, epoch after epoch.

Chapter 1 of *Neural Networks and Deep Learning* trains a network of sigmoid neurons,

    a¹ = x,   zˡ = wˡ aˡ⁻¹ + bˡ,   aˡ = σ(zˡ)   (l = 2 .. L),

on the quadratic cost C = 1/2n Σ_x ‖y(x) − aᴸ(x)‖², with this loop (``network.py``'s ``SGD``):

1. shuffle the n training examples;
2. cut them into mini-batches of m;
3. for each mini-batch, one gradient step  w → w − η ∂C/∂w,  b → b − η ∂C/∂b  with C the
   cost averaged over the mini-batch (backpropagation gives the gradient);
4. after every epoch, count the test images classified correctly (the output neuron with the
   largest activation is the answer) and print ``Epoch k: correct / total``.

:func:`fit` is that loop for any model, :func:`train` builds the book's network on a data set and
calls it (what ``python -m tinygrad_sgd train`` does), and :class:`History` records every epoch.

Chapter 3 replaces the cost by the cross-entropy C = −1/n Σ_x Σ_j [y_j ln a_j + (1 − y_j)
ln(1 − a_j)] (``cost="cross-entropy"``), whose output error δᴸ = aᴸ − y has no σ'(z) factor and
so does not learn slowly when the output neurons saturate, and initialises the weights from
N(0, 1/n_in) (``init="scaled"``); the book uses η = 0.5 there.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import nn, optim
from .autograd import no_grad
from .data import DataLoader, load_digits, load_mnist
from .data.mnist import DatasetError, DownloadError, MNISTNotFoundError
from .serialization import load as _load
from .serialization import save as _save
from .tensor import Tensor

__all__ = [
    "COSTS",
    "History",
    "TrainConfig",
    "add_arguments",
    "build_network",
    "evaluate",
    "fit",
    "load_checkpoint",
    "plot_history",
    "run_command",
    "train",
]

COSTS = ("quadratic", "cross-entropy")
INITS = ("standard", "scaled")
DATASETS = ("digits", "mnist")
CHECKPOINT_FORMAT = "tinygrad_sgd.train/1"

Split = tuple[np.ndarray, np.ndarray]


# ------------------------------------------------------------------------------------ history


@dataclass
class History:
    """What each epoch gave: lists indexed by epoch (``epoch[i]`` is the epoch number k).

    - ``train_cost``: the mean cost over the epoch's mini-batches (weighted by their sizes),
      measured while training, so it mixes the weights of the whole epoch;
    - ``eval_cost``: the cost on the evaluation set after the epoch (NaN without one);
    - ``correct`` / ``total``: evaluation images classified correctly, out of how many;
    - ``seconds``: wall-clock time of the epoch (training pass and evaluation).
    """

    epoch: list[int] = field(default_factory=list)
    train_cost: list[float] = field(default_factory=list)
    eval_cost: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)
    total: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def accuracy(self) -> list[float]:
        """correct / total for each epoch (NaN without an evaluation set)."""
        return [c / t if t else math.nan for c, t in zip(self.correct, self.total)]

    def append(
        self,
        epoch: int,
        train_cost: float,
        eval_cost: float,
        correct: int,
        total: int,
        seconds: float,
    ) -> None:
        self.epoch.append(int(epoch))
        self.train_cost.append(float(train_cost))
        self.eval_cost.append(float(eval_cost))
        self.correct.append(int(correct))
        self.total.append(int(total))
        self.seconds.append(float(seconds))

    def best(self) -> int:
        """The epoch number with the highest accuracy (the first of ties)."""
        if not self.epoch:
            raise ValueError("History.best: no epochs recorded")
        return self.epoch[int(np.argmax(self.correct))]

    def to_dict(self) -> dict[str, list[Any]]:
        return {k: list(getattr(self, k)) for k in self._FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        missing = [k for k in cls._FIELDS if k not in d]
        if missing:
            raise ValueError(f"History.from_dict: missing {', '.join(missing)}")
        h = cls()
        for values in zip(*(d[k] for k in cls._FIELDS)):
            h.append(*values)
        return h

    _FIELDS = ("epoch", "train_cost", "eval_cost", "correct", "total", "seconds")

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(0 epochs)"
        k = self.best()
        i = self.epoch.index(k)
        return (
            f"History({len(self)} epochs, last {self.correct[-1]} / {self.total[-1]}, "
            f"best {self.correct[i]} / {self.total[i]} at epoch {k})"
        )


# ----------------------------------------------------------------------------------- network


def build_network(
    sizes: Sequence[int],
    init: str = "standard",
    seed: int | np.random.Generator | None = None,
    dtype: Any = np.float32,
) -> nn.Sequential:
    """The book's network ``Network(sizes)``: Linear layers each followed by a sigmoid.

    ``sizes = [784, 30, 10]`` gives ``Sequential(Linear(784, 30), Sigmoid(), Linear(30, 10),
    Sigmoid())``. ``init="standard"`` draws every weight and bias from N(0, 1) (chapter 1);
    ``"scaled"`` draws weights from N(0, 1/n_in) and biases from N(0, 1) (chapter 3).
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"build_network: need at least two positive layer sizes, got {sizes}")
    if init not in INITS:
        raise ValueError(f"build_network: init must be one of {', '.join(INITS)}, got {init!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out, init=init, seed=rng, dtype=dtype), nn.Sigmoid()]
    return nn.Sequential(*layers)


def _cost_function(model: nn.Module, cost: str) -> Callable[[Any, Tensor], Tensor]:
    """C(x, Y) for a batch of inputs x and one-hot targets Y, averaged over the batch.

    For the cross-entropy on a network that ends in a sigmoid, the cost is computed from the
    last layer's z (softplus(z) − y z = −[y ln σ(z) + (1 − y) ln(1 − σ(z))]), which stays finite
    where σ(z) rounds to exactly 0 or 1 in float32.
    """
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; use one of {', '.join(COSTS)}")
    if cost == "quadratic":
        return lambda x, Y: nn.F.quadratic_cost(model(x), Y)
    if isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Sigmoid):
        body = model[:-1]

        def from_logits(x: Any, Y: Tensor) -> Tensor:
            z = body(x)
            per_neuron = nn.F.binary_cross_entropy_with_logits(z, Y, reduction="sum")
            return per_neuron * (1.0 / len(z))

        return from_logits
    return lambda x, Y: nn.F.cross_entropy_cost(model(x), Y)


def evaluate(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    cost: str = "quadratic",
    batch_size: int = 1000,
) -> tuple[int, float]:
    """(number classified correctly, mean cost) of ``model`` on inputs ``X``, labels ``y``.

    The answer for an input is the output neuron with the largest activation (the book's
    ``np.argmax(self.feedforward(x))``). Runs without recording a graph, ``batch_size`` rows at
    a time.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"evaluate: {len(X)} inputs but {len(y)} labels")
    cost_fn = _cost_function(model, cost)
    correct = 0
    total_cost = 0.0
    with no_grad():
        for start in range(0, len(X), batch_size):
            xb = Tensor(X[start : start + batch_size])
            out = model(xb)
            n_out = out.shape[-1]
            Y = Tensor(nn.F.one_hot(y[start : start + batch_size], n_out, dtype=out.dtype))
            correct += int((out.data.argmax(axis=1) == y[start : start + batch_size]).sum())
            total_cost += cost_fn(xb, Y).item() * len(xb)
    return correct, (total_cost / len(X) if len(X) else math.nan)


class _Progress:
    """A one-line progress bar on stderr, redrawn at most every 0.1 s; silent when disabled."""

    def __init__(self, total: int, label: str, enabled: bool, stream: TextIO | None = None):
        self.total = total
        self.label = label
        self.enabled = enabled and total > 0
        self.stream = stream if stream is not None else sys.stderr
        self.last = 0.0
        self.width = 0

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        filled = 30 * done // self.total
        text = f"  {self.label} [{'=' * filled}{' ' * (30 - filled)}] {done}/{self.total}"
        self.width = max(self.width, len(text))
        self.stream.write("\r" + text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def fit(
    model: nn.Module,
    train_data: Split,
    eval_data: Split | None = None,
    *,
    epochs: int = 30,
    batch_size: int = 10,
    lr: float = 3.0,
    cost: str = "quadratic",
    optimizer: optim.Optimizer | None = None,
    loader: DataLoader | None = None,
    seed: int | None = None,
    start_epoch: int = 0,
    history: History | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
    log: Callable[[str], None] | None = print,
    progress: bool | None = None,
) -> History:
    """Train ``model`` with the book's mini-batch SGD; return the :class:`History`.

    ``train_data = (X, y)``: inputs as rows and integer labels 0..k−1 (k = the model's outputs);
    the targets are the one-hot vectors y(x) (the book's ``vectorized_result``). Each epoch the
    training set is shuffled and cut into mini-batches of ``batch_size`` (m); each mini-batch
    takes one ``optimizer`` step (default ``optim.SGD(model.parameters(), lr)``: w → w − η ∂C/∂w
    with C averaged over the mini-batch). After each epoch the model is evaluated on
    ``eval_data`` and ``log`` (``print`` by default; ``None`` for silence) gets the book's line
    ``Epoch k: correct / total`` followed by the costs and seconds.

    ``cost``: ``"quadratic"`` (C = 1/2n Σ ‖y − a‖²) or ``"cross-entropy"`` (chapter 3).
    ``seed`` seeds the shuffling; or pass a ``loader`` over ``(X, one-hot Y)`` (in the model's
    dtype), e.g. one whose generator state was restored from a checkpoint. Epochs are numbered
    from ``start_epoch`` to ``epochs − 1``, appending to ``history``; ``on_epoch_end(k, history)``
    runs after each (e.g. to save a checkpoint).
    ``progress``: a progress bar on stderr during each epoch (default: when stderr is a terminal).
    """
    if cost not in COSTS:
        raise ValueError(f"fit: cost must be one of {', '.join(COSTS)}, got {cost!r}")
    X, y = (np.asarray(a) for a in train_data)
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            "fit: train_data must be (X of shape (n, d), y of shape (n,)), "
            f"got {X.shape}, {y.shape}"
        )
    if y.dtype.kind not in "iu":
        raise TypeError(f"fit: labels must be integers, got dtype {y.dtype}")
    params = list(model.parameters())
    if not params:
        raise ValueError("fit: the model has no parameters to train")
    dtype = params[0].dtype
    with no_grad():
        n_out = model(Tensor(X[:1].astype(dtype))).shape[-1]
    if len(y) and (y.min() < 0 or y.max() >= n_out):
        raise ValueError(f"fit: labels must lie in 0..{n_out - 1} for a model with {n_out} outputs")
    X = X.astype(dtype, copy=False)
    if eval_data is not None:
        X_eval = np.asarray(eval_data[0]).astype(dtype, copy=False)
        y_eval = np.asarray(eval_data[1])
    if optimizer is None:
        optimizer = optim.SGD(params, lr=lr)
    if loader is None:
        Y = nn.F.one_hot(y, n_out, dtype=dtype)
        loader = DataLoader(X, Y, batch_size, shuffle=True, seed=seed)
    elif len(loader.X) != len(X) or loader.y.shape != (len(X), n_out):
        raise ValueError(
            f"fit: the loader must hold the {len(X)} training inputs and their one-hot targets "
            f"of {n_out} columns; it holds {loader.X.shape}, {loader.y.shape}"
        )
    if history is None:
        history = History()
    show = sys.stderr.isatty() if progress is None else progress
    cost_fn = _cost_function(model, cost)
    n_batches = len(loader)

    for k in range(start_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        bar = _Progress(n_batches, f"epoch {k}", show)
        cost_sum = 0.0
        seen = 0
        for i, (xb, Yb) in enumerate(loader):
            optimizer.zero_grad()
            C = cost_fn(Tensor.from_numpy(xb), Tensor.from_numpy(Yb))  # the loader's own arrays
            C.backward()
            optimizer.step()
            c = C.item()
            if not math.isfinite(c):
                bar.close()
                raise FloatingPointError(
                    f"fit: the cost became {c} in epoch {k}, mini-batch {i}: is the learning rate "
                    f"(η = {optimizer.param_groups[0]['lr']}) too large, or the data not finite?"
                )
            cost_sum += c * len(xb)
            seen += len(xb)
            bar.update(i + 1)
        bar.close()
        model.eval()
        if eval_data is not None:
            correct, eval_cost = evaluate(model, X_eval, y_eval, cost)
            total = len(y_eval)
        else:
            correct, eval_cost, total = 0, math.nan, 0
        seconds = time.perf_counter() - t0
        train_cost = cost_sum / seen if seen else math.nan
        history.append(k, train_cost, eval_cost, correct, total, seconds)
        if log is not None:
            head = f"Epoch {k}: {correct} / {total}" if total else f"Epoch {k} complete"
            acc = f" ({100 * correct / total:.2f}%)" if total else ""
            evc = f", eval cost {eval_cost:.4f}" if total else ""
            log(f"{head}{acc}  train cost {train_cost:.4f}{evc}, {seconds:.2f} s")
        if on_epoch_end is not None:
            on_epoch_end(k, history)
    return history


# -------------------------------------------------------------------------- whole-run driver


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

    Written atomically (a temporary file beside ``path``, then renamed).
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
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".png")
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
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


# --------------------------------------------------------------------------- command line


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _epochs(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more epochs, got {v}")
    return v


def _learning_rate(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"expected a positive learning rate, got {text}")
    return v


def _hidden(text: str) -> tuple[int, ...]:
    """``"30"`` -> (30,), ``"100,30"`` -> (100, 30), ``""`` -> () (no hidden layer)."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 30 or 100,30, got {text!r}"
        ) from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` sub-command's options (defaults: the book's chapter 1 experiment)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Train the book's network of sigmoid neurons with mini-batch SGD and print, after every\n"
        "epoch, 'Epoch k: correct / total' on the evaluation set (then the costs and seconds).\n\n"
        "  chapter 1 (default): --cost quadratic --init standard --lr 3.0\n"
        "  chapter 3:           --cost cross-entropy --init scaled --lr 0.5\n"
        "  the book's MNIST run: --dataset mnist --hidden 30 --epochs 30 --batch-size 10 --lr 3.0"
    )
    a = parser.add_argument
    a(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="digits: 8x8 digits shipped in the package (offline); mnist: MNIST 28x28 "
        "(read from --data-dir or the cache, downloaded if absent) (default: digits)",
    )
    a(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="folder holding the MNIST files (default: the cache folder)",
    )
    a(
        "--no-download",
        action="store_true",
        help="never download MNIST; fail with instructions if it is not on disk",
    )
    a(
        "--hidden",
        type=_hidden,
        default=None,
        metavar="SIZES",
        help="hidden layer sizes, comma-separated (default: 30, the book's [n, 30, 10])",
    )
    a("--epochs", type=_epochs, default=None, help="epochs in total (default: 30)")
    a(
        "--batch-size",
        type=_positive_int,
        default=None,
        metavar="M",
        help="mini-batch size m (default: 10)",
    )
    a(
        "--lr",
        type=_learning_rate,
        default=None,
        metavar="ETA",
        help="learning rate η (default: 3.0; the book uses 0.5 with cross-entropy)",
    )
    a(
        "--cost",
        choices=COSTS,
        default=None,
        help="quadratic: C = 1/2n Σ‖y − a‖² (chapter 1); cross-entropy: chapter 3's "
        "(default: quadratic)",
    )
    a(
        "--init",
        choices=INITS,
        default=None,
        help="standard: weights and biases N(0, 1) (chapter 1); scaled: weights N(0, 1/n_in) "
        "(chapter 3) (default: standard)",
    )
    a(
        "--seed",
        type=int,
        default=None,
        help="seed of the initial weights and the shuffling (default: 0)",
    )
    a(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="floating type of weights and data (default: float32, faster)",
    )
    a(
        "--eval",
        dest="eval_set",
        choices=("test", "validation"),
        default=None,
        help="MNIST set evaluated after each epoch (default: test, as the book)",
    )
    a(
        "--save",
        metavar="PATH",
        default=None,
        help="write a checkpoint (.npz) after every epoch, atomically",
    )
    a(
        "--resume",
        metavar="PATH",
        default=None,
        help="continue the run saved in this checkpoint up to --epochs epochs in total",
    )
    a(
        "--plot",
        metavar="PATH",
        default=None,
        help="write learning curves as a PNG at the end (needs matplotlib: "
        "pip install 'tinygrad-sgd[plot]')",
    )
    a(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr during each epoch (default: only on a terminal)",
    )


_CONFIG_OPTIONS = (
    "dataset",
    "hidden",
    "epochs",
    "batch_size",
    "lr",
    "cost",
    "init",
    "seed",
    "dtype",
    "eval_set",
)


def run_command(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments; returns the exit status."""
    given = {k: getattr(args, k) for k in _CONFIG_OPTIONS if getattr(args, k, None) is not None}
    try:
        if args.resume is not None:
            _model, history = train(
                data_dir=args.data_dir,
                download=not args.no_download,
                save=args.save,
                resume=args.resume,
                plot=args.plot,
                progress=args.progress,
                **given,
            )
        else:
            _model, history = train(
                TrainConfig(**given),
                data_dir=args.data_dir,
                download=not args.no_download,
                save=args.save,
                plot=args.plot,
                progress=args.progress,
            )
    except (MNISTNotFoundError, DownloadError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
