"""Repository folders for tests: filling a template, copying it, measuring bytes on disk."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FlipTally",
    "blob_bytes",
    "copy_repository",
    "fingerprint",
    "make_calexp_repository",
    "read_everything",
]


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


def read_everything(
    open_butler: Any, data_ids: Any, bbox: Any
) -> dict[str, Any]:
    """Every read of the flip tests: name -> `fingerprint`, or ``("error"|"traceback", text)``.

    ``open_butler()`` opens the repository (its errors are outcomes too); each
    data ID's ``calexp`` is read whole and as the cut-out ``bbox``, its ``src``
    whole, each with the identity cache empty.
    """
    from compstore.errors import CompstoreError

    out: dict[str, Any] = {}
    try:
        butler = open_butler()
    except CompstoreError as exc:
        return {"open": ("error", str(exc))}
    except Exception as exc:  # noqa: BLE001 (what the tests count)
        return {"open": ("traceback", repr(exc))}
    try:
        for visit, detector in data_ids:
            for what, parameters in (("calexp", None), ("calexp cut-out", {"bbox": bbox}),
                                     ("src", None)):  # fmt: skip
                butler.cache.clear()
                key = f"{what} {visit} {detector}"
                try:
                    obj = butler.get(what.split()[0], visit=visit, detector=detector,
                                     parameters=parameters)  # fmt: skip
                    out[key] = fingerprint(obj)
                except CompstoreError as exc:
                    out[key] = ("error", str(exc))
                except Exception as exc:  # noqa: BLE001
                    out[key] = ("traceback", repr(exc))
    finally:
        butler.cache.clear()
    return out


class FlipTally:
    """The counts of a flip test: each flip's reads against the reads before any damage."""

    def __init__(self, expected: Mapping[str, Any]) -> None:
        import collections

        self.expected = dict(expected)
        self.counts: collections.Counter[str] = collections.Counter()
        self.by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.bad: list[str] = []

    def add(self, kind: str, where: str, got: Mapping[str, Any]) -> dict[str, str]:
        """Count one flip of ``kind`` at ``where``; return each read's outcome
        (``same``, ``wrong``, ``error``, ``traceback``)."""
        outcomes = {}
        for name, value in got.items():
            if isinstance(value, str):
                outcomes[name] = "same" if value == self.expected.get(name) else "wrong"
            else:
                outcomes[name] = value[0]
                if value[0] == "traceback":
                    self.bad.append(f"{kind} {where}: {name}: {value[1]}")
        wrong = [k for k, o in outcomes.items() if o == "wrong"]
        if wrong:
            self.bad.append(f"{kind} {where}: silently wrong {wrong}")
        damaging = any(o != "same" for o in outcomes.values())
        self.counts["flips"] += 1
        self.counts["silent_wrong"] += bool(wrong)
        self.counts["tracebacks"] += "traceback" in outcomes.values()
        self.counts["damaging"] += damaging
        self.by_kind[kind]["damaging" if damaging else "harmless"] += 1
        return outcomes

    def by_kind_figures(self) -> dict[str, dict[str, int]]:
        """``by_kind`` with names fit for keyword arguments."""
        return {k.replace(" ", "_").replace(".", "_"): dict(v) for k, v in sorted(self.by_kind.items())}
