"""In-place safety: an array saved for backward is read-only while its graph lives.

A backward formula reads the arrays that forward saved (∂(a·b)/∂a = b needs b as it was).  If
the caller wrote into one of them in between (``w.data[0] = 0``), the gradient would be silently
wrong.  NumPy arrays have no version counter to check afterwards, so the engine prevents the
write instead: :func:`lock` makes each saved array read-only (``flags.writeable = False``), and
:class:`Lock` makes it writeable again when the graph is freed, by backward or by being
dropped.  The write then fails at once with NumPy's "assignment destination is read-only".

* Several live graphs may save the same array (a weight used by two forward passes), so locks
  are counted per array, and an array that was read-only to begin with is left alone.
* A view shares memory with its base: writing ``B[0] = 50`` changes ``V = B[:2]``.  So the base
  (and its base, ...) is locked with the view.  (Views of the base made *before* the lock stay
  writeable, as NumPy cannot reach them; views made while it holds are read-only.)
* Giving a tensor a new array (``w.data = ...``) leaves the saved array intact, but pairs the op
  with other values: ``Context.saved_tensors`` checks each saved Tensor's array and raises.

The same goes for gradients: a tensor's ``.grad`` never shares its array with anything else
(δ passed through an add to two inputs, a hook that kept it, the user's seed), or a write into
one would change another.  :func:`owned` decides whether a fresh gradient can be taken as it is.

Tensor's in-place methods (``w -= lr * w.grad`` under ``no_grad``) ask :func:`check_writeable`
first, which names the op that saved the array instead of NumPy's bare "read-only".

The core calls exactly two things here: ``lock(arrays, op_name)`` after forward (dropping the
Lock it returns, when the context is freed, unlocks), and ``owned(g)`` when a leaf receives its
first gradient.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np

_counts: dict[int, int] = {}  # id(array) -> number of live locks on it
_savers: dict[int, str] = {}  # id(array) -> the op that first locked it (for error messages)
_guard = threading.Lock()  # graphs may be built and freed in several threads at once


class Lock(list[np.ndarray]):
    """The arrays one context made read-only (views before their bases).  Dropping the lock
    (``Context._free``, or a graph dropped without backward) makes them writeable again."""

    __slots__ = ()

    def __del__(self) -> None:
        with _guard:
            for a in reversed(self):  # a base before its views (NumPy's rule for write=True)
                key = id(a)
                n = _counts[key] - 1
                if n:
                    _counts[key] = n
                    continue
                del _counts[key], _savers[key]
                try:
                    a.setflags(True)  # type: ignore[call-arg]  # write=True (see lock)
                except ValueError:  # its base is still locked by another graph: stays read-only
                    pass

    def __deepcopy__(self, memo: dict[int, Any]) -> Lock:  # a copy holds no locks
        return Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lock, ())


def lock(arrays: Iterable[Any], op_name: str = "an op") -> Lock | None:
    """Make each array (and the bases it views) read-only until the returned Lock is dropped;
    ``op_name`` (the op that saved them) is what :func:`check_writeable` reports."""
    locked = Lock()
    with _guard:
        for v in arrays:
            while isinstance(v, np.ndarray):
                key = id(v)
                n = _counts.get(key)
                if n is not None:
                    _counts[key] = n + 1
                    locked.append(v)
                elif v.flags.writeable:
                    # NOTE: write=False, passed positionally (NumPy's signature allows it, its
                    # type stubs do not): NumPy parses the keyword ~3× slower, 0.46 against
                    # 0.14 µs a call, and a training step locks and unlocks about ten arrays.
                    v.setflags(False)  # type: ignore[call-arg]
                    _counts[key] = 1
                    _savers[key] = op_name
                    locked.append(v)
                v = v.base
    return locked or None


def check_writeable(array: np.ndarray, what: str) -> None:
    """Raise a RuntimeError naming the op that saved ``array`` (or a base of it) if it is locked,
    or saying that it is read-only if it is read-only for another reason; ``what`` names the
    in-place operation, e.g. ``"-="``."""
    if array.flags.writeable:
        return
    v: Any = array
    with _guard:
        while isinstance(v, np.ndarray) and id(v) not in _counts:
            v = v.base
        op = _savers.get(id(v)) if isinstance(v, np.ndarray) else None
    if op is None:
        raise RuntimeError(
            f"in-place {what}: the tensor's array is read-only (NumPy flags.writeable is False, "
            "e.g. Tensor.from_numpy of a read-only array); build a new tensor instead "
            "(t = t + x), or make the array writeable first"
        )
    raise RuntimeError(
        f"in-place {what}: this tensor's values were saved for backward by {op} in a graph "
        "that is still alive, and changing them would make its gradient wrong. Call backward() "
        "on that graph first (it frees it), or drop it (del loss), or build a new tensor "
        "(t = t + x) instead of updating this one"
    )


def owned(g: np.ndarray) -> np.ndarray:
    """``g`` itself if nothing but the backward pass refers to it, else a copy of it.

    The usual gradient is a fresh product (δ aᵀ) that only the backward pass holds, and is
    taken as it is; a view, or an array something else refers to, is copied.  CPython's
    reference count tells which, as in PyTorch.  Measured: copying the four gradients of the
    book's network instead costs about 7 % of a training step at m = 10 (benchmarks/README.md).
    """
    if g.base is None and sys.getrefcount(g) <= _SOLE_OWNER_REFS:
        return g
    copy: np.ndarray = g.copy()
    return copy


def _count_sole_owner_refs() -> int:
    """The count :func:`owned` sees for an array that only the backward pass holds.

    NOTE: CPython versions count a caller's references differently, so this measures the count
    through the same call nesting as the engine (backward -> _accumulate -> owned) instead of
    assuming a number.  Should the two ever differ, owned() copies: slower, never wrong.
    """

    def accumulate(g: np.ndarray) -> int:  # stands for core._accumulate
        return count(g)

    def count(g: np.ndarray) -> int:  # stands for owned
        return sys.getrefcount(g)

    g = np.zeros(1)  # held by one local variable, like backward's g
    return accumulate(g)


_SOLE_OWNER_REFS = _count_sole_owner_refs()
