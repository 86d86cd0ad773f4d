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

Parts. `LocalBlobStore` coordinates the parts it is built from, each a class
over the shared state of `compstore.cas._localbase.LocalBase` (folders,
caches, the staging session): `compstore.cas._folders` (loose arrays and
documents), `compstore.cas._folderread` (the checked read of an array
folder), `compstore.cas._packwrite` (pending components, writing packs) and
`compstore.cas._packread` (the pack index and reading packed components).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from compstore._pool import parallel_map
from compstore.cas._atomic import fsync_dir, fsync_file, write_atomic, write_new
from compstore.cas._checks import (
    bounded_put,
    checked_document,
)
from compstore.cas._digest import XXH3_128, DigestAlgorithm, check_digest
from compstore.cas._folderread import FolderReader
from compstore.cas._folders import FolderStore
from compstore.cas._localbase import META_CACHE_SIZE, SQLITE_ERRORS
from compstore.cas._pack import (
    KIND_ARRAY,
    KIND_DOCUMENT,
    PACK_MAX_BYTES,
    PackedMember,
    PackIndex,
)
from compstore.cas._pack_pg import PgPackIndex
from compstore.cas._packread import PackReader
from compstore.cas._packwrite import PackWriter, Pending
from compstore.cas._store import (
    ArrayInfo,
    BlobStore,
    RegionLike,
    check_array,
    prepare_array,
    prepare_document,
)
from compstore.cas._zarrio import dimension_names_for
from compstore.cas._zarrwrite import write_array_data, write_array_meta
from compstore.errors import BlobNotFoundError, BlobStoreError

__all__ = ["LocalBlobStore", "require_local"]


