"""The sweep of garbage collection: delete every stored component a live set does not name.

The caller (`compstore.butler.gc`) marks the live components (it walks every
registered dataset's manifests) and holds the gc lock exclusive
(`compstore.cas._gclock.sweep_guard`); this module knows only the blob
store's files (``docs/format.md``, "Garbage collection"):

- array folders and document files not live are deleted (an array folder is
  renamed into gc's own staging folder first, so a reader sees the whole array
  or nothing);
- pack members not live lose their index row; a pack left with no live member
  is deleted after its rows are gone, and a pack whose live members hold less
  than `REPACK_BELOW` of its members' bytes is *repacked*: its live members are
  copied byte for byte into a new pack (named by its digest, written and
  fsynced before its rows), the rows are moved to it in one transaction, and
  only then is the old pack deleted;
- packs no row names, dead writers' staging folders and ``.partial`` files
  are removed.

Every step leaves a store that reads correctly if the process is killed right
after it: what is left over (a pack no row names, a folder in a dead
process's staging folder) is garbage the next gc removes.

Memory: the live set is the caller's; the sweep holds one fan-out folder's
listing, one pack's rows and at most `_BATCH` pending row changes at a time.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, Final

from compstore._progress import progress_bar
from compstore.cas._atomic import fsync_dir, fsync_file, write_new
from compstore.cas._digest import digest_bytes, is_digest
from compstore.cas._local import LocalBlobStore
from compstore.cas._pack import KIND_DOCUMENT, build_pack, pread_members
from compstore.cas._staging import SessionFolder, pack_lock, pid_alive, sweep_staging

__all__ = ["REPACK_BELOW", "SweepResult", "sweep_store"]

#: A pack is rewritten when its live members hold less than this fraction of
#: its members' bytes: at most half of a pack's bytes are dead once gc is done,
#: and a pack is never rewritten for a few dead members (a rewrite costs a copy
#: of the live bytes).
REPACK_BELOW: Final = 0.5

_BATCH: Final = 5000  # index row changes per transaction
_PARTIAL: Final = re.compile(r"\.([0-9]+)-[^.]+-[0-9]+\.partial")
_COLUMNS: Final = "digest, kind, pack, data_offset, data_size, meta_offset, meta_size, key"


@dataclass
class SweepResult:
    """What a sweep deleted (or, dry, would delete)."""

    arrays: int = 0
    documents: int = 0
    pack_members: int = 0
    bytes_freed: int = 0
    packs_rewritten: int = 0
    packs_removed: int = 0
    leftovers: int = 0
    live_kept: int = 0
    errors: list[str] = field(default_factory=list)


def sweep_store(
    blobs: LocalBlobStore, live: Collection[str], *, dry_run: bool = False, progress: bool = False
) -> SweepResult:
    """Delete what ``live`` does not name from ``blobs`` (the gc lock held exclusive).

    Parameters
    ----------
    blobs
        The repository's blob store.
    live
        Every digest some registered dataset needs (arrays, documents and
        manifests alike).
    dry_run
        Count what would go; change nothing.
    progress
        Draw a progress bar on stderr.

    Returns
    -------
    SweepResult
        Counts of components and bytes deleted, packs rewritten and removed,
        leftovers removed.

    Raises
    ------
    OSError, sqlite3.Error
        If the store cannot be listed or changed (the caller reports it; what
        was done so far is consistent).
    """
    result = SweepResult()
    root = str(blobs.root)
    staging = os.path.join(root, "staging")
    own = None if dry_run else SessionFolder(staging)
    try:
        if not dry_run:
            assert own is not None
            result.leftovers += sweep_staging(staging, own.path).removed
        _sweep_files(blobs, live, own, result, progress)
        if blobs.packs:
            with pack_lock(os.path.join(root, "packs.lock")):
                _sweep_packs(blobs, live, own, result, progress)
    finally:
        if own is not None:
            own.remove()
    return result


# -- array folders and document files ------------------------------------------------
def _sweep_files(
    blobs: LocalBlobStore,
    live: Collection[str],
    own: SessionFolder | None,
    result: SweepResult,
    progress: bool,
) -> None:
    root = str(blobs.root)
    arrays, documents = os.path.join(root, "arrays"), os.path.join(root, "documents")
    groups = [(arrays, g) for g in _groups(arrays)] + [(documents, g) for g in _groups(documents)]
    dirty: set[str] = set()
    for top, group in progress_bar(groups, enabled=progress, desc="gc: sweep folders", unit="folder"):
        folder = os.path.join(top, group)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".partial"):
                found = _PARTIAL.search(name)
                if found is not None and not pid_alive(int(found.group(1))):
                    result.leftovers += 1
                    if own is not None:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)
                continue
            if top == arrays:
                digest = name
                if not (is_digest(digest) and digest.startswith(group) and entry.is_dir()):
                    continue  # the group's zarr.json, or not ours
                if digest in live:
                    result.live_kept += 1
                    continue
                result.bytes_freed += _tree_bytes(entry.path)
                result.arrays += 1
                if own is not None:
                    # Rename first: a reader sees the whole array or none of it.
                    trash = os.path.join(own.path, digest)
                    try:
                        os.rename(entry.path, trash)
                    except FileNotFoundError:
                        continue
                    shutil.rmtree(trash, ignore_errors=True)
                    dirty.add(folder)
            else:
                digest = name[:-5]
                if not (name.endswith(".json") and is_digest(digest) and digest.startswith(group)):
                    continue
                if digest in live:
                    result.live_kept += 1
                    continue
                with contextlib.suppress(FileNotFoundError):
                    size = entry.stat().st_size
                    if own is not None:
                        os.unlink(entry.path)
                    result.bytes_freed += size
                    result.documents += 1
                    dirty.add(folder)
    if blobs.fsync:
        for folder in sorted(dirty):  # not needed for safety: makes the space come back for good
            fsync_dir(folder)


def _groups(top: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(top) if len(e.name) == 2 and e.is_dir())
    except FileNotFoundError:
        return []


def _tree_bytes(path: str) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(dirpath, f)).st_size
    return total


# -- packs ---------------------------------------------------------------------------
class _Index:
    """Two connections to ``packs.sqlite3``: one streams the rows, one changes them."""

    def __init__(self, path: str, fsync: bool) -> None:
        self.read = sqlite3.connect(path, isolation_level=None)
        self.write = sqlite3.connect(path, isolation_level=None)
        for conn in (self.read, self.write):
            conn.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
            conn.execute("PRAGMA busy_timeout = 60000")
        self.write.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self.deletes: list[str] = []
        self.moves: list[tuple[Any, ...]] = []
        self.after_commit: list[str] = []  # packs to delete once the changes are committed

    def rows(self) -> Iterator[tuple[Any, ...]]:
        cursor = self.read.execute(f"SELECT {_COLUMNS} FROM member ORDER BY pack")
        while True:
            chunk = cursor.fetchmany(1000)
            if not chunk:
                return
            yield from chunk

    def pending(self) -> int:
        return len(self.deletes) + len(self.moves)

    def commit(self) -> None:
        """Apply the pending row changes in one transaction, then delete the packs they freed."""
        if self.deletes or self.moves:
            self.write.execute("BEGIN IMMEDIATE")
            try:
                self.write.executemany("DELETE FROM member WHERE digest = ?", ((d,) for d in self.deletes))
                self.write.executemany(f"INSERT OR REPLACE INTO member ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.moves)
            except BaseException:
                self.write.execute("ROLLBACK")
                raise
            self.write.execute("COMMIT")
        self.deletes, self.moves = [], []
        for path in self.after_commit:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.after_commit = []

    def pack_names(self) -> set[str]:
        """The packs some row names (after `commit`)."""
        return {r[0] for r in self.write.execute("SELECT DISTINCT pack FROM member")}

    def close(self) -> None:
        self.read.close()
        self.write.close()


class _PgIndex:
    """`_Index` on the table ``pack_member`` of a PostgreSQL pack index (`PgPackIndex`)."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.read: Any = psycopg.connect(conninfo)  # a transaction: one snapshot to stream
        self.write: Any = psycopg.connect(conninfo)
        self.deletes: list[str] = []
        self.moves: list[tuple[Any, ...]] = []
        self.after_commit: list[str] = []

    def pending(self) -> int:
        return len(self.deletes) + len(self.moves)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        with self.read.cursor(name="compstore_gc_rows") as cursor:  # server-side, streamed
            cursor.itersize = 1000
            cursor.execute(f"SELECT {_COLUMNS} FROM pack_member ORDER BY pack")
            yield from cursor

    def commit(self) -> None:
        if self.deletes or self.moves:
            with self.write.transaction():
                with self.write.cursor() as cur:
                    cur.executemany(
                        "DELETE FROM pack_member WHERE digest = %s", [(d,) for d in self.deletes]
                    )
                    cur.executemany(
                        f"INSERT INTO pack_member ({_COLUMNS}) VALUES "
                        "(%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (digest) DO UPDATE SET "
                        "kind = EXCLUDED.kind, pack = EXCLUDED.pack, "
                        "data_offset = EXCLUDED.data_offset, data_size = EXCLUDED.data_size, "
                        "meta_offset = EXCLUDED.meta_offset, meta_size = EXCLUDED.meta_size, "
                        "key = EXCLUDED.key",
                        self.moves,
                    )
        self.deletes, self.moves = [], []
        for path in self.after_commit:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.after_commit = []

    def pack_names(self) -> set[str]:
        with self.write.transaction(), self.write.cursor() as cur:
            cur.execute("SELECT DISTINCT pack FROM pack_member")
            return {r[0] for r in cur.fetchall()}

    def close(self) -> None:
        self.read.close()
        self.write.close()


