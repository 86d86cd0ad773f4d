"""Repository folders as files: copying a filled template, and measuring bytes on disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

__all__ = ["blob_bytes", "copy_repository"]


def blob_bytes(root: str | os.PathLike[str]) -> int:
    """Bytes of every file in the blob store of the repository ``root``.

    The registry is left out: it is not components. Budgets such as "a new Wcs
    costs a Wcs and a manifest" are checked against this.
    """
    total = 0
    for folder, _, files in os.walk(Path(root) / "blobs"):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def copy_repository(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the repository folder ``source`` to the new folder ``target``.

    The registry's write-ahead log is first checkpointed into the database
    file, and the ``-wal``/``-shm`` files are not copied: a connection closing
    in this process (or another) may delete them at any moment, and the
    database file then holds every committed row.

    Raises
    ------
    FileExistsError
        If ``target`` exists.
    """
    source, target = Path(source), Path(target)
    registry = source / "registry.sqlite3"
    if registry.exists():
        with sqlite3.connect(registry) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return target
