"""One epoch of the book's first convolutional network (chapter 6, ``network3.py``'s ``ch6-conv``):

    conv 20 feature maps, 5×5 local receptive fields, stride 1 → max-pool 2×2 → sigmoid
    → fully connected 2880 → 100, sigmoid → 10, softmax with the log-likelihood cost
    (cross-entropy from the logits, the mean over a mini-batch of m) and plain SGD, η = 0.1

(network3 adds the conv layer's bias after pooling; max-pooling commutes with adding one number
per feature map, so that is the same network) on 50,000 MNIST-shaped random images (28×28 values
in [0, 1), random labels, made here: nothing is downloaded), timed for:

* ``tinygrad_sgd``   the user path: data.DataLoader, nn.Sequential(nn.Conv2d, nn.MaxPool2d,
                     nn.Sigmoid, nn.Flatten, nn.Linear, ...), nn.functional.cross_entropy, optim.SGD
* ``numpy_by_hand``  backpropagation written out in NumPy (windows and matrix products, the
                     pooling's gradient routed to the maxima by hand): what any NumPy framework
                     is measured against
* ``torch``          PyTorch CPU eager (torch.nn + torch.optim.SGD), when installed

for m = 10 and m = 100 in float32.  BLAS (OpenBLAS, MKL) and PyTorch run on ONE thread each, so
that the rows compare the same amount of hardware on a shared machine.  Every row starts from the
same weights and takes the same mini-batches in the same order; the script checks that all of
them end at the same weights (within float32 rounding, see ``tolerance``) and exits non-zero if
one does not.  Rows are interleaved and the order rotates every round; the table gives median
epoch times and the median of the per-round ratios to PyTorch.  Peak memory is measured in a
fresh subprocess per row.

Run:  python benchmarks/conv_epoch.py               (full run: about ten minutes)
      python benchmarks/conv_epoch.py --quick       (a few steps, seconds; no memory)
      python benchmarks/conv_epoch.py --rows tinygrad_sgd,torch --m 10 --rounds 1
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy (and PyTorch) start their thread pools

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import machine_header, max_rss_mib, median, run_child, table  # noqa: E402
from mlp_epoch import tolerance, weight_difference  # noqa: E402

ETA = 0.1
SIDE, MAPS, K, POOL, HIDDEN, CLASSES = 28, 20, 5, 2, 100, 10
CONV = SIDE - K + 1  # 24
FLAT = MAPS * (CONV // POOL) ** 2  # 2880

Params = list[np.ndarray]  # [w (20, 1, 5, 5), b (20,), W1 (100, 2880), b1, W2 (10, 100), b2]
Epoch = Callable[[], Params]


def make_data(n: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 1, 28, 28) in [0, 1) and labels 0..9."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, SIDE, SIDE), dtype=np.dtype(dtype).type)
    return X, rng.integers(0, CLASSES, size=n)


def make_params(dtype: Any, seed: int = 1) -> Params:
    """w ~ N(0, 1/n_in) (n_in = 25, 2880, 100) and b ~ N(0, 1), as the book's chapter 3."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, n_in in (
        ((MAPS, 1, K, K), K * K),
        ((HIDDEN, FLAT), FLAT),
        ((CLASSES, HIDDEN), HIDDEN),
    ):
        out.append((rng.standard_normal(shape) / np.sqrt(n_in)).astype(dtype))
        out.append(rng.standard_normal(shape[0]).astype(dtype))
    return out


# ------------------------------------------------------------------------------------------
# rows: each builder does its set-up (untimed) and returns the timed epoch
# ------------------------------------------------------------------------------------------


