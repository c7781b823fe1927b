"""The engine: grad mode, ``Function`` and its ``Context``, and reverse-mode backpropagation.

Read :mod:`.core` first: it is the whole of backprop.  Beside it, :mod:`.inplace` keeps arrays
that a graph saved from being overwritten, and :mod:`.debug` holds ``trace`` and
``detect_anomaly``, which watch the core through its observer point.
"""

from .core import (
    Context,
    Function,
    Grad,
    backward,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
)
from .debug import AnomalyError, TraceStep, detect_anomaly, trace

__all__ = [
    "AnomalyError",
    "Context",
    "Function",
    "Grad",
    "TraceStep",
    "backward",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "is_grad_enabled",
    "no_grad",
    "trace",
]
