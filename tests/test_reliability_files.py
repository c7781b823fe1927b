"""Damaged, truncated and mismatched files: checkpoints (``tg.load``, ``train --resume``), IDX
files and the book's ``mnist.pkl.gz``.

The example tests elsewhere (tests/test_serialization.py, tests/test_mnist.py) check one kind of
damage each.  Here the damage is systematic: every truncation length, and bytes flipped anywhere
by Hypothesis.  The rule for every case: the reader returns exactly what was written, or raises
its documented error (``ValueError`` for checkpoints, ``DatasetError`` for data files) with the
file's name in the message; never another exception, never a different result.  Also: a
checkpoint whose object array would run code when unpickled is refused without running it, a
pickle that tampers with a dtype's internal state is refused, and every damaged or mismatched
checkpoint handed to ``train --resume`` ends in a one-line error naming the file (exit 1, no
traceback).
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor
from tinygrad_sgd.cli import main
from tinygrad_sgd.data import DatasetError, load_mnist_pkl, read_idx, write_idx
from tinygrad_sgd.data.mnist import read_idx_images
from tinygrad_sgd.train import train

FIXTURE_OK = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _prefix_lengths(n: int) -> list[int]:
    """Every length in the first and last 150 bytes, and every 11th in between."""
    return sorted(
        set(range(0, min(n, 150))) | set(range(max(0, n - 150), n)) | set(range(0, n, 11))
    )


def _flip(raw: bytes, pos: int, mask: int) -> bytes:
    b = bytearray(raw)
    b[pos % len(b)] ^= mask
    return bytes(b)


# ------------------------------------------------------------------------------ checkpoints


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[bytes, dict]:
    """A real training checkpoint (2 epochs on the digits, a small hidden layer)."""
    path = tmp_path_factory.mktemp("ck") / "run.npz"
    train(epochs=2, hidden=(6,), seed=4, save=path, log=None)
    return path.read_bytes(), tg.load(path)


def _same_tree(a, b) -> bool:
    if isinstance(a, Tensor):
        return isinstance(b, Tensor) and a.dtype == b.dtype and np.array_equal(a.data, b.data)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_tree, a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return type(a) is type(b) and a == b


def _load_or_named_error(path: Path):
    """tg.load(path), or None after checking the error is a ValueError naming the file."""
    try:
        return tg.load(path)
    except ValueError as e:
        assert path.name in str(e), f"the error does not name the file: {e}"
        return None


def test_checkpoint_truncated_at_every_length(tmp_path, checkpoint):
    raw, original = checkpoint
    path = tmp_path / "cut.npz"
    lengths = _prefix_lengths(len(raw))
    for n in lengths:
        path.write_bytes(raw[:n])
        with pytest.raises(ValueError, match="cut.npz"):
            tg.load(path)
    path.write_bytes(raw)
    assert _same_tree(tg.load(path), original)  # the uncut file loads, so the cuts were damage
    assert len(lengths) > 300


@FIXTURE_OK
@given(pos=st.integers(0, 10**9), mask=st.integers(1, 255))
def test_checkpoint_with_a_flipped_byte_loads_intact_or_names_the_file(
    tmp_path, checkpoint, pos, mask
):
    """ZIP keeps a CRC-32 of every entry: a flipped byte in an array or in the structure entry
    is caught.  Flips in fields nothing reads (timestamps, ...) load the same values."""
    raw, original = checkpoint
    path = tmp_path / "flipped.npz"
    path.write_bytes(_flip(raw, pos, mask))
    loaded = _load_or_named_error(path)
    assert loaded is None or _same_tree(loaded, original)


def test_flips_over_the_whole_file_are_caught(tmp_path, checkpoint):
    """Every 3rd byte flipped in turn: count what happens (all must be intact or errors)."""
    raw, original = checkpoint
    path = tmp_path / "f.npz"
    errors = intact = 0
    for pos in range(0, len(raw), 3):
        path.write_bytes(_flip(raw, pos, 0x20))
        loaded = _load_or_named_error(path)
        if loaded is None:
            errors += 1
        else:
            assert _same_tree(loaded, original), f"byte {pos} flipped: silently different"
            intact += 1
    assert errors > 0.9 * (errors + intact)  # almost every byte is data behind a CRC


class _RunsCode:
    """Unpickling this runs a shell command: what a booby-trapped checkpoint would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_never_unpickles_an_object_array(tmp_path):
    marker = tmp_path / "pwned"
    bad = tmp_path / "trap.npz"
    trap = np.empty(1, dtype=object)
    trap[0] = _RunsCode(marker)
    np.savez(bad, **{"0.weight": np.ones((2, 2)), "trap": trap})
    with pytest.raises(ValueError, match="trap.npz.*pickled objects"):
        tg.load(bad)
    assert not marker.exists()
    # ... also when the structure entry of a tg.save checkpoint points at the object array
    good = tmp_path / "good.npz"
    tg.save({"w": np.ones(2)}, good)
    with zipfile.ZipFile(good) as z:
        meta = z.read("__tinygrad_sgd__.npy")
    np.savez(bad, w=trap)
    with zipfile.ZipFile(bad, "a") as z:
        z.writestr("__tinygrad_sgd__.npy", meta)
    with pytest.raises(ValueError, match="trap.npz"):
        tg.load(bad)
    assert not marker.exists()
    # the trap is real: loading with pickle allowed runs the command
    with np.load(bad, allow_pickle=True) as npz:
        npz["w"]
    assert marker.exists()


