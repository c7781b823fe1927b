"""MNIST: readers for the IDX files and the book's ``mnist.pkl.gz``, a cache folder, and a
downloader that checks SHA-256 sums.

MNIST (LeCun, Cortes and Burges) has 60,000 training and 10,000 test images of handwritten
digits, 28 x 28 grey levels 0..255. As in the book, :func:`load_mnist` splits the 60,000 training
images into the first 50,000 for training and the last 10,000 for validation, and scales the pixels
to [0, 1], so each image is a vector x of 784 numbers and its label y an integer 0..9.

Where the files are looked for, in order:

1. ``data_dir``, when given: the four IDX files (gzipped ``*.gz`` or not), else ``mnist.pkl.gz``;
2. the cache folder, :func:`cache_dir` ``/ "mnist"``
   (``$XDG_CACHE_HOME/tinygrad_sgd/mnist``, else ``~/.cache/tinygrad_sgd/mnist``);
3. if ``download=True``, the IDX files are downloaded from public mirrors into ``data_dir`` (if
   given) or the cache folder; each must match its SHA-256 sum before it is kept (written to a
   temporary file beside it and renamed only when the sum matches).

Every reader validates what it reads (magic numbers, dimensions, sizes, matching counts, label
range) and names the file in its error, so that a damaged download never becomes a silent wrong
answer. Every reader is also bounded: at most :data:`MAX_DECOMPRESSED` bytes are read or
decompressed from a file and allocated for its arrays, and the sizes that an IDX header or a pickle
announces are checked against that limit before anything of that size is read or allocated.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import logging
import math
import os
import pickle
import stat
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._atomic import atomic_open, atomic_write

__all__ = [
    "DatasetError",
    "DownloadError",
    "MIRRORS",
    "MNISTNotFoundError",
    "MNIST_FILES",
    "RemoteFile",
    "cache_dir",
    "download",
    "find_mnist",
    "load_mnist",
    "load_mnist_pkl",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "write_idx",
]

Split = tuple[np.ndarray, np.ndarray]

# Which mirror is being tried and why one failed (INFO and WARNING); the command line prints them.
logger = logging.getLogger("tinygrad_sgd.data")


class DatasetError(ValueError):
    """A data file is damaged or is not what its name says (the message names the file)."""


class MNISTNotFoundError(FileNotFoundError):
    """MNIST is not on disk and may not (or could not) be downloaded."""


class DownloadError(OSError):
    """No mirror delivered a file with the expected SHA-256 sum."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to download: its name on the mirrors, SHA-256 sum and size in bytes."""

    name: str
    sha256: str
    size: int


#: The four archives as published, with their SHA-256 sums and sizes in bytes.
MNIST_FILES: tuple[RemoteFile, ...] = (
    RemoteFile(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
    ),
    RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
    ),
    RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
    ),
    RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
    ),
)

#: Public mirrors of the IDX archives, tried in this order.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

PKL_NAME = "mnist.pkl.gz"
VALIDATION_SIZE = 10_000
N_CLASSES = 10

# ------------------------------------------------------------------------------------ IDX files

# IDX type code (third byte of the magic number) -> big-endian NumPy dtype.
_IDX_TYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (count)


# The most a data file may decompress to, and the most its arrays may take. MNIST's largest file
# is 47 MB uncompressed and the book's mnist.pkl.gz about 220 MB; anything beyond this is not MNIST
# (a decompression bomb, a few kilobytes that expand to gigabytes, or a header or pickle that
# announces a huge array) and is refused before it exhausts memory.
MAX_DECOMPRESSED = 1 << 30
_PIECE = 1 << 20  # how much _DataFile reads at a time


