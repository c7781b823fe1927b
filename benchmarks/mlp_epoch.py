"""One epoch of the book's network, [784, 30, 10] with sigmoid neurons, the quadratic cost
C = 1/2m Σ‖y − a‖² per mini-batch of m and plain SGD w → w − η ∂C/∂w (η = 3.0), timed for:

* ``tinygrad_sgd``      the user path: data.DataLoader, nn.Sequential(nn.Linear, nn.Sigmoid, ...),
                        nn.functional.quadratic_cost, optim.SGD
* ``compiled``          the user path's step under ``tg.compile`` (recorded, verified, replayed)
* ``compiled_later``    the same compiled step in a later epoch: recorded, verified and lowered
                        before the timed epoch (a training run pays that once)
* ``tinygrad_sgd_raw``  the same with Tensor operations written out (x @ W.T + b, .sigmoid(),
                        the cost by hand, a manual update of ``.data``)
* ``engine_numpy``      the NumPy calls of the ``tinygrad_sgd`` row, replayed without the
                        engine: the gap between the two rows is the engine's Python
* ``op_formulas``       the ops' own forward and backward methods in straight-line code, with no
                        engine: the lower bound of any engine that runs these formulas
* ``no_graph_step``     an experiment: the user path's step run without a graph (its layers'
                        formulas on arrays, gradients into ``.grad``, optim.SGD), not a feature
* ``numpy_floor``       hand-written vectorised NumPy, as fast as we could make it: no framework
                        can beat it, so every other row is reported as a ratio to it
* ``torch``             PyTorch CPU eager (torch.nn + torch.optim.SGD), when installed
* ``mygrad``            MyGrad, when installed
* ``hips_autograd``     HIPS autograd, when installed

on synthetic MNIST-shaped data (50,000 samples of 784 values in [0, 1), one-hot labels), for
m = 10, 100, 1000 in float32 and float64.  Rows are interleaved within each round (the order
rotates), the table gives the median epoch time and the median of the per-round ratios to the
floor.  Every row starts from the same weights and visits the mini-batches in the same order;
the script checks that all of them end at the same weights (within float32 rounding) and prints
the largest difference, which is the proof that they did the same work.  Peak memory is measured
in a fresh subprocess per row (growth of the peak resident set size during one epoch).

Run:  python benchmarks/mlp_epoch.py                 (full run, several minutes)
      python benchmarks/mlp_epoch.py --quick         (a few steps, seconds; no memory)
      python benchmarks/mlp_epoch.py --rows numpy_floor,tinygrad_sgd --m 10 --dtype float32
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine_header, max_rss_mib, median, run_child, table  # noqa: E402

from tinygrad_sgd.autograd import Context  # noqa: E402

SIZES = (784, 30, 10)
ETA = 3.0

Params = list[np.ndarray]  # [W1 (30, 784), b1 (30,), W2 (10, 30), b2 (10,)]
Epoch = Callable[[], Params]  # runs one epoch from the starting weights, returns the final ones


# ------------------------------------------------------------------------------------------
# data and starting weights (shared by every row)
# ------------------------------------------------------------------------------------------


def make_data(n: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped inputs in [0, 1) and one-hot targets for 10 classes."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.dtype(dtype).type)  # no float64 temporary
    labels = rng.integers(0, SIZES[-1], size=n)
    Y = np.zeros((n, SIZES[-1]), dtype=dtype)
    Y[np.arange(n), labels] = 1
    return X, Y


def make_params(dtype: Any, seed: int = 1) -> Params:
    """The book's network.py initialisation: weights and biases from N(0, 1)."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        out.append(rng.standard_normal((n_out, n_in)).astype(dtype))
        out.append(rng.standard_normal(n_out).astype(dtype))
    return out


# ------------------------------------------------------------------------------------------
# rows: each builder does its set-up (untimed) and returns the timed epoch
# ------------------------------------------------------------------------------------------


