"""Gradients as functions: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``,
``hessian`` and ``hvp``, each a thin layer over the engine's reverse mode, and nesting freely.

Backpropagation computes one thing: for y = f(x) with Jacobian J = ∂y/∂x and an upstream
gradient u = ∂C/∂y (the book's δ at the output), it returns the vector-Jacobian product

    uᵀ J = ∂C/∂x                                             (a VJP: :func:`vjp`)

in about the cost of evaluating f once more.  Everything here is built from that product:

* :func:`grad`: for a scalar f (one element, a cost C), ∇f(x) = Jᵀ · 1, one VJP with u = 1.
* :func:`jvp`: the Jacobian-vector product J v (what forward mode computes, the change of y
  for a small step x → x + ε v), from two VJPs: uᵀJ is linear in u, and the gradient of
  ⟨Jᵀu, v⟩ = ⟨u, J v⟩ with respect to u is J v.
* :func:`jacobian`: J row by row, one VJP per output element (u = each basis vector).
* :func:`hvp`: the Hessian-vector product H v = ∇ₓ⟨∇f(x), v⟩, the gradient of a gradient:
  two backward passes, without ever forming the n × n Hessian.
* :func:`hessian`: H = ∂²f/∂x², the :func:`jacobian` of :func:`grad`.

>>> import tinygrad_sgd as tg
>>> from tinygrad_sgd import func
>>> f = lambda x: (x ** 3).sum()              # f(x) = Σ x³,  ∇f = 3x²,  H = diag(6x)
>>> func.grad(f)(tg.Tensor([1.0, 2.0]))
Tensor([ 3., 12.])
>>> func.grad(lambda x: func.grad(f)(x).sum())(tg.Tensor([1.0, 2.0]))   # Σ 3x² → 6x
Tensor([ 6., 12.])

Arguments may be Tensors, NumPy arrays or Python numbers (numbers and integer arrays become the
default float dtype); results are Tensors.  The transforms switch on grad mode for what they
record themselves, so they work inside ``tg.no_grad()``, restore the mode afterwards, and never
read or write any tensor's ``.grad`` (they use :func:`tinygrad_sgd.autograd.grad`).

Nesting.  Each transform differentiates with respect to a tensor of its own: a fresh leaf, or,
when its argument is itself being recorded (by an outer transform, or by the user's graph), a
``clone()`` of it, a new node through which the outer derivative flows.  So an inner derivative
never confuses its variable with an outer one (``grad(lambda x: x * grad(lambda y: x * y)(x))``
is 2x, not 4x).  A transform records its own backward pass (``create_graph=True``) exactly when
someone may differentiate its results again: when it runs inside another transform's function,
or when grad mode is on and one of its arguments requires grad.  Otherwise its results are plain
constants (``requires_grad=False``) and the graph it built is freed when it returns.  Tensors
that ``f`` captures from outside are treated as constants, except inside another transform.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import autograd
from .autograd import enable_grad, is_grad_enabled
from .tensor import Tensor, stack

__all__ = ["grad", "hessian", "hvp", "jacobian", "jvp", "value_and_grad", "vjp"]

Argnums = int | tuple[int, ...]


class _Nesting(threading.local):
    """How many transforms are evaluating their function right now (per thread)."""

    depth: int = 0


_nesting = _Nesting()


# --------------------------------------------------------------------------------------------
# The pieces every transform shares
# --------------------------------------------------------------------------------------------


def _name(f: Callable[..., Any]) -> str:
    return str(getattr(f, "__name__", type(f).__name__))


def _check_argnums(argnums: Any, who: str) -> None:
    """``argnums`` is an int or a non-empty tuple of ints (the range is checked at call time)."""
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    bad = [a for a in nums if not isinstance(a, int) or isinstance(a, bool)]
    if bad or not isinstance(argnums, (int, tuple)):
        raise TypeError(
            f"{who}: argnums must be an int or a tuple of ints naming positional arguments, "
            f"got {argnums!r}"
        )
    if not nums:
        raise ValueError(f"{who}: argnums=() names no argument to differentiate with respect to")


def _positions(argnums: Argnums, n: int, who: str, f: Callable[..., Any]) -> list[int]:
    """``argnums`` as positions in [0, n), for a call with n positional arguments."""
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    for a in nums:
        if not -n <= a < n:
            raise ValueError(
                f"{who}: argnums={argnums!r} but {_name(f)} was called with {n} positional "
                f"argument(s); each entry must lie in [{-n}, {n})"
            )
    pos = [a % n for a in nums]
    if len(set(pos)) != len(pos):
        raise ValueError(f"{who}: argnums={argnums!r} names the same argument twice")
    return pos


def _as_tensor(x: Any, who: str, what: str) -> Tensor:
    """A Tensor, NumPy array or Python number as a floating Tensor (arrays are copied)."""
    if isinstance(x, Tensor):
        t = x
    elif isinstance(x, (np.ndarray, np.generic, int, float)) and not isinstance(x, bool):
        t = Tensor(x)
    else:
        raise TypeError(
            f"{who}: {what} is a {type(x).__name__}; pass a Tensor, a NumPy array or a Python "
            "number"
        )
    if t.dtype.kind != "f":
        raise TypeError(
            f"{who}: {what} has dtype {t.dtype}; only floating point values have derivatives"
        )
    return t


def _recording(values: Sequence[Any]) -> bool:
    """Whether this transform's results may be differentiated again, so it must record its own
    backward pass: inside another transform's function, or when grad mode is on and an
    argument is part of a graph being recorded."""
    if not is_grad_enabled():
        return False
    return _nesting.depth > 0 or any(isinstance(v, Tensor) and v.requires_grad for v in values)


def _variable(t: Tensor, record: bool) -> Tensor:
    """The tensor a transform differentiates with respect to, standing for argument ``t``."""
    if record and t.requires_grad:
        with enable_grad():
            return t.clone()  # a node of its own, in the graph an outer derivative follows
    return t.detach().requires_grad_()


def _variables(
    args: Sequence[Any], positions: Sequence[int], record: bool, who: str
) -> tuple[list[Any], list[Tensor]]:
    """The call's arguments with those at ``positions`` replaced by fresh variables."""
    call = list(args)
    inputs = []
    for i in positions:
        v = _variable(_as_tensor(args[i], who, f"argument {i}"), record)
        call[i] = v
        inputs.append(v)
    return call, inputs


