"""The core of the engine: recording operations, and backpropagation through the record.

1. **Recording.**  An operation is a :class:`Function`: ``forward`` (arrays in, one array out)
   and ``backward`` (δ = ∂C/∂output in, one gradient per input out).  ``Function.apply`` runs
   ``forward`` and, when grad mode is on and an input requires grad, links the output to a
   :class:`Context` holding the inputs and what ``forward`` saved: a graph of contexts.
2. **Backpropagation.**  :func:`backward` visits the graph from the output to the leaves in
   reverse topological order and calls each op's ``backward``: the chain rule, one
   vector-Jacobian product at a time.  Fan-out sums gradients; broadcasting is undone here.
   No sort is needed: ops are numbered as they are recorded, each after its inputs, so taking
   the newest first is a reverse topological order (PyTorch numbers its nodes so too).
3. **One formula, two uses.**  A formula uses only what arrays and Tensors share, so an ordinary
   backward runs it on arrays, and ``create_graph=True`` on Tensors, recording it to be
   differentiated again.  For a layer z = w a + b, a' = σ(z) the ops' formulas give the book's
   δ = ∂C/∂a' ⊙ σ'(z), ∂C/∂b = δ, ∂C/∂w = δ aᵀ and ∂C/∂a = wᵀ δ.

Beside it: :mod:`.mode` (grad mode), :mod:`.inplace` (saved arrays stay unchanged, gradients
own their arrays), :mod:`.errors` (the messages), :mod:`.debug` (``trace``, ``detect_anomaly``).
"""

from __future__ import annotations

import heapq
import itertools
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import errors, inplace
from .mode import _state

if TYPE_CHECKING:
    from ..tensor import Tensor

Grad = Any  # what formulas handle: arrays, or Tensors under create_graph (what both share)
_Tensor: type[Tensor] = None  # type: ignore[assignment]  # None until tensor.py (above) sets it

# The observer point: ``_state.observers`` (per thread: debug.py's trace, detect_anomaly, ...).
# ``Function.apply`` calls each one's ``forward(fn, ctx, out, args, kwargs)`` (ctx None: none),
# ``_propagate`` its ``backward(ctx, delta, input_grads)`` after every op's backward.  No more.

_OUTPUT = object()  # stands for "the op's own output" among the saved values
_numbers = itertools.count(1)  # Context.seq: recorded ops in the order they were recorded


