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
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["NotAFileError", "atomic_open", "atomic_write", "remove_stale"]


class NotAFileError(OSError):
    """The output path exists and is not a regular file (a directory, device, FIFO or socket)."""


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
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        raise NotAFileError(f"{shown}: is {kind}, not a regular file; refusing to replace it")
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
