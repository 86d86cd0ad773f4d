"""The one atomic-write helper: a file appears under its name complete, or not at all.

A file appears under its final name only by ``os.replace`` of a complete
temporary written beside it, and durability is an explicit ``fsync`` of the
file and of the directory holding its name (POSIX makes a rename durable only
when the directory is synced). A write that raises removes its temporary; a
process killed mid-write leaves at most the temporary (``*.partial``, which
``compstore gc`` sweeps), never a partial file under the final name.

This is a leaf module (the standard library only): the blob store
(`compstore.cas`), the repository config (`compstore._repository`) and the FITS
writers (`compstore.fits`) all write through it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Iterator
from typing import Final

__all__ = ["fsync_dir", "fsync_file", "partial_name", "replace_atomically", "write_atomic"]


_RANDOM: Final = secrets.token_hex(4)  # drawn once: os.urandom per write was a syscall each
_COUNTER: Final = itertools.count()  # next() is atomic in CPython: unique across threads


def partial_name(path: str) -> str:
    """Return a unique temporary name beside ``path`` (``<path>.<unique>.partial``).

    Process id, a random part drawn per process and a counter: two writers of
    the same content (threads, processes, hosts sharing a file system) never
    share a temporary file.
    """
    return f"{path}.{os.getpid()}-{_RANDOM}-{next(_COUNTER)}.partial"


@contextlib.contextmanager
def replace_atomically(
    path: str | os.PathLike[str],
    *,
    fsync: bool = False,
    sync_dir: bool = False,
    partial: str | None = None,
) -> Iterator[str]:
    """Yield a temporary name to write; on success it replaces ``path``.

    Parameters
    ----------
    path
        The final name.
    fsync
        Sync the temporary's content before the rename, so the final name never
        points at incomplete content even after a power cut.
    sync_dir
        Sync the directory after the rename, so the new name itself lasts.
    partial
        The temporary's name; by default a unique one (`partial_name`). A fixed
        name (``<path>.partial``) is for callers that look for it afterwards.

    Raises
    ------
    OSError
        If the rename or a sync fails (the temporary is removed).
    """
    final = os.fspath(path)
    tmp = partial_name(final) if partial is None else partial
    try:
        yield tmp
        if fsync:
            fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(os.path.dirname(os.path.abspath(final)))


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    *,
    fsync: bool = False,
    sync_dir: bool = False,
    partial: str | None = None,
) -> None:
    """Write ``data`` to ``path`` through a ``.partial`` temporary and ``os.replace``.

    With ``fsync`` the temporary is synced before the rename; with ``sync_dir``
    the directory is synced after it (see `replace_atomically`). A unique
    temporary is created exclusively; a fixed ``partial`` name is overwritten
    (it is what a writer killed earlier left behind).
    """
    final = os.fspath(path)
    tmp = partial_name(final) if partial is None else partial
    try:
        with open(tmp, "xb" if partial is None else "wb") as f:
            f.write(data)
            if fsync:
                # Through the open descriptor: one open fewer than fsync_file.
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(os.path.dirname(os.path.abspath(final)))


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
