"""Packs: the small components of a sync, together in one zip file, found through an index.

A put makes one file per component, and creating a file costs more than
writing a megabyte on a busy disk (``benchmarks/README.md``, "Fourth round"):
a ten-column catalog was 32 new files. From format 2 on, components smaller
than `PACK_MAX_BYTES` (documents, manifests, catalog columns, small arrays)
wait in memory until `LocalBlobStore.sync`, which writes them all as one
uncompressed zip file, then records where each one is in an SQLite index.

A pack is a plain zip (``ZIP_STORED``) named by the digest of its bytes:

    packs/<p[:2]>/<p>.zip
        documents/<digest>.json           a document, the bytes that were put
        arrays/<digest>/zarr.json          an array: the files of its zarr v3
        arrays/<digest>/c.0                directory, byte for byte

so stock zarr opens a packed array with
``zarr.open_array(zarr.storage.ZipStore(pack, mode="r"), path="arrays/<digest>")``.
The index (``packs.sqlite3``) maps a digest to its pack and the byte ranges of
its members; compstore reads a member with one ``pread``. The pack is on disk
(and fsynced, with fsync on) before its index rows are committed, so a row
never names a missing pack; a pack whose rows were never committed (a crash
in between) is unreferenced garbage, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
import struct
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from compstore.cas._digest import is_digest

__all__ = [
    "KIND_ARRAY",
    "KIND_DOCUMENT",
    "PACK_MAX_BYTES",
    "PackIndex",
    "PackedMember",
    "build_pack",
    "pread_members",
]

PACK_MAX_BYTES: Final = 1 << 20
"""Components (an array's raw bytes, or a document) smaller than this are packed."""

_LOCAL_HEADER: Final = struct.Struct("<IHHHHHIIIHH")  # a zip local file header, 30 bytes
_LOCAL_MAGIC: Final = 0x04034B50
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)  # fixed: equal members make equal packs

_KEY: Final = re.compile(r"c(\.[0-9]+)*")  # a data file name: c, c.0, c.0.0 ...

KIND_ARRAY: Final = "array"
KIND_DOCUMENT: Final = "document"


@dataclass(frozen=True)
class PackedMember:
    """Where one component's bytes are in its pack.

    ``data_*`` is the document, or the array's data file (absent, ``size`` 0
    and ``key`` None, for an array with no elements); ``meta_*`` is an
    array's ``zarr.json``.
    """

    kind: str
    pack: str
    data_offset: int
    data_size: int
    meta_offset: int | None = None
    meta_size: int | None = None
    key: str | None = None

    @property
    def end(self) -> int:
        """The byte of the pack where this component's last member ends (the pack is at
        least this long)."""
        return max(self.data_offset + self.data_size, (self.meta_offset or 0) + (self.meta_size or 0))


def build_pack(members: Sequence[tuple[str, bytes]]) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """Return an uncompressed zip of ``members`` and each member's ``(offset, size)`` in it.

    The offsets are those of the members' bytes (after their local headers),
    read back from the zip itself.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members:
            z.writestr(zipfile.ZipInfo(name, date_time=_ZIP_TIME), data)
        infos = z.infolist()
    raw = buffer.getvalue()
    where = {}
    for info in infos:
        fields = _LOCAL_HEADER.unpack_from(raw, info.header_offset)
        if fields[0] != _LOCAL_MAGIC:  # pragma: no cover - zipfile wrote it just now
            raise AssertionError("zipfile wrote an unexpected local header")
        name_len, extra_len = fields[9], fields[10]
        start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
        where[info.filename] = (start, info.file_size)
    return raw, where


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS member (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('array', 'document')),
    pack TEXT NOT NULL,
    data_offset INTEGER NOT NULL,
    data_size INTEGER NOT NULL,
    meta_offset INTEGER,
    meta_size INTEGER,
    key TEXT
) WITHOUT ROWID
"""


