"""The train command's checkpoints and output files under attack (issue 20, items 2, 4, 5, 9, 11).

* A diverged epoch is neither reported nor saved: the last good checkpoint stays.
* Every output path is checked before training, and a failed write is one line naming the file,
  the old file intact.
* A tampered checkpoint (any config field, the weights, the optimizer, the epoch, the history,
  the shuffling state) is refused in one line naming the file, the weights' shapes checked
  against the config before the network is allocated; or it resumes as a checkpoint should.
  A Hypothesis fuzzer mutates a real checkpoint to check that rule, with memory bounded.
* Small holes of the command line: negative seeds, a FIFO or unreadable checkpoint, a data
  folder that cannot be searched.
* Two runs saving to the same path: the second is refused while the first holds the lock.

The tests run as root here, where a folder's permission bits stop nothing: permission failures
are simulated by patching ``os.access`` / ``os.stat`` / ``os.open`` for the one path concerned.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import math
import os
import re
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_sgd as tg
from tinygrad_sgd import Tensor, optim
from tinygrad_sgd._atomic import FileLockedError, writer_lock
from tinygrad_sgd.cli import main
from tinygrad_sgd.data import write_idx
from tinygrad_sgd.train import build_network, fit, load_checkpoint, train
from tinygrad_sgd.train.run import CONFIG_FIELDS

posix_only = pytest.mark.skipif(os.name != "posix", reason="flock, FIFOs and signals are POSIX")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _run(*argv: str) -> tuple[int, str, str]:
    """``main(["train", *argv])`` with its output captured (usable inside Hypothesis)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *argv])
    return code, out.getvalue(), err.getvalue()


def _one_line_error(err: str, path: Path | str) -> str:
    """The error line of a refused run: ``error: ...`` naming ``path``, and no traceback."""
    assert "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(path) in line, err
    return line


