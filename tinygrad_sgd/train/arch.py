"""Chapter 6's networks from a one-line spec: ``--arch conv20x5,pool2,fc100``.

A spec is a comma-separated list of hidden layers, input side first:

- ``convCxK[sS][pP]``: a convolutional layer of C feature maps, each from K×K local receptive
  fields with shared weights, z = w ∗ a + b (:class:`~tinygrad_sgd.nn.Conv2d`), stride S
  (default 1) and zero padding P (default 0), then the hidden activation;
- ``poolK``: K×K max-pooling of every feature map (:class:`~tinygrad_sgd.nn.MaxPool2d`);
- ``fcN``: N fully connected neurons (:class:`~tinygrad_sgd.nn.Linear`), then the activation.

The convolutional and pooling layers come before the fully connected ones (as in the book's
``network3.py``); the output layer of the network is not part of the spec.  The book's first
convolutional network, ``ConvPoolLayer(filter_shape=(20, 1, 5, 5), poolsize=(2, 2))`` then
``FullyConnectedLayer(n_in=20*12*12, n_out=100)`` and the output, is ``conv20x5,pool2,fc100``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nn
from ..tensor import Tensor, seed_sequence

__all__ = ["ARCH_GRAMMAR", "Conv", "Fc", "Pool", "arch_layers", "parse_arch"]

#: The ``--arch`` language of :func:`parse_arch`, in words (error messages quote it).
ARCH_GRAMMAR = (
    "a comma-separated list of layers: convCxK[sS][pP] (C feature maps of KxK kernels, "
    "stride S, padding P), poolK (KxK max-pooling), fcN (N fully connected neurons), "
    "conv and pool layers before fc ones, e.g. conv20x5,pool2,fc100"
)

_CONV = re.compile(r"conv([0-9]+)x([0-9]+)(?:s([0-9]+))?(?:p([0-9]+))?")
_POOL = re.compile(r"pool([0-9]+)")
_FC = re.compile(r"fc([0-9]+)")


@dataclass(frozen=True)
class Conv:
    """``convCxK[sS][pP]``: C feature maps, K×K kernels, stride S, padding P."""

    channels: int
    kernel: int
    stride: int = 1
    padding: int = 0


@dataclass(frozen=True)
class Pool:
    """``poolK``: K×K max-pooling (windows K apart)."""

    kernel: int


@dataclass(frozen=True)
class Fc:
    """``fcN``: N fully connected neurons."""

    neurons: int


Layer = Conv | Pool | Fc


def _bad(spec: str, why: str) -> ValueError:
    return ValueError(f"bad --arch {spec!r}: {why}; the spec is {ARCH_GRAMMAR}")


def parse_arch(spec: str) -> list[Layer]:
    """The layers of ``spec`` in order; a malformed spec is a ValueError naming the offending
    part and showing the grammar (:data:`ARCH_GRAMMAR`)."""
    if not isinstance(spec, str):
        raise TypeError(f"--arch: the spec must be a str, got {type(spec).__name__}")
    layers: list[Layer] = []
    for part in spec.split(","):
        part = part.strip()
        layer: Layer
        if m := _CONV.fullmatch(part):
            c, k, s, p = (int(g) if g is not None else None for g in m.groups())
            assert c is not None and k is not None
            layer = Conv(c, k, 1 if s is None else s, 0 if p is None else p)
            if c < 1 or k < 1 or layer.stride < 1:
                raise _bad(spec, f"{part!r} needs C, K and S >= 1")
        elif m := _POOL.fullmatch(part):
            layer = Pool(int(m.group(1)))
            if layer.kernel < 1:
                raise _bad(spec, f"{part!r} needs K >= 1")
        elif m := _FC.fullmatch(part):
            layer = Fc(int(m.group(1)))
            if layer.neurons < 1:
                raise _bad(spec, f"{part!r} needs N >= 1")
        else:
            raise _bad(spec, f"{part!r} is not a layer" if part else "an empty layer")
        if not isinstance(layer, Fc) and any(isinstance(x, Fc) for x in layers):
            raise _bad(spec, f"{part!r} comes after a fully connected layer")
        layers.append(layer)
    return layers


class _Images(nn.Module):
    """Rows of side² pixels as single-channel images (N, 1, side, side), for a conv layer."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(-1, 1, self.side, self.side)

    def extra_repr(self) -> str:
        return f"side={self.side}"


def _name(layer: Layer) -> str:
    if isinstance(layer, Conv):
        return f"conv{layer.channels}x{layer.kernel}s{layer.stride}p{layer.padding}"
    return f"pool{layer.kernel}" if isinstance(layer, Pool) else f"fc{layer.neurons}"


def arch_layers(
    spec: str,
    n_in: int,
    n_out: int,
    *,
    init: str,
    rng: np.random.Generator,
    dtype: Any,
    activation: Callable[[], nn.Module],
    output: Callable[[], nn.Module],
    dropout: float = 0.0,
    dropout_seed: np.random.SeedSequence | None = None,
) -> list[nn.Module]:
    """The modules of the network ``spec`` from n_in inputs to n_out output neurons.

    With a conv or pool layer first, the inputs are fed as images (N, 1, side, side) with
    side = √n_in; the feature maps are flattened before the first fully connected layer.  Every
    conv and fc layer is followed by ``activation()``, the output layer (n_out neurons) by
    ``output()``.  ``dropout`` p > 0 drops the inputs of every fully connected layer but the
    network's first, the output layer's included, as ``network3.py``'s ``p_dropout`` does (after
    the hidden layers, as :func:`~tinygrad_sgd.train.build_network` does, when the spec is only
    fc layers); each :class:`~tinygrad_sgd.nn.Dropout` has its own generator spawned from
    ``dropout_seed``.
    """
    layers = parse_arch(spec)
    modules: list[nn.Module] = []
    shape: tuple[int, ...] = (n_in,)
    if not isinstance(layers[0], Fc):
        side = math.isqrt(n_in)
        if side * side != n_in:
            raise ValueError(
                f"--arch {spec!r}: conv and pool layers need square images, but the data has "
                f"{n_in} inputs, not a square number"
            )
        modules.append(_Images(side))
        shape = (1, side, side)
    for layer in layers:
        if isinstance(layer, Fc):
            break
        c, h, w = shape
        k = layer.kernel
        s, p = (layer.stride, layer.padding) if isinstance(layer, Conv) else (k, 0)
        if h + 2 * p < k or w + 2 * p < k:
            raise ValueError(
                f"--arch {spec!r}: {_name(layer)}'s {k}x{k} window does not fit the {h}x{w} "
                "feature maps that reach it"
            )
        ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        if isinstance(layer, Conv):
            modules.append(nn.Conv2d(c, layer.channels, k, s, p, init=init, seed=rng, dtype=dtype))
            modules.append(activation())
            shape = (layer.channels, ho, wo)
        else:
            modules.append(nn.MaxPool2d(k))
            shape = (c, ho, wo)
    if len(shape) == 3:
        modules.append(nn.Flatten())
    n = math.prod(shape)
    sizes = [n] + [x.neurons for x in layers if isinstance(x, Fc)] + [n_out]
    count = len(sizes) - 1 if modules else len(sizes) - 2  # before each Linear but a first
    seeds = iter(seed_sequence(dropout_seed).spawn(count) if dropout else [])
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if dropout and modules:
            modules.append(nn.Dropout(dropout, seed=next(seeds)))
        modules.append(nn.Linear(a, b, init=init, seed=rng, dtype=dtype))
        modules.append(activation() if i < len(sizes) - 2 else output())
    return modules
