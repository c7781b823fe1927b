"""``Tensor``: a NumPy array that remembers how it was computed.

Every method here is a thin call of one op from :mod:`tinygrad_sgd.ops` (or a short composition
of them); the mathematics lives in the ops.  The dtype policy follows NumPy: floating arrays keep
their dtype, while Python numbers, lists and integer arrays become the default float dtype
(float64 unless :func:`set_default_dtype` says otherwise).
"""

from __future__ import annotations

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

    # ndarray (op) Tensor must defer to Tensor's reflected operators, not broadcast elementwise.
    __array_ufunc__ = None
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
        if dtype is not None and np.dtype(dtype) != self.dtype:
            return self.data.astype(dtype)
        return self.data.copy() if copy else self.data

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
        *shape: Any, seed: int | None = None, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """Samples of the standard normal N(0, 1)."""
        rng = np.random.default_rng(seed)
        return Tensor._make(rng.standard_normal(_shape_arg(shape)), dtype, requires_grad)

    @staticmethod
    def uniform(
        *shape: Any,
        low: float = 0.0,
        high: float = 1.0,
        seed: int | None = None,
        dtype: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """Samples of the uniform distribution on [low, high)."""
        rng = np.random.default_rng(seed)
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

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Σ x over ``axis`` (an int, a tuple, or ``None`` for all), as ``np.sum``; ``keepdims``
        keeps the summed axes with length 1.   ∂(Σx)/∂x_i = 1: the gradient is broadcast back."""
        return ops.Sum.apply(self, ops.normalize_axis(axis, self.ndim), _keep(keepdims))

    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """Σx / n over ``axis``."""
        ax = ops.normalize_axis(axis, self.ndim)
        return ops.Sum.apply(self, ax, _keep(keepdims)) * _reciprocal(ops.count(self.shape, ax))

    def var(self, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
        """Σ(x − mean)² / (n − ddof) over ``axis`` (NumPy's default ddof=0)."""
        if not isinstance(ddof, (int, float, np.integer, np.floating)):
            raise TypeError(f"var: ddof must be a number, got {type(ddof).__name__}")
        ax = ops.normalize_axis(axis, self.ndim)
        d = self - self.mean(ax, keepdims=True)
        return (d * d).sum(ax, keepdims) * _reciprocal(ops.count(self.shape, ax) - ddof)

    def _sum_axes(self, axes: tuple[int, ...], keepdims: bool) -> Tensor:
        """Sum over axes that are already a sorted tuple of non-negative ints (for the engine's
        un-broadcasting, which runs for every broadcast input and needs no argument checks)."""
        return ops.Sum.apply(self, axes, keepdims)

    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The largest element over ``axis``, as ``np.max``.   The gradient goes to the maximum;
        k tied maxima share it equally (1/k each)."""
        return ops.Max.apply(self, ops.normalize_axis(axis, self.ndim), _keep(keepdims))

    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """The smallest element over ``axis``, as ``np.min``.   The gradient goes to the minimum;
        k tied minima share it equally (1/k each)."""
        return ops.Min.apply(self, ops.normalize_axis(axis, self.ndim), _keep(keepdims))

    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        """ln Σ exp(x) over ``axis``, computed stably (as ``scipy.special.logsumexp``).
        Its gradient is the softmax: ∂/∂x_i = exp(x_i) / Σ_j exp(x_j)."""
        return ops.LogSumExp.apply(self, ops.normalize_axis(axis, self.ndim), _keep(keepdims))

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the largest element (first on ties); an integer tensor without gradient."""
        return Tensor._wrap(np.asarray(np.argmax(self.data, axis=axis, keepdims=keepdims)))

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Index of the smallest element (first on ties), as ``np.argmin``; an integer tensor
        without gradient."""
        return Tensor._wrap(np.asarray(np.argmin(self.data, axis=axis, keepdims=keepdims)))

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(x_i) / Σ_j exp(x_j) along ``axis``, computed stably."""
        return ops.Softmax.apply(self, ops.normalize_axis(axis, self.ndim, single=True))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """x_i − log Σ_j exp(x_j) along ``axis``, computed stably."""
        return ops.LogSoftmax.apply(self, ops.normalize_axis(axis, self.ndim, single=True))

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

    def squeeze(self, axis: Axis = None) -> Tensor:
        """Remove axes of length 1 (all of them, or those named; naming a longer one raises)."""
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

    def unsqueeze(self, axis: int) -> Tensor:
        """Insert an axis of length 1 at position ``axis`` (−ndim−1 ≤ axis ≤ ndim)."""
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


def concatenate(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate``)."""
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


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of equal shape along a new axis (``np.stack``)."""
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


def _index_part(i: Any) -> Any:
    if isinstance(i, Tensor):
        i = i.data
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
    "get_default_dtype",
    "maximum",
    "minimum",
    "set_default_dtype",
    "stack",
    "where",
]


def _unpickle_tensor(data: np.ndarray, requires_grad: bool, grad: np.ndarray | None) -> Tensor:
    t = Tensor._wrap(np.array(data), requires_grad)
    if grad is not None:
        t.grad = Tensor._wrap(np.array(grad))
    return t
