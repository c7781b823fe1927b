"""Chapter 3's saturated neuron: why the quadratic cost learns slowly and cross-entropy does not.

One sigmoid neuron, input x = 1, desired output y = 0, output a = σ(z) with z = w x + b. Its
gradients under the two costs (backpropagated here by the engine, checked against the book):

    quadratic      C = ½ (a − y)²                     ∂C/∂w = (a − y) σ'(z) x
    cross-entropy  C = −[y ln a + (1 − y) ln(1 − a)]  ∂C/∂w = (a − y) x

Started at w = b = 2 the neuron is saturated (a ≈ 0.98, σ'(z) ≈ 0.018): the quadratic cost's
gradient is tiny and learning crawls for many epochs, while the cross-entropy's has no σ'(z)
factor and the output drops at once. Started at w = 0.6, b = 0.9 both learn quickly.

Run: python examples/learning_slowdown.py [--epochs 300] [--plot slowdown.png] [--quick]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import tinygrad_sgd as tg
from tinygrad_sgd import nn, optim


def run(cost: str, w0: float, b0: float, epochs: int, lr: float) -> list[float]:
    """The neuron's output a after each epoch (one gradient step per epoch: one example)."""
    w = tg.Tensor(w0, requires_grad=True)
    b = tg.Tensor(b0, requires_grad=True)
    opt = optim.SGD([w, b], lr=lr)
    x, y = 1.0, 0.0
    outputs = []
    for epoch in range(epochs + 1):
        a = (w * x + b).sigmoid()
        outputs.append(a.item())
        if epoch == epochs:
            break
        if cost == "quadratic":
            C = 0.5 * (a - y) ** 2
            book = (a.item() - y) * a.item() * (1 - a.item()) * x
        else:
            C = nn.F.binary_cross_entropy(a, tg.Tensor(y), reduction="sum")
            book = (a.item() - y) * x
        opt.zero_grad()
        C.backward()
        assert np.isclose(w.grad.item(), book, rtol=1e-9), (w.grad.item(), book)
        opt.step()
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="default 300 (60 with --quick)")
    parser.add_argument("--lr", type=float, default=0.15, help="η (default 0.15, as the book)")
    parser.add_argument("--plot", default=None, help="write the four curves to this PNG")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (60 if args.quick else 300)

    runs = {
        (cost, start): run(cost, *start, epochs, args.lr)
        for cost in ("quadratic", "cross-entropy")
        for start in ((0.6, 0.9), (2.0, 2.0))
    }
    marks = sorted({0, 10, 20, 40, epochs // 2, epochs})
    print("output a after epoch         " + " ".join(f"{k:>6}" for k in marks))
    for (cost, (w0, b0)), outs in runs.items():
        row = " ".join(f"{outs[k]:6.3f}" for k in marks)
        print(f"{cost:>13}, w, b = {w0:.1f}, {b0:.1f}: {row}")
    quad_slow = runs[("quadratic", (2.0, 2.0))]
    ce_slow = runs[("cross-entropy", (2.0, 2.0))]
    k = min(20, epochs)
    print(
        f"saturated start, after {k} epochs: quadratic a = {quad_slow[k]:.3f}, "
        f"cross-entropy a = {ce_slow[k]:.3f}"
    )

    if args.plot:
        try:
            import matplotlib
        except ImportError:
            print("--plot needs matplotlib: pip install 'tinygrad-sgd[plot]'", file=sys.stderr)
            return 2
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        for (cost, (w0, b0)), outs in runs.items():
            style = "-" if cost == "cross-entropy" else "--"
            ax.plot(outs, style, label=f"{cost}, w = {w0}, b = {b0}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("output a (target 0)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
