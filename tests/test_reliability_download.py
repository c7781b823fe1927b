"""The MNIST downloader against a local HTTP server on 127.0.0.1 that misbehaves on purpose.

tests/test_download.py covers a refused connection, a 404, a wrong file of the right size, a
size that differs from the published one and a server that stalls before answering.  This file
adds the faults of a real network, written byte by byte on a raw socket: a body cut short of its
Content-Length (then the connection closed or reset), a body that stalls half-way, a reply that is
not HTTP at all, a broken chunked body, 500/503 errors, an HTML error page with status 200; each
one as a dead first mirror (survived: the next mirror is used) and as the only mirror (reported,
naming the mirror).  A partial download is never used, neither after a fault nor after the
downloading process is killed (SIGKILL) half-way, and is not left in the cache.
Nothing here leaves the machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tinygrad_sgd.data import DownloadError, MNISTNotFoundError, load_mnist
from tinygrad_sgd.data.mnist import RemoteFile, download

BODY = bytes(range(256)) * 64  # 16 KiB
REMOTE = RemoteFile("blob.gz", hashlib.sha256(BODY).hexdigest(), len(BODY))
TIMEOUT = 0.4  # seconds without data before a mirror is given up


def _reply(conn: socket.socket, mode: str, body: bytes, hold: threading.Event) -> None:
    """Answer one request the way ``mode`` says."""
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    half = body[: len(body) // 2]
    if mode == "good":
        conn.sendall(head + body)
    elif mode == "short-close":  # Content-Length larger than what is sent, then a clean close
        conn.sendall(head + half)
    elif mode == "short-reset":  # ... then a reset (RST) instead of a close
        conn.sendall(head + half)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "stall-body":  # half the body, then silence longer than the timeout
        conn.sendall(head + half)
        hold.wait(30)
    elif mode == "trickle":  # a byte now and then: never silent for a whole timeout
        conn.sendall(head)
        for byte in body:
            if hold.wait(TIMEOUT / 4):
                break
            conn.sendall(bytes([byte]))
    elif mode == "stall-head":  # the request is read, no answer comes
        hold.wait(30)
    elif mode == "not-http":
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    elif mode == "bad-chunked":
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    elif mode in ("500", "503"):
        conn.sendall(b"HTTP/1.1 %s Server Trouble\r\nContent-Length: 0\r\n\r\n" % mode.encode())
    elif mode == "html-200":  # a captive portal or an error page served with status 200
        page = b"<html><body>Please log in</body></html>"
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(page) + page)
    elif mode == "wrong-bytes":  # right length, other content
        conn.sendall(head + bytes(len(body)))
    else:  # pragma: no cover - a typo in a test
        raise AssertionError(mode)


@contextmanager
def server(mode: str, body: bytes = BODY) -> Iterator[tuple[str, list[str]]]:
    """A raw HTTP server on 127.0.0.1 answering every request with ``mode``.

    Yields (base URL, list of request lines received)."""
    log: list[str] = []
    hold = threading.Event()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.05)

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                request = conn.recv(65536)
                log.append(request.split(b"\r\n", 1)[0].decode("latin1"))
                _reply(conn, mode, body, hold)
            except OSError:
                pass

    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.getsockname()[1]}/", log
    finally:
        hold.set()
        stop.set()
        thread.join(5)
        srv.close()


def dead_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


BAD_MODES = [
    "short-close",
    "short-reset",
    "stall-body",
    "stall-head",
    "not-http",
    "trickle",
    "bad-chunked",
    "500",
    "503",
    "html-200",
    "wrong-bytes",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.mark.parametrize("mode", BAD_MODES)
def test_bad_first_mirror_is_survived(tmp_path, caplog, mode):
    caplog.set_level(logging.INFO, logger="tinygrad_sgd.data")
    dest = tmp_path / "dest"
    with server(mode) as (bad, bad_log), server("good") as (good, good_log):
        t0 = time.monotonic()
        target = download(REMOTE, dest, mirrors=[bad, good], timeout=TIMEOUT, progress=False)
        elapsed = time.monotonic() - t0
    assert target == dest / REMOTE.name and target.read_bytes() == BODY
    assert bad_log == [f"GET /{REMOTE.name} HTTP/1.1"]  # the bad mirror was really asked
    assert good_log == [f"GET /{REMOTE.name} HTTP/1.1"]
    assert sorted(p.name for p in dest.iterdir()) == [REMOTE.name]  # no temporary file left
    err = caplog.text
    assert f"Downloading {bad}{REMOTE.name}" in err and "failed:" in err
    assert elapsed < 10 * TIMEOUT + 2  # a stalled mirror is dropped after about the timeout


@pytest.mark.parametrize("mode", BAD_MODES)
def test_bad_only_mirror_is_reported_and_nothing_kept(tmp_path, mode):
    dest = tmp_path / "dest"
    with server(mode) as (bad, _):
        with pytest.raises(DownloadError) as info:
            download(REMOTE, dest, mirrors=[bad], timeout=TIMEOUT, progress=False)
    msg = str(info.value)
    assert f"could not download {REMOTE.name}" in msg and f"{bad}{REMOTE.name}: " in msg
    reason = msg.split(f"{bad}{REMOTE.name}: ", 1)[1].strip()
    assert reason  # says why, e.g. "timed out", "HTTP 500 Server Trouble", "got 8192 bytes"
    assert list(dest.iterdir()) == []


@pytest.mark.parametrize(
    "mode,why",
    [
        ("short-close", "got 8192 bytes, expected 16384"),
        ("stall-body", "timed out"),
        ("stall-head", "timed out"),
        ("trickle", "too slow"),
        ("500", "HTTP 500"),
        ("html-200", "got 39 bytes, expected 16384"),
        ("wrong-bytes", "does not match"),
    ],
)
def test_the_reason_is_the_right_one(tmp_path, mode, why):
    with server(mode) as (bad, _):
        with pytest.raises(DownloadError, match=why):
            download(REMOTE, tmp_path / "d", mirrors=[bad], timeout=TIMEOUT, progress=False)


def test_every_mirror_bad_in_turn_then_a_good_one(tmp_path, caplog):
    """The real order of events: a refused connection, a stall, a cut, a 500, then success."""
    modes = ["stall-head", "short-reset", "500", "not-http"]
    with (
        server(modes[0]) as (m0, _),
        server(modes[1]) as (m1, _),
        server(modes[2]) as (m2, _),
        server(modes[3]) as (m3, _),
        server("good") as (good, _),
    ):
        mirrors = [dead_url(), m0, m1, m2, m3, good]
        caplog.set_level(logging.INFO, logger="tinygrad_sgd.data")
        target = download(REMOTE, tmp_path, mirrors=mirrors, timeout=TIMEOUT, progress=False)
    assert target.read_bytes() == BODY
    err = caplog.text
    assert err.count("failed:") == 5 and err.count("Downloading ") == 6


def test_partial_download_never_reaches_the_cache(tmp_path):
    """load_mnist with the cache as destination: a cut file is neither kept nor used later."""
    from tinygrad_sgd.data import cache_dir

    names = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    files = tuple(RemoteFile(n, REMOTE.sha256, REMOTE.size) for n in names)
    with server("short-close") as (cut, _), server("stall-body") as (stall, _):
        with pytest.raises(DownloadError):
            load_mnist(mirrors=[cut, stall], files=files, timeout=TIMEOUT, progress=False)
    cache = cache_dir() / "mnist"
    assert list(cache.iterdir()) == []  # not the partial file, not a temporary file
    with pytest.raises(MNISTNotFoundError):
        load_mnist(download=False, files=files)


_KILLED_DOWNLOAD = """
import sys
from tinygrad_sgd.data.mnist import RemoteFile, download
remote = RemoteFile(sys.argv[3], sys.argv[4], int(sys.argv[5]))
download(remote, sys.argv[1], mirrors=[sys.argv[2]], timeout=60, progress=False)
print("finished")  # never reached: the test kills the process during the download
"""


def test_download_killed_half_way_leaves_nothing_usable(tmp_path):
    """SIGKILL while the body is arriving: no file under the final name, load_mnist does not
    take the partial file, and the next download removes the leftover temporary file."""
    dest = tmp_path / "cache"
    big = bytes(range(256)) * 1024  # 256 KiB: the downloader writes 64 KiB at a time
    remote = RemoteFile(REMOTE.name, hashlib.sha256(big).hexdigest(), len(big))
    with server("stall-body", big) as (stalling, log):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_DOWNLOAD, str(dest), stalling, remote.name]
            + [remote.sha256, str(remote.size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 20
            partial: list[Path] = []
            while time.monotonic() < deadline:  # wait until half the body is on disk
                partial = [p for p in dest.glob(".*.tmp") if p.stat().st_size > 0]
                if partial and partial[0].stat().st_size == len(big) // 2:
                    break
                time.sleep(0.02)
            assert partial, "the download never started writing"
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL and b"finished" not in out
    assert not (dest / remote.name).exists()
    leftover = partial[0]
    assert leftover.exists() and leftover.stat().st_size == len(big) // 2
    files = (remote,) * 4
    with pytest.raises(MNISTNotFoundError):  # the partial file is not mistaken for the data
        load_mnist(dest, download=False, files=files)
    # The next download cleans it up: the process that was writing it no longer runs.
    assert leftover.name.startswith(f".{remote.name}.{proc.pid}.")
    with server("good", big) as (good, _):
        download(remote, dest, mirrors=[good], timeout=1.0, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [remote.name]
    assert (dest / remote.name).read_bytes() == big


def test_a_live_download_s_temporary_file_is_not_removed(tmp_path):
    """Only stale temporary files are cleaned: one named after a process that still runs (here
    the test's parent process) belongs to a download in progress and is left alone."""
    dest = tmp_path
    fresh = dest / f".{REMOTE.name}.{os.getppid()}.{'0123456789abcdef'}.tmp"
    fresh.write_bytes(b"in progress")
    with server("good") as (good, _):
        download(REMOTE, dest, mirrors=[good], timeout=5.0, progress=False)
    assert fresh.read_bytes() == b"in progress"