def _damage(ck: dict, how: str) -> dict:
    if how == "no weights":
        del ck["model"]["0.weight"]
    elif how == "weights for another network":
        ck["config"]["hidden"] = [12]
    elif how == "wrong weight dtype":
        ck["model"]["0.weight"] = Tensor(ck["model"]["0.weight"].data.astype(np.float64))
    elif how == "wrong input width":
        ck["model"]["0.weight"] = Tensor(np.zeros((6, 5), np.float32))
    elif how == "no optimizer":
        del ck["optimizer"]
    elif how == "optimizer of two groups":
        ck["optimizer"]["param_groups"] *= 2
    elif how == "optimizer lr a string":
        ck["optimizer"]["param_groups"][0]["lr"] = "fast"
    elif how == "bad RNG state":
        ck["shuffle_rng"] = {"bit_generator": "MT19937"}
    elif how == "epoch not a number":
        ck["epoch"] = "seven"
    elif how == "no history":
        del ck["history"]
    elif how == "no config":
        del ck["config"]
    elif how == "not a checkpoint":
        ck = {"model": ck["model"]}
    else:  # pragma: no cover
        raise AssertionError(how)
    return ck


DAMAGES = [
    "no weights",
    "weights for another network",
    "wrong weight dtype",
    "wrong input width",
    "no optimizer",
    "optimizer of two groups",
    "optimizer lr a string",
    "bad RNG state",
    "epoch not a number",
    "no history",
    "no config",
    "not a checkpoint",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_resume_from_a_mismatched_checkpoint_names_the_file(tmp_path, capsys, checkpoint, how):
    raw, _ = checkpoint
    path = tmp_path / "run.npz"
    path.write_bytes(raw)
    bad = tmp_path / "mismatched-run.npz"
    tg.save(_damage(tg.load(path), how), bad)
    code = main(["train", "--resume", str(bad), "--epochs", "3"])
    out, err = capsys.readouterr()
    assert code == 1 and "Epoch" not in out
    assert err.startswith("error: ") and str(bad) in err.splitlines()[0]
    assert "Traceback" not in err


@pytest.mark.parametrize("cut", [0, 100, 1000, -500, -1])
def test_resume_from_a_truncated_checkpoint_names_the_file(tmp_path, capsys, checkpoint, cut):
    raw, _ = checkpoint
    bad = tmp_path / "truncated-run.npz"
    bad.write_bytes(raw[:cut])
    code = main(["train", "--resume", str(bad), "--epochs", "3", "--save", str(bad)])
    _, err = capsys.readouterr()
    assert code == 1 and str(bad) in err and "not a readable .npz" in err
    assert bad.read_bytes() == raw[:cut]  # a failed resume does not overwrite the file


# --------------------------------------------------------------------------------- IDX files


def _idx(tmp_path: Path, gz: bool) -> tuple[Path, np.ndarray]:
    arr = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    return write_idx(tmp_path / ("images.idx.gz" if gz else "images.idx"), arr), arr


def _idx_or_named_error(path: Path):
    try:
        return read_idx_images(path)
    except DatasetError as e:
        assert str(path) in str(e), f"the error does not name the file: {e}"
        return None


@pytest.mark.parametrize("gz", [True, False])
def test_idx_truncated_at_every_length(tmp_path, gz):
    path, arr = _idx(tmp_path, gz)
    raw = path.read_bytes()
    for n in _prefix_lengths(len(raw)):
        path.write_bytes(raw[:n])
        assert _idx_or_named_error(path) is None, f"cut to {n} of {len(raw)} bytes was accepted"
    path.write_bytes(raw + b"\x07")  # one byte too many (gzip allows zero bytes as padding)
    assert _idx_or_named_error(path) is None
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_idx_images(path), arr)


