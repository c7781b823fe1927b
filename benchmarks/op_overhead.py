"""Microseconds per operation: the fixed cost a framework adds around NumPy's arithmetic.

For a few ops and sizes, three ways of doing the same work:

* ``numpy``         the bare NumPy call(s): forward, and forward plus the hand-written gradient
                    formulas (what backpropagation would have to compute anyway)
* ``tinygrad_sgd``  forward: the Tensor op with grad recording on (inputs require grad);
                    forward + backward: the op, then ``out.backward(g)`` into fresh ``.grad``s
* ``torch``         the same in PyTorch CPU eager (when installed)

Each cell is the median over rounds of the mean time of a batch of calls; the rows are
interleaved within each round.  At small sizes the numbers are almost pure overhead (Python,
dispatch, recording the node, the backward walk); at large sizes the arithmetic dominates.

Run:  python benchmarks/op_overhead.py            (about a minute)
      python benchmarks/op_overhead.py --quick    (a few seconds)
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

from _common import load_average, machine_header, median, table  # noqa: E402

import tinygrad_sgd as tg  # noqa: E402

# name, input shapes, NumPy forward, NumPy backward (grads of every input from g and inputs)
Case = tuple[str, tuple[tuple[int, ...], ...], Callable[..., Any], Callable[..., Any]]


def _sig(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


CASES: list[Case] = [
    ("add", ((10, 30), (10, 30)), lambda a, b: a + b, lambda g, a, b: (g, g)),
    ("add", ((1000, 30), (1000, 30)), lambda a, b: a + b, lambda g, a, b: (g, g)),
    ("add bias", ((10, 30), (30,)), lambda a, b: a + b, lambda g, a, b: (g, g.sum(0))),
    ("mul", ((10, 30), (10, 30)), lambda a, b: a * b, lambda g, a, b: (g * b, g * a)),
    ("sigmoid", ((10, 30),), _sig, lambda g, a: (g * _sig(a) * (1 - _sig(a)),)),
    ("sigmoid", ((1000, 30),), _sig, lambda g, a: (g * _sig(a) * (1 - _sig(a)),)),
    ("sum", ((10, 30),), lambda a: a.sum(), lambda g, a: (np.broadcast_to(g, a.shape),)),
    ("matmul", ((10, 784), (784, 30)), np.matmul, lambda g, a, b: (g @ b.T, a.T @ g)),
    ("matmul", ((1000, 784), (784, 30)), np.matmul, lambda g, a, b: (g @ b.T, a.T @ g)),
    (
        "linear (fused)",
        ((10, 784), (30, 784), (30,)),
        lambda x, w, b: x @ w.T + b,
        lambda g, x, w, b: (g @ w, g.T @ x, g.sum(0)),
    ),
    (
        "linear x@W.T+b",
        ((10, 784), (30, 784), (30,)),
        lambda x, w, b: x @ w.T + b,
        lambda g, x, w, b: (g @ w, g.T @ x, g.sum(0)),
    ),
]

FRAMEWORKS = ("numpy", "tinygrad_sgd", "torch")


def _apply(name: str, xs: list[Any]) -> Any:
    """The op written the way each framework's users write it (Tensor methods / operators)."""
    if name in ("add", "add bias"):
        return xs[0] + xs[1]
    if name == "mul":
        return xs[0] * xs[1]
    if name == "sigmoid":
        return xs[0].sigmoid()
    if name == "sum":
        return xs[0].sum()
    if name == "matmul":
        return xs[0] @ xs[1]
    if name == "linear x@W.T+b":
        return xs[0] @ xs[1].T + xs[2]
    if name == "linear (fused)":  # what nn.Linear runs (torch: torch.nn.functional.linear)
        if isinstance(xs[0], tg.Tensor):
            return tg.nn.functional.linear(xs[0], xs[1], xs[2])
        import torch

        return torch.nn.functional.linear(xs[0], xs[1], xs[2])
    raise ValueError(name)


def make_runners(case: Case, fw: str, dtype: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """(forward, forward + backward) closures for one case in one framework."""
    name, shapes, np_fwd, np_bwd = case
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    out_shape = np.shape(np_fwd(*arrays))
    g = rng.standard_normal(out_shape).astype(dtype)

    if fw == "numpy":
        return (lambda: np_fwd(*arrays)), (lambda: (np_fwd(*arrays), np_bwd(g, *arrays)))

    if fw == "tinygrad_sgd":
        ts = [tg.Tensor(a, requires_grad=True) for a in arrays]
        gt = tg.Tensor(g)

        def fb_tg() -> Any:
            for t in ts:
                t.grad = None
            out = _apply(name, ts)
            out.backward(gt)
            return out

        return (lambda: _apply(name, ts)), fb_tg

    import torch

    tts = [torch.tensor(a, requires_grad=True) for a in arrays]
    gtt = torch.tensor(g)

    def fb_torch() -> Any:
        for t in tts:
            t.grad = None
        out = _apply(name, tts)
        out.backward(gtt)
        return out

    return (lambda: _apply(name, tts)), fb_torch


def time_call(fn: Callable[[], Any], budget: float) -> float:
    """Mean µs per call over a batch of calls that takes about ``budget`` seconds."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t0
        if dt >= budget:
            return dt / n * 1e6
        n = max(n * 2, int(n * budget / max(dt, 1e-9) * 1.2))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--budget", type=float, default=0.05, help="seconds per timed batch")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--quick", action="store_true", help="1 round, short batches")
    ap.add_argument(
        "--pause",
        type=float,
        default=0.3,
        help="idle seconds when switching to or from torch (OpenBLAS and OpenMP threads\n"
        "busy-wait after work and would steal a core from the other library)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.budget, args.pause = 1, 0.005, 0.0

    fws = list(FRAMEWORKS)
    if args.no_torch:
        fws.remove("torch")
    else:
        try:
            import torch

            torch.set_grad_enabled(True)
        except ImportError:
            fws.remove("torch")

    print(machine_header(["torch"]))
    print(f"dtype {args.dtype}, {args.rounds} rounds; cells: median µs per call")
    print()
    runners = {
        (i, fw): make_runners(case, fw, args.dtype) for i, case in enumerate(CASES) for fw in fws
    }
    res: dict[tuple[int, str, int], list[float]] = {}
    for rnd in range(args.rounds):
        for i in range(len(CASES)):
            order = fws[rnd % len(fws) :] + fws[: rnd % len(fws)]
            for mode in (0, 1):
                prev = None
                for fw in order:
                    if prev is not None and "torch" in (fw, prev):
                        time.sleep(args.pause)
                    prev = fw
                    us = time_call(runners[(i, fw)][mode], args.budget)
                    res.setdefault((i, fw, mode), []).append(us)

    header = ["op", "shapes"]
    for mode in ("fwd", "fwd+bwd"):
        header += [f"{fw} {mode}" for fw in fws]
    body = []
    for i, (name, shapes, _, _) in enumerate(CASES):
        row: list[Any] = [name, " ".join("×".join(map(str, s)) for s in shapes)]
        for mode in (0, 1):
            row += [f"{median(res[(i, fw, mode)]):.1f}" for fw in fws]
        body.append(row)
    print(table(header, body))
    print()
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
