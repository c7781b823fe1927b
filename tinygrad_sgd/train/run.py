"""A whole training run of the book's network, as ``python -m tinygrad_sgd train`` does it.

:func:`train` loads a data set, builds the network ``[n_in, *hidden, 10]`` and calls
:func:`~tinygrad_sgd.train.loop.fit`; after each epoch it can write a checkpoint (weights,
optimizer state, epoch, shuffling state, history and config) from which :func:`train` resumes
exactly, and at the end it can draw the learning curves (:func:`plot_history`).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn, optim
from .._atomic import atomic_open, check_writable, writer_lock
from ..data import DataLoader, load_digits, load_mnist
from ..serialization import load as _load
from ..serialization import save as _save
from ..tensor import Tensor
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
    _unknown_keywords,
    build_network,
    fit,
    logger,
    network_shapes,
    plateau_patience,
)

__all__ = [
    "CONFIG_FIELDS",
    "DATASETS",
    "PRESETS",
    "Preset",
    "TrainConfig",
    "load_checkpoint",
    "plot_history",
    "train",
    "write_history_json",
]

#: The datasets the ``train`` command and :func:`train` accept.
DATASETS = ("digits", "mnist")
_INPUTS = {"digits": 64, "mnist": 784}  # pixels of an image of each data set
DTYPES = ("float32", "float64")
EVAL_SETS = ("test", "validation")
CHECKPOINT_FORMAT = "tinygrad_sgd.train/1"
# Epochs, mini-batch and layer sizes lie in [low, MAX_COUNT): far above any run of the book, and
# below the sizes that overflow NumPy's indexing or allocate without end.
MAX_COUNT = 10**9


def _shown(value: Any) -> str:
    """``repr(value)`` cut to 60 characters (a tampered file may hold a huge value)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Integer:
    """A config value that is an integer (not a bool) with ``low <= v < high``."""

    low: int
    high: int | None = None

    def describe(self) -> str:
        if self.high is None:
            return f"an integer >= {self.low}"
        digits = str(self.high)
        power_of_ten = len(digits) > 4 and digits.rstrip("0") == "1"
        high = f"10**{len(digits) - 1}" if power_of_ten else digits
        return f"an integer in [{self.low}, {high})"

    def __call__(self, value: Any) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        v = int(value)
        if v < self.low or (self.high is not None and v >= self.high):
            raise ValueError(f"expected {self.describe()}, got {v}")
        return v


@dataclass(frozen=True)
class Real:
    """A config value that is a finite number (int or float, not a bool) above ``low``
    (``low`` itself allowed when ``closed``) and at most ``high`` (below it when
    ``high_open``)."""

    low: float
    high: float = math.inf
    closed: bool = False
    high_open: bool = False

    def describe(self) -> str:
        low = f"{'>=' if self.closed else '>'} {self.low:g}"
        high = f" and {'<' if self.high_open else '<='} {self.high:g}"
        return f"a finite number {low}" + (high if self.high < math.inf else "")

    def __call__(self, value: Any) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        v = float(value)
        above = v >= self.low if self.closed else v > self.low
        below = v < self.high if self.high_open else v <= self.high
        if not (math.isfinite(v) and above and below):
            raise ValueError(f"expected {self.describe()}, got {v}")
        return v