def _env() -> dict[str, str]:
    """The subprocess imports the tinygrad_sgd this test imports (the installed one in CI, not
    the checkout's)."""
    env = dict(os.environ)
    package_parent = str(Path(tg.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    return env


# ---------------------------------------------------------------------- item 2: divergence


def test_a_diverged_first_epoch_is_not_reported_and_the_old_file_is_kept(tmp_path):
    """The issue's run: one mini-batch an epoch (m = 2000 > 1437 images) and η = 1e40.  Its
    step makes the weights infinite while the cost it saw was finite; the epoch used to print
    'eval cost nan' and write ±inf weights over the good file."""
    ck = tmp_path / "ck.npz"
    assert _run("--batch-size", "2000", "--epochs", "1", "--save", str(ck))[0] == 0
    good = ck.read_bytes()
    with np.errstate(all="ignore"):
        code, out, err = _run(
            "--batch-size", "2000", "--lr", "1e40", "--epochs", "3", "--save", str(ck)
        )
    assert code == 1 and "Epoch 0" not in out
    line = _one_line_error(err, ck)
    assert "epoch 0 diverged" in line and "NaN or infinite" in line and "was not written" in line
    assert ck.read_bytes() == good


def test_divergence_after_good_epochs_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    """Epoch 0 is good and saved; epoch 1's step is given η = 1e40: the run stops naming
    epoch 1, and the file holds exactly the checkpoint of epoch 0."""
    real_step = optim.SGD.step
    calls = []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the only step of epoch 1
            self.param_groups[0]["lr"] = 1e40
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(optim.SGD, "step", step)
    ck, lines = tmp_path / "ck.npz", []
    with pytest.raises(
        FloatingPointError, match=rf"epoch 1 diverged.*{re.escape(str(ck))} keeps epoch 0"
    ):
        with np.errstate(all="ignore"):
            train(batch_size=2000, epochs=3, save=ck, log=lines.append)
    assert [ln.split(":")[0] for ln in lines if ln.startswith("Epoch")] == ["Epoch 0"]
    monkeypatch.setattr(optim.SGD, "step", real_step)
    model, saved = load_checkpoint(ck)
    reference, _ = train(batch_size=2000, epochs=1, log=None)
    assert saved["epoch"] == 0
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


def test_fit_stops_when_the_evaluation_cost_is_not_finite():
    rng = np.random.default_rng(0)
    X, y = rng.random((20, 4)), rng.integers(0, 3, 20)
    X_eval = X.copy()
    X_eval[0, 0] = np.nan  # finite weights, a NaN cost on the evaluation set
    model, lines, ends = build_network([4, 5, 3], seed=0, dtype=np.float64), [], []
    with pytest.raises(FloatingPointError, match="epoch 0 diverged: the cost on the evaluation"):
        with np.errstate(all="ignore"):
            fit(
                model,
                (X, y),
                (X_eval, y),
                epochs=2,
                log=lines.append,
                on_epoch_end=lambda k, h: ends.append(k),
            )
    assert lines == [] and ends == []


def test_resume_of_non_finite_weights_says_so(tmp_path, base_checkpoint):
    ck = tg.load(base_checkpoint)
    ck["model"]["0.bias"] = Tensor(np.full(ck["model"]["0.bias"].shape, np.nan, np.float32))
    bad = tmp_path / "nan.npz"
    tg.save(ck, bad)
    code, out, err = _run("--resume", str(bad), "--epochs", "3")
    assert code == 1 and "Epoch" not in out
    line = _one_line_error(err, bad)
    assert "holds non-finite weights (NaN or ±inf in 0.bias)" in line
    assert "learning rate" not in line


# ------------------------------------------------------------------- item 4: output paths


def _no_access(folder: Path):
    """``os.access`` answering "no" for ``folder`` (root may write anywhere, so a read-only
    folder is simulated), as the kernel does for a user without write permission."""
    real = os.access

    def access(path, mode, *args, **kwargs):
        if os.path.realpath(path) == os.path.realpath(folder) and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    return access


@pytest.mark.parametrize(
    "case",
    [
        "save in a missing folder",
        "save onto a folder",
        "plot onto a folder",
        "save in a read-only folder",
        "plot in a read-only folder",
        "plot over the checkpoint",
        "plot over the resumed file",
        "history onto a folder",
        "history in a read-only folder",
        "history over the checkpoint",
        "history over the plot",
    ],
)
def test_output_paths_are_checked_before_training(tmp_path, monkeypatch, case):
    ro = tmp_path / "ro"
    ro.mkdir()
    target, argv = {
        "save in a missing folder": (tmp_path / "no" / "ck.npz", ["--save"]),
        "save onto a folder": (tmp_path, ["--save"]),
        "plot onto a folder": (tmp_path, ["--plot"]),
        "save in a read-only folder": (ro / "ck.npz", ["--save"]),
        "plot in a read-only folder": (ro / "c.png", ["--plot"]),
        "plot over the checkpoint": (
            tmp_path / "x.npz",
            ["--save", str(tmp_path / "x.npz"), "--plot"],
        ),
        "plot over the resumed file": (
            tmp_path / "x.npz",
            ["--resume", str(tmp_path / "x.npz"), "--plot"],
        ),
        "history onto a folder": (tmp_path, ["--history"]),
        "history in a read-only folder": (ro / "h.json", ["--history"]),
        "history over the checkpoint": (
            tmp_path / "x.npz",
            ["--save", str(tmp_path / "x.npz"), "--history"],
        ),
        "history over the plot": (
            tmp_path / "x.png",
            ["--plot", str(tmp_path / "x.png"), "--history"],
        ),
    }[case]
    if "resumed" in case:
        train(epochs=1, hidden=(3,), save=target, log=None)
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.setattr(os, "access", _no_access(ro))
    code, out, err = _run("--epochs", "2", *argv, str(target))
    assert code == 1 and out == ""  # nothing ran, not even the header
    line = _one_line_error(err, target)
    assert {
        "save in a missing folder": "does not exist",
        "save onto a folder": "is a directory",
        "plot onto a folder": "is a directory",
        "save in a read-only folder": "cannot create files in the folder",
        "plot in a read-only folder": "cannot create files in the folder",
        "plot over the checkpoint": "is the checkpoint",
        "plot over the resumed file": "is the checkpoint",
        "history onto a folder": "is a directory",
        "history in a read-only folder": "cannot create files in the folder",
        "history over the checkpoint": "is the checkpoint",
        "history over the plot": "one would replace the other",
    }[case] in line
    assert sorted(tmp_path.rglob("*")) == before


@posix_only
def test_a_checkpoint_past_the_file_size_limit_is_one_line_and_the_old_file_stays(tmp_path):
    """A real write failure: the process may write at most 8 KB per file (RLIMIT_FSIZE; Python
    ignores SIGXFSZ, so write() fails with EFBIG), and the checkpoint needs more."""
    import resource

    ck = tmp_path / "ck.npz"
    ck.write_bytes(b"the old checkpoint")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000))

    proc = subprocess.run(
        [sys.executable, "-m", "tinygrad_sgd", "train", "--epochs", "2", "--save", str(ck)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=120,
        preexec_fn=limit,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {ck}: File too large"]
    assert ck.read_bytes() == b"the old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # no temporary, no lock


def test_a_failed_plot_is_one_line_naming_the_file(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    png = tmp_path / "c.png"
    png.write_bytes(b"old picture")
    code, out, err = _run("--epochs", "1", "--plot", str(png))
    assert code == 1 and "Epoch 0" in out
    assert err.strip().splitlines() == [f"error: {png}: No space left on device"]
    assert png.read_bytes() == b"old picture"


# --------------------------------------------------------------- item 5: tampered configs


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint after epochs 0 and 1 (digits, [64, 6, 10], m = 100)."""
    path = tmp_path_factory.mktemp("base") / "run.npz"
    train(epochs=2, hidden=(6,), batch_size=100, seed=4, save=path, log=None)
    return path


def _tampered(base: Path, path: Path, change) -> Path:
    ck = tg.load(base)
    change(ck)
    tg.save(ck, path)
    return path


def _set(*keys: Any, value: Any):
    def change(ck: dict) -> None:
        for k in keys[:-1]:
            ck = ck[k]
        ck[keys[-1]] = value

    return change


TAMPERED = [
    (("config", "seed"), "abc", "config field 'seed': expected an integer >= 0, got 'abc'"),
    (("config", "seed"), -1, "config field 'seed': expected an integer >= 0, got -1"),
    (
        ("config", "batch_size"),
        "10",
        "config field 'batch_size': expected an integer in [1, 10**9)",
    ),
    (("config", "batch_size"), 10.0, "config field 'batch_size': expected an integer"),
    (
        ("config", "epochs"),
        10**9,
        "config field 'epochs': expected an integer in [0, 10**9), got 1000000000",
    ),
    (("config", "epochs"), -1, "config field 'epochs'"),
    (("config", "hidden"), [2e7], "config field 'hidden': layer sizes: expected an integer"),
    (("config", "hidden"), "30", "config field 'hidden': expected layer sizes"),
    (("config", "lr"), "fast", "config field 'lr': expected a finite number > 0, got 'fast'"),
    (("config", "lr"), math.nan, "config field 'lr': expected a finite number > 0, got nan"),
    (("config", "dtype"), "float16", "config field 'dtype': expected one of float32, float64"),
    (("config", "cost"), None, "config field 'cost': expected one of quadratic, cross-entropy"),
    (("config", "eval_set"), "validation", "only MNIST has a validation set"),
    (("config", "momentum"), 0.9, "unknown config field(s): 'momentum'"),
    (("config",), [1, 2], "the config must be a dict"),
    (("epoch",), 10**12, "the epoch: expected an integer in [0, 10**9)"),
    (("epoch",), 5, "the history: it does not record epochs 0 to 5"),
    (("epoch",), 1.0, "the epoch: expected an integer"),
    (
        ("optimizer", "param_groups", 0, "lr"),
        -1.0,
        "the optimizer state: SGD: invalid learning rate lr=-1.0",
    ),
    (
        ("optimizer", "param_groups", 0, "lr"),
        math.inf,
        "the optimizer state: SGD: lr must be finite",
    ),
    (
        ("optimizer", "param_groups", 0, "lr"),
        0.0,
        "the optimizer state: its learning rate: expected a finite number > 0, got 0.0",
    ),
    (("optimizer", "param_groups", 0, "momentum"), 0.9, "the optimizer state: its settings"),
    (("history", "correct"), [1], "the history: History.from_dict: expected lists of one length"),
    (("history", "total"), [math.inf, 360], "the history: History.from_dict: bad values"),
    (("shuffle_rng", "state", "state"), "x", "the shuffling state: "),
    (
        ("model", "0.weight"),
        Tensor(np.zeros((6, 64), np.float64)),
        "'0.weight' is (6, 64) float64, the network [64, 6, 10] needs (6, 64) float32",
    ),
    (("model", "2.bias"), np.zeros(10, np.float32), "'2.bias' is ndarray"),
    (("model", "4.weight"), Tensor(np.zeros((10, 6), np.float32)), "are not those of the network"),
]


@pytest.mark.parametrize(
    "keys,value,message",
    TAMPERED,
    ids=[f"{'.'.join(map(str, k))}={v!r:.20}" for k, v, _ in TAMPERED],
)
def test_a_tampered_checkpoint_is_refused_in_one_line_naming_it(
    tmp_path, base_checkpoint, keys, value, message
):
    bad = _tampered(base_checkpoint, tmp_path / "tampered.npz", _set(*keys, value=value))
    out_path = tmp_path / "out.npz"
    code, out, err = _run("--resume", str(bad), "--epochs", "3", "--save", str(out_path))
    assert code == 1 and out == ""
    assert message in _one_line_error(err, bad)
    assert not out_path.exists()


@pytest.fixture(scope="module")
def book_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint with chapter 3's states: dropout generators, early stopping and the
    plateau schedule (digits, [64, 6, 10], m = 100, after epochs 0 and 1)."""
    path = tmp_path_factory.mktemp("book") / "run.npz"
    train(
        epochs=2,
        hidden=(6,),
        batch_size=100,
        seed=4,
        dropout=0.5,
        early_stopping=3,
        lr_schedule="plateau:2",
        save=path,
        log=None,
    )
    return path


BOOK_TAMPERED = [
    (("early_stopping", "since"), -5, "early-stopping state: no-improvement-in-n: best_epoch"),
    (("early_stopping", "best"), math.nan, "no-improvement-in-n: best must be a number < inf"),
    (("early_stopping", "n"), 4, "the state is for n = 4, not 3"),
    (("early_stopping", "extra"), 1, "no-improvement-in-n: the state must have the entries"),
    (("early_stopping",), [1, 2], "no-improvement-in-n: the state must have the entries"),
    (("lr_schedule", "lr0"), [-3.0], "plateau schedule: lr0 must be 1 finite number(s) > 0"),
    (("lr_schedule", "lr0"), [], "plateau schedule: lr0 must be 1 finite number(s) > 0"),
    (("lr_schedule", "lr0"), [math.inf], "plateau schedule: lr0 must be 1 finite number(s) > 0"),
    (("lr_schedule", "halvings"), -1, "plateau schedule: halvings must be an int in [0, 7]"),
    (("lr_schedule", "halvings"), 8, "plateau schedule: halvings must be an int in [0, 7]"),
    (("lr_schedule", "watch", "since"), -1, "learning-rate schedule's state: no-improvement"),
    (("dropout_rng",), {}, "the dropout generators: they do not match the network's dropout"),
    (("dropout_rng", "2"), {"bit_generator": "MT19937"}, "the dropout generators: "),
    (("config", "dropout"), 0.0, "the weights need a 2-d array '2.weight'"),
    (("config", "dropout"), 1.0, "config field 'dropout': expected a finite number >= 0 and < 1"),
    (("config", "hidden"), [], "dropout acts on the hidden layers: the network has none"),
    (("config", "lr_schedule"), "plateau:0", "config field 'lr_schedule': expected 'constant'"),
    (("config", "early_stopping"), -1, "config field 'early_stopping': expected an integer in"),
    (("config", "report_gradients"), 1, "config field 'report_gradients': expected True or"),
    (("config", "output"), "softmax", "the quadratic cost does not go with a softmax"),
]


@pytest.mark.parametrize(
    "keys,value,message",
    BOOK_TAMPERED,
    ids=[f"{'.'.join(map(str, k))}={v!r:.20}" for k, v, _ in BOOK_TAMPERED],
)
def test_a_tampered_chapter3_checkpoint_is_refused_in_one_line_naming_it(
    tmp_path, book_checkpoint, keys, value, message
):
    """The states that chapters 3 and 5 add to a checkpoint are checked like the rest: a state
    that no run could have written (a negative count, η₀ not finite and > 0, more halvings
    than the schedule makes, a missing or extra entry) is refused, not resumed."""
    bad = _tampered(book_checkpoint, tmp_path / "tampered.npz", _set(*keys, value=value))
    out_path = tmp_path / "out.npz"
    code, out, err = _run("--resume", str(bad), "--epochs", "4", "--save", str(out_path))
    assert code == 1 and out == ""
    assert message in _one_line_error(err, bad)
    assert not out_path.exists()


def test_the_untampered_chapter3_checkpoint_resumes(tmp_path, book_checkpoint):
    """The control of the test above: the same checkpoint, unchanged, resumes."""
    same = _tampered(book_checkpoint, tmp_path / "same.npz", lambda ck: None)
    code, out, err = _run("--resume", str(same), "--epochs", "3")
    assert code == 0 and "Epoch 2: " in out, err


@pytest.mark.parametrize("hidden", [[2_000_000], [10**9 - 1], [6, 10**8]])
def test_weight_shapes_are_checked_against_the_config_before_allocating(
    tmp_path, base_checkpoint, hidden
):
    """A 20 KB file saying ``hidden: [2000000]`` used to cost 1.5 GB and 6 s before the
    mismatch was reported (``[2e7]``: MemoryError): now the shapes are compared first."""
    bad = _tampered(base_checkpoint, tmp_path / "big.npz", _set("config", "hidden", value=hidden))
    tracemalloc.start()
    try:
        code, _, err = _run("--resume", str(bad), "--epochs", "3")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 1
    line = _one_line_error(err, bad)
    assert "damaged or mismatched training checkpoint: the weights " in line
    assert peak < 5_000_000, f"{peak} bytes traced"  # the file's arrays are 2 KB


def test_the_header_prints_the_learning_rate_in_force(tmp_path, base_checkpoint):
    """An optimizer state whose η differs from the config's (tampered, or changed by a
    schedule) is what the run uses: the header says so."""
    slow = _tampered(
        base_checkpoint,
        tmp_path / "slow.npz",
        _set("optimizer", "param_groups", 0, "lr", value=0.01),
    )
    code, out, _ = _run("--resume", str(slow), "--epochs", "3", "--save", str(slow))
    assert code == 0
    assert "η = 0.01 (from the checkpoint's optimizer state; the config's η is 3.0), m = 100" in out
    assert tg.load(slow)["optimizer"]["param_groups"][0]["lr"] == 0.01
    code, out, _ = _run("--resume", str(base_checkpoint), "--epochs", "3")
    assert code == 0 and "η = 3.0, m = 100" in out


def test_a_deeply_nested_checkpoint_is_refused_naming_it(tmp_path):
    bad = tmp_path / "deep.npz"
    meta = '{"format": 1, "root": ' + '{"t": "list", "items": [' * 5000 + "]}" * 5000 + "}"
    np.savez(bad, __tinygrad_sgd__=np.array(meta))
    code, _, err = _run("--resume", str(bad))
    assert code == 1 and "nested" in _one_line_error(err, bad)


# ---------------------------------------------------------------- item 9: small holes


@pytest.mark.parametrize("command", [["graph", "x*y"], ["gradcheck", "--ops", "exp"], ["train"]])
def test_a_negative_seed_is_refused_naming_the_option(capsys, command):
    with pytest.raises(SystemExit) as info:
        main([*command, "--seed", "-1"])
    assert info.value.code == 2
    assert "argument --seed: expected an integer >= 0, got -1" in capsys.readouterr().err


@posix_only
def test_resume_of_a_fifo_is_refused_at_once(tmp_path):
    """Reading a FIFO with no writer used to wait forever (here: until the timeout)."""
    fifo = tmp_path / "ck.npz"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "tinygrad_sgd", "train", "--resume", str(fifo)],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: load: {str(fifo)!r} is a FIFO, not a checkpoint file"
    ]
    with pytest.raises(ValueError, match="is a directory, not a checkpoint file"):
        tg.load(tmp_path)


def test_an_unreadable_checkpoint_is_one_line_naming_it(tmp_path, base_checkpoint, monkeypatch):
    real_open = os.open

    def deny(path, *args, **kwargs):
        if os.fspath(path) == str(base_checkpoint):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    code, _, err = _run("--resume", str(base_checkpoint), "--epochs", "3")
    assert code == 1
    assert err.strip().splitlines() == [f"error: {base_checkpoint}: Permission denied"]


def test_a_data_folder_that_cannot_be_searched_is_one_line(tmp_path, monkeypatch):
    """Without search (x) permission on the folder, stat() of its files fails with EACCES,
    which Path.is_file() raised as a traceback (it only swallows 'does not exist')."""
    d = tmp_path / "mnist"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == str(d):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    code, out, err = _run("--dataset", "mnist", "--data-dir", str(d))
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        f"error: {d / 'train-images-idx3-ubyte.gz'}: cannot read: Permission denied"
    ]


