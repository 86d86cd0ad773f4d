"""Copying a whole repository folder, for test fixtures that start from a filled template."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

__all__ = ["copy_repository"]


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
