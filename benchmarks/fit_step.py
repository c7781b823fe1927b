"""µs per training step of ``tg.train.fit`` on the book's [784, 30, 10] sigmoid network, with the
cost and penalties of chapter 3, for one or more checkouts of the package.

    python benchmarks/fit_step.py [M DTYPE N EPOCHS] [--cost cross-entropy] [--lmbda L] [--l1 L]
                                  [--eager] [--compare LABEL=PATH ... [--rounds R]] [--quick]

runs ``fit`` (compiled step unless ``--eager``) for EPOCHS epochs (default 4) over N synthetic
MNIST-shaped samples (default 5,000) at batch size M (default 10) and prints the median over
epochs 1.. of the epoch's seconds divided by its N/M steps (epoch 0 records, verifies and lowers
the step, and is left out).  ``--compare
label=/path/to/checkout ...`` instead runs the same command once per checkout in turn, in
ROUNDS rounds whose order rotates, and prints each checkout's median and spread, and the median
and spread of its per-round ratio to the first checkout (a shared machine's load moves both
checkouts of a round alike).

Instructions (deterministic, whatever the load): run it under callgrind with EPOCHS = 2 and 6
and divide the difference by 4·N/M steps, e.g.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/fit_step.py ...
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path


def measure(args: argparse.Namespace) -> None:
    import numpy as np

    from tinygrad_sgd import train

    rng = np.random.default_rng(0)
    X = rng.random((args.n, 784), dtype=np.float32).astype(args.dtype)
    y = rng.integers(0, 10, args.n)
    net = train.build_network([784, 30, 10], seed=1, dtype=np.dtype(args.dtype))
    history = train.fit(
        net, (X, y), epochs=args.epochs, batch_size=args.m, lr=0.5, cost=args.cost,
        lmbda=args.lmbda, l1=args.l1, seed=2, log=None, progress=False,
        compile=not args.eager,
    )  # fmt: skip
    steps = args.n // args.m
    per_step = [s / steps * 1e6 for s in history.seconds[1:]] or [history.seconds[0] / steps * 1e6]
    print(f"{statistics.median(per_step):.1f}")


def compare(args: argparse.Namespace, rest: list[str]) -> None:
    specs = [s.split("=", 1) for s in args.compare]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    times: dict[str, list[float]] = {label: [] for label, _ in specs}
    for r in range(args.rounds):
        order = specs[r % len(specs) :] + specs[: r % len(specs)]
        for label, path in order:
            out = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), *rest],
                env=dict(env, PYTHONPATH=path), capture_output=True, text=True, check=True,
            )  # fmt: skip
            times[label].append(float(out.stdout.strip()))
    first = specs[0][0]
    for label, ts in times.items():
        ratios = sorted(t / b for t, b in zip(ts, times[first]))
        ts = sorted(ts)
        print(f"{label}: median {statistics.median(ts):.1f} µs/step, range {ts[0]:.1f}–{ts[-1]:.1f}"
              f" over {len(ts)} runs; per round × {first}: median {statistics.median(ratios):.3f},"
              f" range {ratios[0]:.3f}–{ratios[-1]:.3f}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("m", type=int, nargs="?", default=10)
    ap.add_argument("dtype", nargs="?", default="float32")
    ap.add_argument("n", type=int, nargs="?", default=5000)
    ap.add_argument("epochs", type=int, nargs="?", default=4)
    ap.add_argument("--quick", action="store_true", help="200 samples, 2 epochs, 1 round")
    ap.add_argument("--cost", default="cross-entropy")
    ap.add_argument("--lmbda", type=float, default=0.0)
    ap.add_argument("--l1", type=float, default=0.0)
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--compare", nargs="+", metavar="LABEL=PATH")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.quick:
        args.n, args.epochs, args.rounds = 200, 2, 1
    if args.compare:
        rest = [str(v) for v in (args.m, args.dtype, args.n, args.epochs)]
        rest += ["--cost", args.cost, "--lmbda", str(args.lmbda), "--l1", str(args.l1)]
        rest += ["--eager"] if args.eager else []
        compare(args, rest)
    else:
        measure(args)


if __name__ == "__main__":
    main()
