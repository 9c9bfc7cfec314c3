"""One process per SQLite file: an exclusive lock on `<file>.lock` for as long as the file is
open for writing.

Two processes on one SQLite file would each replay the other's unfinished messages at start and
keep stale copies of each other's settings; the second one is stopped at once instead (several
processes need PostgreSQL). The lock is `flock`'s: the kernel drops it when the process dies,
kill -9 included, so a crash never leaves the file locked. Opens of the same file inside one
process share the lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class FileInUse(Exception):
    """Another process holds the lock; `holder` describes it (" (pid N)") when known."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


_held: dict[Path, tuple[int, int]] = {}  # lock path → (fd, opens in this process)


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


def acquire(database: Path) -> Path:
    """Lock `database` for this process (again, if it holds it already); raise `FileInUse`."""
    path = lock_path(database).resolve()
    if path in _held:
        fd, count = _held[path]
        _held[path] = (fd, count + 1)
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise FileInUse(holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[path] = (fd, 1)
    return path


def release(path: Path) -> None:
    fd, count = _held.get(path, (-1, 0))
    if count > 1:
        _held[path] = (fd, count - 1)
        return
    if count == 1:
        del _held[path]
        os.close(fd)  # closing the descriptor drops the lock


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
