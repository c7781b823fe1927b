"""The 8x8 handwritten digits shipped inside the package: the offline data set of ``train``.

1,797 images of the digits 0..9 from the UCI "Optical Recognition of Handwritten Digits" data set
(E. Alpaydin and C. Kaynak, 1998, CC BY 4.0, https://doi.org/10.24432/C50P49). Each image is a
block count: 32x32 bitmaps divided into 4x4 blocks, each block holding the number of its black
pixels, 0..16. Divided by 16, an image becomes the input vector x of 64 numbers in [0, 1].

The split is fixed (``scripts/make_digits.py`` made it once, reproducibly): 360 test images, 36 of
each digit, and 1,437 training images; each set in one fixed shuffled order.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

__all__ = ["load_digits", "N_TRAIN", "N_TEST"]

#: The digits in the training split (of 1,797 8x8 images).
N_TRAIN = 1437
#: The digits in the test split.
N_TEST = 360
_FILE = "digits.npz"


def load_digits(
    dtype: Any = np.float64,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(X_train, y_train), (X_test, y_test)``: the shipped 8x8 digits, offline.

    ``X_*`` has shape ``(n, 64)`` and values in [0, 1] (pixel counts 0..16 divided by 16) in
    ``dtype`` (float64 by default); ``y_*`` holds the digits 0..9 as int64. ``n`` is 1,437 for
    training and 360 for testing (36 of each digit). Each call returns fresh arrays.
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"load_digits: dtype must be a float dtype, got {dt}")
    ref = resources.files("tinygrad_sgd.data").joinpath(_FILE)
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
        X_train, y_train = z["X_train"], z["y_train"]
        X_test, y_test = z["X_test"], z["y_test"]
    if X_train.shape != (N_TRAIN, 64) or X_test.shape != (N_TEST, 64):
        raise ValueError(f"{ref}: unexpected shapes {X_train.shape}, {X_test.shape}")

    def scale(X: np.ndarray) -> np.ndarray:
        scaled: np.ndarray = X.astype(dt) / dt.type(16)
        return scaled

    return (scale(X_train), y_train.astype(np.int64)), (scale(X_test), y_test.astype(np.int64))