def numpy_by_hand(params: Params, X: np.ndarray, y: np.ndarray, m: int) -> Epoch:
    """Backpropagation through conv → pool → σ → fc → σ → fc → softmax by hand.

    z¹ = w ⋆ x + b (windows of x times w as a 25-row matrix), p = max-pool(z¹), a¹ = σ(p),
    a² = σ(W¹ a¹ + b¹), z³ = W² a² + b²; δ³ = (softmax(z³) − y)/m, δ² = (δ³ W²) ⊙ σ'(·),
    δᵖ = (δ² W¹) ⊙ σ'(p), δ¹ = δᵖ at the maximum of each window (ties share), ∂C/∂w = Σ δ¹ x
    over the windows.
    """
    dt = X.dtype.type
    one, step = dt(1), dt(ETA)
    onehot = np.eye(CLASSES, dtype=X.dtype)

    def sigmoid(z: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # e^−z → inf gives the right limit 0
            return one / (one + np.exp(-z))

    def epoch() -> Params:
        w, b, W1, b1, W2, b2 = (p.copy() for p in params)
        for k in range(0, X.shape[0] - m + 1, m):
            x, t = X[k : k + m], onehot[y[k : k + m]]
            cols = sliding_window_view(x[:, 0], (K, K), axis=(1, 2))  # (m, 24, 24, 5, 5)
            cols = cols.transpose(0, 3, 4, 1, 2).reshape(m, K * K, CONV * CONV)
            z1 = (w.reshape(MAPS, K * K) @ cols).reshape(m, MAPS, CONV, CONV)
            z1 += b[:, None, None]
            taps = [z1[:, :, u::POOL, v::POOL] for u in range(POOL) for v in range(POOL)]
            pooled = taps[0].copy()
            for tap in taps[1:]:
                np.maximum(pooled, tap, out=pooled)
            a1 = sigmoid(pooled).reshape(m, FLAT)
            a2 = sigmoid(a1 @ W1.T + b1)
            z3 = a2 @ W2.T + b2
            e = np.exp(z3 - z3.max(axis=1, keepdims=True))
            d3 = (e / e.sum(axis=1, keepdims=True) - t) / dt(m)
            d2 = (d3 @ W2) * a2 * (one - a2)
            dp = ((d2 @ W1) * a1 * (one - a1)).reshape(pooled.shape)
            hits = [tap == pooled for tap in taps]
            share = dp / sum(h.astype(X.dtype) for h in hits)
            d1 = np.zeros_like(z1)
            for (u, v), hit in zip([(u, v) for u in range(POOL) for v in range(POOL)], hits):
                d1[:, :, u::POOL, v::POOL] += share * hit
            gw = np.einsum("nol,nkl->ok", d1.reshape(m, MAPS, -1), cols).reshape(w.shape)
            grads = (gw, d1.sum(axis=(0, 2, 3)), d2.T @ a1, d2.sum(0), d3.T @ a2, d3.sum(0))
            for p, g in zip((w, b, W1, b1, W2, b2), grads):
                p -= step * g
        return [w, b, W1, b1, W2, b2]

    return epoch


def tinygrad_nn(params: Params, X: np.ndarray, y: np.ndarray, m: int) -> Epoch:
    """What a user writes: a DataLoader (batches in order), nn.Sequential, the log-likelihood
    cost of the softmax from the logits, optim.SGD."""
    from tinygrad_sgd import data, nn, optim

    def epoch() -> Params:
        model = nn.Sequential(
            nn.Conv2d(1, MAPS, K, dtype=X.dtype),
            nn.MaxPool2d(POOL),
            nn.Sigmoid(),
            nn.Flatten(),
            nn.Linear(FLAT, HIDDEN, dtype=X.dtype),
            nn.Sigmoid(),
            nn.Linear(HIDDEN, CLASSES, dtype=X.dtype),
        )
        layers = [model[0], model[4], model[6]]
        for layer, (w, b) in zip(layers, zip(params[::2], params[1::2])):
            layer.weight.data[...] = w
            layer.bias.data[...] = b
        opt = optim.SGD(model.parameters(), lr=ETA)
        for x, t in data.DataLoader(X, y, batch_size=m, shuffle=False, drop_last=True):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), t).backward()
            opt.step()
        return [p.data for layer in layers for p in (layer.weight, layer.bias)]

    return epoch


def torch_eager(params: Params, X: np.ndarray, y: np.ndarray, m: int) -> Epoch:
    """PyTorch CPU eager: torch.nn layers, torch.nn.functional.cross_entropy, torch.optim.SGD."""
    import torch

    torch.set_num_threads(1)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    dtype = Xt.dtype

    def epoch() -> Params:
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, MAPS, K, dtype=dtype),
            torch.nn.MaxPool2d(POOL),
            torch.nn.Sigmoid(),
            torch.nn.Flatten(),
            torch.nn.Linear(FLAT, HIDDEN, dtype=dtype),
            torch.nn.Sigmoid(),
            torch.nn.Linear(HIDDEN, CLASSES, dtype=dtype),
        )
        layers = [model[0], model[4], model[6]]
        with torch.no_grad():
            for layer, (w, b) in zip(layers, zip(params[::2], params[1::2])):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        opt = torch.optim.SGD(model.parameters(), lr=ETA)
        for k in range(0, X.shape[0] - m + 1, m):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(Xt[k : k + m]), yt[k : k + m]).backward()
            opt.step()
        return [p.detach().numpy().copy() for layer in layers for p in (layer.weight, layer.bias)]

    return epoch


