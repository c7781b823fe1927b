"""Where test inputs come from: one small interface, two sources of randomness.

The op table (:mod:`.op_table`) describes each operation's inputs with calls on a :class:`Draw`
(``draw.shape()``, ``draw.array(shape, domain)``, ...).  Two implementations exist:

* :class:`NumpyDraw` uses a seeded ``numpy.random.Generator``; the ``gradcheck`` command uses it,
  so it runs without Hypothesis installed;
* ``HypothesisDraw`` (in :mod:`.strategies`) asks Hypothesis, which explores edge cases and
  shrinks a failure to a minimal example; the test suite uses it.

Values are kept away from non-differentiable points by *moving* them, never by rejecting them
(rejection sampling makes Hypothesis give up): :func:`push_away` moves a value closer than
``margin`` to a kink k to k ± margin, :func:`spread` makes all values pairwise at least ``margin``
apart (no ties for max, min, maximum, minimum).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Shape = tuple[int, ...]

__all__ = ["Domain", "Draw", "NumpyDraw", "Shape", "push_away", "spread"]


@dataclass(frozen=True)
class Domain:
    """The values an input may take: finite floats in [low, high], at least ``margin`` away from
    every point in ``avoid`` (kinks such as 0 for relu and abs, or poles such as 0 for 1/x)."""

    low: float = -3.0
    high: float = 3.0
    avoid: tuple[float, ...] = ()
    margin: float = 1e-2

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Domain: need finite low < high, got [{self.low}, {self.high}]")
        if self.margin <= 0:
            raise ValueError(f"Domain: margin must be positive, got {self.margin}")
        if self.avoid and self.high - self.low <= 2 * self.margin:
            raise ValueError(
                f"Domain: [{self.low}, {self.high}] is too narrow to keep {self.margin} away "
                f"from {self.avoid}"
            )


def push_away(x: np.ndarray, domain: Domain) -> np.ndarray:
    """Move every value within ``domain.margin`` of a point in ``domain.avoid`` to that point
    ± margin (upwards, unless that leaves [low, high]).  Returns a new float64 array."""
    x = np.array(x, dtype=np.float64)
    m = domain.margin
    for _ in range(len(domain.avoid) + 1):  # a move can land near another kink: repeat
        moved = False
        for k in domain.avoid:
            near = np.abs(x - k) < m
            if near.any():
                moved = True
                up = np.where(x >= k, k + m, k - m)
                down = np.where(x >= k, k - m, k + m)
                target = np.where((up >= domain.low) & (up <= domain.high), up, down)
                # Nudge a little further out so floating rounding cannot leave it at margin − ulp.
                target = target + np.sign(target - k) * m * 1e-3
                x = np.where(near, target, x)
        if not moved:
            break
    return x


def spread(values: np.ndarray, domain: Domain) -> np.ndarray:
    """Make all values pairwise at least ``domain.margin`` apart, keeping their order.

    The values are first squeezed into [low, high − (n − 1)·margin], then, in sorted order, each
    is raised to at least its predecessor + margin; so the result stays in [low, high], equal
    inputs become neighbours ``margin`` apart, and a shrunk all-zero input stays simple.
    """
    v = np.array(values, dtype=np.float64).ravel()
    n = v.size
    m = domain.margin * 1.001
    room = domain.high - domain.low - (n - 1) * m
    if room <= 0:
        raise ValueError(
            f"spread: {n} values cannot be {domain.margin} apart inside "
            f"[{domain.low}, {domain.high}]"
        )
    v = domain.low + (v - domain.low) * (room / (domain.high - domain.low))
    order = np.argsort(v, kind="stable")
    s = v[order]
    for j in range(1, n):
        if s[j] < s[j - 1] + m:
            s[j] = s[j - 1] + m
    out = np.empty_like(v)
    out[order] = s
    return out.reshape(np.shape(values))


class Draw:
    """The questions an op's input description may ask.  Subclasses answer them at random."""

    def integers(self, low: int, high: int) -> int:
        """An integer in [low, high] (both included)."""
        raise NotImplementedError

    def boolean(self) -> bool:
        """True or False."""
        return self.integers(0, 1) == 1

    def choice(self, options: Sequence[Any]) -> Any:
        """One of ``options``."""
        if not options:
            raise ValueError("choice from an empty sequence")
        return options[self.integers(0, len(options) - 1)]

    def shape(
        self, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> Shape:
        """A shape of ``min_dims`` to ``max_dims`` axes, each ``min_side`` to ``max_side`` long."""
        raise NotImplementedError

    def broadcastable_shapes(
        self, n: int, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> tuple[Shape, ...]:
        """``n`` shapes that NumPy can broadcast together (0-d included)."""
        raise NotImplementedError

    def _uniform(self, shape: Shape, low: float, high: float) -> np.ndarray:
        raise NotImplementedError

    def array(self, shape: Shape, domain: Domain = Domain()) -> np.ndarray:
        """A float64 array of ``shape`` with values in ``domain`` (kinks avoided)."""
        return push_away(self._uniform(tuple(shape), domain.low, domain.high), domain)

    def distinct_arrays(
        self, shapes: Sequence[Shape], domain: Domain = Domain()
    ) -> list[np.ndarray]:
        """Arrays whose values, all together, are pairwise ``domain.margin`` apart (no ties)."""
        sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
        flat = spread(self._uniform((sum(sizes),), domain.low, domain.high), domain)
        flat = push_away(flat, domain) if domain.avoid else flat
        out, start = [], 0
        for s, n in zip(shapes, sizes):
            out.append(flat[start : start + n].reshape(s))
            start += n
        return out

    def int_array(self, shape: Shape, low: int, high: int) -> np.ndarray:
        """An integer array with values in [low, high] (repeats allowed)."""
        return np.array(
            [self.integers(low, high) for _ in range(int(np.prod(shape, dtype=np.int64)))],
            dtype=np.intp,
        ).reshape(shape)

    def bool_array(self, shape: Shape) -> np.ndarray:
        """A boolean array of ``shape``."""
        return self.int_array(shape, 0, 1).astype(bool)

    def seed(self) -> int:
        """A seed for the random upstream gradients of one case."""
        return self.integers(0, 2**32 - 1)


class NumpyDraw(Draw):
    """Answers from ``numpy.random.default_rng(seed)``: reproducible, no Hypothesis needed."""

    def __init__(self, seed: int | Sequence[int] | np.random.Generator | None = 0) -> None:
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)

    def integers(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def shape(
        self, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> Shape:
        ndim = self.integers(min_dims, max_dims)
        return tuple(self.integers(min_side, max_side) for _ in range(ndim))

    def broadcastable_shapes(
        self, n: int, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> tuple[Shape, ...]:
        # A common target shape; each operand keeps a suffix of it, with some axes set to 1.
        target = self.shape(min_dims, max_dims, min_side, max_side)
        shapes = []
        for _ in range(n):
            ndim = self.integers(min(min_dims, len(target)), len(target))
            suffix = target[len(target) - ndim :]
            shapes.append(tuple(1 if self.integers(0, 3) == 0 else s for s in suffix))
        return tuple(shapes)

    def _uniform(self, shape: Shape, low: float, high: float) -> np.ndarray:
        return self.rng.uniform(low, high, size=shape)

    def int_array(self, shape: Shape, low: int, high: int) -> np.ndarray:
        return self.rng.integers(low, high + 1, size=shape).astype(np.intp)
