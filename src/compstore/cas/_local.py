"""A blob store in a local folder: zarr v3 arrays and plain-file documents.

Layout (``docs/format.md``, "Blob store layout")::

    <root>/arrays/zarr.json                     zarr v3 group: the zarr root
    <root>/arrays/ab/zarr.json                  fan-out group, first two hex chars
    <root>/arrays/ab/<digest>/zarr.json, c/...  one zarr v3 array per component
    <root>/documents/ab/<digest>.json           one plain file per document
    <root>/packs/ab/<pack>.zip                  small components, many per file (packs=True)
    <root>/packs.sqlite3                        where each packed component is
    <root>/staging/<session>/...                writes not yet synced

Packs (``packs=True``, repository format 2): components smaller than
`compstore.cas._pack.PACK_MAX_BYTES` wait in memory, visible to this store
object, until :meth:`LocalBlobStore.sync` writes them all as one zip file
and then records them in the index (`compstore.cas._pack`): a put creates
one file for all of them instead of one to three each.

Durability. With ``fsync=True`` (the default) a put writes the component into
this store's staging folder and returns; :meth:`LocalBlobStore.sync` fsyncs
every staged file and folder, renames each component into place, then fsyncs
the directories that gained names. A component's final name therefore only
ever points at content that is on disk, even across a power cut, and one
sync pays for a whole batch of puts. Staged components are visible to this
store object (get, has, iter) but not to other processes until synced. With
``fsync=False`` puts rename into place at once and nothing is ever fsynced
(scratch repositories, tests).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import shutil
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from compstore._pool import parallel_map
from compstore.cas._atomic import fsync_dir, fsync_file, write_atomic, write_new
from compstore.cas._checks import (
    DECODE_ERRORS,
    bounded_put,
    check_hash,
    checked_document,
    checked_whole,
    corrupt_array,
    hasher_for,
    read_only_view,
    region_box,
)
from compstore.cas._digest import array_hasher, check_digest, digest_array, digest_bytes, is_digest
from compstore.cas._pack import (
    KIND_ARRAY,
    KIND_DOCUMENT,
    PACK_MAX_BYTES,
    PackedMember,
    PackIndex,
    build_pack,
    pread_members,
)
from compstore.cas._pack_pg import PgPackIndex
from compstore.cas._region import normalize_region
from compstore.cas._staging import SessionFolder, pack_lock, sweep_staging
from compstore.cas._store import (
    ARRAYS_GROUP,
    ArrayInfo,
    BlobStore,
    RegionLike,
    check_array,
    prepare_array,
    prepare_document,
)
from compstore.cas._sums import SUMS_NAME, Sums, parse_sums
from compstore.cas._zarrfmt import (
    ArrayMeta,
    UnsupportedZarrError,
    chunk_key,
    group_metadata,
    iter_chunk_indices,
    parse_array_metadata,
)
from compstore.cas._zarrio import (
    MissingChunkError,
    check_array_sums,
    check_chunk_file,
    decode_array_data,
    dimension_names_for,
    encode_array_files,
    read_array_dir,
    write_array_data,
    write_array_dir,
    write_array_meta,
)
from compstore.errors import BlobNotFoundError, BlobStoreError, CompstoreError, CorruptBlobError

__all__ = ["LocalBlobStore"]

_META_CACHE_SIZE: Final = 4096
_LOCATED_CACHE_SIZE: Final = 65536  # packed components' places (~200 bytes each)
PENDING_MAX_BYTES: Final = 64 << 20
"""Small components held for the next pack beyond which a pack is written at once."""
# What a damaged packs.sqlite3 makes sqlite3 raise: sqlite3 decodes SQLite's error
# message as UTF-8, so a damaged schema's bytes can raise UnicodeDecodeError.
_SQLITE_ERRORS: Final = (sqlite3.Error, UnicodeDecodeError)


class LocalBlobStore(BlobStore):
    """A blob store in the folder ``root`` (created if missing).

    Parameters
    ----------
    root
        The blob store's folder, inside the repository.
    fsync
        Make writes durable at :meth:`sync` (see the module docstring). ``False``
        for scratch stores: faster, and a power cut may lose or damage
        recent components.
    packs
        Write small components into packs (the module docstring). Readers of
        format 1 do not look in packs: a repository's format version decides.
    pack_index
        Where packed components are indexed, instead of ``packs.sqlite3``: the
        registry database of a repository on PostgreSQL (`compstore.cas._pack_pg`).

    Raises
    ------
    BlobStoreError
        If the folder cannot be created.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        packs: bool = False,
        pack_index: PgPackIndex | None = None,
    ) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._fsync = fsync
        self._packs_dir = os.path.join(self._root, "packs")
        # The pack index: blobs/packs.sqlite3, or (a repository on PostgreSQL) the
        # registry database's table, which every host sharing the repository sees.
        self._index: PackIndex | PgPackIndex | None = pack_index if packs else None
        self._pending: dict[str, _Pending] = {}
        self._pending_bytes = 0
        self._retry_pack_at: int | None = None  # after a failed early pack write
        self._durable_pack_dirs: set[str] = set()
        self._located: dict[str, PackedMember] = {}
        self._arrays_dir = os.path.join(self._root, ARRAYS_GROUP)
        self._documents_dir = os.path.join(self._root, "documents")
        self._staging_dir = os.path.join(self._root, "staging")
        self._session: str | None = None
        self._session_folder: SessionFolder | None = None
        self._pack_lock_path = os.path.join(self._root, "packs.lock")
        self._counter = itertools.count()
        # RLock: sync holds it while publishing, and publishing calls helpers that take it.
        self._lock = threading.RLock()
        self._staged_arrays: dict[str, tuple[str, list[str]]] = {}
        self._staged_documents: dict[str, str] = {}
        self._dirty_dirs: set[str] = set()
        self._known_dirs: set[str] = set()
        self._meta: dict[str, ArrayMeta | None] = {}
        self._sums: dict[str, Sums | None] = {}  # compstore.sums of folder arrays, cached
        # Arrays read from their folder before (a dict as a bounded, ordered set):
        # read there again without asking the pack index first.
        self._in_folder: dict[str, None] = {}
        try:
            self._init_layout(packs)
        except OSError as exc:
            raise BlobStoreError(f"cannot create the blob store at {self._root}: {exc}") from exc
        if packs and pack_index is None:
            index = os.path.join(self._root, "packs.sqlite3")
            try:
                self._index = PackIndex(index, fsync=fsync)
            except _SQLITE_ERRORS as exc:
                raise BlobStoreError(
                    f"cannot open the pack index {index}: {exc}; if the file is damaged, "
                    "restore it from a backup (the packs themselves are intact)"
                ) from exc

    # -- paths ----------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The blob store's folder (absolute); :meth:`component_path` is relative to it."""
        return Path(self._root)

    @property
    def zarr_root(self) -> Path:
        """The zarr v3 root group holding every array component (``<root>/arrays``)."""
        return Path(self._arrays_dir)

    @property
    def fsync(self) -> bool:
        """Whether :meth:`sync` makes writes durable."""
        return self._fsync

    @property
    def packs(self) -> bool:
        """Whether small components are written into packs."""
        return self._index is not None

    def pack_index_conninfo(self) -> str | None:
        """The PostgreSQL database holding the pack index, or None (``packs.sqlite3``, or no packs)."""
        return self._index.conninfo if isinstance(self._index, PgPackIndex) else None

    # f-strings, not os.path.join: these run for every component read (the roots are
    # absolute and normalised, digests checked: nothing to join carefully).
    def _array_path(self, digest: str) -> str:
        return f"{self._arrays_dir}/{digest[:2]}/{digest}"

    def _document_path(self, digest: str) -> str:
        return f"{self._documents_dir}/{digest[:2]}/{digest}.json"

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
        packs = 0
        try:
            found = sweep_staging(self._staging_dir, self._session)
            if found.removed and not found.unlocked_live and self._index is not None:
                packs = self._sweep_orphan_packs()
        except (OSError, sqlite3.Error):
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

    def _temp_path(self, name: str) -> str:
        # The session folder is this store object's own: a counter makes names unique.
        return os.path.join(self._session_dir(), f"{name}.{next(self._counter)}")

    # -- set-up ---------------------------------------------------------------
    def _init_layout(self, packs: bool) -> None:
        created: list[str] = []
        folders = [self._root, self._arrays_dir, self._documents_dir, self._staging_dir]
        for path in folders[1:] + [self._packs_dir]:
            if os.path.islink(path):
                # Writers create folders and files below these: through a link they
                # would land outside the repository.
                raise BlobStoreError(
                    f"{path} is a symbolic link; the blob store's folders must be real "
                    "folders inside it (a damaged or tampered repository): replace the "
                    "link by the folder it should be, or restore the repository"
                )
        for path in folders + ([self._packs_dir] if packs else []):
            if not os.path.isdir(path):
                os.makedirs(path, exist_ok=True)
                created.append(path)
        group = os.path.join(self._arrays_dir, "zarr.json")
        if not os.path.exists(group):
            write_atomic(group, group_metadata(), fsync=self._fsync)
            created.append(group)
        if created and self._fsync:
            for path in created:
                fsync_dir(os.path.dirname(path))

    def make_fanout(self) -> None:
        """Create the 256 fan-out folders of ``arrays/`` (zarr groups) and of ``documents/`` now.

        A store creates them as components land in them, which costs a put
        into a young store a ``mkdir`` and a group ``zarr.json`` for most new
        components (in a store of a few thousand components they all exist).
        `compstore.Butler.create` calls this (tens of milliseconds, more with fsync).

        Raises
        ------
        BlobStoreError
            If a folder cannot be created.
        """
        try:
            with self._lock:
                for prefix in (f"{i:02x}" for i in range(256)):
                    self._ensure_dir(f"{self._arrays_dir}/{prefix}", group=True)
                    self._ensure_dir(f"{self._documents_dir}/{prefix}", group=False)
        except OSError as exc:
            raise BlobStoreError(
                f"cannot create the fan-out folders of {self._root}: {exc}"
            ) from exc
        self.sync()

    def _ensure_dir(self, path: str, *, group: bool) -> None:
        """Create a fan-out folder (a zarr group when ``group``) if it is missing."""
        if path in self._known_dirs:
            return
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            self._dirty_dirs.add(os.path.dirname(path))
        meta = os.path.join(path, "zarr.json")
        if group and not os.path.exists(meta):
            # Concurrent writers replace one complete, identical file with another.
            write_atomic(meta, group_metadata(), fsync=self._fsync)
            self._dirty_dirs.add(path)
        self._known_dirs.add(path)

    # -- arrays ---------------------------------------------------------------
    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        array, digest = prepare_array(array, digest)
        if self.has_array(digest):
            return digest
        if self._index is not None and array.nbytes < PACK_MAX_BYTES:
            self._add_pending(digest, self._pending_array(array, digest))
            return digest
        self._write_folder(array, digest)
        return digest

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        """Hash ``array`` and store it if its digest is new; see `BlobStore`.

        A small array (under `PACK_MAX_BYTES`) is hashed and looked up, then
        stored only if new: written as a folder when packs are off, or encoded
        for the next pack. The encoding runs outside the store's lock; under
        it, the array is looked up again and handed over (`_add_pending`, which
        may write a pack). A big one is hashed whole, then written raw or
        encoded (see `write_array_data` for why not block by block) into a
        temporary folder, named by the digest found; if that digest is stored
        already, the folder is removed (the price of a duplicate nobody knew
        about: one write, no second copy).
        """
        check_array(array)
        if array.nbytes < PACK_MAX_BYTES:
            digest = digest_array(array)
            if self.has_array(digest):
                return digest, False
            if self._index is None:
                return digest, self._write_folder(array, digest)
            pending = self._pending_array(array, digest)  # encoded outside the lock
            with self._lock:  # one answer per digest, as for folders
                if self.has_array(digest):
                    return digest, False
                self._add_pending(digest, pending)
            return digest, True
        shape = array.shape
        hasher = array_hasher(array.dtype, shape)
        with self._new_folder("new", "a new array component") as tmp:
            layout, files = write_array_data(tmp, array, hasher)
            digest = hasher.hexdigest()
            if self.has_array(digest):
                shutil.rmtree(tmp, ignore_errors=True)
                return digest, False
            names = dimension_names_for(digest, len(shape))
            files.insert(0, write_array_meta(tmp, shape, layout, names))
        return digest, self._commit_array(digest, tmp, files)

    def _write_folder(self, array: np.ndarray, digest: str) -> bool:
        """Write ``array`` (of ``digest``) as its own folder; False if another writer was first."""
        with self._new_folder(digest, f"array component {digest}") as tmp:
            files = write_array_dir(tmp, array, dimension_names_for(digest, array.ndim))
        return self._commit_array(digest, tmp, files)

    def _pending_array(self, array: np.ndarray, digest: str) -> _Pending:
        """A small array encoded in memory, ready for the next pack."""
        encoded = encode_array_files(array, dimension_names_for(digest, array.ndim))
        members = [(f"arrays/{digest}/{name}", data) for name, data in encoded]
        key = encoded[1][0] if len(encoded) > 1 else None
        return _Pending(KIND_ARRAY, members, key)

    def _add_pending(self, digest: str, pending: _Pending) -> bool:
        """Keep a small component for the next pack (False: pending already); maybe write a pack.

        `PENDING_MAX_BYTES` bounds the memory a long batch of puts holds: a
        pack written before `sync` is as safe (its components are complete;
        rows come after the pack) and only makes packs smaller.
        """
        with self._lock:
            if digest in self._pending:
                return False
            if self._pending_bytes >= 4 * PENDING_MAX_BYTES:
                # Packs keep failing (a full disk, a locked index): refuse before
                # taking the component, so that an error always means "not stored".
                raise BlobStoreError(
                    f"{self._pending_bytes} bytes of small components wait for a pack that "
                    f"cannot be written into {self._root}; call sync() to see why, and fix that"
                )
            self._pending[digest] = pending
            self._pending_bytes += pending.nbytes
            if self._pending_bytes >= (self._retry_pack_at or PENDING_MAX_BYTES):
                try:
                    self._write_pack()
                except BlobStoreError:
                    # The component is kept; sync() retries and reports. Until then,
                    # try again only once twice as much waits, not on every put.
                    self._retry_pack_at = 2 * self._pending_bytes
        return True

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

    def _commit_array(self, digest: str, tmp: str, files: list[str]) -> bool:
        """Name the written folder ``tmp`` ``digest``: now, or staged for `sync` (fsync on).

        Returns False, and removes ``tmp``, if the same array was stored or
        staged meanwhile (by another thread or process).
        """
        with self._lock:
            if not self._fsync:
                return self._publish_array(digest, tmp)
            if digest in self._staged_arrays:
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            self._staged_arrays[digest] = (tmp, files)
        return True

    def _publish_array(self, digest: str, src: str) -> bool:
        """Rename ``src`` to the array's place; False if it was there already (``src`` removed)."""
        final = self._array_path(digest)
        self._ensure_dir(os.path.dirname(final), group=True)
        try:
            os.rename(src, final)
        except OSError:
            if not os.path.isdir(final):
                raise
            # Stored meanwhile (another process, same content): keep theirs.
            shutil.rmtree(src, ignore_errors=True)
            return False
        self._dirty_dirs.add(os.path.dirname(final))
        return True

    def _array_folder(self, digest: str) -> tuple[str, bool]:
        """The folder of array ``digest`` (checked digest), and whether it is staged."""
        with self._lock:
            staged = self._staged_arrays.get(digest)
        return (staged[0], True) if staged is not None else (self._array_path(digest), False)

    def _locate_array(self, digest: str) -> str:
        check_digest(digest)
        folder, staged = self._array_folder(digest)
        # Seen before (its zarr.json is cached): the read itself finds out if it has
        # gone since, and get_array then looks again without the cache.
        if not staged and digest not in self._meta and not os.path.isdir(folder):
            raise BlobNotFoundError(f"no array component {digest} in the blob store")
        return folder

    def _meta_of(self, digest: str, path: str) -> ArrayMeta | None:
        """Parsed zarr.json, cached (components never change); None = read via zarr."""
        if digest in self._meta:
            return self._meta[digest]
        try:
            with open(os.path.join(path, "zarr.json"), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise BlobStoreError(f"cannot read array component {digest}: {exc}") from exc
        try:
            meta: ArrayMeta | None = parse_array_metadata(raw)
        except UnsupportedZarrError:
            meta = None
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"has a bad zarr.json: {exc}") from exc
        bounded_put(self._meta, digest, meta, _META_CACHE_SIZE)
        return meta

    def _sums_of(self, digest: str, path: str) -> Sums | None:
        """The ``compstore.sums`` of the array in ``path`` (cached); None if it has none.

        Arrays written before checksums, by other zarr writers, or of one part
        have none.

        Raises
        ------
        CorruptBlobError
            If the file is damaged.
        """
        if digest in self._sums:
            return self._sums[digest]
        try:
            with open(os.path.join(path, SUMS_NAME), "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            sums = None
        except OSError as exc:
            raise BlobStoreError(f"cannot read array component {digest}: {exc}") from exc
        else:
            try:
                sums = parse_sums(raw)
            except ValueError as exc:
                raise corrupt_array(digest, f"has a damaged {SUMS_NAME}: {exc}") from exc
        bounded_put(self._sums, digest, sums, _META_CACHE_SIZE)
        return sums

    def check_files(self, digest: str) -> None:
        """As `BlobStore.check_files`: a packed component's pack is there and long
        enough; an array folder's ``zarr.json`` reads and each of its chunk files is
        there (a raw one of the right size).

        A chunk file missing from an array zarr-python wrote may be a chunk of
        fill values it left out: an array with a missing chunk file is read
        whole and checked against its digest (compstore's own arrays then
        fail: every chunk is written). So is an array whose ``zarr.json`` is not
        one compstore writes (an unknown codec, a group's node type).

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        CorruptBlobError
            If a file is missing, of the wrong size, or ``zarr.json`` does not read.
        """
        check_digest(digest)
        found = self._packed(digest, None)
        if isinstance(found, PackedMember):
            path = self._pack_path(found.pack)
            end = max(found.data_offset + found.data_size,
                      (found.meta_offset or 0) + (found.meta_size or 0))  # fmt: skip
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                size = -1
            except OSError as exc:
                raise BlobStoreError(f"cannot check component {digest}: {exc}") from exc
            if size < end:
                what = "is missing" if size < 0 else f"ends at byte {size}, before its member"
                raise CorruptBlobError(
                    f"component {digest} is indexed in pack {found.pack}, which {what}; the "
                    "repository is damaged: run `compstore verify` to list what it breaks"
                )
            return
        if found is not None or not self.has_array(digest):
            super().check_files(digest)  # pending, a document, or nothing
            return
        path = self._array_folder(digest)[0]
        self._meta.pop(digest, None)  # from the disk
        try:
            meta = self._meta_of(digest, path)
            names = set(os.listdir(path))
        except FileNotFoundError:
            raise BlobNotFoundError(f"array component {digest} vanished while checked") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot check array component {digest}: {exc}") from exc
        if meta is None:
            # Not the zarr.json compstore writes (another writer's array, or damage:
            # an unknown codec, a group's node type): read it whole and check it.
            self._read(digest, path, None)
            return
        if not math.prod(meta.shape):
            return  # no chunk at all
        keys = [chunk_key(i, meta.separator)
                for i in iter_chunk_indices((0,) * len(meta.shape), meta.shape, meta.chunk_shape)]  # fmt: skip
        if any(k not in names for k in keys):
            # Chunks of fill values zarr left out (the whole array then hashes
            # right), or damage: "is missing its chunk file(s) ...".
            self._read(digest, path, None)
            return
        for key in keys:
            try:
                check_chunk_file(path, meta, key)
            except FileNotFoundError:
                raise BlobNotFoundError(f"array component {digest} vanished while checked") from None
            except DECODE_ERRORS as exc:
                raise corrupt_array(digest, f"has a damaged chunk file {key}: {exc}") from exc
            except OSError as exc:
                raise BlobStoreError(f"cannot check array component {digest}: {exc}") from exc

    def verify(self, digest: str) -> None:
        """As `BlobStore.verify`; an array folder's ``compstore.sums`` is checked too.

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        CorruptBlobError
            If the content's digest differs, it cannot be decoded, or a
            checksum of a part of it differs (cut-outs of it would fail).
        """
        super().verify(digest)
        if self._packed(digest, KIND_ARRAY) is not None:
            return  # read from the pack, and checked whole on every read
        path = self._array_folder(digest)[0]
        if not os.path.isdir(path):
            return
        self._sums.pop(digest, None)  # from the disk, not the cache
        meta = self._meta_of(digest, path)
        sums = self._sums_of(digest, path)
        if meta is None or sums is None:
            return
        try:
            check_array_sums(path, meta, sums)
        except FileNotFoundError as exc:
            raise corrupt_array(digest, f"has lost its data file: {exc}") from exc
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"does not match its {SUMS_NAME}: {exc}") from exc
        except OSError as exc:
            raise BlobStoreError(f"cannot read array component {digest}: {exc}") from exc

    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
        check_digest(digest)
        if digest in self._in_folder:
            # Read from its folder before: no pack-index query (three per exposure get).
            try:
                return self._read(digest, self._array_folder(digest)[0], region)
            except FileNotFoundError:
                # Deleted, or its staged copy published since: look everywhere.
                self._in_folder.pop(digest, None)
                self._meta.pop(digest, None)
        if self._index is not None:
            files = self._packed_files(digest, KIND_ARRAY)
            if files is not None:
                return self._read_packed(digest, *files, region)
        for attempt in range(2):
            path = self._locate_array(digest)
            try:
                result = self._read(digest, path, region)
            except FileNotFoundError:
                # A staged component may have just been renamed into place, or a
                # component deleted: look again, from the disk.
                self._meta.pop(digest, None)
                if attempt:
                    raise BlobNotFoundError(
                        f"array component {digest} vanished while being read"
                    ) from None
                continue
            bounded_put(self._in_folder, digest, None, _META_CACHE_SIZE)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, digest: str, path: str, region: RegionLike) -> np.ndarray:
        meta = self._meta_of(digest, path)
        if meta is None:
            return self._read_with_zarr(digest, path, region)
        reg = normalize_region(region, meta.shape)
        # A whole read is checked against the digest, hashed as it is read; a
        # cut-out against the checksums of the parts it reads (docs/format.md,
        # "Checksums"), or, for a small array or one compressed chunk (decoded
        # whole anyway), as a whole read.
        hasher = hasher_for(meta, reg)
        sums = None
        if hasher is None:
            sums = self._sums_of(digest, path)
            if sums is None and checked_whole(meta):
                whole = self._read(digest, path, None)
                return read_only_view(np.array(whole[region_box(reg)]), reg)
        missing: list[str] | None = [] if hasher is not None else None
        try:
            box = read_array_dir(path, meta, reg, hasher, missing, sums)
        except FileNotFoundError:
            raise
        except MissingChunkError:
            # A cut-out met a missing chunk: the fill value only if the whole
            # array, read with it as the fill value, hashes to its digest.
            whole = self._read(digest, path, None)
            return read_only_view(np.array(whole[region_box(reg)]), reg)
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"cannot be decoded: {exc}") from exc
        except OSError as exc:
            raise BlobStoreError(f"cannot read array component {digest}: {exc}") from exc
        if hasher is not None:
            check_hash(digest, hasher, missing)
        return read_only_view(box, reg)

    @staticmethod
    def _read_with_zarr(digest: str, path: str, region: RegionLike) -> np.ndarray:
        """Read with zarr-python an array the direct reader does not handle.

        compstore writes every array in a layout its own reader handles, so
        this serves arrays other zarr writers made, and damaged ``zarr.json``
        files: whatever zarr raises becomes `CorruptBlobError`.
        """
        import zarr

        try:
            arr = zarr.open_array(path, mode="r")
            reg = normalize_region(region, tuple(arr.shape))
            box = np.asarray(arr[tuple(slice(a, b) for a, b in zip(reg.lo, reg.hi))])
        except FileNotFoundError:
            raise
        except CompstoreError:
            raise
        except Exception as exc:  # zarr's own errors, of many kinds: all mean "cannot read"
            raise corrupt_array(digest, f"cannot be read by zarr: {exc!r}") from exc
        box = np.array(box, copy=True)  # zarr may hand out a shared buffer
        if box.shape == tuple(arr.shape):
            actual = digest_array(box)
            if actual != digest:
                raise corrupt_array(digest, f"is corrupt: its content hashes to {actual}")
        return read_only_view(box, reg)

    def _packed(
        self, digest: str, kind: str | None, *, cached: bool = False
    ) -> PackedMember | _Pending | None:
        """The pending or packed component ``digest`` of ``kind`` (None: of either), if any.

        With ``cached``, a place found before is trusted (reads: a pack never
        changes, so its bytes stay right even if another store object has since
        deleted the component); existence checks ask the index every time.
        """
        with self._lock:
            pending = self._pending.get(digest)
            if pending is not None:
                return pending if kind in (None, pending.kind) else None
            if self._index is None:
                return None
            member = self._located.get(digest) if cached else None
            if member is None:
                try:
                    member = self._index.lookup(digest)
                except _SQLITE_ERRORS as exc:
                    raise BlobStoreError(
                        f"cannot read the pack index of {self._root}: {exc}"
                    ) from exc
                except ValueError as exc:
                    raise CorruptBlobError(
                        f"component {digest} has a damaged row in {self._root}/packs.sqlite3 "
                        f"({exc}); the repository is damaged: run `compstore verify`"
                    ) from exc
                if member is not None:
                    bounded_put(self._located, digest, member, _LOCATED_CACHE_SIZE)
                else:
                    self._located.pop(digest, None)
        return member if member is not None and kind in (None, member.kind) else None

    def _packed_files(self, digest: str, kind: str) -> tuple[bytes, bytes | None] | None:
        """A pending or packed component's bytes: (document or zarr.json, array data or None)."""
        found = self._packed(digest, kind, cached=True)
        if found is None:
            return None
        if isinstance(found, _Pending):  # (a document has one member)
            return found.members[0][1], (found.members[1][1] if len(found.members) > 1 else None)
        try:
            try:
                return self._pread_member(found, kind)
            except FileNotFoundError:
                # gc rewrote the pack (a repack) since this place was looked up: the
                # index names the new one. Asked again once, uncached.
                again = self._packed(digest, kind)
                if again is None or isinstance(again, _Pending) or again == found:
                    raise
                found = again
                return self._pread_member(found, kind)
        except FileNotFoundError:
            raise CorruptBlobError(
                f"component {digest} is indexed in pack {found.pack}, which is missing; "
                "the repository is damaged: run `compstore verify`"
            ) from None
        except ValueError as exc:
            raise CorruptBlobError(f"component {digest}: {exc}") from exc
        except OSError as exc:
            raise BlobStoreError(f"cannot read component {digest}: {exc}") from exc

    def _pread_member(self, found: PackedMember, kind: str) -> tuple[bytes, bytes | None]:
        path = self._pack_path(found.pack)
        if kind == KIND_DOCUMENT:
            return pread_members(path, [(found.data_offset, found.data_size)])[0], None
        assert found.meta_offset is not None and found.meta_size is not None
        meta, data = pread_members(
            path, [(found.meta_offset, found.meta_size), (found.data_offset, found.data_size)]
        )
        return meta, (data if found.key is not None else None)

    def _packed_meta(self, digest: str, raw: bytes) -> ArrayMeta:
        cached = self._meta.get(digest)
        if cached is not None:
            return cached
        try:
            meta = parse_array_metadata(raw)
        except (UnsupportedZarrError, *DECODE_ERRORS) as exc:
            raise corrupt_array(digest, f"has a bad zarr.json: {exc}") from exc
        bounded_put(self._meta, digest, meta, _META_CACHE_SIZE)
        return meta

    def _read_packed(
        self, digest: str, raw_meta: bytes, data: bytes | None, region: RegionLike
    ) -> np.ndarray:
        meta = self._packed_meta(digest, raw_meta)
        reg = normalize_region(region, meta.shape)
        try:
            whole = decode_array_data(meta, data)
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"cannot be decoded: {exc}") from exc
        # Packed arrays are small (< PACK_MAX_BYTES): every read, cut-outs too,
        # decodes the whole array and checks it against its digest (~40 us a MiB).
        actual = digest_array(whole)
        if actual != digest:
            raise corrupt_array(digest, f"is corrupt: its content hashes to {actual}")
        box = whole
        if whole.ndim:
            box = np.array(whole[tuple(slice(a, b) for a, b in zip(reg.lo, reg.hi))])
        return read_only_view(box, reg)

    def component_path(self, digest: str) -> str:
        """As `BlobStore.component_path`; a packed array is first written out as its folder.

        The folder holds the very bytes of the pack's members, so stock zarr
        opens it at the usual path; the pack keeps its copy.
        """
        path = super().component_path(digest)
        found = self._packed(digest, KIND_ARRAY) if self._index is not None else None
        if found is not None and not os.path.isdir(self._array_path(digest)):
            meta, data = self._packed_files(digest, KIND_ARRAY) or (b"", None)
            with self._new_folder(digest, f"array component {digest}") as tmp:
                os.mkdir(tmp)
                files = [(os.path.join(tmp, "zarr.json"), meta)]
                if found.key is not None and data is not None:
                    files.append((os.path.join(tmp, found.key), data))
                for file, content in files:
                    write_new(file, content)
                    if self._fsync:
                        fsync_file(file)
                if self._fsync:
                    fsync_dir(tmp)
                with self._lock:
                    self._publish_array(digest, tmp)
                if self._fsync:
                    fsync_dir(os.path.dirname(self._array_path(digest)))
        return path

    def packed_array_files(self, digest: str) -> dict[str, bytes] | None:
        """The files of a packed array's zarr folder, checked; None if it is not packed.

        ``{"zarr.json": ..., "<chunk key>": ...}``: what `component_path` writes
        out, for a caller that cannot write into the repository (it is read-only)
        and writes the folder elsewhere. The array is decoded and checked against
        its digest first, so damage surfaces here rather than as wrong pixels.

        Raises
        ------
        CorruptBlobError
            If the pack's bytes fail their digest (or the pack is missing).
        """
        found = self._packed(digest, KIND_ARRAY) if self._index is not None else None
        if found is None:
            return None
        meta, data = self._packed_files(digest, KIND_ARRAY) or (b"", None)
        self.get_array(digest)
        files = {"zarr.json": meta}
        if found.key is not None and data is not None:
            files[found.key] = data
        return files

    def _pack_path(self, pack: str) -> str:
        check_digest(pack)  # a name read from the index: checked before it becomes a path
        return f"{self._packs_dir}/{pack[:2]}/{pack}.zip"

    def array_info(self, digest: str) -> ArrayInfo:
        if self._index is not None:
            check_digest(digest)
            files = self._packed_files(digest, KIND_ARRAY)
            if files is not None:
                packed = self._packed_meta(digest, files[0])
                return ArrayInfo(packed.shape, packed.dtype, self.stored_bytes(digest))
        if not self.has_array(digest):  # from the disk, not the zarr.json cache
            raise BlobNotFoundError(f"no array component {digest} in the blob store")
        path = self._array_folder(digest)[0]
        meta = self._meta_of(digest, path)
        if meta is None:
            import zarr

            arr = zarr.open_array(path, mode="r")
            shape, dtype = tuple(arr.shape), np.dtype(arr.dtype)
        else:
            shape, dtype = meta.shape, meta.dtype
        return ArrayInfo(shape, dtype, self.stored_bytes(digest))

    def has_array(self, digest: str) -> bool:
        check_digest(digest)
        return (
            digest in self._staged_arrays
            or self._packed(digest, KIND_ARRAY) is not None
            or os.path.isdir(self._array_path(digest))
        )

    # -- documents ------------------------------------------------------------
    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        return self.put_new_document(data, digest)[0]

    def put_new_document(
        self, data: bytes | bytearray | memoryview, digest: str | None = None
    ) -> tuple[str, bool]:
        data, digest = prepare_document(data, digest)
        if self.has_document(digest):
            return digest, False
        if self._index is not None and len(data) < PACK_MAX_BYTES:
            member = (f"documents/{digest}.json", bytes(data))
            return digest, self._add_pending(digest, _Pending(KIND_DOCUMENT, [member], None))
        try:
            with self._lock:
                if digest in self._staged_documents:
                    return digest, False  # another thread staged it meanwhile
                if self._fsync:
                    tmp = self._temp_path(digest) + ".json"
                    write_new(tmp, data)
                    self._staged_documents[digest] = tmp
                else:
                    final = self._document_path(digest)
                    self._ensure_dir(os.path.dirname(final), group=False)
                    write_atomic(final, data)
        except OSError as exc:
            raise BlobStoreError(f"cannot write document {digest}: {exc}") from exc
        return digest, True

    def _publish_document(self, digest: str, src: str) -> None:
        final = self._document_path(digest)
        self._ensure_dir(os.path.dirname(final), group=False)
        if os.path.exists(final):
            os.unlink(src)  # written once: keep the one already there
            return
        os.replace(src, final)
        self._dirty_dirs.add(os.path.dirname(final))

    def get_document(self, digest: str) -> bytes:
        # Every document read is checked (~0.1 us a KiB): a damaged byte in a
        # manifest or a Wcs is never parsed into an answer.
        return checked_document(digest, self.get_document_unchecked(digest))

    def get_document_unchecked(self, digest: str) -> bytes:
        check_digest(digest)
        if self._index is not None:
            files = self._packed_files(digest, KIND_DOCUMENT)
            if files is not None:
                return files[0]
        for _ in range(2):
            with self._lock:
                path = self._staged_documents.get(digest) or self._document_path(digest)
            try:
                with open(path, "rb", buffering=0) as f:  # one read, no buffer object
                    return f.read()
            except FileNotFoundError:
                continue  # maybe published by a concurrent sync: look again
            except OSError as exc:
                raise BlobStoreError(f"cannot read document {digest}: {exc}") from exc
        raise BlobNotFoundError(f"no document {digest} in the blob store")

    def has_document(self, digest: str) -> bool:
        check_digest(digest)
        return (
            digest in self._staged_documents
            or self._packed(digest, KIND_DOCUMENT) is not None
            or os.path.isfile(self._document_path(digest))
        )

    # -- both -----------------------------------------------------------------
    def stored_bytes(self, digest: str) -> int:
        check_digest(digest)
        found_packed = self._packed(digest, None)  # one index query for either kind
        if isinstance(found_packed, _Pending):
            return found_packed.nbytes
        if found_packed is not None:
            return found_packed.data_size + (found_packed.meta_size or 0)
        total = 0
        found = False
        if self.has_array(digest):
            found = True
            for dirpath, _dirs, files in os.walk(self._array_folder(digest)[0]):
                total += sum(os.stat(os.path.join(dirpath, f)).st_size for f in files)
        if self.has_document(digest):
            found = True
            with self._lock:
                path = self._staged_documents.get(digest) or self._document_path(digest)
            total += os.stat(path).st_size
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store")
        return total

    def _iter_fanout(self, top: str, suffix: str, want_dir: bool) -> set[str]:
        found: set[str] = set()
        try:
            groups = [e for e in os.scandir(top) if len(e.name) == 2 and e.is_dir()]
            for group in groups:
                for entry in os.scandir(group.path):
                    name = entry.name[: len(entry.name) - len(suffix)] if suffix else entry.name
                    if (
                        entry.name.endswith(suffix)
                        and is_digest(name)
                        and name.startswith(group.name)
                        and entry.is_dir() == want_dir
                    ):
                        found.add(name)
        except FileNotFoundError:
            if os.path.isdir(top):
                raise BlobStoreError(
                    f"a folder under {top} vanished while being listed; list again"
                ) from None
            return found
        except OSError as exc:
            raise BlobStoreError(f"cannot list the components under {top}: {exc}") from exc
        return found

    def iter_arrays(self) -> Iterator[str]:
        with self._lock:
            staged = set(self._staged_arrays) | self._pending_of(KIND_ARRAY)
        staged |= self._indexed(KIND_ARRAY)
        return iter(sorted(self._iter_fanout(self._arrays_dir, "", True) | staged))

    def iter_documents(self) -> Iterator[str]:
        with self._lock:
            staged = set(self._staged_documents) | self._pending_of(KIND_DOCUMENT)
        staged |= self._indexed(KIND_DOCUMENT)
        return iter(sorted(self._iter_fanout(self._documents_dir, ".json", False) | staged))

    def _pending_of(self, kind: str) -> set[str]:
        return {d for d, p in self._pending.items() if p.kind == kind}

    def _indexed(self, kind: str) -> set[str]:
        if self._index is None:
            return set()
        try:
            return set(self._index.digests(kind))
        except _SQLITE_ERRORS as exc:
            raise BlobStoreError(f"cannot read the pack index of {self._root}: {exc}") from exc

    def delete(self, digest: str) -> None:
        check_digest(digest)
        found = False
        with self._lock:
            # A packed component is forgotten by the index; its bytes stay in the
            # pack (a pack is never rewritten in place).
            self._located.pop(digest, None)
            dropped = self._pending.pop(digest, None)
            if dropped is not None:
                self._pending_bytes -= dropped.nbytes
                found = True
            if self._index is not None:
                try:
                    found = self._index.remove(digest) or found
                except _SQLITE_ERRORS as exc:
                    raise BlobStoreError(f"cannot update the pack index: {exc}") from exc
            staged = self._staged_arrays.pop(digest, None)
            if staged is not None:
                shutil.rmtree(staged[0], ignore_errors=True)
                found = True
            final = self._array_path(digest)
            if os.path.isdir(final):
                # Rename first: readers see the whole array or nothing.
                trash = self._temp_path(f"deleted-{digest}")
                os.rename(final, trash)
                shutil.rmtree(trash, ignore_errors=True)
                self._dirty_dirs.add(os.path.dirname(final))
                found = True
            self._meta.pop(digest, None)
            self._sums.pop(digest, None)
            self._in_folder.pop(digest, None)
            staged_doc = self._staged_documents.pop(digest, None)
            if staged_doc is not None:
                os.unlink(staged_doc)
                found = True
            doc = self._document_path(digest)
            try:
                os.unlink(doc)
                self._dirty_dirs.add(os.path.dirname(doc))
                found = True
            except FileNotFoundError:
                pass
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store")

    def sync(self) -> None:
        with self._lock:
            if not self._fsync:
                self._dirty_dirs.clear()
                self._write_pack()
                return
            arrays = dict(self._staged_arrays)
            documents = dict(self._staged_documents)
            try:
                # 1. Content first: every staged file and folder on disk ...
                paths = [p for _, files in arrays.values() for p in files]
                paths += list(documents.values())
                parallel_map(_fsync_path, paths, len(paths) > 1)
                # 2. ... then the names: rename into place ...
                for digest, (src, _files) in arrays.items():
                    self._publish_array(digest, src)
                    del self._staged_arrays[digest]
                for digest, src in documents.items():
                    self._publish_document(digest, src)
                    del self._staged_documents[digest]
                # 3. ... and make the renames (and deletions) durable.
                dirty = sorted(self._dirty_dirs)
                parallel_map(fsync_dir, dirty, len(dirty) > 1)
                self._dirty_dirs.difference_update(dirty)
            except OSError as exc:
                raise BlobStoreError(f"cannot sync the blob store at {self._root}: {exc}") from exc
            self._write_pack()

    def _write_pack(self) -> None:
        """Write the pending small components as one pack, then index them (lock held).

        The pack is renamed into place (and fsynced, with its folder, when
        fsync is on) before its rows are committed: an index row never names
        a pack that is not on disk. Each digest is packed once: components
        another writer has indexed since they were put are left out, checked
        again under the pack lock (`compstore.cas._staging`) right before the
        rows are committed; if some were indexed in between, the pack is
        written again without them and the first one removed, so no second
        copy stays on disk.
        """
        if not self._pending:
            return
        assert self._index is not None
        pending = dict(self._pending)
        tmp: list[str] = []
        try:
            todo = self._without_indexed(pending)
            if todo:
                raw, where, name = self._store_pack(todo, tmp)
                with pack_lock(self._pack_lock_path):
                    while True:
                        taken = self._index.existing(todo)
                        if not taken:
                            break
                        # Packed by another writer since: this pack must not hold them.
                        todo = {d: p for d, p in todo.items() if d not in taken}
                        self._drop_pack(name, taken)
                        if not todo:
                            break
                        raw, where, name = self._store_pack(todo, tmp)
                    if todo:
                        if not os.path.exists(self._pack_path(name)):
                            # Removed by a sweep (after an identical pack's writer died)
                            # before this writer took the lock: write it again.
                            self._store_pack(todo, tmp)
                        rows = {d: _member_of(d, p, name, where) for d, p in todo.items()}
                        self._index.add(rows)
        except (OSError, *_SQLITE_ERRORS) as exc:
            raise BlobStoreError(
                f"cannot write a pack into {self._root}: {exc}; the components are kept "
                "and written by the next sync"
            ) from exc
        finally:
            for path in tmp:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        for digest, p in pending.items():
            if self._pending.get(digest) is p:
                del self._pending[digest]
                self._pending_bytes -= p.nbytes
        self._retry_pack_at = None

    def _without_indexed(self, pending: dict[str, _Pending]) -> dict[str, _Pending]:
        """``pending`` less the components the index has now (packed by another writer)."""
        assert self._index is not None
        taken = self._index.existing(pending)
        return {d: p for d, p in pending.items() if d not in taken} if taken else pending

    def _store_pack(
        self, pending: dict[str, _Pending], tmp: list[str]
    ) -> tuple[bytes, dict[str, tuple[int, int]], str]:
        """Build the pack of ``pending`` and put it in place (durably with fsync on).

        Returns its bytes, its members' places and its name. ``tmp`` collects
        the temporary file while it exists (removed by the caller on failure).
        """
        members = [m for p in pending.values() for m in p.members]
        raw, where = build_pack(members)
        name = digest_bytes(raw)
        final = self._pack_path(name)
        folder = os.path.dirname(final)
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
        if self._fsync and folder not in self._durable_pack_dirs:
            # Made by us or by another writer that may not have fsynced it yet.
            fsync_dir(self._packs_dir)
            self._durable_pack_dirs.add(folder)
        if not os.path.exists(final):  # else: the same members, packed before
            path = self._temp_path(name) + ".zip"
            tmp.append(path)
            write_new(path, raw)
            if self._fsync:
                fsync_file(path)
            os.replace(path, final)
            tmp.remove(path)
        if self._fsync:
            # Also when the pack was there: its writer's fsync may not have run yet.
            fsync_file(final)
            fsync_dir(folder)
        return raw, where, name

    def _drop_pack(self, name: str, taken: dict[str, str]) -> None:
        """Remove this writer's pack ``name`` unless an index row names it (pack lock held).

        Only a pack of the very same bytes, written and indexed by another
        writer, can be named: then its members are among ``taken``
        (digest -> the pack that holds it).
        """
        if name in taken.values():
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._pack_path(name))

    def close(self) -> None:
        """Sync, then remove this store's staging folder (what is staged is synced by then)."""
        self.sync()
        with self._lock:
            if self._session_folder is not None and not self._staged_arrays and not self._staged_documents:
                self._session_folder.remove()
                self._session_folder = None
                self._session = None

    def __repr__(self) -> str:
        return f"LocalBlobStore({self._root!r}, fsync={self._fsync})"



@dataclass(frozen=True)
class _Pending:
    """A small component waiting for the next pack: its zip members, in order.

    A document has one member; an array its ``zarr.json`` then its data file
    (named ``key``; none for an array with no elements).
    """

    kind: str
    members: list[tuple[str, bytes]]
    key: str | None

    @property
    def nbytes(self) -> int:
        return sum(len(data) for _, data in self.members)


def _member_of(
    digest: str, pending: _Pending, pack: str, where: dict[str, tuple[int, int]]
) -> PackedMember:
    """The index row of a pending component written into ``pack`` (offsets from ``where``)."""
    if pending.kind == KIND_DOCUMENT:
        offset, size = where[pending.members[0][0]]
        return PackedMember(KIND_DOCUMENT, pack, offset, size)
    meta_offset, meta_size = where[pending.members[0][0]]
    offset, size = where[pending.members[1][0]] if pending.key is not None else (0, 0)
    return PackedMember(KIND_ARRAY, pack, offset, size, meta_offset, meta_size, pending.key)


def _fsync_path(path: str) -> None:
    if os.path.isdir(path):
        fsync_dir(path)
    else:
        fsync_file(path)
