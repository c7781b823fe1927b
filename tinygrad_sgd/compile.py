"""``tg.compile``: record a training step once, replay its kernels without the engine.

A tracing compiler in miniature (the idea of tinygrad's TinyJit, ``jax.jit``, ``torch.compile``):

1. **Recording.**  The first call with a given input signature runs ``fn`` eagerly while a
   :class:`_Recorder` watches the engine through its observer point (``autograd/mode.py``): every
   ``Function.apply`` becomes a *forward kernel*, every op's backward a *backward kernel*, the
   engine's fan-out sums and leaf-gradient accumulations become kernels too, and the optimizer's
   ``zero_grad``/``step`` announce themselves (:func:`note_call`) as *call kernels*.  Kernels read
   and write numbered *slots*: the step's inputs, arrays made by earlier kernels, and the arrays
   that existed before (parameters, captured by identity, so in-place updates are seen).
2. **Verification.**  The second call with that signature lowers (3.) and replays the
   program, restores the state it had, runs ``fn`` eagerly again (recording a second program)
   and compares: both programs must be the same, and the replay must have left parameters,
   ``.grad`` arrays, optimizer state and outputs bit-identical to eager.  A constant computed in
   Python from the data (integer labels turned into one-hot rows inside the step, a value read
   with ``.data``) differs between the two recordings and is refused, instead of being frozen
   into the program.
3. **Lowering and replay.**  The verified program is lowered (``_lowering.py``): kernels with an
   ``out=`` form (the linear layer, the sigmoid, the quadratic and cross-entropy costs, the
   elementwise a · b, a + b, |x| and Σ of the penalties, fan-out sums, ``.grad``, ``zero_grad``
   and SGD's update in place) write into buffers allocated once, the others call
   their op's formula, and the whole is emitted as one generated Python function.  Later calls
   run its checks (the signature; the guards: the same parameter arrays and ``requires_grad``,
   the same optimizer parameters, the ``.grad`` state the program expects, each module's
   ``train()``/``eval()`` mode, noted with :func:`note_state`) and the kernels, with
   no Tensor, Context or graph objects and no topological sort.  Hyper-parameters are read from
   ``param_groups`` at replay time.

The price: ``fn``'s Python runs only while recording, so its control flow is frozen.  Reading a
tensor's value while recording (``.item()``, ``bool(t)``, ``float(t)``, ``int(t)``, ``.numpy()``)
raises, since the branch it decides would be frozen.  See docs/internals.md, "Compiled steps".
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from ._lowering import lower
from .autograd import core
from .autograd.mode import _state, draw, note_call, note_state
from .tensor import Tensor

_MISS = object()  # what a program's generated ``run`` returns when a check fails
_PACKAGE = __name__.rpartition(".")[0] + "."  # "tinygrad_sgd.": the modules of our own ops

__all__ = ["compile", "CompiledStep", "CompileError", "draw", "note_call", "note_state"]

_MAX_PROGRAMS = 8  # programs kept per compiled step (one per input signature), least recent dropped


class CompileError(RuntimeError):
    """A step that cannot be recorded faithfully, or a replay that differs from eager."""


# ------------------------------------------------------------------ kernels


class _ReplayContext:
    """Stands in for a Context at replay: what ``forward`` saved, for ``backward``.  One per
    forward kernel, made at recording and reused."""

    def __init__(self, fn: Any, needs: tuple[bool, ...]) -> None:
        self.fn = fn
        self.needs_input_grad = needs
        self._saved: tuple[Any, ...] = ()

    def save_for_backward(self, *values: Any) -> None:
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        return self._saved

    @property
    def name(self) -> str:
        name: str = self.fn.__name__
        return name


def _describe(a: Any) -> str:
    return f"{a.dtype}{list(a.shape)}" if isinstance(a, np.ndarray) else repr(a)


class _Forward:
    """env[out] = fn.forward(ctx, *args, **kwargs), args: slots or constants; kwargs: constants."""

    def __init__(self, fn: Any, ctx: _ReplayContext, args: list[Any], slots: list[tuple[int, int]],
                 out: int, kwargs: dict[str, Any]) -> None:  # fmt: skip
        self.fn, self.ctx, self.args, self.slots, self.out = fn, ctx, args, slots, out
        self.kwargs = kwargs

    def __call__(self, *values: Any) -> np.ndarray:
        """The op's formula on the arrays of its slots (in the order of ``slots``)."""
        args = list(self.args)
        for (pos, _), v in zip(self.slots, values):
            args[pos] = v
        ctx = self.ctx
        raw = self.fn.forward(ctx, *args, **self.kwargs)
        data = raw if type(raw) is np.ndarray else np.asarray(raw)
        if data is not raw:  # as Function.apply: a 0-d result stays an array, also where saved
            ctx._saved = tuple(data if v is raw else v for v in ctx._saved)
        return data

    def key(self) -> tuple[Any, ...]:
        kw = (tuple(self.kwargs), _const_key(list(self.kwargs.values())))
        return ("fwd", self.fn, _const_key(self.args), tuple(self.slots), self.out, kw)

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        ins = []
        for pos, a in enumerate(self.args):
            s = dict(self.slots).get(pos)
            ins.append(f"{names.get(s, f'%{s}')}:{_describe(env[s])}" if s is not None
                       else f"const {_describe(a)}")  # fmt: skip
        ins += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
        return f"%{self.out} = {self.fn.__name__}({', '.join(ins)}) -> {_describe(env[self.out])}"