@dataclass(frozen=True)
class Choice:
    """A config value that is one of the strings ``options``."""

    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise ValueError(f"expected {self.describe()}, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Sizes:
    """A config value that is a list (or tuple) of ``item`` values: the hidden layer sizes."""

    item: Integer

    def describe(self) -> str:
        return f"layer sizes, each {self.item.describe()}"

    def __call__(self, value: Any) -> tuple[int, ...]:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        try:
            return tuple(self.item(v) for v in value)
        except (TypeError, ValueError) as e:
            raise type(e)(f"layer sizes: {e}") from None


@dataclass(frozen=True)
class Flag:
    """A config value that is a bool (Python's or NumPy's)."""

    def describe(self) -> str:
        return "True or False"

    def __call__(self, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        return bool(value)


class ArchSpec:
    """A config value that is an ``--arch`` spec ("" for none): it must parse, and, since a
    resumed run builds its network before comparing the weights with it, no layer may be
    larger than :data:`MAX_ARCH_SIZE` feature maps or neurons (no kernel larger than 64)."""

    def describe(self) -> str:
        return f"an --arch spec with layers of at most {MAX_ARCH_SIZE} maps or neurons"

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        for layer in parse_arch(value) if value else ():
            size = getattr(layer, "channels", getattr(layer, "neurons", 1))
            if size > MAX_ARCH_SIZE or getattr(layer, "kernel", 1) > 64:
                raise ValueError(f"expected {self.describe()}, got {_shown(value)}")
        return value


#: The largest layer of an ``--arch`` spec (a checkpoint's spec is checked against it before its
#: network is built): ten times network3's largest layer.
MAX_ARCH_SIZE = 10_000


@dataclass(frozen=True)
class Schedule:
    """A config value that is a learning-rate schedule: ``"constant"`` or ``"plateau:N"``
    (:func:`~tinygrad_sgd.train.loop.plateau_patience`) with ``N`` an ``item`` value."""

    item: Integer

    def describe(self) -> str:
        return f"'constant' or 'plateau:N' with N {self.item.describe()}"

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"expected {self.describe()}, got {_shown(value)}")
        try:
            patience = plateau_patience(value)
            if patience is not None:
                self.item(patience)
        except ValueError:
            raise ValueError(f"expected {self.describe()}, got {_shown(value)}") from None
        return value


FieldCheck = Integer | Real | Choice | Sizes | Flag | Schedule | ArchSpec
#: TrainConfig's fields: name -> the check of its value (its type and range), which also
#: converts it (numpy ints to int, a list of sizes to a tuple).  A checkpoint's config, the
#: command-line options and TrainConfig.validate all go through this table: a new field of
#: TrainConfig is one row here (tests/test_train.py checks that every field has one).
CONFIG_FIELDS: dict[str, FieldCheck] = {
    "dataset": Choice(DATASETS),
    "hidden": Sizes(Integer(1, MAX_COUNT)),
    "epochs": Integer(0, MAX_COUNT),
    "batch_size": Integer(1, MAX_COUNT),
    "lr": Real(0.0),
    "cost": Choice(COSTS),
    "init": Choice(INITS),
    "seed": Integer(0),
    "dtype": Choice(DTYPES),
    "eval_set": Choice(EVAL_SETS),
    "output": Choice(OUTPUTS),
    "activation": Choice(ACTIVATIONS),
    "lmbda": Real(0.0, closed=True),
    "l1": Real(0.0, closed=True),
    "dropout": Real(0.0, 1.0, closed=True, high_open=True),
    "early_stopping": Integer(0, MAX_COUNT),
    "lr_schedule": Schedule(Integer(1, MAX_COUNT)),
    "report_gradients": Flag(),
    "arch": ArchSpec(),
}


@dataclass
class TrainConfig:
    """Everything that decides a run (what a checkpoint records to resume it exactly).

    The type and range of every field is in :data:`CONFIG_FIELDS`.
    """

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
        """The fields as a plain dict (``hidden`` a list), for JSON and checkpoints."""
        d = dict(self.__dict__)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from :meth:`to_dict`'s dict (a checkpoint's): every value is checked
        (:meth:`validate`), an unknown name is refused, and a missing one takes its default
        (a checkpoint written before the field existed)."""
        if not isinstance(d, dict):
            raise TypeError(f"the config must be a dict, got {type(d).__name__}")
        unknown = [k for k in d if k not in CONFIG_FIELDS]
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(map(_shown, unknown))}")
        config = cls(**d)
        config.validate()
        return config

    def validate(self) -> None:
        """Check every field against :data:`CONFIG_FIELDS` (``TypeError`` or ``ValueError``
        naming the field), converting it in place (a list of sizes to a tuple, numpy ints to
        int), then the rules between fields."""
        for name in self.__dataclass_fields__:
            value = _checked(f"config field {name!r}", CONFIG_FIELDS[name], getattr(self, name))
            setattr(self, name, value)
        if self.eval_set == "validation" and self.dataset != "mnist":
            raise ValueError("only MNIST has a validation set; the digits have train and test")
        if self.cost not in PAIRS[self.output]:
            pairs = "; ".join(f"{o} output with {' or '.join(c)}" for o, c in PAIRS.items())
            raise ValueError(
                f"the {self.cost} cost does not go with a {self.output} output; the pairs are: "
                f"{pairs}"
            )
        if self.arch:
            parse_arch(self.arch)
        elif self.dropout and not self.hidden:
            raise ValueError("dropout acts on the hidden layers: the network has none")


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
#: ``--dataset mnist``).  ``settings`` are scaled to the digits, the book's own values are in
#: ``Preset.mnist``: chapter 6's networks, and λ, which is per training set (the step shrinks
#: w by ηλ/n): the book's λ for n = 50,000 images, λ·1437/50000 for the 1,437 digits, so that
#: λ/n is the book's.
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
            lmbda=0.14,
        ),
        "96.49 % ([784, 30, 10], λ = 5.0; just over 96 % with the scaled init)",
        mnist=dict(lmbda=5.0),
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
            lmbda=0.14,
            report_gradients=True,
        ),
        "96.57 % (validation set, [784, 30, 30, 30, 10], λ = 5.0)",
        mnist=dict(lmbda=5.0),
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
            lmbda=0.003,
        ),
        "99.23 % (conv20x5,pool2,conv40x5,pool2,fc100, λ = 0.1)",
        mnist=dict(arch="conv20x5,pool2,conv40x5,pool2,fc100", lmbda=0.1),
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


def _checked(label: str, check: FieldCheck, value: Any) -> Any:
    """``check(value)``, its error starting with ``label``."""
    try:
        return check(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{label}: {e}") from None


def _optimizer(config: TrainConfig, model: nn.Module) -> optim.SGD:
    """The run's optimizer: the book's w → w − η ∂C/∂w, η = ``config.lr``."""
    return optim.SGD(model.parameters(), lr=config.lr)


def _check_arch_weights(weights: Any, model: nn.Module, config: TrainConfig) -> None:
    """A checkpoint's weights against the network of the config's ``arch`` (built first: a conv
    layer's shapes follow from the spec and the image size, so the spec is checked, and its
    layer sizes bounded, before; the weights are compared before they are loaded)."""
    if not isinstance(weights, dict):
        raise TypeError(f"the weights ('model') must be a dict, got {type(weights).__name__}")
    dtype = np.dtype(config.dtype)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    if set(weights) != set(expected):
        raise ValueError(
            f"the weights {_shown(list(weights))} are not those of the network "
            f"{config.arch!r} that the config describes"
        )
    for key, shape in expected.items():
        w = weights[key]
        if not isinstance(w, Tensor) or w.shape != shape or w.dtype != dtype:
            got = f"{w.shape} {w.dtype}" if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(
                f"the weights do not fit the config: {key!r} is {got}, the network "
                f"{config.arch!r} needs {shape} {dtype}"
            )
        if not np.isfinite(w.data).all():
            raise ValueError(f"the file holds non-finite weights (NaN or ±inf in {key})")


def _check_weights(weights: Any, config: TrainConfig) -> list[int]:
    """The layer sizes ``[n_in, *hidden, n_out]`` of a checkpoint's weights, after checking,
    before anything is allocated, that they are exactly the arrays of the network the config
    describes (names, shapes, dtype) and finite."""
    if not isinstance(weights, dict):
        raise TypeError(f"the weights ('model') must be a dict, got {type(weights).__name__}")
    n_layers = len(config.hidden) + 2
    keys = list(network_shapes([1] * n_layers, dropout=config.dropout))
    last = keys[-2]  # the output layer's weight
    first, final = weights.get("0.weight"), weights.get(last)
    if not (isinstance(first, Tensor) and first.ndim == 2):
        raise ValueError("the weights need a 2-d array '0.weight'")
    if not (isinstance(final, Tensor) and final.ndim == 2):
        raise ValueError(f"the weights need a 2-d array {last!r}")
    sizes = [first.shape[1], *config.hidden, final.shape[0]]
    expected = network_shapes(sizes, dropout=config.dropout)
    if set(weights) != set(expected) or min(sizes) < 1:
        raise ValueError(
            f"the weights {_shown(list(weights))} are not those of the network "
            f"{_shown(sizes)} that the config describes"
        )
    dtype = np.dtype(config.dtype)
    for key, shape in expected.items():
        w = weights[key]
        if not isinstance(w, Tensor) or w.shape != shape or w.dtype != dtype:
            got = f"{w.shape} {w.dtype}" if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(
                f"the weights do not fit the config: {key!r} is {got}, the network {sizes} "
                f"needs {shape} {dtype}"
            )
    bad = [key for key in expected if not np.isfinite(weights[key].data).all()]
    if bad:
        raise ValueError(
            f"the file holds non-finite weights (NaN or ±inf in {', '.join(bad)}), the state "
            "of a diverged run; it cannot be resumed"
        )
    return sizes


def _check_optimizer(opt: optim.SGD, fresh: optim.SGD) -> None:
    """A loaded optimizer state may differ from the run's own optimizer ``fresh`` only in its
    learning rates (a schedule changes them), which must be finite and > 0, and in its
    (finite) buffers."""
    settings = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in opt.param_groups]
    own = [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in fresh.param_groups]
    if settings != own:
        raise ValueError(f"its settings {_shown(settings)} are not the run's {own}")
    for g in opt.param_groups:
        _checked("its learning rate", CONFIG_FIELDS["lr"], g["lr"])
    for state in opt.state.values():
        for key, value in state.items():
            if isinstance(value, np.ndarray) and not np.isfinite(value).all():
                raise ValueError(f"its {key!r} is not finite")


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[nn.Sequential, dict[str, Any]]:
    """(model, checkpoint dict) from a file written by ``train(save=...)`` / ``--save``.

    The model is rebuilt from the recorded configuration and its weights loaded; the dict holds
    ``config`` (a :class:`TrainConfig`), ``epoch`` (the last completed epoch), ``history`` (a
    :class:`History`), ``optimizer`` and ``shuffle_rng`` (the states needed to resume).

    Everything is checked, and the network is built only when its weights are known to fit:
    the config (each field's type and range, :data:`CONFIG_FIELDS`), the weights' names,
    shapes and dtype against the network the config describes, and that they are finite; the
    epoch (in [0, 10**9)) and the history of epochs 0 to it; the shuffling state; the optimizer
    state, which may differ from the config's only in its learning rate (the η in force, which
    ``train`` prints); the states of the dropout generators, the early-stopping rule and the
    learning-rate schedule when the config has them.  ``FileNotFoundError``, ``OSError``
    (``PermissionError``...) or a ``ValueError`` whose message names the file otherwise.
    """
    name = os.fspath(path)
    ck = _load(path)
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{name}: not a tinygrad_sgd training checkpoint")
    part = ""  # the part being read, for the message (the config's and weights' say it)
    try:
        config = TrainConfig.from_dict(ck["config"])
        if config.arch:  # a conv layer's weight does not say the image size: the data set does
            model = _network(config, _INPUTS[config.dataset], 10, 0)
            _check_arch_weights(ck["model"], model, config)
        else:
            sizes = _check_weights(ck["model"], config)
            model = _network(config, sizes[0], sizes[-1], 0)
        model.load_state_dict(ck["model"])
        part = "the epoch: "
        epoch = Integer(0, MAX_COUNT)(ck["epoch"])
        part = "the history: "
        history = History.from_dict(ck["history"])
        if len(history) != epoch + 1 or history.epoch != list(range(epoch + 1)):
            raise ValueError(f"it does not record epochs 0 to {epoch}")
        part = "the shuffling state: "
        np.random.PCG64().state = ck["shuffle_rng"]
        part = "the optimizer state: "
        opt = _optimizer(config, model)
        opt.load_state_dict(ck["optimizer"])
        _check_optimizer(opt, _optimizer(config, model))
        part = "the dropout generators: "
        drops = _dropout_layers(model)
        if drops:
            states = ck["dropout_rng"]
            if not isinstance(states, dict) or sorted(states) != sorted(drops):
                raise ValueError("they do not match the network's dropout layers")
            for layer, m in drops.items():
                m.generator.bit_generator.state = states[layer]
        stopping, schedule = _rules(config, opt)
        if stopping is not None:
            part = "the early-stopping state: "
            stopping.load_state_dict(ck["early_stopping"])
        if schedule is not None:
            part = "the learning-rate schedule's state: "
            schedule.load_state_dict(ck["lr_schedule"])
    except KeyError as e:
        raise ValueError(f"{name}: damaged training checkpoint: {part}no entry {e}") from None
    except (TypeError, ValueError, AttributeError, OverflowError) as e:
        raise ValueError(f"{name}: damaged or mismatched training checkpoint: {part}{e}") from None
    ck.update(config=config, epoch=epoch, history=history)
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
    log: Callable[[str], None] | None = logger.info,
    progress: bool | None = None,
    validation_size: int = 10_000,
    eager: bool = False,
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
    ``log`` and ``progress`` as for :func:`fit` (the run's lines go to the logger
    ``tinygrad_sgd.train`` by default; the command passes ``print``).
    ``eager``: run every training step eagerly instead of as a compiled step (``fit``'s
    ``compile=False``; the results are the same).
    Returns ``(model, history)``.

    Before anything runs, every output path is checked (:func:`_check_outputs`), and the run
    holds the writer lock of ``save`` until it ends (:func:`~tinygrad_sgd._atomic.writer_lock`:
    a second run saving to the same file is refused with ``FileLockedError``).  An epoch that
    diverges (non-finite weights or evaluation cost) stops the run with ``FloatingPointError``
    naming it, before it is reported or saved: ``save`` keeps the last good epoch.  An
    ``OSError`` while writing names the file (``<path>: <reason>``); the old file is intact.
    """
    _check_outputs(save, plot, history_path, resume)
    with writer_lock(save) if save is not None else contextlib.nullcontext():
        return _train(
            config,
            overrides,
            data_dir=data_dir,
            download=download,
            save=save,
            resume=resume,
            plot=plot,
            history_path=history_path,
            log=log,
            progress=progress,
            validation_size=validation_size,
            eager=eager,
        )


