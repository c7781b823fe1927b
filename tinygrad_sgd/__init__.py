"""tinygrad_sgd: reverse-mode automatic differentiation on NumPy, small enough to read in an
afternoon, exact enough to check gradients to the last digit, and fast enough to train the
networks of Michael Nielsen's *Neural Networks and Deep Learning*.

>>> import tinygrad_sgd as tg
>>> w = tg.Tensor([0.6, -0.4], requires_grad=True); b = tg.Tensor(0.1, requires_grad=True)
>>> x = tg.Tensor([1.0, 2.0]); y = 1.0
>>> a = (w @ x + b).sigmoid()            # a = σ(w·x + b)
>>> cost = 0.5 * (y - a) ** 2            # C = ½ (y − a)²
>>> cost.backward()                      # ∂C/∂w = (a − y) σ'(z) x, ∂C/∂b = (a − y) σ'(z)
"""

# ruff: noqa: E402
import os as _os
import sys as _sys

#: The thread-count variables of the BLAS libraries NumPy may use, read once when BLAS loads.
_BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "OMP_NUM_THREADS",
)


def _one_blas_thread_for_the_train_command() -> None:
    """Run ``python -m tinygrad_sgd train`` (or ``tinygrad-sgd train``) on one BLAS thread.

    The book's mini-batches are small (m = 10: matrices of 10 × 30 and 10 × 784): handing each
    product to several BLAS threads costs more than it saves, the more so on a shared machine
    (measured in the README: an epoch on the digits takes half the time or less with one
    thread).  BLAS reads its thread count once, when NumPy loads it, so this runs before NumPy
    is imported, only when this package is being started as that command (never for a library
    import), and only when none of :data:`_BLAS_THREAD_VARIABLES` is set: a user's own setting
    wins.
    """
    argv = _sys.argv
    as_module = argv[:1] == ["-m"] and any(
        a == "-m" and b in ("tinygrad_sgd", "tinygrad_sgd.__main__")
        for a, b in zip(_sys.orig_argv, _sys.orig_argv[1:])
    )
    as_script = bool(argv) and _os.path.basename(argv[0]) == "tinygrad-sgd"
    command = next((a for a in argv[1:] if not a.startswith("-")), None)
    if (as_module or as_script) and command == "train" and "numpy" not in _sys.modules:
        if not any(v in _os.environ for v in _BLAS_THREAD_VARIABLES):
            for v in _BLAS_THREAD_VARIABLES[:-1]:  # the BLAS ones; OpenMP is not ours to set
                _os.environ[v] = "1"


_one_blas_thread_for_the_train_command()

import logging

# The imports come after it (ruff's E402 is off for this file): they load NumPy and with it BLAS.
from . import data, func, nn, optim, testing, viz  # testing: Hypothesis loads only when used
from .autograd import (
    AnomalyError,
    Function,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    trace,
)
from .compile import CompileError, compile
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .serialization import load, save
from .tensor import (
    Tensor,
    cat,
    concatenate,
    default_generator,
    get_default_dtype,
    manual_seed,
    maximum,
    minimum,
    set_default_dtype,
    stack,
    where,
)

# The library reports (the MNIST download, training epochs) through the loggers
# "tinygrad_sgd.<package>"; silent until the application configures logging (the command line
# does, to print them).
logging.getLogger(__name__).addHandler(logging.NullHandler())

#: The package's version (PEP 440).
__version__ = "0.1.0"

__all__ = [
    "AnomalyError",
    "CompileError",
    "Function",
    "GradcheckError",
    "Tensor",
    "__version__",
    "cat",
    "compile",
    "concatenate",
    "data",
    "default_generator",
    "detect_anomaly",
    "enable_grad",
    "func",
    "get_default_dtype",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "optim",
    "save",
    "set_default_dtype",
    "stack",
    "testing",
    "trace",
    "viz",
    "where",
]
