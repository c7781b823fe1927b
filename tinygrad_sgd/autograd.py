"""The engine: grad mode, ``Function`` and its context, and the reverse-mode backward pass.

Everything else in the package is built on the three ideas in this file.

1. **Recording.** A differentiable operation is a subclass of :class:`Function` with a ``forward``
   (NumPy arrays in, one NumPy array out) and a ``backward`` (the gradient of the output in, one
   gradient per input out).  ``Function.apply`` runs ``forward`` and, when grad mode is on and some
   input requires a gradient, links the output tensor to a :class:`Context` that remembers the
   inputs and whatever ``forward`` saved.  The contexts form a directed acyclic graph.

2. **Backpropagation.** ``Tensor.backward`` walks that graph from the output back to the leaves in
   reverse topological order (an explicit stack, never recursion, so any depth works).  At each
   node it calls the op's ``backward`` with dC/d(output) and receives dC/d(input) for each input:
   the chain rule, one local Jacobian-vector product at a time.  Where a tensor feeds several ops
   (fan-out) its gradients are summed; where NumPy broadcast an input, the gradient is summed back
   down to the input's shape here, once, for every op.

3. **Higher order.** Each ``backward`` formula is written once, with operators and methods that
   NumPy arrays and Tensors share (``g * b``, ``g @ w``, ``.T``, ``.reshape``, ``.sum``) and
   :meth:`Function.call` for anything else.  With ``create_graph=True`` it receives Tensors and is
   recorded like any forward pass, so the gradient is itself a differentiable function of the
   inputs.  Normally it receives the NumPy arrays themselves (an op that declares
   ``array_backward = True``) and costs what the same formula costs in plain NumPy.

In the book's notation, for one layer z = w a + b, a' = σ(z), the engine reproduces
backpropagation's δ = ∂C/∂z = (∂C/∂a') ⊙ σ'(z), ∂C/∂b = δ, ∂C/∂w = δ aᵀ, ∂C/∂a = wᵀ δ without
knowing anything about layers: each of those products is one op's ``backward``.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import ContextDecorator
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "AnomalyError",
    "Context",
    "Function",
    "Grad",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "trace",
]

#: What a backward formula handles (``grad_output``, the saved values, the gradients it returns):
#: NumPy arrays in an ordinary backward pass, Tensors under ``create_graph`` (see
#: :class:`Function`).  Typed ``Any``: the formulas use only what the two share.
Grad = Any

# The Tensor class, bound by tensor.py when it is imported (the engine sits below the tensor layer,
# so it may not import it at module level).
_Tensor: Any = None


def _bind_tensor_class(cls: type) -> None:
    global _Tensor, _SOLE_OWNER_REFS
    _Tensor = cls
    _SOLE_OWNER_REFS = _probe_sole_owner_refs()


# --------------------------------------------------------------------------------------------
# Grad mode
# --------------------------------------------------------------------------------------------


class _State(threading.local):
    """Per-thread switches read by every ``Function.apply`` (grad mode is per thread)."""

    grad_enabled: bool = True
    anomaly: bool = False
    in_backward: Context | None = None  # under detect_anomaly: the op whose backward is running


_state = _State()


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backpropagation."""
    return _state.grad_enabled


class _GradMode(ContextDecorator):
    """Set grad mode inside a ``with`` block or a decorated function, and restore it afterwards.

    The previous modes are kept on a stack, so one instance may be entered again while it is
    active (a recursive decorated function) and every exit, normal or by exception, restores
    exactly the mode that was in force at the matching entry.
    """

    _mode: bool

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> _GradMode:
        self._previous.append(_state.grad_enabled)
        _state.grad_enabled = self._mode
        return self

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous.pop()


class no_grad(_GradMode):
    """Record nothing: ``with tg.no_grad(): ...`` or ``@tg.no_grad()``.

    Results computed inside have ``requires_grad=False`` and no graph, which is what evaluation
    and optimizer updates want.
    """

    _mode = False


class enable_grad(_GradMode):
    """Record operations again, for example inside a ``no_grad`` block."""

    _mode = True


# --------------------------------------------------------------------------------------------
# Function and Context
# --------------------------------------------------------------------------------------------

_OUTPUT = object()  # marks "the op's own output" among the saved values