def _open_index(blobs: LocalBlobStore) -> _Index | _PgIndex:
    """The sweep's view of ``blobs``'s pack index: its SQLite file, or its PostgreSQL table."""
    conninfo = blobs.pack_index_conninfo()
    if conninfo is not None:
        return _PgIndex(conninfo)
    return _Index(os.path.join(str(blobs.root), "packs.sqlite3"), blobs.fsync)


def _sweep_packs(
    blobs: LocalBlobStore,
    live: Collection[str],
    own: SessionFolder | None,
    result: SweepResult,
    progress: bool,
) -> None:
    root = str(blobs.root)
    packs_dir = os.path.join(root, "packs")
    index = _open_index(blobs)
    named: set[str] = set()
    try:
        rows = groupby(index.rows(), key=lambda r: r[2])
        for pack, members in progress_bar(rows, enabled=progress, desc="gc: sweep packs", unit="pack"):
            named.add(pack)
            _sweep_pack(blobs, index, pack, list(members), live, own, result)
            if index.pending() >= _BATCH:
                if own is not None:
                    index.commit()
                else:
                    index.deletes, index.moves, index.after_commit = [], [], []
        if own is not None:
            index.commit()
            # Packs no row names: a writer killed between renaming and indexing,
            # or a gc killed between moving rows and deleting the old pack.
            named = index.pack_names()
    finally:
        index.close()
    for group in _groups(packs_dir):
        for entry in os.scandir(os.path.join(packs_dir, group)):
            stem = entry.name[:-4]
            if entry.name.endswith(".zip") and is_digest(stem) and stem not in named:
                with contextlib.suppress(FileNotFoundError):
                    size = entry.stat().st_size
                    if own is not None:
                        os.unlink(entry.path)
                    result.packs_removed += 1
                    result.bytes_freed += size


