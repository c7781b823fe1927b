"""Data for training: the shipped 8x8 digits, MNIST, and the mini-batch ``DataLoader``.

- :func:`load_digits` -- 1,797 8x8 digits inside the package (offline, no extra dependency);
- :func:`load_mnist` -- MNIST from IDX files or the book's ``mnist.pkl.gz``, cached, downloaded
  with SHA-256 verification when absent;
- :class:`DataLoader` -- shuffled mini-batches, one pass per epoch.
"""

from .digits import load_digits
from .loader import DataLoader
from .mnist import (
    DatasetError,
    DownloadError,
    MNISTNotFoundError,
    cache_dir,
    load_mnist,
    load_mnist_pkl,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
)

__all__ = [
    "DataLoader",
    "DatasetError",
    "DownloadError",
    "MNISTNotFoundError",
    "cache_dir",
    "load_digits",
    "load_mnist",
    "load_mnist_pkl",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "write_idx",
]
