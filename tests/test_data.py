"""The shipped digits (contents, split, packaging) and the DataLoader."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd.data import DataLoader, load_digits

ROOT = Path(__file__).resolve().parent.parent
NPZ = ROOT / "tinygrad_sgd" / "data" / "digits.npz"

# ------------------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_and_range():
    (X_train, y_train), (X_test, y_test) = tg.data.load_digits()
    assert X_train.shape == (1437, 64) and X_test.shape == (360, 64)
    assert y_train.shape == (1437,) and y_test.shape == (360,)
    assert X_train.dtype == np.float64 and y_train.dtype == np.int64
    for X in (X_train, X_test):
        assert X.min() == 0.0 and X.max() == 1.0
        # pixel counts 0..16 divided by 16: every value is an exact multiple of 1/16
        np.testing.assert_array_equal(X * 16, np.round(X * 16))
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


def test_digits_split_is_stratified_disjoint_and_complete():
    (_, y_train), (_, y_test) = load_digits()
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), np.full(10, 36))
    with np.load(NPZ) as z:
        train_index, test_index = z["train_index"], z["test_index"]
        np.testing.assert_array_equal(z["y_train"], y_train)
    assert len(np.intersect1d(train_index, test_index)) == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train_index, test_index])), np.arange(1797)
    )
    # the UCI test part has 174..183 images of each digit
    counts = np.bincount(y_train, minlength=10) + 36
    assert counts.min() >= 174 and counts.max() <= 183 and counts.sum() == 1797


def test_digits_images_match_their_labels():
    """A 1-nearest-neighbour classifier is right on > 95% of the test set: images and labels
    line up (a shuffled label column would give about 10%)."""
    (X_train, y_train), (X_test, y_test) = load_digits()
    d2 = (X_test**2).sum(1)[:, None] - 2 * X_test @ X_train.T + (X_train**2).sum(1)[None, :]
    accuracy = (y_train[d2.argmin(1)] == y_test).mean()
    assert accuracy > 0.95


def test_digits_dtype_and_fresh_arrays():
    (X32, _), (Xt32, _) = load_digits(dtype=np.float32)
    assert X32.dtype == np.float32 and Xt32.dtype == np.float32
    (X, y), _ = load_digits()
    X[:] = -1.0
    y[:] = 99
    (X2, y2), _ = load_digits()
    assert X2.min() == 0.0 and y2.max() == 9
    with pytest.raises(TypeError, match="float dtype"):
        load_digits(dtype=np.int32)


def _declared_package_data() -> list[str]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    with open(ROOT / "pyproject.toml", "rb") as f:
        cfg = tomllib.load(f)
    return cfg["tool"]["setuptools"]["package-data"]["tinygrad_sgd"]


def test_digits_file_is_declared_as_package_data():
    patterns = _declared_package_data()
    rel = NPZ.relative_to(ROOT / "tinygrad_sgd").as_posix()
    assert any(Path(rel).match(p) for p in patterns), (rel, patterns)


def test_digits_file_is_in_the_built_package(tmp_path):
    """``pip install .`` (not only an editable install) must carry the data file. A wheel holds
    exactly what setuptools' ``build_py`` step puts in the build folder, so run that step on a
    copy of the sources (offline, no ``wheel`` package needed) and read the digits back."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(
        ROOT / "tinygrad_sgd",
        src / "tinygrad_sgd",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.npz"),
    )
    shutil.copy(NPZ, src / "tinygrad_sgd" / "data" / "digits.npz")
    out = tmp_path / "build"
    cmd = [sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py"]
    subprocess.run(
        [*cmd, "--build-lib", str(out)], cwd=src, check=True, capture_output=True, timeout=120
    )
    built = out / "tinygrad_sgd" / "data"
    assert (built / "digits.py").is_file()
    assert sorted(p.name for p in built.glob("*.npz")) == ["digits.npz"]
    with np.load(built / "digits.npz") as z:
        assert z["X_train"].shape == (1437, 64)


# ---------------------------------------------------------------------------------- DataLoader


def _toy(n: int = 23):
    y = np.arange(n)
    X = np.stack([y * 10.0, y * 10.0 + 1.0], axis=1)  # row i knows its own label
    return X, y


@pytest.mark.parametrize(
    "n,m,drop_last,sizes",
    [
        (23, 5, False, [5, 5, 5, 5, 3]),
        (23, 5, True, [5, 5, 5, 5]),
        (20, 5, False, [5, 5, 5, 5]),
        (20, 5, True, [5, 5, 5, 5]),
        (3, 10, False, [3]),
        (3, 10, True, []),
        (0, 4, False, []),
    ],
)
def test_batch_sizes_and_len(n, m, drop_last, sizes):
    X, y = _toy(n)
    loader = DataLoader(X, y, m, seed=1, drop_last=drop_last)
    got = [len(xb) for xb, _ in loader]
    assert got == sizes
    assert len(loader) == len(sizes)


def test_each_epoch_covers_every_example_once_with_rows_aligned():
    X, y = _toy(23)
    loader = DataLoader(X, y, 4, seed=3)
    for _ in range(3):
        ys = []
        for xb, yb in loader:
            assert isinstance(xb, np.ndarray) and isinstance(yb, np.ndarray)
            np.testing.assert_array_equal(xb[:, 0], yb * 10.0)
            np.testing.assert_array_equal(xb[:, 1], yb * 10.0 + 1.0)
            ys.append(yb)
        np.testing.assert_array_equal(np.sort(np.concatenate(ys)), y)


def test_reshuffles_every_epoch_and_is_reproducible_from_the_seed():
    X, y = _toy(50)

    def epochs(loader, k):
        return [np.concatenate([yb for _, yb in loader]) for _ in range(k)]

    a = epochs(DataLoader(X, y, 7, seed=11), 3)
    b = epochs(DataLoader(X, y, 7, seed=11), 3)
    c = epochs(DataLoader(X, y, 7, seed=12), 3)
    for e1, e2 in zip(a, b):
        np.testing.assert_array_equal(e1, e2)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], y)  # shuffled, not the stored order