def _call(f: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """f(*args, **kwargs) with grad mode on, counted as one level of nesting."""
    _nesting.depth += 1
    try:
        with enable_grad():
            return f(*args, **kwargs)
    finally:
        _nesting.depth -= 1


def _output(value: Any, who: str, f: Callable[..., Any], what: str = "f") -> Tensor:
    if not isinstance(value, Tensor):
        raise TypeError(
            f"{who}: {what} ({_name(f)}) returned a {type(value).__name__}, not a Tensor; "
            "compute the result with Tensor operations on the arguments"
        )
    if value.dtype.kind != "f":
        raise TypeError(
            f"{who}: {what} ({_name(f)}) returned a Tensor of dtype {value.dtype}; only floating "
            "point outputs have derivatives"
        )
    return value


def _scalar_output(value: Any, who: str, f: Callable[..., Any]) -> Tensor:
    out = _output(value, who, f)
    if out.size != 1:
        raise ValueError(
            f"{who}: f ({_name(f)}) must return one element (a cost C), but it returned a "
            f"Tensor of shape {out.shape}; reduce it (.sum(), .mean()) or use jacobian or vjp"
        )
    return out


def _split_aux(value: Any, has_aux: bool, who: str, f: Callable[..., Any]) -> tuple[Any, Any]:
    if not has_aux:
        return value, None
    if not (isinstance(value, tuple) and len(value) == 2):
        raise TypeError(
            f"{who}: has_aux=True needs f ({_name(f)}) to return a pair (output, aux), "
            f"but it returned a {type(value).__name__}"
        )
    return value[0], value[1]


def _pullback(
    out: Tensor, inputs: Sequence[Tensor], cotangent: Tensor | None, create_graph: bool
) -> tuple[Tensor, ...]:
    """uᵀ ∂out/∂input for every input (zeros where out does not depend on it).

    The graph is always retained: it may reach tensors the caller still needs (its own graph,
    or an outer transform's), and it is freed anyway when the last reference to ``out`` goes.
    """
    if not out.requires_grad:
        return tuple(Tensor.zeros_like(t) for t in inputs)
    return autograd.grad(
        out,
        list(inputs),
        cotangent,
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )


def _inner(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor | None:
    """⟨a, b⟩ = Σᵢ Σ aᵢ ⊙ bᵢ over the pairs where aᵢ is recorded (None when none is)."""
    with enable_grad():
        terms = [(x * y).sum() for x, y in zip(a, b) if x.requires_grad]
        if not terms:
            return None
        total = terms[0]
        for t in terms[1:]:
            total = total + t
    return total


def _result(t: Tensor, record: bool) -> Tensor:
    """A result as the caller gets it: still in the graph when recording, else a constant."""
    return t if record else t.detach()


def _detach_tree(value: Any, record: bool) -> Any:
    """``has_aux`` data: Tensors in it (also inside tuples, lists, dicts) detached unless
    recording; everything else as f returned it."""
    if record:
        return value
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach_tree(v, record) for v in value)
    if isinstance(value, dict):
        return {k: _detach_tree(v, record) for k, v in value.items()}
    return value


def _primals_and_tangents(
    primals: Any, tangents: Any, who: str
) -> tuple[list[Tensor], list[Tensor]]:
    """Check that primals and tangents are matching sequences and return them as Tensors."""
    for what, seq in (("primals", primals), ("tangents", tangents)):
        if not isinstance(seq, (tuple, list)):
            raise TypeError(
                f"{who}: {what} must be a tuple (or list) with one entry per argument of f, "
                f"e.g. (x,), got a {type(seq).__name__}"
            )
    if len(primals) != len(tangents):
        raise ValueError(
            f"{who}: {len(primals)} primals but {len(tangents)} tangents; give one tangent "
            "per primal"
        )
    ps = [_as_tensor(p, who, f"primal {i}") for i, p in enumerate(primals)]
    ts = []
    for i, (p, v) in enumerate(zip(ps, tangents)):
        t = _as_tensor(v, who, f"tangent {i}")
        if t.shape != p.shape:
            raise ValueError(
                f"{who}: tangent {i} has shape {t.shape} but primal {i} has shape {p.shape}; "
                "a tangent is a direction in the primal's space, of the same shape"
            )
        ts.append(t if t.dtype == p.dtype else t.astype(p.dtype))
    return ps, ts


def _named(wrapper: Callable[..., Any], who: str, f: Callable[..., Any]) -> Callable[..., Any]:
    wrapper.__name__ = wrapper.__qualname__ = f"{who}({_name(f)})"
    wrapper.__doc__ = getattr(f, "__doc__", None)
    return wrapper


# --------------------------------------------------------------------------------------------
# The transforms
# --------------------------------------------------------------------------------------------


def _value_and_grad(
    f: Callable[..., Any], argnums: Argnums, has_aux: bool, who: str
) -> Callable[..., Any]:
    """The function (*args) -> ((value, aux), grads) behind grad, value_and_grad, hessian."""
    _check_argnums(argnums, who)

    def value_and_grads(*args: Any, **kwargs: Any) -> tuple[tuple[Tensor, Any], Any]:
        positions = _positions(argnums, len(args), who, f)
        record = _recording([*args, *kwargs.values()])
        call, inputs = _variables(args, positions, record, who)
        out, aux = _split_aux(_call(f, call, kwargs), has_aux, who, f)
        out = _scalar_output(out, who, f)
        grads = _pullback(out, inputs, None, record)
        g = grads[0] if isinstance(argnums, int) else grads
        return (_result(out, record), _detach_tree(aux, record)), g

    return value_and_grads


def grad(f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False) -> Callable[..., Any]:
    """The gradient of a scalar function, as a function: ``grad(f)(x) = ∇f(x) = ∂f/∂x``.

    ``f`` must return one element (a cost such as C = 1/2n Σ‖y − a‖²).  ``argnums`` (an int or a
    tuple of ints) names the positional argument(s) to differentiate with respect to; the result
    has the shape of that argument, or is a tuple of such gradients for a tuple ``argnums``.
    With ``has_aux=True``, f returns ``(output, aux)`` and the result is ``(gradient, aux)``.

    One forward pass and one backward pass (a VJP with u = 1, what ``C.backward()`` does):

    >>> import tinygrad_sgd as tg
    >>> tg.func.grad(lambda w, x: (w * x).sigmoid().sum(), argnums=(0, 1))(0.0, 2.0)
    (Tensor(0.5), Tensor(0.))
    """
    vg = _value_and_grad(f, argnums, has_aux, "grad")

    def gradient(*args: Any, **kwargs: Any) -> Any:
        (_, aux), g = vg(*args, **kwargs)
        return (g, aux) if has_aux else g

    return _named(gradient, "grad", f)


def value_and_grad(
    f: Callable[..., Any], argnums: Argnums = 0, has_aux: bool = False
) -> Callable[..., Any]:
    """Like :func:`grad`, but the function returns ``(f(x), ∇f(x))`` from one forward pass;
    with ``has_aux=True``, ``((f(x), aux), ∇f(x))``."""
    vg = _value_and_grad(f, argnums, has_aux, "value_and_grad")

    def value_and_gradient(*args: Any, **kwargs: Any) -> Any:
        (value, aux), g = vg(*args, **kwargs)
        return ((value, aux), g) if has_aux else (value, g)

    return _named(value_and_gradient, "value_and_grad", f)


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Tensor, Callable[[Any], tuple[Tensor, ...]]]:
    """Evaluate y = ``f(*primals)`` and return ``(y, vjp_fn)``, where ``vjp_fn(u)`` gives the
    vector-Jacobian products uᵀ ∂y/∂xᵢ, one per primal, as a tuple.

    This is exactly what backpropagation computes: with u = ∂C/∂y (δ at the output), uᵀ ∂y/∂x
    is ∂C/∂x.  ``u`` must have y's shape.  ``vjp_fn`` may be called any number of times (the
    graph of f is kept while ``vjp_fn`` lives); each call costs one backward pass.

    >>> import tinygrad_sgd as tg
    >>> y, pull = tg.func.vjp(lambda x: x ** 2, tg.Tensor([1.0, 3.0]))   # ∂y/∂x = diag(2x)
    >>> pull(tg.Tensor([1.0, 10.0]))
    (Tensor([ 2., 60.]),)
    """
    who = "vjp"
    record = _recording(primals)
    call, inputs = _variables(primals, range(len(primals)), record, who)
    out = _output(_call(f, call, {}), who, f)

    def vjp_fn(cotangent: Any) -> tuple[Tensor, ...]:
        u = _as_tensor(cotangent, "vjp_fn", "the cotangent")
        if u.shape != out.shape:
            raise ValueError(
                f"vjp_fn: the cotangent has shape {u.shape} but f's output has shape "
                f"{out.shape}; it is ∂C/∂output and must have the output's shape"
            )
        if u.dtype != out.dtype:
            with enable_grad():
                u = u.astype(out.dtype)
        create = record or _recording([u])
        return _pullback(out, inputs, u, create)

    return _result(out, record), vjp_fn


def jvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Tensor, Tensor]:
    """Evaluate y = ``f(*primals)`` and the Jacobian-vector product J v = Σᵢ ∂y/∂xᵢ vᵢ, the change
    of y along the tangents (y(x + εv) ≈ y + ε J v); returns ``(y, J v)``.

    ``primals`` and ``tangents`` are tuples (or lists) with one entry per argument of f, each
    tangent of its primal's shape.  J v has y's shape.

    There is no forward mode in the engine: J v is computed by the double-VJP construction, on
    reverse mode alone.  With a dummy cotangent u (zeros, of y's shape), the backward pass gives
    g(u) = Jᵀu, which is linear in u; a second backward pass through that recorded backward gives
    ∇ᵤ⟨g(u), v⟩ = ∇ᵤ⟨u, J v⟩ = J v.  Exact to rounding, like a true forward mode, but dearer:
    one forward pass, one backward pass recorded with ``create_graph=True`` (kept in memory) and
    one backward pass through that record, about three times the work of one VJP, where a
    forward mode (dual numbers) would cost about one extra forward pass.

    >>> import tinygrad_sgd as tg
    >>> tg.func.jvp(lambda x: x ** 2, (tg.Tensor([1.0, 3.0]),), (tg.Tensor([1.0, 10.0]),))
    (Tensor([1., 9.]), Tensor([ 2., 60.]))
    """
    who = "jvp"
    ps, vs = _primals_and_tangents(primals, tangents, who)
    record = _recording([*ps, *vs])
    call, inputs = _variables(ps, range(len(ps)), record, who)
    out = _output(_call(f, call, {}), who, f)
    tangent_out = Tensor.zeros_like(out)
    if out.requires_grad:
        with enable_grad():
            u = Tensor.zeros_like(out, requires_grad=True)
        pulled = _pullback(out, inputs, u, create_graph=True)  # g(u) = Jᵀu, recorded
        s = _inner(pulled, vs)  # ⟨Jᵀu, v⟩ = ⟨u, J v⟩
        if s is not None:
            (tangent_out,) = _pullback(s, [u], None, record)
    return _result(out, record), tangent_out


