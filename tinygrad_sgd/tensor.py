"""``Tensor``: a NumPy array that remembers how it was computed.

Every method here is a thin call of one op from :mod:`tinygrad_sgd.ops` (or a short composition
of them); the mathematics lives in the ops.  The dtype policy follows the ``torch.Tensor``
constructor (``torch.Tensor([1, 2])`` is a float tensor), not NumPy, which keeps integers as
integers: floating arrays keep their dtype, while Python numbers, lists and integer arrays become
the default float dtype (float64 unless :func:`set_default_dtype` says otherwise).  Pass
``dtype=`` (e.g. ``Tensor(y, dtype=np.int64)`` for class labels) to keep integers.
"""

from __future__ import annotations

import inspect
import itertools
import math
import operator
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import autograd, ops
from .autograd import Context, backward, inplace

_default_dtype: np.dtype[Any] = np.dtype(np.float64)

Axis = int | Sequence[int] | None
#: A real number (written before the class, whose method ``float`` would shadow the name).
_Number = int | float


def set_default_dtype(dtype: Any) -> None:
    """Make ``dtype`` (float16, float32 or float64) the dtype of new tensors built from Python
    numbers, lists and integer arrays.  Floating NumPy arrays always keep their own dtype."""
    global _default_dtype
    d = np.dtype(dtype)
    if d.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {d}")
    _default_dtype = d


def get_default_dtype() -> np.dtype[Any]:
    """The current default floating dtype."""
    return _default_dtype


#: The generator of every random draw made without a ``seed=``: ``Tensor.randn`` and
#: ``Tensor.uniform``, the initialisers of :mod:`tinygrad_sgd.nn.init` and of the layers, and the
#: seeds of the generators that ``nn.Dropout``, ``DataLoader``, ``fit`` and ``build_network`` own.
#: :func:`manual_seed` resets it (the same object, as ``torch.default_generator``).
default_generator: np.random.Generator = np.random.Generator(np.random.PCG64())

Seed = int | np.random.Generator | None