class _Backward:
    """The op's backward formula on δ = env[delta]; each needed input gradient summed to the
    input's shape and cast to its dtype (as the engine does), into its slot."""

    def __init__(self, fwd: _Forward, delta: int, targets: list[tuple[int, int, tuple[int, ...],
                 Any]]) -> None:  # fmt: skip
        self.fwd, self.delta, self.targets = fwd, delta, targets

    def __call__(self, delta: np.ndarray) -> tuple[np.ndarray, ...]:
        """The op's backward formula: one gradient per target, in the order of ``targets``."""
        ctx = self.fwd.ctx
        out = ctx.fn.backward(ctx, delta)
        out = out if type(out) is tuple else (out,)
        grads = []
        for i, _, shape, dtype in self.targets:
            gi = out[i]
            gi = gi if type(gi) is np.ndarray else np.asarray(getattr(gi, "data", gi))
            if gi.shape != shape:
                gi = core._sum_to_shape(gi, shape, ctx, i)  # type: ignore[arg-type]
            grads.append(gi if gi.dtype == dtype else gi.astype(dtype))
        return tuple(grads)

    def key(self) -> tuple[Any, ...]:
        return ("bwd", self.fwd.out, self.delta, tuple(t[:3] for t in self.targets))

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        outs = ", ".join(f"%{s}:{_describe(env[s])}" for _, s, _, _ in self.targets)
        return (
            f"{outs} = {self.fwd.fn.__name__}.backward(δ=%{self.delta}, saved of %{self.fwd.out})"
        )


class _Add:
    """env[out] = env[a] + env[b]: the engine's fan-out sum (out of place)."""

    def __init__(self, a: int, b: int, out: int) -> None:
        self.a, self.b, self.out = a, b, out

    def key(self) -> tuple[Any, ...]:
        return ("add", self.a, self.b, self.out)

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        return f"%{self.out} = add(%{self.a}, %{self.b}) -> {_describe(env[self.out])}"


class _LeafGrad:
    """The engine's leaf accumulation: ``t.grad = g`` (copied when g is shared) when t.grad is
    None, else ``t.grad = t.grad + g`` out of place, reading t.grad as it is at replay."""

    def __init__(self, t: Tensor, g: int, add: bool, copy_g: bool, name: str) -> None:
        self.t, self.g, self.add, self.copy_g, self.name = t, g, add, copy_g, name

    def __call__(self, g: np.ndarray) -> None:
        t = self.t
        if self.add:
            t.grad = Tensor._wrap(core._add(t.grad.data, g))  # type: ignore[union-attr]
        else:
            t.grad = Tensor._wrap(g.copy() if self.copy_g else g)

    def key(self) -> tuple[Any, ...]:
        return ("leaf", id(self.t), self.g, self.add, self.copy_g)

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        op = f"{self.name}.grad + %{self.g}" if self.add else f"%{self.g}"
        return f"{self.name}.grad = {op}{' (copy)' if self.copy_g else ''}"


