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
from typing import Any

from .checker import ATOL, EPS, RTOL, CaseReport, OpCheckError, assert_case, check_case
from .draw import Domain, Draw, NumpyDraw
from .op_table import OP_TABLE, Case, OpSpec, find_ops

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

__all__ = [
    "ATOL",
    "EPS",
    "OP_TABLE",
    "RTOL",
    "Case",
    "CaseReport",
    "Domain",
    "Draw",
    "HypothesisDraw",
    "NumpyDraw",
    "OpCheckError",
    "OpSpec",
    "arrays",
    "assert_case",
    "broadcastable_shapes",
    "cases",
    "check_case",
    "check_op",
    "find_ops",
    "floats",
    "op_test",
    "shapes",
    "strategies",
    "tensors",
]


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
