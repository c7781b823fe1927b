"""The MNIST downloader against real HTTP servers on 127.0.0.1 serving small generated files:
a dead mirror, a mirror with a wrong file, a truncated or oversized one, a stalled one, and a good
one. Nothing here leaves the machine."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from tinygrad_sgd.data import DownloadError, load_mnist, write_idx
from tinygrad_sgd.data.mnist import RemoteFile, download

NAMES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class _Handler(SimpleHTTPRequestHandler):
    requests: list[str]
    stall: float = 0.0

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.requests.append(self.path)
        if self.stall:
            time.sleep(self.stall)
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on a stalled reply (the point of the test): no traceback


@contextmanager
def serve(folder: Path, stall: float = 0.0) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving ``folder``; yields (base URL, request log)."""
    log: list[str] = []
    handler = type("H", (_Handler,), {"requests": log, "stall": stall})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def make_remote(folder: Path, seed: int = 0, n_train=24, n_test=8):
    """Four small MNIST-shaped IDX files in ``folder``; returns their RemoteFile records."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    files = []
    for name, arr in zip(NAMES, arrays):
        p = write_idx(folder / name, arr)
        raw = p.read_bytes()
        files.append(RemoteFile(name, hashlib.sha256(raw).hexdigest(), len(raw)))
    return tuple(files), arrays


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_falls_back_past_dead_and_wrong_mirrors(tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO, logger="tinygrad_sgd.data")
    files, _ = make_remote(tmp_path / "good")
    wrong, _ = make_remote(tmp_path / "wrong", seed=99)  # same names, other bytes
    dest = tmp_path / "dest"
    with (
        serve(tmp_path / "wrong") as (wrong_url, wrong_log),
        serve(tmp_path / "good") as (
            good_url,
            good_log,
        ),
    ):
        mirrors = [dead_url(), wrong_url, good_url]
        target = download(files[0], dest, mirrors=mirrors, timeout=5)
    assert target == dest / NAMES[0]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == files[0].sha256
    assert wrong_log == ["/" + NAMES[0]] and good_log == ["/" + NAMES[0]]
    assert _leftovers(dest) == []
    # reported through logging (the mirrors tried, INFO; why each failed, WARNING), not printed
    assert capsys.readouterr() == ("", "")
    tried = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    failed = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert tried == [f"Downloading {url}{NAMES[0]}" for url in mirrors]
    assert "refused" in failed.lower()
    assert ("does not match" in failed) or ("expected" in failed)  # the wrong file was reported


def test_all_mirrors_failing_keeps_nothing_and_names_them(tmp_path):
    files, _ = make_remote(tmp_path / "good")
    make_remote(tmp_path / "wrong", seed=5)
    (tmp_path / "empty").mkdir()
    dest = tmp_path / "dest"
    dead = dead_url()
    with serve(tmp_path / "wrong") as (wrong_url, _), serve(tmp_path / "empty") as (empty_url, _):
        with pytest.raises(DownloadError) as info:
            download(files[2], dest, mirrors=[dead, wrong_url, empty_url], timeout=5)
    msg = str(info.value)
    assert NAMES[2] in msg
    for url in (dead, wrong_url, empty_url):
        assert url + NAMES[2] in msg
    assert "404" in msg
    assert list(dest.iterdir()) == []  # neither the wrong file nor a partial one


def test_wrong_checksum_same_size_rejected(tmp_path):
    files, _ = make_remote(tmp_path / "srv")
    forged = RemoteFile(files[1].name, "0" * 64, files[1].size)
    with serve(tmp_path / "srv") as (url, _):
        with pytest.raises(DownloadError, match="does not match"):
            download(forged, tmp_path / "dest", mirrors=[url], timeout=5)
    assert list((tmp_path / "dest").iterdir()) == []


@pytest.mark.parametrize("delta,msg", [(+1, "got .* bytes, expected"), (-1, "more than the")])
def test_size_mismatch_rejected(tmp_path, delta, msg):
    """The server's file is one byte shorter (truncated) or longer than announced."""
    files, _ = make_remote(tmp_path / "srv")
    claimed = RemoteFile(files[1].name, files[1].sha256, files[1].size + delta)
    with serve(tmp_path / "srv") as (url, _):
        with pytest.raises(DownloadError, match=msg):
            download(claimed, tmp_path / "dest", mirrors=[url], timeout=5)
    assert list((tmp_path / "dest").iterdir()) == []


def test_stalled_mirror_times_out_then_next_one_used(tmp_path):
    files, _ = make_remote(tmp_path / "srv")
    with serve(tmp_path / "srv", stall=3.0) as (slow, _), serve(tmp_path / "srv") as (fast, _):
        t0 = time.monotonic()
        target = download(files[3], tmp_path / "dest", mirrors=[slow, fast], timeout=0.5)
        elapsed = time.monotonic() - t0
    assert target.read_bytes() == (tmp_path / "srv" / NAMES[3]).read_bytes()
    assert elapsed < 2.5  # gave up on the stalled mirror after the timeout, not after 3 s