def test_no_shuffle_keeps_order():
    X, y = _toy(10)
    loader = DataLoader(X, y, 4, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in loader]), y)
    np.testing.assert_array_equal(next(iter(loader))[0], X[:4])


def test_generator_state_resumes_the_same_batches():
    X, y = _toy(30)
    ref = DataLoader(X, y, 4, seed=5)
    list(ref)
    state = ref.rng.bit_generator.state
    expected = [yb for _, yb in ref]
    resumed = DataLoader(X, y, 4, seed=999)
    resumed.rng.bit_generator.state = state
    for e, g in zip(expected, [yb for _, yb in resumed], strict=True):
        np.testing.assert_array_equal(e, g)


def test_accepts_tensors_and_lists():
    loader = DataLoader(tg.Tensor([[1.0], [2.0], [3.0]]), [0, 1, 2], 2, shuffle=False)
    (xb, yb), (xb2, yb2) = list(loader)
    np.testing.assert_array_equal(xb, [[1.0], [2.0]])
    np.testing.assert_array_equal(yb2, [2])


@pytest.mark.parametrize(
    "bs,exc,msg",
    [
        (0, ValueError, "at least 1"),
        (-3, ValueError, "at least 1"),
        (2.5, TypeError, "batch_size must be an int"),
        (True, TypeError, "batch_size must be an int"),
        ("10", TypeError, "batch_size must be an int"),
    ],
)
def test_bad_batch_size(bs, exc, msg):
    X, y = _toy(5)
    with pytest.raises(exc, match=msg):
        DataLoader(X, y, bs)


def test_mismatched_rows_and_scalars_rejected():
    with pytest.raises(ValueError, match="X has 5 rows but y has 4"):
        DataLoader(np.zeros((5, 2)), np.zeros(4), 2)
    with pytest.raises(ValueError, match="at least one dimension"):
        DataLoader(np.float64(1.0), np.zeros(1), 1)
