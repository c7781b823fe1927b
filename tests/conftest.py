"""Shared test configuration.

Hypothesis profiles: ``dev`` (the default: random, a moderate number of examples), ``ci``
(derandomized so that CI is reproducible, no deadline because CI machines are noisy, bounded
examples so the suite stays within minutes) and ``quick`` (``ci`` with a few examples: the runs
on the other supported Pythons and the oldest NumPy in .ci/run, which look for what differs
between versions, not for rare inputs).  Select with ``HYPOTHESIS_PROFILE=ci``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("quick", settings.get_profile("ci"), max_examples=5)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(autouse=True)
def _restore_global_state():
    """Every test starts in grad mode with the float64 default, whatever the last one did."""
    import tinygrad_sgd as tg

    before = tg.get_default_dtype()
    yield
    tg.set_default_dtype(before)
    assert tg.is_grad_enabled(), "a test left grad mode switched off"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
