"""Every example runs in its quick mode, as a user would run it (a subprocess), offline."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# examples with a test of their own below; every other example gets the generic quick-mode run
CHECKED = {
    "nielsen_chapter1.py",
    "gradient_descent_valley.py",
    "custom_function.py",
    "learning_slowdown.py",
    "newton_step.py",
    "vanishing_gradient.py",
}
OTHERS = [p for p in EXAMPLES if p.name not in CHECKED]
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def run_example(path: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache"), "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(path), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env=env,
    )


def test_the_required_examples_exist():
    names = {p.name for p in EXAMPLES}
    assert CHECKED <= names
    assert OTHERS, "the generic test below should run the remaining examples"


@pytest.mark.parametrize("path", OTHERS, ids=[p.name for p in OTHERS])
def test_example_runs_in_quick_mode(path, tmp_path):
    proc = run_example(path, "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip(), "an example should say what it did"


def test_nielsen_chapter1_quick_trains_through_idx_files_offline(tmp_path):
    proc = run_example(ROOT / "examples" / "nielsen_chapter1.py", "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1200 training, 237 validation, 360 test images of 784 pixels" in proc.stdout
    lines = re.findall(r"^Epoch (\d): (\d+) / 360", proc.stdout, re.M)
    assert [k for k, _ in lines] == ["0", "1", "2"]
    assert int(lines[-1][1]) > 250  # learning, not guessing (36 / 360 by chance)
    assert not (tmp_path / "cache").exists()  # nothing downloaded or cached


def test_gradient_descent_valley_descends_and_draws(tmp_path):
    out = tmp_path / "v.png"
    proc = run_example(
        ROOT / "examples" / "gradient_descent_valley.py",
        "--quick",
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    costs = re.findall(r"C\s+([\d.]+) -> ([\d.]+) after 20 steps", proc.stdout)
    assert len(costs) == 3
    assert all(float(end) < float(start) / 5 for start, end in costs)
    if HAS_MATPLOTLIB:
        assert out.read_bytes()[:4] == b"\x89PNG"
    else:
        assert "pip install 'tinygrad-sgd[plot]'" in proc.stdout


def test_custom_function_catches_the_wrong_backward(tmp_path):
    proc = run_example(ROOT / "examples" / "custom_function.py", "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "gradcheck:     True" in proc.stdout and "gradgradcheck: True" in proc.stdout
    assert "the wrong backward is caught" in proc.stdout and "rel error = 5.000e-01" in proc.stdout


def test_learning_slowdown_shows_the_saturation(tmp_path):
    proc = run_example(ROOT / "examples" / "learning_slowdown.py", "--quick", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"quadratic a = ([\d.]+), cross-entropy a = ([\d.]+)", proc.stdout)
    assert m and float(m.group(1)) > 0.95 and float(m.group(2)) < 0.5


@pytest.mark.parametrize("start", [None, "-2.5,3"])  # the second needs damped steps at first
def test_newton_step_converges_quadratically_where_gradient_descent_creeps(tmp_path, start):
    out = tmp_path / "n.png"
    args = ["--quick", "--out", str(out)] + ([f"--start={start}"] if start else [])
    proc = run_example(ROOT / "examples" / "newton_step.py", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    grads = dict(re.findall(r"(gradient descent|Newton): C .* \|∇C\| = (\S+),", proc.stdout))
    assert float(grads["Newton"]) < 1e-12 < 1e-4 < float(grads["gradient descent"])
    norms = [float(n) for n in proc.stdout.split("each step):\n")[1].split("\n")[0].split()]
    k = next(i for i, n in enumerate(norms) if n < 1e-3)  # near the minimum: quadratic
    assert norms[k + 1] < norms[k] ** 1.5 and norms[k + 2] < max(norms[k + 1] ** 1.5, 1e-15)
    hvp, hd = re.search(r"hvp = \[(.*)\], H @ d = \[(.*)\]", proc.stdout).groups()
    assert [float(v) for v in hvp.split()] == pytest.approx([float(v) for v in hd.split()])
    if HAS_MATPLOTLIB:
        assert out.read_bytes()[:4] == b"\x89PNG"
    else:
        assert "pip install 'tinygrad-sgd[plot]'" in proc.stdout


def test_nielsen_chapter1_full_mode_reads_a_data_dir(tmp_path):
    """The non-quick path (the book's split: the last 10,000 training images for validation) on
    MNIST-shaped files placed in --data-dir, so nothing is downloaded."""
    import numpy as np

    from tinygrad_sgd.data import write_idx

    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (10_040, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 10_040, np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 30, np.uint8))
    proc = run_example(
        ROOT / "examples" / "nielsen_chapter1.py",
        "--data-dir",
        str(d),
        "--epochs",
        "1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "40 training, 10000 validation, 30 test images of 784 pixels" in proc.stdout
    assert re.search(r"^Epoch 0: \d+ / 30 ", proc.stdout, re.M)
    assert "Downloading" not in proc.stderr


def test_vanishing_gradient_first_hidden_layer_learns_slowest(tmp_path):
    """Chapter 5's observation on the digits: with four sigmoid hidden layers (scaled init) the
    speeds ‖∂C/∂bˡ‖ grow layer after layer and the first is over 10 times slower than the last;
    ReLU hidden neurons shrink that ratio below a quarter of the sigmoid's."""
    png = tmp_path / "v.png"
    proc = run_example(
        ROOT / "examples" / "vanishing_gradient.py", "--quick", "--plot", str(png), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"^(\w+), (\w+) +\[64, ([\d, ]+)\] +([\d. ]+?) +last/first +([\d.]+)$", line)
        if m:
            speeds = [float(v) for v in m.group(4).split()]
            rows[(m.group(1), m.group(2), m.group(3).count("30"))] = (speeds, float(m.group(5)))
    assert len(rows) == 9, proc.stdout
    speeds, ratio = rows[("sigmoid", "scaled", 4)]
    assert speeds == sorted(speeds) and ratio > 10
    assert rows[("relu", "scaled", 4)][1] < ratio / 4
    assert re.search(r"the first learns \d+ times slower than the last", proc.stdout)
    assert len(re.findall(r"^  epoch +\d+:( +[\d.]+){4}$", proc.stdout, re.M)) == 3
    if HAS_MATPLOTLIB:
        assert png.read_bytes()[:4] == b"\x89PNG"
