"""Does backward stay linear in the size of the graph?  Time per node from 10³ to 10⁶ nodes.

The graph is the recurrence h_{k+1} = h_k · w + x, run for N/2 steps from h_0 = x: a chain of
depth N (N nodes, alternately Mul and Add) in which the leaves x and w fan out into N/2 ops each,
so the backward pass exercises the topological order, deep traversal (no recursion limit) and
gradient accumulation at fan-out.  Each tensor has shape (1,): the arithmetic is negligible and
the time is the engine's own per-node cost.  If any step of backward were quadratic (say, a list
search per node), the µs/node column would grow with N; flat means linear.

Run:  python benchmarks/scale.py                 (10³ … 10⁶ nodes; about a minute, ~1 GiB)
      python benchmarks/scale.py --max 100000    (smaller)
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import load_average, machine_header, max_rss_mib, median, table  # noqa: E402

from tinygrad_sgd import Tensor  # noqa: E402


def one(n_nodes: int, gc_off: bool = False) -> tuple[float, float, float]:
    """(forward s, backward s, gradient error) for a graph of ``n_nodes`` recorded ops, with
    Python's cyclic garbage collector running as usual or (``gc_off``) paused while timed."""
    w0, x0 = 0.999, 0.5
    x = Tensor(np.array([x0]), requires_grad=True)
    w = Tensor(np.array([w0]), requires_grad=True)
    steps = n_nodes // 2
    if gc_off:
        gc.disable()
    try:
        t0 = time.perf_counter()
        h = x
        for _ in range(steps):
            h = h * w + x
        t1 = time.perf_counter()
        h.backward(np.ones(1))
        t2 = time.perf_counter()
    finally:
        gc.enable()
    # dh/dx = Σ_{k=0}^{n} w^k (h_n = x Σ_{k=0}^{n} w^k): a check that the big backward is right.
    exact = (1 - w0 ** (steps + 1)) / (1 - w0)
    assert x.grad is not None
    err = abs(float(x.grad.data[0]) - exact) / exact
    return t1 - t0, t2 - t1, err


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--max", type=int, default=1_000_000, help="largest graph (nodes)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds for graphs below 10⁶ nodes")
    ap.add_argument("--quick", action="store_true", help="10³ and 10⁴ nodes, 1 round")
    args = ap.parse_args(argv)
    if args.quick:
        args.max, args.rounds = 10_000, 1

    sizes = [n for n in (1_000, 10_000, 100_000, 1_000_000) if n <= args.max]
    print(machine_header())
    print()
    body = []
    base = None
    base_off = None
    for n in sizes:
        fwd, bwd, bwd_off, errs = [], [], [], []
        for _ in range(args.rounds if n < 1_000_000 else 1):
            for gc_off in (False, True):
                gc.collect()
                f, b, e = one(n, gc_off)
                (bwd_off if gc_off else bwd).append(b)
                if not gc_off:
                    fwd.append(f)
                errs.append(e)
        per_node = median(bwd) / n * 1e6
        per_node_off = median(bwd_off) / n * 1e6
        base = base or per_node
        base_off = base_off or per_node_off
        body.append(
            [
                n,
                f"{median(fwd) / n * 1e6:.2f}",
                f"{per_node:.2f}",
                f"{per_node / base:.2f}",
                f"{per_node_off:.2f}",
                f"{per_node_off / base_off:.2f}",
                f"{max(errs):.1e}",
                f"{max_rss_mib():.0f}",
            ]
        )
    print(
        table(
            [
                "nodes",
                "forward µs/node",
                "backward µs/node",
                "vs 10³",
                "backward µs/node, gc paused",
                "vs 10³ (gc paused)",
                "rel. error of dh/dx",
                "peak RSS MiB so far",
            ],
            body,
        )
    )
    print(
        "\n(With the cyclic garbage collector running, its full collections scan every live "
        "object, so\ntheir cost per node grows with the graph; the 'gc paused' columns show the "
        "engine alone.)"
    )
    print()
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