# ------------------------------------------------------------------- item 11: the lock


HOLD = """
import sys
from tinygrad_sgd._atomic import writer_lock
with writer_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""

TRY = """
import sys
from tinygrad_sgd._atomic import FileLockedError, writer_lock
try:
    with writer_lock(sys.argv[1]):
        pass
except FileLockedError as e:
    print(e)
    sys.exit(3)
"""


@contextlib.contextmanager
def _held(path: Path):
    """A subprocess holding the writer lock of ``path`` until the block ends."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        if proc.poll() is None:
            proc.communicate("", timeout=30)


@posix_only
def test_a_second_writer_of_the_same_checkpoint_is_refused(tmp_path):
    ck = tmp_path / "ck.npz"
    link = tmp_path / "link.npz"
    link.symlink_to(ck.name)
    with _held(ck) as holder:
        for path in (ck, link):  # the link's target is the same file, with the same lock
            code, out, err = _run("--epochs", "1", "--save", str(path))
            assert code == 1 and out == ""
            line = _one_line_error(err, path)
            assert f"another run is writing this file (process {holder.pid})" in line
        assert not ck.exists()
    assert holder.returncode == 0
    assert _run("--epochs", "1", "--save", str(ck))[0] == 0  # the lock was given back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "link.npz"]


@posix_only
def test_the_lock_is_held_for_the_whole_run_and_removed_after(tmp_path):
    ck, answers = tmp_path / "ck.npz", []

    def log(line: str) -> None:  # during the run: another process asks for the lock
        if line.startswith("Epoch 1"):
            proc = subprocess.run(
                [sys.executable, "-c", TRY, str(ck)],
                capture_output=True,
                text=True,
                env=_env(),
                timeout=60,
            )
            answers.append((proc.returncode, proc.stdout))

    train(epochs=3, hidden=(4,), save=ck, log=log)
    assert len(answers) == 1 and answers[0][0] == 3
    assert f"(process {os.getpid()})" in answers[0][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]
    with writer_lock(ck):  # free again
        with pytest.raises(FileLockedError):  # flock locks per open file: one per writer
            with writer_lock(ck):
                pass


