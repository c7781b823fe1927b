"""``save`` / ``load``: checkpoints as ``.npz`` files, never pickle, written atomically.

What can be saved: a (nested) dict whose keys are ``str`` or ``int`` and whose values are
Tensors, NumPy arrays or scalars, Python ``int``/``float``/``bool``/``str``/``None``, and lists,
tuples and dicts of these; for example ``{"model": net.state_dict(), "optimizer":
opt.state_dict(), "epoch": 7}``.  ``load`` returns the same structure with the same types
(Tensors come back as Tensors with their ``requires_grad``, arrays as arrays, tuples as tuples).

File layout (a plain ``.npz`` that ``numpy.load(path)`` can read without pickle):

* each array is an entry named by its path of keys joined with ``/``
  (``"model/0.weight"``; for a flat ``state_dict`` just ``"0.weight"``);
* one more entry, ``"__tinygrad_sgd__"``, holds the structure as JSON text (a 0-d unicode array):
  how to nest the entries back and every non-array value.

A ``.npz`` written by other tools (no structure entry) loads as a flat dict of Tensors.  The file
is written to a temporary file in the same folder and then renamed over ``path``
(``os.replace``), so an interrupted or failed save never damages an existing checkpoint.
``path`` is used exactly as given (no ``.npz`` suffix is added).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ._atomic import atomic_open
from .tensor import Tensor

__all__ = ["load", "save"]

_META = "__tinygrad_sgd__"
_FORMAT = 1
# names that np.savez would take as its own arguments, and the structure entry
_RESERVED = frozenset({_META, "file", "allow_pickle"})


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
        name = "/".join(path) or "data"
        base, k = name, 1
        while name in arrays or name in _RESERVED:
            name, k = f"{base}~{k}", k + 1
        arrays[name] = arr
        if isinstance(obj, Tensor):
            return {"t": "tensor", "entry": name, "requires_grad": bool(obj.requires_grad)}
        return {"t": "ndarray", "entry": name}
    if isinstance(obj, np.generic):
        return _encode(np.asarray(obj), path, arrays) | {"t": "npscalar"}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"t": "value", "v": obj}
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


def load(path: str | os.PathLike[str]) -> Any:
    """Read what :func:`save` wrote (never unpickles anything).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when it is
    not a readable ``.npz`` (truncated, damaged, or holding pickled objects).
    """
    source = os.fspath(path)
    if not os.path.exists(source):
        raise FileNotFoundError(f"load: no such checkpoint file: {source!r}")
    try:
        with np.load(source, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
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
        meta = json.loads(str(meta_arr[()]))
        root = meta["root"]
        fmt = meta.get("format")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"load: {source!r} has a damaged structure entry ({e})") from None
    if fmt != _FORMAT:
        raise ValueError(f"load: {source!r} uses checkpoint format {fmt!r}; expected {_FORMAT}")
    return _decode(root, arrays, source)