class LocalBlobStore(FolderStore, FolderReader, PackWriter, PackReader):
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
    read_only
        Refuse every write (put, delete, writing a packed array out as its
        folder) with `BlobStoreError`, and create nothing, not even missing
        folders: for a repository of a newer format (`compstore.Butler` opens
        those read-only) or one this process must not change.
    digest_algorithm
        How components are named (`compstore.cas._digest`): xxh3-128, or the
        algorithm a format 3 repository records.
    compare_on_hit
        When a put finds its digest stored, read the stored component back and
        compare it with what is put before reusing it (`compstore.cas._hits`;
        format 3 repositories).

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
        read_only: bool = False,
        digest_algorithm: DigestAlgorithm = XXH3_128,
        compare_on_hit: bool = False,
    ) -> None:
        self.digest_algorithm = digest_algorithm
        self._compare_on_hit = compare_on_hit
        self._init_state(os.path.abspath(os.fspath(root)), fsync, pack_index if packs else None)
        self._read_only = read_only
        try:
            if not read_only:
                self._init_layout(packs)
        except OSError as exc:
            raise BlobStoreError(f"cannot create the blob store at {self._root}: {exc}") from exc
        if packs and pack_index is None:
            index = os.path.join(self._root, "packs.sqlite3")
            try:
                self._index = PackIndex(index, fsync=fsync)
            except SQLITE_ERRORS as exc:
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

    @property
    def durable(self) -> bool:
        """As `BlobStore.durable`: whether the store was opened with ``fsync=True``."""
        return self._fsync

    @property
    def read_only(self) -> bool:
        """As `BlobStore.read_only`: whether the store was opened with ``read_only=True``."""
        return self._read_only

    @property
    def compare_on_hit(self) -> bool:
        """As `BlobStore.compare_on_hit`: whether the store was opened with ``compare_on_hit=True``."""
        return self._compare_on_hit

    @property
    def location(self) -> str:
        """As `BlobStore.location`: the blob store's folder."""
        return self._root

    def _refuse_if_read_only(self, what: str) -> None:
        if self._read_only:
            raise BlobStoreError(
                f"cannot {what}: the blob store at {self._root} was opened read-only "
                "(a repository of a newer format, or read_only=True); nothing was written"
            )

    def pack_index_conninfo(self) -> str | None:
        """The PostgreSQL database holding the pack index, or None (``packs.sqlite3``, or no packs)."""
        return self._index.conninfo if isinstance(self._index, PgPackIndex) else None

    # -- arrays ---------------------------------------------------------------
    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        self._refuse_if_read_only("put an array")
        array, digest = prepare_array(array, digest, self.digest_algorithm)
        if self.has_array(digest):
            self.check_hit(digest, array)
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
        self._refuse_if_read_only("put an array")
        check_array(array)
        if array.nbytes < PACK_MAX_BYTES:
            digest = self.digest_algorithm.digest_array(array)
            if self.has_array(digest):
                self.check_hit(digest, array)
                return digest, False
            if self._index is None:
                stored = self._write_folder(array, digest)
                if not stored:  # another writer's folder came first: a hit all the same
                    self.check_hit(digest, array)
                return digest, stored
            pending = self._pending_array(array, digest)  # encoded outside the lock
            with self._lock:  # one answer per digest, as for folders
                hit = self.has_array(digest)
                if not hit:
                    self._add_pending(digest, pending)
            if hit:
                self.check_hit(digest, array)
                return digest, False
            return digest, True
        shape = array.shape
        hasher = self.digest_algorithm.array_hasher(array.dtype, shape)
        with self._new_folder("new", "a new array component") as tmp:
            layout, files = write_array_data(tmp, array, hasher)
            digest = hasher.hexdigest()
            if self.has_array(digest):
                shutil.rmtree(tmp, ignore_errors=True)
                self.check_hit(digest, array)
                return digest, False
            names = dimension_names_for(digest, len(shape))
            files.insert(0, write_array_meta(tmp, shape, layout, names))
        return digest, self._commit_array(digest, tmp, files)


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
            self._check_pack_member(digest, found)
        elif found is not None or not self.has_array(digest):
            super().check_files(digest)  # pending, a document, or nothing
        else:
            self._check_folder(digest)

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
        self._verify_sums(digest)

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
            bounded_put(self._in_folder, digest, None, META_CACHE_SIZE)
            return result
        raise AssertionError("unreachable")  # pragma: no cover


    def component_path(self, digest: str) -> str:
        """As `BlobStore.component_path`; a packed array is first written out as its folder.

        The folder holds the very bytes of the pack's members, so stock zarr
        opens it at the usual path; the pack keeps its copy.
        """
        path = super().component_path(digest)
        found = self._packed(digest, KIND_ARRAY) if self._index is not None else None
        if found is not None and not os.path.isdir(self._array_path(digest)):
            self._refuse_if_read_only(f"write packed array {digest} out as its folder")
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
        self._refuse_if_read_only("put a document")
        data, digest = prepare_document(data, digest, self.digest_algorithm)
        if self.has_document(digest):
            self.check_hit(digest, data)
            return digest, False
        if self._index is not None and len(data) < PACK_MAX_BYTES:
            member = (f"documents/{digest}.json", bytes(data))
            stored = self._add_pending(digest, Pending(KIND_DOCUMENT, [member], None))
            if not stored:  # another thread's, pending meanwhile
                self.check_hit(digest, data)
            return digest, stored
        try:
            with self._lock:
                raced = digest in self._staged_documents  # another thread staged it meanwhile
                if not raced and self._fsync:
                    tmp = self._temp_path(digest) + ".json"
                    write_new(tmp, data)
                    self._staged_documents[digest] = tmp
                elif not raced:
                    final = self._document_path(digest)
                    self._ensure_dir(os.path.dirname(final), group=False)
                    write_atomic(final, data)
        except OSError as exc:
            raise BlobStoreError(f"cannot write document {digest}: {exc}") from exc
        if raced:
            self.check_hit(digest, data)
        return digest, not raced


    def get_document(self, digest: str) -> bytes:
        # Every document read is checked (~0.1 us a KiB): a damaged byte in a
        # manifest or a Wcs is never parsed into an answer.
        return checked_document(digest, self.get_document_unchecked(digest), self.digest_algorithm)

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
        if isinstance(found_packed, Pending):
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


    def delete(self, digest: str) -> None:
        self._refuse_if_read_only(f"delete component {digest}")
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
                except SQLITE_ERRORS as exc:
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
        if self._read_only:
            return  # nothing was written
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


    def close(self) -> None:
        """Sync, then remove this store's staging folder (what is staged is synced by then)."""
        self.sync()
        with self._lock:
            if self._session_folder is not None and not self._staged_arrays and not self._staged_documents:
                self._session_folder.remove()
                self._session_folder = None
                self._session = None

    def __repr__(self) -> str:
        extra = ", read_only=True" if self._read_only else ""
        return f"LocalBlobStore({self._root!r}, fsync={self._fsync}{extra})"


def _fsync_path(path: str) -> None:
    if os.path.isdir(path):
        fsync_dir(path)
    else:
        fsync_file(path)


def require_local(blobs: BlobStore, operation: str) -> LocalBlobStore:
    """``blobs`` as a `LocalBlobStore`, for an operation on its files.

    Raises
    ------
    BlobStoreError
        If ``blobs`` is another kind of store, naming it and ``operation``.
    """
    if isinstance(blobs, LocalBlobStore):
        return blobs
    raise BlobStoreError(
        f"{operation} works on a blob store in a local folder; {blobs.location} is a "
        f"{type(blobs).__name__}"
    )
