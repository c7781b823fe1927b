"""Layers: ``Linear`` (z = w a + b), ``Conv2d`` and pooling (chapter 6), ``Sequential`` (layers
one after another) and activations.

The book's network ``[784, 30, 10]`` with sigmoid neurons is::

    net = nn.Sequential(nn.Linear(784, 30), nn.Sigmoid(), nn.Linear(30, 10), nn.Sigmoid())

Inputs are batches of row vectors: ``x`` has shape (n, in_features), one example per row (the
book stacks examples as columns; the transpose changes nothing else).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, overload

import numpy as np

from ..autograd.mode import draw, note_state
from ..ops.conv import pair
from ..tensor import _NOT_GIVEN, Seed, Tensor, _either, get_default_dtype, seed_sequence
from . import init as init_
from .functional import avg_pool2d, conv2d, linear, max_pool2d
from .module import Module, Parameter, as_input

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MaxPool2d",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
]

InitFn = Callable[[Tensor, "Tensor | None", np.random.Generator], None]

#: The named initialisation schemes of :class:`Linear` and :class:`Conv2d` (the one list of
#: them: ``build_network``, the train command's ``--init`` and checkpoints take these names):
#: name -> (the :mod:`~tinygrad_sgd.nn.init` function that fills the weight, and whether the
#: bias is drawn from N(0, 1), as in the book, or set to 0).  ``"xavier"`` and ``"he"`` are the
#: normal variants of Xavier/Glorot and He/Kaiming.
INITIALISERS: dict[str, tuple[Callable[..., Tensor], bool]] = {
    "standard": (init_.standard_normal_, True),
    "scaled": (init_.scaled_normal_, True),
    "xavier_uniform": (init_.xavier_uniform_, False),
    "xavier_normal": (init_.xavier_normal_, False),
    "xavier": (init_.xavier_normal_, False),
    "kaiming_uniform": (init_.kaiming_uniform_, False),
    "kaiming_normal": (init_.kaiming_normal_, False),
    "he": (init_.kaiming_normal_, False),
}
#: The names of :data:`INITIALISERS`.
INIT_SCHEMES = tuple(INITIALISERS)


def _initialise(layer: str, w: Tensor, b: Tensor | None, init: str | InitFn, seed: Seed) -> None:
    """Fill a layer's weight and bias with the scheme ``init`` (see :class:`Linear`); n_in is
    the weight's fan-in, every axis but the first (in_features, or C·kH·kW for a kernel)."""
    rng = init_.get_generator(seed)
    if callable(init):
        init(w, b, rng)
        return
    if not isinstance(init, str) or init not in INITIALISERS:
        raise ValueError(
            f"{layer}: unknown init {init!r}; use one of {', '.join(INIT_SCHEMES)} "
            "or a callable init(weight, bias, rng)"
        )
    # the book: chapter 3 scales the weights by 1/√n_in, chapter 1 does not; b ~ N(0, 1)
    weight_init, normal_bias = INITIALISERS[init]
    weight_init(w, seed=rng)
    if b is not None:
        if normal_bias:
            init_.standard_normal_(b, seed=rng)
        else:
            init_.zeros_(b)