@FIXTURE_OK
@given(pos=st.integers(0, 10**9), mask=st.integers(1, 255))
def test_gzipped_idx_with_a_flipped_byte(tmp_path, pos, mask):
    """gzip keeps a CRC-32 of the data: any flip gives the same images or a named error."""
    path, arr = _idx(tmp_path, gz=True)
    path.write_bytes(_flip(path.read_bytes(), pos, mask))
    got = _idx_or_named_error(path)
    assert got is None or np.array_equal(got, arr)


@FIXTURE_OK
@given(pos=st.integers(0, 15), mask=st.integers(1, 255))
def test_raw_idx_with_a_flipped_header_byte(tmp_path, pos, mask):
    """An uncompressed IDX file has no checksum, but its 16-byte header is fully checked:
    magic number, dimensions against the size.  (A flipped pixel is undetectable by any
    reader; downloads are protected by their SHA-256 sums.)"""
    path, arr = _idx(tmp_path, gz=False)
    path.write_bytes(_flip(path.read_bytes(), pos, mask))
    got = _idx_or_named_error(path)
    assert got is None or np.array_equal(got, arr)


@pytest.mark.parametrize(
    "dims,payload",
    [
        ((2**31, 2**31, 4), 0),  # 2^64 elements: an int64 product wraps round to 0
        ((2**32 - 1, 2**32 - 1, 2**32 - 1), 0),
        ((2**16, 2**16, 2**16), 16),
    ],
)
def test_idx_with_forged_huge_dimensions(tmp_path, dims, payload):
    path = tmp_path / "forged-images.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + struct.pack(">III", *dims) + bytes(payload))
    with pytest.raises(DatasetError, match="truncated") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- mnist.pkl.gz


def _book_parts(seed=0, n=(6, 3, 4), width=64):
    rng = np.random.default_rng(seed)
    return tuple(
        (rng.random((k, width), dtype=np.float32), rng.integers(0, 10, k).astype(np.int64))
        for k in n
    )


@pytest.fixture(scope="module")
def book_pickle() -> tuple[bytes, tuple]:
    parts = _book_parts()
    return pickle.dumps(parts, protocol=2), parts


def _pkl_or_named_error(path: Path):
    try:
        return load_mnist_pkl(path)
    except DatasetError as e:
        assert str(path) in str(e), f"the error does not name the file: {e}"
        return None


def _same_parts(got, parts) -> bool:
    return all(
        np.array_equal(gX, X) and np.array_equal(gy, y) for (gX, gy), (X, y) in zip(got, parts)
    )


def test_pickle_truncated_at_every_length(tmp_path, book_pickle):
    raw, parts = book_pickle
    path = tmp_path / "mnist.pkl.gz"
    gz = gzip.compress(raw, mtime=0)
    for n in _prefix_lengths(len(gz)):  # the gzip file cut short
        path.write_bytes(gz[:n])
        assert _pkl_or_named_error(path) is None
    for n in _prefix_lengths(len(raw))[::5]:  # a complete gzip of a cut pickle stream
        path.write_bytes(gzip.compress(raw[:n], mtime=0))
        assert _pkl_or_named_error(path) is None
    path.write_bytes(gz)
    assert _same_parts(load_mnist_pkl(path), parts)


@FIXTURE_OK
@given(pos=st.integers(0, 10**9), mask=st.integers(1, 255))
def test_pickle_gz_with_a_flipped_byte(tmp_path, book_pickle, pos, mask):
    raw, parts = book_pickle
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(_flip(gzip.compress(raw, mtime=0), pos, mask))
    got = _pkl_or_named_error(path)
    assert got is None or _same_parts(got, parts)