def _jacobian_of(out: Tensor, inputs: Sequence[Tensor], record: bool) -> tuple[Tensor, ...]:
    """∂out/∂input for each input, of shape out.shape + input.shape: one VJP per row."""
    if out.size == 0 or not out.requires_grad:
        return tuple(Tensor.zeros(out.shape + t.shape, dtype=t.dtype) for t in inputs)
    rows: list[list[Tensor]] = [[] for _ in inputs]
    for k in range(out.size):
        e = np.zeros(out.size, dtype=out.dtype)
        e[k] = 1.0  # u = the k-th basis vector: uᵀJ is row k of J
        for row, g in zip(rows, _pullback(out, inputs, Tensor(e.reshape(out.shape)), record)):
            row.append(g)
    with enable_grad():
        return tuple(stack(r).reshape(out.shape + t.shape) for r, t in zip(rows, inputs))


def _jacobian(f: Callable[..., Any], argnums: Argnums, who: str) -> Callable[..., Any]:
    _check_argnums(argnums, who)

    def jac(*args: Any, **kwargs: Any) -> Any:
        positions = _positions(argnums, len(args), who, f)
        record = _recording([*args, *kwargs.values()])
        call, inputs = _variables(args, positions, record, who)
        value = _call(f, call, kwargs)
        outs = value if isinstance(value, tuple) else (value,)
        if not outs:
            raise TypeError(f"{who}: f ({_name(f)}) returned an empty tuple, not a Tensor")
        jacs = []
        for i, o in enumerate(outs):
            what = f"output {i} of f" if isinstance(value, tuple) else "f"
            j = _jacobian_of(_output(o, who, f, what), inputs, record)
            jacs.append(j[0] if isinstance(argnums, int) else j)
        return tuple(jacs) if isinstance(value, tuple) else jacs[0]

    return _named(jac, who, f)


