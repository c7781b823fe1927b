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

:func:`fit` is that loop for any model, :func:`build_network` builds the book's network, and
:class:`History` records every epoch.  (:mod:`tinygrad_sgd.train.run` drives a whole run on a
data set, with checkpoints: what ``python -m tinygrad_sgd train`` does.)

Chapter 3 replaces the cost by the cross-entropy C = −1/n Σ_x Σ_j [y_j ln a_j + (1 − y_j)
ln(1 − a_j)] (``cost="cross-entropy"``), whose output error δᴸ = aᴸ − y has no σ'(z) factor and
so does not learn slowly when the output neurons saturate, and initialises the weights from
N(0, 1/n_in) (``init="scaled"``); the book uses η = 0.5 there.  The rest of chapter 3 is here
too: a softmax output layer with the log-likelihood cost C = −1/n Σ_x ln a_{y(x)}
(``output="softmax"``, ``cost="log-likelihood"``), L2 and L1 regularisation (``lmbda``, ``l1``),
dropout on the hidden layers (``dropout``), other hidden neurons (``activation``), early
stopping (:class:`NoImprovement`, the book's "no-improvement-in-n") and the learning-rate
schedule of its problems (:class:`PlateauSchedule`); and chapter 5's "speed of learning" of each
hidden layer, ‖∂C/∂bˡ‖ (:func:`gradient_speeds`, ``report_gradients``).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TextIO, TypeVar

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..compile import compile as compile_step
from ..data import DataLoader
from ..tensor import Tensor, get_generator, seed_sequence
from .arch import arch_layers

__all__ = [
    "ACTIVATIONS",
    "COSTS",
    "INITS",
    "OUTPUTS",
    "PAIRS",
    "History",
    "NoImprovement",
    "PlateauSchedule",
    "build_network",
    "evaluate",
    "fit",
    "gradient_speeds",
    "network_shapes",
    "plateau_patience",
]

#: The costs: C = 1/2n Σ‖y − a‖², the cross-entropy −1/n Σ [y ln a + (1 − y) ln(1 − a)], and
#: the log-likelihood −1/n Σ ln a_y.
COSTS = ("quadratic", "cross-entropy", "log-likelihood")
#: The initialisations of the book's network: those of its layers (nn.layers.INITIALISERS).
INITS = nn.layers.INIT_SCHEMES
#: Output layers: a = σ(z), or the softmax a_j = e^{z_j} / Σ_k e^{z_k}.
OUTPUTS = ("sigmoid", "softmax")
#: Hidden layers' activations a = σ(z), tanh(z) or max(0, z).
ACTIVATIONS = ("sigmoid", "tanh", "relu")
#: The costs that go with each output layer (chapter 3's pairings).
PAIRS = {"sigmoid": ("quadratic", "cross-entropy"), "softmax": ("log-likelihood",)}

Split = tuple[np.ndarray, np.ndarray]

# fit's and train's reports (the book's epoch lines) when no ``log`` callable is given.
logger = logging.getLogger("tinygrad_sgd.train")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _unknown_keywords(fn: str, unknown: Iterable[str], accepted: Iterable[str]) -> TypeError:
    """The ``TypeError`` for keywords that ``fn`` does not take: it names them, the accepted
    name closest to each (``epoch`` → ``epochs``), and every accepted keyword."""
    accepted = list(accepted)
    parts = []
    for k in unknown:
        close = difflib.get_close_matches(k, accepted, n=1)
        parts.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return TypeError(
        f"{fn}: unknown keyword argument(s) {', '.join(parts)}; accepted: {', '.join(accepted)}"
    )


def _keywords_named(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make an unknown keyword a :func:`_unknown_keywords` error (Python's own names only the
    bad keyword), so that ``fit(epoch=2)`` says that ``epochs`` was meant."""
    params = inspect.signature(fn).parameters.values()
    accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    names = frozenset(accepted)

    @functools.wraps(fn)
    def checked(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            raise _unknown_keywords(fn.__name__, unknown, accepted)
        return fn(*args, **kwargs)

    return checked


def _is_number(value: Any) -> bool:
    """An int or float, not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    """An int (Python's or NumPy's), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _entries(owner: str, state: Any, own: dict[str, Any]) -> list[Any]:
    """The values of ``state``, a dict with exactly the keys of ``own`` (a ``state_dict``),
    in their order; ``ValueError`` naming ``owner`` otherwise."""
    if not isinstance(state, dict) or set(state) != set(own):
        shown = sorted(map(str, state)) if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{owner}: the state must have the entries {list(own)}, got {shown!r:.60}")
    return [state[k] for k in own]


# ------------------------------------------------------------------------------------ history


@dataclass
class History:
    """What each epoch gave: lists indexed by epoch (``epoch[i]`` is the epoch number k).

    - ``train_cost``: the mean cost over the epoch's mini-batches (weighted by their sizes),
      measured while training, so it mixes the weights of the whole epoch;
    - ``eval_cost``: the cost on the evaluation set after the epoch (NaN without one);
    - ``correct`` / ``total``: evaluation images classified correctly, out of how many;
    - ``seconds``: wall-clock time of the epoch (training pass and evaluation);
    - ``lr``: the learning rate η used during the epoch;
    - ``train_eval_cost``, ``train_correct`` / ``train_total``: the whole training set evaluated
      after the epoch (``fit(monitor_training=True)``; NaN and 0 / 0 otherwise);
    - ``gradient_speeds``: ‖∂C/∂bˡ‖ of each hidden layer averaged over the epoch's mini-batches
      (``fit(report_gradients=True)``; an empty list otherwise).

    The costs include the regularisation terms when there are any.  :meth:`network2` gives the
    lists of the book's ``network2.SGD``.
    """

    epoch: list[int] = field(default_factory=list)
    train_cost: list[float] = field(default_factory=list)
    eval_cost: list[float] = field(default_factory=list)
    correct: list[int] = field(default_factory=list)
    total: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train_eval_cost: list[float] = field(default_factory=list)
    train_correct: list[int] = field(default_factory=list)
    train_total: list[int] = field(default_factory=list)
    gradient_speeds: list[list[float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.epoch)

    @property
    def accuracy(self) -> list[float]:
        """correct / total for each epoch (NaN without an evaluation set)."""
        return [c / t if t else math.nan for c, t in zip(self.correct, self.total)]

    @property
    def train_accuracy(self) -> list[float]:
        """train_correct / train_total for each epoch (NaN where the training set was not
        evaluated)."""
        return [c / t if t else math.nan for c, t in zip(self.train_correct, self.train_total)]

    def append(
        self,
        epoch: int,
        train_cost: float,
        eval_cost: float,
        correct: int,
        total: int,
        seconds: float,
        lr: float = math.nan,
        train_eval_cost: float = math.nan,
        train_correct: int = 0,
        train_total: int = 0,
        gradient_speeds: Sequence[float] = (),
    ) -> None:
        """Record one epoch's numbers."""
        self.epoch.append(int(epoch))
        self.train_cost.append(float(train_cost))
        self.eval_cost.append(float(eval_cost))
        self.correct.append(int(correct))
        self.total.append(int(total))
        self.seconds.append(float(seconds))
        self.lr.append(float(lr))
        self.train_eval_cost.append(float(train_eval_cost))
        self.train_correct.append(int(train_correct))
        self.train_total.append(int(train_total))
        self.gradient_speeds.append([float(v) for v in gradient_speeds])

    def best(self) -> int:
        """The epoch number with the highest accuracy (the first of ties)."""
        if not self.epoch:
            raise ValueError("History.best: no epochs recorded")
        return self.epoch[int(np.argmax(self.correct))]

    def to_dict(self) -> dict[str, list[Any]]:
        """The history as plain lists, one per field (for JSON; :meth:`from_dict` reads it back)."""
        return {k: list(getattr(self, k)) for k in self._FIELDS + self._OPTIONAL}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        """The history that :meth:`to_dict` gave: lists of numbers, all of one length (those
        of ``gradient_speeds``: lists of numbers).  The fields added after the first checkpoint
        format (``lr`` onwards) may be missing, as in older checkpoints."""
        missing = [k for k in cls._FIELDS if k not in d]
        if missing:
            raise ValueError(f"History.from_dict: missing {', '.join(missing)}")
        n = len(d["epoch"]) if isinstance(d["epoch"], list) else 0
        fill: dict[str, Any] = {"lr": math.nan, "train_eval_cost": math.nan, "train_correct": 0}
        fill.update({"train_total": 0, "gradient_speeds": []})
        columns = [d[k] for k in cls._FIELDS]
        columns += [d[k] if k in d else [fill[k]] * n for k in cls._OPTIONAL]
        if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) > 1:
            raise ValueError("History.from_dict: expected lists of one length")
        h = cls()
        for values in zip(*columns):
            *numbers, speeds = values
            if not (
                all(map(_is_number, numbers))
                and isinstance(speeds, list)
                and all(map(_is_number, speeds))
            ):
                raise ValueError(f"History.from_dict: expected numbers, got {values!r:.80}")
            try:
                h.append(*values)
            except (ValueError, OverflowError):  # int(nan), int(inf)
                raise ValueError(f"History.from_dict: bad values {values!r:.80}") from None
        return h

    _FIELDS = ("epoch", "train_cost", "eval_cost", "correct", "total", "seconds")
    _OPTIONAL = ("lr", "train_eval_cost", "train_correct", "train_total", "gradient_speeds")

    def network2(self) -> dict[str, list[Any]]:
        """The lists of the book's ``network2.SGD``, under its names: ``evaluation_cost``,
        ``evaluation_accuracy``, ``training_cost``, ``training_accuracy`` (accuracies as
        fractions, costs after the epoch), and ``gradient_speeds`` when they were measured;
        also ``epoch`` and ``learning_rate``.  A value that was not measured is None (JSON's
        null)."""

        def known(values: list[float]) -> list[float | None]:
            return [None if math.isnan(v) else v for v in values]

        out: dict[str, list[Any]] = {
            "epoch": list(self.epoch),
            "evaluation_cost": known(self.eval_cost),
            "evaluation_accuracy": known(self.accuracy),
            "training_cost": known(self.train_eval_cost),
            "training_accuracy": known(self.train_accuracy),
            "learning_rate": known(self.lr),
        }
        if any(self.gradient_speeds):
            out["gradient_speeds"] = [list(v) if v else None for v in self.gradient_speeds]
        return out

    def __repr__(self) -> str:
        if not self.epoch:
            return "History(0 epochs)"
        k = self.best()
        i = self.epoch.index(k)
        return (
            f"History({len(self)} epochs, last {self.correct[-1]} / {self.total[-1]}, "
            f"best {self.correct[i]} / {self.total[i]} at epoch {k})"
        )


# ------------------------------------------------------------------------------ stopping rules


class NoImprovement:
    """The book's "no-improvement-in-n" rule (chapter 3, early stopping): after each epoch
    :meth:`update` gets the evaluation accuracy and answers whether ``n`` epochs in a row have
    passed without a better one than the best so far (equal is not better).

    ``best`` and ``best_epoch`` are the best accuracy and the epoch that reached it first;
    ``since`` counts the epochs since then (or since :meth:`restart`).  ``state_dict`` /
    ``load_state_dict`` carry it across a checkpoint.
    """

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"no-improvement-in-n: n must be an int >= 1, got {n!r}")
        self.n = int(n)
        self.best = -math.inf
        self.best_epoch = -1
        self.since = 0

    def update(self, epoch: int, accuracy: float) -> bool:
        """Record epoch ``epoch``'s accuracy; True when the last n epochs brought nothing better."""
        if accuracy > self.best:
            self.best, self.best_epoch, self.since = float(accuracy), int(epoch), 0
        else:
            self.since += 1
        return self.done

    @property
    def done(self) -> bool:
        """True once n epochs in a row have brought no better accuracy."""
        return self.since >= self.n

    def restart(self) -> None:
        """Count the next n epochs afresh (after the learning rate changed)."""
        self.since = 0

    def state_dict(self) -> dict[str, Any]:
        """The rule's state (n, the best accuracy, its epoch, the epochs since): a checkpoint's."""
        return {"n": self.n, "best": self.best, "best_epoch": self.best_epoch, "since": self.since}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of this rule (same n); ``ValueError`` naming the entry
        when it is not one (a tampered checkpoint)."""
        n, best, best_epoch, since = _entries("no-improvement-in-n", state, self.state_dict())
        if not (_is_int(n) and n == self.n):
            raise ValueError(f"no-improvement-in-n: the state is for n = {n!r:.40}, not {self.n}")
        if not (_is_number(best) and -math.inf <= best < math.inf):
            raise ValueError(f"no-improvement-in-n: best must be a number < inf, got {best!r:.40}")
        if not (_is_int(best_epoch) and best_epoch >= -1 and _is_int(since) and since >= 0):
            raise ValueError(
                "no-improvement-in-n: best_epoch must be an int >= -1 and since an int >= 0, "
                f"got {best_epoch!r:.40} and {since!r:.40}"
            )
        self.best, self.best_epoch, self.since = float(best), int(best_epoch), int(since)


class PlateauSchedule:
    """The learning-rate schedule of the book's chapter 3 problem: halve η each time the
    evaluation accuracy satisfies the no-improvement-in-n rule, and stop when η has fallen to
    η₀/128 (seven halvings).

    :meth:`step` takes each epoch's accuracy, sets every parameter group's ``lr`` to
    η₀ / 2^halvings (exact in floating point), and returns True when training should stop.
    """

    FACTOR = 0.5
    HALVINGS_TO_STOP = 7  # η₀ / 2⁷ = η₀ / 128

    def __init__(self, optimizer: optim.Optimizer, n: int) -> None:
        self.optimizer = optimizer
        self.watch = NoImprovement(n)
        self.lr0 = [float(g["lr"]) for g in optimizer.param_groups]
        self.halvings = 0

    @property
    def done(self) -> bool:
        """True once η has fallen to η₀/128."""
        return self.halvings >= self.HALVINGS_TO_STOP

    def step(self, epoch: int, accuracy: float) -> bool:
        """Record an epoch's accuracy, halving η when the rule fires; True: stop training."""
        if self.watch.update(epoch, accuracy):
            self.halvings += 1
            self.watch.restart()
            for g, lr0 in zip(self.optimizer.param_groups, self.lr0):
                g["lr"] = lr0 * self.FACTOR**self.halvings
        return self.done

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state (its rule's, η₀ of each group, the halvings), for a checkpoint."""
        return {"watch": self.watch.state_dict(), "lr0": list(self.lr0), "halvings": self.halvings}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a schedule on an optimizer like this one;
        ``ValueError`` naming the entry when it is not one (a tampered checkpoint)."""
        watch, lr0, halvings = _entries("plateau schedule", state, self.state_dict())
        groups = len(self.optimizer.param_groups)
        if not (
            isinstance(lr0, list)
            and len(lr0) == groups
            and all(_is_number(v) and 0 < v < math.inf for v in lr0)
        ):
            raise ValueError(
                f"plateau schedule: lr0 must be {groups} finite number(s) > 0, got {lr0!r:.40}"
            )
        if not (_is_int(halvings) and 0 <= halvings <= self.HALVINGS_TO_STOP):
            raise ValueError(
                f"plateau schedule: halvings must be an int in [0, {self.HALVINGS_TO_STOP}], "
                f"got {halvings!r:.40}"
            )
        self.watch.load_state_dict(watch)
        self.lr0, self.halvings = [float(v) for v in lr0], int(halvings)


def plateau_patience(spec: str) -> int | None:
    """``"constant"`` -> None; ``"plateau:N"`` -> N (an int >= 1); anything else: ValueError."""
    if spec == "constant":
        return None
    head, _, tail = spec.partition(":")
    if head == "plateau" and tail.strip().isdigit() and int(tail) >= 1:
        return int(tail)
    raise ValueError(
        f"the learning-rate schedule must be 'constant' or 'plateau:N' with N >= 1 "
        f"(halve η after N epochs without improvement), got {spec!r}"
    )


# ----------------------------------------------------------------------------------- network


@_keywords_named
def build_network(
    sizes: Sequence[int],
    init: str = "standard",
    seed: int | np.random.Generator | None = None,
    dtype: Any = np.float32,
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    dropout: float = 0.0,
    dropout_seed: int | np.random.SeedSequence | None = None,
    arch: str | None = None,
) -> nn.Sequential:
    """The book's network ``Network(sizes)``: Linear layers each followed by a sigmoid.

    ``sizes = [784, 30, 10]`` gives ``Sequential(Linear(784, 30), Sigmoid(), Linear(30, 10),
    Sigmoid())``. ``init="standard"`` draws every weight and bias from N(0, 1) (chapter 1);
    ``"scaled"`` draws weights from N(0, 1/n_in) and biases from N(0, 1) (chapter 3); the other
    names of :data:`INITS` (``"xavier"``, ``"he"``, ...) are the layers' schemes (see
    :class:`~tinygrad_sgd.nn.Linear`), with biases 0.

    Chapter 3 and 5's variations: ``activation`` (``"sigmoid"``, ``"tanh"`` or ``"relu"``) is
    the hidden neurons' function; ``output="softmax"`` ends in a softmax layer
    a_j = e^(z_j) / Σ_k e^(z_k) (train it with ``cost="log-likelihood"``); ``dropout = p > 0``
    puts an :class:`~tinygrad_sgd.nn.Dropout` after every hidden layer, each with its own
    generator spawned from ``dropout_seed``.  ``seed`` and ``dropout_seed`` left None draw from
    ``tg.default_generator``, so ``tg.manual_seed(s)`` makes the network reproducible.

    Chapter 6: ``arch`` (e.g. ``"conv20x5,pool2,fc100"``, see :mod:`tinygrad_sgd.train.arch`)
    gives the hidden layers, convolutional, pooling and fully connected, and ``sizes`` is then
    ``[n_in, n_out]``; inputs are fed to conv layers as images (N, 1, √n_in, √n_in).
    """
    sizes = [int(s) for s in sizes]
    if arch is not None and len(sizes) != 2:
        raise ValueError(
            f"build_network: with arch, sizes is [n_in, n_out] (the spec gives the hidden "
            f"layers), got {sizes}"
        )
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"build_network: need at least two positive layer sizes, got {sizes}")
    if init not in INITS:
        raise ValueError(f"build_network: init must be one of {', '.join(INITS)}, got {init!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"build_network: activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
        )
    if output not in OUTPUTS:
        raise ValueError(
            f"build_network: output must be one of {', '.join(OUTPUTS)}, got {output!r}"
        )
    rng = get_generator(seed)
    hidden_act = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    n_hidden = len(sizes) - 2
    ss = seed_sequence(dropout_seed)
    output_layer = nn.Softmax if output == "softmax" else nn.Sigmoid
    if arch is not None:
        modules = arch_layers(
            arch,
            *sizes,
            init=init,
            rng=rng,
            dtype=dtype,
            activation=hidden_act,
            output=output_layer,
            dropout=dropout,
            dropout_seed=ss,
        )
        return nn.Sequential(*modules)
    drop_seeds = ss.spawn(n_hidden) if dropout else []
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, init=init, seed=rng, dtype=dtype))
        if i < n_hidden:
            layers.append(hidden_act())
            if dropout:
                layers.append(nn.Dropout(dropout, seed=drop_seeds[i]))
        else:
            layers.append(output_layer())
    return nn.Sequential(*layers)


def network_shapes(sizes: Sequence[int], *, dropout: float = 0.0) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` shapes of ``build_network(sizes, dropout=dropout, ...)``, without
    building it: a checkpoint's arrays are checked against them before any memory is allocated.

    Each layer is a Linear, its activation, and with ``dropout`` a Dropout after each hidden
    layer, which shifts the module numbers; the activation and output functions have no
    parameters, so their choice changes nothing here.
    """
    step = 3 if dropout and len(sizes) > 2 else 2  # Linear, activation[, Dropout]
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"{step * i}.weight"] = (int(n_out), int(n_in))
        shapes[f"{step * i}.bias"] = (int(n_out),)
    return shapes


