"""Grad mode: whether new operations are recorded for backpropagation (per thread)."""

from __future__ import annotations

import threading
from contextlib import ContextDecorator
from typing import Any


class _State(threading.local):
    grad_enabled: bool = True
    #: The engine's observer point (see core.py): the tools watching it, innermost last.
    observers: tuple[Any, ...] = ()
    #: The step being recorded by ``tg.compile`` (see compile.py), else None: reading a tensor's
    #: value then raises, since a replay would not read it again.
    recording: Any = None


_state = _State()


def is_grad_enabled() -> bool:
    """True when new operations are recorded for backpropagation."""
    return _state.grad_enabled


class _GradMode(ContextDecorator):
    """Set grad mode in a ``with`` block or a decorated function; restore it on exit."""

    _mode: bool

    def __init__(self) -> None:
        self._previous: list[bool] = []  # a stack: one instance may be entered again

    def __enter__(self) -> _GradMode:
        self._previous.append(_state.grad_enabled)
        _state.grad_enabled = self._mode
        return self

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._previous.pop()


class no_grad(_GradMode):
    """Record nothing: ``with tg.no_grad(): ...`` or ``@tg.no_grad()`` (evaluation, updates)."""

    _mode = False


class enable_grad(_GradMode):
    """Record operations again, for example inside a ``no_grad`` block."""

    _mode = True
