"""``tg.detect_anomaly()``: the first NaN/infinity in the forward or the backward pass raises
:class:`tg.AnomalyError` naming the op and the user's file and line where it was created."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor

HERE = __file__


def _line_of(marker: str) -> int:
    """Line number (1-based) of the line in this file that contains ``marker``."""
    with open(HERE, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return n
    raise AssertionError(f"marker {marker!r} not found")


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # NOTE: the ops really do divide by zero and take log(-1) here; NumPy's warnings are expected.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def test_anomaly_error_is_a_floating_point_error():
    assert issubclass(tg.AnomalyError, FloatingPointError)


def test_forward_anomaly_names_op_and_user_line():
    x = Tensor([1.0, -1.0], requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as info:
        x.log()  # MARK-forward-log
    msg = str(info.value)
    assert msg.startswith("Log produced NaN or infinity in the forward pass")
    assert f"{HERE}:{_line_of('MARK-forward-log')}" in msg
    assert "inputs were finite" in msg


def test_forward_anomaly_from_nonfinite_input_says_so():
    x = Tensor([1.0, np.nan], requires_grad=True)
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match=r"Mul .*input\(s\) \[0\]"):
        x * 2.0


def test_forward_anomaly_also_without_grad():
    # An op that is not recorded (no input requires grad) is still checked.
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError, match="^Div produced"):
        Tensor(1.0) / Tensor(0.0)


def test_backward_anomaly_blames_the_op_not_its_internal_steps():
    # sqrt(0) = 0 is finite, but its derivative 1/(2√x) is infinite at 0.
    x = Tensor([4.0, 0.0], requires_grad=True)
    with tg.detect_anomaly():
        y = x.sqrt()  # MARK-backward-sqrt
        loss = (y * 3.0).sum()
        with pytest.raises(tg.AnomalyError) as info:
            loss.backward()
    msg = str(info.value)
    assert msg.startswith("Sqrt.backward produced NaN or infinity in the backward pass"), msg
    assert f"{HERE}:{_line_of('MARK-backward-sqrt')}" in msg
    assert "forward pass" not in msg.split(";")[0]


def test_backward_anomaly_from_numpy_backward_names_input():
    class BadGrad(tg.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 1.0

        @staticmethod
        def backward(ctx, g):
            return np.full(g.shape, np.inf)  # computed outside Tensor ops

    x = Tensor([1.0, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        y = BadGrad.apply(x)  # MARK-badgrad
        with pytest.raises(tg.AnomalyError) as info:
            y.sum().backward()
    msg = str(info.value)
    assert msg.startswith(
        "BadGrad.backward produced NaN or infinity in the backward pass: a non-finite gradient "
        "for input 0 (shape (2,)) from a δ that was finite"
    )
    assert f"{HERE}:{_line_of('MARK-badgrad')}" in msg


def test_backward_anomaly_when_forward_ran_outside_says_where_to_look():
    x = Tensor(0.0, requires_grad=True)
    y = x.sqrt()
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as info:
        y.backward()
    assert "Sqrt.backward" in str(info.value)
    assert "outside detect_anomaly()" in str(info.value)


def test_finite_computation_is_untouched_and_gradients_match():
    x = Tensor([0.5, 2.0], requires_grad=True)
    with tg.detect_anomaly():
        (x.log() * x).sum().backward()
    assert x.grad is not None
    np.testing.assert_allclose(x.grad.numpy(), np.log([0.5, 2.0]) + 1.0, rtol=1e-12)


def test_outside_the_context_nothing_is_checked():
    x = Tensor(0.0, requires_grad=True)
    y = x.sqrt()
    y.backward()  # no error: infinity is a legitimate IEEE result outside the context
    assert x.grad is not None and np.isinf(x.grad.item())
    assert np.isnan(Tensor(-1.0).log().item())


def test_context_restores_state_and_nests():
    x = Tensor(-1.0)
    outer = tg.detect_anomaly()
    with outer:
        with tg.detect_anomaly():
            pass
        with pytest.raises(tg.AnomalyError):
            x.log()  # still on after the inner block ended
    assert np.isnan(x.log().item())  # off again


def test_works_as_decorator():
    @tg.detect_anomaly()
    def f(t: Tensor) -> Tensor:
        return t.log()

    with pytest.raises(tg.AnomalyError, match="^Log produced"):
        f(Tensor(-2.0))
    assert np.isnan(Tensor(-2.0).log().item())


def test_first_anomaly_wins():
    # Two bad ops in sequence: the error names the first one (Log), not the later Mul.
    with tg.detect_anomaly(), pytest.raises(tg.AnomalyError) as info:
        y = Tensor(-1.0, requires_grad=True).log()
        y * 2.0
    assert re.match(r"^Log produced", str(info.value))
