"""The benchmark scripts still run (``--quick``: a few steps, NumPy rows only, no PyTorch).

Not a speed test: it checks that the scripts work against the current API and that the rows
of ``mlp_epoch.py`` really compute the same training (the script's own same-weights check makes
it exit non-zero otherwise).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def run(script: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_mlp_epoch_rows_end_at_the_same_weights():
    out = run(
        "mlp_epoch.py",
        "--rows",
        "numpy_floor,tinygrad_sgd,tinygrad_sgd_raw,engine_numpy,op_formulas,no_graph_step",
        "--m",
        "10,1000",
        "--samples",
        "1000",
    )
    lines = [ln for ln in out.splitlines() if ln.startswith("| ")]
    rows = ("numpy_floor", "tinygrad_sgd ", "tinygrad_sgd_raw", "engine_numpy", "op_formulas")
    for row in rows + ("no_graph_step",):
        hits = [ln for ln in lines if ln.startswith(f"| {row}")]
        assert len(hits) == 4, out  # two batch sizes, two dtypes
        assert all(ln.rstrip(" |").endswith("ok") for ln in hits), out
    assert "DIFFERENT" not in out


def test_mlp_epoch_detects_rows_that_train_differently(monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        import mlp_epoch
    finally:
        sys.path.remove(str(BENCH))

    def wrong(params, X, Y, m):  # the floor with η off by 1 %: must be reported, exit code 1
        monkeypatch.setattr(mlp_epoch, "ETA", 3.0 * 1.01)  # built after the real floor
        return mlp_epoch.numpy_floor(params, X, Y, m)

    monkeypatch.setitem(mlp_epoch.ROWS, "wrong", (None, wrong))
    code = mlp_epoch.main(["--quick", "--rows", "numpy_floor,wrong", "--m", "100"])
    assert code == 1


@pytest.mark.parametrize("script", ["op_overhead.py", "scale.py"])
def test_other_scripts_run(script):
    args = ("--no-torch",) if script == "op_overhead.py" else ()
    out = run(script, *args)
    assert "| " in out and "load average" in out


def test_book_options_times_every_option():
    out = run("book_options.py")
    rows = [ln.split("|")[1].strip() for ln in out.splitlines() if ln.startswith("| ")][1:]
    assert rows == ["plain", "dropout", "lmbda", "l1", "report_gradients"], out


def test_fit_step_times_a_checkout_and_compares_two():
    """One number (µs per step of fit's compiled step); with --compare, one line per checkout
    with its ratio to the first (here the same checkout twice)."""
    out = run("fit_step.py", "--lmbda", "5")
    assert float(out.strip()) > 0, out
    root = str(BENCH.parent)
    out = run("fit_step.py", "--compare", f"a={root}", f"b={root}")
    lines = out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines] == ["a", "b"], out
    assert "per round × a: median 1.000" in lines[0], out


def test_conv_epoch_rows_end_at_the_same_weights():
    """The book's ch6-conv network: the user path and backpropagation by hand in NumPy take the
    same steps (PyTorch, the third row, is left out here: tests must pass without it)."""
    out = run("conv_epoch.py", "--rows", "numpy_by_hand,tinygrad_sgd", "--m", "10,100")
    lines = [ln for ln in out.splitlines() if ln.startswith(("| numpy_by_hand", "| tinygrad_sgd"))]
    assert len(lines) == 4, out  # two rows, two batch sizes
    assert all(ln.rstrip(" |").endswith("ok") for ln in lines), out
    assert "DIFFERENT" not in out


def test_conv_epoch_detects_rows_that_train_differently(monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        import conv_epoch
    finally:
        sys.path.remove(str(BENCH))

    def wrong(params, X, y, m):  # the hand-written row with η off by 1 %: exit code 1
        monkeypatch.setattr(conv_epoch, "ETA", 0.1 * 1.01)
        return conv_epoch.numpy_by_hand(params, X, y, m)

    monkeypatch.setitem(conv_epoch.ROWS, "wrong", (None, wrong))
    code = conv_epoch.main(["--quick", "--rows", "numpy_by_hand,wrong", "--m", "10"])
    assert code == 1
