"""``python -m tinygrad_sgd train``: options, output lines, messages and exit statuses."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd.cli import main
from tinygrad_sgd.data import write_idx

EPOCH_LINE = re.compile(
    r"^Epoch (\d+): (\d+) / (\d+) \(\d+\.\d\d%\)  train cost [\d.]+, "
    r"eval cost [\d.]+, [\d.]+ s$"
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def run(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def epoch_lines(out: str) -> list[re.Match[str]]:
    return [m for m in (EPOCH_LINE.match(ln) for ln in out.splitlines()) if m]


def test_entry_point_prints_the_books_lines(tmp_path):
    """The real command in a subprocess (stdout not a terminal: no progress bar)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "tinygrad_sgd", "train", "--epochs", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the repository root, whose tinygrad_sgd would shadow the installed one
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    lines = epoch_lines(proc.stdout)
    assert [int(m.group(1)) for m in lines] == [0, 1, 2]
    assert all(m.group(3) == "360" for m in lines)
    assert "Network [64, 30, 10] of sigmoid neurons, quadratic cost" in proc.stdout
    assert "η = 3.0, m = 10, 3 epochs, seed 0, float32" in proc.stdout
    assert proc.stderr == ""


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for opt in (
        "--dataset {digits,mnist}",
        "--data-dir",
        "--hidden",
        "--epochs",
        "--batch-size",
        "--lr",
        "--cost {quadratic,cross-entropy,log-likelihood}",
        "--seed",
        "--save",
        "--plot",
        "--dtype {float32,float64}",
        "--resume",
        "--init",
        "--no-download",
    ):
        assert opt in out, opt
    assert "--cost cross-entropy --init scaled --lr 0.5" in out


@pytest.mark.parametrize(
    "argv,msg",
    [
        (["--hidden", "30,x"], "argument --hidden: expected layer sizes, each an integer in"),
        (["--hidden", "0"], "argument --hidden: layer sizes: expected an integer in [1, 10**9)"),
        (["--batch-size", "0"], "argument --batch-size: expected an integer in [1, 10**9)"),
        (["--lr", "-1"], "argument --lr: expected a finite number > 0, got -1.0"),
        (["--lr", "nan"], "argument --lr: expected a finite number > 0, got nan"),
        (["--lr", "fast"], "argument --lr: expected a finite number > 0, got 'fast'"),
        (["--epochs", "-2"], "argument --epochs: expected an integer in [0, 10**9), got -2"),
        (["--epochs", "1000000000"], "argument --epochs: expected an integer in [0, 10**9)"),
        (["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
        (["--seed", "x"], "argument --seed: expected an integer >= 0, got 'x'"),
        (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
        (["--cost", "hinge"], "argument --cost: invalid choice"),
        (["--dtype", "float16"], "argument --dtype: invalid choice"),
    ],
)
def test_bad_options_exit_2_with_a_message(capsys, argv, msg):
    with pytest.raises(SystemExit) as info:
        main(["train", *argv])
    assert info.value.code == 2
    assert msg in capsys.readouterr().err


def test_hidden_layers_batch_size_lr_seed_in_the_run(capsys):
    args = ["--hidden", "20,15", "--epochs", "2", "--batch-size", "50"]
    args += ["--lr", "1.5", "--seed", "7"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    assert "Network [64, 20, 15, 10]" in out and "η = 1.5, m = 50, 2 epochs, seed 7" in out
    assert len(epoch_lines(out)) == 2
    code2, out2, _ = run(capsys, *args)
    # same seed, same run
    assert [m.group(2) for m in epoch_lines(out)] == [m.group(2) for m in epoch_lines(out2)]


def test_cross_entropy_and_float64(capsys, tmp_path):
    ck = tmp_path / "ck.npz"
    code, out, _ = run(
        capsys,
        "--cost",
        "cross-entropy",
        "--init",
        "scaled",
        "--lr",
        "0.5",
        "--dtype",
        "float64",
        "--epochs",
        "2",
        "--save",
        str(ck),
    )
    assert code == 0
    assert "cross-entropy cost, scaled init, η = 0.5" in out and "float64" in out
    saved = tg.load(ck)
    assert saved["model"]["0.weight"].dtype == np.float64
    assert saved["config"]["cost"] == "cross-entropy" and saved["epoch"] == 1


def test_save_and_resume_from_the_command_line(capsys, tmp_path):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    assert run(capsys, "--epochs", "3", "--save", str(full))[0] == 0
    assert run(capsys, "--epochs", "1", "--save", str(part))[0] == 0
    code, out, _ = run(capsys, "--resume", str(part), "--epochs", "3", "--save", str(part))
    assert code == 0
    assert [int(m.group(1)) for m in epoch_lines(out)] == [1, 2]
    a, b = tg.load(full), tg.load(part)
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k].data, b["model"][k].data)
    code, _, err = run(capsys, "--resume", str(part), "--epochs", "4", "--cost", "cross-entropy")
    assert code == 1 and "the checkpoint was made with cost='quadratic'" in err
    code, _, err = run(capsys, "--resume", str(tmp_path / "missing.npz"))
    assert code == 1 and "no such checkpoint file" in err


def test_plot_option(capsys, tmp_path, monkeypatch):
    png = tmp_path / "curves.png"
    code, out, _ = run(capsys, "--epochs", "2", "--plot", str(png))
    assert code == 0 and f"Learning curves written to {png}" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "--epochs", "2", "--plot", str(tmp_path / "x.png"))
    assert code == 2 and out == ""
    assert "--plot needs matplotlib" in err and "pip install 'tinygrad-sgd[plot]'" in err


def test_progress_bar_only_when_asked_or_on_a_terminal(capsys):
    code, _, err = run(capsys, "--epochs", "1", "--progress")
    assert code == 0 and "\r  epoch 0 [" in err and "] 144/144" in err
    code, _, err = run(capsys, "--epochs", "1")  # captured stderr is not a terminal
    assert code == 0 and err == ""


def test_mnist_offline_without_files_says_what_to_do(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "--dataset", "mnist", "--no-download", "--data-dir", str(empty))
    assert code == 1 and "Epoch" not in out
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "mnist.pkl.gz"):
        assert name in err
    assert str(empty) in err and "--data-dir" in err