def numpy_floor(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """Backpropagation by hand, in place wherever possible, about 29 NumPy calls per step.

    δ² = (a² − y) ⊙ σ'(z²) · η/m, with σ'(z) = a(1 − a); δ¹ = (δ² W²) ⊙ σ'(z¹);
    W^l → W^l − δ^lᵀ a^(l−1), b^l → b^l − Σ_rows δ^l.  Folding η/m into δ² once saves one
    multiplication per parameter.
    """
    dt = X.dtype.type
    scale = dt(ETA / m)
    one = dt(1)
    add_reduce, matmul, subtract = np.add.reduce, np.matmul, np.subtract
    negative, exp, reciprocal = np.negative, np.exp, np.reciprocal

    def epoch() -> Params:
        W1, b1, W2, b2 = (p.copy() for p in params)
        n = X.shape[0]
        # σ(z) = 1/(1 + e^−z) in place; e^−z overflows to inf for z < −88 (float32), which
        # gives the correct limit 0, so the warning is silenced once for the whole epoch.
        with np.errstate(over="ignore"):
            for k in range(0, n - m + 1, m):
                x = X[k : k + m]
                y = Y[k : k + m]
                a1 = matmul(x, W1.T)
                a1 += b1
                negative(a1, out=a1)
                exp(a1, out=a1)
                a1 += one
                reciprocal(a1, out=a1)
                a2 = matmul(a1, W2.T)
                a2 += b2
                negative(a2, out=a2)
                exp(a2, out=a2)
                a2 += one
                reciprocal(a2, out=a2)
                d2 = a2 - y
                d2 *= a2
                subtract(one, a2, out=a2)
                d2 *= a2
                d2 *= scale
                d1 = matmul(d2, W2)
                W2 -= matmul(d2.T, a1)
                b2 -= add_reduce(d2, axis=0)
                d1 *= a1
                subtract(one, a1, out=a1)
                d1 *= a1
                W1 -= matmul(d1.T, x)
                b1 -= add_reduce(d1, axis=0)
        return [W1, b1, W2, b2]

    return epoch


def engine_numpy(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """The NumPy calls that the ``tinygrad_sgd`` row makes in one step, replayed by hand with
    no engine around them (about 33 calls: the floor's products and sums, plus the stable
    sigmoid's range check and clamp, the cost's value and the separate update).  The time
    between this row and ``tinygrad_sgd`` is what the engine's Python costs: recording the
    nodes, the backward walk, the in-place locks, the modules and the optimizer's loop.  Keep
    it in step with ops.Sigmoid, ops.fused.Linear, nn.functional.QuadraticCost and optim.SGD.
    """
    from tinygrad_sgd.ops.elementwise import stable_sigmoid as sigmoid  # plain NumPy, no engine

    scale = 1.0 / m
    add_reduce, matmul = np.add.reduce, np.matmul

    def epoch() -> Params:
        W1, b1, W2, b2 = (p.copy() for p in params)
        buffers = [np.empty_like(p) for p in (W1, b1, W2, b2)]
        n = X.shape[0]
        for k in range(0, n - m + 1, m):
            x = X[k : k + m]
            y = Y[k : k + m]
            z1 = matmul(x, W1.T)
            z1 += b1
            a1 = sigmoid(z1)
            z2 = matmul(a1, W2.T)
            z2 += b2
            a2 = sigmoid(z2)
            d = a2 - y
            np.asarray(0.5 * scale * np.vdot(d, d), dtype=np.result_type(a2, y))  # the cost
            g = np.ones((), dtype=a2.dtype)
            ga = a2 - y  # QuadraticCost.backward
            ga *= g * scale
            s2 = 1 - a2  # Sigmoid.backward
            s2 *= a2
            s2 *= ga
            gx = s2 @ W2  # Linear.backward
            grads = [None, None, s2.T @ a1, np.asarray(add_reduce(s2, axis=0))]
            s1 = 1 - a1
            s1 *= a1
            s1 *= gx
            grads[0] = s1.T @ x
            grads[1] = np.asarray(add_reduce(s1, axis=0))
            for p, gp, buf in zip((W1, b1, W2, b2), grads, buffers):  # optim.SGD.step
                np.multiply(gp, ETA, out=buf, casting="same_kind")
                p -= buf
        return [W1, b1, W2, b2]

    return epoch


def _array_context(needs: tuple[bool, ...]) -> Context:
    """A Context set up as the engine sets it up for an ordinary backward on arrays."""
    ctx = Context()
    ctx.needs_input_grad = needs
    ctx._on_arrays = True  # the engine's flag for a backward on arrays
    return ctx


def op_formulas(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """The ops' own ``forward`` and ``backward`` (ops.Linear, ops.Sigmoid, QuadraticCost) called
    in straight-line code, each with its Context as the engine would set it up, then the
    update of ``optim.SGD``; no Tensors, no graph, no backward walk, no locks, no modules.
    This is the lower bound of any engine that runs these formulas: what remains between this
    row and ``tinygrad_sgd`` is the price of recording and walking a graph, and between
    ``engine_numpy`` and this row the price of calling the formulas through their Functions.
    """
    from tinygrad_sgd.nn.functional import QuadraticCost
    from tinygrad_sgd.ops import Linear, Sigmoid

    context = _array_context
    lin_f, lin_b = Linear.forward, Linear.backward
    sig_f, sig_b = Sigmoid.forward, Sigmoid.backward
    cost_f, cost_b = QuadraticCost.forward, QuadraticCost.backward
    scale = 1.0 / m

    def epoch() -> Params:
        W1, b1, W2, b2 = (p.copy() for p in params)
        buffers = [np.empty_like(p) for p in (W1, b1, W2, b2)]
        n = X.shape[0]
        for k in range(0, n - m + 1, m):
            x = X[k : k + m]
            y = Y[k : k + m]
            c1 = context((False, True, True))
            z1 = lin_f(c1, x, W1, b1)
            c2 = context((True,))
            a1 = sig_f(c2, z1)
            c3 = context((True, True, True))
            z2 = lin_f(c3, a1, W2, b2)
            c4 = context((True,))
            a2 = sig_f(c4, z2)
            c5 = context((True, False, False))
            cost_f(c5, a2, y, scale)
            seed = np.empty((), dtype=a2.dtype)
            seed.fill(1)
            ga2 = cost_b(c5, seed)[0]
            gz2 = sig_b(c4, ga2)
            ga1, gW2, gb2 = lin_b(c3, gz2)
            gz1 = sig_b(c2, ga1)
            _, gW1, gb1 = lin_b(c1, gz1)
            for p, gp, buf in zip((W1, b1, W2, b2), (gW1, gb1, gW2, gb2), buffers):
                np.multiply(gp, ETA, out=buf, casting="same_kind")  # optim.SGD.step
                p -= buf
        return [W1, b1, W2, b2]

    return epoch


def _book_model(params: Params, dtype: Any) -> tuple[Any, list[Any]]:
    """nn.Sequential(Linear, Sigmoid, Linear, Sigmoid) started from the shared weights, and its
    two Linear layers.  NOTE: built inside the timed epoch (0.3 ms of initialisation, under
    0.5 %): building it once outside moved the m = 1000 float32 ratio by 0.15 through the
    process's memory layout alone (benchmarks/README.md, session 3)."""
    from tinygrad_sgd import nn

    model = nn.Sequential(
        nn.Linear(SIZES[0], SIZES[1], dtype=dtype),
        nn.Sigmoid(),
        nn.Linear(SIZES[1], SIZES[2], dtype=dtype),
        nn.Sigmoid(),
    )
    lin = [model[0], model[2]]
    for layer, (w, b) in zip(lin, (params[0:2], params[2:4])):
        layer.weight.data = w.copy()
        layer.bias.data = b.copy()
    return model, lin


def no_graph_step(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """An experiment, not a library feature: the user path (nn.Sequential, quadratic cost,
    optim.SGD) with its forward and backward run as a no-graph step.  Each call walks the
    Sequential's layers, runs their ops' formulas on arrays (``op_formulas``), and adds the
    gradients into the parameters' ``.grad`` as ``backward()`` would; ``zero_grad`` and
    ``step`` are the optimizer's own.  It measures what a fused training step for built-in
    layers, the safe subset of a traced step (no user Python to freeze), would reach.
    """
    from tinygrad_sgd import Tensor, data, nn, optim
    from tinygrad_sgd.nn.functional import QuadraticCost
    from tinygrad_sgd.ops import Linear, Sigmoid

    def step(model: Any, x: np.ndarray, y: np.ndarray) -> None:
        done = []  # (Function, its Context, its parameters), in forward order
        a = x
        for layer in model:
            if isinstance(layer, nn.Linear):
                ctx = _array_context((bool(done), True, True))
                a = Linear.forward(ctx, a, layer.weight.data, layer.bias.data)
                done.append((Linear, ctx, (layer.weight, layer.bias)))
            else:
                ctx = _array_context((True,))
                a = Sigmoid.forward(ctx, a)
                done.append((Sigmoid, ctx, ()))
        cctx = _array_context((True, False, False))
        QuadraticCost.forward(cctx, a, y, 1.0 / len(a))
        seed = np.empty((), dtype=a.dtype)
        seed.fill(1)
        g = QuadraticCost.backward(cctx, seed)[0]
        for fn, ctx, ps in reversed(done):
            out = fn.backward(ctx, g)
            if not ps:
                g = out
                continue
            g = out[0]
            for p, gp in zip(ps, out[1:]):
                p.grad = Tensor._wrap(gp) if p.grad is None else Tensor._wrap(p.grad.data + gp)

    def epoch() -> Params:
        model, lin = _book_model(params, X.dtype)
        opt = optim.SGD(model.parameters(), lr=ETA)
        for x, y in data.DataLoader(X, Y, batch_size=m, shuffle=False, drop_last=True):
            opt.zero_grad()
            step(model, x, y)
            opt.step()
        return [lin[0].weight.data, lin[0].bias.data, lin[1].weight.data, lin[1].bias.data]

    return epoch


def tinygrad_raw(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """The network written with Tensor operations, the update done by hand on ``.data``."""
    from tinygrad_sgd import Tensor

    Xt, Yt = Tensor(X), Tensor(Y)
    half_over_m = 0.5 / m

    def epoch() -> Params:
        W1, b1, W2, b2 = (Tensor(p.copy(), requires_grad=True) for p in params)
        ps = (W1, b1, W2, b2)
        n = X.shape[0]
        for k in range(0, n - m + 1, m):
            x = Xt[k : k + m]
            y = Yt[k : k + m]
            a1 = (x @ W1.T + b1).sigmoid()
            a2 = (a1 @ W2.T + b2).sigmoid()
            cost = ((y - a2) ** 2).sum() * half_over_m
            cost.backward()
            for p in ps:
                assert p.grad is not None
                p.data -= ETA * p.grad.data
                p.grad = None
        return [p.data for p in ps]

    return epoch


def tinygrad_nn(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """What a user writes: a DataLoader over the arrays (batches in order, so that every row
    sees the same batches), nn.Sequential of nn.Linear and nn.Sigmoid, the quadratic cost from
    nn.functional, optim.SGD."""
    from tinygrad_sgd import Tensor, data, nn, optim

    def epoch() -> Params:
        model, lin = _book_model(params, X.dtype)
        opt = optim.SGD(model.parameters(), lr=ETA)
        cost_fn = nn.functional.quadratic_cost
        for x, y in data.DataLoader(X, Y, batch_size=m, shuffle=False, drop_last=True):
            opt.zero_grad()
            # from_numpy shares the batch (an ndarray operand is copied, as in PyTorch), as fit does
            cost = cost_fn(model(Tensor.from_numpy(x)), Tensor.from_numpy(y))
            cost.backward()
            opt.step()
        return [lin[0].weight.data, lin[0].bias.data, lin[1].weight.data, lin[1].bias.data]

    return epoch


def torch_eager(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """PyTorch CPU eager: torch.nn layers and torch.optim.SGD."""
    import torch

    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    dtype = Xt.dtype

    def epoch() -> Params:
        model = torch.nn.Sequential(
            torch.nn.Linear(SIZES[0], SIZES[1], dtype=dtype),
            torch.nn.Sigmoid(),
            torch.nn.Linear(SIZES[1], SIZES[2], dtype=dtype),
            torch.nn.Sigmoid(),
        )
        lin = [model[0], model[2]]
        with torch.no_grad():
            for layer, (w, b) in zip(lin, (params[0:2], params[2:4])):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        opt = torch.optim.SGD(model.parameters(), lr=ETA)
        half_over_m = 0.5 / m
        n = X.shape[0]
        for k in range(0, n - m + 1, m):
            x = Xt[k : k + m]
            y = Yt[k : k + m]
            opt.zero_grad()
            cost = ((y - model(x)) ** 2).sum() * half_over_m
            cost.backward()
            opt.step()
        return [p.detach().numpy().copy() for layer in lin for p in (layer.weight, layer.bias)]

    return epoch


def mygrad_row(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """MyGrad tensors, the update done by hand on ``.data``."""
    import mygrad as mg
    from mygrad.nnet.activations import sigmoid

    dt = X.dtype.type
    half_over_m = dt(0.5 / m)  # a NumPy scalar: a Python float would promote float32 to float64
    eta = dt(ETA)

    def epoch() -> Params:
        W1, b1, W2, b2 = (mg.Tensor(p.copy()) for p in params)
        ps = (W1, b1, W2, b2)
        n = X.shape[0]
        for k in range(0, n - m + 1, m):
            x = X[k : k + m]
            y = Y[k : k + m]
            a1 = sigmoid(mg.matmul(x, W1.T) + b1)
            a2 = sigmoid(mg.matmul(a1, W2.T) + b2)
            cost = ((y - a2) ** 2).sum() * half_over_m
            cost.backward()
            for p in ps:
                p.data -= eta * p.grad
        return [p.data for p in ps]

    return epoch


def hips_autograd_row(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """HIPS autograd: ``grad`` of a pure cost function of the parameter list."""
    import autograd.numpy as anp
    from autograd import grad

    dt = X.dtype.type
    half_over_m = dt(0.5 / m)
    one = dt(1)
    eta = dt(ETA)

    def cost(ps: Params, x: np.ndarray, y: np.ndarray) -> Any:
        W1, b1, W2, b2 = ps
        a1 = one / (one + anp.exp(-(anp.dot(x, W1.T) + b1)))
        a2 = one / (one + anp.exp(-(anp.dot(a1, W2.T) + b2)))
        return anp.sum((y - a2) ** 2) * half_over_m

    dcost = grad(cost)

    def epoch() -> Params:
        ps = [p.copy() for p in params]
        n = X.shape[0]
        with np.errstate(over="ignore"):
            for k in range(0, n - m + 1, m):
                gs = dcost(ps, X[k : k + m], Y[k : k + m])
                for p, g in zip(ps, gs):
                    p -= eta * g
        return ps

    return epoch


def _compiled_book_step(params: Params, dtype: Any) -> tuple[Any, list[np.ndarray]]:
    """The user path's step under ``@tg.compile`` on a new book model started from ``params``,
    and the model's four parameter arrays (W¹, b¹, W², b²)."""
    import tinygrad_sgd as tg
    from tinygrad_sgd import nn, optim

    model, lin = _book_model(params, dtype)
    opt = optim.SGD(model.parameters(), lr=ETA)
    cost_fn = nn.functional.quadratic_cost

    @tg.compile
    def step(x: Any, y: Any) -> Any:
        opt.zero_grad()
        cost = cost_fn(model(x), y)
        cost.backward()
        opt.step()
        return cost

    return step, [lin[0].weight.data, lin[0].bias.data, lin[1].weight.data, lin[1].bias.data]


def tinygrad_compiled(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """The user path's step under ``tg.compile``: recorded on its first call, verified against
    eager on its second, replayed afterwards (its lowered program: out= kernels over buffers
    allocated once, SGD in place; no graph)."""
    from tinygrad_sgd import data

    def epoch() -> Params:
        step, arrays = _compiled_book_step(params, X.dtype)
        for x, y in data.DataLoader(X, Y, batch_size=m, shuffle=False, drop_last=True):
            step(x, y)
        return arrays

    return epoch


def tinygrad_compiled_later(params: Params, X: np.ndarray, Y: np.ndarray, m: int) -> Epoch:
    """The same compiled step in a later epoch of a training run: the model, the optimizer and
    the step are made once, outside the timed epoch, and recorded, verified and lowered there
    (on the first mini-batches of the data, in a warm-up epoch); each timed epoch then starts
    from the shared weights, copied into the parameters' own arrays (the program's guards see
    the same arrays, so it is not recorded again), and visits the batches as every row does.
    The ``compiled`` row pays recording, verification and lowering inside its epoch; a training
    run pays them once, in its first epoch."""
    from tinygrad_sgd import data

    step, arrays = _compiled_book_step(params, X.dtype)
    loader = data.DataLoader(X, Y, batch_size=m, shuffle=False, drop_last=True)
    for _, (x, y) in zip(range(3), loader):  # record, verify, replay once
        step(x, y)
    if step.records != 2:
        raise RuntimeError(f"compiled_later: {step.records} recordings in the warm-up, not 2")

    def epoch() -> Params:
        for a, p in zip(arrays, params):
            np.copyto(a, p)
        for x, y in loader:
            step(x, y)
        if step.records != 2:  # a guard failed and the step was recorded again: not a later epoch
            raise RuntimeError(f"compiled_later: recorded again ({step.records} recordings)")
        return [a.copy() for a in arrays]

    return epoch


ROWS: dict[str, tuple[str | None, Callable[..., Epoch]]] = {
    # name: (module that must be importable, builder)
    "numpy_floor": (None, numpy_floor),
    "tinygrad_sgd": ("tinygrad_sgd.data", tinygrad_nn),
    "compiled": ("tinygrad_sgd.compile", tinygrad_compiled),
    "compiled_later": ("tinygrad_sgd.compile", tinygrad_compiled_later),
    "tinygrad_sgd_raw": (None, tinygrad_raw),
    "engine_numpy": (None, engine_numpy),
    "op_formulas": (None, op_formulas),
    "no_graph_step": (None, no_graph_step),
    "torch": ("torch", torch_eager),
    "mygrad": ("mygrad", mygrad_row),
    "hips_autograd": ("autograd", hips_autograd_row),
}


def available(name: str) -> bool:
    module = ROWS[name][0]
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    if name == "tinygrad_sgd":  # the user path needs data, nn and optim
        import tinygrad_sgd as tg

        return all(hasattr(tg, mod) for mod in ("data", "nn", "optim"))
    return True


# ------------------------------------------------------------------------------------------
# checking that the rows agree
# ------------------------------------------------------------------------------------------


def weight_difference(a: Params, b: Params) -> float:
    """Largest |Δw| over all parameters, relative to the largest |w| of that parameter."""
    worst = 0.0
    for p, q in zip(a, b):
        p64, q64 = p.astype(np.float64), q.astype(np.float64)
        worst = max(worst, float(np.max(np.abs(p64 - q64)) / max(np.max(np.abs(q64)), 1e-30)))
    return worst


# How close "the same weights" must be.  One epoch is 5,000 (m = 10) to 50 (m = 1000) updates of
# a sigmoid network; rows differ only in rounding (summation order inside BLAS, e^−z vs the
# stable form of σ).  Those differences start at the dtype's ε (6e-8 in float32) and grow
# through the epoch, so the tolerance is a small multiple of ε times the number of steps, capped.
def tolerance(dtype: Any, steps: int) -> float:
    eps = float(np.finfo(dtype).eps)
    return min(1e-2, 100 * eps * max(steps, 1))


# ------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------


def measure_memory(row: str, m: int, dtype: str, n: int) -> str:
    """(Child process.)  Peak memory of one epoch, in MiB: the peak of the NumPy/Python
    allocations made during the epoch (tracemalloc; PyTorch's own allocator is invisible to it),
    and the peak resident set size of the whole process (libraries and the data set included)."""
    import tracemalloc

    X, Y = make_data(n, dtype)
    epoch = ROWS[row][1](make_params(dtype), X, Y, m)
    tracemalloc.start()
    epoch()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return f"{traced:.2f} {max_rss_mib():.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    ap.add_argument("--m", default="10,100,1000", help="mini-batch sizes")
    ap.add_argument("--dtype", default="float32,float64", help="float32, float64 or both")
    ap.add_argument("--samples", type=int, default=50_000, help="samples per epoch")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (median is reported)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    ap.add_argument(
        "--pause",
        type=float,
        default=0.3,
        help="seconds of idle before each timed epoch (lets the BLAS/OpenMP threads of the\n"
        "previous row stop spinning: OpenBLAS and PyTorch's OpenMP busy-wait after work and\n"
        "would otherwise steal one of the cores from the next row)",
    )
    ap.add_argument("--quick", action="store_true", help="2,000 samples, 1 round, no memory")
    ap.add_argument("--_memory", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._memory:
        row, m, dtype, n = args._memory
        print(measure_memory(row, int(m), dtype, int(n)))
        return 0
    if args.quick:
        args.samples, args.rounds, args.no_memory, args.pause = 2_000, 1, True, 0.0

    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    missing = [r for r in rows if not available(r)]
    rows = [r for r in rows if r not in missing]
    if "numpy_floor" not in rows:
        rows.insert(0, "numpy_floor")  # every ratio is to the floor
    ms = [int(s) for s in args.m.split(",")]
    dtypes = [s.strip() for s in args.dtype.split(",")]

    print(machine_header(["torch", "mygrad", "autograd"]))
    print(f"samples per epoch: {args.samples}, rounds: {args.rounds}, η = {ETA}")
    if missing:
        print(f"not available (skipped): {', '.join(missing)}")
    print()

    all_ok = True
    for dtype in dtypes:
        X, Y = make_data(args.samples, dtype)
        params = make_params(dtype)
        epochs = {(r, m): ROWS[r][1](params, X, Y, m) for r in rows for m in ms}
        times: dict[tuple[str, int], list[float]] = {key: [] for key in epochs}
        ratios: dict[tuple[str, int], list[float]] = {key: [] for key in epochs}
        finals: dict[tuple[str, int], Params] = {}
        for rnd in range(args.rounds):
            for m in ms:
                shift = rnd % len(rows)
                for r in rows[shift:] + rows[:shift]:  # rotate the order every round
                    time.sleep(args.pause)
                    t0 = time.perf_counter()
                    final = epochs[(r, m)]()
                    times[(r, m)].append(time.perf_counter() - t0)
                    finals[(r, m)] = final
                for r in rows:
                    ratios[(r, m)].append(times[(r, m)][-1] / times[("numpy_floor", m)][-1])

        memory: dict[tuple[str, int], str] = {}
        if not args.no_memory:
            for r in rows:
                for m in ms:
                    out = run_child(
                        [__file__, "--_memory", r, str(m), dtype, str(args.samples)]
                    ).split()
                    traced = "n/a" if r == "torch" else out[0]
                    memory[(r, m)] = f"{traced} / {out[1]}"

        body = []
        for m in ms:
            steps = args.samples // m
            tol = tolerance(dtype, steps)
            ref = finals[("numpy_floor", m)]
            for r in rows:
                diff = weight_difference(finals[(r, m)], ref)
                same = diff <= tol and all(p.dtype == np.dtype(dtype) for p in finals[(r, m)])
                all_ok &= same
                row = [
                    r,
                    m,
                    f"{median(times[(r, m)]):.3f}",
                    f"{median(ratios[(r, m)]):.2f}×",
                    f"{min(times[(r, m)]) / min(times[('numpy_floor', m)]):.2f}×",
                    f"{diff:.1e} {'ok' if same else 'DIFFERENT'}",
                ]
                if memory:
                    row.append(memory[(r, m)])
                body.append(row)
        header = [
            "row",
            "m",
            "epoch s (median)",
            "× floor (median of rounds)",
            "× floor (best of rounds)",
            "max rel. Δw vs floor",
        ]
        if memory:
            header.append("peak MiB: traced / RSS")
        print(f"dtype {dtype}:")
        print(table(header, body))
        print()
    print(f"load average at end (1/5/15 min): {__import__('_common').load_average()}")
    if not all_ok:
        print("ERROR: some rows did not end at the floor's weights (see the table)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
