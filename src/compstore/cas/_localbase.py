"""The state a local blob store's parts share: its folders, caches and staging session.

`compstore.cas._local.LocalBlobStore` is put together from the parts
that build on `LocalBase`: `compstore.cas._folders` (loose arrays and
documents), `compstore.cas._folderread` (the checked read of an array
folder), `compstore.cas._packwrite` and `compstore.cas._packread`. Each
part reads and writes the attributes declared here; `LocalBlobStore.__init__`
sets them.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from compstore.cas._digest import check_digest, is_digest
from compstore.cas._pack import PackedMember, PackIndex
from compstore.cas._pack_pg import PgPackIndex
from compstore.cas._staging import SessionFolder, pack_lock, sweep_staging
from compstore.cas._store import ARRAYS_GROUP, BlobStore
from compstore.cas._sums import Sums
from compstore.cas._zarrfmt import ArrayMeta
from compstore.errors import BlobStoreError

if TYPE_CHECKING:
    from compstore.cas._packwrite import Pending

__all__ = ["LOCATED_CACHE_SIZE", "META_CACHE_SIZE", "SQLITE_ERRORS", "LocalBase"]

META_CACHE_SIZE: Final = 4096
LOCATED_CACHE_SIZE: Final = 65536  # packed components' places (~200 bytes each)
# What a damaged packs.sqlite3 makes sqlite3 raise: sqlite3 decodes SQLite's error
# message as UTF-8, so a damaged schema's bytes can raise UnicodeDecodeError.
SQLITE_ERRORS: Final = (sqlite3.Error, UnicodeDecodeError)


class LocalBase(BlobStore):
    """The shared state, paths and staging session of `compstore.cas.LocalBlobStore`."""

    _root: str
    _fsync: bool
    _packs_dir: str
    _arrays_dir: str
    _documents_dir: str
    _staging_dir: str
    _pack_lock_path: str
    # The pack index: blobs/packs.sqlite3, or (a repository on PostgreSQL) the
    # registry database's table, which every host sharing the repository sees.
    _index: PackIndex | PgPackIndex | None
    _pending: dict[str, Pending]
    _pending_bytes: int
    _retry_pack_at: int | None  # after a failed early pack write
    _durable_pack_dirs: set[str]
    _located: dict[str, PackedMember]
    _session: str | None
    _session_folder: SessionFolder | None
    _counter: itertools.count[int]
    # RLock: sync holds it while publishing, and publishing calls helpers that take it.
    _lock: threading.RLock
    _staged_arrays: dict[str, tuple[str, list[str]]]
    _staged_documents: dict[str, str]
    _dirty_dirs: set[str]
    _known_dirs: set[str]
    _meta: dict[str, ArrayMeta | None]
    _sums: dict[str, Sums | None]  # compstore.sums of folder arrays, cached
    # Arrays read from their folder before (a dict as a bounded, ordered set):
    # read there again without asking the pack index first.
    _in_folder: dict[str, None]

    def _init_state(self, root: str, fsync: bool, index: PackIndex | PgPackIndex | None) -> None:
        self._root = root
        self._fsync = fsync
        self._packs_dir = os.path.join(root, "packs")
        self._index = index
        self._pending = {}
        self._pending_bytes = 0
        self._retry_pack_at = None
        self._durable_pack_dirs = set()
        self._located = {}
        self._arrays_dir = os.path.join(root, ARRAYS_GROUP)
        self._documents_dir = os.path.join(root, "documents")
        self._staging_dir = os.path.join(root, "staging")
        self._session = None
        self._session_folder = None
        self._pack_lock_path = os.path.join(root, "packs.lock")
        self._counter = itertools.count()
        self._lock = threading.RLock()
        self._staged_arrays = {}
        self._staged_documents = {}
        self._dirty_dirs = set()
        self._known_dirs = set()
        self._meta = {}
        self._sums = {}
        self._in_folder = {}

    # f-strings, not os.path.join: these run for every component read (the roots are
    # absolute and normalised, digests checked: nothing to join carefully).
    def _array_path(self, digest: str) -> str:
        return f"{self._arrays_dir}/{digest[:2]}/{digest}"

    def _document_path(self, digest: str) -> str:
        return f"{self._documents_dir}/{digest[:2]}/{digest}.json"

    def _pack_path(self, pack: str) -> str:
        check_digest(pack)  # a name read from the index: checked before it becomes a path
        return f"{self._packs_dir}/{pack[:2]}/{pack}.zip"

    def _temp_path(self, name: str) -> str:
        # The session folder is this store object's own: a counter makes names unique.
        return os.path.join(self._session_dir(), f"{name}.{next(self._counter)}")

    def _session_dir(self) -> str:
        if self._session is None:
            folder = SessionFolder(self._staging_dir)
            # Removed on close, or at exit / when this object goes (a writer that never
            # calls close leaves nothing behind); a crashed writer's is swept below.
            weakref.finalize(self, folder.remove)
            self._session_folder = folder
            self._session = folder.path
            self.sweep_leftovers()
        return self._session

    def sweep_leftovers(self) -> tuple[int, int]:
        """Remove what dead writers left: their staging folders and, then, orphan packs.

        Runs when this store first writes. A staging folder is removed only
        if no live writer holds its lock (`compstore.cas._staging`). Packs no
        index row names are removed only after a dead writer's folder was
        found (a writer dies between renaming a pack into place and indexing
        it) and no writer that does not take the pack lock is running; under
        the pack lock, so no writer is between those two steps. Best effort:
        a failure to clean never fails a write.

        Returns
        -------
        tuple of int
            Staging folders and packs removed.
        """
        if self.read_only:
            return 0, 0
        packs = 0
        try:
            found = sweep_staging(self._staging_dir, self._session)
            if found.removed and not found.unlocked_live and self._index is not None:
                packs = self._sweep_orphan_packs()
        except (OSError, sqlite3.Error, BlobStoreError):  # a PostgreSQL index's errors
            return 0, 0
        return found.removed, packs

    def _sweep_orphan_packs(self) -> int:
        """Remove the packs no index row names (under the pack lock)."""
        assert self._index is not None
        removed = 0
        with pack_lock(self._pack_lock_path):
            named = self._index.pack_names()
            for group in os.scandir(self._packs_dir):
                if len(group.name) != 2 or not group.is_dir():
                    continue
                for entry in os.scandir(group.path):
                    stem = entry.name[:-4]
                    if entry.name.endswith(".zip") and is_digest(stem) and stem not in named:
                        os.unlink(entry.path)
                        removed += 1
        return removed

    @contextlib.contextmanager
    def _new_folder(self, name: str, what: str) -> Iterator[str]:
        """A path for a new temporary folder; removed if the block fails, whatever the error.

        An OSError becomes a `BlobStoreError` saying it could not write ``what``.
        """
        with self._lock:
            tmp = self._temp_path(name)
        try:
            yield tmp
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, OSError):
                raise BlobStoreError(f"cannot write {what}: {exc}") from exc
            raise

    def _array_folder(self, digest: str) -> tuple[str, bool]:
        """The folder of array ``digest`` (checked digest), and whether it is staged."""
        with self._lock:
            staged = self._staged_arrays.get(digest)
        return (staged[0], True) if staged is not None else (self._array_path(digest), False)
