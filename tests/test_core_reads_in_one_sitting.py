"""Issue 13's promise about the engine's core: one file a learner reads in one sitting."""

from __future__ import annotations

import inspect
from pathlib import Path

from tinygrad_sgd.autograd import core


def test_the_core_is_at_most_350_lines_including_docstrings() -> None:
    lines = Path(core.__file__).read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 350, f"autograd/core.py has {len(lines)} lines (at most 350)"


def test_the_backward_loop_knows_nothing_of_locks_tracing_or_anomalies() -> None:
    for fn in (core.backward, core._propagate):
        code = inspect.getsource(fn).lower()
        for word in ("lock", "trace", "anomal", "debug"):
            assert word not in code, f"core.{fn.__name__} mentions {word!r}"
