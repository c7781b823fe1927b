"""``save`` / ``load``: checkpoints as ``.npz`` files, never pickle, written atomically.

What can be saved: a (nested) dict whose keys are ``str`` or ``int`` and whose values are
Tensors, NumPy arrays or scalars, Python ``int``/``float``/``bool``/``str``/``None``, and lists,
tuples and dicts of these; for example ``{"model": net.state_dict(), "optimizer":
opt.state_dict(), "epoch": 7}``.  ``load`` returns the same structure with the same types
(Tensors come back as Tensors with their ``requires_grad``, arrays as arrays, tuples as tuples).

File layout (a plain ``.npz`` that ``numpy.load(path)`` can read without pickle):

* each array is an entry named by its path of keys joined with ``/``
  (``"model/0.weight"``; for a flat ``state_dict`` just ``"0.weight"``) when every key is plain
  (letters, digits, ``_ . + -``, not starting with ``.``) and the name does not end in ``.npy``;
  otherwise (a key with a space, a NUL, ``/``, non-ASCII text, ...) by a generated name ``~<n>``;
* one more entry, ``"__tinygrad_sgd__"``, holds the structure as JSON text (a 0-d unicode array):
  how to nest the entries back, every key exactly as given, and every non-array value.

So any ``str`` key round-trips exactly: the keys live in the JSON, and the entry names are only
labels chosen to survive the zip format (which cuts a name at a NUL) and NumPy's npz lookup (which
takes ``"w.npy"`` for the entry ``"w"``).  Containers may nest at most :data:`MAX_NESTING` deep.

Reading is bounded: ``load`` refuses a file whose entries would decompress to more than
``max_bytes`` (default :data:`MAX_LOAD_BYTES`), an entry whose array header announces more data
than the entry holds, and a structure nested deeper than ``save`` writes, each with a
``ValueError`` naming the file, before allocating anything of that size.

A ``.npz`` written by other tools (no structure entry) loads as a flat dict of Tensors.  The file
is written to a temporary file in the same folder and then renamed over ``path``
(``os.replace``), so an interrupted or failed save never damages an existing checkpoint.
``path`` is used exactly as given (no ``.npz`` suffix is added).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from typing import Any, BinaryIO

import numpy as np

from ._atomic import atomic_open, file_kind
from .tensor import Tensor

__all__ = ["load", "save"]

_META = "__tinygrad_sgd__"
_FORMAT = 1
# names that np.savez would take as its own arguments, and the structure entry
_RESERVED = frozenset({_META, "file", "allow_pickle"})
# A key that may appear in an entry name as it is; any other key gives a generated name.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")

# The most dicts/lists/tuples nested in one another that save writes and load reads back; in
# the JSON each level is three deep (node, items, [key, node]), plus the header object.
MAX_NESTING = 100
_MAX_JSON_DEPTH = 3 * MAX_NESTING + 3
# The most bytes that load lets a file's entries decompress to, unless told otherwise: far more
# than any network of the book (a 2 MB .npz of zeros could otherwise expand to gigabytes).
MAX_LOAD_BYTES = 1 << 30


def _entry_name(path: list[str], arrays: dict[str, np.ndarray]) -> str:
    """A new, unique entry name for the array at ``path``: the keys joined by ``/`` when they are
    all plain and the result cannot be mistaken by NumPy's npz lookup, else ``~<n>``."""
    name = "/".join(path)
    if not path:
        name = "data"
    elif not all(_PLAIN_KEY.fullmatch(k) for k in path) or name.endswith(".npy"):
        name = f"~{len(arrays)}"
    base, k = name, 1
    while name in arrays or name in _RESERVED:
        name, k = f"{base}~{k}", k + 1
    return name


def _encode(obj: Any, path: list[str], arrays: dict[str, np.ndarray]) -> Any:
    """The JSON description of ``obj``; arrays are moved into ``arrays`` under unique names."""
    where = "/".join(path) or "<root>"
    if isinstance(obj, Tensor) or isinstance(obj, np.ndarray):
        arr = obj.data if isinstance(obj, Tensor) else obj
        if arr.dtype.kind not in "biufc":
            raise TypeError(
                f"save: the array at {where!r} has dtype {arr.dtype}; only bool, integer, float "
                "and complex arrays can be saved (object arrays would need pickle)"
            )
        name = _entry_name(path, arrays)
        arrays[name] = arr
        if isinstance(obj, Tensor):
            return {"t": "tensor", "entry": name, "requires_grad": bool(obj.requires_grad)}
        return {"t": "ndarray", "entry": name}
    if isinstance(obj, np.generic):
        return _encode(np.asarray(obj), path, arrays) | {"t": "npscalar"}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"t": "value", "v": obj}
    if isinstance(obj, (dict, list, tuple)) and len(path) >= MAX_NESTING:
        raise ValueError(
            f"save: containers nested more than {MAX_NESTING} deep at {where[:200]!r} "
            "(a structure that contains itself?)"
        )
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(
                    f"save: dict keys must be str or int, got {type(key).__name__} {key!r} "
                    f"at {where!r}"
                )
            items.append([key, _encode(value, path + [str(key)], arrays)])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {
            "t": kind,
            "items": [_encode(v, path + [str(i)], arrays) for i, v in enumerate(obj)],
        }
    raise TypeError(
        f"save: cannot save a {type(obj).__name__} at {where!r}; supported are Tensors, "
        "arrays, numbers, str, None, and dicts/lists/tuples of them"
    )


