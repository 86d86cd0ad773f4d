"""Repository folders for tests: filling a template, copying it, measuring bytes on disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["blob_bytes", "copy_repository", "fingerprint", "make_calexp_repository"]


def blob_bytes(root: str | os.PathLike[str]) -> int:
    """Bytes of every file in the blob store of the repository ``root``.

    The registry and the pack index (``packs.sqlite3``: where each packed
    component is, about a hundred bytes a row) are left out: they are not
    components. A pack counts whole, zip headers included. Budgets such as "a
    new Wcs costs a Wcs and a manifest" are checked against this.
    """
    total = 0
    for folder, _, files in os.walk(Path(root) / "blobs"):
        total += sum(
            os.path.getsize(os.path.join(folder, f))
            for f in files
            if not f.startswith("packs.sqlite3")
        )
    return total


def _checkpoint(database: Path) -> None:
    """Move an SQLite database's write-ahead log into the database file, if it exists."""
    if database.exists():
        conn = sqlite3.connect(database)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def copy_repository(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the repository folder ``source`` to the new folder ``target``.

    The write-ahead logs of the registry and of the pack index are first
    checkpointed into their database files, and the ``-wal``/``-shm`` files
    are not copied: a connection closing in this process (or another) may
    delete them at any moment, and the database file then holds every
    committed row.

    Raises
    ------
    FileExistsError
        If ``target`` exists.
    ValueError
        If ``source``'s registry is a PostgreSQL database (not in the folder).
    """
    source, target = Path(source), Path(target)
    config = source / "compstore.json"
    if config.is_file() and '"postgresql' in config.read_text():
        raise ValueError(
            f"{source} keeps its registry in PostgreSQL: a copy of the folder would share "
            "the database (and be refused on open); copy datasets with subset/transfer_from"
        )
    for database in (source / "registry.sqlite3", source / "blobs" / "packs.sqlite3"):
        _checkpoint(database)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return target


def make_calexp_repository(
    root: str | os.PathLike[str], exposures: Mapping[tuple[int, int], Any]
) -> Path:
    """Create a repository in ``root`` whose run ``sfm`` holds a ``calexp`` per (visit, detector).

    The registry is closed afterwards, so the folder can be copied at once
    (`copy_repository`): a filled template copied per test is much faster than
    filling a new repository each time.
    """
    from compstore.butler import Butler  # a test helper: the top layer may be used

    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    for (visit, detector), exposure in exposures.items():
        butler.put(exposure, "calexp", visit=visit, detector=detector)
    butler.registry.close()
    return Path(root)


def fingerprint(obj: Any) -> str:
    """A digest of everything a read returned: an Exposure's planes, Wcs, Calib, Psf...,
    or a SourceCatalog's columns (values and units), Wcs and Calib.

    Two reads with the same fingerprint returned the same science; the
    reliability tests compare a read after damage with one before.
    """
    import numpy as np
    import xxhash

    h = xxhash.xxh3_128()

    def feed(value: Any) -> None:
        if isinstance(value, np.ndarray):
            h.update(repr((value.dtype.str, value.shape)).encode())
            h.update(np.ascontiguousarray(value).tobytes())
        elif hasattr(value, "to_dict"):
            h.update(repr(value.to_dict()).encode())
        else:
            h.update(repr(value).encode())

    if hasattr(obj, "masked_image"):  # an Exposure
        for value in (obj.image, obj.mask.array, obj.variance, obj.xy0, obj.wcs, obj.calib,
                      obj.psf, obj.visit_info, obj.background, sorted(obj.metadata.items()),
                      obj.band, obj.detector):  # fmt: skip
            feed(value)
    else:  # a SourceCatalog
        table = obj.table
        for name in obj.columns:
            feed(np.asarray(table[name]))
            feed(str(table[name].unit))
        feed(obj.wcs)
        feed(obj.calib)
    return h.hexdigest()
