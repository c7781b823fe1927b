"""Regenerate ``tinygrad_sgd/data/digits.npz``, the 8x8 handwritten digits shipped in the package.

Source: the UCI "Optical Recognition of Handwritten Digits" data set (E. Alpaydin and C. Kaynak,
1998; CC BY 4.0, https://doi.org/10.24432/C50P49), in the copy of its test part (1,797 images)
that scikit-learn bundles as ``sklearn.datasets.load_digits``.  scikit-learn is needed only to run
this script, once, by a developer; it is not a dependency of tinygrad_sgd:

    python -m venv /tmp/sk && /tmp/sk/bin/pip install scikit-learn
    /tmp/sk/bin/python scripts/make_digits.py

What the file holds (all arrays, compressed with ``np.savez_compressed``):

- ``X_train`` (1437, 64) and ``X_test`` (360, 64), ``uint8``: the 8x8 pixel counts 0..16, row by
  row, exactly as in the source (``load_digits`` divides them by 16 to give floats in [0, 1]);
- ``y_train``, ``y_test``, ``uint8``: the digit 0..9;
- ``train_index``, ``test_index``, ``int16``: each row's position in the source's order.

The split is fixed and stratified: for each digit, its images are shuffled with
``numpy.random.default_rng(20260101)`` and the first 36 go to the test set (10 x 36 = 360 images,
20 %); the rest (1,437) are the training set. Each set is then put in one shuffled order by the same
generator. Running the script again gives byte-identical arrays.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

SEED = 20260101
TEST_PER_CLASS = 36
OUT = Path(__file__).resolve().parent.parent / "tinygrad_sgd" / "data" / "digits.npz"


def main() -> None:
    bunch = load_digits()
    images = np.asarray(bunch.data)
    labels = np.asarray(bunch.target)
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() == 0 and images.max() == 16 and np.all(images == np.round(images))
    pixels = images.astype(np.uint8)

    rng = np.random.default_rng(SEED)
    test_idx: list[int] = []
    train_idx: list[int] = []
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        idx = idx[rng.permutation(len(idx))]
        test_idx.extend(idx[:TEST_PER_CLASS].tolist())
        train_idx.extend(idx[TEST_PER_CLASS:].tolist())
    train = np.array(train_idx)[rng.permutation(len(train_idx))].astype(np.int16)
    test = np.array(test_idx)[rng.permutation(len(test_idx))].astype(np.int16)

    arrays = {
        "X_train": pixels[train],
        "y_train": labels[train].astype(np.uint8),
        "X_test": pixels[test],
        "y_test": labels[test].astype(np.uint8),
        "train_index": train,
        "test_index": test,
    }
    np.savez_compressed(OUT, **arrays)
    digest = hashlib.sha256(b"".join(a.tobytes() for a in arrays.values())).hexdigest()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes); arrays sha256 {digest}")
    for name, a in arrays.items():
        print(f"  {name}: {a.shape} {a.dtype}")


if __name__ == "__main__":
    main()
