"""Chapter 5's vanishing gradient: in a deep network of sigmoid neurons the early hidden layers
learn far more slowly than the later ones.

The book measures the "speed of learning" of hidden layer l as ‖δˡ‖ = ‖∂C/∂bˡ‖, the length of
the cost's gradient with respect to the layer's biases, for networks [n, 30, 30, 10],
[n, 30, 30, 30, 10] and [n, 30, 30, 30, 30, 10] just after initialisation (network2's
cross-entropy cost, weights N(0, 1/n_in), biases N(0, 1), the gradient over 1,000 training
images). Backpropagation explains it: δˡ = σ'(zˡ) ⊙ (wˡ⁺¹)ᵀ δˡ⁺¹, and σ'(z) ≤ 1/4, so each layer
further from the output multiplies the gradient by factors that are usually below 1.

This script prints those speeds (averaged over a few initialisations) for three kinds of network:

* sigmoid, standard init:  weights and biases N(0, 1) (chapter 1's network.py);
* sigmoid, scaled init:    weights N(0, 1/n_in) (the book's chapter 5 setting);
* relu, scaled init:       rectified linear hidden neurons (relu'(z) = 1 for z > 0),

then trains the four-hidden-layer sigmoid network and follows the speeds epoch by epoch
(``fit(report_gradients=True)``: ‖∂C/∂bˡ‖ averaged over each epoch's mini-batches), and draws
both as a PNG.

Run: python examples/vanishing_gradient.py [--plot vanishing.png] [--epochs 30] [--quick]
     python examples/vanishing_gradient.py --dataset mnist --data-dir DIR   (MNIST on disk)

Offline on the 8x8 digits shipped in the package by default; ``--quick`` uses fewer
initialisations and epochs (seconds).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tinygrad_sgd import Tensor, nn
from tinygrad_sgd.data import MNISTNotFoundError, load_digits, load_mnist
from tinygrad_sgd.train import build_network, fit, gradient_speeds

DEPTHS = (2, 3, 4)  # hidden layers of 30 neurons
KINDS = (("sigmoid", "standard"), ("sigmoid", "scaled"), ("relu", "scaled"))


def speeds_at_start(
    X: np.ndarray, y: np.ndarray, hidden: int, activation: str, init: str, seeds: range
) -> np.ndarray:
    """‖∂C/∂bˡ‖ of each hidden layer of freshly initialised networks [n, 30, ..., 10] (the
    cross-entropy cost averaged over the examples X), averaged over the seeds."""
    Y = Tensor(nn.F.one_hot(y, 10, dtype=np.float64))
    out = []
    for seed in seeds:
        net = build_network(
            [X.shape[1], *[30] * hidden, 10], init, seed, np.float64, activation=activation
        )
        z = net[:-1](Tensor(X))  # the output layer's z: the cost from logits, as fit computes it
        cost = nn.F.binary_cross_entropy_with_logits(z, Y, reduction="sum") * (1 / len(X))
        cost.backward()
        out.append(gradient_speeds(net))
    return np.mean(out, axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("digits", "mnist"), default="digits")
    parser.add_argument("--data-dir", default=None, help="folder holding the MNIST files")
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (3 with --quick)")
    parser.add_argument("--plot", default=None, help="write the speeds to this PNG")
    parser.add_argument("--quick", action="store_true", help="2 initialisations, 3 epochs")
    args = parser.parse_args(argv)
    epochs = args.epochs if args.epochs is not None else (3 if args.quick else 30)
    seeds = range(2 if args.quick else 10)

    if args.dataset == "digits":
        train_set, test_set = load_digits()
    else:
        try:
            train_set, _, test_set = load_mnist(args.data_dir, download=False)
        except MNISTNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    X, y = train_set[0][:1000].astype(np.float64), train_set[1][:1000]
    print(
        f"{args.dataset}: ‖∂C/∂bˡ‖ of each hidden layer at initialisation, cross-entropy cost "
        f"over {len(X)} training images, mean of {len(seeds)} initialisations"
    )

    table: dict[tuple[str, str, int], np.ndarray] = {}
    print(f"{'hidden neurons, init':<24}{'network':<30}speeds, first hidden layer first")
    for activation, init in KINDS:
        for depth in DEPTHS:
            s = speeds_at_start(X, y, depth, activation, init, seeds)
            table[(activation, init, depth)] = s
            sizes = str([X.shape[1], *[30] * depth, 10])
            cells = "  ".join(f"{v:8.4f}" for v in s).ljust(10 * max(DEPTHS))
            print(
                f"{activation + ', ' + init:<24}{sizes:<30}{cells}   last/first {s[-1] / s[0]:6.1f}"
            )
    deep = table[("sigmoid", "scaled", 4)]
    print(
        f"four sigmoid hidden layers: the first learns {deep[-1] / deep[0]:.0f} times slower "
        f"than the last"
    )

    # the speeds while training: network2's settings for chapter 5 (η = 0.1, m = 10)
    net = build_network([X.shape[1], 30, 30, 30, 30, 10], "scaled", 0, np.float32)
    history = fit(
        net,
        train_set,
        test_set,
        epochs=epochs,
        batch_size=10,
        lr=0.1,
        cost="cross-entropy",
        seed=0,
        report_gradients=True,
        log=None,
    )
    print(f"training [{X.shape[1]}, 30, 30, 30, 30, 10] (sigmoid, η = 0.1, m = 10):")
    for k, v in zip(history.epoch, history.gradient_speeds):
        print(f"  epoch {k:3d}: " + "  ".join(f"{s:8.4f}" for s in v))
    print(f"accuracy after {epochs} epochs: {100 * history.accuracy[-1]:.2f} %")

    if args.plot:
        try:
            import matplotlib
        except ImportError:
            print("--plot needs matplotlib: pip install 'tinygrad-sgd[plot]'", file=sys.stderr)
            return 2
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator

        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        styles = {"standard": ":", "scaled": "-"}
        colors = {2: "C0", 3: "C1", 4: "C2"}
        for (activation, init, depth), s in table.items():
            ax1.plot(
                range(1, depth + 1),
                s,
                styles[init] if activation == "sigmoid" else "--",
                marker="o",
                color=colors[depth],
                label=f"{depth} hidden, {activation}, {init} init",
            )
        ax1.set_yscale("log")
        ax1.set_xticks(range(1, max(DEPTHS) + 1))
        ax1.set_xlabel("hidden layer")
        ax1.set_ylabel("‖∂C/∂bˡ‖ at initialisation")
        ax1.set_title("speed of learning at the start")
        ax1.legend(fontsize=7)
        speeds = np.array(history.gradient_speeds)
        for layer in range(speeds.shape[1]):
            ax2.plot(
                history.epoch, speeds[:, layer], marker="o", ms=3, label=f"hidden layer {layer + 1}"
            )
        ax2.set_yscale("log")
        ax2.set_xlabel("epoch")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.set_ylabel("‖∂C/∂bˡ‖, mean over the mini-batches")
        ax2.set_title("while training 4 sigmoid hidden layers")
        ax2.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