@posix_only
def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path):
    ck = tmp_path / "ck.npz"
    with _held(ck) as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    assert (tmp_path / ".ck.npz.lock").exists()  # the file stays; the kernel dropped the lock
    assert _run("--epochs", "1", "--save", str(ck))[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]


# --------------------------------------------------------- the hostile-checkpoint fuzzer

HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from([0, 6, 100, 10**9 - 1, 10**9, 2**63, 2**64 + 1, -(2**70), 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "abc",
            "10",
            "3.0",
            "nan",
            "digits",
            "float16",
            "float64",
            "validation",
            "cross-entropy",
            "scaled",
            "\x00",
            "ééé",
        ]
    ),
    st.lists(st.integers(-2, 3_000_000), max_size=3),
    st.lists(st.sampled_from([6, 6.0, "6", None, True, [6]]), max_size=2),
    st.dictionaries(st.sampled_from(["a", "lr", "state", "0"]), st.integers(0, 3), max_size=2),
)

FILLS = [0.0, 1.0, -0.5, 1e30, math.nan, math.inf, -math.inf]


@st.composite
def hostile_arrays(draw) -> Any:
    dtype = draw(st.sampled_from(["float32", "float64", "float16", "int64", "bool", "complex64"]))
    shape = draw(
        st.one_of(
            st.lists(st.integers(0, 7), max_size=3).map(tuple),
            st.sampled_from([(0, 10**9), (10**9, 0), (6, 64), (10, 6), (6,), (10,), (64, 6)]),
        )
    )
    with np.errstate(all="ignore"):
        arr = np.full(shape, draw(st.sampled_from(FILLS))).astype(dtype)
    return Tensor._wrap(arr) if draw(st.booleans()) else arr


