"""MNIST readers: IDX files (gzipped or raw, good and damaged), the book's pickle (including a
malicious one), the cache folder, and the offline error."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from tinygrad_sgd.data import (
    DatasetError,
    MNISTNotFoundError,
    cache_dir,
    load_mnist,
    load_mnist_pkl,
    read_idx,
    read_idx_images,
    read_idx_labels,
    write_idx,
)

NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


def make_mnist(folder: Path, n_train=30, n_test=12, rows=28, cols=28, gz=(True,) * 4, seed=0):
    """Write four MNIST-shaped IDX files with random pixels; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, (n_train, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, rows, cols), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    for name, arr, zipped in zip(NAMES, arrays, gz):
        write_idx(folder / (name if zipped else name[:-3]), arr)
    return arrays


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets an empty cache folder, never the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# ---------------------------------------------------------------------------------- IDX files


def test_read_idx_hand_built_header():
    """A file assembled byte by byte from the IDX specification, independent of write_idx."""
    values = (np.arange(6).reshape(2, 3) - 3).astype(">i2")
    raw = bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 2, 3) + values.tobytes()
    return_value = _read_bytes(raw)
    np.testing.assert_array_equal(return_value, [[-3, -2, -1], [0, 1, 2]])
    assert return_value.dtype == np.int16 and return_value.dtype.isnative


def _read_bytes(raw: bytes, name: str = "file.idx") -> np.ndarray:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(raw)
        return read_idx(p)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_read_roundtrip(tmp_path, dtype, name):
    arr = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    p = write_idx(tmp_path / name, arr)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(p)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)
    assert [q.name for q in tmp_path.iterdir()] == [name]  # no temporary file left


def test_gzip_detected_by_content_not_name(tmp_path):
    arr = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", arr)
    os.replace(tmp_path / "x.gz", tmp_path / "x-labels")
    np.testing.assert_array_equal(read_idx(tmp_path / "x-labels"), arr)


def test_write_idx_rejects_unstorable_dtype(tmp_path):
    with pytest.raises(TypeError, match="cannot store dtype"):
        write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.complex128))


GOOD_HEADER = bytes([0, 0, 8, 1]) + struct.pack(">I", 4)


@pytest.mark.parametrize(
    "raw,msg",
    [
        (b"\x00\x00", "too short"),
        (bytes([1, 0, 8, 1]) + struct.pack(">I", 4) + bytes(4), "bad IDX magic number 0x01000801"),
        (bytes([0, 0, 7, 1]) + struct.pack(">I", 4) + bytes(4), "bad IDX magic number"),
        (bytes([0, 0, 8, 0]), "bad IDX magic number"),
        (bytes([0, 0, 8, 3]) + struct.pack(">I", 4), "ends first"),
        (GOOD_HEADER + bytes(3), "truncated: header says 4 values of uint8 \\(4 bytes\\)"),
        (GOOD_HEADER + bytes(5), "has trailing bytes"),
    ],
)
def test_damaged_idx_errors_name_the_file(tmp_path, raw, msg):
    p = tmp_path / "damaged-labels.idx"
    p.write_bytes(raw)
    with pytest.raises(DatasetError, match=msg) as info:
        read_idx(p)
    assert str(p) in str(info.value)