def _cost_function(model: nn.Module, cost: str) -> Callable[[Any, Tensor], Tensor]:
    """C(x, Y) for a batch of inputs x and one-hot targets Y, averaged over the batch.

    For the cross-entropy on a network that ends in a sigmoid, the cost is computed from the
    last layer's z (softplus(z) − y z = −[y ln σ(z) + (1 − y) ln(1 − σ(z))]), which stays finite
    where σ(z) rounds to exactly 0 or 1 in float32.  The log-likelihood C = −ln a_y of a network
    that ends in a softmax is likewise computed from z: ln Σ_k e^(z_k) − z_y
    (:func:`~tinygrad_sgd.nn.functional.cross_entropy`), never forming a_y.
    """
    if cost not in COSTS:
        raise ValueError(f"unknown cost {cost!r}; use one of {', '.join(COSTS)}")
    seq = model if isinstance(model, nn.Sequential) and len(model) else None
    last = seq[-1] if seq is not None else None
    if isinstance(last, nn.Softmax) and cost not in PAIRS["softmax"]:
        raise ValueError(
            f"the {cost} cost does not fit a network whose last layer is nn.Softmax (it would "
            "apply the sigmoid's formula to the softmax); the pairs are: "
            + "; ".join(f"{out} output: {', '.join(c)}" for out, c in PAIRS.items())
        )
    if cost == "quadratic":
        return lambda x, Y: nn.F.quadratic_cost(model(x), Y)
    if cost == "log-likelihood":
        if seq is None or not isinstance(last, nn.Softmax):
            raise ValueError(
                "the log-likelihood cost C = −ln a_y needs a network whose last layer is "
                "nn.Softmax (build_network(..., output='softmax'))"
            )
        softmax_body = seq[:-1]
        return lambda x, Y: nn.F.cross_entropy(softmax_body(x), Y)
    if seq is not None and isinstance(last, nn.Sigmoid):
        body = seq[:-1]

        def from_logits(x: Any, Y: Tensor) -> Tensor:
            z = body(x)
            per_neuron = nn.F.binary_cross_entropy_with_logits(z, Y, reduction="sum")
            return per_neuron * (1.0 / len(z))

        return from_logits
    return lambda x, Y: nn.F.cross_entropy_cost(model(x), Y)


