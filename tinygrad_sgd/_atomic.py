"""Writing a file atomically: the one way the package writes files (checkpoints, ``tg.save``,
learning-curve plots, ``graph --output`` and pictures, ``data.write_idx``, the MNIST cache).

The bytes go to a temporary file in the target's folder, which is flushed to disk and then
renamed over the target (``os.replace``, atomic on POSIX and Windows): a reader sees the old file
or the new one, never half of one, and a failed or interrupted write leaves the old file intact.

* **Symlinks** are followed: writing ``link`` writes the file it points to, and ``link`` stays a
  link (renaming over the link itself would replace it and leave its target unwritten).
* **Only regular files are replaced.**  A path that exists and is a directory, device node
  (``/dev/null``), FIFO or socket is refused with :class:`NotAFileError`, naming the path;
  renaming over it would turn a device into a plain file.
* **Modes.**  A new file gets the mode a plain ``open(path, "w")`` would give it (0666 less the
  umask, and the folder's default ACL); a replaced file keeps its mode.
* **Stale temporary files** (of a save killed before its rename) are removed; see
  :func:`remove_stale`.

:func:`check_writable` tells, before a long run, whether a path could be written this way, and
:func:`writer_lock` keeps two processes from writing the same file in turns.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import BinaryIO

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock
    fcntl = None

__all__ = [
    "FileLockedError",
    "NotAFileError",
    "atomic_open",
    "atomic_write",
    "check_writable",
    "file_kind",
    "remove_stale",
    "writer_lock",
]


class NotAFileError(OSError):
    """The output path exists and is not a regular file (a directory, device, FIFO or socket)."""


class FileLockedError(OSError):
    """Another process holds the writer lock of the path (see :func:`writer_lock`)."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)

# Temporary files of this process that are being written now (full paths), so that a thread's
# clean-up never removes another thread's file.
_writing: set[str] = set()
_writing_lock = threading.Lock()


def _temp_pattern(name: str) -> re.Pattern[str]:
    """``.NAME.PID.TOKEN.tmp``: the temporary files of target ``NAME`` (TOKEN: 16 hex digits)."""
    return re.compile(rf"\.{re.escape(name)}\.([1-9][0-9]*)\.[0-9a-f]{{16}}\.tmp\Z")


def file_kind(mode: int) -> str:
    """What an ``st_mode`` is, for messages: ``"a directory"``, ``"a FIFO"``, ..."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((k for test, k in _KINDS if test(mode)), "not a regular file")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (True when that cannot be told)."""
    if os.name != "posix":
        return True  # no harmless probe (os.kill would terminate it): keep the file
    try:
        os.kill(pid, 0)  # signal 0: nothing is sent, only the existence is checked
    except ProcessLookupError:
        return False
    except OverflowError:
        return False  # not a possible process id
    except OSError:
        return True  # e.g. PermissionError: it exists and belongs to another user
    return True


def remove_stale(folder: str, name: str) -> list[str]:
    """Remove the temporary files that earlier writes of ``folder/name`` left behind; return
    their paths.

    A temporary file is named ``.NAME.PID.TOKEN.tmp`` after the target and the writing process.
    One is stale, and removed, only when all of these hold: its name has exactly that form for
    this target (any other file, however similar its name, is kept); it is a regular file (not
    a link); and its writer cannot still be writing it: no process PID runs on this machine, or
    PID is this process but the file is not one this process is writing now (it was left by an
    earlier process with the same id).  A file whose PID is alive is kept, even if that id was
    reused by an unrelated process; it is removed by a later write once that process has ended.
    (Writers on other machines sharing the folder, e.g. over NFS, are not known to this rule.)
    """
    pattern = _temp_pattern(name)
    me = os.getpid()
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        pid = int(m.group(1))
        with _writing_lock:
            if entry.path in _writing or (pid != me and _alive(pid)):
                continue
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                os.unlink(entry.path)
            except OSError:  # gone already, or not ours to remove: leave it
                continue
        removed.append(entry.path)
    return removed


def _target(path: str | os.PathLike[str]) -> str:
    """The file that writing ``path`` replaces: symlinks resolved; refused unless it is a
    regular file or does not exist yet (in a folder that does)."""
    given = os.fspath(path)
    target = os.path.realpath(given)
    shown = given if os.path.normpath(given) == target else f"{given} (-> {target})"
    try:
        st = os.stat(target)
    except FileNotFoundError:
        folder = os.path.dirname(target)
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{shown}: the folder {folder} does not exist") from None
        return target
    if not stat.S_ISREG(st.st_mode):
        raise NotAFileError(
            f"{shown}: is {file_kind(st.st_mode)}, not a regular file; refusing to replace it"
        )
    return target


def check_writable(path: str | os.PathLike[str]) -> str:
    """Check that :func:`atomic_open` could write ``path`` now, without writing anything, and
    return the file it would replace (symlinks resolved).

    Raises :class:`NotAFileError` when the path is a directory, device, FIFO or socket,
    ``FileNotFoundError`` when its folder does not exist, and ``PermissionError`` when the
    folder does not let this process create files in it (a new file and the temporary file are
    created there; an existing file need not be writable itself, it is renamed over).  Each
    message names the path.
    """
    target = _target(path)
    folder = os.path.dirname(target)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"{os.fspath(path)}: cannot create files in the folder {folder}")
    return target


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; on leaving the ``with`` block without
    an exception it is flushed to disk and renamed over ``path``, and on an exception it is
    removed and ``path`` keeps its old content (see the module docstring)."""
    target = _target(path)
    folder, name = os.path.split(target)
    remove_stale(folder, name)
    try:
        mode: int | None = os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask (and default ACL)
            break
        except FileExistsError:  # pragma: no cover - 64 random bits: practically never
            continue
    with _writing_lock:
        _writing.add(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        with _writing_lock:
            _writing.discard(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path``'s content by ``data`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)


def _lock_holder(fd: int) -> str:
    """``" (process PID)"`` from a lock file's content, or ``""`` when it holds no process id."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text.isdigit():
            return f" (process {int(text)})"
    return ""


@contextlib.contextmanager
def writer_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold, for the ``with`` block, the advisory lock of writing ``path``.  A second process
    asking for it meanwhile gets :class:`FileLockedError` (naming the path and the holder's
    process id) at once, instead of taking turns writing.

    The lock is ``fcntl.flock`` on ``.NAME.lock`` beside the file that ``path`` resolves to (so
    a symlink and its target share one lock), holding the holder's process id.  The lock file
    is removed on leaving the block; a process killed while holding it leaves the file, but the
    kernel drops the lock with the process, so the next writer simply takes it.  Processes that
    do not ask for the lock (``tg.save``, a plain ``open``) are not stopped: it is advisory.
    Without ``fcntl`` (Windows) nothing is locked.
    """
    target = _target(path)
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    folder, name = os.path.split(target)
    lock_path = os.path.join(folder, f".{name}.lock")
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: flock needs no write access
            fd = os.open(lock_path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise FileLockedError(
                f"{os.fspath(path)}: another run is writing this file{holder}; it holds the "
                f"lock {lock_path}. Wait for it to end, or write to another path"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The holder before us removes the file before it unlocks: if we locked that removed
        # file (or one since replaced), the lock protects nothing; open the path again.
        try:
            current = os.stat(lock_path)
        except FileNotFoundError:
            current = None
        if current is not None and os.path.samestat(os.fstat(fd), current):
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # the holder's id is for messages only
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # while still locked: see the loop above
        os.close(fd)
