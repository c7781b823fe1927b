"""``DataLoader``: the mini-batches of stochastic gradient descent.

The book's SGD, each epoch: shuffle the n training examples, cut them into mini-batches of m,
and take one gradient step per mini-batch. A ``DataLoader`` does the first two parts:
iterating over it once is one epoch, yielding ``(X_batch, y_batch)`` pairs that together cover
every example exactly once, in a new random order each time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import seed_sequence

__all__ = ["DataLoader"]


class DataLoader:
    """Mini-batches ``(X_batch, y_batch)`` of ``batch_size`` rows, reshuffled every epoch.

    - ``X``, ``y``: arrays (or anything ``np.asarray`` accepts, Tensors included) with the same
      number of rows; row ``i`` of ``X`` is an input, row ``i`` of ``y`` its target.
    - ``batch_size``: m, the rows per mini-batch (a positive int).
    - ``shuffle``: draw a new random order at the start of every pass (every epoch).
    - ``seed``: seed of the loader's own ``numpy.random.Generator`` (``None``: drawn from
      ``tg.default_generator``, which ``tg.manual_seed`` seeds), so that two loaders with the
      same seed give the same batches, epoch after epoch.
    - ``drop_last``: leave out the last batch when it has fewer than ``batch_size`` rows.

    The batches are NumPy arrays, not Tensors: slicing arrays is the cheapest way to make them,
    and a batch is data, not a parameter, so it needs no gradient (wrap it with ``Tensor(...)``
    or pass it to a Module, which accepts arrays). ``len(loader)`` is the number of batches per
    epoch. ``loader.rng`` is the generator, whose ``bit_generator.state`` can be saved and
    restored to resume the exact sequence of batches.

    >>> loader = DataLoader(np.arange(10.0)[:, None], np.arange(10), batch_size=4, seed=0)
    >>> [len(xb) for xb, yb in loader]
    [4, 4, 2]
    """

    def __init__(
        self,
        X: Any,
        y: Any,
        batch_size: int,
        shuffle: bool = True,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(
                f"DataLoader: batch_size must be an int, got {type(batch_size).__name__}"
            )
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, got {batch_size}")
        self.X = np.asarray(X)
        self.y = np.asarray(y)
        if self.X.ndim == 0 or self.y.ndim == 0:
            raise ValueError("DataLoader: X and y must have at least one dimension (the rows)")
        if len(self.X) != len(self.y):
            raise ValueError(
                f"DataLoader: X has {len(self.X)} rows but y has {len(self.y)}; they must match"
            )
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = np.random.default_rng(seed_sequence(seed))

    def __len__(self) -> int:
        """Batches per epoch: ⌈n/m⌉, or ⌊n/m⌋ with ``drop_last``."""
        n, m = len(self.X), self.batch_size
        return n // m if self.drop_last else -(-n // m)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n, m = len(self.X), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else None
        stop = n - n % m if self.drop_last else n
        for start in range(0, stop, m):
            if order is None:
                yield self.X[start : start + m], self.y[start : start + m]
            else:
                idx = order[start : start + m]
                yield self.X[idx], self.y[idx]

    def __repr__(self) -> str:
        return (
            f"DataLoader(n={len(self.X)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, batches={len(self)})"
        )
