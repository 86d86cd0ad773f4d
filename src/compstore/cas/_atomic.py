"""Small file-system primitives for write-once, atomic, durable files.

A file appears under its final name only by ``os.replace``/``os.rename`` of a
complete temporary, and durability is an explicit ``fsync`` of the file and
of the directory holding its name (POSIX makes a rename durable only when the
directory is synced).
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Final

__all__ = ["fsync_dir", "fsync_file", "partial_name", "write_atomic", "write_new"]


_RANDOM: Final = secrets.token_hex(4)  # drawn once: os.urandom per write was a syscall each
_COUNTER: Final = itertools.count()  # next() is atomic in CPython: unique across threads


def partial_name(path: str) -> str:
    """Return a unique temporary name beside ``path`` (``<path>.<unique>.partial``).

    Process id, a random part drawn per process and a counter: two writers of
    the same content (threads, processes, hosts sharing a file system) never
    share a temporary file.
    """
    return f"{path}.{os.getpid()}-{_RANDOM}-{next(_COUNTER)}.partial"


def write_new(path: str, data: bytes | memoryview) -> None:
    """Write ``data`` to a new file ``path`` (no fsync; the caller batches those)."""
    with open(path, "xb") as f:
        f.write(data)


def write_atomic(path: str, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` through a ``.partial`` temporary and ``os.replace``.

    With ``fsync`` the temporary is synced before the rename, so the final
    name never points at incomplete content even after a power cut (the
    directory still needs :func:`fsync_dir` for the name itself to last).
    """
    tmp = partial_name(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def fsync_file(path: str) -> None:
    """fsync a file's data and metadata by path."""
    _fsync(path, os.O_RDONLY)


def fsync_dir(path: str) -> None:
    """fsync a directory, making the names created or removed in it durable."""
    _fsync(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: str, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