class _Call:
    """A method that announced itself with :func:`note_call` (the optimizer's step, zero_grad)."""

    def __init__(self, method: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.method, self.args = method, args

    def __call__(self) -> None:
        self.method(*self.args)

    def key(self) -> tuple[Any, ...]:
        m = self.method
        return ("call", id(getattr(m, "__self__", None)), getattr(m, "__name__", m), self.args)

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        m = self.method
        owner = type(getattr(m, "__self__", None)).__name__
        return f"call {owner}.{getattr(m, '__name__', m)}{self.args if self.args else '()'}"


class _Draw:
    """env[out] = make(rng, *args): random numbers drawn afresh at every replay (:func:`draw`)."""

    def __init__(self, rng: np.random.Generator, make: Callable[..., np.ndarray],
                 args: tuple[Any, ...], out: int) -> None:  # fmt: skip
        self.rng, self.make, self.args, self.out = rng, make, args, out
        self.what = getattr(make, "__qualname__", repr(make))

    def __call__(self) -> np.ndarray:
        return self.make(self.rng, *self.args)

    def key(self) -> tuple[Any, ...]:
        return ("draw", id(self.rng), self.what, self.args, self.out)

    def line(self, env: list[Any], names: dict[int, str]) -> str:
        return f"%{self.out} = draw {self.what}{self.args} -> {_describe(env[self.out])}"


def _const_key(args: list[Any]) -> tuple[Any, ...]:
    """A comparable form of constants: arrays by dtype, shape and bytes."""
    out: list[Any] = []
    for a in args:
        if isinstance(a, np.ndarray):
            out.append(("array", a.dtype.str, a.shape, a.tobytes()))
        else:
            out.append((type(a).__name__, repr(a)))
    return tuple(out)


# ------------------------------------------------------------------ recording


class _Program:
    """A flat list of kernels over slots, with what must hold for a replay to be valid."""

    def __init__(self) -> None:
        self.kernels: list[Any] = []
        self.env: list[Any] = []  # the slots; at recording, the arrays eager made (for .program)
        self.names: dict[int, str] = {}
        self.inputs: list[int] = []  # slot of each array input, in argument order
        self.outputs: Any = None  # the returned structure, with slot numbers for tensors
        self.externals: list[tuple[Tensor, np.ndarray, bool]] = []  # guarded: same array, rg
        self.grad_expect: list[tuple[Tensor, bool]] = []  # (t, t.grad is None) at entry
        self.optimizers: list[tuple[Any, tuple[int, ...]]] = []  # with their parameters' ids
        self.leaves: list[Tensor] = []
        self.draws: list[_Draw] = []  # random draws: their generators' states are restored too
        self.states: dict[tuple[int, str], tuple[Any, str, Any]] = {}  # guarded (note_state)
        self.schedules: list[Any] = []  # LR schedules stepped by the step: restored like opts

    def structure(self) -> list[tuple[Any, ...]]:
        # Captured tensors by identity: one the step creates anew at each call (a target made
        # from integer labels) is data the replay would freeze.
        ext = [("ext", id(t), arr.dtype.str, arr.shape) for t, arr, _ in self.externals]
        return [k.key() for k in self.kernels] + ext + [("out", repr(self.outputs))]

    def __str__(self) -> str:
        lines = [
            f"{k:3d}  {kern.line(self.env, self.names)}" for k, kern in enumerate(self.kernels)
        ]
        return "\n".join(lines)


def _param_ids(opt: Any) -> tuple[int, ...]:
    return tuple(id(p) for g in opt.param_groups for p in g["params"])


class _Recorder:
    """Watches one eager run of the step (an engine observer) and builds its :class:`_Program`."""

    def __init__(self, inputs: list[Tensor]) -> None:
        self.p = _Program()
        self.slot_of: dict[int, int] = {}  # id(array) -> slot (env keeps the arrays alive)
        self.nodes: dict[int, _Forward] = {}  # id(eager Context) -> its forward kernel
        self.keep: list[Any] = []  # contexts and tensors kept alive so their ids stay unique
        self.pending: dict[Any, int] = {}  # the engine's `grads`: tensor key -> gradient slot
        self.leaf_tensor: dict[Any, Tensor] = {}
        self.grad_set: set[int] = set()  # leaves whose .grad the program set or cleared so far
        self.before: dict[Any, Any] = {}  # a leaf's .grad before this backward reached it
        self.rng_before: dict[int, tuple[Any, Any]] = {}  # generators drawn from: their states
        for t in inputs:
            self.p.inputs.append(self.new_slot(t.data, f"in{len(self.p.inputs)}"))

    def new_slot(self, a: Any, name: str | None = None) -> int:
        s = len(self.p.env)
        self.p.env.append(a)
        if isinstance(a, np.ndarray):
            self.slot_of[id(a)] = s
        if name is not None:
            self.p.names[s] = name
        return s

    def external(self, t: Tensor) -> int:
        """A Tensor's array from before the step (a parameter): captured by identity, guarded."""
        s = self.slot_of.get(id(t.data))
        if s is None:
            s = self.new_slot(t.data, f"ext{len(self.p.externals)}")
            self.p.externals.append((t, t.data, t.requires_grad))
            self.keep.append(t)
        return s

    # -- the observer interface (see autograd/mode.py)

    def forward(self, fn: type, ctx: Any, out: Tensor, args: Any, kwargs: Any) -> None:
        self.flush()
        if ctx is not None and not getattr(fn, "array_backward", False):
            raise CompileError(
                f"compile: {fn.__name__}'s backward is written for Tensors only "
                "(array_backward = False); a step using it cannot be compiled"
            )
        consts: list[Any] = []
        slots: list[tuple[int, int]] = []
        for pos, a in enumerate(args):
            arr = a.data if isinstance(a, Tensor) else a
            s = self.slot_of.get(id(arr)) if isinstance(arr, np.ndarray) else None
            if s is None and isinstance(a, Tensor) and arr.ndim == 0 and not a.requires_grad:
                arr = a = np.array(arr, copy=True)  # a number the step wrote (x * 0.5): a constant
            elif s is None and isinstance(a, Tensor):
                if a._hooks or a._retains_grad:
                    raise CompileError(
                        f"compile: a tensor with hooks or retain_grad() enters {fn.__name__}; "
                        "hooks are not recorded (run this step eagerly)"
                    )
                s = self.external(a)
            if s is None:
                consts.append(np.array(a, copy=True) if isinstance(a, np.ndarray) else a)
            else:
                consts.append(None)
                slots.append((pos, s))
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        rctx = _ReplayContext(fn, needs)
        for k, v in kwargs.items():
            if isinstance(v, Tensor):
                raise CompileError(
                    f"compile: a Tensor passed to {fn.__name__} as the keyword argument {k!r} is "
                    "no input of the graph; pass it positionally"
                )
        frozen = {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                  for k, v in kwargs.items()}  # fmt: skip
        kern = _Forward(fn, rctx, consts, slots, -1, frozen)
        kern.out = self.new_slot(None)
        # Run the formula again on the same arrays: it must give the same bits.  This catches an
        # op that draws random numbers (a replay would draw afresh, which recording cannot check).
        # NOTE: the package's own ops draw none (dropout's mask comes from draw(), a kernel of
        # its own), so only other ops are run twice: at m = 1000 the two recordings of the book's
        # step ran the first layer's 1000×784 product twice each, 2 ms of a 50-step epoch.
        if not fn.__module__.startswith(_PACKAGE) and not _same(
            kern(*(self.p.env[s] for _, s in slots)), out.data
        ):
            raise CompileError(
                f"compile: {fn.__name__}.forward gives a different result when run again on the "
                "same arrays (it draws random numbers?); a step using it cannot be compiled"
            )
        self.p.env[kern.out] = out.data
        self.slot_of[id(out.data)] = kern.out
        self.p.kernels.append(kern)
        if ctx is not None:
            self.nodes[id(ctx)] = kern
            self.keep.append(ctx)

    def backward(self, ctx: Any, delta: Any, input_grads: list[Any]) -> None:
        if isinstance(delta, Tensor):
            if _state.grad_enabled:
                raise CompileError("compile: backward(create_graph=True) cannot be recorded")
            delta = delta.data  # a formula written for Tensors only
        fwd = self.nodes.get(id(ctx))
        if fwd is None:
            raise CompileError(
                f"compile: the backward of {ctx.name} belongs to a graph built before the step; "
                "build the graph inside the step"
            )
        d = self.pending.pop(id(ctx), None)
        if d is None:  # the root: backward's seed (a constant, or an array the step made)
            d = self.slot_of.get(id(delta))
            if d is None:
                d = self.new_slot(np.array(delta, copy=True), "seed")
        targets, adds = [], []
        for i, (inp, gi) in enumerate(zip(ctx.inputs, input_grads)):
            if gi is None:
                continue
            s = self.new_slot(gi.data if isinstance(gi, Tensor) else gi)
            targets.append((i, s, inp.data.shape, inp.data.dtype))
            if inp._ctx is not None:
                k: Any = id(inp._ctx)
            else:
                if inp._hooks or inp._retains_grad:
                    raise CompileError(
                        "compile: a leaf with hooks or retain_grad() cannot be recorded "
                        "(run this step eagerly)"
                    )
                k = ("leaf", id(inp))
                if k not in self.leaf_tensor:
                    self.leaf_tensor[k] = inp
                    self.before[k] = inp.grad
                    self.keep.append(inp)
            if k in self.pending:  # fan-out: the engine sums out of place, in this order
                total = self.new_slot(core._add(self.p.env[self.pending[k]], self.p.env[s]))
                adds.append(_Add(self.pending[k], s, total))
                self.pending[k] = total
            else:
                self.pending[k] = s
        self.p.kernels.append(_Backward(fwd, d, targets))
        self.p.kernels.extend(adds)

    def flush(self) -> None:
        """After a backward pass: each leaf's total gradient went to its ``.grad``."""
        for k, t in self.leaf_tensor.items():
            g = self.pending.pop(k, None)
            if g is None:
                continue
            before = self.before[k]
            if id(t) not in self.grad_set:  # depends on the .grad the step was called with
                self.p.grad_expect.append((t, before is None))
                self.grad_set.add(id(t))
            ga = self.p.env[g]  # shared (a view, or in another slot too): the leaf gets a copy
            copy_g = ga.base is not None or any(
                a is ga for a in self.p.env[:g] + self.p.env[g + 1 :]
            )
            name = self.p.names.get(self.slot_of.get(id(t.data), -1), f"leaf{len(self.p.leaves)}")
            self.p.kernels.append(_LeafGrad(t, g, before is not None, copy_g, name))
            self.p.leaves.append(t)
        self.pending.clear()
        self.leaf_tensor.clear()
        self.before.clear()

    def state(self, owner: Any, name: str) -> None:
        self.p.states.setdefault((id(owner), name), (owner, name, getattr(owner, name)))

    def call(self, method: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.flush()
        owner: Any = getattr(method, "__self__", None)
        if hasattr(owner, "get_last_lr") and all(s is not owner for s in self.p.schedules):
            self.p.schedules.append(owner)  # a schedule: _Snapshot restores it in verification
        if getattr(method, "__name__", "") == "zero_grad":
            params = owner.parameters() if hasattr(owner, "parameters") else (
                p for g in owner.param_groups for p in g["params"])  # fmt: skip
            self.grad_set.update(id(p) for p in params)
        if hasattr(owner, "param_groups") and all(o is not owner for o, _ in self.p.optimizers):
            self.p.optimizers.append((owner, _param_ids(owner)))
        self.p.kernels.append(_Call(method, args))

    def draw(self, rng: np.random.Generator, make: Callable[..., Any], args: tuple[Any, ...],
             out: np.ndarray) -> None:  # fmt: skip
        self.flush()
        kern = _Draw(rng, make, args, -1)
        kern.out = self.new_slot(out, f"draw{len(self.p.draws)}")
        self.p.kernels.append(kern)
        self.p.draws.append(kern)

    def finish(self, result: Any) -> None:
        self.flush()

        def leaf(t: Any) -> Any:
            if isinstance(t, Tensor):
                s = self.slot_of.get(id(t.data))
                if s is None:
                    raise CompileError("compile: the step returns a tensor it did not compute")
                return ("slot", s)
            if isinstance(t, (tuple, list)):
                return [leaf(x) for x in t]
            if t is None:
                return None
            raise CompileError(
                f"compile: a compiled step returns Tensors (or a tuple of them, or None), "
                f"not {type(t).__name__}"
            )

        self.p.outputs = leaf(result)
        self.keep.clear()
        self.slot_of.clear()


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: the same dtype, shape and values (NaN equal to NaN)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a, b = getattr(a, "data", a), getattr(b, "data", b)
    if a is None or b is None:
        return a is b
    x, y = np.asarray(a), np.asarray(b)
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


# ------------------------------------------------------------------ the compiled step


def _signature(args: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[np.ndarray]]:
    """The key a program is cached under (grad mode; shape and dtype of each array or Tensor
    argument, the value of any other), and the arrays the program takes as its inputs."""
    key: list[Any] = [_state.grad_enabled]
    arrays = []
    for k, a in enumerate(args):
        if type(a) is np.ndarray:
            key += (a.shape, a.dtype)
            arrays.append(a)
        elif isinstance(a, Tensor):
            if a.requires_grad:
                raise CompileError(
                    f"compile: argument {k} requires grad; a compiled step's inputs are data "
                    "(parameters are reached through the model)"
                )
            key += ("T", a.shape, a.dtype)
            arrays.append(a.data)
        elif isinstance(a, np.ndarray):
            key += ("A", type(a), a.shape, a.dtype)
            arrays.append(a)
        else:
            try:
                hash(a)
            except TypeError:
                raise TypeError(
                    f"compile: argument {k} ({type(a).__name__}) is neither an array, a Tensor "
                    "nor a hashable constant"
                ) from None
            key.append(("V", type(a).__name__, a))
    return tuple(key), arrays


class _State:
    """What a compiled step keeps about the program of one signature."""

    def __init__(self, program: _Program) -> None:
        self.program = program
        self.lowered: Any = None  # the _lowering.Lowered program, made at the second call
        self.verified = False
        self.checks_left = 0

    def usable(self) -> bool:
        """The guards hold: once lowered, the program's own (``valid``); before, the state noted
        while recording (a module's mode) is unchanged."""
        if self.lowered is not None:
            return bool(self.lowered.valid())
        return all(getattr(o, name) is v for o, name, v in self.program.states.values())


class CompiledStep:
    """A step function with recorded programs, one per input signature (see the module doc)."""

    def __init__(self, fn: Callable[..., Any], check: bool | int = False,
                 fallback: bool = False) -> None:  # fmt: skip
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.check = int(check) * 3 if isinstance(check, bool) else int(check)
        self.fallback = fallback
        #: Why this step runs eagerly (``fallback=True``, after a CompileError), else None.
        self.fallback_reason: str | None = None
        self._programs: dict[tuple[Any, ...], _State] = {}
        self._last: Callable[..., Any] | None = None  # the last replayed program's run
        self.records = 0  # how many times fn ran eagerly under the recorder (for tests, study)

    @property
    def program(self) -> str:
        """The most recently used program: each kernel (op, the slots it writes and reads with
        their shapes, dtypes and buffers) above the NumPy lines it runs."""
        if not self._programs:
            return "(nothing recorded yet)"
        state = next(reversed(self._programs.values()))
        if state.lowered is None:
            return "(recorded, lowered at the next call)\n" + str(state.program)
        return str(state.lowered.text)

    def __call__(self, *args: Any) -> Any:
        last = self._last
        if last is not None:  # the steady state: the last program's checks, then its replay
            out = last(*args)
            if out is not _MISS:
                return out
            self._last = None
        key, arrays = _signature(args)
        if self.fallback_reason is not None or _state.observers or _state.recording is not None:
            # Eager: compilation failed before, or a tool watches the engine (trace,
            # detect_anomaly), which a replay would bypass, or another step is recording.
            return self.fn(*(Tensor._wrap(a) if isinstance(a, np.ndarray) else a for a in args))
        try:
            return self._call(key, args, arrays)
        except CompileError as e:
            done = getattr(e, "eager_result", _NONE)  # a failed verification: eager ran
            if not self.fallback or (done is _NONE and not getattr(e, "rerun", False)):
                raise
            self.fallback_reason = str(e)
            if done is not _NONE:
                return done
            return self.fn(*(Tensor._wrap(a) if isinstance(a, np.ndarray) else a for a in args))

    def _call(self, key: tuple[Any, ...], args: tuple[Any, ...], arrays: list[np.ndarray]) -> Any:
        state = self._programs.pop(key, None)
        if state is not None and not state.usable():
            state = None
        if state is None:
            result, program = self._record(args)
            self._remember(key, _State(program))
            return result
        self._remember(key, state)
        if state.lowered is None:
            state.lowered = lower(state.program, args)
        if state.verified and state.checks_left == 0:
            self._last = state.lowered.run
            return state.lowered.replay(*arrays)
        return self._verify(state, args, arrays)

    def _remember(self, key: tuple[Any, ...], state: _State) -> None:
        self._programs[key] = state
        while len(self._programs) > _MAX_PROGRAMS:
            del self._programs[next(iter(self._programs))]

    def _record(self, args: tuple[Any, ...]) -> tuple[Any, _Program]:
        inputs = [Tensor._wrap(a) if isinstance(a, np.ndarray) else a for a in args]
        rec = _Recorder([t for t in inputs if isinstance(t, Tensor)])
        self.records += 1
        _state.observers += (rec,)
        _state.recording = rec
        try:
            result = self.fn(*inputs)
            rec.finish(result)
        except CompileError as e:
            # Before any optimizer step the run changed only .grad (which the step's zero_grad
            # clears again) and the random streams (put back here): it can run again eagerly.
            updated = any(isinstance(k, _Call) and k.method.__name__ == "step"
                          for k in rec.p.kernels)  # fmt: skip
            if not updated:
                for rng, st in rec.rng_before.values():
                    rng.bit_generator.state = st
                e.rerun = True  # type: ignore[attr-defined]
            raise
        finally:
            _state.recording = None
            obs = list(_state.observers)
            obs.remove(rec)
            _state.observers = tuple(obs)
        return result, rec.p

    def _verify(self, state: _State, args: tuple[Any, ...], arrays: list[np.ndarray]) -> Any:
        """Replay, put the state back, run eagerly (recording again), and compare."""
        program = state.program
        saved = _Snapshot(program)
        replayed = state.lowered.replay(*arrays)
        after_replay = _Snapshot(program, outputs=replayed)
        saved.restore()
        result, again = self._record(args)
        after_eager = _Snapshot(program, outputs=result)
        diff = after_replay.difference(after_eager)
        error = None
        if again.structure() != program.structure():
            error = CompileError(
                "compile: the step recorded different kernels on its second call with the same "
                "signature: it makes a tensor or constant from the data in Python (e.g. integer "
                "labels made one-hot inside the step: pass one-hot rows instead; or a new Tensor "
                "created at each call), or its control flow changed; it cannot be compiled "
                "faithfully"
            )
        elif diff:
            error = CompileError(
                f"compile: the replay differs from eager in {diff}: the step changes values "
                "outside the recorded kernels (a manual update of .data? use an optimizer), or a "
                "kernel is wrong"
            )
        if error is not None:
            error.eager_result = result  # type: ignore[attr-defined]  # the state is eager's
            raise error
        if state.verified:
            state.checks_left -= 1
        else:
            state.verified, state.checks_left = True, self.check
        return result


_NONE = object()


class _Snapshot:
    """Copies of everything a program touches: parameters (and other captured arrays), leaf
    ``.grad`` tensors, optimizer state and hyper-parameters, LR schedules; and the outputs, to
    compare replay with eager."""

    def __init__(self, p: _Program, outputs: Any = None) -> None:
        tensors: dict[int, Tensor] = {id(t): t for t, _, _ in p.externals}
        tensors.update((id(t), t) for t in p.leaves)
        for opt, _ in p.optimizers:
            tensors.update((id(q), q) for g in opt.param_groups for q in g["params"])
        self.tensors = list(tensors.values())
        self.data = [np.array(t.data, copy=True) for t in self.tensors]
        self.grads = [t.grad for t in self.tensors]
        self.grad_values = [None if g is None else np.array(g.data, copy=True) for g in self.grads]
        self.opts = [(opt, _copy_state(opt.state)) for opt, _ in p.optimizers]
        opts = [opt for opt, _ in p.optimizers] + [s.optimizer for s in p.schedules]
        groups = {id(g): g for opt in opts for g in opt.param_groups}.values()
        self.hyper = [(g, {k: v for k, v in g.items() if k != "params"}) for g in groups]
        self.schedules = [(s, copy.deepcopy(s.state_dict())) for s in p.schedules]
        self.rngs = {id(d.rng): (d.rng, d.rng.bit_generator.state) for d in p.draws}
        flat: list[Any] = []
        _flatten(outputs, flat)
        self.outputs = [np.array(t.data, copy=True) for t in flat]

    def restore(self) -> None:
        for t, d, g in zip(self.tensors, self.data, self.grad_values):
            np.copyto(t.data, d)
            t.grad = None if g is None else Tensor._wrap(g.copy())  # (a replay wrote its buffers)
        for opt, st in self.opts:
            opt.state = _copy_state(st)
        for group, values in self.hyper:
            group.update(values)
        for sched, st in self.schedules:
            sched.load_state_dict(copy.deepcopy(st))
        for rng, state in self.rngs.values():
            rng.bit_generator.state = state

    def difference(self, other: _Snapshot) -> str:
        for k, t in enumerate(self.tensors):
            if not _same(self.data[k], other.data[k]):
                return f"a parameter of shape {t.shape} ({t.dtype})"
            if not _same(self.grad_values[k], other.grad_values[k]):
                return f"the .grad of a parameter of shape {t.shape} ({t.dtype})"
        for (_, a), (_, b) in zip(self.opts, other.opts):
            if a.keys() != b.keys() or not all(_same_state(a[k], b[k]) for k in a):
                return "the optimizer's state"
        if [v for _, v in self.hyper] != [v for _, v in other.hyper]:
            return "the optimizer's hyper-parameters (param_groups)"
        if [st for _, st in self.schedules] != [st for _, st in other.schedules]:
            return "a learning-rate schedule's state"
        if len(self.outputs) != len(other.outputs) or not all(
            _same(x, y) for x, y in zip(self.outputs, other.outputs)
        ):
            return "the returned values"
        return ""


def _copy_state(state: dict[Any, Any]) -> dict[Any, Any]:
    """An optimizer's state with its values copied (its keys are the parameters themselves)."""
    return {p: copy.deepcopy(v) for p, v in state.items()}


def _same_state(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_same_state(a[k], b[k]) for k in a))  # fmt: skip
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return _same(a, b)
    return bool(a == b)


def _flatten(x: Any, out: list[Any]) -> None:
    if isinstance(x, Tensor):
        out.append(x)
    elif isinstance(x, (tuple, list)):
        for y in x:
            _flatten(y, out)


def compile(fn: Callable[..., Any] | None = None, *, check: bool | int = False,
            fallback: bool = False) -> Any:  # fmt: skip
    """Compile a training step: ``step = tg.compile(fn)`` or ``@tg.compile``.

    The first call with a given input signature (shapes and dtypes of the array and Tensor
    arguments, the values of the others, grad mode) runs ``fn`` eagerly and records its kernels;
    the second runs eagerly again and checks that a replay gives the same bits; later calls
    replay.  ``check=True`` (or a number of calls) keeps comparing replay with eager for that
    many more calls and raises :class:`CompileError` on any difference.  ``fallback=True``:
    a step that cannot be compiled (hooks, ``create_graph``, an op without an array backward,
    a replay that differs) runs eagerly from then on instead of raising, with the reason in
    ``step.fallback_reason`` (``train.fit`` uses this); an error after the step's optimizer
    update was recorded is raised all the same, as running the step again would update twice.
    While ``trace()`` or ``detect_anomaly()`` is active the step runs eagerly.
    """
    if fn is None:
        return lambda f: CompiledStep(f, check, fallback)
    return CompiledStep(fn, check, fallback)