class Context:
    """What one recorded op keeps between ``forward`` and ``backward``: attributes (``ctx.axis =
    axis``) and arrays (:meth:`save_for_backward`, read-only while the graph lives)."""

    __slots__ = (
        "fn", "inputs", "needs_input_grad", "seq", "_saved", "_arrays", "_out", "_lock",
        "_freed", "_on_arrays", "__dict__",
    )  # fmt: skip

    def __init__(self) -> None:
        self.fn: type[Function] = Function
        self.inputs: tuple[Tensor | None, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.seq = 0  # when recorded: a number larger than that of every op recorded before
        self._arrays: tuple[Any, ...] = ()  # what forward saved; _saved: the same, after _link
        self._saved: tuple[Any, ...] = ()  # with input Tensors and _OUTPUT for their arrays
        self._out: Any = None  # weak reference to the output (a strong one would be a cycle)
        self._lock: inplace.Lock | None = None
        self._freed = self._on_arrays = False  # _on_arrays: backward hands the formula arrays

    if TYPE_CHECKING:  # ops store their own attributes (ctx.axis = ...)

        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def save_for_backward(self, *values: Any) -> None:
        """Keep ``values`` (forward's input or output arrays, or others) for ``backward``."""
        self._saved = self._arrays = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The saved values: arrays on the array path, Tensors under ``create_graph``."""
        if self._freed:
            raise errors.freed(self)
        values = []
        for v, a in zip(self._saved, self._arrays):
            if v is _OUTPUT:
                v = self._out()
            if isinstance(v, _Tensor):
                if v.data is not a:  # t.data = ... since forward: not the values forward used
                    raise errors.rebound(self, v)
                values.append(a if self._on_arrays else v)
            elif self._on_arrays or not isinstance(v, (np.ndarray, np.generic)):
                values.append(v)  # a constant the op computed (an array, a number, a shape)
            else:
                values.append(_Tensor._wrap(np.asarray(v)))
        return tuple(values)

    def _link(self, out: Tensor) -> None:
        """After forward: swap each saved input or output array for its Tensor (by identity),
        and lock those arrays against writes while this graph lives."""
        saved: list[Any] = []
        tensor_arrays = []  # the saved arrays that are a Tensor's: these are locked
        for v in self._arrays:
            if v is out.data:
                tensor_arrays.append(v)
                v, self._out = _OUTPUT, weakref.ref(out)
            else:
                for t in self.inputs:
                    if t is not None and t.data is v:
                        tensor_arrays.append(v)
                        v = t
                        break
            saved.append(v)
        self._saved = tuple(saved)
        self._lock = inplace.lock(tensor_arrays, self.fn.__name__)

    def _free(self) -> None:
        self._saved = self._arrays = self.inputs = ()
        self._out = self._lock = None  # dropping the Lock makes the saved arrays writeable
        self._freed = True

    @property
    def name(self) -> str:
        """The op's name, e.g. ``"Mul"``."""
        return self.fn.__name__

    def __repr__(self) -> str:  # e.g. <Mul>
        return f"<{self.name}>"


class Function:
    """Base class of every differentiable operation (see README, "Writing your own operation").

    ``forward(ctx, *args)`` gets each Tensor argument as its array (the rest unchanged) and
    returns one array; ``backward(ctx, delta)`` gets δ = ∂C/∂output and returns one gradient per
    positional argument (None where there is none; broadcast shapes are summed back), on arrays
    with ``array_backward = True`` (on Tensors under create_graph), else always on Tensors.
    """

    array_backward: bool = False

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        """The op on arrays (its class docstring states the formula); saves what backward needs."""
        raise NotImplementedError("forward is not implemented")

    @staticmethod
    def backward(ctx: Context, grad_output: Grad) -> Any:
        """The chain rule: from δ = ∂C/∂z, ∂C/∂x for each input x (e.g. δ σ'(z) for a = σ(z))."""
        raise NotImplementedError("backward is not implemented")

    @classmethod
    def call(cls, *args: Any, **kwargs: Any) -> Any:
        """The op inside a backward formula: recorded by :meth:`apply` when an argument is a
        Tensor, else ``forward`` on the arrays, so one formula serves both kinds of backward."""
        for a in args:
            if isinstance(a, _Tensor):
                return cls.apply(*args, **kwargs)
        return cls.forward(Context(), *args, **kwargs)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Run ``forward`` on the arrays of ``args``; return the result as a Tensor, linked into
        the graph when grad mode is on, some input requires grad and the result is floating."""
        arrays, inputs, needs = [], [], []
        for a in args:
            is_tensor = isinstance(a, _Tensor)
            arrays.append(a.data if is_tensor else a)
            inputs.append(a if is_tensor else None)
            needs.append(is_tensor and a.requires_grad)
        ctx = Context()
        raw = cls.forward(ctx, *arrays, **kwargs)
        data = raw if type(raw) is np.ndarray else np.asarray(raw)
        if data is not raw:  # NOTE: NumPy returns scalars for 0-d results; keep "saved output"
            ctx._arrays = tuple(data if v is raw else v for v in ctx._arrays)
        record = _state.grad_enabled and True in needs and data.dtype.kind == "f"
        out = _Tensor._wrap(data, record, ctx if record else None)
        if record:
            ctx.fn, ctx.inputs, ctx.needs_input_grad = cls, tuple(inputs), tuple(needs)
            ctx.seq = next(_numbers)
            ctx._link(out)
        for observer in _state.observers:
            observer.forward(cls, out._ctx, out, args, kwargs)
        return out


def _sum_to_shape(g: Grad, shape: tuple[int, ...], ctx: Context, i: int) -> Grad:
    """Undo broadcasting: sum ``g`` over the axes NumPy added (leading) or stretched (size 1)."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(shape) if n == 1)
    if lead >= 0:
        g = g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g
    if lead < 0 or g.shape != shape:
        raise errors.gradient_shape(ctx, i, g.shape, shape)
    return g


def backward(
    root: Tensor,
    gradient: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Backpropagate from ``root`` (``Tensor.backward``, :func:`grad`): accumulate ∂root/∂t into
    ``t.grad`` of every leaf t that requires grad (and of tensors that ``retain_grad``), or, with
    ``inputs``, return those tensors' gradients and touch no ``.grad``."""
    wanted = {id(t): k for k, t in enumerate(inputs or ())}
    results: list[Any] = [None] * len(wanted)
    observers = _state.observers
    # THE branch between the two kinds of backward: gradients travel as NumPy arrays, or, to be
    # differentiated again, as Tensors whose operations are recorded (create_graph).
    on_arrays = not create_graph
    delta = _seed(root, gradient)
    grads: dict[int, Grad] = {id(root): delta.data if on_arrays else delta}  # received so far
    # The tensors that have received a gradient wait for their turn: ops' outputs in a heap,
    # newest op first (so each one's gradient is complete when it is taken), leaves at the end.
    waiting: list[tuple[int, Tensor]] = []
    leaves: list[Tensor] = []
    _wait(root, waiting, leaves)
    previous_mode, _state.grad_enabled = _state.grad_enabled, create_graph  # (as no_grad())
    try:
        while waiting or leaves:
            t = heapq.heappop(waiting)[1] if waiting else leaves.pop()
            g = grads.pop(id(t))  # taking it releases it once it is done
            if t._hooks:
                g = t._run_hooks(g)
            ctx = t._ctx
            if inputs is not None:
                if id(t) in wanted:
                    results[wanted[id(t)]] = g
            elif ctx is None or t._retains_grad:
                _accumulate(t, g)
            if ctx is None:
                continue
            _propagate(ctx, g, on_arrays, grads, observers, waiting, leaves)
            if not retain_graph:
                ctx._free()
    finally:
        _state.grad_enabled = previous_mode
    if inputs is None:
        return None
    return [None if g is None else _owned(g) for g in results]


def _wait(t: Tensor, waiting: list[tuple[int, Tensor]], leaves: list[Tensor]) -> None:
    """Queue ``t``, which has just received its first gradient, for its turn in backward."""
    if t._ctx is None:
        leaves.append(t)
    else:
        heapq.heappush(waiting, (-t._ctx.seq, t))  # the largest number first


def _seed(root: Tensor, gradient: Any) -> Tensor:
    """δ at the root: 1 for a one-element root, else ``gradient`` (checked and cast)."""
    if not root.requires_grad:
        raise errors.no_graph()
    if gradient is None:
        if root.size != 1:
            raise errors.needs_gradient(root.shape)
        return _Tensor._wrap(np.array(1, root.dtype).reshape(root.shape))  # δ = 1
    seed = gradient if isinstance(gradient, _Tensor) else _Tensor(gradient, dtype=root.dtype)
    if seed.shape != root.shape:
        raise errors.seed_shape(seed.shape, root.shape)
    return seed if seed.dtype == root.dtype else seed.astype(root.dtype)


def _propagate(ctx: Context, delta: Grad, on_arrays: bool, grads: dict[int, Grad], observers: Any,
               waiting: list[tuple[int, Tensor]], leaves: list[Tensor]) -> None:  # fmt: skip
    """Call one op's backward with δ and add each input's gradient (of the input's shape and
    dtype; arrays on the array path, else Tensors) to what that input has received so far; an
    input receiving its first gradient is queued (:func:`_wait`)."""
    if ctx._freed:
        raise errors.freed(ctx)
    fn = ctx.fn
    ctx._on_arrays = on_arrays and fn.array_backward
    if on_arrays and not fn.array_backward:  # a formula written for Tensors only
        delta = _Tensor._wrap(delta)
    try:
        out = fn.backward(ctx, delta)
    except AttributeError as e:  # e.g. x.cos() on an array: a Tensor method in the formula
        if not ctx._on_arrays:
            raise
        raise errors.not_array_safe(ctx, e) from e
    out = out if type(out) is tuple else (out,)
    if len(out) != len(ctx.inputs):
        raise errors.gradient_count(ctx, len(out))
    input_grads: list[Grad | None] = [None] * len(out)  # what each input received (observers)
    for i, (inp, gi, needed) in enumerate(zip(ctx.inputs, out, ctx.needs_input_grad)):
        if gi is None or not needed:
            continue
        data = inp.data  # type: ignore[union-attr]  # needed only for Tensor inputs
        if on_arrays:  # an array, a Tensor (from a Tensor-only formula), a NumPy scalar, ...
            gi = gi if type(gi) is np.ndarray else np.asarray(getattr(gi, "data", gi))
        elif not isinstance(gi, _Tensor):
            gi = _Tensor(gi, dtype=data.dtype)
        if gi.shape != data.shape:
            gi = _sum_to_shape(gi, data.shape, ctx, i)
        if gi.dtype != data.dtype:
            gi = gi.astype(data.dtype)
        key = id(inp)
        if key in grads:  # fan-out: sum out of place, never into a buffer someone else holds
            grads[key] = _add(grads[key], gi)
        else:
            grads[key] = gi
            _wait(inp, waiting, leaves)  # type: ignore[arg-type]  # a Tensor: it needs a grad
        input_grads[i] = gi
    for observer in observers:
        observer.backward(ctx, delta, input_grads)


def _accumulate(t: Tensor, g: Grad) -> None:
    """``t.grad += g``, out of place: a tensor owns its gradient and shares it with nothing."""
    if isinstance(g, _Tensor):  # create_graph: the sum is recorded too
        t.grad = g.clone() if t.grad is None else t.grad + g
    else:
        t.grad = _Tensor._wrap(inplace.owned(g) if t.grad is None else _add(t.grad.data, g))


def _add(a: Grad, b: Grad) -> Grad:
    """a + b (NOTE: for two 0-d arrays NumPy returns a scalar; keep an array)."""
    s = a + b
    return np.asarray(s) if isinstance(s, np.generic) else s


def _owned(g: Grad) -> Tensor:
    """A gradient as a Tensor that shares its array with nothing (see inplace.owned)."""
    return g if isinstance(g, _Tensor) else _Tensor._wrap(inplace.owned(g))


def grad(
    outputs: Tensor,
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor, ...]:
    """d(outputs)/d(inputs), touching no ``.grad``, as ``torch.autograd.grad``: ``grad_outputs``
    is ``backward``'s gradient; an input not used raises, or gives zeros with ``allow_unused``."""
    ins = [inputs] if isinstance(inputs, _Tensor) else list(inputs)
    for k, t in enumerate(ins):
        if not t.requires_grad:
            raise errors.grad_input(k, t, unused=False)
    keep = create_graph if retain_graph is None else retain_graph
    res = backward(outputs, grad_outputs, keep, create_graph, ins)
    for k, (t, g) in enumerate(zip(ins, res or ())):
        if g is None and not allow_unused:
            raise errors.grad_input(k, t, unused=True)
    return tuple(_Tensor.zeros_like(t) if g is None else g for t, g in zip(ins, res or ()))