class _DataFile:
    """A data file opened for reading, decompressed on the fly if it starts with the gzip
    signature (whatever its name); no read goes past ``limit`` bytes in all (``DatasetError``).
    ``stored`` is the size on disk; an uncompressed file larger than ``limit`` is refused at once.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit, self.done = path, limit, 0
        try:
            self._file = open(path, "rb")
        except OSError as e:
            raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from e
        try:
            self.stored = os.fstat(self._file.fileno()).st_size
            self.gzipped = self._read(self._file.read, 2) == b"\x1f\x8b"
            self._file.seek(0)
            if self.gzipped:
                self._stream: Any = gzip.GzipFile(fileobj=self._file)
            elif path.suffix == ".gz":
                raise DatasetError(f"{path}: named .gz but is not a gzip file")
            elif self.stored > limit:
                raise DatasetError(
                    f"{path}: {self.stored} bytes, more than the limit of {limit} bytes for a "
                    "data file (far more than any MNIST file); refused"
                )
            else:
                self._stream = self._file
        except BaseException:
            self._file.close()
            raise

    def _read(self, read: Callable[[int], bytes], n: int) -> bytes:
        try:
            return read(n)
        except (OSError, EOFError, zlib.error) as e:  # a garbled deflate stream: zlib.error
            if getattr(self, "gzipped", False):
                raise DatasetError(f"{self.path}: damaged gzip data ({e})") from e
            raise DatasetError(f"{self.path}: cannot read: {e}") from e

    def _count(self, n: int) -> None:
        self.done += n
        if self.done > self.limit:
            raise DatasetError(
                f"{self.path}: decompresses to more than {self.limit} bytes, far more than any "
                "MNIST file (a damaged file or a decompression bomb); refused"
            )

    def take(self, n: int = -1) -> bytearray:
        """Up to ``n`` more bytes (the rest when ``n < 0``), fewer only at the end; refuses to go
        past the limit.  Read in pieces: asked for n bytes at once, a gzip stream would first
        allocate n bytes, however few the file holds."""
        left = self.limit + 1 - self.done
        want = left if n < 0 else min(n, left)
        data = bytearray()
        while len(data) < want:
            piece = self._read(self._stream.read, min(want - len(data), _PIECE))
            if not piece:
                break
            data += piece
        self._count(len(data))
        return data

    def read(self, n: int = -1) -> bytes:
        """:meth:`take` as ``bytes``, for the unpickler (a file-like object)."""
        return bytes(self.take(n))

    def readline(self) -> bytes:
        line = self._read(self._stream.readline, self.limit + 1 - self.done)
        self._count(len(line))
        return line

    def drain(self) -> None:
        """Read to the end, keeping nothing: a gzip stream checks its CRC there."""
        while self.take(_PIECE):
            pass

    def __enter__(self) -> _DataFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()
        self._file.close()


def _parse_idx(p: Path) -> tuple[int, np.ndarray]:
    """(magic number, array) of the IDX file ``p``; see :func:`read_idx`.

    The header is read and checked first: the size it announces is compared with the limit
    (and, for an uncompressed file, with its size on disk) before the data is read.
    """
    with _DataFile(p, MAX_DECOMPRESSED) as f:
        head = f.take(4)
        if len(head) < 4:
            raise DatasetError(f"{p}: too short for an IDX header ({len(head)} bytes)")
        magic = int.from_bytes(head, "big")
        if head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES or head[3] == 0:
            raise DatasetError(f"{p}: bad IDX magic number 0x{magic:08x}")
        ndim = head[3]
        sizes = f.take(4 * ndim)
        if len(sizes) < 4 * ndim:
            raise DatasetError(f"{p}: header announces {ndim} dimensions but the file ends first")
        header = 4 + 4 * ndim
        dims = tuple(int.from_bytes(sizes[4 * i : 4 * i + 4], "big") for i in range(ndim))
        dtype = np.dtype(_IDX_TYPES[head[2]])
        # NOTE: exact Python ints: an int64 product of forged dimensions can wrap round to the
        # size of the payload (2^31 x 2^31 x 4 = 2^64 -> 0).
        expected = math.prod(dims) * dtype.itemsize
        said = f"header says {'x'.join(map(str, dims))} values of {dtype.name} ({expected} bytes)"
        if not f.gzipped and f.stored - header != expected:
            actual = f.stored - header  # known from the size on disk: nothing more to read
        elif expected > f.limit - header:
            raise DatasetError(
                f"{p}: {said}, more than the limit of {f.limit} bytes for a data file; refused"
            )
        else:
            payload = f.take(expected)
            actual = len(payload) + len(f.take(f.limit))
    if actual != expected:
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DatasetError(f"{p}: {what}: {said} but the file holds {actual} bytes of data")
    arr = np.frombuffer(payload, dtype=dtype).reshape(dims)
    return magic, arr.astype(dtype.newbyteorder("="), copy=False)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its dtype and dimensions.

    IDX layout: a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian
    uint32 sizes, then the values in C order. The payload must have exactly the size the header
    announces; otherwise :class:`DatasetError` says by how much it differs.
    """
    return _parse_idx(Path(path))[1]


