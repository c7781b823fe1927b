"""Is memory flat over a long training run, and proportional to the graph for huge graphs?

Two measurements, each row in a fresh Python process (so that its peak resident set size,
VmHWM, is its own):

1. Training: the book's network [784, 30, 10] of sigmoid neurons, quadratic cost
   C = 1/2n Σ‖y − a‖², mini-batch SGD with m = 10 and η = 3.0, float32 as the ``train`` command
   uses, driven by the library's own loop (``train.fit``) over 1,000 MNIST-shaped random images
   (so that the data is small and any growth would show).  Peak RSS after 1,000 and after
   10,000 steps; and, in the 10,000-step process, the RSS every 1,000 steps.
2. Graphs: a chain of 10⁶ ops (z = sin z on a 1-element tensor) and a graph 10⁴ wide (10⁴ leaves,
   each through sin, stacked and summed): RSS before the forward pass, after it, the peak during
   backward, and after backward; bytes per node.

Run:  python benchmarks/memory.py            (about a minute; ~1 GiB at the 10⁶ chain)
      python benchmarks/memory.py --quick    (1,000 vs 3,000 steps, a 10⁵ chain)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _common import load_average, machine_header, table  # noqa: E402


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def _reset_peak() -> None:
    """Make VmHWM start again from the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# ---------------------------------------------------------------------------- child processes


def child_training(steps: int) -> dict[str, object]:
    import numpy as np

    from tinygrad_sgd.train import build_network, fit

    rng = np.random.default_rng(0)
    X = rng.random((1000, 784), dtype=np.float32)
    y = rng.integers(0, 10, 1000)
    net = build_network([784, 30, 10], init="standard", seed=0, dtype="float32")
    per_epoch = 1000 // 10
    samples: list[tuple[int, float]] = []

    def after_epoch(k: int, history: object) -> None:
        done = (k + 1) * per_epoch
        if done % 1000 == 0:
            samples.append((done, _status_mib("VmRSS")))

    start = _status_mib("VmRSS")
    fit(
        net,
        (X, y),
        None,
        epochs=steps // per_epoch,
        batch_size=10,
        lr=3.0,
        log=None,
        on_epoch_end=after_epoch,
    )
    return {"steps": steps, "start": start, "peak": _status_mib("VmHWM"), "samples": samples}


def child_graph(kind: str, n: int) -> dict[str, object]:
    import gc

    import numpy as np

    import tinygrad_sgd as tg
    from tinygrad_sgd import Tensor

    if kind == "chain":
        x = Tensor(np.array([0.5]), requires_grad=True)
        leaves = [x]
    else:
        leaves = [Tensor(np.array([float(i)]), requires_grad=True) for i in range(n)]
    gc.collect()
    before = _status_mib("VmRSS")
    if kind == "chain":
        out = x
        for _ in range(n):
            out = out.sin()
    else:
        out = tg.stack([t.sin() for t in leaves]).sum()
    after_forward = _status_mib("VmRSS")
    _reset_peak()
    out.backward(np.ones(out.shape))
    peak = _status_mib("VmHWM")
    del out
    gc.collect()
    after = _status_mib("VmRSS")
    assert all(t.grad is not None for t in leaves)
    return {
        "kind": kind,
        "n": n,
        "before": before,
        "forward": after_forward,
        "peak": peak,
        "after": after,
    }


def run_child(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 vs 3,000 steps, a 10⁵ chain")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        what, n = args.child[0], int(args.child[1])
        result = child_training(n) if what == "train" else child_graph(what, n)
        print(json.dumps(result))
        return 0

    long_run = 3_000 if args.quick else 10_000
    chain = 100_000 if args.quick else 1_000_000
    print(machine_header())
    print()
    print("Training the book's network [784, 30, 10] (float32, m = 10, η = 3.0) with train.fit")
    print()
    runs = [run_child("train", str(s)) for s in (1_000, long_run)]
    print(
        table(
            ["steps", "RSS at start MiB", "peak RSS MiB"],
            [[r["steps"], f"{r['start']:.1f}", f"{r['peak']:.1f}"] for r in runs],
        )
    )
    print()
    samples = runs[-1]["samples"]
    assert isinstance(samples, list)
    print(f"RSS during the {long_run:,}-step run, every 1,000 steps (MiB):")
    print(", ".join(f"{s}: {m:.1f}" for s, m in samples))
    print()
    print("Graphs: RSS (MiB) around one backward pass")
    print()
    rows = []
    for kind, n in (("chain", chain), ("wide", 10_000)):
        r = run_child(kind, str(n))
        graph = (r["forward"] - r["before"]) * 2**20  # type: ignore[operator]
        extra = (r["peak"] - r["forward"]) * 2**20  # type: ignore[operator]
        rows.append(
            [
                f"{kind} {n:,}",
                f"{r['before']:.0f}",
                f"{r['forward']:.0f}",
                f"{r['peak']:.0f}",
                f"{r['after']:.0f}",
                f"{graph / n:.0f}",
                f"{extra / n:.0f}",
            ]
        )
    print(
        table(
            [
                "graph",
                "before",
                "after forward",
                "peak in backward",
                "after backward",
                "graph B/node",
                "backward extra B/node",
            ],
            rows,
        )
    )
    print()
    print(f"load average at end (1/5/15 min): {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
