"""Initialisers: fill a weight w or a bias b in place with random (or constant) values.

The book uses two schemes:

* chapter 1 (``network.py``): every weight and bias drawn from the standard normal N(0, 1)
  (:func:`standard_normal_`);
* chapter 3 (``network2.py``'s ``default_weight_initializer``): weights from N(0, 1/n_in), where
  n_in is the number of inputs of the neuron, so that z = Σ_j w_j x_j + b does not saturate σ(z);
  biases still from N(0, 1) (:func:`scaled_normal_`).

Also the Xavier/Glorot and He/Kaiming schemes.  For a weight of shape (out_features, in_features)
fan_in = in_features and fan_out = out_features; for a convolution's kernel (C_out, C, kH, kW)
fan_in = C·kH·kW, the inputs of one neuron, and fan_out = C_out·kH·kW, as PyTorch counts them.

Every random initialiser takes ``seed=``: ``None`` (``tg.default_generator``, which
:func:`manual_seed`, also ``tg.manual_seed``, seeds), an ``int``, or a
``numpy.random.Generator`` (which is advanced, so several layers can share one generator and
still differ).  All of them work under no-grad semantics:
they overwrite ``t.data`` in place, keep the tensor object, and return it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Seed, Tensor, get_generator, manual_seed

__all__ = [
    "calculate_gain",
    "constant_",
    "get_generator",
    "kaiming_normal_",
    "kaiming_uniform_",
    "manual_seed",
    "normal_",
    "ones_",
    "scaled_normal_",
    "standard_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def _check(t: Any, name: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}: expected a Tensor, got {type(t).__name__}")
    if t.dtype.kind != "f":
        raise TypeError(f"{name}: expected a floating tensor, got dtype {t.dtype}")
    return t


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t._overwrite(values)
    return t


def _fans(t: Tensor, name: str) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: (shape[1], shape[0]) for 2-D (out, in), and for more
    dimensions each times the product of the remaining (receptive field) axes."""
    if t.ndim < 2:
        raise ValueError(
            f"{name}: fan_in/fan_out need a weight with at least 2 dimensions "
            f"(out_features, in_features); got shape {t.shape}"
        )
    receptive = int(np.prod(t.shape[2:], dtype=np.int64))
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation: 1 for linear/sigmoid, 5/3 for tanh, √2 for relu,
    √(2 / (1 + slope²)) for leaky_relu (PyTorch's values)."""
    if nonlinearity in ("linear", "identity", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r} "
        "(use linear, sigmoid, tanh, relu or leaky_relu)"
    )


def zeros_(t: Tensor) -> Tensor:
    """t ← 0."""
    return _fill(_check(t, "zeros_"), np.zeros(t.shape))


def ones_(t: Tensor) -> Tensor:
    """t ← 1."""
    return _fill(_check(t, "ones_"), np.ones(t.shape))


def constant_(t: Tensor, value: float) -> Tensor:
    """t ← value."""
    return _fill(_check(t, "constant_"), np.full(t.shape, float(value)))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, seed: Seed = None) -> Tensor:
    """t ~ N(mean, std²), elementwise independent."""
    _check(t, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    return _fill(t, get_generator(seed).normal(mean, std, t.shape))


def uniform_(t: Tensor, low: float = 0.0, high: float = 1.0, seed: Seed = None) -> Tensor:
    """t ~ U[low, high)."""
    _check(t, "uniform_")
    if not low <= high:
        raise ValueError(f"uniform_: need low <= high, got low={low}, high={high}")
    return _fill(t, get_generator(seed).uniform(low, high, t.shape))


def standard_normal_(t: Tensor, seed: Seed = None) -> Tensor:
    """The book's chapter 1 scheme, for weights and biases alike: t ~ N(0, 1)."""
    return normal_(t, 0.0, 1.0, seed)


def scaled_normal_(t: Tensor, seed: Seed = None) -> Tensor:
    """The book's chapter 3 scheme for weights: w ~ N(0, 1/n_in) with n_in = fan_in
    (``in_features`` for a weight of shape (out_features, in_features)).

    Then z = Σ_j w_j x_j + b has standard deviation about √(1 + k/n_in) rather than √(k + 1)
    for k active inputs, so the neurons do not start saturated.
    """
    fan_in, _ = _fans(_check(t, "scaled_normal_"), "scaled_normal_")
    return normal_(t, 0.0, 1.0 / math.sqrt(fan_in), seed)


def xavier_uniform_(t: Tensor, gain: float = 1.0, seed: Seed = None) -> Tensor:
    """Glorot & Bengio (2010): w ~ U[−a, a] with a = gain · √(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_check(t, "xavier_uniform_"), "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a, seed)


def xavier_normal_(t: Tensor, gain: float = 1.0, seed: Seed = None) -> Tensor:
    """Glorot & Bengio (2010): w ~ N(0, σ²) with σ = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_check(t, "xavier_normal_"), "xavier_normal_")
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), seed)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str, name: str) -> float:
    fan_in, fan_out = _fans(_check(t, name), name)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{name}: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    t: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    seed: Seed = None,
) -> Tensor:
    """He et al. (2015): w ~ U[−b, b] with b = gain · √(3 / fan), gain from
    :func:`calculate_gain` (√2 for relu; ``a`` is the leaky-relu slope)."""
    std = _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    bound = math.sqrt(3.0) * std
    return uniform_(t, -bound, bound, seed)


def kaiming_normal_(
    t: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    seed: Seed = None,
) -> Tensor:
    """He et al. (2015): w ~ N(0, σ²) with σ = gain / √fan (√(2 / n_in) for relu)."""
    std = _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_")
    return normal_(t, 0.0, std, seed)