def _check_outputs(
    save: str | os.PathLike[str] | None,
    plot: str | os.PathLike[str] | None,
    history_path: str | os.PathLike[str] | None,
    resume: str | os.PathLike[str] | None,
) -> None:
    """Fail now, not after the run, when an output could not be written: each path's folder
    exists and this process may create files in it, and the path is not a directory, device
    or FIFO (:func:`~tinygrad_sgd._atomic.check_writable`); neither the plot nor the history
    would replace the checkpoint being written or resumed, nor each other; matplotlib is there
    for the plot."""
    outputs = {
        o: path
        for o, path in (("--save", save), ("--plot", plot), ("--history", history_path))
        if path is not None
    }
    targets = {option: check_writable(path) for option, path in outputs.items()}
    checkpoints = [targets.get("--save")] + ([os.path.realpath(resume)] if resume else [])
    for option, what in (("--plot", "picture"), ("--history", "history")):
        if option in targets and targets[option] in checkpoints:
            path = outputs[option]
            raise ValueError(f"{option} {path}: is the checkpoint; the {what} would replace it")
    if "--plot" in targets and targets["--plot"] == targets.get("--history"):
        raise ValueError(f"--plot and --history are both {plot}: one would replace the other")
    if plot is not None:
        _check_plot_available()