ROWS: dict[str, tuple[str | None, Callable[..., Epoch]]] = {
    "torch": ("torch", torch_eager),
    "tinygrad_sgd": (None, tinygrad_nn),
    "numpy_by_hand": (None, numpy_by_hand),
}


def available(name: str) -> bool:
    module = ROWS[name][0]
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def measure_memory(row: str, m: int, dtype: str, n: int) -> str:
    """(Child process.)  Peak memory of one epoch in MiB: the NumPy/Python allocations during
    the epoch (tracemalloc; PyTorch's allocator is invisible to it) and the peak resident set
    size of the process (libraries and data set included)."""
    import tracemalloc

    X, y = make_data(n, dtype)
    epoch = ROWS[row][1](make_params(dtype), X, y, m)
    tracemalloc.start()
    epoch()
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return f"{traced:.2f} {max_rss_mib():.0f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated rows to run")
    ap.add_argument("--m", default="10,100", help="mini-batch sizes")
    ap.add_argument("--dtype", default="float32", help="float32 or float64")
    ap.add_argument("--samples", type=int, default=50_000, help="images per epoch")
    ap.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory column")
    ap.add_argument("--pause", type=float, default=0.3, help="idle seconds before each epoch")
    ap.add_argument("--quick", action="store_true", help="200 images, 1 round, no memory")
    ap.add_argument("--_memory", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args._memory:
        row, m, dtype, n = args._memory
        print(measure_memory(row, int(m), dtype, int(n)))
        return 0
    if args.quick:
        args.samples, args.rounds, args.no_memory, args.pause = 200, 1, True, 0.0

    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    missing = [r for r in rows if not available(r)]
    rows = [r for r in rows if r not in missing]
    base = rows[0]  # ratios and weights are compared with the first row (torch when present)
    ms = [int(s) for s in args.m.split(",")]
    dtype = args.dtype

    print(machine_header(["torch"]))
    print(f"images per epoch: {args.samples}, rounds: {args.rounds}, η = {ETA}, dtype {dtype}")
    if missing:
        print(f"not available (skipped): {', '.join(missing)}")
    print()

    X, y = make_data(args.samples, dtype)
    params = make_params(dtype)
    epochs = {(r, m): ROWS[r][1](params, X, y, m) for r in rows for m in ms}
    times: dict[tuple[str, int], list[float]] = {key: [] for key in epochs}
    ratios: dict[tuple[str, int], list[float]] = {key: [] for key in epochs}
    finals: dict[tuple[str, int], Params] = {}
    for rnd in range(args.rounds):
        for m in ms:
            shift = rnd % len(rows)
            for r in rows[shift:] + rows[:shift]:
                time.sleep(args.pause)
                t0 = time.perf_counter()
                finals[(r, m)] = epochs[(r, m)]()
                times[(r, m)].append(time.perf_counter() - t0)
            for r in rows:
                ratios[(r, m)].append(times[(r, m)][-1] / times[(base, m)][-1])

    memory: dict[tuple[str, int], str] = {}
    if not args.no_memory:
        for r in rows:
            for m in ms:
                out = run_child([__file__, "--_memory", r, str(m), dtype, str(args.samples)])
                traced, rss = out.split()
                memory[(r, m)] = f"{'n/a' if r == 'torch' else traced} / {rss}"

    all_ok = True
    body = []
    for m in ms:
        steps = args.samples // m
        tol = tolerance(dtype, steps)
        for r in rows:
            diff = weight_difference(finals[(r, m)], finals[(base, m)])
            same = diff <= tol and all(p.dtype == np.dtype(dtype) for p in finals[(r, m)])
            all_ok &= same
            row = [
                r,
                m,
                f"{median(times[(r, m)]):.2f}",
                f"{median(times[(r, m)]) / steps * 1e3:.2f}",
                f"{median(ratios[(r, m)]):.2f}×",
                f"{diff:.1e} {'ok' if same else 'DIFFERENT'}",
            ]
            if memory:
                row.append(memory[(r, m)])
            body.append(row)
    header = [
        "row",
        "m",
        "epoch s (median)",
        "ms per step",
        f"× {base} (median of rounds)",
        f"max rel. Δw vs {base}",
    ]
    if memory:
        header.append("peak MiB: traced / RSS")
    print(table(header, body))
    print()
    print(f"load average at end (1/5/15 min): {__import__('_common').load_average()}")
    if not all_ok:
        print(f"ERROR: some rows did not end at the weights of {base} (see the table)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
