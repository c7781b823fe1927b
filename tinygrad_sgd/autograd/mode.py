"""Grad mode: whether new operations are recorded for backpropagation (per thread); and the three
calls by which layers, optimizers and schedules tell ``tg.compile`` (compile.py, a layer above
them) what a recorded step must redo at every replay (:func:`note_call`, :func:`draw`) or check
before it (:func:`note_state`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ContextDecorator
from typing import Any

import numpy as np


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


def note_call(method: Callable[..., Any], *args: Any) -> None:
    """Record ``method(*args)`` as a call kernel if a step is being recorded (optimizers call this
    at the top of ``step`` and ``zero_grad``: their Python then runs again at every replay)."""
    rec = _state.recording
    if rec is not None:
        rec.call(method, args)


def note_state(owner: Any, name: str) -> None:
    """Tell a step being recorded that what it records depends on ``owner.<name>`` (modules call
    this for their ``training`` flag: dropout draws a mask only in training): each replay checks
    that the attribute is still the same object, and the step is recorded again if it is not."""
    rec = _state.recording
    if rec is not None:
        rec.state(owner, name)


def draw(rng: np.random.Generator, make: Callable[..., np.ndarray], *args: Any) -> np.ndarray:
    """``make(rng, *args)``: an array of random numbers (a dropout mask) that a compiled step
    draws afresh at every replay, from ``rng`` in the same order as eager, instead of freezing
    the first one into its program.  Outside a recording it is just ``make(rng, *args)``."""
    rec = _state.recording
    if rec is not None:
        rec.rng_before.setdefault(id(rng), (rng, rng.bit_generator.state))
    out = make(rng, *args)
    if rec is not None:
        rec.draw(rng, make, args, out)
    return out
