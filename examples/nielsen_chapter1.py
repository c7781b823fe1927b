"""The book's chapter 1 experiment: a [784, 30, 10] network of sigmoid neurons learns MNIST.

    "Let's set up a Network with 30 hidden neurons ... We'll use stochastic gradient descent to
    learn from the MNIST training_data over 30 epochs, with a mini-batch size of 10, and a
    learning rate of η = 3.0"  -- Neural Networks and Deep Learning, chapter 1.

The network computes a = σ(w a' + b) layer after layer; training minimises the quadratic cost
C = 1/2n Σ_x ‖y(x) − a‖² with one gradient step w → w − η ∂C/∂w per mini-batch of m = 10 images.
The book reports about 95% of the 10,000 test images classified correctly after 30 epochs.

Run:
    python examples/nielsen_chapter1.py                 # MNIST: data_dir, cache, else download
    python examples/nielsen_chapter1.py --data-dir DIR  # the IDX files or mnist.pkl.gz in DIR
    python examples/nielsen_chapter1.py --quick         # offline, seconds: see below

``--quick`` never downloads: it writes a small MNIST-shaped IDX set to a temporary folder -- the
8x8 digits shipped in the package, each pixel enlarged to 3x3 and centred in 28x28, 0..255 -- and
runs the same code on it for 3 epochs (the IDX reader and the book's loop, end to end).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tinygrad_sgd.data import DownloadError, MNISTNotFoundError, load_digits, load_mnist, write_idx
from tinygrad_sgd.train import build_network, fit


def write_small_mnist(folder: Path) -> None:
    """The shipped digits as MNIST-shaped IDX files: 1,437 training and 360 test images."""
    for (X, y), prefix in zip(load_digits(), ("train", "t10k")):
        big = np.kron(X.reshape(-1, 8, 8), np.ones((3, 3)))  # 8x8 -> 24x24
        images = np.zeros((len(X), 28, 28), dtype=np.uint8)
        images[:, 2:26, 2:26] = np.round(big * 255).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", y.astype(np.uint8))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small offline run (see above)")
    parser.add_argument("--data-dir", default=None, help="folder holding the MNIST files")
    parser.add_argument("--epochs", type=int, default=None, help="default: 30 (3 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            write_small_mnist(Path(tmp))
            data_dir, download, validation_size, epochs = tmp, False, 237, 3
        else:
            data_dir, download, validation_size, epochs = args.data_dir, True, 10_000, 30
        try:
            training, validation, test = load_mnist(
                data_dir, download=download, validation_size=validation_size
            )
        except (MNISTNotFoundError, DownloadError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    epochs = args.epochs if args.epochs is not None else epochs
    print(
        f"{len(training[1])} training, {len(validation[1])} validation, "
        f"{len(test[1])} test images of {training[0].shape[1]} pixels"
    )

    # net = network.Network([784, 30, 10]): weights and biases drawn from N(0, 1)
    net = build_network([training[0].shape[1], 30, 10], init="standard", seed=args.seed)
    # net.SGD(training_data, 30, 10, 3.0, test_data=test_data)
    t0 = time.perf_counter()
    history = fit(
        net, training, test, epochs=epochs, batch_size=10, lr=3.0, seed=args.seed, log=print
    )
    print(
        f"after {epochs} epochs: {history.correct[-1]} / {history.total[-1]} "
        f"({100 * history.accuracy[-1]:.2f}%) in {time.perf_counter() - t0:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