def jacobian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Jacobian J = ∂y/∂x of y = ``f(*args)``, as a function, by reverse mode row by row.

    The result has shape ``y.shape + x.shape`` (J[i..., j...] = ∂yᵢ/∂xⱼ), a tuple of them for a
    tuple ``argnums``, and a tuple per output when f returns a tuple of Tensors.  It costs one
    forward pass and one backward pass (a VJP with a basis vector) per element of y.

    >>> import tinygrad_sgd as tg
    >>> tg.func.jacobian(lambda x: x ** 2)(tg.Tensor([1.0, 3.0]))    # diag(2x)
    Tensor([[2., 0.],
            [0., 6.]])
    """
    return _jacobian(f, argnums, "jacobian")


def hessian(f: Callable[..., Any], argnums: Argnums = 0) -> Callable[..., Any]:
    """The Hessian H = ∂²f/∂x² of a scalar function, as a function: the :func:`jacobian` of
    :func:`grad` (H[i..., j...] = ∂²f/∂xᵢ∂xⱼ, of shape x.shape + x.shape).

    For a tuple ``argnums`` the result is a tuple of tuples, ``H[i][j] = ∂²f/∂xᵢ∂xⱼ``.  It costs
    one backward pass recorded with ``create_graph=True`` plus one backward pass through it per
    element of x; for one product H v, :func:`hvp` is n times cheaper.

    >>> import tinygrad_sgd as tg
    >>> tg.func.hessian(lambda x: (x ** 3).sum())(tg.Tensor([1.0, 2.0]))   # diag(6x)
    Tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    vg = _value_and_grad(f, argnums, False, "hessian")

    def gradient(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return _named(_jacobian(_named(gradient, "grad", f), argnums, "hessian"), "hessian", f)


def hvp(f: Callable[..., Any], primals: Any, tangents: Any) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Evaluate a scalar f at ``primals`` and the Hessian-vector product H v, without forming H;
    returns ``(f(x), H v)`` with H v a tuple, one entry per primal (of its shape).

    H v = ∇ₓ⟨∇f(x), v⟩: the gradient ∇f(x) is computed with ``create_graph=True`` (so the backward
    pass is itself recorded), dotted with v, and differentiated again.  Two backward passes, n
    numbers of memory, where the Hessian has n²: Newton-type and curvature methods use this.

    >>> import tinygrad_sgd as tg
    >>> tg.func.hvp(lambda x: (x ** 3).sum(), (tg.Tensor([1.0, 2.0]),), (tg.Tensor([1.0, 1.0]),))
    (Tensor(9.), (Tensor([ 6., 12.]),))
    """
    who = "hvp"
    ps, vs = _primals_and_tangents(primals, tangents, who)
    record = _recording([*ps, *vs])
    call, inputs = _variables(ps, range(len(ps)), record, who)
    out = _scalar_output(_call(f, call, {}), who, f)
    grads = _pullback(out, inputs, None, create_graph=True)  # ∇f(x), recorded
    s = _inner(grads, vs)  # ⟨∇f(x), v⟩
    if s is None:
        hv = tuple(Tensor.zeros_like(t) for t in inputs)
    else:
        hv = _pullback(s, inputs, None, record)
    return _result(out, record), hv