def _sweep_pack(
    blobs: LocalBlobStore,
    index: _Index | _PgIndex,
    pack: str,
    members: list[tuple[Any, ...]],
    live: Collection[str],
    own: SessionFolder | None,
    result: SweepResult,
) -> None:
    """Forget the dead members of one pack; delete or rewrite the pack if it is mostly dead."""
    dead = [m for m in members if m[0] not in live]
    result.live_kept += len(members) - len(dead)
    if not dead:
        return
    result.pack_members += len(dead)
    path = os.path.join(str(blobs.root), "packs", pack[:2], f"{pack}.zip")
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = 0  # rows naming a missing pack: `verify` reports the live ones
    kept = [m for m in members if m[0] in live]
    member_bytes = sum(_nbytes(m) for m in members)
    live_bytes = sum(_nbytes(m) for m in kept)
    index.deletes.extend(m[0] for m in dead)
    if not kept:
        index.after_commit.append(path)
        result.packs_removed += 1
        result.bytes_freed += size
        return
    if not is_digest(pack) or size == 0 or live_bytes >= REPACK_BELOW * member_bytes:
        return  # the dead members' bytes stay until more of the pack dies
    new_size = _repack(blobs, index, path, kept, own)
    result.packs_rewritten += 1
    result.bytes_freed += max(size - new_size, 0)


def _nbytes(row: tuple[Any, ...]) -> int:
    return int(row[4] or 0) + int(row[6] or 0)


def _repack(
    blobs: LocalBlobStore,
    index: _Index | _PgIndex,
    old: str,
    kept: list[tuple[Any, ...]],
    own: SessionFolder | None,
) -> int:
    """Copy the live members ``kept`` of pack ``old`` into a new pack; return its size.

    The new pack is on disk (durably, with fsync on) before the rows that
    name it are committed, and the old one is deleted only after.
    """
    members: list[tuple[str, bytes]] = []
    for digest, kind, _pack, d_off, d_size, m_off, m_size, key in kept:
        if kind == KIND_DOCUMENT:
            (data,) = pread_members(old, [(d_off, d_size)])
            members.append((f"documents/{digest}.json", data))
            continue
        (meta,) = pread_members(old, [(m_off, m_size)])
        members.append((f"arrays/{digest}/zarr.json", meta))
        if key is not None:
            (data,) = pread_members(old, [(d_off, d_size)])
            members.append((f"arrays/{digest}/{key}", data))
    raw, where = build_pack(members)
    if own is None:
        return len(raw)
    name = digest_bytes(raw)
    folder = os.path.join(str(blobs.root), "packs", name[:2])
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"{name}.zip")
    tmp = os.path.join(own.path, f"{name}.zip")
    write_new(tmp, raw)
    if blobs.fsync:
        fsync_file(tmp)
    os.replace(tmp, final)
    if blobs.fsync:
        fsync_dir(folder)
        fsync_dir(os.path.dirname(folder))
    for digest, kind, _pack, _d_off, _d_size, _m_off, _m_size, key in kept:
        if kind == KIND_DOCUMENT:
            off, size = where[f"documents/{digest}.json"]
            index.moves.append((digest, kind, name, off, size, None, None, None))
            continue
        m_off, m_size = where[f"arrays/{digest}/zarr.json"]
        off, size = where[f"arrays/{digest}/{key}"] if key is not None else (0, 0)
        index.moves.append((digest, kind, name, off, size, m_off, m_size, key))
    if final != old:
        index.after_commit.append(old)
    return len(raw)