class PackIndex:
    """The SQLite index of packed components: digest -> pack and byte ranges.

    One connection, used under a lock (lookups are tens of microseconds).
    ``fsync`` commits with ``synchronous=FULL``, otherwise ``NORMAL``.
    """

    def __init__(self, path: str, *, fsync: bool) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A damaged byte in a TEXT value must not raise UnicodeDecodeError from deep
        # inside sqlite3: decoded leniently, it fails the row checks (`_checked`) and
        # is reported as a damaged row.
        self._conn.text_factory = _lenient_text
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
            self._conn.execute(_SCHEMA)

    def lookup(self, digest: str) -> PackedMember | None:
        """Where ``digest`` is packed, or None.

        Raises
        ------
        ValueError
            If its row is damaged (wrong types, negative sizes, a bad pack name).
        """
        with self._lock:
            row = self._conn.execute(
                "SELECT kind, pack, data_offset, data_size, meta_offset, meta_size, key "
                "FROM member WHERE digest = ?",
                (digest,),
            ).fetchone()
        return _checked(PackedMember(*row)) if row is not None else None

    def lookup_many(self, digests: Iterable[str]) -> dict[str, PackedMember]:
        """Where each of ``digests`` that is packed is (one query per 500); damaged rows left out.

        (A damaged row is reported by `lookup`, which the read of that component makes.)
        """
        wanted = list(digests)
        rows: list[tuple[object, ...]] = []
        with self._lock:
            for start in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows += self._conn.execute(
                    "SELECT digest, kind, pack, data_offset, data_size, meta_offset, meta_size, "
                    f"key FROM member WHERE digest IN ({marks})",
                    chunk,
                ).fetchall()
        return _checked_rows(rows)

    def add(self, members: dict[str, PackedMember]) -> None:
        """Record ``members`` (digest -> place) in one transaction; existing rows win."""
        rows = [
            (d, m.kind, m.pack, m.data_offset, m.data_size, m.meta_offset, m.meta_size, m.key)
            for d, m in members.items()
        ]
        with self._lock, self._transaction():
            self._conn.executemany(
                "INSERT OR IGNORE INTO member VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def existing(self, digests: Iterable[str]) -> dict[str, str]:
        """Which of ``digests`` are indexed: digest -> the pack holding it."""
        wanted = list(digests)
        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):  # under SQLite's bound-parameter limit
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                found.update(
                    self._conn.execute(
                        f"SELECT digest, pack FROM member WHERE digest IN ({marks})", chunk
                    ).fetchall()
                )
        return found

    def pack_names(self) -> set[str]:
        """The packs some row names (a full scan: for sweeping orphan packs)."""
        with self._lock:
            return {r[0] for r in self._conn.execute("SELECT DISTINCT pack FROM member")}

    def remove(self, digest: str) -> bool:
        """Forget ``digest``; whether it was there (its bytes stay in the pack)."""
        with self._lock, self._transaction():
            cursor = self._conn.execute("DELETE FROM member WHERE digest = ?", (digest,))
        return cursor.rowcount > 0

    def digests(self, kind: str) -> Iterator[str]:
        """The digests of one kind, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT digest FROM member WHERE kind = ? ORDER BY digest", (kind,)
            ).fetchall()
        return (r[0] for r in rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


def _lenient_text(raw: bytes) -> str:
    """Decode a TEXT value read from the index; bytes that are not UTF-8 become U+FFFD."""
    return raw.decode("utf-8", errors="replace")


def _checked(m: PackedMember) -> PackedMember:
    """``m`` if its fields are what the format allows (a row read back from SQLite)."""

    def count(v: object) -> bool:
        return isinstance(v, int) and not isinstance(v, bool) and v >= 0

    ok = (
        m.kind in (KIND_ARRAY, KIND_DOCUMENT)
        and is_digest(m.pack)
        and count(m.data_offset)
        and count(m.data_size)
    )
    if m.kind == KIND_ARRAY:
        ok = ok and count(m.meta_offset) and count(m.meta_size)
        ok = ok and (m.key is None or (isinstance(m.key, str) and _KEY.fullmatch(m.key) is not None))
    if not ok:
        raise ValueError(f"bad index row {m}")
    return m


def _checked_rows(rows: Sequence[Sequence[object]]) -> dict[str, PackedMember]:
    """digest -> place of index rows ``(digest, kind, pack, ...)``, leaving damaged ones out."""
    found = {}
    for digest, *fields in rows:
        try:
            found[str(digest)] = _checked(PackedMember(*fields))  # type: ignore[arg-type]
        except (ValueError, TypeError):
            continue
    return found


def pread_members(path: str, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The bytes of each ``(offset, size)`` range of the pack at ``path`` (one open).

    Raises
    ------
    FileNotFoundError
        If the pack has gone.
    ValueError
        If the pack is shorter than the index says (a damaged pack).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        for offset, size in ranges:
            if offset + size > end:  # checked first: a damaged size never allocates
                raise _cut_short(path, offset, size)
        found = [os.pread(fd, size, offset) for offset, size in ranges]
    finally:
        os.close(fd)
    for data, (offset, size) in zip(found, ranges):
        if len(data) != size:  # truncated since the fstat
            raise _cut_short(path, offset, size)
    return found


def _cut_short(path: str, offset: int, size: int) -> ValueError:
    return ValueError(f"pack {os.path.basename(path)} ends before its member ({offset}+{size})")
