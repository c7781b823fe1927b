"""Layers: ``Linear`` (z = w a + b), ``Sequential`` (layers one after another) and activations.

The book's network ``[784, 30, 10]`` with sigmoid neurons is::

    net = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10), nn.Sigmoid())

Inputs are batches of row vectors: ``x`` has shape (n, in_features), one example per row (the
book stacks examples as columns; the transpose changes nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, overload

import numpy as np

from ..tensor import Tensor, get_default_dtype
from . import init as init_
from .functional import linear
from .module import Module, Parameter

__all__ = [
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]

InitFn = Callable[[Tensor, "Tensor | None", np.random.Generator], None]

#: The named initialisation schemes of :class:`Linear`: (weight scheme, bias scheme).
INIT_SCHEMES = (
    "scaled",
    "standard",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
)


class Linear(Module):
    """A fully connected layer: z = a Wᵀ + b for a batch of rows a (z = w a + b in the book).

    ``weight`` W has shape (out_features, in_features): row j holds the weights w_jk into neuron j,
    as in the book.  ``bias`` b has shape (out_features,) (or is None with ``bias=False``).

    ``init`` chooses the initial values:

    * ``"scaled"`` (default; the book's chapter 3 ``default_weight_initializer``):
      W ~ N(0, 1/in_features), b ~ N(0, 1);
    * ``"standard"`` (the book's chapter 1 ``network.py``): W ~ N(0, 1), b ~ N(0, 1);
    * ``"xavier_uniform"``, ``"xavier_normal"``, ``"kaiming_uniform"``, ``"kaiming_normal"``:
      W from that scheme (see :mod:`tinygrad_sgd.nn.init`), b = 0;
    * a callable ``init(weight, bias, rng)`` that fills the tensors in place (bias may be None).

    ``seed`` (None, an int or a ``numpy.random.Generator``) makes the values reproducible; pass one
    Generator to every layer of a network so that the layers differ.  ``dtype`` defaults to
    :func:`tinygrad_sgd.get_default_dtype`.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | InitFn = "scaled",
        seed: init_.Seed = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Linear: {name} must be an int, got {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"Linear: {name} must be positive, got {v}")
        d = get_default_dtype() if dtype is None else np.dtype(dtype)
        if d.kind != "f":
            raise TypeError(f"Linear: dtype must be floating, got {d}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.zeros((self.out_features, self.in_features), dtype=d))
        if bias:
            self.bias: Parameter | None = Parameter(np.zeros(self.out_features, dtype=d))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(init, seed)

    def reset_parameters(self, init: str | InitFn = "scaled", seed: init_.Seed = None) -> None:
        """(Re)initialise weight and bias with the scheme ``init`` (see the class docstring)."""
        rng = init_.get_generator(seed)
        w, b = self.weight, self.bias
        if callable(init):
            init(w, b, rng)
            return
        if init in ("scaled", "standard"):
            # the book: chapter 3 scales the weights by 1/√n_in, chapter 1 does not; b ~ N(0, 1)
            scheme = init_.scaled_normal_ if init == "scaled" else init_.standard_normal_
            scheme(w, seed=rng)
            if b is not None:
                init_.standard_normal_(b, seed=rng)
        elif init in ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal"):
            getattr(init_, init + "_")(w, seed=rng)
            if b is not None:
                init_.zeros_(b)
        else:
            raise ValueError(
                f"Linear: unknown init {init!r}; use one of {', '.join(INIT_SCHEMES)} "
                "or a callable init(weight, bias, rng)"
            )

    def forward(self, x: Any) -> Tensor:
        """z = x Wᵀ + b for x of shape (..., in_features).

        ``x`` may be anything ``Tensor()`` accepts (a nested list takes the layer's dtype).  A
        floating input of another dtype than the layer's is a ``TypeError`` naming both, as in
        PyTorch (a float64 batch in a float32 network would silently compute in float64).
        """
        # NOTE: the hot path: one fused graph node (ops.Linear) instead of transpose, matmul, add.
        d = self.weight.dtype
        if not isinstance(x, Tensor):
            floating = isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f"
            x = Tensor(x, dtype=None if floating else d)
        if x.dtype != d:
            raise TypeError(
                f"Linear({self.in_features}, {self.out_features}): the input is {x.dtype} but "
                f"the layer's parameters are {d}; convert the input (x.astype(np.{d})) or the "
                f"model (model.to(np.{x.dtype}))"
            )
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear({self.in_features}, {self.out_features}): expected input whose last "
                f"dimension is {self.in_features}, got shape {tuple(x.shape)}"
            )
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Sequential(Module):
    """Modules applied one after another: ``Sequential(f, g, h)(x) = h(g(f(x)))``.

    The sub-modules are named ``"0"``, ``"1"``, ..., so parameters are ``"0.weight"`` and so on.
    Supports ``len``, iteration, ``seq[i]`` (a module) and ``seq[i:j]`` (a new Sequential sharing
    the modules), and :meth:`append`.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential: every element must be a Module, got {type(module).__name__}"
            )
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(m for m in self._modules.values() if m is not None)

    @overload
    def __getitem__(self, idx: int) -> Module: ...

    @overload
    def __getitem__(self, idx: slice) -> Sequential: ...

    def __getitem__(self, idx: int | slice) -> Module:
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*[m for m in mods[idx] if m is not None])
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"Sequential indices must be ints or slices, not {type(idx).__name__}")
        if not -len(mods) <= idx < len(mods):
            raise IndexError(f"Sequential index {idx} is out of range for length {len(mods)}")
        m = mods[idx]
        assert m is not None
        return m

    def forward(self, x: Any) -> Any:
        for m in self._modules.values():
            if m is not None:
                x = m(x)
        return x


class Sigmoid(Module):
    """a = σ(z) = 1 / (1 + e^(−z)), the book's neuron; σ'(z) = σ(z)(1 − σ(z))."""

    def forward(self, z: Tensor) -> Tensor:
        return z.sigmoid()


class Tanh(Module):
    """a = tanh(z); tanh'(z) = 1 − tanh²(z)."""

    def forward(self, z: Tensor) -> Tensor:
        return z.tanh()


class ReLU(Module):
    """a = max(0, z); relu'(0) is taken as 0."""

    def forward(self, z: Tensor) -> Tensor:
        return z.relu()


class LeakyReLU(Module):
    """a = z for z > 0, else slope · z."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, z: Tensor) -> Tensor:
        return z.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    """a_j = e^(z_j) / Σ_k e^(z_k) along ``axis`` (PyTorch's ``dim`` is accepted as well)."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = int(axis if dim is None else dim)

    def forward(self, z: Tensor) -> Tensor:
        return z.softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """a_j = z_j − ln Σ_k e^(z_k) along ``axis``, computed stably."""

    def __init__(self, axis: int = -1, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = int(axis if dim is None else dim)

    def forward(self, z: Tensor) -> Tensor:
        return z.log_softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Identity(Module):
    """a = z."""

    def forward(self, z: Any) -> Any:
        return z
