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
