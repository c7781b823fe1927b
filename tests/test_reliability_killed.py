"""Killed training: a real ``python -m tinygrad_sgd train --save PATH`` process is killed with
SIGKILL (no chance to clean up) in the middle of an epoch, and ``--resume PATH`` then reaches
exactly the weights of an uninterrupted run with the same seed (``np.array_equal``, every
parameter, and the optimizer and shuffling state too).  Killed in the middle of *saving* a
checkpoint, the previous checkpoint is still there and intact: saves are atomic.

tests/test_train.py and tests/test_cli_train.py resume from a run that ended normally; here the
process dies at an arbitrary moment, as with a power cut or the OOM killer.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd.train import load_checkpoint, train

ROOT = Path(__file__).resolve().parent.parent
RUN = ["--hidden", "10", "--batch-size", "1", "--seed", "5"]  # 1437 steps an epoch (~0.2 s)
EPOCHS = 6

# These tests kill the training process with SIGKILL (no handler, no cleanup) to prove the
# checkpoint is written atomically.  Windows has no SIGKILL, so there is nothing to test there;
# on Linux and macOS (CI included) this never skips.
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # each "Epoch k" line leaves at once
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tinygrad_sgd", "train", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _saved_epoch(path: Path) -> int | None:
    """The epoch recorded in the checkpoint, or None if there is none yet.

    Raises if the file exists but cannot be loaded: a damaged checkpoint fails the test."""
    if not path.exists():
        return None
    return int(tg.load(path)["epoch"])


def _kill(proc: subprocess.Popen[str]) -> str:
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return out


def _same_run(a: dict, b: dict) -> None:
    """Two checkpoints hold exactly the same state (bit for bit)."""
    assert a["epoch"] == b["epoch"]
    assert list(a["model"]) == list(b["model"])
    for k in a["model"]:
        assert np.array_equal(a["model"][k].data, b["model"][k].data), k
    assert a["shuffle_rng"] == b["shuffle_rng"]
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    assert a["history"]["correct"] == b["history"]["correct"]
    assert a["history"]["train_cost"] == b["history"]["train_cost"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    """The reference: the same run, never interrupted (in this process)."""
    path = tmp_path_factory.mktemp("ref") / "ref.npz"
    train(epochs=EPOCHS, hidden=(10,), batch_size=1, seed=5, save=path, log=None)
    return tg.load(path)


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_weights(tmp_path, uninterrupted):
    ck = tmp_path / "run.npz"
    proc = _start(*RUN, "--epochs", str(EPOCHS), "--save", str(ck))
    try:
        # Wait for the checkpoint of epoch 1, then kill part-way through epoch 2.
        deadline = time.monotonic() + 60
        t_first = None
        while time.monotonic() < deadline and proc.poll() is None:
            epoch = _saved_epoch(ck)
            if epoch == 0 and t_first is None:
                t_first = time.monotonic()
            if epoch is not None and epoch >= 1:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "training ended before it could be killed"
        assert t_first is not None
        epoch_time = time.monotonic() - t_first
        time.sleep(0.4 * epoch_time)  # into the next epoch, well before its end
        out = _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    saved = _saved_epoch(ck)
    finished = [int(ln.split()[1].rstrip(":")) for ln in out.splitlines() if ln.startswith("Epoch")]
    assert saved is not None and 1 <= saved < EPOCHS - 1
    # Killed during epoch saved + 1 (or, rarely, after printing its line but before its save).
    assert finished[-1] in (saved, saved + 1)

    resumed = _start("--resume", str(ck), "--epochs", str(EPOCHS), "--save", str(ck))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"Resuming from {ck} after epoch {saved}" in out
    lines = [ln.split(":")[0] for ln in out.splitlines() if ln.startswith("Epoch")]
    assert lines == [f"Epoch {k}" for k in range(saved + 1, EPOCHS)]
    _same_run(tg.load(ck), uninterrupted)


_KILL_DURING_SAVE = """
import os, sys, time, runpy
import numpy as np
real_savez = np.savez
saves = 0

def savez_then_hang(f, **arrays):
    # The second checkpoint: write half of it into the temporary file, then wait to be killed.
    global saves
    saves += 1
    if saves < 2:
        return real_savez(f, **arrays)
    import io
    buf = io.BytesIO()
    real_savez(buf, **arrays)
    data = buf.getvalue()
    f.write(data[: len(data) // 2])
    f.flush()
    print("HALF-WRITTEN", flush=True)
    time.sleep(120)

np.savez = savez_then_hang
sys.argv = ["tinygrad_sgd", "train"] + sys.argv[1:]
runpy.run_module("tinygrad_sgd", run_name="__main__")
"""


def test_sigkill_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, uninterrupted):
    ck = tmp_path / "run.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_DURING_SAVE, *RUN, "--epochs", str(EPOCHS)]
        + ["--save", str(ck)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # wait for the second save to be half-way
            if line.startswith("HALF-WRITTEN"):
                break
        else:
            pytest.fail("the patched save never ran: " + proc.stderr.read())  # type: ignore[union-attr]
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # The killed run's writer lock file stays (the kernel dropped the lock itself).
    leftovers = [p for p in tmp_path.iterdir() if p.name not in ("run.npz", ".run.npz.lock")]
    assert (tmp_path / ".run.npz.lock").exists()
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".run.npz.{proc.pid}.")
    assert 0 < leftovers[0].stat().st_size  # the half-written temporary file
    with pytest.raises(ValueError):  # which is indeed damaged
        tg.load(leftovers[0])
    _, ck_dict = load_checkpoint(ck)  # the checkpoint itself: the previous epoch, intact
    assert ck_dict["epoch"] == 0
    resumed = _start("--resume", str(ck), "--epochs", str(EPOCHS), "--save", str(ck))
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    _same_run(tg.load(ck), uninterrupted)
    # The killed save's temporary file was removed by the next save, the lock file at its end.
    assert [p.name for p in tmp_path.iterdir()] == ["run.npz"]


def test_sigkill_at_random_moments_never_damages_the_checkpoint(tmp_path):
    """Many short epochs (one mini-batch each, then a save of a 120 KB checkpoint), killed at
    random moments: whenever the process dies, the checkpoint loads (or does not exist yet)."""
    rng = random.Random(0)
    kills, mid_save = 0, 0
    for trial in range(4):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        ck = folder / "run.npz"
        argv = ["--hidden", "300", "--batch-size", "1437", "--epochs", "10000", "--save", str(ck)]
        proc = _start(*argv)
        try:
            deadline = time.monotonic() + 60
            while not ck.exists() and time.monotonic() < deadline:  # saving has begun
                time.sleep(0.005)
            time.sleep(rng.uniform(0.05, 0.5))
            assert proc.poll() is None
            _kill(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        kills += 1
        model, ck_dict = load_checkpoint(ck)  # never damaged
        assert ck_dict["epoch"] >= 0 and len(ck_dict["history"].correct) == ck_dict["epoch"] + 1
        mid_save += any(p.name.endswith(".tmp") for p in folder.iterdir())
    assert kills == 4
    # (mid_save counts kills that landed during a save; it depends on timing, so no assertion)