def test_existing_file_replaced_only_by_a_verified_one(tmp_path):
    files, _ = make_remote(tmp_path / "srv")
    make_remote(tmp_path / "wrong", seed=7)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / NAMES[0]).write_bytes(b"old contents")
    with serve(tmp_path / "wrong") as (url, _):
        with pytest.raises(DownloadError):
            download(files[0], dest, mirrors=[url], timeout=5)
    assert (dest / NAMES[0]).read_bytes() == b"old contents"


def test_progress_display(tmp_path, capsys):
    files, _ = make_remote(tmp_path / "srv", n_train=200)
    with serve(tmp_path / "srv") as (url, _):
        download(files[0], tmp_path / "dest", mirrors=[url], timeout=5, progress=True)
        err = capsys.readouterr().err
        assert "100%" in err and "\r" in err
        download(files[1], tmp_path / "dest", mirrors=[url], timeout=5, progress=False)
        err = capsys.readouterr().err
        assert "%" not in err and "\r" not in err


def test_load_mnist_downloads_into_data_dir_then_reuses_it(tmp_path):
    files, (Xtr, ytr, Xte, yte) = make_remote(tmp_path / "srv")
    data_dir = tmp_path / "data"
    with serve(tmp_path / "srv") as (url, log):
        train, validation, test = load_mnist(
            data_dir, mirrors=[dead_url(), url], files=files, validation_size=4, timeout=5
        )
        assert sorted(log) == sorted("/" + n for n in NAMES)
    assert sorted(p.name for p in data_dir.iterdir()) == sorted(NAMES)
    np.testing.assert_array_equal(train[1], ytr[:20])
    np.testing.assert_array_equal(validation[1], ytr[20:])
    np.testing.assert_allclose(test[0] * 255, Xte.reshape(8, -1), rtol=1e-6)
    # second time: no server at all, the files on disk are used
    _, _, test2 = load_mnist(data_dir, mirrors=[dead_url()], files=files, validation_size=4)
    np.testing.assert_array_equal(test2[1], yte)


def test_load_mnist_downloads_only_missing_files_into_the_cache(tmp_path, monkeypatch):
    from tinygrad_sgd.data import cache_dir

    files, _ = make_remote(tmp_path / "srv")
    cache = cache_dir() / "mnist"
    cache.mkdir(parents=True)
    (cache / NAMES[1]).write_bytes((tmp_path / "srv" / NAMES[1]).read_bytes())
    with serve(tmp_path / "srv") as (url, log):
        load_mnist(mirrors=[url], files=files, validation_size=4, timeout=5)
    assert sorted(log) == sorted("/" + n for n in (NAMES[0], NAMES[2], NAMES[3]))
    assert sorted(p.name for p in cache.iterdir()) == sorted(NAMES)


def test_load_mnist_download_failure_explains_where_to_put_files(tmp_path):
    files, _ = make_remote(tmp_path / "srv")
    with pytest.raises(DownloadError) as info:
        load_mnist(tmp_path / "data", mirrors=[dead_url()], files=files, timeout=5)
    msg = str(info.value)
    assert "every mirror failed" in msg and "Put the four MNIST files" in msg
    assert str(tmp_path / "data") in msg and "mnist.pkl.gz" in msg
    assert [p for p in (tmp_path / "data").iterdir()] == []


def test_silent_by_default_and_the_command_line_prints_the_reports(tmp_path, capsys):
    """A library call prints nothing (the package's logger has only a NullHandler); while a
    command runs (cli.library_reports_on_stderr) the same reports are stderr's lines, as
    ``Downloading <url>`` and ``  failed: <reason>``."""
    from tinygrad_sgd.cli import library_reports_on_stderr

    files, _ = make_remote(tmp_path / "srv")
    with serve(tmp_path / "srv") as (url, _):
        dead = dead_url()
        download(files[0], tmp_path / "a", mirrors=[dead, url], timeout=5, progress=False)
        assert capsys.readouterr() == ("", "")
        with library_reports_on_stderr():
            download(files[0], tmp_path / "b", mirrors=[dead, url], timeout=5, progress=False)
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert out == "" and len(lines) == 3
        assert lines[0] == f"Downloading {dead}{NAMES[0]}"
        assert lines[2] == f"Downloading {url}{NAMES[0]}"
        assert lines[1].startswith("  failed: ") and "refused" in lines[1].lower()
        download(files[0], tmp_path / "c", mirrors=[dead, url], timeout=5, progress=False)
        assert capsys.readouterr() == ("", "")  # the handler went with the command