@FIXTURE_OK
@given(pos=st.integers(0, 10**9), mask=st.integers(1, 255), near_start=st.booleans())
def test_pickle_stream_with_a_flipped_byte_never_escapes(
    tmp_path, book_pickle, pos, mask, near_start
):
    """Inside the pickle stream there is no checksum: a flipped opcode, length or shape may
    give any error while unpickling; every one must come out as a DatasetError naming the file,
    and whatever loads must still pass the structure checks (images in [0, 1], labels 0..9)."""
    raw, _ = book_pickle
    opcodes = 120  # the opcodes and headers before the first array's data
    p = pos % opcodes if near_start else pos
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(_flip(raw, p, mask), mtime=0))
    got = _pkl_or_named_error(path)
    if got is not None:
        for X, y in got:
            assert X.dtype == np.float32 and X.ndim == 2 and ((X >= 0) & (X <= 1)).all()
            assert y.dtype == np.int64 and ((y >= 0) & (y <= 9)).all()


class _TamperedDtype:
    """Pickles as np.dtype(...) followed by dtype.__setstate__(state) (the BUILD opcode)."""

    def __init__(self, base: str, state: tuple):
        self.base, self.state = base, state

    def __reduce__(self):
        return (np.dtype, (self.base, False, True), self.state)


class _ArrayWith:
    def __init__(self, dtype, shape, data: bytes):
        self.dtype, self.shape, self.data = dtype, shape, data

    def __reduce__(self):
        rebuild = np.empty(0).__reduce__()[0]
        return rebuild, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data)


@pytest.mark.parametrize(
    "dtype",
    [
        # flags claiming the dtype holds Python objects (NPY_ITEM_REFCOUNT | NPY_ITEM_HASOBJECT)
        _TamperedDtype("V8", (3, "|", None, None, None, 8, 1, 0x01 | 0x04 | 0x08 | 0x10)),
        # a field 1 MiB past the end of an 8-byte item: reading it would read foreign memory
        _TamperedDtype("V8", (3, "|", None, ("a",), {"a": (np.dtype("f8"), 1 << 20)}, 8, 1, 0)),
    ],
    ids=["object-flags", "field-out-of-bounds"],
)
def test_pickle_with_a_tampered_dtype_is_refused(tmp_path, dtype):
    """The restricted unpickler admits np.dtype, and pickle's BUILD opcode then calls the
    dtype's __setstate__, which NumPy does not validate.  Such arrays are never returned (the
    array's own __setstate__ checks its dtype again, and refuses the object flags there)."""
    X = _ArrayWith(dtype, (2, 784), bytes(8 * 2 * 784))
    y = np.zeros(2, np.int64)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(((X, y), (X, y), (X, y)), protocol=2)))
    refused = "not a 2-D float array|object arrays are not allowed"
    with pytest.raises(DatasetError, match=refused) as info:
        load_mnist_pkl(path)
    assert str(path) in str(info.value)


def test_pickle_reader_does_not_follow_a_huge_length_prefix(tmp_path):
    """A BINBYTES opcode announcing 2^32-1 bytes in a short file: an error, not a 4 GB read."""
    forged = b"\x80\x03B\xff\xff\xff\xff" + b"x" * 10 + b"."
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(forged))
    with pytest.raises(DatasetError, match="mnist.pkl.gz.*truncated"):
        load_mnist_pkl(path)


def test_decompression_bomb_is_refused_without_exhausting_memory(tmp_path, monkeypatch):
    """A few kilobytes of gzip that expand far beyond any MNIST file are refused by size."""
    from tinygrad_sgd.data import mnist

    bomb = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(bomb, "wb") as g:  # 64 MiB of zeros compress to about 64 KiB
        g.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big"))  # a valid header: 3 bytes
        chunk = bytes(1 << 20)
        for _ in range(64):
            g.write(chunk)
    assert bomb.stat().st_size < 200_000
    monkeypatch.setattr(mnist, "MAX_DECOMPRESSED", 16 << 20)  # 16 MiB: keep the test small
    refused = r"train-images-idx3-ubyte\.gz.*more than 16777216 bytes"
    with pytest.raises(mnist.DatasetError, match=refused):
        mnist.read_idx(bomb)
    good = tmp_path / "small.gz"
    with gzip.open(good, "wb") as g:
        g.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    assert mnist.read_idx(good).tolist() == [1, 2, 3]


# ---- memory caps that a header or a pickle could bypass (issue 20, item 6) -------------------