def manual_seed(seed: int) -> np.random.Generator:
    """Seed :data:`default_generator` (``torch.manual_seed``) and return it: after
    ``tg.manual_seed(s)`` a script's random draws without ``seed=`` (initial weights, dropout
    masks, shuffling, ``Tensor.randn``) are the same at every run.  Its stream is that of
    ``np.random.default_rng(s)``; ``seed`` is an int ≥ 0 (NumPy's rule)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"manual_seed: seed must be >= 0 (NumPy's seeds are), got {seed}")
    default_generator.bit_generator.state = np.random.PCG64(int(seed)).state
    return default_generator


def get_generator(seed: Seed = None) -> np.random.Generator:
    """The generator for ``seed``: :data:`default_generator` for None, a new
    ``np.random.default_rng(seed)`` for an int, or the ``numpy.random.Generator`` given."""
    if seed is None:
        return default_generator
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return np.random.default_rng(int(seed))
    raise TypeError(
        f"seed must be None, an int or a numpy.random.Generator, got {type(seed).__name__}"
    )


def seed_sequence(seed: int | np.random.SeedSequence | None = None) -> np.random.SeedSequence:
    """``np.random.SeedSequence(seed)`` for the generator an object owns (a dropout layer's, a
    data loader's), except that None takes its entropy from :data:`default_generator`, so that
    :func:`manual_seed` fixes those generators too.  A SeedSequence is returned as it is."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence(default_generator.integers(0, 2**63, size=2).tolist())
    return np.random.SeedSequence(seed)


def _as_array(data: Any, dtype: Any) -> np.ndarray:
    """Convert constructor input to an owned ndarray following the dtype policy."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        d = np.dtype(dtype)
        if d.kind not in "biuf":
            raise TypeError(f"Tensor: unsupported dtype {d}; use a bool, integer or float dtype")
        # NOTE: np.array(x, dtype=float) would turn None into NaN and parse strings ("3" -> 3.0);
        # the input itself must be numeric, with or without dtype=.
        src = data if isinstance(data, (np.ndarray, np.generic)) else None
        if src is None and not isinstance(data, (bool, int, float)):
            try:
                src = np.asarray(data)
            except ValueError:
                src = None  # ragged: np.array below says so
        if src is not None and src.dtype.kind not in "biuf":
            raise TypeError(
                f"Tensor: unsupported data of dtype {src.dtype} (from {type(data).__name__}); "
                "expected numbers, nested lists of numbers, or a bool/integer/float ndarray"
            )
        try:
            return np.array(data, dtype=d)
        except (TypeError, ValueError) as e:
            raise type(e)(f"Tensor: cannot convert {type(data).__name__} to {d}: {e}") from None
    is_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"Tensor: cannot build an array from this input: {e}") from None
    kind = arr.dtype.kind
    if kind in "iu" or (kind == "f" and not is_numpy):
        return arr.astype(_default_dtype)
    if kind in "bf":
        return arr
    raise TypeError(
        f"Tensor: unsupported data of dtype {arr.dtype} (from {type(data).__name__}); "
        "expected numbers, nested lists of numbers, or a bool/integer/float ndarray"
    )


def _no_value_reads(what: str) -> None:
    """Inside a step that ``tg.compile`` records, Python must not read tensor values: the replay
    runs the recorded kernels only, so a branch decided by the value would be frozen."""
    if autograd.mode._state.recording is not None:
        raise RuntimeError(
            f"{what} reads a tensor's value while tg.compile records a step: the replay would not "
            "read it again, freezing whatever Python decided with it.  Return the tensor from "
            "the step and read it outside, or run this step without tg.compile"
        )


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """Accept both ``f(2, 3)`` and ``f((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        # operator.index, not int(): a float (2.5), a string ("3") or NaN is not a length; nor,
        # as in NumPy, is a bool (operator.index(True) would be 1).
        if any(isinstance(s, (bool, np.bool_)) for s in shape):
            raise TypeError
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be integers, got {shape!r}") from None


def _keep(keepdims: Any) -> bool:
    """``keepdims`` as a bool; anything but True/False (or 0/1) is a TypeError."""
    if keepdims is True or keepdims is False:
        return keepdims
    if isinstance(keepdims, (np.bool_, int, np.integer)) and keepdims in (0, 1):
        return bool(keepdims)
    raise TypeError(f"keepdims must be True or False, got {keepdims!r}")


class _NotGiven:
    """The default of an argument that also has a PyTorch name: tells "not given" from an
    explicit value (None is an axis argument's "all axes")."""

    def __repr__(self) -> str:
        return "<not given>"


_NOT_GIVEN: Any = _NotGiven()


def _either(
    fn: str, value: Any, alias: Any, default: Any = None, names: tuple[str, str] = ("axis", "dim")
) -> Any:
    """One argument under NumPy's and PyTorch's ``names`` (``axis``/``dim``, ``keepdims``/
    ``keepdim``): ``value`` (NumPy's, :data:`_NOT_GIVEN` when not given) or ``alias``
    (PyTorch's, None when not given); both given is a TypeError, neither gives ``default``."""
    if alias is None:
        return default if value is _NOT_GIVEN else value
    if value is not _NOT_GIVEN:
        raise TypeError(
            f"{fn}: got both {names[0]}={value!r} and {names[1]}={alias!r}, NumPy's and "
            f"PyTorch's names of the same argument; pass one"
        )
    return alias


def _keepdims(fn: str, keepdims: Any, keepdim: Any) -> bool:
    """NumPy's ``keepdims`` or PyTorch's ``keepdim`` (at most one; default False), a bool."""
    return _keep(_either(fn, keepdims, keepdim, False, ("keepdims", "keepdim")))


def _ddof(fn: str, ddof: Any, correction: Any, unbiased: Any) -> float:
    """The ``ddof`` of var/std from NumPy's ``ddof`` or PyTorch's ``correction`` (the same
    number) or ``unbiased`` (True: 1, False: 0); at most one may be given; default 0."""
    given = [
        (k, v)
        for k, v in (("ddof", ddof), ("correction", correction), ("unbiased", unbiased))
        if v is not None
    ]
    if len(given) > 1:
        raise TypeError(
            f"{fn}: got {' and '.join(f'{k}={v!r}' for k, v in given)}; these say the same "
            "thing (ddof=c is correction=c; unbiased=True is ddof=1), pass one"
        )
    if not given:
        return 0
    name, v = given[0]
    if name == "unbiased":
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{fn}: unbiased must be True or False, got {v!r}")
        return 1 if v else 0
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a number, got {type(v).__name__}")
    return float(v)


def _reciprocal(n: float) -> float:
    """1/n for a count n > 0.  For n <= 0 (an empty reduction, or ddof >= n) infinity, so that
    the result is NaN (0·∞) or ∞, what NumPy's division by a count of zero gives; NaN for a NaN
    count (ddof=nan), as in NumPy."""
    if n > 0:
        return 1.0 / n
    return math.nan if math.isnan(n) else math.inf


class RemovableHandle:
    """Returned by :meth:`Tensor.register_hook`; ``remove()`` unregisters the hook."""

    _ids = itertools.count()

    def __init__(self, hooks: dict[int, Any]) -> None:
        self._hooks = hooks
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation.

    >>> w = Tensor([[0.5, -1.0]], requires_grad=True)   # doctest: +SKIP
    >>> a = (w @ Tensor([[1.0], [2.0]])).sigmoid()       # a = σ(w x)
    >>> a.sum().backward(); w.grad                      # ∂a/∂w = σ'(z) xᵀ

    ``data`` is the NumPy array; ``grad`` is ``None`` or a Tensor of the same shape and dtype,
    filled (accumulated) by :meth:`backward` for leaves with ``requires_grad=True``.
    """

    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_hooks", "_retains_grad", "__weakref__")

    # ndarray (op) Tensor and np.exp(t) come to __array_ufunc__, which records Tensor ops.
    __array_priority__ = 1000.0

    data: np.ndarray
    grad: Tensor | None
    requires_grad: bool
    _ctx: Context | None
    _hooks: dict[int, Callable[[Tensor], Tensor | None]] | None
    _retains_grad: bool

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None) -> None:
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind != "f":
            raise TypeError(
                f"requires_grad=True needs a floating dtype, but this tensor is {arr.dtype}: "
                "only floating point tensors have gradients"
            )
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._hooks = None
        self._retains_grad = False

    @classmethod
    def _wrap(
        cls, data: np.ndarray, requires_grad: bool = False, ctx: Context | None = None
    ) -> Tensor:
        """Internal fast constructor: wrap an array as it is (no copy, no checks)."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = ctx
        t._hooks = None
        t._retains_grad = False
        return t

    @staticmethod
    def from_numpy(array: np.ndarray) -> Tensor:
        """A Tensor that shares ``array``'s memory (``torch.from_numpy``): no copy, same dtype.

        Writes to the array show in the tensor and the other way round.  While a live graph has
        saved the array for backward, it (and the array it is a view of) is read-only, so that
        the gradient cannot be computed from values the forward pass did not see
        (see autograd/inplace.py).  ``Tensor(array)`` copies instead.
        """
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"Tensor.from_numpy expects a numpy.ndarray, got {type(array).__name__}"
            )
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"Tensor.from_numpy: unsupported dtype {array.dtype}; use a bool, integer or "
                "float array"
            )
        return Tensor._wrap(array)

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        """A copy with its own data (and ``.grad``), as a leaf; only leaves can be copied."""
        self._check_leaf("copy.deepcopy")
        t = Tensor._wrap(self.data.copy(), self.requires_grad)
        memo[id(self)] = t
        if self.grad is not None:
            t.grad = Tensor._wrap(self.grad.data.copy())
        return t

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        """Pickle a leaf as its data, ``requires_grad`` and ``.grad`` (never the graph)."""
        self._check_leaf("pickle")
        grad = None if self.grad is None else self.grad.data
        return (_unpickle_tensor, (self.data, self.requires_grad, grad))

    def _check_leaf(self, what: str) -> None:
        if self._ctx is not None:
            raise RuntimeError(
                f"{what}: only leaf tensors (created by the user, or detached) can be copied; "
                f"this one was computed by {self._ctx.name}. Copy t.detach() instead, or "
                "t.detach().requires_grad_() for a new leaf."
            )

    def _overwrite(self, values: Any) -> None:
        """Replace this tensor's values (for optimizers, initialisers and ``load_state_dict``).

        In place when the array is writeable; when a live graph saved it for backward it is
        read-only (see autograd/inplace.py), and the tensor gets a new array
        instead, so the graph keeps the values its backward needs.
        """
        if self.data.flags.writeable:
            np.copyto(self.data, values, casting="same_kind")
        else:
            self.data = np.array(values, dtype=self.data.dtype).reshape(self.data.shape)

    # ---------------------------------------------------------------- properties

    @property
    def shape(self) -> tuple[int, ...]:
        """The length of each axis, as NumPy's ``ndarray.shape``."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """The number of axes, ``len(shape)``."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """The number of elements, the product of ``shape``."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy dtype of ``.data`` (and of ``.grad``)."""
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._ctx is None

    @property
    def grad_fn(self) -> Context | None:
        """The recorded op that produced this tensor (``None`` for leaves)."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        """All axes reversed (the matrix transpose for 2-D)."""
        return self.transpose()

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied, as with ``torch.Tensor.numpy``)."""
        _no_value_reads("numpy()")
        return self.data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        _no_value_reads("item()")
        if self.size != 1:
            raise ValueError(f"item(): the tensor has {self.size} elements (shape {self.shape})")
        return self.data.item()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(t)`` and ``np.array(t, dtype, copy=...)``, with NumPy 2's ``copy``:

        * ``copy=None`` (``np.asarray``): the tensor's own array, no copy, unless ``dtype``
          asks for a conversion;
        * ``copy=True`` (``np.array``'s default): always a new array;
        * ``copy=False``: the tensor's own array (a view of its memory: writes to it change the
          tensor), or ``ValueError`` when that is impossible (another ``dtype``), as NumPy.

        While a live graph has saved the tensor's array for backward the array is read-only
        (autograd/inplace.py), and so is what ``copy=None``/``False`` return: a write raises
        NumPy's "assignment destination is read-only" rather than changing values the backward
        pass needs.  Take a copy (``copy=True``) to write to it.
        """
        if dtype is not None and np.dtype(dtype) != self.dtype:
            if copy is False:
                raise ValueError(
                    f"Unable to avoid copy while creating an array as requested: the tensor is "
                    f"{self.dtype}, not {np.dtype(dtype)} (copy=False never converts)"
                )
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's ufuncs on Tensors (``np.exp(t)``, ``np.maximum(t, 0)``, ``array + t``).

        A ufunc with a Tensor operation here (see :data:`_UFUNCS`: arithmetic, ``matmul``,
        ``exp``, ``log``, ``sqrt``, ``abs``, ``sin``, ``cos``, ``tanh``, ``square``, ``rint``,
        ``maximum``, ``minimum``) runs that operation: the result is a Tensor, recorded for
        backward like ``t.exp()``.  Any other ufunc runs on the values and gives a Tensor that is
        not connected to the graph, so it is refused with a ``TypeError`` when that would cut a
        gradient: a floating result from a tensor that requires grad, with grad mode on
        (``np.log1p(w)``; write it with Tensor operations, or apply it to ``w.detach()``).
        Comparisons and tests (``np.less``, ``np.isfinite``) give bool Tensors, as ``t < 0``.
        ``out=`` and the ufunc methods (``np.add.reduce``...) are refused, naming the method.
        """
        return _numpy_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(
        self, func: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """NumPy's functions on Tensors (``np.sum(t)``, ``np.concatenate([t, u])``).

        A function with a Tensor version here (:data:`_FUNCTIONS`: ``sum``, ``mean``, ``var``,
        ``std``, ``max``, ``min``, ``argmax``, ``argmin``, ``clip``, ``round``, ``transpose``,
        ``swapaxes``, ``reshape``, ``squeeze``, ``expand_dims``, ``concatenate``, ``stack``,
        ``where``) calls it with NumPy's arguments, giving a recorded Tensor; NumPy arguments
        that it does not have (``out=``, ``dtype=``, ``where=``...) are a ``TypeError``.  Any
        other function runs on the values and returns what NumPy returns (``np.allclose(t, x)``
        a bool), except that a floating array computed from a tensor that requires grad, with
        grad mode on, is a ``TypeError`` (it would be cut from the graph).
        """
        return _numpy_function(func, args, kwargs)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        extra = ""
        if self.dtype != _default_dtype and self.dtype.kind == "f" or self.dtype.kind != "f":
            extra += f", dtype={self.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a one-element tensor's value; an empty spec gives repr()."""
        if not spec:
            return repr(self)
        if self.size != 1:
            raise TypeError(
                f"format spec {spec!r} needs a one-element tensor, got shape {self.shape}; "
                "format t.item() or t.numpy() instead"
            )
        return format(self.data.item(), spec)

    def tolist(self) -> Any:
        """The values as (nested lists of) Python numbers (``ndarray.tolist``)."""
        return self.data.tolist()

    def numel(self) -> int:
        """The number of elements (``size``)."""
        return self.data.size

    def __bool__(self) -> bool:
        _no_value_reads("bool(tensor)")
        return bool(self.data)

    def __float__(self) -> float:
        _no_value_reads("float(tensor)")
        return float(self.item())

    def __int__(self) -> int:
        _no_value_reads("int(tensor)")
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu" or self.size != 1:
            raise TypeError("only one-element integer tensors can be used as an index")
        return int(self.data.item())

    __hash__ = object.__hash__

    # ---------------------------------------------------------------- autograd

    def backward(
        self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate dself/dleaf into ``leaf.grad`` for every leaf that requires grad.

        ``gradient`` is dC/dself (needed unless self has one element; then it is 1).
        The graph is freed afterwards unless ``retain_graph``; ``create_graph`` records the
        backward pass so the gradients can be differentiated again.
        """
        backward(self, gradient, retain_graph or create_graph, create_graph)

    def detach(self) -> Tensor:
        """The same data (shared) as a new leaf that is cut from the graph."""
        return Tensor._wrap(self.data)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only on leaves) and return self."""
        if not self.is_leaf and not flag:
            raise RuntimeError(
                "requires_grad_(False) on a non-leaf tensor: use detach() to cut it from the graph"
            )
        if flag and self.dtype.kind != "f":
            raise TypeError(f"requires_grad=True needs a floating dtype, not {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    def register_hook(self, fn: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``fn(grad)`` when this tensor's gradient has been computed during backward.

        ``fn`` may return a replacement gradient (which then flows on), or ``None``.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook on a tensor that does not require grad")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = fn
        return handle

    def _run_hooks(self, grad: Any) -> Any:
        """Called by backward with this tensor's gradient (an array, or a Tensor under
        ``create_graph``): run the hooks in order, on Tensors; a hook may return a new one."""
        g = grad if isinstance(grad, Tensor) else Tensor._wrap(grad)
        for hook in list(self._hooks.values()):  # type: ignore[union-attr]  # may remove itself
            new = hook(g)
            if new is None:
                continue
            new = new if isinstance(new, Tensor) else Tensor(new, dtype=self.dtype)
            if new.shape != self.shape:
                raise RuntimeError(
                    f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                    f"{new.shape} for a tensor of shape {self.shape}; a hook must keep the shape"
                )
            g = new if new.dtype == self.dtype else new.astype(self.dtype)
        return g if isinstance(grad, Tensor) else g.data

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad on a tensor that does not require grad")
        if self._ctx is not None:
            self._retains_grad = True

    # ---------------------------------------------------------------- constructors

    @staticmethod
    def _make(arr: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
        d = _default_dtype if dtype is None else np.dtype(dtype)
        return Tensor(arr.astype(d, copy=False), requires_grad=requires_grad)

    @staticmethod
    def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of zeros of the given shape (``Tensor.zeros(2, 3)`` or ``zeros((2, 3))``),
        as ``np.zeros``; the default float dtype unless ``dtype=``."""
        return Tensor._make(np.zeros(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of ones of the given shape, as ``np.ones``."""
        return Tensor._make(np.ones(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def full(shape: Any, value: float, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A tensor of ``shape`` with every element ``value``, as ``np.full``."""
        shp = _shape_arg((shape,))  # an int, or a tuple or list of ints
        return Tensor._make(np.full(shp, value), dtype, requires_grad)

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """The n × m identity matrix (m = n by default): ones on the diagonal, as ``np.eye``."""
        return Tensor._make(np.eye(n, m), dtype, requires_grad)

    @staticmethod
    def arange(
        start: float,
        stop: float | None = None,
        step: float = 1,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Evenly spaced values start, start + step, ... below stop, as ``np.arange``
        (``arange(n)``: 0, 1, ..., n − 1), in the default float dtype unless ``dtype=``."""
        arr = np.arange(start) if stop is None else np.arange(start, stop, step)
        return Tensor._make(arr, dtype, requires_grad)

    @staticmethod
    def randn(
        *shape: Any, seed: Seed = None, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """Samples of the standard normal N(0, 1) (``seed``: see :func:`get_generator`)."""
        rng = get_generator(seed)
        return Tensor._make(rng.standard_normal(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def uniform(
        *shape: Any,
        low: float = 0.0,
        high: float = 1.0,
        seed: Seed = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Samples of the uniform distribution on [low, high) (``seed``: see
        :func:`get_generator`)."""
        rng = get_generator(seed)
        return Tensor._make(rng.uniform(low, high, _shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def zeros_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Zeros of ``t``'s shape and (unless ``dtype=``) its dtype."""
        return Tensor(np.zeros(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)

    @staticmethod
    def ones_like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Ones of ``t``'s shape and (unless ``dtype=``) its dtype."""
        return Tensor(np.ones(t.shape, dtype=dtype or t.dtype), requires_grad=requires_grad)

    # ---------------------------------------------------------------- arithmetic

    def _operand(self, other: Any) -> Tensor:
        """Turn the other side of a binary operator into a Tensor.

        Python numbers take this tensor's dtype where NumPy's rules allow it (``x32 * 3.0`` stays
        float32), as NumPy treats Python scalars as "weak".  Anything else goes through the
        ``Tensor`` constructor (a copy, as in PyTorch): an ndarray operand is a constant that the
        caller's later writes neither fail on nor change.  To share memory instead, pass
        ``Tensor.from_numpy(array)``.
        """
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool)) and not isinstance(other, np.generic):
            dtype = self.data.dtype
            if dtype.kind != "f":  # a floating tensor keeps its dtype (and result_type costs 1 µs)
                dtype = np.result_type(dtype, other)
            return Tensor._wrap(np.asarray(other, dtype=dtype))
        return Tensor(other)  # an array is a constant: copied, so later writes cannot reach it

    def _binary(self, fn: type[autograd.Function], a: Any, b: Any, sym: str) -> Tensor:
        a = self._operand(a)
        b = self._operand(b)
        try:
            return fn.apply(a, b)
        except ValueError as e:
            if "broadcast" in str(e):
                raise ValueError(
                    f"{sym}: operands with shapes {a.shape} and {b.shape} cannot be broadcast "
                    "together (NumPy broadcasting: trailing dimensions must match or be 1)"
                ) from None
            raise

    def __add__(self, other: Any) -> Tensor:
        return self._binary(ops.Add, self, other, "+")

    def __radd__(self, other: Any) -> Tensor:
        return self._binary(ops.Add, other, self, "+")

    def __sub__(self, other: Any) -> Tensor:
        return self._binary(ops.Sub, self, other, "-")

    def __rsub__(self, other: Any) -> Tensor:
        return self._binary(ops.Sub, other, self, "-")

    def __mul__(self, other: Any) -> Tensor:
        return self._binary(ops.Mul, self, other, "*")

    def __rmul__(self, other: Any) -> Tensor:
        return self._binary(ops.Mul, other, self, "*")

    def __truediv__(self, other: Any) -> Tensor:
        return self._binary(ops.Div, self, other, "/")

    def __rtruediv__(self, other: Any) -> Tensor:
        return self._binary(ops.Div, other, self, "/")

    def __pow__(self, other: Any) -> Tensor:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return ops.PowScalar.apply(self, other)
        return self._binary(ops.Pow, self, other, "**")

    def __rpow__(self, other: Any) -> Tensor:
        return self._binary(ops.Pow, other, self, "**")

    def __matmul__(self, other: Any) -> Tensor:
        return _matmul(self, self._operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _matmul(self._operand(other), self)

    def __neg__(self) -> Tensor:
        return ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def pow(self, p: Any) -> Tensor:
        """Elementwise ``self ** p``."""
        return self.__pow__(p)

    def matmul(self, other: Any) -> Tensor:
        """The matrix product ``self @ other``, with NumPy's ``matmul`` rules (1-d operands,
        batches broadcast).  For z = w a: ∂C/∂w = δ aᵀ and ∂C/∂a = wᵀ δ, where δ = ∂C/∂z."""
        return self.__matmul__(other)

    # ---------------------------------------------------------------- in-place updates
    # PyTorch's semantics for updates such as ``with tg.no_grad(): w -= lr * w.grad``: the array
    # is changed in place and ``w`` stays the same leaf.  In-place writes are never recorded in
    # a graph, so with grad mode on:
    # * a leaf that requires grad refuses them (PyTorch's error: wrap the update in no_grad());
    # * where recording is needed otherwise (a tensor computed by an op, or an operand that
    #   requires grad) the operators ``+= -= *= /=`` compute out of place and rebind the name,
    #   recorded (``loss += penalty`` works; other references keep the old tensor), while the
    #   methods ``add_`` ... ``copy_`` refuse.
    # A tensor whose array a live graph saved for backward cannot be changed in place at all
    # (autograd/inplace.py).

    def _update(
        self,
        what: str,
        write: Callable[[np.ndarray, np.ndarray], Any],
        other: Any = 0,
        out_of_place: Callable[[Any], Tensor] | None = None,
    ) -> Tensor:
        """``write(self.data, other_array)`` in place after the checks above; returns self
        (or ``out_of_place(other)`` when that must be recorded)."""
        o = self._operand(other)
        if autograd.is_grad_enabled() and (self.requires_grad or o.requires_grad):
            if self._ctx is None and self.requires_grad:
                raise RuntimeError(
                    f"in-place {what} on a leaf tensor that requires grad, with grad mode on: "
                    "an update of parameters must not be recorded; wrap it in "
                    "`with tg.no_grad():` (as in PyTorch)"
                )
            if out_of_place is not None:
                return out_of_place(o)
            who = (
                f"computed by {self._ctx.name}"
                if self._ctx
                else "given an operand that requires grad"
            )
            raise RuntimeError(
                f"{what} on a tensor {who}, with grad mode on: in-place operations are not "
                "recorded for backward; write it out of place (t = t * 2, not t.mul_(2)), or "
                "update under `with tg.no_grad():` if it is not to be differentiated"
            )
        inplace.check_writeable(self.data, what)
        try:
            write(self.data, o.data)
        except ValueError as e:
            raise ValueError(
                f"in-place {what}: a value of shape {o.shape} cannot be broadcast to this "
                f"tensor's shape {self.shape} (in place, the result must keep the tensor's shape)"
            ) from e
        except TypeError as e:  # numpy's UFuncTypeError: the result cannot be cast back
            raise TypeError(
                f"in-place {what}: the result of {self.dtype} and {o.dtype} cannot be stored in "
                f"this tensor's dtype {self.dtype}; convert first (t = t.astype(...))"
            ) from e
        return self

    def add_(self, other: Any) -> Tensor:
        """In place ``self ← self + other`` (not recorded; see the rules above)."""
        return self._update("add_", _ufunc_into(np.add), other)

    def sub_(self, other: Any) -> Tensor:
        """In place ``self ← self − other``, e.g. the SGD step ``w.sub_(lr * w.grad)``."""
        return self._update("sub_", _ufunc_into(np.subtract), other)

    def mul_(self, other: Any) -> Tensor:
        """In place ``self ← self · other``."""
        return self._update("mul_", _ufunc_into(np.multiply), other)

    def div_(self, other: Any) -> Tensor:
        """In place ``self ← self / other``."""
        return self._update("div_", _ufunc_into(np.true_divide), other)

    def zero_(self) -> Tensor:
        """In place ``self ← 0`` (e.g. ``w.grad.zero_()``)."""
        return self._update("zero_", _copy_into, 0)

    def copy_(self, src: Any) -> Tensor:
        """In place ``self ← src``, broadcast to this tensor's shape and cast to its dtype."""
        return self._update("copy_", _copy_into, src)

    def __iadd__(self, other: Any) -> Tensor:
        return self._update("+=", _ufunc_into(np.add), other, self.__add__)

    def __isub__(self, other: Any) -> Tensor:
        return self._update("-=", _ufunc_into(np.subtract), other, self.__sub__)

    def __imul__(self, other: Any) -> Tensor:
        return self._update("*=", _ufunc_into(np.multiply), other, self.__mul__)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._update("/=", _ufunc_into(np.true_divide), other, self.__truediv__)

    # comparisons: bool tensors, never differentiable

    def _compare(self, other: Any, op: Callable[[Any, Any], Any]) -> Tensor:
        o = other.data if isinstance(other, Tensor) else other
        return Tensor._wrap(np.asarray(op(self.data, o)))

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, np.less)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, np.less_equal)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, np.greater_equal)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.equal)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, np.not_equal)

    # ---------------------------------------------------------------- elementwise

    def exp(self) -> Tensor:
        """eˣ elementwise.   d/dx eˣ = eˣ."""
        return ops.Exp.apply(self)

    def log(self) -> Tensor:
        """The natural logarithm ln x elementwise.   d/dx ln x = 1/x."""
        return ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        """√x elementwise.   d/dx √x = 1 / (2√x)."""
        return ops.Sqrt.apply(self)

    def abs(self) -> Tensor:
        """|x| elementwise.   d/dx |x| = sign(x), with abs'(0) = 0."""
        return ops.Abs.apply(self)

    def sin(self) -> Tensor:
        """sin x elementwise.   d/dx sin x = cos x."""
        return ops.Sin.apply(self)

    def cos(self) -> Tensor:
        """cos x elementwise.   d/dx cos x = −sin x."""
        return ops.Cos.apply(self)

    def tanh(self) -> Tensor:
        """tanh x = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ) elementwise.   d/dx tanh x = 1 − tanh² x."""
        return ops.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        """The sigmoid a = σ(z) = 1 / (1 + e^(−z)) elementwise, computed stably.
        σ'(z) = σ(z)(1 − σ(z))."""
        return ops.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """The rectified linear unit max(0, z) elementwise.   Its derivative is 1 for z > 0 and 0
        otherwise (relu'(0) = 0)."""
        return ops.Relu.apply(self)

    def softplus(self) -> Tensor:
        """ln(1 + eᶻ) elementwise, computed stably: a smooth relu.   Its derivative is σ(z)."""
        return ops.Softplus.apply(self)

    def leaky_relu(self, slope: float = 0.01) -> Tensor:
        """z for z > 0, slope · z otherwise.   Its derivative is 1 for z > 0, slope otherwise."""
        return ops.LeakyRelu.apply(self, slope)

    def clip(self, lo: float | None, hi: float | None) -> Tensor:
        """min(max(x, lo), hi) elementwise, as ``np.clip`` (``None``: no bound on that side).
        The gradient passes (factor 1) where lo ≤ x ≤ hi and is 0 where x was clipped."""
        return ops.Clip.apply(self, lo, hi)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """PyTorch's name for :meth:`clip`: values limited to [min, max]."""
        return ops.Clip.apply(self, min, max)

    def __abs__(self) -> Tensor:
        return ops.Abs.apply(self)

    def round(self, decimals: int = 0) -> Tensor:
        """x rounded to ``decimals`` decimal places (``np.round``: a half goes to the even
        neighbour, so 0.5 → 0 and 1.5 → 2; a negative ``decimals`` rounds to tens, hundreds...).

        A step function: its gradient is 0 almost everywhere (and taken as 0 at the jumps, as in
        PyTorch), so nothing flows back through it.
        """
        if isinstance(decimals, (bool, np.bool_)) or not isinstance(decimals, (int, np.integer)):
            raise TypeError(f"round: decimals must be an int, got {type(decimals).__name__}")
        return ops.Round.apply(self, int(decimals))

    def __round__(self, ndigits: int | None = None) -> Tensor:
        """``round(t)`` and ``round(t, n)``: :meth:`round` (a Tensor, as ``round`` of a
        ``torch.Tensor``; not a Python number)."""
        return self.round(0 if ndigits is None else ndigits)

    def astype(self, dtype: Any) -> Tensor:
        """A copy converted to ``dtype`` (differentiable between floating dtypes)."""
        d = np.dtype(dtype)
        if d.kind not in "biuf":
            raise TypeError(f"astype: unsupported dtype {d}; use a bool, integer or float dtype")
        return ops.Cast.apply(self, d)

    def float(self) -> Tensor:
        """``astype(np.float32)``, as ``torch.Tensor.float``."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """``astype(np.float64)``, as ``torch.Tensor.double``."""
        return self.astype(np.float64)

    def clone(self) -> Tensor:
        """A copy with its own buffer (differentiable: the gradient passes through unchanged)."""
        return ops.Clone.apply(self)

    # ---------------------------------------------------------------- reductions

    def sum(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Σ x over ``axis`` (an int, a tuple, or ``None`` for all), as ``np.sum``; ``keepdims``
        keeps the summed axes with length 1 (PyTorch's ``dim``/``keepdim`` are accepted too).
        ∂(Σx)/∂x_i = 1: the gradient is broadcast back."""
        ax = ops.normalize_axis(_either("sum", axis, dim), self.ndim)
        return ops.Sum.apply(self, ax, _keepdims("sum", keepdims, keepdim))

    def mean(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Σx / n over ``axis``."""
        ax = ops.normalize_axis(_either("mean", axis, dim), self.ndim)
        keep = _keepdims("mean", keepdims, keepdim)
        return ops.Sum.apply(self, ax, keep) * _reciprocal(ops.count(self.shape, ax))

    def var(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        ddof: _Number | None = None,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
        correction: _Number | None = None,
        unbiased: bool | None = None,
    ) -> Tensor:
        """Σ(x − mean)² / (n − ddof) over ``axis``, with NumPy's default ddof = 0 (the variance
        of the values themselves, as ``np.var``).

        ``torch.var`` defaults to the unbiased estimate instead, correction = 1 (Bessel's
        n − 1): PyTorch's ``correction=c`` is ``ddof=c`` and ``unbiased=True``/``False`` is
        ``ddof=1``/``0``; pass at most one of the three.
        """
        d = _ddof("var", ddof, correction, unbiased)
        ax = ops.normalize_axis(_either("var", axis, dim), self.ndim)
        diff = self - self.mean(ax, keepdims=True)
        keep = _keepdims("var", keepdims, keepdim)
        return (diff * diff).sum(ax, keep) * _reciprocal(ops.count(self.shape, ax) - d)

    def std(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        ddof: _Number | None = None,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
        correction: _Number | None = None,
        unbiased: bool | None = None,
    ) -> Tensor:
        """The standard deviation √var: √(Σ(x − mean)² / (n − ddof)) over ``axis``.

        The default follows NumPy (``np.std``): ddof = 0.  PyTorch's ``torch.std`` defaults to
        the unbiased n − 1 (correction = 1), so ``t.std()`` here is ``torch.std(t,
        correction=0)``; type ``t.std(ddof=1)`` (or ``correction=1``, ``unbiased=True``) for
        PyTorch's default.  The gradient is (x − mean) / ((n − ddof) · std); where std = 0 (all
        values equal) it is 0/0 = NaN, as in PyTorch.
        """
        d = _ddof("std", ddof, correction, unbiased)
        ax, keep = _either("std", axis, dim), _keepdims("std", keepdims, keepdim)
        return self.var(ax, keep, d).sqrt()

    def _sum_axes(self, axes: tuple[int, ...], keepdims: bool) -> Tensor:
        """Sum over axes that are already a sorted tuple of non-negative ints (for the engine's
        un-broadcasting, which runs for every broadcast input and needs no argument checks)."""
        return ops.Sum.apply(self, axes, keepdims)

    def max(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """The largest value over ``axis`` (``np.max``).  Unlike ``torch.max(t, dim)``, which
        returns (values, indices), this returns the values only; :meth:`argmax` the indices.
        The gradient goes to the maximum; k tied maxima share it equally (1/k each)."""
        ax = ops.normalize_axis(_either("max", axis, dim), self.ndim)
        return ops.Max.apply(self, ax, _keepdims("max", keepdims, keepdim))

    def min(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """The smallest value over ``axis`` (``np.min``); the values only, as :meth:`max`.
        The gradient goes to the minimum; k tied minima share it equally (1/k each)."""
        ax = ops.normalize_axis(_either("min", axis, dim), self.ndim)
        return ops.Min.apply(self, ax, _keepdims("min", keepdims, keepdim))

    def logsumexp(
        self,
        axis: Axis = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: Axis = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """ln Σ exp(x) over ``axis``, computed stably (as ``scipy.special.logsumexp``).
        Its gradient is the softmax: ∂/∂x_i = exp(x_i) / Σ_j exp(x_j)."""
        ax = ops.normalize_axis(_either("logsumexp", axis, dim), self.ndim)
        return ops.LogSumExp.apply(self, ax, _keepdims("logsumexp", keepdims, keepdim))

    def argmax(
        self,
        axis: int | None = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Index of the largest element (first on ties); an integer tensor without gradient."""
        ax = _either("argmax", axis, dim)
        keep = _keepdims("argmax", keepdims, keepdim)
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=ax, keepdims=keep)))

    def argmin(
        self,
        axis: int | None = _NOT_GIVEN,
        keepdims: bool = _NOT_GIVEN,
        *,
        dim: int | None = None,
        keepdim: bool | None = None,
    ) -> Tensor:
        """Index of the smallest element (first on ties); an integer tensor without gradient."""
        ax = _either("argmin", axis, dim)
        keep = _keepdims("argmin", keepdims, keepdim)
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=ax, keepdims=keep)))

    def softmax(self, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
        """exp(x_i) / Σ_j exp(x_j) along ``axis`` (default −1), computed stably."""
        ax = _either("softmax", axis, dim, -1)
        return ops.Softmax.apply(self, ops.normalize_axis(ax, self.ndim, single=True))

    def log_softmax(self, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
        """x_i − log Σ_j exp(x_j) along ``axis`` (default −1), computed stably."""
        ax = _either("log_softmax", axis, dim, -1)
        return ops.LogSoftmax.apply(self, ops.normalize_axis(ax, self.ndim, single=True))

    # ---------------------------------------------------------------- shape

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (``reshape(2, 3)`` or ``reshape((2, 3))``; one
        length may be −1), as ``np.reshape``.   The gradient is reshaped back."""
        return ops.Reshape.apply(self, _shape_arg(shape))

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes, with NumPy's meaning: ``transpose()`` reverses them all and
        ``transpose(*axes)`` lists the new order (so ``t.transpose(0, 1)`` of a 2-D tensor is
        ``t`` itself).  PyTorch's ``transpose(a, b)``, which swaps two axes, is
        :meth:`swapaxes`; its ``permute`` is :meth:`permute`."""
        ax = _shape_arg(axes) if axes else None
        return ops.Transpose.apply(self, ax)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the axes: output axis i is input axis ``dims[i]`` (``torch.permute``; NumPy's
        ``transpose(*axes)``).  Every axis must be named once."""
        ax = _shape_arg(dims)
        n = self.ndim
        order = tuple(a + n if -n <= a < 0 else a for a in ax)
        if sorted(order) != list(range(n)):
            raise ValueError(f"permute: {ax} is not a permutation of the {n} axes of {self.shape}")
        return ops.Transpose.apply(self, order)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes (``np.swapaxes``; PyTorch's ``transpose(dim0, dim1)``)."""
        a, b = (ops.normalize_axis(x, self.ndim, single=True) for x in (axis1, axis2))
        order = list(range(self.ndim))
        order[a], order[b] = order[b], order[a]
        return ops.Transpose.apply(self, tuple(order))

    @property
    def mT(self) -> Tensor:
        """The last two axes swapped: the matrix transpose of each matrix in a batch."""
        if self.ndim < 2:
            raise ValueError(f"mT needs at least 2 dimensions, got shape {self.shape}")
        return self.swapaxes(-2, -1)

    def view(self, *shape: Any) -> Tensor:
        """PyTorch's name for :meth:`reshape` (the result may be a copy, never a shared view
        whose writes show in ``self``)."""
        return self.reshape(*shape)

    def flatten(self) -> Tensor:
        """The elements as one axis, ``reshape(-1)``."""
        return self.reshape(-1)

    def squeeze(self, axis: Axis = _NOT_GIVEN, *, dim: Axis = None) -> Tensor:
        """Remove axes of length 1 (all of them, or those named; naming a longer one raises)."""
        axis = _either("squeeze", axis, dim)
        if axis is None:
            shape = tuple(n for n in self.shape if n != 1)
        else:
            ax = ops.normalize_axis(axis, self.ndim)
            assert ax is not None
            for a in ax:
                if self.shape[a] != 1:
                    raise ValueError(
                        f"squeeze: axis {a} has length {self.shape[a]}, not 1 (shape {self.shape})"
                    )
            shape = tuple(n for i, n in enumerate(self.shape) if i not in ax)
        return self.reshape(shape)

    def unsqueeze(self, axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
        """Insert an axis of length 1 at position ``axis`` (−ndim−1 ≤ axis ≤ ndim)."""
        axis = _either("unsqueeze", axis, dim)
        if axis is None:
            raise TypeError("unsqueeze: missing the axis (axis= or dim=)")
        n = self.ndim + 1
        try:
            axis = operator.index(axis)
        except TypeError:
            raise TypeError(f"unsqueeze: axis must be an int, got {type(axis).__name__}") from None
        if not -n <= axis < n:
            raise ValueError(f"unsqueeze: axis {axis} is out of range for a {self.ndim}-d tensor")
        axis %= n
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def broadcast_to(self, *shape: Any) -> Tensor:
        """A view of the tensor repeated to ``shape`` by NumPy's broadcasting rules, as
        ``np.broadcast_to``.   The gradient sums over the repeated axes."""
        shp = _shape_arg(shape)
        try:
            return ops.BroadcastTo.apply(self, shp)
        except ValueError:
            raise ValueError(
                f"broadcast_to: cannot broadcast shape {self.shape} to {shp}"
            ) from None

    def __getitem__(self, index: Any) -> Tensor:
        return ops.GetItem.apply(self, _index(index))


# ---------------------------------------------------------------- NumPy's ufuncs and functions


def _tensor_operand(x: Any) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _power(a: Any, b: Any) -> Tensor:
    return a.__pow__(b) if isinstance(a, Tensor) else b.__rpow__(a)


#: NumPy ufunc -> (the Tensor operation it runs, the spelling a message suggests).
_UFUNCS: dict[np.ufunc, tuple[Callable[..., Tensor], str]] = {
    np.add: (lambda a, b: _binary_fn(ops.Add, a, b, "+"), "a + b"),
    np.subtract: (lambda a, b: _binary_fn(ops.Sub, a, b, "-"), "a - b"),
    np.multiply: (lambda a, b: _binary_fn(ops.Mul, a, b, "*"), "a * b"),
    np.true_divide: (lambda a, b: _binary_fn(ops.Div, a, b, "/"), "a / b"),
    np.power: (_power, "a ** b"),
    np.matmul: (lambda a, b: _matmul(_tensor_operand(a), _tensor_operand(b)), "a @ b"),
    np.maximum: (lambda a, b: maximum(a, b), "tg.maximum(a, b)"),
    np.minimum: (lambda a, b: minimum(a, b), "tg.minimum(a, b)"),
    np.negative: (lambda x: -x, "-t"),
    np.positive: (lambda x: +x, "+t"),
    np.absolute: (lambda x: x.abs(), "t.abs()"),
    np.exp: (lambda x: x.exp(), "t.exp()"),
    np.log: (lambda x: x.log(), "t.log()"),
    np.sqrt: (lambda x: x.sqrt(), "t.sqrt()"),
    np.sin: (lambda x: x.sin(), "t.sin()"),
    np.cos: (lambda x: x.cos(), "t.cos()"),
    np.tanh: (lambda x: x.tanh(), "t.tanh()"),
    np.square: (lambda x: x * x, "t * t"),
    np.rint: (lambda x: x.round(), "t.round()"),
}

#: The Tensor methods that NumPy's ufunc methods correspond to, for the messages.
_UFUNC_METHODS: dict[tuple[Any, str], str] = {
    (np.add, "reduce"): "t.sum(axis)",
    (np.maximum, "reduce"): "t.max(axis)",
    (np.minimum, "reduce"): "t.min(axis)",
}


def _cuts_graph(values: Sequence[Any]) -> bool:
    """Would NumPy's result, computed from ``values``, lose a gradient that must flow?"""
    return autograd.is_grad_enabled() and any(
        isinstance(v, Tensor) and v.requires_grad for v in values
    )


def _floating(result: Any) -> bool:
    items = result if isinstance(result, tuple) else (result,)
    return any(isinstance(r, (np.ndarray, np.generic)) and r.dtype.kind in "fc" for r in items)


def _values(x: Any) -> Any:
    """Tensors (also inside lists and tuples) replaced by their arrays."""
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_values(v) for v in x)
    return x


def _numpy_ufunc(
    ufunc: np.ufunc, method: str, inputs: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """See :meth:`Tensor.__array_ufunc__`."""
    name = f"np.{ufunc.__name__}"
    entry = _UFUNCS.get(ufunc)
    if method != "__call__":
        hint = _UFUNC_METHODS.get((ufunc, method))
        raise TypeError(
            f"{name}.{method} on a Tensor is not supported"
            + (f"; use {hint}" if hint else "; use Tensor operations")
        )
    if "out" in kwargs:
        instead = entry[1] if entry else "Tensor operations"
        raise TypeError(
            f"{name}(..., out=...) with a Tensor: NumPy does not write into Tensors here; write "
            f"{instead} (a new Tensor), or under tg.no_grad() t.copy_(...) to update t in place"
        )
    if entry is not None:
        if kwargs:
            raise TypeError(
                f"{name} on a Tensor takes no keyword arguments (got {', '.join(kwargs)}); "
                f"write {entry[1]}"
            )
        return entry[0](*inputs)
    _no_value_reads(f"{name}(tensor)")
    result = ufunc(*_values(inputs), **kwargs)
    if _floating(result) and _cuts_graph(inputs):
        raise TypeError(
            f"{name} has no Tensor operation: its NumPy result would cut the graph of a tensor "
            "that requires grad.  Write it with Tensor operations (e.g. (1 + t).log() for "
            "np.log1p), or apply it to t.detach() if no gradient should flow through it"
        )
    if isinstance(result, tuple):
        return tuple(Tensor._wrap(np.asarray(r)) for r in result)
    return Tensor._wrap(np.asarray(result))


def _np_sum(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).sum(axis, keepdims)


def _np_mean(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).mean(axis, keepdims)


def _np_var(a: Any, axis: Axis = None, ddof: float = 0, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).var(axis, keepdims, ddof)


def _np_std(a: Any, axis: Axis = None, ddof: float = 0, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).std(axis, keepdims, ddof)


def _np_max(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).max(axis, keepdims)


def _np_min(a: Any, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).min(axis, keepdims)


def _np_argmax(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).argmax(axis, keepdims)


def _np_argmin(a: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    return _tensor_operand(a).argmin(axis, keepdims)


def _np_clip(a: Any, a_min: Any = None, a_max: Any = None) -> Tensor:
    return _tensor_operand(a).clip(a_min, a_max)


def _np_round(a: Any, decimals: int = 0) -> Tensor:
    return _tensor_operand(a).round(decimals)


def _np_transpose(a: Any, axes: Sequence[int] | None = None) -> Tensor:
    t = _tensor_operand(a)
    return t.transpose() if axes is None else t.transpose(*axes)


def _np_swapaxes(a: Any, axis1: int, axis2: int) -> Tensor:
    return _tensor_operand(a).swapaxes(axis1, axis2)


def _np_reshape(a: Any, shape: Any) -> Tensor:
    return _tensor_operand(a).reshape(shape)


def _np_squeeze(a: Any, axis: Axis = None) -> Tensor:
    return _tensor_operand(a).squeeze(axis)


def _np_expand_dims(a: Any, axis: int) -> Tensor:
    return _tensor_operand(a).unsqueeze(axis)


def _np_concatenate(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    return concatenate(list(arrays), axis)


def _np_stack(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    return stack(list(arrays), axis)


def _np_where(condition: Any, x: Any, y: Any) -> Tensor:
    return where(condition, x, y)


#: NumPy function -> its Tensor version, which takes the subset of NumPy's arguments it has.
_FUNCTIONS: dict[Any, Callable[..., Tensor]] = {
    np.sum: _np_sum,
    np.mean: _np_mean,
    np.var: _np_var,
    np.std: _np_std,
    np.max: _np_max,
    np.amax: _np_max,
    np.min: _np_min,
    np.amin: _np_min,
    np.argmax: _np_argmax,
    np.argmin: _np_argmin,
    np.clip: _np_clip,
    np.round: _np_round,
    np.around: _np_round,
    np.transpose: _np_transpose,
    np.swapaxes: _np_swapaxes,
    np.reshape: _np_reshape,
    np.squeeze: _np_squeeze,
    np.expand_dims: _np_expand_dims,
    np.concatenate: _np_concatenate,
    np.stack: _np_stack,
    np.where: _np_where,
}


def _numpy_function(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """See :meth:`Tensor.__array_function__`."""
    name = f"np.{getattr(func, '__name__', func)}"
    handler = _FUNCTIONS.get(func)
    if handler is not None:
        sig = inspect.signature(handler)
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            params = ", ".join(
                p.name + ("" if p.default is p.empty else f"={p.default!r}")
                for p in sig.parameters.values()
            )
            raise TypeError(
                f"{name} on a Tensor takes ({params}), the arguments that have a Tensor "
                f"version ({e}); compute the result as a Tensor and convert it afterwards"
            ) from None
        return handler(*args, **kwargs)
    _no_value_reads(f"{name}(tensor)")
    result = func(*_values(args), **{k: _values(v) for k, v in kwargs.items()})
    if _floating(result) and _cuts_graph(_flat(args) + _flat(tuple(kwargs.values()))):
        raise TypeError(
            f"{name} has no Tensor version: its NumPy result would cut the graph of a tensor "
            "that requires grad.  Write it with Tensor operations, or pass t.detach() if no "
            "gradient should flow through it"
        )
    return result


def _flat(values: tuple[Any, ...]) -> list[Any]:
    """The items of ``values``, with lists and tuples inside opened."""
    out: list[Any] = []
    for v in values:
        out.extend(_flat(tuple(v)) if isinstance(v, (list, tuple)) else [v])
    return out


# The engine makes Tensors of its results; bind it to the class now that it exists.
autograd.core._Tensor = Tensor


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise max(a, b); at ties each side gets half the gradient."""
    return _binary_fn(ops.Maximum, a, b, "maximum")


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise min(a, b); at ties each side gets half the gradient."""
    return _binary_fn(ops.Minimum, a, b, "minimum")


def _binary_fn(fn: type[autograd.Function], a: Any, b: Any, name: str) -> Tensor:
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    return ref._binary(fn, a, b, name)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if cond else b``; the gradient flows to the side that was chosen."""
    c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if c.dtype != np.bool_:
        raise TypeError(f"where: the condition must be boolean, got dtype {c.dtype}")
    ref = a if isinstance(a, Tensor) else b if isinstance(b, Tensor) else Tensor(a)
    ta, tb = ref._operand(a), ref._operand(b)
    try:
        return ops.Where.apply(c, ta, tb)
    except ValueError:
        raise ValueError(
            f"where: condition {c.shape}, a {ta.shape} and b {tb.shape} "
            "cannot be broadcast together"
        ) from None


def concatenate(
    tensors: Sequence[Any], axis: int = _NOT_GIVEN, *, dim: int | None = None
) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate``; default 0)."""
    axis = _either("concatenate", axis, dim, 0)
    ts = _tensor_list(tensors, "concatenate")
    ax = ops.normalize_axis(axis, ts[0].ndim, single=True)
    for k, t in enumerate(ts):
        if t.ndim != ts[0].ndim or any(
            n != m for i, (n, m) in enumerate(zip(t.shape, ts[0].shape)) if i != ax
        ):
            raise ValueError(
                f"concatenate: tensor {k} has shape {t.shape} but tensor 0 has {ts[0].shape}; "
                f"all dimensions except axis {axis} must match"
            )
    return ops.Concatenate.apply(*ts, axis=ax)


def cat(tensors: Sequence[Any], dim: int = 0) -> Tensor:
    """PyTorch's name for :func:`concatenate` (``dim`` is ``axis``)."""
    return concatenate(tensors, axis=dim)


def stack(tensors: Sequence[Any], axis: int = _NOT_GIVEN, *, dim: int | None = None) -> Tensor:
    """Join tensors of equal shape along a new axis (``np.stack``; default 0)."""
    axis = _either("stack", axis, dim, 0)
    ts = _tensor_list(tensors, "stack")
    for k, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ValueError(
                f"stack: tensor {k} has shape {t.shape} but tensor 0 has {ts[0].shape}; "
                "all must have the same shape"
            )
    n = ts[0].ndim + 1
    if not -n <= axis < n:
        raise ValueError(f"stack: axis {axis} is out of range for {n}-d output")
    return concatenate([t.unsqueeze(axis) for t in ts], axis=axis % n)


def _tensor_list(tensors: Sequence[Any], name: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(
            f"{name}: expected a list or tuple of tensors, got {type(tensors).__name__}"
        )
    if not tensors:
        raise ValueError(f"{name}: need at least one tensor")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


def _matmul(a: Tensor, b: Tensor) -> Tensor:
    """``a @ b`` with a clear error when the operands do not align."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} do not align: the last axis of the first "
            f"({k_a}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} axis of the "
            f"second ({k_b})"
        )
    try:
        return ops.MatMul.apply(a, b)
    except ValueError:
        raise ValueError(
            f"matmul: the batch axes of shapes {a.shape} and {b.shape} cannot be broadcast together"
        ) from None


def _ufunc_into(ufunc: np.ufunc) -> Callable[[np.ndarray, np.ndarray], Any]:
    """``ufunc(d, o)`` written into ``d`` (same-kind casting: float64 into float32 is fine)."""
    return lambda d, o: ufunc(d, o, out=d, casting="same_kind")


def _copy_into(d: np.ndarray, o: np.ndarray) -> None:
    np.copyto(d, o, casting="same_kind")


def _index(index: Any) -> Any:
    """Turn Tensors and lists inside an index into NumPy arrays; reject float indices."""
    if isinstance(index, tuple):
        return tuple(_index_part(i) for i in index)
    return _index_part(index)


def _integral_floats(values: np.ndarray, what: str) -> np.ndarray:
    """Floating ``values`` that are all exact integers (class labels that ``Tensor(y)`` turned
    into floats) as an ``intp`` array; a ``TypeError`` saying how to keep them integers when one
    is not (NaN, ±inf or a fraction: never rounded silently)."""
    ok = np.isfinite(values) & (values == np.round(values))
    if not ok.all():
        bad = values[~ok].flat[0]
        raise TypeError(
            f"{what} must be integers, got {values.dtype} with the value {bad!r}.  Tensor(y) "
            "makes floats of integers (the torch.Tensor rule); keep labels integers with "
            "Tensor(y, dtype=np.int64) or pass the NumPy array itself"
        )
    return values.astype(np.intp)


def _index_part(i: Any) -> Any:
    if isinstance(i, Tensor):
        i = i.data
        if i.dtype.kind == "f":  # integers that the constructor turned into floats
            i = _integral_floats(i, "index tensors (class labels)")
    elif isinstance(i, list):
        i = np.asarray(i)
        if i.size == 0:
            i = i.astype(np.intp)
    if isinstance(i, np.ndarray) and i.dtype.kind not in "biu":
        raise IndexError(f"index arrays must be integer or boolean, got dtype {i.dtype}")
    if isinstance(i, float):
        raise IndexError(f"float index {i!r}: indices must be integers, slices or arrays")
    return i


__all__ = [
    "Tensor",
    "cat",
    "concatenate",
    "default_generator",
    "get_default_dtype",
    "get_generator",
    "manual_seed",
    "maximum",
    "minimum",
    "seed_sequence",
    "set_default_dtype",
    "stack",
    "where",
]


def _unpickle_tensor(data: np.ndarray, requires_grad: bool, grad: np.ndarray | None) -> Tensor:
    t = Tensor._wrap(np.array(data), requires_grad)
    if grad is not None:
        t.grad = Tensor._wrap(np.array(grad))
    return t