def _decode(node: Any, arrays: Any, file: str) -> Any:
    try:
        kind = node["t"]
        if kind == "tensor":
            arr = arrays[node["entry"]]
            t = Tensor._wrap(arr)
            if node.get("requires_grad"):
                t.requires_grad_(True)
            return t
        if kind == "ndarray":
            return arrays[node["entry"]]
        if kind == "npscalar":
            return arrays[node["entry"]][()]
        if kind == "value":
            return node["v"]
        if kind == "dict":
            return {key: _decode(v, arrays, file) for key, v in node["items"]}
        if kind == "list":
            return [_decode(v, arrays, file) for v in node["items"]]
        if kind == "tuple":
            return tuple(_decode(v, arrays, file) for v in node["items"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"load: {file!r} has a damaged structure entry ({e!r})") from None
    raise ValueError(f"load: {file!r} has an unknown structure node {kind!r}")


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` (e.g. a ``state_dict``, or a dict of several) to ``path`` as ``.npz``.

    Written atomically: a temporary file in the same folder is filled, flushed to disk and then
    renamed over ``path``; if anything fails the old file is untouched and the temporary file is
    removed.  A symlink is written through (its target is replaced); a path that is a directory,
    device or FIFO is refused (see :mod:`tinygrad_sgd._atomic`).  Raises ``TypeError`` (naming
    the key) for values that cannot be saved without pickle.
    """
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(obj, [], arrays)
    meta = json.dumps({"format": _FORMAT, "root": structure}, allow_nan=True)
    with atomic_open(path) as f:
        savez: Any = np.savez
        savez(f, **{_META: np.array(meta)}, **arrays)


class _Refused(ValueError):
    """A file that load refuses for a reason of its own (not a damaged zip)."""


def _check_entry_sizes(source: str, npz: Any, max_bytes: int) -> None:
    """Refuse, before reading any array: entries that decompress to more than ``max_bytes`` in
    all (the sizes in the zip's directory, which bound what zipfile will ever return), and an
    array header that announces more bytes than its entry holds (NumPy would allocate them)."""
    members = npz.zip.infolist()
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise _Refused(
            f"load: {source!r} would decompress to {total} bytes, more than the limit of "
            f"{max_bytes} bytes (a damaged file or a decompression bomb); pass max_bytes= to "
            "load a larger checkpoint you trust"
        )
    for m in members:
        with npz.zip.open(m) as f:
            try:
                version = np.lib.format.read_magic(f)
            except ValueError:  # not an array: np.load returns its bytes, at most file_size
                continue
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:  # a version NumPy added later: np.load checks it
                continue
            announced = math.prod(shape) * dtype.itemsize
            if announced > m.file_size:
                raise _Refused(
                    f"load: {source!r}: the entry {m.filename!r} announces an array of shape "
                    f"{shape} ({announced} bytes) but holds {m.file_size} bytes (damaged)"
                )


def _json_depth(text: str) -> int:
    """How deep the arrays and objects of the JSON ``text`` nest (0 for a scalar)."""
    brackets = re.findall(r"[\[\]{}]", re.sub(r'"(?:[^"\\]+|\\.)*"', "", text))
    depth = deepest = 0
    for b in brackets:
        depth += 1 if b in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _open_regular(source: str) -> BinaryIO:
    """``source`` opened for reading; a directory, FIFO, device or socket is refused with a
    ``ValueError`` naming it (opened without blocking, so a FIFO with no writer cannot hang)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such checkpoint file: {source!r}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"load: {source!r} is {file_kind(mode)}, not a checkpoint file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Any:
    """Read what :func:`save` wrote (never unpickles anything).

    Raises ``FileNotFoundError`` for a missing file, ``OSError`` when it cannot be opened
    (``PermissionError``, ...), and ``ValueError`` naming the file when it is not a regular file
    (a directory, FIFO, device), not a readable ``.npz`` (truncated, damaged, or holding pickled
    objects), when its entries would decompress to more than ``max_bytes`` bytes (default
    :data:`MAX_LOAD_BYTES`, 1 GiB), or when its structure nests deeper than :data:`MAX_NESTING`
    containers.
    """
    source = os.fspath(path)
    limit = MAX_LOAD_BYTES if max_bytes is None else max_bytes
    file = _open_regular(source)
    try:
        with file, np.load(file, allow_pickle=False) as npz:
            _check_entry_sizes(source, npz, limit)
            # By the zip member's own name: npz[name] would read the member "w.npy" for the entry
            # "w.npy" when an entry "w" exists (files written before entry names were checked).
            arrays = {
                name.removesuffix(".npy"): npz[name]
                for name in (m.filename for m in npz.zip.infolist())
            }
    except _Refused:
        raise
    # NOTE: damage surfaces as many exception types inside zipfile and NumPy: BadZipFile,
    # EOFError, ValueError, but also NotImplementedError (a garbled compression method or
    # version), RuntimeError (a flipped 'encrypted' flag) and tokenize errors in a garbled
    # .npy header. Any of them means the file cannot be read as a checkpoint.
    except Exception as e:
        raise ValueError(
            f"load: {source!r} is not a readable .npz checkpoint (damaged, truncated or "
            f"containing pickled objects): {e}"
        ) from None
    if _META not in arrays:
        return {name: Tensor._wrap(arr) for name, arr in arrays.items()}
    meta_arr = arrays.pop(_META)
    try:
        text = str(meta_arr[()])
        depth = _json_depth(text)
        if depth > _MAX_JSON_DEPTH:
            raise _Refused(
                f"load: {source!r} has a structure entry nested {depth} deep, more than "
                f"{_MAX_JSON_DEPTH} (save writes at most {MAX_NESTING} nested containers)"
            )
        meta = json.loads(text)
        root = meta["root"]
        fmt = meta.get("format")
    except _Refused:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"load: {source!r} has a damaged structure entry ({e})") from None
    if fmt != _FORMAT:
        raise ValueError(f"load: {source!r} uses checkpoint format {fmt!r}; expected {_FORMAT}")
    return _decode(root, arrays, source)