class Context:
    """What one recorded operation remembers between ``forward`` and ``backward``.

    ``forward`` may store anything on it as attributes (``ctx.axis = axis``) and arrays through
    :meth:`save_for_backward`.  In ``backward``, :attr:`saved_tensors` gives them back as Tensors:
    a saved input array comes back as the input *Tensor* itself, the saved output array as the
    output Tensor, so that a backward formula written in Tensor operations is differentiable again
    under ``create_graph=True``.  Any other saved array comes back as a constant Tensor.  When the
    backward runs on arrays (an op with ``array_backward = True``, outside ``create_graph``),
    they come back as the saved arrays themselves, like ``grad_output``.
    """

    __slots__ = (
        "fn",
        "inputs",
        "needs_input_grad",
        "_saved",
        "_out",
        "_freed",
        "_site",
        "_locked",
        "_saved_data",
        "_arrays",
        "__dict__",
    )

    def __init__(self) -> None:
        self.fn: type[Function] = Function
        self.inputs: tuple[Tensor | None, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self._saved: tuple[Any, ...] = ()
        self._out: Any = None
        self._freed = False
        self._site: str | None = None
        self._locked: _Locks | None = None
        self._saved_data: tuple[np.ndarray | None, ...] = ()  # see _link
        self._arrays = False  # set by the engine: backward runs on arrays (saved_tensors too)

    if TYPE_CHECKING:  # ops store their own attributes on the context (ctx.axis = ...)

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` (usually forward's input or output arrays) for ``backward``."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The saved values, as Tensors, or as arrays when backward runs on arrays (see the
        class docstring); ``None`` stays ``None``."""
        if self._freed:
            raise RuntimeError(_freed_message(self))
        # Saved inputs and the output are already their Tensors (see _link); each must still
        # hold the array that forward saw, or the gradient would use other values.
        arrays = self._arrays
        values = []
        for v, a in zip(self._saved, self._saved_data or (None,) * len(self._saved)):
            if a is None:
                values.append(v if arrays else self._unpack(v))
                continue
            t = self._unpack(v) if v is _OUTPUT else v
            if t.data is not a:
                raise RuntimeError(_rebound_message(self, t))
            values.append(a if arrays else t)
        return tuple(values)

    def _unpack(self, v: Any) -> Any:
        if v is _OUTPUT:
            out = self._out()
            if out is None:  # only reachable from outside a backward pass
                raise RuntimeError(f"{self.name}: the output tensor saved for backward is gone")
            return out
        if isinstance(v, (np.ndarray, np.generic)):  # NumPy scalars too (np.max of a 0-d array)
            return _Tensor._wrap(np.asarray(v))
        return v

    def _link(self, out: Tensor) -> None:
        """After forward: swap saved input/output arrays for their Tensors (matched by identity).

        The output is held through a weak reference: a strong one would make a reference cycle
        (output -> context -> output) that only the cyclic garbage collector could free.  During
        backward the output is alive, since the engine reaches a context only through its output.
        """
        if not self._saved:
            return
        data = out.data
        inputs = self.inputs
        linked = []
        arrays: list[np.ndarray | None] = []  # the array each linked Tensor held at forward time
        counts = _lock_counts
        held = []
        for v in self._saved:
            if v is data:
                linked.append(_OUTPUT)
                self._out = weakref.ref(out)
            else:
                for t in inputs:
                    if t is not None and t.data is v:
                        linked.append(t)
                        break
                else:
                    linked.append(v)
                    arrays.append(None)
                    continue
            arrays.append(v)
            held.append(v)
        self._saved = tuple(linked)
        self._saved_data = tuple(arrays)
        if not held:
            return
        # Lock the saved arrays (see "In-place safety" below), counting the live contexts that
        # hold each one.
        locked = _Locks()
        with _lock_guard:
            for v in held:
                key = id(v)
                n = counts.get(key)
                if n is not None:
                    counts[key] = n + 1
                elif v.flags.writeable:
                    v.setflags(write=False)
                    counts[key] = 1
                else:
                    continue  # read-only already, not by us: nothing to count or undo
                locked.append(v)
        if locked:
            self._locked = locked

    def _free(self) -> None:
        self._locked = None  # unlocks the saved arrays (_Locks.__del__)
        self._saved = ()
        self._saved_data = ()
        self._out = None
        self.inputs = ()
        self._freed = True

    @property
    def name(self) -> str:
        """The op's name, e.g. ``"Mul"``."""
        return self.fn.__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"


# --------------------------------------------------------------------------------------------
# In-place safety: arrays saved for backward are read-only while their graph lives
# --------------------------------------------------------------------------------------------
#
# A backward formula reads the input arrays that forward saved (∂(a·b)/∂a = b needs b as it was).
# If the user wrote into one of them in between (``w.data[...] = 0``), the gradient would be
# silently wrong.  NumPy arrays have no version counter to check afterwards, so the engine
# prevents the write instead: a saved input or output array is made read-only
# (``flags.writeable = False``) until every graph that saved it is freed, by backward or by being
# dropped.  The write then fails at once with NumPy's "assignment destination is read-only".
# Arrays are counted, since several live graphs may save the same one (a weight used by two
# forward passes), and an array that was read-only to begin with (a broadcast view, a user's
# frozen array) is left as it was.  Giving a tensor a new array instead (``w.data = ...``) leaves
# the saved one intact but would pair the op with other values: ``saved_tensors`` checks that each
# saved Tensor still holds its array and raises, naming the op and the input, if not.
# Measured cost: about 1.3 µs for an op that saves two arrays (making and freeing its context:
# 1.6 µs instead of 0.2 µs), some 10 µs of a training step of the book's network at m = 10.

_lock_counts: dict[int, int] = {}  # id(array) -> number of live graph nodes that locked it
_lock_guard = threading.Lock()  # graphs may be built and freed in several threads at once


class _Locks(list):
    """The arrays one context locked, unlocked when this list is dropped: by ``Context._free``
    after backward, or together with its context when a graph is dropped without a backward.
    (A finaliser here rather than on ``Context``: only contexts that lock something pay for it.)
    """

    __slots__ = ()

    def __del__(self) -> None:
        counts = _lock_counts
        with _lock_guard:
            for a in self:
                key = id(a)
                n = counts[key] - 1
                if n:
                    counts[key] = n
                    continue
                del counts[key]
                try:
                    a.setflags(write=True)
                except ValueError:  # a view whose base became read-only meanwhile: leave it
                    pass


def _rebound_message(ctx: Context, t: Tensor) -> str:
    if ctx._out is not None and t is ctx._out():
        which = "its output"
    else:
        k = next(i for i, inp in enumerate(ctx.inputs) if inp is t)
        which = f"its input {k}"
    kind = "a leaf" if t.is_leaf else "an intermediate"
    return (
        f"{ctx.name}.backward: {which} ({kind} tensor of shape {t.shape}, {t.dtype}) was given a "
        f"new array (t.data = ...) after {ctx.name} saved it for backward, so the gradient would "
        "not match the forward pass. Call backward() before replacing a tensor's data, or run "
        "the forward pass again."
    )


def _freed_message(ctx: Context) -> str:
    return (
        f"Trying to backward through the graph a second time (at op {ctx.name}): its saved values "
        "were freed after the first backward. Pass retain_graph=True to the first backward() "
        "if you need to backpropagate through the same graph again."
    )


class Function:
    """Base class of every differentiable operation.

    Subclasses define two static methods::

        class Cube(tg.Function):
            @staticmethod
            def forward(ctx, x):             # NumPy arrays in, one NumPy array out
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            def backward(ctx, grad_output):  # dC/dy in, one dC/d(input) per forward input
                (x,) = ctx.saved_tensors      # the input *Tensor*
                return grad_output * 3 * x ** 2

    and are called as ``Cube.apply(t)``.

    * ``forward`` receives each Tensor argument as its NumPy array and every other argument
      (numbers, axes, shapes, keyword arguments) unchanged; it returns one array.
    * ``backward`` receives ``grad_output`` as a Tensor of the output's shape (an array, for an
      op that declares ``array_backward``, see below) and returns one value
      per *positional* argument of ``forward`` (a tuple when there are several): a Tensor, an array,
      or ``None`` (no gradient, e.g. for non-Tensor arguments or when
      ``ctx.needs_input_grad[i]`` is False).  Write it with Tensor operations on
      ``ctx.saved_tensors`` and ``grad_output`` so that ``create_graph=True`` can differentiate it
      again; use ``t.data`` for quantities that are locally constant (masks, signs).
    * A gradient may have the *broadcast* shape of the output: the engine sums it down to the
      input's shape (and casts it to the input's dtype).

    **Backward on arrays** (what the built-in ops do).  A Function that sets
    ``array_backward = True`` promises that its ``backward`` works on NumPy arrays as well as on
    Tensors: it uses only what both share (the operators, ``.T``, ``.reshape``, ``.transpose``,
    ``.sum``, ``.shape``, ``.ndim``, ``.dtype``, ``np.asarray(v)`` for locally constant values)
    and reaches other ops through :meth:`call`.  The engine then hands it ``grad_output`` and the
    saved values as plain arrays in an ordinary backward pass, so the formula costs what it
    costs in NumPy, with no Tensors or graph bookkeeping; under ``create_graph=True`` (and under
    ``detect_anomaly``, which checks each step) the same formula receives Tensors and is
    recorded.  One formula serves both: there is never a second copy of a derivative.  The
    Cube above qualifies (``grad_output * 3 * x ** 2`` means the same for both).  Never write
    into ``grad_output`` or a saved array; ``s *= g`` on a value the formula just made is fine
    (in place on an array, and a recorded ``s = s * g`` on a Tensor, which has no in-place ops).
    """

    #: True when ``backward`` works on NumPy arrays as well as on Tensors (see above).
    array_backward: bool = False

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("forward is not implemented")

    @classmethod
    def call(cls, *args: Any, **kwargs: Any) -> Any:
        """The op inside a backward formula: :meth:`apply` when some argument is a Tensor (the
        result is recorded under ``create_graph``), else ``forward`` run directly on the arrays
        (the NumPy result, with nothing recorded), so one formula serves both kinds of backward.
        """
        TensorCls = _Tensor
        for a in args:
            if isinstance(a, TensorCls):
                return cls.apply(*args, **kwargs)
        return cls.forward(Context(), *args, **kwargs)

    @staticmethod
    def backward(ctx: Context, grad_output: Grad) -> Any:
        raise NotImplementedError("backward is not implemented")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the arrays of ``args`` and return the result as a Tensor.

        The result is linked into the graph only when grad mode is on, some Tensor argument
        requires a gradient, and the result is floating point.
        """
        # NOTE: this runs for every op, forward and (inside backward formulas) backward, so it is
        # kept to one pass over the arguments and no work that the case at hand does not need.
        # (benchmarks/op_overhead.py: 10x30 add, forward 2.5 -> 1.8 µs.)
        TensorCls = _Tensor
        ctx = Context()
        requires_grad = False
        arrays = []
        inputs: list[Tensor | None] = []
        needs = []
        for a in args:
            if isinstance(a, TensorCls):
                arrays.append(a.data)
                inputs.append(a)
                if a.requires_grad:
                    requires_grad = True
                    needs.append(True)
                else:
                    needs.append(False)
            else:
                arrays.append(a)
                inputs.append(None)
                needs.append(False)
        raw = cls.forward(ctx, *arrays, **kwargs)
        data = raw if isinstance(raw, np.ndarray) else np.asarray(raw)
        if data is not raw and ctx._saved:
            # NOTE: on 0-d arrays NumPy returns scalars (np.exp(x) is an np.float64); a saved
            # output must still be recognised as the output, or its derivative is lost.
            ctx._saved = tuple(data if v is raw else v for v in ctx._saved)
        state = _state
        if state.anomaly:
            _check_forward(cls, args, data)
        if not (requires_grad and state.grad_enabled and data.dtype.kind == "f"):
            return TensorCls._wrap(data)
        ctx.fn = cls
        ctx.inputs = tuple(inputs)
        ctx.needs_input_grad = tuple(needs)
        out = TensorCls._wrap(data, True, ctx)
        if ctx._saved:
            ctx._link(out)
        if state.anomaly:
            ctx._site = _user_site()
        return out


# --------------------------------------------------------------------------------------------
# The backward pass
# --------------------------------------------------------------------------------------------


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors reachable from ``root`` through recorded ops, root first, each before its inputs.

    Iterative depth-first search with an explicit stack: a node is appended after all of its
    inputs (post-order), and the reversed post-order is a topological order.  Identity, not value,
    decides whether a tensor was seen.  The order is deterministic for a given graph.
    """
    post: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    push, pop, finish, see = stack.append, stack.pop, post.append, seen.add
    while stack:
        t, expanded = pop()
        if expanded:
            finish(t)
            continue
        key = id(t)
        if key in seen:
            continue
        see(key)
        ctx = t._ctx
        if ctx is None:  # a leaf has no inputs: it is finished as soon as it is reached
            finish(t)
            continue
        push((t, True))
        if ctx._freed:
            raise RuntimeError(_freed_message(ctx))
        for inp in reversed(ctx.inputs):
            if inp is not None and inp.requires_grad and id(inp) not in seen:
                push((inp, False))
    post.reverse()
    return post


_add_reduce: Any = np.add.reduce  # (typed Any: NumPy's stubs want keepdims as a literal)


def _sum_axes(g: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Σ over ``axes`` of an array (plain NumPy) or of a Tensor (a recorded Sum)."""
    if isinstance(g, np.ndarray):
        return np.asarray(_add_reduce(g, axis=axes, keepdims=keepdims))
    return g._sum_axes(axes, keepdims)


def _sum_to_shape(g: Any, shape: tuple[int, ...], ctx: Context, i: int) -> Any:
    """Undo broadcasting: sum ``g`` (an array or a Tensor) over the axes that NumPy added or
    stretched for this input."""
    gshape = g.shape
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise RuntimeError(
            f"{ctx.name}.backward returned a gradient of shape {gshape} for input {i} of shape "
            f"{shape}: it has fewer dimensions than the input"
        )
    stretched = tuple(lead + k for k, n in enumerate(shape) if n == 1 and gshape[lead + k] != 1)
    if stretched:
        g = _sum_axes(g, tuple(range(lead)) + stretched, True)
        if lead:
            g = g.reshape(shape)
    elif lead:
        # Only added leading axes (a bias broadcast over a batch): one sum, no reshape needed.
        g = _sum_axes(g, tuple(range(lead)), False)
    if g.shape != shape:
        raise RuntimeError(
            f"{ctx.name}.backward returned a gradient of shape {gshape} for input {i} of shape "
            f"{shape}; the shapes are not broadcast-compatible"
        )
    return g


def backward(
    root: Tensor,
    gradient: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Backpropagate from ``root``; the engine behind ``Tensor.backward`` and :func:`grad`.

    Without ``inputs``: accumulate dC/dt into ``t.grad`` of every leaf ``t`` that requires a
    gradient (and of non-leaves that called ``retain_grad``).  With ``inputs``: leave every
    ``.grad`` alone and return the gradients of those tensors instead.

    The gradients in flight are NumPy arrays in an ordinary backward pass, and Tensors (recorded
    operations) under ``create_graph`` or ``detect_anomaly``; see :class:`Function`.
    """
    TensorCls = _Tensor
    if not root.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad and has no graph: "
            "create the leaves with requires_grad=True, outside no_grad()"
        )
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a tensor with one element; this one has "
                f"shape {root.shape}. Pass gradient= (dC/d(this tensor), of shape {root.shape})"
            )
        one = np.empty(root.shape, dtype=root.dtype)  # (np.ones is a Python wrapper: 0.5 µs)
        one.fill(1)
        seed = TensorCls._wrap(one)
    elif type(gradient) is np.ndarray and gradient.dtype == root.dtype:
        # No copy: a leaf that receives this gradient copies it (see _owned_array).
        seed = TensorCls._wrap(gradient)
    else:
        seed = (
            gradient if isinstance(gradient, TensorCls) else TensorCls(gradient, dtype=root.dtype)
        )
    if seed.shape != root.shape:
        raise ValueError(
            f"backward(): gradient has shape {seed.shape} but the tensor has shape "
            f"{root.shape}; they must be equal"
        )
    if seed.dtype != root.dtype:
        seed = seed.astype(root.dtype)

    order = _topological_order(root)
    wanted: dict[int, int] = {}
    results: list[Any] = []
    if inputs is not None:
        wanted = {id(t): k for k, t in enumerate(inputs)}
        results = [None] * len(inputs)

    anomaly = _state.anomaly
    arrays = not (create_graph or anomaly)
    grads: dict[int, Any] = {id(root): seed.data if arrays else seed}
    del seed  # (an array gradient that nothing else holds may become a leaf's .grad as it is)
    tracers = list(_tracers)
    previous_mode = _state.grad_enabled
    _state.grad_enabled = create_graph
    try:
        for pos, t in enumerate(order):
            order[pos] = None  # type: ignore[call-overload]  # release tensors as we go
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                g = _run_hooks(t, g, arrays)
            ctx = t._ctx
            if inputs is not None:
                k = wanted.get(id(t))
                if k is not None:
                    results[k] = g
            elif ctx is None or t._retains_grad:
                # Leaf (or retained) gradient: the tensor owns its buffer.
                if arrays:
                    prev = t.grad
                    t.grad = TensorCls._wrap(
                        _owned_array(g) if prev is None else _add(prev.data, g)
                    )
                else:
                    t.grad = g.clone() if t.grad is None else t.grad + g
            if ctx is None:
                continue
            if ctx._freed:
                raise RuntimeError(_freed_message(ctx))
            _run_node(ctx, g, grads, tracers, anomaly, arrays)
            if not retain_graph:
                ctx._free()
    finally:
        _state.grad_enabled = previous_mode
    if inputs is None:
        return None
    if arrays:  # gradients as Tensors of their own: no views, none sharing an array
        seen: set[int] = set()
        for k, g in enumerate(results):
            if g is not None:
                if g.base is not None or id(g) in seen:  # e.g. a read-only broadcast of a Sum
                    g = g.copy()
                seen.add(id(g))
                results[k] = TensorCls._wrap(g)
    return results


def _add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b as an array (NOTE: NumPy returns a scalar for two 0-d arrays)."""
    s = a + b
    return s if type(s) is np.ndarray else np.asarray(s)


def _owned_array(g: np.ndarray) -> np.ndarray:
    """``g`` as a gradient array its leaf may own: never a buffer that anything else can see.

    The gradient is taken as it is when nothing else refers to it (the usual case: a fresh
    product such as δ aᵀ that only this backward pass holds), and copied when something might
    (the incoming gradient passed through by an add to two inputs, a hook that kept it, a view
    of another array, the user's seed).  CPython's reference counts tell which; this is how
    PyTorch decides too.  Measured: copying the four gradients of the book's network cost about
    8 µs of a 120 µs training step at m = 10.  (Under ``create_graph`` the copy is a recorded
    ``clone``, so the gradient stays differentiable.)
    """
    if g.base is None and _ref_count(g) == _SOLE_OWNER_REFS:
        return g
    return g.copy()


def _ref_count(g: np.ndarray) -> int:
    """References to ``g`` (CPython's ``sys.getrefcount``)."""
    return sys.getrefcount(g)


def _probe_sole_owner_refs() -> int:
    """The count :func:`_owned_array` sees for a gradient that nothing else refers to.

    NOTE: how many of the caller's own references CPython counts differs between versions, so
    this measures it with the same call nesting as ``backward`` -> ``_owned_array`` ->
    ``_ref_count`` instead of assuming a number.  If the nesting ever differs, the counts cannot
    match and gradients are copied (slower, never wrong).
    """
    g = np.zeros(1)
    return _probe_owned(g)


def _probe_owned(g: np.ndarray) -> int:
    return _ref_count(g)


_SOLE_OWNER_REFS = -1  # set by _bind_tensor_class


def _run_node(
    ctx: Context,
    g: Any,
    grads: dict[int, Any],
    tracers: list[trace],
    anomaly: bool,
    arrays: bool,
) -> None:
    """Call one op's backward and pass each input its share of the gradient.

    With ``arrays`` the gradients in ``grads`` are NumPy arrays: an op whose backward works on
    arrays gets them as they are; any other gets Tensors, and its results are unwrapped.
    """
    TensorCls = _Tensor
    fn = ctx.fn
    if arrays and fn.array_backward:
        ctx._arrays = True
        try:
            out = fn.backward(ctx, g)
        except AttributeError as e:  # e.g. x.cos() on an array: a Tensor method in the formula
            raise TypeError(
                f"{ctx.name}.backward declares array_backward = True but failed on NumPy arrays "
                f"({e}); use only what arrays and Tensors share (operators, .T, .reshape, .sum, "
                "np.asarray(v)) and Op.call(...) for other ops, or set array_backward = False"
            ) from e
    else:
        ctx._arrays = False
        gt = TensorCls._wrap(g) if arrays else g
        out = _checked_backward(ctx, gt) if anomaly else fn.backward(ctx, gt)
    if type(out) is not tuple:
        out = (out,)
    inputs = ctx.inputs
    if len(out) != len(inputs):
        raise RuntimeError(
            f"{ctx.name}.backward returned {len(out)} gradient(s) but forward took "
            f"{len(inputs)} positional argument(s); return one per argument (None where unused)"
        )
    needs = ctx.needs_input_grad
    passed: list[Any] = []  # for the tracers
    for i, inp in enumerate(inputs):
        gi = out[i]
        if gi is None or not needs[i]:
            if tracers:
                passed.append(None)
            continue
        assert inp is not None  # needs_input_grad is True only for Tensor inputs
        data = inp.data  # NOTE: read once (and no .shape property): this runs for every edge
        if arrays:
            if type(gi) is not np.ndarray:  # a Tensor, a NumPy scalar (0-d results), a number
                gi = gi.data if isinstance(gi, TensorCls) else np.asarray(gi)
        elif not isinstance(gi, TensorCls):
            gi = TensorCls(gi, dtype=data.dtype)
        if gi.shape != data.shape:
            gi = _sum_to_shape(gi, data.shape, ctx, i)
        if gi.dtype != data.dtype:
            gi = gi.astype(data.dtype)
        if anomaly and not np.isfinite(gi.data).all():
            raise AnomalyError(
                f"{ctx.name}.backward produced a non-finite gradient for input {i} "
                f"(shape {inp.shape}); the op was created at {_site_of(ctx)}"
            )
        # Accumulate fan-out out of place (no shared buffers).
        key = id(inp)
        prev = grads.get(key)
        if prev is not None:
            gi = _add(prev, gi) if arrays else prev + gi
        grads[key] = gi
        if tracers:
            passed.append(gi)
    for tr in tracers:
        tr._record(ctx, g, passed)


def _run_hooks(t: Tensor, g: Any, arrays: bool) -> Any:
    """Call ``t``'s hooks in registration order; a hook may return a replacement gradient.

    Hooks always see Tensors; with ``arrays`` the result is handed back as an array.
    """
    TensorCls = _Tensor
    gt = TensorCls._wrap(g) if arrays else g
    for hook in list(t._hooks.values()):  # type: ignore[union-attr]  # a hook may remove itself
        replaced = hook(gt)
        if replaced is None:
            continue
        new = replaced if isinstance(replaced, TensorCls) else TensorCls(replaced, dtype=t.dtype)
        if new.shape != t.shape:
            raise RuntimeError(
                f"hook {getattr(hook, '__name__', hook)!r} returned a gradient of shape "
                f"{new.shape} for a tensor of shape {t.shape}; a hook must keep the shape"
            )
        gt = new if new.dtype == t.dtype else new.astype(t.dtype)
    return gt.data if arrays else gt


def grad(
    outputs: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor, ...]:
    """Return d(outputs)/d(inputs) without touching any ``.grad`` (``torch.autograd.grad``).

    ``grad_outputs`` plays the role of ``gradient`` in ``backward``.  ``retain_graph`` defaults to
    ``create_graph``.  An input the output does not depend on raises unless ``allow_unused``,
    in which case its gradient is a tensor of zeros.
    """
    single = isinstance(inputs, _Tensor)
    ins: list[Tensor] = [inputs] if single else list(inputs)  # type: ignore[list-item]
    for k, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad(): input {k} (shape {t.shape}) does not require grad")
    keep = create_graph if retain_graph is None else retain_graph
    res = backward(outputs, grad_outputs, keep, create_graph, ins)
    assert res is not None
    final = []
    for k, (t, g) in enumerate(zip(ins, res)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad(): input {k} (shape {t.shape}) was not used to compute the output; "
                    "pass allow_unused=True to get zeros for it"
                )
            g = _Tensor.zeros_like(t)
        final.append(g)
    return tuple(final)


# --------------------------------------------------------------------------------------------
# Study tools that live in the engine: tracing and anomaly detection
# --------------------------------------------------------------------------------------------

_tracers: list[trace] = []


class TraceStep:
    """One backward step: the op, the shapes, and the norms of the gradients in and out."""

    __slots__ = ("index", "op", "output_shape", "grad_norm", "input_shapes", "input_grad_norms")

    def __init__(
        self,
        index: int,
        op: str,
        output_shape: tuple[int, ...],
        grad_norm: float,
        input_shapes: list[tuple[int, ...] | None],
        input_grad_norms: list[float | None],
    ) -> None:
        self.index = index
        self.op = op
        self.output_shape = output_shape
        self.grad_norm = grad_norm
        self.input_shapes = input_shapes
        self.input_grad_norms = input_grad_norms

    def __str__(self) -> str:
        ins = ", ".join(
            "const" if s is None else f"{s}" + ("" if n is None else f" |g|={n:.4g}")
            for s, n in zip(self.input_shapes, self.input_grad_norms)
        )
        return (
            f"step {self.index}: {self.op}  out {self.output_shape} |g|={self.grad_norm:.4g}"
            f"  ->  [{ins}]"
        )

    def __repr__(self) -> str:
        return f"TraceStep({self})"


class trace:
    """Report each backward step in the order the engine runs it.

    >>> with tg.trace() as steps:          # doctest: +SKIP
    ...     cost.backward()
    step 0: Mul  out () |g|=1  ->  [() |g|=0.5, () |g|=2]
    ...
    >>> steps.steps[0].op                   # doctest: +SKIP
    'Mul'

    Each step names the op whose ``backward`` ran, the shape of its output and the norm of the
    gradient arriving there (‖∂C/∂output‖), and for each input its shape and the norm of the
    gradient passed to it.  Steps are printed to ``file`` (default: standard output) unless
    ``file=None``, and always kept in ``.steps``.
    """

    def __init__(self, file: TextIO | None | str = "stdout") -> None:
        self.steps: list[TraceStep] = []
        if isinstance(file, str) and file != "stdout":
            raise TypeError(
                f"trace(file=...) takes a text stream (e.g. sys.stderr or an open file) or None, "
                f"not the string {file!r}"
            )
        self._file: TextIO | None = sys.stdout if file == "stdout" else file  # type: ignore[assignment]

    def __enter__(self) -> trace:
        _tracers.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _tracers.remove(self)

    def __iter__(self) -> Iterator[TraceStep]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    def _record(self, ctx: Context, g: Any, passed: list[Any]) -> None:
        # The gradients are arrays or Tensors (see backward); np.asarray reads both.
        step = TraceStep(
            len(self.steps),
            ctx.name,
            g.shape,
            float(np.linalg.norm(np.asarray(g))),
            [None if t is None else t.shape for t in ctx.inputs],
            [None if p is None else float(np.linalg.norm(np.asarray(p))) for p in passed],
        )
        self.steps.append(step)
        if self._file is not None:
            print(step, file=self._file)


class AnomalyError(FloatingPointError):
    """Raised inside ``detect_anomaly()`` where a NaN or an infinity first appears."""


class detect_anomaly(ContextDecorator):
    """Raise :class:`AnomalyError` at the first op whose forward result or backward gradient
    contains NaN or infinity, naming the op and the file and line of the user's code that
    created it.  Slower (every result is scanned), so meant for debugging.
    """

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> detect_anomaly:
        self._previous.append(_state.anomaly)
        _state.anomaly = True
        return self

    def __exit__(self, *exc: object) -> None:
        _state.anomaly = self._previous.pop()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_site() -> str:
    """``file:line`` of the innermost caller outside this package (where the user made the op)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGE_DIR + os.sep):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"


def _check_forward(cls: type[Function], args: tuple[Any, ...], data: np.ndarray) -> None:
    if data.dtype.kind not in "fc" or np.isfinite(data).all():
        return
    bad_inputs = [
        i
        for i, a in enumerate(args)
        if isinstance(a, _Tensor) and a.dtype.kind in "fc" and not np.isfinite(a.data).all()
    ]
    why = (
        f"its input(s) {bad_inputs} already contained NaN or infinity"
        if bad_inputs
        else "all of its inputs were finite"
    )
    ctx = _state.in_backward
    if ctx is not None:  # an op inside some op's backward formula: blame that op
        raise AnomalyError(
            f"{ctx.name}.backward produced NaN or infinity in the backward pass (at its "
            f"{cls.__name__} step: {why}); the {ctx.name} op was created at {_site_of(ctx)}"
        )
    raise AnomalyError(
        f"{cls.__name__} produced NaN or infinity in the forward pass ({why}); "
        f"created at {_user_site()}"
    )


def _site_of(ctx: Context) -> str:
    """Where the op was created, as recorded when its forward ran under ``detect_anomaly``."""
    if ctx._site is not None:
        return ctx._site
    return "<unknown: its forward pass ran outside detect_anomaly(); run it inside to see the line>"


def _checked_backward(ctx: Context, g: Tensor) -> Any:
    """``ctx.fn.backward`` under ``detect_anomaly``: a non-finite value produced by one of the
    ops inside the formula is reported as this op's backward, not as a forward pass."""
    state = _state
    previous = state.in_backward
    state.in_backward = ctx
    try:
        return ctx.fn.backward(ctx, g)
    finally:
        state.in_backward = previous