class Linear(Module):
    """A fully connected layer: z = a Wᵀ + b for a batch of rows a (z = w a + b in the book).

    ``weight`` W has shape (out_features, in_features): row j holds the weights w_jk into neuron j,
    as in the book.  ``bias`` b has shape (out_features,) (or is None with ``bias=False``).

    ``init`` chooses the initial values:

    * ``"scaled"`` (default; the book's chapter 3 ``default_weight_initializer``):
      W ~ N(0, 1/in_features), b ~ N(0, 1);
    * ``"standard"`` (the book's chapter 1 ``network.py``): W ~ N(0, 1), b ~ N(0, 1);
    * ``"xavier_uniform"``, ``"xavier_normal"`` (also ``"xavier"``), ``"kaiming_uniform"``,
      ``"kaiming_normal"`` (also ``"he"``): W from that scheme (see :mod:`tinygrad_sgd.nn.init`),
      b = 0 (the table :data:`INITIALISERS`);
    * a callable ``init(weight, bias, rng)`` that fills the tensors in place (bias may be None).

    ``seed`` (None, an int or a ``numpy.random.Generator``) makes the values reproducible; pass one
    Generator to every layer of a network so that the layers differ.  ``dtype`` defaults to
    :func:`tinygrad_sgd.get_default_dtype`.
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str | InitFn = "scaled",
        seed: Seed = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        _add_parameters(self, "Linear", (self.out_features, self.in_features), bias, dtype)
        self.reset_parameters(init, seed)

    def reset_parameters(self, init: str | InitFn = "scaled", seed: Seed = None) -> None:
        """(Re)initialise weight and bias with the scheme ``init`` (see the class docstring)."""
        _initialise("Linear", self.weight, self.bias, init, seed)

    def forward(self, x: Any) -> Tensor:
        """z = x Wᵀ + b for x of shape (..., in_features).

        ``x`` may be anything ``Tensor()`` accepts (a nested list takes the layer's dtype, see
        :func:`~tinygrad_sgd.nn.module.as_input`).  A floating input of another dtype than the
        layer's is a ``TypeError`` naming both, as in PyTorch (a float64 batch in a float32
        network would silently compute in float64).
        """
        # NOTE: the hot path: one fused graph node (ops.Linear) instead of transpose, matmul, add.
        d = self.weight.dtype
        if not isinstance(x, Tensor):
            x = as_input(x, self)
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


def _add_parameters(
    layer: Module, name: str, shape: tuple[int, ...], bias: bool, dtype: Any
) -> None:
    """Register ``weight`` of ``shape`` (out first) and ``bias`` of (out,) or None, zeros of the
    floating ``dtype`` (default: the default dtype) until ``reset_parameters`` fills them."""
    d = get_default_dtype() if dtype is None else np.dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"{name}: dtype must be floating, got {d}")
    layer.weight = Parameter(np.zeros(shape, dtype=d))
    if bias:
        layer.bias = Parameter(np.zeros(shape[0], dtype=d))
    else:
        layer.register_parameter("bias", None)


def _positive_int(v: Any, name: str, layer: str) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{layer}: {name} must be an int, got {type(v).__name__}")
    if v <= 0:
        raise ValueError(f"{layer}: {name} must be positive, got {v}")
    return int(v)


class Conv2d(Module):
    """A convolutional layer (the book's chapter 6): ``out_channels`` feature maps, each made by
    one kernel of shared weights slid over the image, with one shared bias:

        z[n, o, i, j] = b[o] + Σ_{c,u,v} x̃[n, c, s·i + u, s·j + v] · w[o, c, u, v]

    (see :func:`tinygrad_sgd.nn.functional.conv2d`).  ``weight`` has shape (out_channels,
    in_channels, kH, kW), ``bias`` (out_channels,) or None with ``bias=False``.  Input (N,
    in_channels, H, W), output (N, out_channels, Ho, Wo).  The book's first convolutional
    layer, 20 feature maps from 5×5 local receptive fields of a 28×28 image, is
    ``Conv2d(1, 20, 5)``.

    ``init``, ``seed`` and ``dtype`` as for :class:`Linear`, with n_in = in_channels · kH · kW
    (the inputs of one neuron, PyTorch's fan-in): by default w ~ N(0, 1/n_in), b ~ N(0, 1).
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str | InitFn = "scaled",
        seed: Seed = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = _positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        self.padding = pair(padding, "padding", "Conv2d", 0)
        shape = (self.out_channels, self.in_channels) + self.kernel_size
        _add_parameters(self, "Conv2d", shape, bias, dtype)
        self.reset_parameters(init, seed)

    def reset_parameters(self, init: str | InitFn = "scaled", seed: Seed = None) -> None:
        """(Re)initialise weight and bias with the scheme ``init`` (see :class:`Linear`)."""
        _initialise("Conv2d", self.weight, self.bias, init, seed)

    def forward(self, x: Tensor) -> Tensor:
        """z = b + Σ w ⋆ x for x of shape (N, in_channels, H, W): see the class docstring."""
        if len(x.shape) != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d({self.extra_repr()}): expected input of shape (N, {self.in_channels}, "
                f"H, W), got shape {tuple(x.shape)}"
            )
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class _Pool2d(Module):
    """A pooling layer: windows of ``kernel_size`` every ``stride`` (by default the kernel size)."""

    _pool: Callable[..., Tensor]  # the function of nn.functional that pools

    def __init__(
        self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = pair(kernel_size, "kernel_size", name, 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Each window of x of shape (N, C, H, W) reduced to one number (its max or mean)."""
        return type(self)._pool(x, self.kernel_size, self.stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max-pooling (the book's chapter 6): each kernel_size window of every feature map is
    replaced by its maximum; windows ``stride`` apart, by default the kernel size (so 2 halves
    a 24×24 map to 12×12, as in the book)."""

    _pool = staticmethod(max_pool2d)


class AvgPool2d(_Pool2d):
    """Average pooling: each kernel_size window replaced by its mean; windows ``stride`` apart,
    by default the kernel size."""

    _pool = staticmethod(avg_pool2d)


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` joined into one (PyTorch's defaults: all but the batch
    axis), e.g. the 20 pooled 12×12 feature maps (N, 20, 12, 12) into rows (N, 2880) for a
    fully connected layer."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        for name, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Flatten: {name} must be an int, got {type(v).__name__}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        """x with axes ``start_dim`` to ``end_dim`` joined into one."""
        nd = len(x.shape)
        start, end = self.start_dim, self.end_dim
        if not (-max(nd, 1) <= start < max(nd, 1) and -max(nd, 1) <= end < max(nd, 1)):
            raise ValueError(
                f"Flatten: start_dim={start}, end_dim={end} out of range for an input of "
                f"shape {tuple(x.shape)}"
            )
        start, end = start % max(nd, 1), end % max(nd, 1)
        if start > end:
            raise ValueError(f"Flatten: start_dim={start} comes after end_dim={end}")
        shape = tuple(x.shape)
        joined = int(np.prod(shape[start : end + 1], dtype=np.int64))
        return x.reshape(shape[:start] + (joined,) + shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


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
        """Add ``module`` at the end (named by its position); returns the Sequential."""
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
        """Each layer applied to the previous one's output: a^l = layer_l(a^(l−1))."""
        for m in self._modules.values():
            if m is not None:
                x = m(x)
        return x


class Sigmoid(Module):
    """a = σ(z) = 1 / (1 + e^(−z)), the book's neuron; σ'(z) = σ(z)(1 − σ(z))."""

    def forward(self, z: Tensor) -> Tensor:
        """a = σ(z) = 1 / (1 + e^(−z))."""
        return z.sigmoid()


class Tanh(Module):
    """a = tanh(z); tanh'(z) = 1 − tanh²(z)."""

    def forward(self, z: Tensor) -> Tensor:
        """a = tanh z."""
        return z.tanh()


class ReLU(Module):
    """a = max(0, z); relu'(0) is taken as 0."""

    def forward(self, z: Tensor) -> Tensor:
        """a = max(0, z)."""
        return z.relu()


class LeakyReLU(Module):
    """a = z for z > 0, else slope · z."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, z: Tensor) -> Tensor:
        """a = z for z > 0, else negative_slope · z."""
        return z.leaky_relu(self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    """a_j = e^(z_j) / Σ_k e^(z_k) along ``axis`` (PyTorch's ``dim`` is accepted as well)."""

    def __init__(self, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = int(_either(type(self).__name__, axis, dim, -1))

    def forward(self, z: Tensor) -> Tensor:
        """a_j = e^(z_j) / Σ_k e^(z_k) along ``axis``."""
        return z.softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """a_j = z_j − ln Σ_k e^(z_k) along ``axis``, computed stably (PyTorch's ``dim`` is accepted
    as well)."""

    def __init__(self, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> None:
        super().__init__()
        self.axis = int(_either(type(self).__name__, axis, dim, -1))

    def forward(self, z: Tensor) -> Tensor:
        """a_j = z_j − ln Σ_k e^(z_k) along ``axis``."""
        return z.log_softmax(self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Identity(Module):
    """a = z."""

    def forward(self, z: Any) -> Any:
        """The input, unchanged."""
        return z


def _dropout_mask(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any,
                  p: float) -> np.ndarray:  # fmt: skip
    """r / (1 − p) with r_j ~ Bernoulli(1 − p): 1/(1 − p) where a uniform draw u_j ≥ p, else 0."""
    u = rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    mask = (u >= p).astype(dtype)
    mask *= 1 / (1 - p)
    return mask


class Dropout(Module):
    """Inverted dropout (the book's chapter 3): in training, each unit is kept with probability
    1 − p and scaled by 1/(1 − p), and dropped (set to 0) otherwise:

        a → a ⊙ r / (1 − p),   r_j ~ Bernoulli(1 − p) independently,

    so E[output] = a and the network needs no rescaling afterwards; under :meth:`eval` it is the
    identity.  (The book drops half the hidden neurons and halves their outgoing weights at test
    time; scaling by 1/(1 − p) while training is the same network in expectation.)  The gradient
    flows through the kept units only, times 1/(1 − p).

    A fresh mask r is drawn at every call in training mode, from the module's own generator
    ``self.generator`` (seeded by ``seed``: an int, a ``numpy.random.SeedSequence`` or
    ``Generator``, or None for one seeded from ``tg.default_generator``, see
    ``tg.manual_seed``), so a run is reproducible from its seed and resumable from
    ``generator.bit_generator.state``.  ``p`` must lie in [0, 1); p = 0 is the
    identity.
    """

    def __init__(
        self, p: float = 0.5, seed: int | np.random.SeedSequence | np.random.Generator | None = None
    ) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"Dropout: p must be a number in [0, 1), got {type(p).__name__}")
        if not 0 <= p < 1:
            raise ValueError(
                f"Dropout: p (the probability of dropping a unit) must lie in [0, 1), got {p}"
            )
        self.p = float(p)
        self.generator = (
            seed
            if isinstance(seed, np.random.Generator)
            else np.random.default_rng(seed_sequence(seed))
        )

    def forward(self, a: Tensor) -> Tensor:
        """In training, a ⊙ r / (1 − p) with a fresh mask r_j ~ Bernoulli(1 − p) at each call;
        in evaluation (``eval()``), a unchanged."""
        note_state(self, "p")  # tg.compile: a replay checks that p is still the same
        if not self.training or self.p == 0:
            return a
        # NOTE: drawn here at every call, never cached: each training step sees a new mask
        # (and, through autograd.mode.draw, each replay of a compiled step).
        mask = draw(self.generator, _dropout_mask, a.shape, a.dtype, self.p)
        return a * Tensor.from_numpy(mask)

    def extra_repr(self) -> str:
        return f"p={self.p}"