def _named(path: str | os.PathLike[str], e: OSError) -> OSError:
    """``e`` as an error of its type whose message is ``<path>: <reason>``, naming the file
    asked for (the OS may name the temporary file, or nothing, as in "File too large")."""
    shown = os.fspath(path)
    if e.strerror is None and str(e).startswith(shown):  # the atomic writer's, naming it
        return e
    return type(e)(f"{shown}: {e.strerror or e}")


def _train(
    config: TrainConfig | None,
    overrides: dict[str, Any],
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    save: str | os.PathLike[str] | None,
    resume: str | os.PathLike[str] | None,
    plot: str | os.PathLike[str] | None,
    history_path: str | os.PathLike[str] | None,
    log: Callable[[str], None] | None,
    progress: bool | None,
    eager: bool,
    validation_size: int,
) -> tuple[nn.Sequential, History]:
    """:func:`train` once its outputs are checked and its checkpoint locked."""
    unknown = [k for k in overrides if k not in CONFIG_FIELDS]
    if unknown:
        own = [p for p in inspect.signature(train).parameters if p not in ("config", "overrides")]
        raise _unknown_keywords("train", unknown, own + list(CONFIG_FIELDS))
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

    train_set, eval_set, source = _load_dataset(cfg, data_dir, download, validation_size)
    n_in = train_set[0].shape[1]
    n_out = 10
    sizes = [n_in, *cfg.hidden, n_out]
    init_rng, shuffle_seed = _rng_seeds(cfg.seed)
    if resume is None:
        model = _network(cfg, n_in, n_out, init_rng)
    elif cfg.arch:
        pass  # load_checkpoint built the network of the config's arch for this data set's images
    elif {k: v.shape for k, v in model.state_dict().items()} != network_shapes(
        sizes, dropout=cfg.dropout
    ):
        raise ValueError(
            f"--resume {resume}: the checkpoint's network does not fit {source}, which needs "
            f"{sizes}"
        )
    opt = _optimizer(cfg, model)
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
        rates = list(dict.fromkeys(g["lr"] for g in opt.param_groups))  # the η in force
        eta = ", ".join(map(str, rates))
        if rates != [cfg.lr]:
            eta += f" (from the checkpoint's optimizer state; the config's η is {cfg.lr})"
        shown = f"[{n_in}, {cfg.arch}, {n_out}]" if cfg.arch else str(sizes)
        log(
            f"Network {shown} of {neurons}, {cfg.cost} cost, {cfg.init} init, "
            f"η = {eta}, m = {cfg.batch_size}, {cfg.epochs} epochs, seed {cfg.seed}, "
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

    last_saved: int | None = None

    def after_epoch(k: int, h: History) -> None:
        nonlocal last_saved
        if save is not None:
            try:
                _save(_checkpoint(cfg, k, model, opt, loader, h, stopping, schedule), save)
            except OSError as e:
                raise _named(save, e) from e
            last_saved = k
        if history_path is not None:
            try:
                write_history_json(h, history_path)
            except OSError as e:
                raise _named(history_path, e) from e

    try:
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
            compile=not eager,
            lmbda=cfg.lmbda,
            l1=cfg.l1,
            early_stopping=stopping,
            lr_schedule=schedule,
            report_gradients=cfg.report_gradients,
            monitor_training=history_path is not None,
        )
    except FloatingPointError as e:
        if save is None:
            raise
        kept = "was not written" if last_saved is None else f"keeps epoch {last_saved}"
        raise FloatingPointError(f"{e}; the checkpoint {save} {kept}") from None
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
        try:
            plot_history(history, plot, title=title)
        except OSError as e:
            raise _named(plot, e) from e
        if log is not None:
            log(f"Learning curves written to {plot}")
    return model, history
