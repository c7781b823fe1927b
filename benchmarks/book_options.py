"""What each chapter 3 / 5 option of ``fit`` costs: one epoch of the book's network
[784, 30, 10] (sigmoid neurons, η = 0.5, cross-entropy cost, m = 10 unless told) through
``tinygrad_sgd.train.fit`` — the ``train`` command's loop — on synthetic MNIST-shaped data, with:

* ``plain``             every option off (chapter 1's step with the cross-entropy cost);
* ``dropout``           ``build_network(..., dropout=0.5)``: a fresh mask each step on the hidden
                        layer (a uniform draw, a comparison and one more graph node);
* ``lmbda``             L2: the term (λ/2n) Σ w² added to each mini-batch's cost;
* ``l1``                L1: the term (λ/n) Σ |w|;
* ``report_gradients``  ‖∂C/∂bˡ‖ of the hidden layer read after each backward.

Rows run in turn within each round (the order rotates) and the table gives the median epoch
time and the median per-round ratio to ``plain``; evaluation is off (no evaluation set), so the
epoch is the training steps only.  With ``--rows plain`` the script runs on an older checkout
too (``PYTHONPATH=/path/to/old python benchmarks/book_options.py --rows plain``): the way to
compare today's step with an earlier one.

Run:  python benchmarks/book_options.py            (5 rounds of 50,000 samples, m = 10)
      python benchmarks/book_options.py --quick    (seconds)
Pin BLAS to one thread for stable numbers: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import load_average, machine_header, median, table  # noqa: E402

from tinygrad_sgd.train import build_network, fit  # noqa: E402

SIZES = [784, 30, 10]
OPTIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (build_network options, fit options)
    "plain": ({}, {}),
    "dropout": ({"dropout": 0.5, "dropout_seed": 0}, {}),
    "lmbda": ({}, {"lmbda": 5.0}),
    "l1": ({}, {"l1": 5.0}),
    "report_gradients": ({}, {"report_gradients": True}),
}


def make_data(n: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, SIZES[0]), dtype=np.dtype(dtype).type)
    return X, rng.integers(0, SIZES[-1], size=n)


def epoch_time(row: str, X: np.ndarray, y: np.ndarray, m: int, dtype: str) -> float:
    build, options = OPTIONS[row]
    net = build_network(SIZES, "scaled", 0, dtype, **build)
    t0 = time.perf_counter()
    fit(net, (X, y), epochs=1, batch_size=m, lr=0.5, cost="cross-entropy", seed=0, log=None,
        progress=False, **options)  # fmt: skip
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", default=",".join(OPTIONS), help="comma-separated rows")
    ap.add_argument("--m", type=int, default=10, help="mini-batch size")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2,000 samples, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.rounds = 2_000, 1
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in OPTIONS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {list(OPTIONS)}")
    if "plain" not in rows:
        rows.insert(0, "plain")

    print(machine_header())
    print(
        f"[784, 30, 10], m = {args.m}, {args.dtype}, {args.samples} samples, {args.rounds} rounds"
    )
    X, y = make_data(args.samples, args.dtype)
    times: dict[str, list[float]] = {r: [] for r in rows}
    ratios: dict[str, list[float]] = {r: [] for r in rows}
    for rnd in range(args.rounds):
        shift = rnd % len(rows)
        for r in rows[shift:] + rows[:shift]:
            times[r].append(epoch_time(r, X, y, args.m, args.dtype))
        for r in rows:
            ratios[r].append(times[r][-1] / times["plain"][-1])
    steps = -(-args.samples // args.m)
    body = [
        [
            r,
            f"{median(times[r]):.3f}",
            f"{1e6 * median(times[r]) / steps:.1f}",
            f"{median(ratios[r]):.3f}×",
        ]
        for r in rows
    ]
    print(table(["row", "epoch s (median)", "µs per step", "× plain (median of rounds)"], body))
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
