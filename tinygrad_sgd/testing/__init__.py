"""Check your own operations the way tinygrad_sgd checks its own.

Two layers, so that importing this module costs nothing:

* NumPy only (imported here): :class:`OpSpec` (one row describing an operation: the tensor
  function, a NumPy reference, the input domain), :class:`Domain`, the built-in table
  :data:`OP_TABLE`, and :func:`check_case`, which runs every check on one input.
* Hypothesis (imported on first use of one of these names; ``pip install
  'tinygrad-sgd[testing]'``): the strategies :func:`tensors`, :func:`arrays`, :func:`floats`,
  :func:`shapes`, :func:`broadcastable_shapes`, :func:`cases`, and :func:`check_op`, the
  property test of one operation (:func:`op_test` makes it a pytest test function).

>>> import numpy as np
>>> from tinygrad_sgd.testing import Domain, NumpyDraw, OpSpec, check_case
>>> spec = OpSpec("log1p", lambda x: (1 + x).log(), np.log1p, domain=Domain(0.0, 3.0))
>>> check_case(spec, spec.draw_case(NumpyDraw(0))).passed  # one NumPy-generated input
True
>>> check_op(spec)  # the Hypothesis property test  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from .checker import ATOL, EPS, RTOL, CaseReport, OpCheckError, assert_case, check_case
from .draw import Domain, Draw, NumpyDraw
from .op_table import OP_TABLE, Case, OpSpec, find_ops

if TYPE_CHECKING:  # what __getattr__ imports on first use, for type checkers
    from . import strategies as strategies
    from .strategies import (
        HypothesisDraw as HypothesisDraw,
    )
    from .strategies import (
        arrays as arrays,
    )
    from .strategies import (
        broadcastable_shapes as broadcastable_shapes,
    )
    from .strategies import (
        cases as cases,
    )
    from .strategies import (
        check_op as check_op,
    )
    from .strategies import (
        floats as floats,
    )
    from .strategies import (
        op_test as op_test,
    )
    from .strategies import (
        shapes as shapes,
    )
    from .strategies import (
        tensors as tensors,
    )

_LAZY = {
    "HypothesisDraw",
    "arrays",
    "broadcastable_shapes",
    "cases",
    "check_op",
    "floats",
    "op_test",
    "shapes",
    "strategies",
    "tensors",
}


def _hypothesis_installed() -> bool:
    try:
        return importlib.util.find_spec("hypothesis") is not None
    except (ImportError, ValueError):  # a broken or half-removed installation
        return False


# ``from tinygrad_sgd.testing import *`` gives the Hypothesis names only where Hypothesis is
# installed (without it, importing them raises ImportError, which would fail the star import).
__all__ = [
    "ATOL",
    "EPS",
    "OP_TABLE",
    "RTOL",
    "Case",
    "CaseReport",
    "Domain",
    "Draw",
    "NumpyDraw",
    "OpCheckError",
    "OpSpec",
    "assert_case",
    "check_case",
    "find_ops",
]
if _hypothesis_installed():
    __all__ += sorted(_LAZY)


def __getattr__(name: str) -> Any:
    """Import :mod:`.strategies` (and with it Hypothesis) only when one of its names is used."""
    if name in _LAZY:
        try:
            module = importlib.import_module(".strategies", __name__)
        except ModuleNotFoundError as e:
            if e.name is not None and e.name.split(".")[0] == "hypothesis":
                raise ImportError(
                    f"tinygrad_sgd.testing.{name} needs Hypothesis: "
                    "pip install 'tinygrad-sgd[testing]' (or pip install hypothesis)"
                ) from e
            raise
        return module if name == "strategies" else getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