def _peak_bytes(call):
    """Run ``call`` and return what it raised and the most memory it had traced at once
    (NumPy reports its array buffers to tracemalloc too)."""
    import tracemalloc

    tracemalloc.start()
    try:
        try:
            call()
        except Exception as e:  # noqa: BLE001  (returned to the test, which checks it)
            raised = e
        else:
            raised = None
        return raised, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_raw_idx_file_over_the_limit_is_refused_unread(tmp_path, monkeypatch):
    """An uncompressed 64 MiB IDX file (sparse: nothing on disk) with a header that matches it:
    refused from its size on disk, before a byte of data is read."""
    from tinygrad_sgd.data import mnist

    path = tmp_path / "train-images-idx3-ubyte"
    with open(path, "wb") as f:
        f.write(b"\x00\x00\x08\x03" + struct.pack(">III", 1 << 16, 32, 32))
        f.truncate(16 + (1 << 26))
    monkeypatch.setattr(mnist, "MAX_DECOMPRESSED", 1 << 20)
    raised, peak = _peak_bytes(lambda: mnist.read_idx(path))
    assert isinstance(raised, DatasetError), raised
    assert re.search(
        r"train-images-idx3-ubyte: 67108880 bytes, more than the limit of 1048576", str(raised)
    )
    assert peak < 1 << 20


def test_a_raw_idx_file_with_a_bad_magic_number_is_refused_unread(tmp_path):
    """32 MiB of zeros (sparse) under the default limit: the magic number is checked first."""
    path = tmp_path / "t10k-labels-idx1-ubyte"
    with open(path, "wb") as f:
        f.truncate(1 << 25)
    raised, peak = _peak_bytes(lambda: read_idx(path))
    assert isinstance(raised, DatasetError) and "bad IDX magic number 0x00000000" in str(raised)
    assert peak < 1 << 20


def test_a_gzip_idx_header_announcing_too_much_is_refused_before_decompressing(
    tmp_path, monkeypatch
):
    from tinygrad_sgd.data import mnist

    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as g:
        g.write(b"\x00\x00\x08\x03" + struct.pack(">III", 60000, 28, 28) + bytes(1 << 20))
    monkeypatch.setattr(mnist, "MAX_DECOMPRESSED", 1 << 20)
    raised, peak = _peak_bytes(lambda: mnist.read_idx(path))
    assert isinstance(raised, DatasetError), raised
    assert (
        "header says 60000x28x28 values of uint8 (47040000 bytes), more than the limit of "
        "1048576 bytes"
        in str(raised)
        and str(path) in str(raised)
    )
    assert peak < 1 << 20


class _Call:
    """Pickles as a call of ``fn(*args)``: what a tampered pickle can ask the unpickler for."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("rows", [1000, 10**6])
def test_a_pickle_asking_for_a_huge_ndarray_is_refused_before_allocating(
    tmp_path, monkeypatch, rows
):
    """The issue's 138-byte mnist.pkl.gz calls the admitted numpy.ndarray((10**6, 784), 'f4'):
    3.1 GB.  (rows=1000 under a 1 MiB limit shows it without the gigabytes.)"""
    from tinygrad_sgd.data import mnist

    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(_Call(np.ndarray, (rows, 784), "f4"), protocol=2)))
    assert path.stat().st_size < 200
    if rows == 1000:
        monkeypatch.setattr(mnist, "MAX_DECOMPRESSED", 1 << 20)
    raised, peak = _peak_bytes(lambda: load_mnist_pkl(path))
    assert isinstance(raised, DatasetError) and str(path) in str(raised), raised
    assert peak < 1 << 20


def test_a_pickle_reusing_one_string_for_many_arrays_is_capped(tmp_path, monkeypatch):
    """One 400 KB string in the pickle's memo, rebuilt into 40 arrays (NumPy copies a str's data):
    16 MB from a pickle of 400 KB, refused once the arrays pass the limit."""
    from tinygrad_sgd.data import mnist

    data = "\x00" * 400_000  # one object: the pickle memoizes it and refers to it 39 times
    arrays = [_ArrayWith(np.dtype("f4"), (100_000,), data) for _ in range(40)]
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(pickle.dumps(arrays, protocol=2)))
    monkeypatch.setattr(mnist, "MAX_DECOMPRESSED", 2 << 20)
    raised, peak = _peak_bytes(lambda: load_mnist_pkl(path))
    assert isinstance(raised, DatasetError), raised
    assert "more than the limit of 2097152 bytes" in str(raised) and str(path) in str(raised)
    assert peak < 4 << 20