def test_truncated_gzip_and_fake_gz(tmp_path):
    p = write_idx(tmp_path / "t.gz", np.arange(1000, dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="damaged gzip") as info:
        read_idx(p)
    assert str(p) in str(info.value)
    q = tmp_path / "plain.gz"
    q.write_bytes(GOOD_HEADER + bytes(4))
    with pytest.raises(DatasetError, match="named .gz but is not a gzip file"):
        read_idx(q)
    with pytest.raises(DatasetError, match="cannot read"):
        read_idx(tmp_path / "missing.idx")


def test_images_and_labels_checked_for_their_kind(tmp_path):
    imgs = write_idx(tmp_path / "imgs.gz", np.zeros((2, 3, 3), np.uint8))
    labels = write_idx(tmp_path / "labels.gz", np.array([3, 9], np.uint8))
    assert read_idx_images(imgs).shape == (2, 3, 3)
    np.testing.assert_array_equal(read_idx_labels(labels), [3, 9])
    with pytest.raises(DatasetError, match="not that of an MNIST image file.*label file"):
        read_idx_images(labels)
    with pytest.raises(DatasetError, match="not that of an MNIST label file.*image file"):
        read_idx_labels(imgs)
    floats = write_idx(tmp_path / "floats.gz", np.zeros((2, 3, 3), np.float32))
    with pytest.raises(DatasetError, match="0x00000d03"):
        read_idx_images(floats)


def test_label_out_of_range_names_index(tmp_path):
    p = write_idx(tmp_path / "labels.gz", np.array([1, 2, 10, 3], np.uint8))
    with pytest.raises(DatasetError, match="label 10 at index 2 is outside 0..9") as info:
        read_idx_labels(p)
    assert str(p) in str(info.value)


# ---------------------------------------------------------------------------------- load_mnist


def test_load_mnist_from_gz_files_splits_like_the_book(tmp_path):
    Xtr, ytr, Xte, yte = make_mnist(tmp_path, n_train=30, n_test=12)
    train, validation, test = load_mnist(tmp_path, download=False, validation_size=8)
    assert train[0].shape == (22, 784) and validation[0].shape == (8, 784)
    assert test[0].shape == (12, 784)
    assert train[0].dtype == np.float32 and train[1].dtype == np.int64
    # pixels v -> v / 255, train = the first 22 images, validation = the last 8
    np.testing.assert_allclose(train[0], Xtr[:22].reshape(22, -1) / 255.0, rtol=1e-7)
    np.testing.assert_allclose(validation[0], Xtr[22:].reshape(8, -1) / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(train[1], ytr[:22])
    np.testing.assert_array_equal(validation[1], ytr[22:])
    np.testing.assert_allclose(test[0], Xte.reshape(12, -1) / 255.0, rtol=1e-7)
    np.testing.assert_array_equal(test[1], yte)
    for X, _ in (train, validation, test):
        assert 0.0 <= X.min() and X.max() <= 1.0


def test_load_mnist_raw_and_mixed_files_float64(tmp_path):
    Xtr, ytr, _, yte = make_mnist(tmp_path, gz=(False, True, False, True), rows=5, cols=4)
    assert (tmp_path / "train-images-idx3-ubyte").is_file()
    train, validation, test = load_mnist(
        tmp_path, download=False, validation_size=10, dtype=np.float64
    )
    assert train[0].shape == (20, 20) and train[0].dtype == np.float64
    np.testing.assert_array_equal(train[0] * 255, Xtr[:20].reshape(20, 20))
    np.testing.assert_array_equal(test[1], yte)


def test_load_mnist_count_mismatch_names_both_files(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / NAMES[1], np.zeros(29, np.uint8))
    with pytest.raises(DatasetError, match="holds 30 images but .* holds 29 labels") as info:
        load_mnist(tmp_path, download=False, validation_size=5)
    assert NAMES[0] in str(info.value) and NAMES[1] in str(info.value)


def test_load_mnist_train_test_image_sizes_must_agree(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / NAMES[2], np.zeros((12, 27, 28), np.uint8))
    with pytest.raises(DatasetError, match="784 pixels .* of 756"):
        load_mnist(tmp_path, download=False, validation_size=5)


def test_load_mnist_argument_errors(tmp_path):
    make_mnist(tmp_path, n_train=30)
    with pytest.raises(DatasetError, match="too few to keep 30 for validation"):
        load_mnist(tmp_path, download=False, validation_size=30)
    with pytest.raises(ValueError, match="validation_size"):
        load_mnist(tmp_path, download=False, validation_size=-1)
    with pytest.raises(TypeError, match="float dtype"):
        load_mnist(tmp_path, download=False, validation_size=5, dtype=np.uint8)


def test_offline_with_nothing_cached_says_what_to_put_where(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MNISTNotFoundError) as info:
        load_mnist(empty, download=False)
    msg = str(info.value)
    for name in (*NAMES, "mnist.pkl.gz"):
        assert name in msg
    assert str(empty) in msg and str(cache_dir() / "mnist") in msg
    assert "download=False" in msg
    with pytest.raises(MNISTNotFoundError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere", download=False)


def test_cache_dir_follows_xdg_and_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x" / "tinygrad_sgd"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tinygrad_sgd"


def test_cache_is_used_when_data_dir_lacks_the_files(tmp_path):
    _, _, _, yte = make_mnist(cache_dir() / "mnist", seed=4)
    (tmp_path / "mine").mkdir()
    _, _, test = load_mnist(tmp_path / "mine", download=False, validation_size=5)
    np.testing.assert_array_equal(test[1], yte)
    _, _, test2 = load_mnist(download=False, validation_size=5)
    np.testing.assert_array_equal(test2[1], yte)


def test_data_dir_takes_precedence_over_cache(tmp_path):
    make_mnist(cache_dir() / "mnist", seed=1)
    _, _, _, yte = make_mnist(tmp_path / "mine", seed=2)
    _, _, test = load_mnist(tmp_path / "mine", download=False, validation_size=5)
    np.testing.assert_array_equal(test[1], yte)


# ------------------------------------------------------------------------------ book's pickle


def _book_parts(seed=0, n=(20, 6, 8), width=784):
    rng = np.random.default_rng(seed)
    return tuple(
        (rng.random((k, width), dtype=np.float32), rng.integers(0, 10, k).astype(np.int64))
        for k in n
    )


def _write_pkl(path: Path, obj, protocol=2) -> Path:
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_book_pickle_roundtrip(tmp_path, protocol):
    parts = _book_parts()
    _write_pkl(tmp_path / "mnist.pkl.gz", parts, protocol)
    got = load_mnist(tmp_path, download=False)
    for (X, y), (gX, gy) in zip(parts, got):
        np.testing.assert_array_equal(gX, X)
        np.testing.assert_array_equal(gy, y)
        assert gX.dtype == np.float32 and gy.dtype == np.int64


class _Py2StylePickler(pickle.Pickler):
    """Pickles arrays the way Python 2's NumPy did for the book's file: the raw data as a
    (latin-1) text string rather than bytes."""

    def reducer_override(self, obj):
        if isinstance(obj, np.ndarray):
            rebuild = np.empty(0).__reduce__()[0]
            state = (1, obj.shape, obj.dtype, False, obj.tobytes().decode("latin1"))
            return rebuild, (np.ndarray, (0,), "b"), state
        return NotImplemented


def test_book_pickle_python2_style(tmp_path):
    parts = _book_parts(seed=3)
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        _Py2StylePickler(f, protocol=2).dump(parts)
    got = load_mnist_pkl(tmp_path / "mnist.pkl.gz")
    for (X, y), (gX, gy) in zip(parts, got):
        np.testing.assert_array_equal(gX, X)
        np.testing.assert_array_equal(gy, y)


def test_complete_idx_set_preferred_over_pickle(tmp_path):
    _write_pkl(tmp_path / "mnist.pkl.gz", _book_parts())
    _, _, _, yte = make_mnist(tmp_path)
    _, _, test = load_mnist(tmp_path, download=False, validation_size=5)
    np.testing.assert_array_equal(test[1], yte)


class _RunsCode:
    """Unpickling this calls os.system: what a malicious mnist.pkl.gz would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getpid()",))


def test_malicious_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    X, y = _book_parts()[0]
    bad = _write_pkl(tmp_path / "mnist.pkl.gz", ((X, y), (X, _RunsCode(marker)), (X, y)))
    # an ordinary unpickler would run the command: the test's payload is real
    with pytest.raises(DatasetError, match=r"refusing to load (posix|nt)\.system") as info:
        load_mnist_pkl(bad)
    assert not marker.exists()
    assert str(bad) in str(info.value)
    # the payload is real: an ordinary unpickler runs it
    pickle.loads(gzip.decompress(bad.read_bytes()))
    assert marker.exists()
    ev = _write_pkl(tmp_path / "eval.pkl.gz", _Evals())
    with pytest.raises(DatasetError, match=r"refusing to load (__builtin__|builtins)\.eval"):
        load_mnist_pkl(ev)


def test_object_arrays_are_refused(tmp_path):
    obj = np.array([1, "a"], dtype=object)
    p = _write_pkl(tmp_path / "mnist.pkl.gz", obj)
    with pytest.raises(DatasetError, match="object arrays are not allowed"):
        load_mnist_pkl(p)


@pytest.mark.parametrize(
    "mutate,msg",
    [
        (lambda parts: parts[:2], "expected a tuple \\(training, validation, test\\)"),
        (lambda parts: (parts[0], parts[1][0], parts[2]), "validation part is not a pair"),
        (lambda parts: (parts[0], parts[1], (parts[2][0] * 2, parts[2][1])), "outside \\[0, 1\\]"),
        (lambda parts: (parts[0], (parts[1][0], parts[1][1] + 10), parts[2]), "labels are outside"),
        (lambda parts: ((parts[0][0][:5], parts[0][1]), *parts[1:]), "5 training images but 20"),
        (lambda parts: ((parts[0][0].astype(int), parts[0][1]), *parts[1:]), "not a 2-D float"),
        (lambda parts: ((parts[0][0], parts[0][1] * 0.5), *parts[1:]), "not a 1-D integer"),
        (lambda parts: (parts[0], (parts[1][0][:, :700], parts[1][1]), parts[2]), "700 pixels"),
    ],
)
def test_damaged_pickle_structure(tmp_path, mutate, msg):
    p = _write_pkl(tmp_path / "mnist.pkl.gz", mutate(_book_parts()))
    with pytest.raises(DatasetError, match=msg):
        load_mnist_pkl(p)


def test_truncated_pickle(tmp_path):
    raw = pickle.dumps(_book_parts(), protocol=2)
    p = tmp_path / "mnist.pkl.gz"
    p.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    with pytest.raises(DatasetError, match="truncated") as info:
        load_mnist_pkl(p)
    assert str(p) in str(info.value)