def test_mnist_from_a_data_dir(capsys, tmp_path):
    """MNIST-shaped IDX files (10,040 training images: the last 10,000 are the validation
    set, as in the book) are read from --data-dir; evaluation on test or validation."""
    rng = np.random.default_rng(0)
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (10_040, 28, 28), np.uint8))
    write_idx(d / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, 10_040, np.uint8))
    write_idx(d / "t10k-images-idx3-ubyte", rng.integers(0, 256, (30, 28, 28), np.uint8))
    write_idx(d / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 30, np.uint8))
    code, out, err = run(
        capsys,
        "--dataset",
        "mnist",
        "--data-dir",
        str(d),
        "--no-download",
        "--epochs",
        "1",
        "--hidden",
        "5",
    )
    assert code == 0, err
    assert "Network [784, 5, 10]" in out and "MNIST: 40 training images, 30 test images" in out
    assert [m.group(3) for m in epoch_lines(out)] == ["30"]
    code, out, _ = run(
        capsys,
        "--dataset",
        "mnist",
        "--data-dir",
        str(d),
        "--eval",
        "validation",
        "--epochs",
        "1",
        "--hidden",
        "5",
    )
    assert code == 0 and "10000 validation images" in out
    assert [m.group(3) for m in epoch_lines(out)] == ["10000"]


def test_damaged_mnist_file_is_reported(capsys, tmp_path):
    d = tmp_path / "mnist"
    d.mkdir()
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        (d / name).write_bytes(b"not gzip")
    code, _, err = run(capsys, "--dataset", "mnist", "--data-dir", str(d))
    assert code == 1 and "train-images-idx3-ubyte.gz: named .gz but is not a gzip file" in err


def test_validation_eval_needs_mnist(capsys):
    code, _, err = run(capsys, "--eval", "validation")
    assert code == 1 and "only MNIST has a validation set" in err


def _blas_threads_seen(tmp_path, argv, **env):
    """OPENBLAS_NUM_THREADS as the process ``python argv`` has it at exit (a sitecustomize on
    the path prints it), started without any BLAS thread variable unless ``env`` sets one."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "import atexit, os\n"
        "atexit.register(lambda: print('BLAS threads:', os.environ.get('OPENBLAS_NUM_THREADS')))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in tg._BLAS_THREAD_VARIABLES}
    repo = Path(tg.__file__).resolve().parents[1]
    clean["PYTHONPATH"] = os.pathsep.join([str(repo), str(site)])
    out = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, cwd=tmp_path, env={**clean, **env}
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_the_train_command_runs_on_one_blas_thread_unless_told_otherwise(tmp_path):
    """Small mini-batches are faster on one BLAS thread (README, measured): the train command
    sets it before NumPy loads BLAS; a user's own setting, other commands and library imports
    are left alone."""
    train = ["-m", "tinygrad_sgd", "train", "--epochs", "0"]
    assert _blas_threads_seen(tmp_path, train) == "BLAS threads: 1"
    assert _blas_threads_seen(tmp_path, train, OPENBLAS_NUM_THREADS="2") == "BLAS threads: 2"
    assert _blas_threads_seen(tmp_path, train, OMP_NUM_THREADS="2") == "BLAS threads: None"
    gradcheck = ["-m", "tinygrad_sgd", "gradcheck", "--list"]
    assert _blas_threads_seen(tmp_path, gradcheck) == "BLAS threads: None"
    library = ["-c", "import sys; sys.argv[1:] = ['train']; import tinygrad_sgd"]
    assert _blas_threads_seen(tmp_path, library) == "BLAS threads: None"
