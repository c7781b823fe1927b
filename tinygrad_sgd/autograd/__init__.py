"""The engine: grad mode, ``Function`` and its ``Context``, and reverse-mode backpropagation.

Read :mod:`.mode` (grad mode, a few lines) and :mod:`.core` first: together they are the whole
of backprop.  Beside them, :mod:`.inplace` keeps arrays that a graph saved from being
overwritten and gradients from sharing buffers, :mod:`.errors` words the engine's errors, and
:mod:`.debug` holds ``trace`` and ``detect_anomaly``, which watch the core through its observer
point.
"""

from .core import Context, Function, Grad, backward, grad
from .debug import AnomalyError, TraceStep, detect_anomaly, trace
from .mode import enable_grad, is_grad_enabled, no_grad

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