def read_idx_images(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an MNIST image file: magic 2051 (``0x00000803``), shape ``(n, rows, cols)``, uint8."""
    p = Path(path)
    magic, arr = _parse_idx(p)
    if magic != IMAGES_MAGIC:
        raise DatasetError(
            f"{p}: magic number 0x{magic:08x} is not that of an MNIST image file (0x00000803)"
            + (" -- is this a label file?" if magic == LABELS_MAGIC else "")
        )
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise DatasetError(f"{p}: images of size {arr.shape[1]}x{arr.shape[2]}")
    return arr


def read_idx_labels(path: str | os.PathLike[str], n_classes: int = N_CLASSES) -> np.ndarray:
    """Read an MNIST label file: magic 2049 (``0x00000801``), shape ``(n,)``, values 0..9."""
    p = Path(path)
    magic, arr = _parse_idx(p)
    if magic != LABELS_MAGIC:
        raise DatasetError(
            f"{p}: magic number 0x{magic:08x} is not that of an MNIST label file (0x00000801)"
            + (" -- is this an image file?" if magic == IMAGES_MAGIC else "")
        )
    if arr.size and int(arr.max()) >= n_classes:
        bad = int(np.argmax(arr >= n_classes))
        raise DatasetError(
            f"{p}: label {int(arr[bad])} at index {bad} is outside 0..{n_classes - 1}"
        )
    return arr


def write_idx(path: str | os.PathLike[str], array: Any) -> Path:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``), atomically.

    The inverse of :func:`read_idx`: the magic number records the dtype (uint8, int8, int16,
    int32, float32 or float64) and the number of dimensions; sizes and values are big-endian.
    Useful to make small MNIST-shaped files for tests and examples.
    """
    p = Path(path)
    arr = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX cannot store dtype {arr.dtype}")
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: need 1 to 255 dimensions, got {arr.ndim}")
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()
    if p.suffix == ".gz":
        payload = gzip.compress(payload, mtime=0)
    atomic_write(p, payload)
    return p


def _read_pair(images: Path, labels: Path, dtype: Any) -> Split:
    X = read_idx_images(images)
    y = read_idx_labels(labels)
    if len(X) != len(y):
        raise DatasetError(f"{images} holds {len(X)} images but {labels} holds {len(y)} labels")
    n, rows, cols = X.shape
    X = X.reshape(n, rows * cols).astype(dtype)
    X /= dtype.type(255)
    return X, y.astype(np.int64)


# ------------------------------------------------------------------------- the book's pickle

_ndarray_reduce = np.empty(0).__reduce__()
_RECONSTRUCT: Any = _ndarray_reduce[0]  # numpy's own _reconstruct, wherever this version keeps it


def _safe_dtype(*args: Any) -> np.dtype[Any]:
    dt: np.dtype[Any] = np.dtype(*args)
    if dt.hasobject:
        raise pickle.UnpicklingError("object arrays are not allowed in an MNIST pickle")
    return dt


class _Budget:
    """The bytes that the arrays (and byte strings) built while unpickling may take in all: a
    pickle a few bytes long can ask for ``ndarray((10**6, 784))``, or rebuild one large string
    into many arrays, so every allocation is charged here first."""

    def __init__(self, limit: int) -> None:
        self.limit = self.left = limit

    def charge(self, shape: Any, dtype: Any) -> None:
        dims = shape if isinstance(shape, (tuple, list)) else (shape,)
        if not all(isinstance(d, (int, np.integer)) and d >= 0 for d in dims):
            raise pickle.UnpicklingError(f"bad array shape {shape!r}")
        nbytes = math.prod(int(d) for d in dims) * _safe_dtype(dtype).itemsize
        if nbytes > self.left:
            raise pickle.UnpicklingError(
                f"its arrays would take more than the limit of {self.limit} bytes, far more than "
                "MNIST's; refused"
            )
        self.left -= nbytes


class _BudgetedArray(np.ndarray):
    """``numpy.ndarray`` as an MNIST pickle gets it: only ``_reconstruct`` may create one (never
    a direct call), and ``__setstate__``, which fills it, charges the load's budget first."""

    budget: _Budget  # set on the subclass made for each load

    def __new__(cls, *args: Any, **kwargs: Any) -> _BudgetedArray:
        raise pickle.UnpicklingError("calling numpy.ndarray directly is not allowed")

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError("bad array state")
        type(self).budget.charge(state[-4], state[-3])  # (version,) shape, dtype, fortran, data
        super().__setstate__(state)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """How a Python 3 pickle of protocol < 3 stores bytes: ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
    """How protocol-5 pickles spell an array: NumPy's ``_frombuffer`` with these checks."""
    if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
        raise pickle.UnpicklingError("array data is not a buffer")
    dt = _safe_dtype(dtype)
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"bad array order {order!r}")
    flat = np.frombuffer(buf, dtype=dt)  # type: ignore[arg-type]
    array: np.ndarray = flat.reshape(tuple(shape), order="F" if order == "F" else "C").copy()
    return array


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build NumPy arrays, tuples, lists and numbers, and nothing else.

    A pickle names the functions that rebuild its objects, and an ordinary unpickler calls
    whatever it is told to (``os.system`` included). Here :meth:`find_class` admits only NumPy's
    array reconstructors, ``ndarray`` (as their argument), ``dtype`` (refusing object dtypes) and
    a latin-1-only stand-in for ``_codecs.encode`` (how protocol-2 pickles spell bytes); every
    other name raises ``UnpicklingError`` before anything is called. Every array and byte string
    they build is charged to a budget of ``limit`` bytes first (see :class:`_Budget`).
    """

    def __init__(self, file: Any, limit: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        budget = _Budget(limit)
        array_type = type("ndarray", (_BudgetedArray,), {"budget": budget})

        def reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
            if subtype is not array_type:
                raise pickle.UnpicklingError("_reconstruct may only build numpy.ndarray")
            budget.charge(shape, dtype)
            array: np.ndarray = _RECONSTRUCT(subtype, shape, dtype)
            return array

        def frombuffer(buf: Any, dtype: Any, shape: Any, order: str = "C") -> np.ndarray:
            budget.charge(shape, dtype)
            return _safe_frombuffer(buf, dtype, shape, order)

        def latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
            budget.charge(len(text) if isinstance(text, str) else 0, np.uint8)
            return _latin1_bytes(text, encoding)

        self._allowed: dict[tuple[str, str], Any] = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): array_type,
            ("numpy", "dtype"): _safe_dtype,
            ("numpy.core.numeric", "_frombuffer"): frombuffer,
            ("numpy._core.numeric", "_frombuffer"): frombuffer,
            ("_codecs", "encode"): latin1_bytes,
        }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only NumPy arrays are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent references are not allowed")


def load_mnist_pkl(
    path: str | os.PathLike[str], dtype: Any = np.float32
) -> tuple[Split, Split, Split]:
    """Read the book's ``mnist.pkl.gz``: ``(training, validation, test)``, each ``(X, y)``.

    The file (from the book's repository) is a gzipped Python 2 pickle of three pairs: images
    as float32 rows of 784 values in [0, 1], labels as integers. It is read with an unpickler that
    only rebuilds NumPy arrays, so a tampered file cannot run code; its structure is then checked.
    """
    p = Path(path)
    try:
        # streamed from the (gzip) file: every read and every array is counted against the limit
        with _DataFile(p, MAX_DECOMPRESSED) as f:
            obj = _ArrayOnlyUnpickler(f, MAX_DECOMPRESSED, encoding="latin1").load()
            f.drain()
    except DatasetError:
        raise
    except pickle.UnpicklingError as e:
        raise DatasetError(f"{p}: not an MNIST pickle: {e}") from e
    except Exception as e:  # truncated or garbled streams raise many types
        raise DatasetError(f"{p}: damaged pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, (tuple, list)) or len(obj) != 3:
        raise DatasetError(f"{p}: expected a tuple (training, validation, test)")
    names = ("training", "validation", "test")
    out: list[Split] = []
    width = None
    for name, part in zip(names, obj):
        if not isinstance(part, (tuple, list)) or len(part) != 2:
            raise DatasetError(f"{p}: the {name} part is not a pair (images, labels)")
        X, y = (a.view(np.ndarray) if isinstance(a, np.ndarray) else a for a in part)
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.dtype.kind != "f":
            raise DatasetError(f"{p}: the {name} images are not a 2-D float array")
        if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iu":
            raise DatasetError(f"{p}: the {name} labels are not a 1-D integer array")
        if len(X) != len(y):
            raise DatasetError(f"{p}: {len(X)} {name} images but {len(y)} labels")
        if width is not None and X.shape[1] != width:
            raise DatasetError(f"{p}: the {name} images have {X.shape[1]} pixels, not {width}")
        width = X.shape[1]
        if X.size and not (np.isfinite(X).all() and X.min() >= 0.0 and X.max() <= 1.0):
            raise DatasetError(f"{p}: the {name} images have values outside [0, 1]")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise DatasetError(f"{p}: the {name} labels are outside 0..{N_CLASSES - 1}")
        out.append((X.astype(dtype), y.astype(np.int64)))
    return out[0], out[1], out[2]


# ----------------------------------------------------------------------------- cache, download


def cache_dir() -> Path:
    """The cache folder: ``$XDG_CACHE_HOME/tinygrad_sgd``, else ``~/.cache/tinygrad_sgd``."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "tinygrad_sgd"


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return sys.stderr.isatty()


def _fmt_mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


MIN_RATE = 1024.0  # bytes per second, on average, that a mirror must keep up (see download)


def _copy_verified(
    response: io.BufferedIOBase,
    out: BinaryIO,
    remote: RemoteFile,
    label: str,
    show: bool,
    grace: float = float("inf"),
    min_rate: float = 0.0,
) -> None:
    """Stream ``response`` into ``out``, hashing as it goes; raise ValueError on a bad file, or
    when after ``grace`` seconds fewer than ``min_rate`` bytes per second have arrived."""
    digest = hashlib.sha256()
    done = 0
    last = 0.0
    start = time.monotonic()
    limit = remote.size if remote.size > 0 else None
    while True:
        # read1: whatever has arrived (up to 64 KiB), so the rate check below runs even when a
        # mirror trickles; read() would wait for the full 64 KiB.
        chunk = response.read1(1 << 16)
        if not chunk:
            break
        done += len(chunk)
        if limit is not None and done > limit:
            raise ValueError(f"more than the expected {remote.size} bytes")
        digest.update(chunk)
        out.write(chunk)
        now = time.monotonic()
        if now - start > grace and done < min_rate * (now - start):
            raise ValueError(
                f"too slow: {done} bytes in {now - start:.1f} s, under {min_rate:.0f} bytes/s"
            )
        if show and (now - last > 0.1 or done == limit):
            last = now
            pct = f"{100 * done / limit:3.0f}% " if limit else ""
            total = f" / {_fmt_mb(limit)}" if limit else ""
            print(f"\r  {label}: {pct}{_fmt_mb(done)}{total}", end="", file=sys.stderr, flush=True)
    if show:
        print(file=sys.stderr, flush=True)
    if limit is not None and done != limit:
        raise ValueError(f"got {done} bytes, expected {remote.size}")
    if digest.hexdigest() != remote.sha256:
        raise ValueError(f"SHA-256 {digest.hexdigest()} does not match {remote.sha256}")


def download(
    remote: RemoteFile,
    dest_dir: str | os.PathLike[str],
    mirrors: Sequence[str] = MIRRORS,
    timeout: float = 30.0,
    progress: bool | None = None,
    min_rate: float = MIN_RATE,
) -> Path:
    """Download ``remote`` into ``dest_dir`` from the first mirror that delivers it intact.

    Each mirror's copy is streamed into a temporary file in ``dest_dir`` while its SHA-256 sum is
    computed; only a copy of the right size and sum is renamed to its final name (``os.replace``,
    atomic), so a partial or wrong file is never left behind. A mirror that fails (refused
    connection, HTTP error, ``timeout`` seconds without data, fewer than ``min_rate`` bytes per
    second on average once ``timeout`` seconds have passed (a mirror that trickles a byte now and
    then never times out), wrong sum) is reported (through the logger ``tinygrad_sgd.data``,
    as is each mirror tried) and the next is tried. Raises
    :class:`DownloadError` listing every mirror's failure if none succeeds.
    A temporary file left by a killed download is deleted first (see
    :func:`tinygrad_sgd._atomic.remove_stale` for when a temporary file counts as left behind).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / remote.name
    show = _progress_enabled(progress)
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + remote.name
        try:
            with atomic_open(target) as out:
                logger.info("Downloading %s", url)
                req = urllib.request.Request(url, headers={"User-Agent": "tinygrad_sgd"})
                with urllib.request.urlopen(req, timeout=timeout) as response:
                    _copy_verified(response, out, remote, remote.name, show, timeout, min_rate)
            return target
        # URLError, HTTPError and timeouts are OSErrors; a garbled reply (not HTTP, a broken
        # chunked body) raises http.client.HTTPException: a bad mirror too, not a crash.
        except (OSError, ValueError, http.client.HTTPException) as e:
            if isinstance(e, urllib.error.HTTPError):
                reason: object = f"HTTP {e.code} {e.reason}"
            else:
                reason = getattr(e, "reason", None) or e
            failures.append(f"{url}: {reason}")
            logger.warning("  failed: %s", reason)
    raise DownloadError(
        f"could not download {remote.name}; every mirror failed:\n  "
        + "\n  ".join(failures or ["(no mirrors given)"])
    )


# ------------------------------------------------------------------------------------ loading


def _is_file(path: Path) -> bool:
    """Whether ``path`` is a file (following symlinks); ``DatasetError`` naming it when that
    cannot be told, e.g. in a folder this process may not search (not "missing", which would
    start a download)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as e:
        raise DatasetError(f"{path}: cannot read: {e.strerror or e}") from e
    return stat.S_ISREG(mode)


def _idx_path(folder: Path, name: str) -> Path | None:
    """``name`` (``*.gz``) or its uncompressed twin in ``folder``, if either exists."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if _is_file(candidate):
            return candidate
    return None


def find_mnist(
    folder: str | os.PathLike[str], files: Sequence[RemoteFile] = MNIST_FILES
) -> list[Path] | Path | None:
    """What MNIST ``folder`` holds: the four IDX paths (train images, train labels, test images,
    test labels), else the path of the book's pickle, else ``None``."""
    f = Path(folder)
    paths = [_idx_path(f, r.name) for r in files]
    if all(p is not None for p in paths):
        return [p for p in paths if p is not None]
    pkl = f / PKL_NAME
    return pkl if _is_file(pkl) else None


def _placement_help(folders: Sequence[Path], files: Sequence[RemoteFile]) -> str:
    names = ", ".join(r.name for r in files)
    where = " or ".join(str(f) for f in folders)
    return (
        f"Put the four MNIST files {names} (gzipped, or uncompressed without .gz), or the book's "
        f"{PKL_NAME}, in {where}; or pass data_dir= (--data-dir on the command line) "
        "pointing to the folder that holds them."
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    validation_size: int = VALIDATION_SIZE,
    dtype: Any = np.float32,
    mirrors: Sequence[str] = MIRRORS,
    files: Sequence[RemoteFile] = MNIST_FILES,
    timeout: float = 30.0,
    progress: bool | None = None,
) -> tuple[Split, Split, Split]:
    """MNIST as ``(train, validation, test)``, each a pair ``(X, y)``.

    ``X`` has shape ``(n, 784)`` with values in [0, 1] (``dtype``, float32 by default) and ``y``
    integer labels 0..9 (int64). From the IDX files, the first ``60000 - validation_size`` training
    images are ``train`` and the last ``validation_size`` (10,000) are ``validation``, as in the
    book's ``mnist.pkl.gz``; with the pickle, its own three parts are returned.

    Looks in ``data_dir`` (if given), then in the cache folder (:func:`cache_dir` / ``mnist``);
    if neither holds the files and ``download`` is true, downloads the IDX files (checking their
    SHA-256 sums) into ``data_dir`` or the cache folder. ``mirrors``, ``files``, ``timeout`` and
    ``progress`` configure that download (the defaults are the public MNIST mirrors). Raises
    :class:`MNISTNotFoundError` naming the files and where to put them when nothing is found and
    downloading is off; :class:`DownloadError` when every mirror fails; :class:`DatasetError` when
    a file is damaged.
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"load_mnist: dtype must be a float dtype, got {dt}")
    if not isinstance(validation_size, (int, np.integer)) or validation_size < 0:
        raise ValueError(f"load_mnist: validation_size must be an int >= 0, got {validation_size}")
    cache = cache_dir() / "mnist"
    folders = ([Path(data_dir)] if data_dir is not None else []) + [cache]
    if data_dir is not None and not Path(data_dir).is_dir() and not download:
        raise MNISTNotFoundError(
            f"data_dir {data_dir} is not a folder. " + _placement_help([Path(data_dir)], files)
        )

    found: list[Path] | Path | None = None
    for folder in folders:
        found = find_mnist(folder, files)
        if found is not None:
            break
    if found is None:
        if not download:
            raise MNISTNotFoundError(
                "MNIST not found, and downloading is off (download=False, --no-download). "
                + _placement_help(folders, files)
            )
        target = folders[0]
        try:
            found = [
                _idx_path(target, r.name) or _download(r, target, mirrors, timeout, progress)
                for r in files
            ]
        except DownloadError as e:
            raise DownloadError(f"{e}\n{_placement_help(folders, files)}") from e
    if isinstance(found, Path):
        return load_mnist_pkl(found, dtype=dt)

    X_train, y_train = _read_pair(found[0], found[1], dt)
    X_test, y_test = _read_pair(found[2], found[3], dt)
    if X_train.shape[1] != X_test.shape[1]:
        raise DatasetError(
            f"{found[0]} has images of {X_train.shape[1]} pixels "
            f"but {found[2]} of {X_test.shape[1]}"
        )
    if validation_size >= len(X_train):
        raise DatasetError(
            f"{found[0]} holds {len(X_train)} images, "
            f"too few to keep {validation_size} for validation"
        )
    cut = len(X_train) - validation_size
    train = (X_train[:cut], y_train[:cut])
    validation = (X_train[cut:], y_train[cut:])
    return train, validation, (X_test, y_test)


_download = download  # load_mnist's parameter ``download`` shadows the function
