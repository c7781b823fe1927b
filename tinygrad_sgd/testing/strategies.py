"""Hypothesis strategies for tensors, and the property test of one operation.

This module imports Hypothesis (install it with ``pip install 'tinygrad-sgd[testing]'``);
``tinygrad_sgd.testing`` only loads it when one of these names is first used.

>>> import numpy as np
>>> from hypothesis import given
>>> from tinygrad_sgd.testing import tensors
>>> @given(tensors(min_value=0.5, max_value=2.0, requires_grad=True))
... def test_log_is_finite(x):
...     assert np.isfinite(x.log().data).all()

Everything is built on ``hypothesis.extra.numpy``: values are finite floats in
[min_value, max_value]; points listed in ``avoid`` (kinks, poles) are kept ``margin`` away by
moving values, not rejecting them, and ``distinct=True`` keeps all values ``margin`` apart
(no ties), so Hypothesis never runs out of valid examples and still shrinks to simple ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..gradcheck import _check_settings
from ..tensor import Tensor
from .checker import EPS, assert_case
from .draw import Domain, Draw, Shape, push_away, spread
from .op_table import Case, OpSpec

__all__ = [
    "HypothesisDraw",
    "arrays",
    "broadcastable_shapes",
    "cases",
    "check_op",
    "floats",
    "op_test",
    "shapes",
    "tensors",
]


def floats(
    min_value: float = -3.0,
    max_value: float = 3.0,
    avoid: Sequence[float] = (),
    margin: float = 1e-2,
) -> st.SearchStrategy[float]:
    """Finite floats in [min_value, max_value], at least ``margin`` away from each of ``avoid``."""
    dom = Domain(min_value, max_value, tuple(avoid), margin)
    base = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)
    return base.map(lambda v: float(push_away(np.asarray(v), dom))) if avoid else base


def shapes(
    min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
) -> st.SearchStrategy[Shape]:
    """Array shapes (0-d included by default), small enough for finite differences."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable_shapes(
    num_shapes: int = 2,
    min_dims: int = 0,
    max_dims: int = 3,
    min_side: int = 1,
    max_side: int = 4,
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """Tuples of ``num_shapes`` shapes that NumPy broadcasts together, e.g. ((3, 1), (4,))."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes,
        min_dims=min_dims,
        max_dims=max_dims,
        min_side=min_side,
        max_side=max_side,
    ).map(lambda r: tuple(r.input_shapes))


def arrays(
    shape: Shape | st.SearchStrategy[Shape] | None = None,
    min_value: float = -3.0,
    max_value: float = 3.0,
    avoid: Sequence[float] = (),
    margin: float = 1e-2,
    distinct: bool = False,
    dtype: Any = np.float64,
) -> st.SearchStrategy[np.ndarray]:
    """Float arrays of ``shape`` (a shape, a strategy of shapes, or None for :func:`shapes`)
    with values as :func:`floats` describes; ``distinct=True`` also keeps every pair of values
    ``margin`` apart (for max/min and other tie-sensitive ops)."""
    dom = Domain(min_value, max_value, tuple(avoid), margin)
    shape_st = shapes() if shape is None else shape
    if not isinstance(shape_st, st.SearchStrategy):
        shape_st = st.just(tuple(shape_st))
    elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)

    def finish(a: np.ndarray) -> np.ndarray:
        a = spread(a, dom) if distinct else a
        a = push_away(a, dom) if avoid else a
        return a.astype(dtype)

    return shape_st.flatmap(lambda s: hnp.arrays(np.float64, s, elements=elements).map(finish))


def tensors(
    shape: Shape | st.SearchStrategy[Shape] | None = None,
    min_value: float = -3.0,
    max_value: float = 3.0,
    avoid: Sequence[float] = (),
    margin: float = 1e-2,
    distinct: bool = False,
    dtype: Any = np.float64,
    requires_grad: bool = False,
) -> st.SearchStrategy[Tensor]:
    """Tensors with values as :func:`arrays` describes (float64 unless ``dtype`` says else)."""
    return arrays(shape, min_value, max_value, avoid, margin, distinct, dtype).map(
        lambda a: Tensor(a, requires_grad=requires_grad)
    )


class HypothesisDraw(Draw):
    """Answers the op table's questions with Hypothesis (so failures shrink)."""

    def __init__(self, draw: Any) -> None:
        self._draw = draw  # ``data.draw`` of ``st.data()``, or the ``draw`` of ``st.composite``

    def integers(self, low: int, high: int) -> int:
        return int(self._draw(st.integers(low, high)))

    def boolean(self) -> bool:
        return bool(self._draw(st.booleans()))

    def shape(
        self, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> Shape:
        return tuple(self._draw(shapes(min_dims, max_dims, min_side, max_side)))

    def broadcastable_shapes(
        self, n: int, min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4
    ) -> tuple[Shape, ...]:
        drawn: tuple[Shape, ...] = self._draw(
            broadcastable_shapes(n, min_dims, max_dims, min_side, max_side)
        )
        return drawn

    def _uniform(self, shape: Shape, low: float, high: float) -> np.ndarray:
        elements = st.floats(low, high, allow_nan=False, allow_infinity=False)
        return np.asarray(self._draw(hnp.arrays(np.float64, shape, elements=elements)))

    def int_array(self, shape: Shape, low: int, high: int) -> np.ndarray:
        return np.asarray(self._draw(hnp.arrays(np.intp, shape, elements=st.integers(low, high))))


def cases(spec: OpSpec) -> st.SearchStrategy[Case]:
    """Inputs for ``spec`` (shapes, values, parameters) as a Hypothesis strategy."""
    return st.composite(lambda draw: spec.draw_case(HypothesisDraw(draw)))()


def check_op(
    spec: OpSpec,
    max_examples: int | None = None,
    second_order: bool | None = None,
    eps: float = EPS,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Property-test one operation the way the library tests its own; raise on any failure.

    For each input Hypothesis generates from ``spec`` (see
    :class:`~tinygrad_sgd.testing.op_table.OpSpec`), run every check of
    :func:`~tinygrad_sgd.testing.checker.check_case`: forward vs the NumPy reference, backward
    vs finite differences with a random upstream gradient, gradient shapes and dtypes, inputs
    not mutated, no aliasing, graph freed, and second derivatives.  A failure is shrunk to a
    small input and raised as :class:`~tinygrad_sgd.testing.checker.OpCheckError`.

    ``max_examples`` overrides the active Hypothesis profile's number of examples (the other
    settings, e.g. ``derandomize``, are kept), except that the checks run without Hypothesis's
    deadline and its ``too_slow`` health check, whatever the profile says: the finite
    differences of one example can take longer than the default 200 ms on a busy machine, and
    a test suite should then get the result of the checks, never ``DeadlineExceeded`` or
    ``FlakyFailure``.  Call it from a test function::

        def test_cube():
            check_op(OpSpec("cube", lambda x: Cube.apply(x), lambda x: x**3))

    ``eps`` must be a finite number > 0 and ``atol``/``rtol`` (``None``: the row's or the
    checker's defaults) finite numbers ≥ 0, else ``ValueError`` naming the argument, before any
    example runs.
    """
    _check_settings(eps, atol, rtol, f"check_op({spec.name!r}): ")

    @given(case=cases(spec), seed=st.integers(0, 2**32 - 1))
    def property_of_op(case: Case, seed: int) -> None:
        assert_case(spec, case, seed=seed, eps=eps, atol=atol, rtol=rtol, second_order=second_order)

    property_of_op.__name__ = f"check_op[{spec.name}]"
    # settings(...) inherits every other value from the active profile
    own: dict[str, Any] = {
        "deadline": None,
        "suppress_health_check": [*settings().suppress_health_check, HealthCheck.too_slow],
    }
    if max_examples is not None:
        own["max_examples"] = max_examples
    settings(**own)(property_of_op)()


def op_test(spec: OpSpec, **kwargs: Any) -> Any:
    """A pytest test function that runs :func:`check_op` on ``spec``:
    ``test_cube = op_test(OpSpec("cube", ...))`` in a test module is enough."""

    def test() -> None:
        check_op(spec, **kwargs)

    test.__name__ = f"test_{spec.name}"
    return test
