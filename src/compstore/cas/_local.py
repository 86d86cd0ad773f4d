"""A blob store in a local folder: zarr v3 arrays and plain-file documents.

Layout (``docs/format.md``, "Blob store layout")::

    <root>/arrays/zarr.json                     zarr v3 group: the zarr root
    <root>/arrays/ab/zarr.json                  fan-out group, first two hex chars
    <root>/arrays/ab/<digest>/zarr.json, c/...  one zarr v3 array per component
    <root>/documents/ab/<digest>.json           one plain file per document
    <root>/staging/<session>/...                writes not yet synced

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
import os
import secrets
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np

from compstore._pool import parallel_map
from compstore.cas._atomic import fsync_dir, fsync_file, write_atomic, write_new
from compstore.cas._digest import array_hasher, check_digest, is_digest
from compstore.cas._region import Region, normalize_region
from compstore.cas._store import (
    ARRAYS_GROUP,
    ArrayInfo,
    BlobStore,
    RegionLike,
    check_array,
    prepare_array,
    prepare_document,
)
from compstore.cas._zarrfmt import (
    ArrayMeta,
    UnsupportedZarrError,
    group_metadata,
    parse_array_metadata,
)
from compstore.cas._zarrio import (
    dimension_names_for,
    read_array_dir,
    write_array_data,
    write_array_dir,
    write_array_meta,
)
from compstore.errors import BlobNotFoundError, BlobStoreError, CorruptBlobError, EncodingError

__all__ = ["LocalBlobStore"]

_META_CACHE_SIZE: Final = 4096
# What a damaged chunk or zarr.json makes numcodecs / json / numpy raise.
_DECODE_ERRORS: Final = (ValueError, RuntimeError, KeyError, TypeError, IndexError)


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

    Raises
    ------
    BlobStoreError
        If the folder cannot be created.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self._root = os.path.abspath(os.fspath(root))
        self._fsync = fsync
        self._arrays_dir = os.path.join(self._root, ARRAYS_GROUP)
        self._documents_dir = os.path.join(self._root, "documents")
        self._staging_dir = os.path.join(self._root, "staging")
        self._session: str | None = None
        self._counter = itertools.count()
        # RLock: sync holds it while publishing, and publishing calls helpers that take it.
        self._lock = threading.RLock()
        self._staged_arrays: dict[str, tuple[str, list[str]]] = {}
        self._staged_documents: dict[str, str] = {}
        self._dirty_dirs: set[str] = set()
        self._known_dirs: set[str] = set()
        self._meta: dict[str, ArrayMeta | None] = {}
        try:
            self._init_layout()
        except OSError as exc:
            raise BlobStoreError(f"cannot create the blob store at {self._root}: {exc}") from exc

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

    # f-strings, not os.path.join: these run for every component read (the roots are
    # absolute and normalised, digests checked: nothing to join carefully).
    def _array_path(self, digest: str) -> str:
        return f"{self._arrays_dir}/{digest[:2]}/{digest}"

    def _document_path(self, digest: str) -> str:
        return f"{self._documents_dir}/{digest[:2]}/{digest}.json"

    def _session_dir(self) -> str:
        if self._session is None:
            session = os.path.join(self._staging_dir, f"{os.getpid()}-{secrets.token_hex(6)}")
            os.mkdir(session)
            self._session = session
        return self._session

    def _temp_path(self, name: str) -> str:
        # The session folder is this store object's own: a counter makes names unique.
        return os.path.join(self._session_dir(), f"{name}.{next(self._counter)}")

    # -- set-up ---------------------------------------------------------------
    def _init_layout(self) -> None:
        created: list[str] = []
        for path in (self._root, self._arrays_dir, self._documents_dir, self._staging_dir):
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
        with self._new_folder(digest, f"array component {digest}") as tmp:
            files = write_array_dir(tmp, array, dimension_names_for(digest, array.ndim))
        self._commit_array(digest, tmp, files)
        return digest

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        """Hash ``array`` while writing it; see `BlobStore`.

        A raw array (floats that do not compress) is hashed 256 KiB at a time,
        each block just before it is written, so its memory is read once; a
        compressed one is hashed whole, then encoded. The array is written into
        a temporary folder, then named by the digest found; if that digest is
        stored already, the folder is removed (the price of a duplicate nobody
        knew about: one write, no second copy).
        """
        check_array(array)
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
        except _DECODE_ERRORS as exc:
            raise CorruptBlobError(f"array component {digest} has a bad zarr.json: {exc}") from exc
        if len(self._meta) >= _META_CACHE_SIZE:
            self._meta.pop(next(iter(self._meta)), None)
        self._meta[digest] = meta
        return meta

    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
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
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, digest: str, path: str, region: RegionLike) -> np.ndarray:
        meta = self._meta_of(digest, path)
        if meta is None:
            return self._read_with_zarr(path, region)
        reg = normalize_region(region, meta.shape)
        try:
            box = read_array_dir(path, meta, reg)
        except FileNotFoundError:
            raise
        except _DECODE_ERRORS as exc:
            raise CorruptBlobError(f"array component {digest} cannot be decoded: {exc}") from exc
        except OSError as exc:
            raise BlobStoreError(f"cannot read array component {digest}: {exc}") from exc
        return _read_only_view(box, reg)

    @staticmethod
    def _read_with_zarr(path: str, region: RegionLike) -> np.ndarray:
        # Arrays written by other zarr writers with codecs the direct reader lacks.
        import zarr

        arr = zarr.open_array(path, mode="r")
        reg = normalize_region(region, tuple(arr.shape))
        box = np.asarray(arr[tuple(slice(a, b) for a, b in zip(reg.lo, reg.hi))])
        box = np.array(box, copy=True)  # zarr may hand out a shared buffer
        return _read_only_view(box, reg)

    def array_info(self, digest: str) -> ArrayInfo:
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
        return digest in self._staged_arrays or os.path.isdir(self._array_path(digest))

    # -- documents ------------------------------------------------------------
    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        data, digest = prepare_document(data, digest)
        if self.has_document(digest):
            return digest
        try:
            with self._lock:
                if digest in self._staged_documents:
                    return digest  # another thread staged it meanwhile
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
        return digest

    def _publish_document(self, digest: str, src: str) -> None:
        final = self._document_path(digest)
        self._ensure_dir(os.path.dirname(final), group=False)
        if os.path.exists(final):
            os.unlink(src)  # written once: keep the one already there
            return
        os.replace(src, final)
        self._dirty_dirs.add(os.path.dirname(final))

    def get_document(self, digest: str) -> bytes:
        check_digest(digest)
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
        return digest in self._staged_documents or os.path.isfile(self._document_path(digest))

    # -- both -----------------------------------------------------------------
    def stored_bytes(self, digest: str) -> int:
        check_digest(digest)
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
        except FileNotFoundError:
            return found
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
        return found

    def iter_arrays(self) -> Iterator[str]:
        with self._lock:
            staged = set(self._staged_arrays)
        return iter(sorted(self._iter_fanout(self._arrays_dir, "", True) | staged))

    def iter_documents(self) -> Iterator[str]:
        with self._lock:
            staged = set(self._staged_documents)
        return iter(sorted(self._iter_fanout(self._documents_dir, ".json", False) | staged))

    def delete(self, digest: str) -> None:
        check_digest(digest)
        found = False
        with self._lock:
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

    def close(self) -> None:
        """Sync, then remove this store's (now empty) staging folder."""
        self.sync()
        with self._lock:
            if self._session is not None and not self._staged_arrays and not self._staged_documents:
                shutil.rmtree(self._session, ignore_errors=True)
                self._session = None

    def __repr__(self) -> str:
        return f"LocalBlobStore({self._root!r}, fsync={self._fsync})"


def _read_only_view(box: np.ndarray, region: Region) -> np.ndarray:
    """Return a view of the part of ``box`` that ``region`` selects, which cannot be made writeable.

    A view of a read-only base refuses ``flags.writeable = True``, so an array
    shared through the identity cache cannot be changed under other holders.
    """
    box.flags.writeable = False
    return box[region.local_index]


def _fsync_path(path: str) -> None:
    if os.path.isdir(path):
        fsync_dir(path)
    else:
        fsync_file(path)
