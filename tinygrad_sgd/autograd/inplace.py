"""In-place safety: an array saved for backward is read-only while its graph lives.

A backward formula reads the arrays that forward saved (∂(a·b)/∂a = b needs b as it was).  If
the caller wrote into one of them in between (``w.data[0] = 0``), the gradient would be silently
wrong.  NumPy arrays have no version counter to check afterwards, so the engine prevents the
write instead: :func:`lock` makes each saved array read-only (``flags.writeable = False``), and
:meth:`Lock.release` makes it writeable again when the graph is freed, by backward or by being
dropped.  The write then fails at once with NumPy's "assignment destination is read-only".

* Several live graphs may save the same array (a weight used by two forward passes), so locks
  are counted per array, and an array that was read-only to begin with is left alone.
* A view shares memory with its base: writing ``B[0] = 50`` changes ``V = B[:2]``.  So the base
  (and its base, ...) is locked with the view.  (Views of the base made *before* the lock stay
  writeable, as NumPy cannot reach them; views made while it holds are read-only.)
* Giving a tensor a new array (``w.data = ...``) leaves the saved array intact, but would pair
  the op with other values under ``create_graph``: :func:`rebound_message` explains the error
  that ``Context.saved_tensors`` raises then.

The core calls exactly two things here: ``lock(arrays)`` after forward and ``release()`` when a
context is freed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .core import Context

_counts: dict[int, int] = {}  # id(array) -> number of live locks on it
_guard = threading.Lock()  # graphs may be built and freed in several threads at once


class Lock:
    """The arrays one context made read-only; :meth:`release` (or dropping it) undoes that."""

    __slots__ = ("_arrays",)

    def __init__(self, arrays: list[np.ndarray]) -> None:
        self._arrays = arrays  # views before their bases: released in the opposite order

    def release(self) -> None:
        arrays, self._arrays = self._arrays, []
        with _guard:
            for a in reversed(arrays):  # a base before its views (NumPy's rule for write=True)
                n = _counts[id(a)] - 1
                if n:
                    _counts[id(a)] = n
                    continue
                del _counts[id(a)]
                try:
                    a.setflags(write=True)
                except ValueError:  # its base is still locked by another graph: stays read-only
                    pass

    def __del__(self) -> None:  # a graph dropped without backward
        if self._arrays:
            self.release()

    def __deepcopy__(self, memo: dict[int, Any]) -> Lock:  # a copy holds no locks
        return Lock([])

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lock, ([],))


def lock(arrays: Iterable[Any]) -> Lock | None:
    """Make each array (and the bases it views) read-only until the returned Lock is released."""
    locked: list[np.ndarray] = []
    with _guard:
        for v in arrays:
            while isinstance(v, np.ndarray):
                n = _counts.get(id(v))
                if n is not None:
                    _counts[id(v)] = n + 1
                    locked.append(v)
                elif v.flags.writeable:
                    v.setflags(write=False)
                    _counts[id(v)] = 1
                    locked.append(v)
                v = v.base
    return Lock(locked) if locked else None


def rebound_message(ctx: Context, t: Any) -> str:
    """Why a saved Tensor whose ``.data`` was replaced cannot be used by ``ctx``'s backward."""
    if ctx._out is not None and t is ctx._out():
        which = "its output"
    else:
        which = f"its input {next(i for i, inp in enumerate(ctx.inputs) if inp is t)}"
    kind = "a leaf" if t.is_leaf else "an intermediate"
    return (
        f"{ctx.name}.backward: {which} ({kind} tensor of shape {t.shape}, {t.dtype}) was given a "
        f"new array (t.data = ...) after {ctx.name} saved it for backward, so the gradient would "
        "not match the forward pass. Call backward() before replacing a tensor's data, or run "
        "the forward pass again."
    )