def _hidden_biases(model: nn.Module) -> list[Tensor]:
    """b² .. b^(L−1): the biases of every nn.Linear but the last, first layer first."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    biases = [m.bias for m in linears[:-1]]
    if any(b is None for b in biases):
        raise ValueError("gradient speeds: every hidden nn.Linear needs a bias")
    return [b for b in biases if b is not None]


def gradient_speeds(model: nn.Module) -> list[float]:
    """Chapter 5's "speed of learning" of each hidden layer l: ‖δˡ‖ = ‖∂C/∂bˡ‖, the Euclidean
    norm of the cost's gradient with respect to the layer's biases, first hidden layer first.

    Read from the biases' ``.grad`` after a ``backward()`` (the hidden layers are every
    ``nn.Linear`` of ``model`` but the last); a layer without a gradient yet counts 0.
    """
    return _norms(_hidden_biases(model))


def _norms(biases: list[Tensor]) -> list[float]:
    """‖∂C/∂b‖ for each bias in ``biases`` (0 where there is no gradient yet)."""
    return [0.0 if b.grad is None else float(np.linalg.norm(b.grad.data)) for b in biases]


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


@_keywords_named
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
    log: Callable[[str], None] | None = logger.info,
    progress: bool | None = None,
    lmbda: float = 0.0,
    l1: float = 0.0,
    early_stopping: int | NoImprovement | None = None,
    lr_schedule: str | PlateauSchedule | None = None,
    report_gradients: bool = False,
    monitor_training: bool = False,
    compile: bool = True,
) -> History:
    """Train ``model`` with the book's mini-batch SGD; return the :class:`History`.

    ``train_data = (X, y)``: inputs as rows and integer labels 0..k−1 (k = the model's outputs);
    the targets are the one-hot vectors y(x) (the book's ``vectorized_result``). Each epoch the
    training set is shuffled and cut into mini-batches of ``batch_size`` (m); each mini-batch
    takes one ``optimizer`` step (default ``optim.SGD(model.parameters(), lr)``: w → w − η ∂C/∂w
    with C averaged over the mini-batch). After each epoch the model is evaluated on
    ``eval_data`` and ``log`` gets the book's line ``Epoch k: correct / total`` followed by the
    costs and seconds: by default the logger ``tinygrad_sgd.train`` at INFO (silent unless
    logging is configured); ``log=print`` prints them, ``None`` drops them.

    ``cost``: ``"quadratic"`` (C = 1/2n Σ ‖y − a‖²), ``"cross-entropy"`` (chapter 3) or
    ``"log-likelihood"`` (C = −ln a_y, for a network ending in ``nn.Softmax``).
    ``seed`` seeds the shuffling (None: from ``tg.default_generator``, see ``tg.manual_seed``);
    or pass a ``loader`` over ``(X, one-hot Y)`` (in the model's dtype), e.g. one whose
    generator state was restored from a checkpoint. Epochs are numbered
    from ``start_epoch`` to ``epochs − 1``, appending to ``history``; ``on_epoch_end(k, history)``
    runs after each (e.g. to save a checkpoint).
    ``progress``: a progress bar on stderr during each epoch (default: when stderr is a terminal).

    Chapter 3 and 5 (all off by default):

    - ``lmbda`` λ: L2 regularisation, C = C₀ + (λ/2n) Σ_w w² with n = ``len(X)`` (the whole
      training set) and the weights only (parameters with ≥ 2 dimensions), so each step is the
      book's w → (1 − ηλ/n) w − η ∂C₀/∂w, b → b − η ∂C₀/∂b;
    - ``l1`` λ: L1 regularisation, C = C₀ + (λ/n) Σ_w |w|: w → w − (ηλ/n) sgn(w) − η ∂C₀/∂w;
    - ``early_stopping`` n (or a :class:`NoImprovement`): stop after n epochs without a better
      evaluation accuracy, and say which epoch was best;
    - ``lr_schedule``: ``"plateau:N"`` (or a :class:`PlateauSchedule` on ``optimizer``): halve
      η after N epochs without improvement, stop when η has fallen to η₀/128;
    - ``report_gradients``: record and print each epoch the speed of learning ‖∂C/∂bˡ‖ of every
      hidden layer (:func:`gradient_speeds`), averaged over the epoch's mini-batches;
    - ``monitor_training``: also evaluate the whole training set after each epoch (network2's
      ``training_cost`` and ``training_accuracy``).

    ``compile`` (default True): each mini-batch's step (zero_grad, cost, backward, optimizer
    step) runs as a compiled step (:func:`tinygrad_sgd.compile`), recorded once per batch shape and
    replayed, with the same results as eager to the bit; ``compile=False`` runs it eagerly.  A
    step that cannot be compiled (hooks on a parameter, an op whose backward is written for
    Tensors only) runs eagerly by itself, as does every step while ``trace()`` or
    ``detect_anomaly()`` is active.  (``report_gradients`` reads ‖∂C/∂bˡ‖ from ``.grad`` after
    the step, which ``optim.SGD`` leaves as backward made it, so nothing reads a value
    mid-step.)

    The costs recorded include the regularisation terms.  A stopping rule or schedule passed as
    an object keeps its state there (e.g. restored from a checkpoint); if it had already decided
    to stop, no epoch runs.

    Divergence raises ``FloatingPointError`` naming the epoch: a mini-batch cost that is not
    finite, or, after the epoch's last step, a weight or the evaluation cost that is not; the
    epoch is then neither logged, recorded nor passed to ``on_epoch_end``.
    """
    if cost not in COSTS:
        raise ValueError(f"fit: cost must be one of {', '.join(COSTS)}, got {cost!r}")
    for name, value in (("lmbda", lmbda), ("l1", l1)):
        if not (_is_number(value) and math.isfinite(value) and value >= 0):
            raise ValueError(f"fit: {name} must be a finite number >= 0, got {value!r}")
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
    model.eval()  # NOTE: a probe in training mode would draw dropout masks and shift their stream
    with no_grad():
        n_out = model(Tensor(X[:1].astype(dtype))).shape[-1]
    if len(y) and (y.min() < 0 or y.max() >= n_out):
        raise ValueError(f"fit: labels must lie in 0..{n_out - 1} for a model with {n_out} outputs")
    X = X.astype(dtype, copy=False)
    if eval_data is not None:
        X_eval = np.asarray(eval_data[0]).astype(dtype, copy=False)
        y_eval = np.asarray(eval_data[1])
    elif early_stopping is not None or lr_schedule is not None:
        raise ValueError("fit: early stopping and the plateau schedule need eval_data")
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
    stopping = (
        NoImprovement(early_stopping)
        if isinstance(early_stopping, (int, np.integer))
        else early_stopping
    )
    if isinstance(lr_schedule, str):
        patience = plateau_patience(lr_schedule)
        schedule = None if patience is None else PlateauSchedule(optimizer, patience)
    else:
        schedule = lr_schedule
    if schedule is not None and schedule.optimizer is not optimizer:
        raise ValueError("fit: the PlateauSchedule must act on the optimizer that trains")
    show = sys.stderr.isatty() if progress is None else progress
    cost_fn = _cost_function(model, cost)
    weights = [p for p in params if p.ndim >= 2]
    n_train = len(X)

    def regularisation() -> Tensor | None:
        """The terms added to C₀: (λ/2n) Σ w² and (λ₁/n) Σ |w| (None when both are off)."""
        terms = [nn.F.l2_penalty(weights, lmbda, n_train)] if lmbda else []
        terms += [nn.F.l1_penalty(weights, l1, n_train)] if l1 else []
        return sum(terms[1:], terms[0]) if terms else None

    if lmbda or l1:
        cost0 = cost_fn

        def regularised(x: Any, Y: Tensor) -> Tensor:
            penalty = regularisation()
            assert penalty is not None
            return cost0(x, Y) + penalty

        cost_fn = regularised
    hidden_biases = _hidden_biases(model) if report_gradients else []
    n_batches = len(loader)

    def train_step(x: Any, Y: Any) -> Tensor:
        """One mini-batch: w → w − η ∂C/∂w for every parameter."""
        optimizer.zero_grad()
        C = cost_fn(x, Y)
        C.backward()
        optimizer.step()
        return C

    step = compile_step(train_step, fallback=True) if compile else train_step

    if (stopping is not None and stopping.done) or (schedule is not None and schedule.done):
        if log is not None:
            log(f"The run had already stopped after epoch {start_epoch - 1}: nothing to train")
        return history

    for k in range(start_epoch, epochs):
        t0 = time.perf_counter()
        eta = optimizer.param_groups[0]["lr"]
        model.train()
        bar = _Progress(n_batches, f"epoch {k}", show)
        cost_sum = 0.0
        seen = 0
        speed_sum = np.zeros(len(hidden_biases))
        for i, (xb, Yb) in enumerate(loader):
            if compile:
                C = step(xb, Yb)
            else:  # the loader's own arrays, shared
                C = step(Tensor.from_numpy(xb), Tensor.from_numpy(Yb))
            if report_gradients:  # .grad as backward made it: the optimizer's step leaves it
                speed_sum += _norms(hidden_biases)
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
        # The last step can make the weights non-finite while every cost it saw was finite:
        # such an epoch is neither reported nor handed to on_epoch_end (no checkpoint of it).
        if not all(np.isfinite(p.data).all() for p in params):
            raise FloatingPointError(
                f"fit: epoch {k} diverged: its last step made the weights NaN or infinite "
                f"(η = {optimizer.param_groups[0]['lr']} too large?)"
            )
        model.eval()
        with no_grad():
            penalty = regularisation()
        reg = 0.0 if penalty is None else penalty.item()
        if eval_data is not None:
            correct, eval_cost = evaluate(model, X_eval, y_eval, cost)
            eval_cost += reg
            total = len(y_eval)
            if not math.isfinite(eval_cost):
                raise FloatingPointError(
                    f"fit: epoch {k} diverged: the cost on the evaluation set is {eval_cost} "
                    f"(η = {optimizer.param_groups[0]['lr']} too large?)"
                )
        else:
            correct, eval_cost, total = 0, math.nan, 0
        train_correct, train_eval_cost, train_total = 0, math.nan, 0
        if monitor_training:
            train_correct, train_eval_cost = evaluate(model, X, y, cost)
            train_eval_cost += reg
            train_total = len(y)
        seconds = time.perf_counter() - t0
        train_cost = cost_sum / seen if seen else math.nan
        speeds = (speed_sum / n_batches).tolist() if report_gradients and n_batches else []
        history.append(
            k,
            train_cost,
            eval_cost,
            correct,
            total,
            seconds,
            eta,
            train_eval_cost,
            train_correct,
            train_total,
            speeds,
        )
        accuracy = correct / total if total else math.nan
        stop_early = stopping is not None and stopping.update(k, accuracy)
        stop_schedule = schedule is not None and schedule.step(k, accuracy)
        if log is not None:
            head = f"Epoch {k}: {correct} / {total}" if total else f"Epoch {k} complete"
            acc = f" ({100 * correct / total:.2f}%)" if total else ""
            evc = f", eval cost {eval_cost:.4f}" if total else ""
            log(f"{head}{acc}  train cost {train_cost:.4f}{evc}, {seconds:.2f} s")
            if report_gradients:
                log(
                    "  speed of learning ‖∂C/∂bˡ‖ of the hidden layers: "
                    + ", ".join(f"{v:.3g}" for v in speeds)
                )
            new_eta = optimizer.param_groups[0]["lr"]
            if schedule is not None and new_eta != eta and not stop_schedule:
                log(
                    f"  no improvement in {schedule.watch.n} epochs: η halved to {new_eta:g} "
                    f"(η₀/{2**schedule.halvings})"
                )
        if on_epoch_end is not None:
            on_epoch_end(k, history)
        if stop_early or stop_schedule:
            if log is not None:
                b = history.best()
                i = history.epoch.index(b)
                why = (
                    f"no better evaluation accuracy in {stopping.n} epochs"
                    if stop_early and stopping is not None
                    else f"η has fallen to η₀/{2**PlateauSchedule.HALVINGS_TO_STOP}"
                )
                log(
                    f"Stopping after epoch {k}: {why}; best {history.correct[i]} / "
                    f"{history.total[i]} at epoch {b}"
                )
            break
    return history