# Where a mutation may land: a path of keys into the checkpoint dict.
TARGETS = (
    [("config", k) for k in [*CONFIG_FIELDS, "extra"]]
    + [("model", k) for k in ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight"]]
    + [
        ("optimizer", "param_groups", 0, k)
        for k in [
            "lr",
            "momentum",
            "dampening",
            "weight_decay",
            "nesterov",
            "maximize",
            "params",
            "extra",
        ]
    ]
    + [("optimizer", "state"), ("optimizer", "param_groups"), ("epoch",), ("format",)]
    + [("history", k) for k in ["epoch", "train_cost", "eval_cost", "correct", "total", "seconds"]]
    + [
        ("shuffle_rng", "state", "state"),
        ("shuffle_rng", "state", "inc"),
        ("shuffle_rng", "bit_generator"),
        ("shuffle_rng", "has_uint32"),
    ]
    + [(k,) for k in ["config", "model", "optimizer", "history", "shuffle_rng"]]
)


# Values that a checkpoint may hold there (changing the run, or not at all): some mutations
# must be accepted, so that the fuzzer also checks what an accepted checkpoint does.
VALID: dict[tuple, list[Any]] = {
    ("config", "seed"): [4, 7, 2**70],
    ("config", "epochs"): [0, 2, 10**9 - 1],
    ("config", "batch_size"): [100, 1000, 10**9 - 1],
    ("config", "lr"): [3.0, 1e-3, 1e10],
    ("config", "cost"): ["quadratic", "cross-entropy"],
    ("config", "init"): ["standard", "scaled"],
    ("config", "hidden"): [[6], (6,)],
    ("config", "dtype"): ["float32"],
    ("config", "eval_set"): ["test"],
    ("config", "dataset"): ["digits"],
    ("optimizer", "param_groups", 0, "lr"): [3.0, 0.01, 1e-30],
    ("epoch",): [1],
    ("history", "correct"): [[0, 360]],
    ("history", "seconds"): [[0.0, 1e300]],
}
BASE_SHAPES = {"0.weight": (6, 64), "0.bias": (6,), "2.weight": (10, 6), "2.bias": (10,)}


@st.composite
def mutations(draw) -> list[tuple[tuple, str, Any]]:
    """1 to 3 changes: (path, "set" or "delete", value)."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(TARGETS))
        how = draw(st.sampled_from(["set", "valid", "valid", "delete"]))
        if how == "valid" and path in VALID:
            value = draw(st.sampled_from(VALID[path]))
        elif how == "valid" and path[0] == "model" and path[1:] and path[1] in BASE_SHAPES:
            fill = draw(st.sampled_from([-1.0, 0.0, 0.5, 3.0]))
            value = Tensor._wrap(np.full(BASE_SHAPES[path[1]], fill, np.float32))
        elif path[0] == "model" and draw(st.booleans()):
            value = draw(hostile_arrays())
        else:
            value = draw(HOSTILE_VALUES)
        out.append((path, "delete" if how == "delete" else "set", value))
    return out


def _apply(ck: dict, mutation: list[tuple[tuple, str, Any]]) -> dict:
    ck = copy.deepcopy(ck)
    for path, how, value in mutation:
        node: Any = ck
        try:
            for k in path[:-1]:
                node = node[k]
            if how == "delete":
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):  # an earlier change removed the way there
            pass
    return ck


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (Tensor, np.ndarray)):
        da, db = (
            (x.data if isinstance(x, Tensor) else x for x in (a, b))
            if isinstance(b, (Tensor, np.ndarray))
            else (None, None)
        )
        return (
            type(a) is type(b)
            and da.dtype == db.dtype
            and da.shape == db.shape
            and bool(np.array_equal(da, db, equal_nan=True))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def _epoch_lines(out: str) -> list[str]:
    """The 'Epoch k: ...' lines without the seconds."""
    return [re.sub(r", [\d.]+ s$", "", ln) for ln in out.splitlines() if ln.startswith("Epoch")]


@pytest.fixture(scope="module")
def baseline(base_checkpoint, tmp_path_factory) -> tuple[dict, list[str], dict]:
    """The base checkpoint, and what resuming it for epoch 2 prints and saves."""
    out_path = tmp_path_factory.mktemp("baseline") / "out.npz"
    code, out, err = _run(
        "--resume", str(base_checkpoint), "--epochs", "3", "--no-download", "--save", str(out_path)
    )
    assert code == 0, err
    return tg.load(base_checkpoint), _epoch_lines(out), tg.load(out_path)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutation=mutations())
def test_hostile_checkpoints_are_refused_in_one_line_or_resume_cleanly(
    tmp_path_factory, baseline, mutation
):
    """Every mutation of a real checkpoint (its config, weights, optimizer, epoch, history,
    shuffling state) ends in one of two ways: exit 1 with one line ``error: ...`` naming the
    file (no traceback, no output file), or a resume (exit 0, the epoch-2 line, a checkpoint
    that loads again; or the one-line error of a diverged epoch 2, nothing written), identical
    to the original's when the change was none; and the memory traced stays under 32 MB (a
    clean resume takes about 1 MB)."""
    base, base_lines, base_out = baseline
    ck = _apply(base, mutation)
    folder = tmp_path_factory.mktemp("fuzz")
    path, out_path = folder / "hostile.npz", folder / "out.npz"
    tg.save(ck, path)
    tracemalloc.start()
    try:
        with np.errstate(all="ignore"):
            code, out, err = _run(
                "--resume", str(path), "--epochs", "3", "--no-download", "--save", str(out_path)
            )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32_000_000, f"{peak} bytes traced for {mutation!r}"
    if code != 0:
        assert code == 1, err
        line = err.strip().splitlines()[-1]
        if "epoch 2" in line:  # accepted, then epoch 2 diverged: nothing written
            assert "Traceback" not in err and line.startswith("error: ")
        else:
            _one_line_error(err, path)
            assert "Epoch" not in out
        assert not out_path.exists()
        return
    assert (
        "Traceback" not in err
        and len(_epoch_lines(out)) == 1
        and _epoch_lines(out)[0].startswith("Epoch 2: ")
    )
    load_checkpoint(out_path)
    if _same(ck, base):
        assert _epoch_lines(out) == base_lines
        assert _same(tg.load(out_path)["model"], base_out["model"])
