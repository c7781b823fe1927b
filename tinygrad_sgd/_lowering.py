"""Lowering a recorded step (see ``compile.py``) to straight-line NumPy over preallocated buffers.

The recorder gives a flat list of kernels over numbered slots: each op's forward and backward
formula, the engine's fan-out sums and ``.grad`` assignments, the optimizer's calls.  Running those
formulas as they are allocates a fresh array for every intermediate and runs the optimizer's
Python loop.  Lowering turns the list into the program a hand-written training step would be:

1. **Kernel forms.**  A recorded kernel whose op has an ``out=`` form here becomes a few NumPy
   calls writing into a buffer (``matmul(x, W.T, out=z)``); every other kernel calls the op's
   own formula, as eager does (a *fallback*: a fresh array).  A form makes exactly the NumPy
   calls of the op's formula, in the same order, on the same values, only into a buffer: so a
   replay gives the bits of eager, which the compiled step's verification checks.  The forms:
   the fused linear layer (z = x Wᵀ + b, and its three products and sum backward), the sigmoid
   (its exact fast path with the range check, and a(1 − a) δ backward), the quadratic cost
   (a − y made once for the value and the backward), the cross-entropy from z of chapter 3
   (``SigmoidBinaryCrossEntropy``: softplus(z) − y z summed, and (σ(z) − y) δ·scale backward
   with σ's range check, each under eager's ``errstate(under="ignore")``), the elementwise
   a · b, a + b and |x| and the reduction Σ x (the penalties' kernels, and the cost's 1/m;
   when no gradient needs summing back to a broadcast input), the fan-out sum, each leaf's
   ``.grad``, the optimizer's ``zero_grad`` and SGD's step (plain, or momentum, Nesterov,
   weight decay in place), hyper-parameters read from ``param_groups`` at every replay.
   A backward on constants only (backward's seed times the cost's 1/m, passed through the sums
   of the penalties) is computed once, at lowering, when eager's formula gives the recorded
   bits and raises no floating-point flag: it becomes a constant of the program (*folded*).
2. **Buffers.**  Slots written by out= kernels get buffers, allocated once per program and shared
   between slots whose lifetimes do not overlap; an elementwise kernel may write over the input it
   is the last reader of (the sigmoid over its layer's z, the cost's backward over a − y).  The
   gradients that become ``.grad`` keep theirs: the ``.grad`` arrays after a replay are the
   program's buffers, rewritten by the next replay (copy one to keep it).  A fallback's inputs
   stay alive as long as its outputs (its formula may return a view of them, or save them), and
   so do those of a form whose results are views (Add's backward passes δ on, Sum's broadcasts
   it back).
3. **Code.**  The program is emitted as the source of one Python function, a line or a few per
   kernel, compiled once with ``exec``: a replay is one call of it, with no loop over kernel
   objects, and the guards are a second generated function.  ``step.program`` prints each
   kernel (op, slots with shapes and dtypes, buffers) above the lines it runs.

Considered and not done: the sigmoid's slope from the same exponential as the sigmoid
(σ' = e⁻ᶻ/(1 + e⁻ᶻ)² = e⁻ᶻ a²) instead of a(1 − a): eager computes a(1 − a) from a, so this would
change rounding, and it takes two NumPy calls either way.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from functools import partial
from operator import mul
from typing import Any

import numpy as np

from .autograd import inplace
from .autograd.mode import _state
from .nn.functional import QuadraticCost, SigmoidBinaryCrossEntropy
from .ops import Abs, Add, Linear, Mul, Sigmoid, Sum
from .ops.elementwise import _exp_safe_limit, stable_sigmoid
from .ops.reduce import keepdims_shape
from .optim.optimizer import Optimizer
from .optim.sgd import SGD
from .tensor import Tensor

_FOREVER = math.inf  # the lifetime of a slot that outlives the replay (.grad, outputs)

# The NumPy functions the generated code calls, by the names it uses.
_NUMPY = {
    "matmul": np.matmul,
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "negative": np.negative,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "exp": np.exp,
    "reciprocal": np.reciprocal,
    "vdot": np.vdot,
    "asarray": np.asarray,
    "copyto": np.copyto,
    "stable_sigmoid": stable_sigmoid,
    "logaddexp": np.logaddexp,
    "absolute": np.absolute,
    "sign": np.sign,
    "broadcast_to": np.broadcast_to,
    "errstate": np.errstate,
}


def _short(a: Any) -> str:
    """f32[10,30] for a float32 array of shape (10, 30)."""
    if not isinstance(a, np.ndarray):
        return repr(a)
    kind = {"f": "f", "i": "i", "u": "u", "b": "bool", "c": "c"}.get(a.dtype.kind, a.dtype.str)
    size = "" if kind == "bool" else str(a.dtype.itemsize * 8)
    return f"{kind}{size}[{','.join(map(str, a.shape))}]"


class _Op:
    """One lowered kernel: the slots it reads and writes, and the source lines it runs.

    ``buffered``: written slots that need a buffer (out= kernels write into them);
    ``inplace``: written slot -> the input slot whose buffer it may take over when that input is
    read for the last time here (elementwise kernels only); ``fallback``: runs an op's formula,
    whose result may alias its inputs; ``views``: a form whose results are its inputs or views
    of them (Add's backward passes δ on, Sum's broadcasts it); ``fresh``: written slots that hold
    a new array at every replay (returned without a copy).
    """

    def __init__(self, title: str, reads: list[int], writes: list[int], code: list[str], *,
                 buffered: tuple[int, ...] = (), inplace: dict[int, int] | None = None,
                 fallback: bool = False, keep: tuple[int, ...] = (), views: bool = False,
                 fresh: tuple[int, ...] = ()) -> None:  # fmt: skip
        self.title, self.reads, self.writes, self.code = title, reads, writes, code
        self.buffered = set(buffered)
        self.inplace = inplace or {}
        self.fallback = fallback
        self.keep = keep  # read slots that must outlive the replay (a fallback .grad's array)
        self.views = views or fallback
        self.fresh = fresh


class Lowered:
    """A lowered program: ``run(*args)`` checks the arguments' signature and the guards and
    replays (or returns ``compile._MISS``), ``replay(*arrays)`` replays; ``text`` lists the kernels
    and ``source`` is the generated Python."""

    def __init__(self, run: Callable[..., Any], replay: Callable[..., Any], text: str,
                 source: str) -> None:  # fmt: skip
        self.run, self.replay, self.text, self.source = run, replay, text, source

    def valid(self) -> bool:
        """The guards hold: the parameters' arrays, the optimizers' parameters, .grad state."""
        return bool(self._valid())  # type: ignore[attr-defined]


class _Lowering:
    def __init__(self, p: Any, args: tuple[Any, ...]) -> None:
        # The recorded kernel classes (``tg.compile`` is the function, so not ``from . import``).
        c = importlib.import_module(".compile", __package__)

        self.c = c
        self.p = p
        self.args = args
        self.env: list[Any] = list(p.env)  # the recorded arrays: shapes and dtypes of each slot
        self.ns: dict[str, Any] = dict(_NUMPY)
        self.ops: list[_Op] = []
        self.written = {s for k in p.kernels for s in _writes(k, c)}
        self.ext = {self._slot_of_external(t, arr): t for t, arr, _ in p.externals}
        self.lowered_fwd: dict[int, Any] = {}  # id(forward kernel) -> how its backward lowers
        self.backs: dict[int, list[Any]] = {}
        for k in p.kernels:
            if isinstance(k, c._Backward):
                self.backs.setdefault(id(k.fwd), []).append(k)
        # Per parameter: where its .grad comes from at this point of the program.
        self.grad_of: dict[int, Any] = {}  # id(t) -> a slot (a buffer), None (cleared), absent
        self.scratch: dict[tuple[Any, ...], str] = {}  # (shape, dtype) -> a bound buffer's name
        self.grad_tensors: set[int] = set()  # slots whose buffer becomes a .grad
        self.flat: set[int] = set()  # buffered slots read through a flat view (S_flat)
        self.folded: set[int] = set()  # written slots whose value is the same at every replay
        self.bound: dict[int, str] = {}  # id(object) -> its name in the generated code
        for slot, t in self.ext.items():  # a parameter's Tensor: T_ext0 for the array ext0
            self.bound[id(t)] = f"T_{self.name(slot)}"
            self.ns[f"T_{self.name(slot)}"] = t

    def _slot_of_external(self, t: Tensor, arr: np.ndarray) -> int:
        return next(s for s, a in enumerate(self.p.env) if a is arr)

    def name(self, s: int) -> str:
        """The slot's variable: in0, ext0 (a parameter), seed, draw0 as the recorder named
        them, else s<number>."""
        name: str = self.p.names.get(s, f"s{s}")
        return name

    def bind(self, value: Any, prefix: str) -> str:
        """A name for ``value`` in the generated code (the same name for the same object)."""
        if isinstance(value, (Tensor, np.ndarray, Optimizer)):
            key = self.bound.get(id(value))
            if key is None:
                key = self.bound[id(value)] = f"{prefix}{len(self.bound)}"
                self.ns[key] = value
            return key
        key = f"{prefix}{len(self.ns)}"
        self.ns[key] = value
        return key

    def _const(self, value: float, dtype: np.dtype[Any]) -> str:
        """The name of a 0-d array holding ``value`` in ``dtype`` (one per value and dtype)."""
        arr = np.asarray(value, dtype)
        key = ("const", float(value), arr.dtype)
        if key not in self.scratch:
            self.scratch[key] = self.bind(arr, "C")
        return self.scratch[key]

    def hidden(self, like: np.ndarray) -> int:
        """A new slot for a buffer the recorded program did not have (the cost's a − y)."""
        self.env.append(like)
        self.written.add(len(self.env) - 1)
        return len(self.env) - 1

    def constant(self, s: int) -> bool:
        """The slot holds the same array at every replay: a recorded constant (backward's seed,
        a number written in the step) or a result folded from constants (see :meth:`fold`)."""
        if s in self.folded:
            return True
        return s not in self.written and s not in self.p.inputs and s not in self.ext

    def fold(self, s: int, value: Callable[[], Any]) -> bool:
        """Make written slot ``s`` a constant of the program when ``value()``, eager's formula
        on constants, gives the array recorded in it (so its bits at every replay) and raises
        no floating-point flag (else eager would warn at every step, and the replay must too).

        The recorded array itself becomes the constant: arrays shared between slots stay
        shared, as the recorder saw them (a leaf's ``.grad`` copies a shared gradient).  A
        hidden slot (no recorded array) takes ``value()``."""
        try:
            with np.errstate(all="raise"):
                v = np.asarray(value())
        except FloatingPointError:
            return False
        if s >= len(self.p.env):
            self.env[s] = v
        rec = self.env[s]
        if not (isinstance(rec, np.ndarray) and v.dtype == rec.dtype and v.shape == rec.shape
                and v.tobytes() == rec.tobytes()):  # fmt: skip
            return False
        self.folded.add(s)
        self.ns[self.name(s)] = rec
        return True

    # ---------------------------------------------------------------- the walk

    def run(self) -> Lowered:
        c = self.c
        for k, kern in enumerate(self.p.kernels):
            if isinstance(kern, c._Forward):
                self.forward(kern)
            elif isinstance(kern, c._Backward):
                self.backward(kern)
            elif isinstance(kern, c._Add):
                self.add(kern)
            elif isinstance(kern, c._LeafGrad):
                self.leaf(kern)
            elif isinstance(kern, c._Draw):
                n = self.bind(kern, "K")
                self.ops.append(_Op(f"draw {kern.what}", [], [kern.out],
                                    [f"{self.name(kern.out)} = {n}()"]))  # fmt: skip
            else:
                self.call(k, kern)
        return self.emit()

    def forward(self, kern: Any) -> None:
        fn = kern.fn
        forms = {Linear: self.linear, Sigmoid: self.sigmoid, QuadraticCost: self.quadratic,
                 SigmoidBinaryCrossEntropy: self.bce, Mul: self.mul, Add: self.addition,
                 Sum: self.sum, Abs: self.abs}  # fmt: skip
        form = forms.get(fn)
        if form is not None and form(kern, self.backs.get(id(kern), [])):
            return
        n = self.bind(kern, "K")
        slots = [s for _, s in kern.slots]
        args = ", ".join(self.name(s) for s in slots)
        kw = ", ".join(f"{k}={v!r}" for k, v in kern.kwargs.items())  # shown; kern replays them
        what = f"{fn.__name__}({kw})" if kw else fn.__name__
        self.ops.append(_Op(f"{what} (its formula)", slots, [kern.out],
                            [f"{self.name(kern.out)} = {n}({args})"], fallback=True))  # fmt: skip

    def backward(self, kern: Any) -> None:
        how = self.lowered_fwd.get(id(kern.fwd))
        if how is not None:
            how(kern)
            return
        n = self.bind(kern, "K")
        outs = [s for _, s, _, _ in kern.targets]
        reads = [kern.delta] + [s for _, s in kern.fwd.slots] + [kern.fwd.out]
        lhs = "".join(f"{self.name(s)}, " for s in outs) + "= " if outs else ""
        self.ops.append(_Op(f"{kern.fwd.fn.__name__}.backward (its formula)", reads, outs,
                            [f"{lhs}{n}({self.name(kern.delta)})"], fallback=True))  # fmt: skip

    # ---------------------------------------------------------------- kernel forms

    def _same(self, *slots: int) -> bool:
        """All these slots hold arrays of one dtype (floating)."""
        arrays = [self.env[s] for s in slots]
        return (
            all(isinstance(a, np.ndarray) for a in arrays)
            and len({a.dtype for a in arrays}) == 1
            and arrays[0].dtype.kind == "f"
        )

    def _targets_exact(self, back: Any) -> bool:
        """The backward's gradients need no un-broadcasting and no cast."""
        fwd = back.fwd
        ins = dict(fwd.slots)
        return all(
            i in ins and self.env[s].shape == self.env[ins[i]].shape
            and self.env[s].dtype == self.env[ins[i]].dtype
            for i, s, _, _ in back.targets
        ) and self._same(back.delta, fwd.out) and self.env[back.delta].shape == (
            self.env[fwd.out].shape)  # fmt: skip

    def linear(self, kern: Any, backs: list[Any]) -> bool:
        """z = x Wᵀ + b:  matmul(x, W.T, out=z); z += b.   Backward, with G = δ:
        ∂C/∂x = G W, ∂C/∂W = Gᵀ x, ∂C/∂b = Σ_rows G, each into its buffer."""
        ins = dict(kern.slots)
        if 0 not in ins or 1 not in ins or (2 not in ins and kern.args[2] is not None):
            return False
        x, w, z = ins[0], ins[1], kern.out
        b = ins.get(2)
        group = (x, w, z) if b is None else (x, w, z, b)
        env = self.env
        if not (self._same(*group) and env[x].ndim == 2 and env[w].ndim == 2):
            return False
        if b is not None and env[b].ndim != 1:
            return False
        if not all(self._targets_exact(bk) for bk in backs):
            return False
        wt = self.bind(env[w].T, "WT") if w in self.ext else f"{self.name(w)}.T"
        code = [f"matmul({self.name(x)}, {wt}, out={self.name(z)})"]
        if b is not None:
            code.append(f"add({self.name(z)}, {self.name(b)}, out={self.name(z)})")
        self.ops.append(_Op("Linear", list(group[:2]) + ([] if b is None else [b]), [z], code,
                            buffered=(z,)))  # fmt: skip

        def back(bk: Any) -> None:
            g = self.name(bk.delta)
            code, outs = [], []
            for i, s, _, _ in bk.targets:
                outs.append(s)
                if i == 0:
                    code.append(f"matmul({g}, {self.name(w)}, out={self.name(s)})")
                elif i == 1:
                    code.append(f"matmul({g}.T, {self.name(x)}, out={self.name(s)})")
                else:
                    code.append(f"add.reduce({g}, axis=0, out={self.name(s)})")
            self.ops.append(_Op("Linear.backward", [bk.delta, x, w], outs, code,
                                buffered=tuple(outs)))  # fmt: skip

        self.lowered_fwd[id(kern)] = back
        return True

    def sigmoid(self, kern: Any, backs: list[Any]) -> bool:
        """a = σ(z): eager's exact fast path (1/(1 + e⁻ᶻ) in place, when min z ≥ −L), else its
        stable form.  Backward: a(1 − a) δ, as SigmoidSlope then the product."""
        ins = dict(kern.slots)
        if 0 not in ins:
            return False
        z, a = ins[0], kern.out
        env = self.env
        if not (self._same(z, a) and env[z].ndim and env[z].size and env[z].shape == env[a].shape
                and env[a].flags.c_contiguous):  # fmt: skip
            return False  # (see _c_order)
        if not all(self._targets_exact(bk) for bk in backs):
            return False
        code = self._sigmoid_code(z, a)
        one = self._const(1, env[z].dtype)
        A = self.name(a)
        self.ops.append(_Op("Sigmoid", [z], [a], code, buffered=(a,), inplace={a: z}))

        def back(bk: Any) -> None:
            ((_, s, _, _),) = bk.targets
            D, S = self.name(bk.delta), self.name(s)
            code = [f"subtract({one}, {A}, out={S}); multiply({S}, {A}, out={S}); "
                    f"multiply({S}, {D}, out={S})"]  # fmt: skip
            self.ops.append(_Op("Sigmoid.backward", [bk.delta, a], [s], code, buffered=(s,)))

        self.lowered_fwd[id(kern)] = back
        return True

    def _sigmoid_code(self, z: int, a: int) -> list[str]:
        """The lines of eager's ``stable_sigmoid(z)`` into a's buffer: its range check decided
        anew at every replay (min z ≥ −L: 1/(1 + e⁻ᶻ) in place; else, NaN included, the
        stable form, copied)."""
        dtype = self.env[z].dtype
        # NOTE: −L and 1 as 0-d arrays of the dtype: the same values as eager's Python numbers
        # (exact in every float dtype), without a conversion of a Python scalar at every call
        # (measured on 10×30 float32: 1.5 µs per ufunc call with a Python number, 0.43 µs with
        # a 0-d array).  The range check compares NumPy's minimum with the Python float −L, as
        # eager does: a comparison with a 0-d array costs 1.1 µs more.
        lim = self._const(-_exp_safe_limit(dtype), dtype)
        one = self._const(1, dtype)
        Z, A = self.name(z), self.name(a)
        producer = self._producer(z)
        if producer is not None and z in producer.buffered:
            # NOTE: the smallest z read through argmin of the buffer's flat view (a view made
            # once): the same test as eager's minimum.reduce, NaN included (argmin finds the
            # first NaN, and NaN >= −L is False), at 0.4 µs instead of 1.0 µs on 10×30.
            self.flat.add(z)
            smallest = f"{Z}_flat[{Z}_flat.argmin()]"
        else:
            smallest = f"minimum.reduce({Z}, axis=None)"
        return [
            f"if {smallest} >= {-_exp_safe_limit(dtype)!r}:",
            f"    negative({Z}, out={A}); maximum({A}, {lim}, out={A}); exp({A}, out={A})",
            f"    add({A}, {one}, out={A}); reciprocal({A}, out={A})",
            "else:",
            f"    copyto({A}, stable_sigmoid({Z}))",
        ]

    def quadratic(self, kern: Any, backs: list[Any]) -> bool:
        """C = (scale/2) Σ (a − y)²: d = a − y once, C = ½·scale·(d · d) (a fresh 0-d array);
        backward ∂C/∂a = (δ·scale) d, in place over d (the same bits as eager's fresh a − y)."""
        ins = dict(kern.slots)
        if 0 not in ins or 1 not in ins or 2 in ins or len(backs) != 1:
            return False
        a, y, c = ins[0], ins[1], kern.out
        (bk,) = backs
        env = self.env
        if not (self._same(a, y, c) and env[a].shape == env[y].shape):
            return False
        if [i for i, _, _, _ in bk.targets] != [0] or not self._targets_exact(bk):
            return False
        scale = kern.args[2]
        d = self.hidden(env[a])
        A, Y, C, D = self.name(a), self.name(y), self.name(c), self.name(d)
        # NOTE: ½·scale as a NumPy scalar of the dtype: the value NumPy converts eager's Python
        # float to beside vdot's result of that dtype, so the product is already of the dtype.
        half = self.bind(env[a].dtype.type(0.5 * scale), "H")
        code = [
            f"subtract({A}, {Y}, out={D})",
            f"{C} = asarray({half} * vdot({D}, {D}))",
        ]
        self.ops.append(_Op("QuadraticCost", [a, y], [c, d], code, buffered=(d,), fresh=(c,)))

        def back(bk: Any) -> None:
            ((_, s, _, _),) = bk.targets
            if bk.delta in self.written:  # a seed the step computed: δ·scale at replay
                factor = f"{self.name(bk.delta)} * {self.bind(scale, 'SC')}"
            else:  # the constant seed 1 of backward(): δ·scale once (the same product), kept
                # as a 0-d array (the product is a NumPy scalar, three times slower in a ufunc)
                factor = self.bind(np.asarray(env[bk.delta] * scale), "F")
            code = [f"multiply({D}, {factor}, out={self.name(s)})"]
            self.ops.append(_Op("QuadraticCost.backward", [bk.delta, d], [s], code,
                                buffered=(s,), inplace={s: d}))  # fmt: skip

        self.lowered_fwd[id(kern)] = back
        return True

    def bce(self, kern: Any, backs: list[Any]) -> bool:
        """Binary cross-entropy from z (``SigmoidBinaryCrossEntropy``, summed, times scale):

            C = scale · Σ [softplus(z) − y z],   softplus(z) = logaddexp(0, z),
            ∂C/∂z = (δ·scale) (σ(z) − y),

        as eager computes them: logaddexp under ``errstate(under="ignore")``, y z, the
        difference, its sum times scale (a fresh 0-d array); backward δ·scale (outside the
        errstate, folded once when δ is a constant), then under ``errstate(under="ignore")``
        eager's ``stable_sigmoid(z)`` with its range check decided at every replay, − y, and
        the product, in one buffer."""
        ins = dict(kern.slots)
        scale = kern.args[2]
        # NOTE: a Python float exactly: eager multiplies by it as by a number of z's dtype (a
        # NumPy float64 would promote a float32 cost and gradient to float64 first).
        if 0 not in ins or 1 not in ins or 2 in ins or type(scale) is not float:
            return False
        z, y, c = ins[0], ins[1], kern.out
        env = self.env
        if not (self._same(z, y, c) and env[z].shape == env[y].shape and env[c].shape == ()
                and env[z].ndim and env[z].size and env[z].flags.c_contiguous):  # fmt: skip
            return False  # (z in C order: eager's softplus(z) − y z is, and sums in that order)
        if any([i for i, _, _, _ in bk.targets] != [0] or not self._targets_exact(bk)
               for bk in backs):  # fmt: skip
            return False
        dtype = env[z].dtype
        p, q = self.hidden(env[z]), self.hidden(env[z])
        Z, Y, C, P, Q = (self.name(v) for v in (z, y, c, p, q))
        # NOTE: 0 and scale as 0-d arrays and a scalar of the dtype: the values NumPy converts
        # eager's Python numbers to beside float arrays and a float scalar of that dtype.
        zero = self._const(0, dtype)
        sc = self.bind(dtype.type(scale), "H")
        code = [
            "with errstate(under='ignore'):",
            f"    logaddexp({zero}, {Z}, out={P})",
            f"multiply({Y}, {Z}, out={Q}); subtract({P}, {Q}, out={P})",
            f"{C} = asarray(add.reduce({P}, axis=None) * {sc})",
        ]
        self.ops.append(_Op("SigmoidBinaryCrossEntropy", [z, y], [c, p, q], code,
                            buffered=(p, q), fresh=(c,)))  # fmt: skip

        def back(bk: Any) -> None:
            ((_, s, _, _),) = bk.targets
            D, S = self.name(bk.delta), self.name(s)
            f = self.hidden(env[bk.delta])
            if self.constant(bk.delta) and self.fold(f, lambda: env[bk.delta] * scale):
                code = [self._folded_note([f])]
            else:
                code = [f"multiply({D}, {self._const(scale, dtype)}, out={self.name(f)})"]
            code.append("with errstate(under='ignore'):")
            code += [f"    {line}" for line in self._sigmoid_code(z, s)]
            code.append(f"    subtract({S}, {Y}, out={S}); multiply({self.name(f)}, {S}, out={S})")
            self.ops.append(_Op("SigmoidBinaryCrossEntropy.backward", [bk.delta, z, y], [f, s],
                                code, buffered=(s,) if f in self.folded else (f, s)))  # fmt: skip

        self.lowered_fwd[id(kern)] = back
        return True

    def _operand(self, kern: Any, pos: int) -> tuple[str, Any]:
        """Argument ``pos`` of a forward kernel: its name in the code and its recorded value
        (a slot, or a constant array bound by name)."""
        s = dict(kern.slots).get(pos)
        if s is not None:
            return self.name(s), self.env[s]
        a = kern.args[pos]
        return (self.bind(a, "C"), a) if isinstance(a, np.ndarray) else ("", a)

    def _elementwise(self, kern: Any, backs: list[Any], arity: int) -> bool:
        """An elementwise op whose form applies: its operands (slots or constant arrays) and
        result are floating arrays of one dtype, and each gradient has its input's shape
        (nothing to sum back) and the dtype."""
        values = [self._operand(kern, i)[1] for i in range(arity)] + [self.env[kern.out]]
        if not all(isinstance(v, np.ndarray) for v in values):
            return False
        if not values[-1].flags.c_contiguous:  # NOTE: see _c_order
            return False
        if len({v.dtype for v in values}) != 1 or values[0].dtype.kind != "f":
            return False
        out = values[-1].shape
        ins = dict(kern.slots)
        return all(
            self._same(bk.delta, kern.out) and self.env[bk.delta].shape == out
            and all(values[i].shape == out and self.env[t].shape == out
                    and self.env[t].dtype == values[i].dtype for i, t, _, _ in bk.targets)
            and all(i in ins for i, _, _, _ in bk.targets)
            for bk in backs
        )  # fmt: skip

    # NOTE: _c_order.  A buffer is in C order; eager's result of an elementwise op follows its
    # operands' memory order (NumPy's order="K"): two operands in Fortran order give a Fortran
    # result, which a later reduction sums in another order than the buffer.  So a form applies
    # only where eager's recorded result is in C order (0-d and 1-D results always are).

    def mul(self, kern: Any, backs: list[Any]) -> bool:
        """z = a · b:  multiply(a, b, out=z).   Backward ∂C/∂a = δ b, ∂C/∂b = δ a, in that
        order, each into its buffer (folded once when δ and the factor are constants: the
        cost's 1/m, the penalty's λ/2n times backward's seed)."""
        if len(kern.args) != 2 or kern.kwargs or not self._elementwise(kern, backs, 2):
            return False
        (A, a), (B, b) = self._operand(kern, 0), self._operand(kern, 1)
        z = kern.out
        ins = dict(kern.slots)
        reads = list(dict.fromkeys(ins[i] for i in sorted(ins)))
        inplace = {z: ins[0]} if 0 in ins and a.shape == self.env[z].shape else {}
        self.ops.append(_Op("Mul", reads, [z], [f"multiply({A}, {B}, out={self.name(z)})"],
                            buffered=(z,), inplace=inplace))  # fmt: skip

        def back(bk: Any) -> None:
            D, delta = self.name(bk.delta), self.env[bk.delta]
            code, outs, folded = [], [], []
            for i, t, _, _ in bk.targets:
                other, value = (B, b) if i == 0 else (A, a)
                j = 1 - i
                known = j not in ins or self.constant(ins[j])
                if self.constant(bk.delta) and known and self.fold(t, partial(mul, delta, value)):
                    folded.append(t)
                else:
                    outs.append(t)
                    code.append(f"multiply({D}, {other}, out={self.name(t)})")
            if folded:
                code.append(self._folded_note(folded))
            others = [ins[1 - i] for i, _, _, _ in bk.targets if 1 - i in ins]
            self.ops.append(_Op("Mul.backward", [bk.delta, *others], outs + folded, code,
                                buffered=tuple(outs)))  # fmt: skip

        self.lowered_fwd[id(kern)] = back
        return True

    def addition(self, kern: Any, backs: list[Any]) -> bool:
        """z = a + b:  add(a, b, out=z).   Backward ∂C/∂a = ∂C/∂b = δ: δ itself, passed on (as
        eager's ``return g, g``; a constant δ stays a constant)."""
        if len(kern.args) != 2 or kern.kwargs or not self._elementwise(kern, backs, 2):
            return False
        (A, a), (B, _) = self._operand(kern, 0), self._operand(kern, 1)
        z = kern.out
        ins = dict(kern.slots)
        reads = list(dict.fromkeys(ins[i] for i in sorted(ins)))
        inplace = {z: ins[0]} if 0 in ins and a.shape == self.env[z].shape else {}
        self.ops.append(_Op("Add", reads, [z], [f"add({A}, {B}, out={self.name(z)})"],
                            buffered=(z,), inplace=inplace))  # fmt: skip

        def back(bk: Any) -> None:
            outs = [t for _, t, _, _ in bk.targets]
            if self.constant(bk.delta) and all(self.fold(t, lambda: self.env[bk.delta])
                                               for t in outs):  # fmt: skip
                code = [self._folded_note(outs)]
            else:
                code = [" = ".join(self.name(t) for t in outs) + f" = {self.name(bk.delta)}"]
            self.ops.append(_Op("Add.backward", [bk.delta], outs, code, views=True))

        self.lowered_fwd[id(kern)] = back
        return True

    def sum(self, kern: Any, backs: list[Any]) -> bool:
        """z = Σ_axis x:  add.reduce(x, axis, keepdims), a fresh array as eager's.   Backward:
        δ with the summed axes restored as length 1, broadcast to x's shape (a view; a
        constant δ gives a constant view)."""
        ins = dict(kern.slots)
        if len(kern.args) != 3 or kern.kwargs or list(ins) != [0]:
            return False
        x, z = ins[0], kern.out
        axis, keepdims = kern.args[1], kern.args[2]
        if not (self._same(x, z) and isinstance(keepdims, bool)
                and (axis is None or isinstance(axis, tuple))):  # fmt: skip
            return False
        shape = self.env[x].shape
        if any(len(bk.targets) != 1 or not self._targets_exact(bk) for bk in backs):
            return False
        X, Z = self.name(x), self.name(z)
        code = [f"{Z} = asarray(add.reduce({X}, axis={axis!r}, keepdims={keepdims!r}))"]
        self.ops.append(_Op("Sum", [x], [z], code, fresh=(z,)))
        kd = keepdims_shape(shape, axis)

        def back(bk: Any) -> None:
            ((_, t, _, _),) = bk.targets
            delta = self.env[bk.delta]
            if self.constant(bk.delta) and self.fold(
                t, lambda: np.broadcast_to(delta.reshape(kd), shape)
            ):
                code = [self._folded_note([t])]
            else:
                D = self.name(bk.delta)
                restored = D if delta.shape == kd else f"{D}.reshape({kd!r})"
                code = [f"{self.name(t)} = broadcast_to({restored}, {shape!r})"]
            self.ops.append(_Op("Sum.backward", [bk.delta], [t], code, views=True))

        self.lowered_fwd[id(kern)] = back
        return True

    def abs(self, kern: Any, backs: list[Any]) -> bool:
        """z = |x|:  absolute(x, out=z).   Backward ∂C/∂x = δ sign(x) (abs'(0) = 0):
        sign(x, out=g); multiply(δ, g, out=g)."""
        if len(kern.args) != 1 or kern.kwargs or not self._elementwise(kern, backs, 1):
            return False
        x, z = dict(kern.slots)[0], kern.out
        X = self.name(x)
        self.ops.append(_Op("Abs", [x], [z], [f"absolute({X}, out={self.name(z)})"],
                            buffered=(z,), inplace={z: x}))  # fmt: skip

        def back(bk: Any) -> None:
            ((_, t, _, _),) = bk.targets
            T = self.name(t)
            code = [f"sign({X}, out={T}); multiply({self.name(bk.delta)}, {T}, out={T})"]
            self.ops.append(_Op("Abs.backward", [bk.delta, x], [t], code, buffered=(t,)))

        self.lowered_fwd[id(kern)] = back
        return True

    def _folded_note(self, slots: list[int]) -> str:
        """The comment a folded kernel leaves in the code."""
        names = ", ".join(self.name(s) for s in slots)
        return f"# {names}: constant (folded once, from constants)"

    def add(self, kern: Any) -> None:
        """The engine's fan-out sum: add(a, b, out=c)."""
        a, b, out = kern.a, kern.b, kern.out
        env = self.env
        if self._same(a, b, out) and env[a].shape == env[b].shape == env[out].shape:
            code = [f"add({self.name(a)}, {self.name(b)}, out={self.name(out)})"]
            self.ops.append(_Op("add", [a, b], [out], code, buffered=(out,), inplace={out: a}))
            return
        n = self.bind(self.c.core._add, "K")
        code = [f"{self.name(out)} = {n}({self.name(a)}, {self.name(b)})"]
        self.ops.append(_Op("add (its formula)", [a, b], [out], code, fallback=True))

    def leaf(self, kern: Any) -> None:
        """``t.grad``: the buffer the gradient was written into, as a Tensor made once; else
        (added to an existing .grad, or a gradient from a fallback) eager's assignment."""
        t, g = kern.t, kern.g
        tn = self.bind(t, "P")
        producer = self._producer(g)
        if not kern.add and not kern.copy_g and producer is not None and g in producer.buffered:
            self.ops.append(_Op(f"{kern.name}.grad", [g], [], [f"{tn}.grad = G{g}"], keep=(g,)))
            self.grad_tensors.add(g)
            self.grad_of[id(t)] = g
            return
        if not kern.add and not kern.copy_g and g in self.folded:
            # NOTE: a copy at every replay, as eager's fresh array: a write into .grad between
            # steps must not change the program's constant.
            code = [f"{tn}.grad = wrap(copy({self.name(g)}))"]
            self.ops.append(_Op(f"{kern.name}.grad (a constant, copied)", [g], [], code))
            self.grad_of.pop(id(t), None)
            return
        n = self.bind(kern, "K")
        self.ops.append(_Op(f"{kern.name}.grad (engine's rule)", [g], [],
                            [f"{n}({self.name(g)})"], keep=(g,)))  # fmt: skip
        self.grad_of.pop(id(t), None)

    def _producer(self, s: int) -> _Op | None:
        for op in reversed(self.ops):
            if s in op.writes:
                return op
        return None

    def call(self, k: int, kern: Any) -> None:
        method = kern.method
        owner: Any = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        plain = isinstance(owner, Optimizer) and type(owner).zero_grad is Optimizer.zero_grad
        if name == "zero_grad" and plain and kern.args == (True,):
            self.zero_grad(k, owner)
            return
        if name == "step" and type(owner) is SGD and kern.args == ():
            self.sgd(owner)
            return
        n = self.bind(kern, "K")
        self.ops.append(_Op(f"call {type(owner).__name__}.{name}", [], [], [f"{n}()"]))
        self.grad_of.clear()

    def zero_grad(self, k: int, opt: Optimizer) -> None:
        """``p.grad = None``, left out for each parameter whose .grad the program sets next."""
        later: set[int] = set()
        for kern in self.p.kernels[k + 1 :]:
            if isinstance(kern, self.c._Call):
                break
            if isinstance(kern, self.c._LeafGrad) and not kern.add:
                later.add(id(kern.t))
        code = []
        for g in opt.param_groups:
            for p in g["params"]:
                self.grad_of[id(p)] = None
                if id(p) not in later:
                    code.append(f"{self.bind(p, 'P')}.grad = None")
        self.ops.append(_Op(f"{type(opt).__name__}.zero_grad (.grad set below)", [], [],
                            code or ["pass"]))  # fmt: skip

    def sgd(self, opt: SGD) -> None:
        """SGD's update in place, reading every hyper-parameter from ``param_groups`` now.

        The book's rule p ← p − η g is two NumPy calls per parameter, as in ``SGD.step``
        (η g into a scratch buffer, then subtracted); momentum, Nesterov, weight decay and
        maximize run :func:`_sgd_update`, the same arithmetic as ``SGD._direction`` in place.

        NOTE: a Python float η is written once per replay into a 0-d array of the parameters'
        dtype, the conversion NumPy makes of a Python float beside an array of that dtype (so
        the products have eager's bits); each product then costs 0.45 µs instead of 1.5 µs on
        the book's arrays.  Any other η (a NumPy scalar is not converted first) takes the
        general path, which passes it as eager does.
        """
        O = self.bind(opt, "O")
        code = []
        for gi, group in enumerate(opt.param_groups):
            plain, general = [], []
            rates: dict[np.dtype[Any], str] = {}  # dtype -> its 0-d array of η
            for p in group["params"]:
                src = self.grad_of.get(id(p), "dynamic")
                if src is None:
                    continue  # .grad is None here: SGD skips it
                P = self.bind(p, "P")
                U1, U2 = self._scratch(p.data, 0), self._scratch(p.data, 1)
                if src == "dynamic":
                    plain.append(f"_sgd_update({O}, {P}, {P}.grad, grp, {U1}, {U2})")
                    general.append(plain[-1])
                    continue
                D = self.name(self._param_slot(p))
                lr = rates.get(p.dtype)
                if lr is None:
                    lr = rates[p.dtype] = self.bind(np.zeros((), p.dtype), "LR")
                plain.append(f"multiply({self.name(src)}, {lr}, out={U1}); "
                             f"subtract({D}, {U1}, out={D})")  # fmt: skip
                general.append(f"_sgd_update({O}, {P}, G{src}, grp, {U1}, {U2})")
                self.grad_tensors.add(src)
            code.append(f"grp = {O}.param_groups[{gi}]; lr = grp['lr']")
            code.append("if (grp['momentum'] or grp['weight_decay'] or grp['maximize']"
                        " or type(lr) is not float):")  # fmt: skip
            code += [f"    {line}" for line in general or ["pass"]]
            code.append("else:")
            code += [f"    {lr}[()] = lr" for lr in rates.values()]
            code += [f"    {line}" for line in plain or ["pass"]]
        self.ns["_sgd_update"] = _sgd_update
        self.ops.append(_Op("SGD.step (in place)", [], [], code))
        self.grad_of.clear()

    def _param_slot(self, p: Tensor) -> int:
        """The slot of a parameter's array, making one when no kernel read it."""
        for s, t in self.ext.items():
            if t is p:
                return s
        s = self.hidden(p.data)
        self.env[s] = p.data
        self.ext[s] = p
        self.ns[self.name(s)] = p.data
        return s

    def _scratch(self, like: np.ndarray, k: int) -> str:
        """The name of update temporary k for arrays like ``like`` (kept between replays)."""
        key = (like.shape, like.dtype, k)
        if key not in self.scratch:
            self.scratch[key] = self.bind(np.empty_like(like), "U")
        return self.scratch[key]

    # ---------------------------------------------------------------- buffers and code

    def lifetimes(self) -> dict[int, float]:
        """The index of the last op that reads each slot (outputs and .grad: forever); a
        fallback's inputs live as long as its outputs (its result may be a view of them), and
        so do those of a form whose results are views (``_Op.views``)."""
        last: dict[int, float] = {}
        for i, op in enumerate(self.ops):
            for s in op.reads + op.writes:
                last[s] = max(last.get(s, i), i)
            for s in op.keep:
                last[s] = _FOREVER
        for s in _slots(self.p.outputs):
            last[s] = _FOREVER
        for op in reversed(self.ops):
            if op.views and op.writes:
                end = max(last[w] for w in op.writes)
                for r in op.reads:
                    last[r] = max(last[r], end)
        return last

    def allocate(self) -> dict[int, tuple[int, np.ndarray]]:
        """A buffer (its number, its array) for each buffered slot.  A buffer is free again
        after the last read of the slot that holds it, and goes to the next slot of its shape
        and dtype; an elementwise kernel takes over the buffer of an input it reads last."""
        last = self.lifetimes()
        where: dict[int, tuple[int, np.ndarray]] = {}
        holder: dict[int, int] = {}  # buffer number -> the slot that holds it now
        free: dict[tuple[Any, ...], list[tuple[int, np.ndarray]]] = {}
        for i, op in enumerate(self.ops):
            for w in op.writes:
                if w not in op.buffered:
                    continue
                like = self.env[w]
                key = (like.shape, like.dtype)
                r = op.inplace.get(w)
                if (r is not None and r in where and last[r] == i and holder[where[r][0]] == r
                        and key == (where[r][1].shape, where[r][1].dtype)):  # fmt: skip
                    where[w] = where[r]
                elif free.get(key):
                    where[w] = free[key].pop()
                else:
                    where[w] = (len(holder), np.empty(like.shape, like.dtype))
                holder[where[w][0]] = w
            for s in dict.fromkeys(op.reads + op.writes):
                if last[s] == i and s in where and holder[where[s][0]] == s:
                    holder[where[s][0]] = -1  # free (the number stays taken)
                    buf = where[s][1]
                    free.setdefault((buf.shape, buf.dtype), []).append(where[s])
        return where

    def emit(self) -> Lowered:
        where = self.allocate()
        ns = self.ns
        for s, (_, buf) in where.items():
            ns[self.name(s)] = buf
            if s in self.flat:
                ns[f"{self.name(s)}_flat"] = buf.reshape(-1)  # a view: buffers are contiguous
            if s in self.grad_tensors:
                ns[f"G{s}"] = Tensor._wrap(buf)  # the .grad Tensor over a gradient buffer
        for s, t in self.ext.items():
            ns[self.name(s)] = t.data
        for s, a in enumerate(self.p.env):  # constants: slots no kernel writes
            if s not in self.written and s not in self.p.inputs and self.name(s) not in ns:
                ns[self.name(s)] = a
        ins = ", ".join(self.name(s) for s in self.p.inputs)
        body: list[str] = []
        text: list[str] = []
        for i, op in enumerate(self.ops):
            body += [f"    {line}" for line in op.code]
            outs = ", ".join(self._describe(s, where) for s in op.writes)
            reads = ", ".join(self._describe(s, where) for s in dict.fromkeys(op.reads))
            text.append(f"{i:3d}  {op.title}: {outs or '-'} <- {reads or '-'}")
            text += [f"       {line}" for line in op.code]
        fresh = {c for op in self.ops for c in op.fresh}
        body.append(f"    return {self._result(self.p.outputs, fresh)}")
        ns.update(wrap=Tensor._wrap, copy=np.array, MISS=self.c._MISS, Tensor=Tensor)
        ns.update(MODE=_state, LOCKS=inplace._counts)
        guards = self.guards()
        source = (
            f"def replay({ins}):\n"
            + "\n".join(body)
            + "\n\n"
            + "def run(*args):\n"
            + "\n".join(f"    {g}" for g in self.signature() + guards)
            + f"\n    return replay({ins})\n\n"
            + "def valid():\n"
            + "\n".join(f"    {g.replace('return MISS', 'return False')}" for g in guards)
            + "\n    return True\n"
        )
        exec(compile(source, "<tg.compile program>", "exec"), ns)
        n_buf = len({id(b) for _, b in where.values()})
        text.append(f"     ({len(self.ops)} kernels, {n_buf} buffers)")
        lowered = Lowered(ns["run"], ns["replay"], "\n".join(text), source)
        lowered._valid = ns["valid"]  # type: ignore[attr-defined]
        return lowered

    def signature(self) -> list[str]:
        """Checks that ``args`` have the recorded signature (see compile._signature), and the
        grad mode and engine state the program was recorded in; they unpack the inputs."""
        lines = [f"if len(args) != {len(self.args)}: return MISS"]
        ins = iter(self.p.inputs)
        for k, a in enumerate(self.args):
            v = f"args[{k}]"
            if isinstance(a, (np.ndarray, Tensor)):
                arr = a.data if isinstance(a, Tensor) else a
                name = self.name(next(ins))
                sh, dt = self.bind(arr.shape, "SH"), self.bind(arr.dtype, "DT")
                if isinstance(a, Tensor):
                    lines.append(
                        f"if not isinstance({v}, Tensor) or {v}.requires_grad: return MISS"
                    )
                    lines.append(f"{name} = {v}.data")
                else:
                    lines.append(f"if type({v}) is not {self.bind(type(a), 'TY')}: return MISS")
                    lines.append(f"{name} = {v}")
                lines.append(f"if {name}.shape != {sh} or ({name}.dtype is not {dt} and "
                             f"{name}.dtype != {dt}): return MISS")  # fmt: skip
            else:
                ty, val = self.bind(type(a), "TY"), self.bind(a, "V")
                lines.append(f"if type({v}) is not {ty} or {v} != {val}: return MISS")
        lines.append(f"if MODE.grad_enabled is not {_state.grad_enabled} or MODE.observers: "
                     "return MISS")  # fmt: skip
        return lines

    def _describe(self, s: int, where: dict[int, tuple[int, np.ndarray]]) -> str:
        name = self.name(s)
        buf = f"@b{where[s][0]}" if s in where else ""
        return f"{name}:{_short(self.env[s])}{buf}"

    def _result(self, structure: Any, fresh: set[int]) -> str:
        if isinstance(structure, tuple) and structure[:1] == ("slot",):
            s = structure[1]
            return f"wrap({self.name(s)})" if s in fresh else f"wrap(copy({self.name(s)}))"
        if isinstance(structure, list):
            return "(" + "".join(f"{self._result(x, fresh)}, " for x in structure) + ")"
        return repr(structure)

    def guards(self) -> list[str]:
        """The parameters' arrays and requires_grad, no hook on them, the .grad state at entry,
        each optimizer's parameters, the attributes noted with ``note_state`` (the same object:
        a module's ``training`` flag), and no live graph holding a parameter read-only (SGD
        would then give it a new array instead of updating it in place)."""
        fail = "return MISS"
        lines = []
        for t, arr, rg in self.p.externals:
            T, A = self.bind(t, "P"), self.bind(arr, "A")
            lines.append(f"if {T}.data is not {A} or {T}.requires_grad is not {rg}: {fail}")
        seen: set[int] = set()
        for t in [t for t, _, _ in self.p.externals] + self.p.leaves:
            if id(t) not in seen:  # a hook registered since: eager runs it (recording refuses it)
                seen.add(id(t))
                lines.append(f"if {self.bind(t, 'P')}._hooks: {fail}")
        for t, none in self.p.grad_expect:
            lines.append(f"if ({self.bind(t, 'P')}.grad is None) is not {none}: {fail}")
        params = []
        for opt, _ in self.p.optimizers:
            O = self.bind(opt, "O")
            lines.append(f"g = {O}.param_groups")
            lines.append(f"if len(g) != {len(opt.param_groups)}: {fail}")
            for gi, group in enumerate(opt.param_groups):
                ps = group["params"]
                params += ps
                checks = "".join(f" or q[{j}] is not {self.bind(p, 'P')}" for j, p in enumerate(ps))
                lines.append(f"q = g[{gi}]['params']")
                lines.append(f"if len(q) != {len(ps)}{checks}: {fail}")
        for owner, name, value in self.p.states.values():  # note_state: e.g. a module's mode
            O, V = self.bind(owner, "M"), self.bind(value, "V")
            lines.append(f"if {O}.{name} is not {V}: {fail}")
        if params:
            ids = self.bind(frozenset(id(p.data) for p in params), "IDS")
            lines.append(f"if LOCKS and not {ids}.isdisjoint(LOCKS): {fail}")
        return lines


def _writes(kern: Any, c: Any) -> list[int]:
    if isinstance(kern, (c._Forward, c._Add, c._Draw)):
        return [kern.out]
    if isinstance(kern, c._Backward):
        return [s for _, s, _, _ in kern.targets]
    return []


def _slots(structure: Any) -> list[int]:
    if isinstance(structure, tuple) and structure[:1] == ("slot",):
        return [structure[1]]
    if isinstance(structure, list):
        return [s for x in structure for s in _slots(x)]
    return []


def _sgd_update(opt: SGD, p: Tensor, g: Tensor | None, group: dict[str, Any], t1: np.ndarray,
                t2: np.ndarray) -> None:  # fmt: skip
    """SGD.step for one parameter, with momentum μ, dampening τ, Nesterov, weight decay λ,
    maximize: the arithmetic of ``SGD.step`` and ``SGD._direction`` (d ← ±g + λ p;
    v ← μ v + (1 − τ) d; d ← d + μ v or v; p ← p − η d), the same operations in the same order,
    into the temporaries t1, t2 (of p's shape and dtype) and in place."""
    if g is None:  # as SGD.step: a parameter without a gradient is skipped
        return
    data, d = p.data, g.data
    if d.shape != data.shape:
        raise RuntimeError(f"SGD: a parameter of shape {p.shape} has a gradient of shape {d.shape}")
    lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
    if not (group["maximize"] or group["weight_decay"] or momentum):
        np.multiply(d, lr, out=t2, casting="same_kind")
        data -= t2
        return
    if group["maximize"]:
        d = np.negative(d, out=t1)
    if group["weight_decay"] != 0:
        np.multiply(group["weight_decay"], data, out=t2)
        d = np.add(d, t2, out=t1)
    if momentum != 0:
        state = opt.state.setdefault(p, {})
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
        else:
            buf *= momentum
            buf += np.multiply(1 - dampening, d, out=t2)
        if group["nesterov"]:
            d = np.add(d, np.multiply(momentum, buf, out=t2), out=t1)
        else:
            d = buf
    np.multiply(d, lr, out=t2, casting="same_kind")
    data -= t2


def lower(program: Any, args: tuple[Any, ...]) -> Lowered:
    """The lowered form of a recorded program, called with arguments like ``args``."""
    return _Lowering(program, args).run()
