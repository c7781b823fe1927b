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
N(0, 1/n_in) (``init="scaled"``); the book uses η = 0.5 there.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from .. import nn, optim
from ..autograd import no_grad
from ..data import DataLoader
from ..tensor import Tensor

__all__ = ["COSTS", "INITS", "History", "build_network", "evaluate", "fit", "network_shapes"]

COSTS = ("quadratic", "cross-entropy")
INITS = ("standard", "scaled")

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
        """The history that :meth:`to_dict` gave: lists of numbers, all of one length."""
        missing = [k for k in cls._FIELDS if k not in d]
        if missing:
            raise ValueError(f"History.from_dict: missing {', '.join(missing)}")
        columns = [d[k] for k in cls._FIELDS]
        if not all(isinstance(c, list) for c in columns) or len({len(c) for c in columns}) > 1:
            raise ValueError("History.from_dict: expected lists of one length")
        h = cls()
        for values in zip(*columns):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ValueError(f"History.from_dict: expected numbers, got {values!r:.80}")
            try:
                h.append(*values)
            except (ValueError, OverflowError):  # int(nan), int(inf)
                raise ValueError(f"History.from_dict: bad values {values!r:.80}") from None
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


def network_shapes(sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """The ``state_dict`` shapes of ``build_network(sizes)``, without building it: a
    checkpoint's arrays are checked against them before any memory is allocated."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes[f"{2 * i}.weight"] = (int(n_out), int(n_in))
        shapes[f"{2 * i}.bias"] = (int(n_out),)
    return shapes


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

    Divergence raises ``FloatingPointError`` naming the epoch: a mini-batch cost that is not
    finite, or, after the epoch's last step, a weight or the evaluation cost that is not; the
    epoch is then neither logged, recorded nor passed to ``on_epoch_end``.
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
            C = cost_fn(Tensor(xb), Tensor(Yb))
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
        # The last step can make the weights non-finite while every cost it saw was finite:
        # such an epoch is neither reported nor handed to on_epoch_end (no checkpoint of it).
        if not all(np.isfinite(p.data).all() for p in params):
            raise FloatingPointError(
                f"fit: epoch {k} diverged: its last step made the weights NaN or infinite "
                f"(η = {optimizer.param_groups[0]['lr']} too large?)"
            )
        model.eval()
        if eval_data is not None:
            correct, eval_cost = evaluate(model, X_eval, y_eval, cost)
            total = len(y_eval)
            if not math.isfinite(eval_cost):
                raise FloatingPointError(
                    f"fit: epoch {k} diverged: the cost on the evaluation set is {eval_cost} "
                    f"(η = {optimizer.param_groups[0]['lr']} too large?)"
                )
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
