"""``tinygrad_sgd._atomic``: every file the package writes goes through one atomic writer, which
writes through symlinks, refuses directories, devices and FIFOs, gives new files the mode the
umask implies, and removes the temporary files of killed saves (and nothing else).

Each writer of the package is checked: ``tg.save`` (and so ``train --save``), ``graph --output``,
``data.write_idx`` (the MNIST files) and ``plot_history`` (``train --plot``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import tinygrad_sgd as tg
from tinygrad_sgd._atomic import NotAFileError, atomic_open, atomic_write
from tinygrad_sgd.cli import main
from tinygrad_sgd.data import write_idx
from tinygrad_sgd.train import History, plot_history

posix_only = pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs and umask are POSIX")


def _history() -> History:
    h = History()
    h.append(0, 1.0, 0.9, 5, 10, 0.1)
    return h


def _graph(path: Path) -> None:
    rc = main(["graph", "tanh(a) * b", "--output", str(path)])
    if rc != 0:
        raise OSError(f"graph --output exited with {rc}")


# name -> (write to a path, check that the path holds what was written)
WRITERS: dict[str, Callable[[Path], None]] = {
    "atomic_write": lambda p: atomic_write(p, b"new"),
    "tg.save": lambda p: tg.save({"w": np.arange(3.0)}, p),
    "graph --output": _graph,
    "write_idx": lambda p: write_idx(p, np.arange(6, dtype=np.uint8)),
    "plot_history": lambda p: plot_history(_history(), p),
}


def _holds_new_content(name: str, path: Path) -> bool:
    data = path.read_bytes()
    if name == "atomic_write":
        return data == b"new"
    if name == "tg.save":
        return bool(np.array_equal(tg.load(path)["w"], np.arange(3.0)))
    if name == "graph --output":
        return data.startswith(b"digraph")
    if name == "write_idx":
        return data[:4] == bytes([0, 0, 8, 1])  # IDX magic: unsigned bytes, 1 dimension
    return data.startswith(b"\x89PNG")


def _needs(name: str) -> None:
    if name == "plot_history":
        pytest.importorskip("matplotlib")


# ------------------------------------------------------------------------------------ symlinks


@posix_only
@pytest.mark.parametrize("name", WRITERS)
def test_a_symlink_is_written_through_and_stays_a_link(tmp_path, name, capsys):
    _needs(name)
    real = tmp_path / "data" / "target.bin"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(Path("data") / "target.bin")  # a relative link, as users make them
    WRITERS[name](link)
    assert link.is_symlink() and os.readlink(link) == str(Path("data") / "target.bin")
    assert _holds_new_content(name, real)
    assert sorted(p.name for p in real.parent.iterdir()) == ["target.bin"]  # no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "link.bin"]


@posix_only
def test_a_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "new.bin")
    atomic_write(link, b"x")
    assert link.is_symlink() and (tmp_path / "new.bin").read_bytes() == b"x"


# ------------------------------------------------------------------ paths that are not files


def _fifo(tmp_path: Path) -> Path:
    p = tmp_path / "pipe"
    os.mkfifo(p)
    return p


def _directory(tmp_path: Path) -> Path:
    p = tmp_path / "folder.npz"
    p.mkdir()
    return p


@posix_only
@pytest.mark.parametrize("make,kind", [(_fifo, "a FIFO"), (_directory, "a directory")])
@pytest.mark.parametrize("name", WRITERS)
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, name, make, kind, capsys):
    _needs(name)
    path = make(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError) as info:
        WRITERS[name](path)
    if name == "graph --output":  # the command prints the error and exits with status 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err and kind in err
    else:
        assert isinstance(info.value, NotAFileError)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and kind in message
    mode = os.lstat(path).st_mode
    assert stat.S_ISFIFO(mode) if kind == "a FIFO" else stat.S_ISDIR(mode)  # left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@posix_only
def test_a_link_to_a_device_is_refused_naming_both(tmp_path):
    link = tmp_path / "null.npz"
    link.symlink_to(os.devnull)
    with pytest.raises(NotAFileError, match=rf"null\.npz \(-> {os.devnull}\): is a character"):
        tg.save({"w": np.ones(2)}, link)
    assert link.is_symlink()


def test_train_save_onto_a_directory_is_a_one_line_error(tmp_path, capsys):
    target = _directory(tmp_path)
    rc = main(["train", "--epochs", "1", "--hidden", "5", "--save", str(target)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("error: ") and err.count("\n") == 1
    assert str(target) in err and "a directory" in err


# ---------------------------------------------------------------------------------- file modes


@posix_only
@pytest.mark.parametrize(
    "umask,mode",
    [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
    ids=["umask022", "umask077", "umask002"],
)
@pytest.mark.parametrize("name", WRITERS)
def test_new_files_get_the_mode_the_umask_implies(tmp_path, name, umask, mode, capsys):
    _needs(name)
    path = tmp_path / "out.bin"
    old = os.umask(umask)
    try:
        WRITERS[name](path)
    finally:
        os.umask(old)
    assert _holds_new_content(name, path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


@posix_only
def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new" and stat.S_IMODE(os.stat(path).st_mode) == 0o640


# ----------------------------------------------------------- temporary files of killed saves


def _dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@posix_only
@pytest.mark.parametrize("name", WRITERS)
def test_stale_temporaries_of_a_killed_save_are_removed_and_nothing_else(tmp_path, name, capsys):
    _needs(name)
    path = tmp_path / "run.npz"
    dead, alive, me = _dead_pid(), os.getppid(), os.getpid()
    token = "0123456789abcdef"
    stale = [
        f".run.npz.{dead}.{token}.tmp",  # left by a process that was killed
        f".run.npz.{me}.fedcba9876543210.tmp",  # this process id, but not being written now
    ]
    kept = [
        f".run.npz.{alive}.{token}.tmp",  # its writer still runs
        f".run.npz.{dead}.{token}.tmp.bak",  # similar names that are not our temporaries
        f".run.npz.{dead}.0123456789ABCDEF.tmp",
        f".run.npz.{dead}.{token[:-1]}.tmp",
        f"run.npz.{dead}.{token}.tmp",
        f".run.npz.old.{dead}.{token}.tmp",  # the temporary of another target, run.npz.old
        f".run.npz.0.{token}.tmp",
        ".run.npz.backup",
    ]
    for n in stale + kept:
        (tmp_path / n).write_bytes(b"half a checkpoint")
    WRITERS[name](path)
    assert _holds_new_content(name, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["run.npz"])


@posix_only
def test_a_link_to_a_temporary_name_is_not_followed_or_removed(tmp_path):
    victim = tmp_path / "precious"
    victim.write_bytes(b"keep")
    link = tmp_path / f".out.{_dead_pid()}.0123456789abcdef.tmp"
    link.symlink_to(victim)
    atomic_write(tmp_path / "out", b"x")
    assert link.is_symlink() and victim.read_bytes() == b"keep"


def test_a_temporary_file_being_written_is_not_removed_by_another_write(tmp_path):
    """Two writes of one file in one process (e.g. two threads): the second one's clean-up
    leaves the first one's temporary file alone, and the last rename wins."""
    path = tmp_path / "out.bin"
    with atomic_open(path) as first:
        first.write(b"first")
        atomic_write(path, b"second")
        assert path.read_bytes() == b"second"
    assert path.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"), atomic_open(path) as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "no" / "such" / "file", b"x")
