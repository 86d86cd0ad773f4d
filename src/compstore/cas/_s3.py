"""A blob store in an S3-compatible bucket: zarr v3 arrays and documents as objects.

Layout under ``s3://<bucket>/<prefix>/`` (the same names as `LocalBlobStore`'s
folders, ``docs/object-storage.md``)::

    arrays/zarr.json                          zarr v3 group: the zarr root
    arrays/ab/zarr.json                       fan-out group, first two hex chars
    arrays/ab/<digest>/c.0.0                  the array's one data file (none if empty)
    arrays/ab/<digest>/compstore.sums         checksums of its parts (1 MiB and more)
    arrays/ab/<digest>/zarr.json              written last: the array exists once it does
    documents/ab/<digest>.json                one object per document

Every object is written under its final name: an S3 PUT is atomic, so a
half-written object is never visible, and an array is visible only once its
``zarr.json`` is. ``zarr.json`` and documents are written with a conditional
PUT (``If-None-Match: *``): of writers racing with the same content exactly
one creates it, the others are told it exists. Every PUT is durable when it
returns, so `S3BlobStore.sync` has nothing to do.

Reads are checked as `LocalBlobStore`'s are: a whole array against its
digest, a cut-out against the checksums of the parts it reads (fetched by
ranged GETs, `compstore.cas._rangeread`), a document against its digest.

Built on obstore (the Python bindings of the Rust ``object_store`` crate, the
one zarr-python's ``ObjectStore`` uses): it has put-if-absent, coalesced
ranged GETs and the standard ``AWS_*`` environment variables.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

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
from compstore.cas._digest import array_bytes, check_digest, is_digest
from compstore.cas._pack import KIND_ARRAY, KIND_DOCUMENT, PackedMember
from compstore.cas._packwrite import Pending
from compstore.cas._rangeread import FetchRanges, FetchSuffix, read_box
from compstore.cas._region import normalize_region
from compstore.cas._s3base import DOCUMENTS, TO_DO, first_line
from compstore.cas._s3packs import S3Packs
from compstore.cas._store import (
    ARRAYS_GROUP,
    ArrayInfo,
    RegionLike,
    prepare_array,
    prepare_document,
)
from compstore.cas._sums import SUMS_NAME, Sums, parse_sums
from compstore.cas._zarrfmt import (
    ArrayMeta,
    UnsupportedZarrError,
    chunk_key,
    group_metadata,
    parse_array_metadata,
)
from compstore.cas._zarrio import decode_array_data, dimension_names_for
from compstore.cas._zarrwrite import encode_array_files
from compstore.errors import BlobNotFoundError, BlobStoreError, CompstoreError, CorruptBlobError

__all__ = ["S3BlobStore"]

_META_CACHE_SIZE: Final = 4096
_LOOK_FIRST_BYTES: Final = 1 << 20
_TAIL_CACHE_SIZE: Final = 1024  # shard indexes: 16 bytes per inner chunk, a few KiB each


class S3BlobStore(S3Packs):
    """A blob store under ``prefix`` of the S3 (or S3-compatible) bucket ``bucket``.

    Parameters not given are read by obstore from the standard environment
    variables: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL``, ``AWS_REGION``. Credentials
    are kept in memory only, never written anywhere.

    Parameters
    ----------
    bucket
        The bucket (it must exist).
    prefix
        The folder inside the bucket holding this store (``""``: the bucket's root).
    endpoint
        The server's URL for S3-compatible stores (MinIO, Ceph, moto):
        ``http://host:port``; plain HTTP is allowed only when given so.
    region, access_key_id, secret_access_key, session_token
        As the AWS variables of the same names.
    cache
        A local folder (created) keeping what is read whole: ``zarr.json``,
        checksums, documents, arrays' data files (`compstore.cas._objcache`),
        so reading them again, or a cut-out of a cached array, costs no
        request. What is read from it is checked as what is fetched, and
        fetched again if it fails. None: no cache.
    cache_bytes
        At most this many bytes in ``cache``; least recently used files go first.
    pack_index
        Where packed components are indexed (`compstore.cas._pack.PackIndex`, an
        SQLite file, or `compstore.cas._pack_pg.PgPackIndex`): given, small
        components are written into packs at `sync` (`compstore.cas._s3packs`).
        None: every component is its own objects.
    gc_lock
        The gc lock that every writer of this store takes shared and
        `compstore.gc.collect_garbage` exclusive: a local folder holding an
        ``flock`` one (`compstore.cas._gclock`), or a `compstore.cas._gclock.GcLock`;
        None: the store cannot be garbage-collected. A repository with a SQLite
        registry passes ``<registry>.gc`` beside that file (its writers share
        that host), one with a PostgreSQL registry advisory locks in that
        database (`compstore.cas._gclock_pg.PgGcLock`).
    digest_algorithm
        How components are named (`compstore.cas._digest`): xxh3-128, or the
        algorithm a format 3 repository records.
    compare_on_hit
        When a put finds its digest stored, read the stored component back
        from the bucket and compare it with what is put before reusing it
        (`compstore.cas._hits`; format 3 repositories).

    Raises
    ------
    BlobStoreError
        If obstore is not installed (``pip install compstore[s3]``) or refuses the settings.
    """

    def verify(self, digest: str) -> None:
        """As `BlobStore.verify`, reading from the server: never the local cache or memory.

        (A copy kept locally is checked by every read anyway; ``verify`` is
        for the bucket's own objects.)
        """
        with self._from_the_bucket(digest):
            super().verify(digest)

    @contextlib.contextmanager
    def _from_the_bucket(self, digest: str) -> Iterator[None]:
        """Read ``digest`` from the server only, in this thread: not the local cache or memory."""
        self._forget(digest)  # the zarr.json, sums and shard index held in memory
        self._direct.on = True
        try:
            yield
        finally:
            self._direct.on = False

    # -- arrays ---------------------------------------------------------------
    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        return self._put_array(array, digest)[0]

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        return self._put_array(array, None)

    def _put_array(self, array: np.ndarray, digest: str | None) -> tuple[str, bool]:
        """Store ``array`` unless its digest is found (then compared, `check_hit`); whether stored."""
        array, digest = prepare_array(array, digest, self.digest_algorithm)
        if self._packs_it(array.nbytes):
            stored = self._pend_array(array, digest)
        elif self.has_array(digest):
            stored = False
        else:
            stored = self._write_array(array, digest)
        if not stored:
            self.check_hit(digest, array)
        return digest, stored

    def check_hit(self, digest: str, value: np.ndarray | bytes) -> None:
        """As `BlobStore.check_hit`, reading the bucket's object (as `verify`): not a local copy.

        A component compared only with what the local cache or this store
        object holds could differ in the bucket, where other readers find it.
        Costs the GETs of a read of the component (a ranged GET of its pack's
        member, or its ``zarr.json`` and data file); none when `compare_on_hit`
        is False.
        """
        if self.compare_on_hit:
            with self._from_the_bucket(digest):
                super().check_hit(digest, value)

    def _pend_array(self, array: np.ndarray, digest: str) -> bool:
        """Keep a small array for the next pack (its files as a folder's); False if known."""
        if self._locate(digest, fresh=True) is not None:  # pending, or in the index now
            return False
        encoded = encode_array_files(array, dimension_names_for(digest, array.ndim))
        key = encoded[1][0] if len(encoded) > 1 else None
        members = [(f"{ARRAYS_GROUP}/{digest}/{name}", data) for name, data in encoded]
        return self._add_pending(digest, Pending(KIND_ARRAY, members, key))

    def _write_array(self, array: np.ndarray, digest: str) -> bool:
        """Write the array's objects, ``zarr.json`` last and only if absent; False if it was."""
        what = f"array component {digest}"
        files = encode_array_files(array, dimension_names_for(digest, array.ndim), with_sums=True)
        self._ensure_groups(digest[:2])
        # Data first: identical bytes for every writer of this digest, so overwriting
        # what a racing (or crashed) writer left is harmless; zarr.json publishes.
        for name, data in files[1:]:
            self._put(self._array_key(digest, name), data, what, create=False)
        name, data = files[0]
        return self._put(self._array_key(digest, name), data, what, create=True)

    def _ensure_groups(self, fanout: str) -> None:
        """Write the root and fan-out groups' ``zarr.json`` once per store object."""
        for group in (ARRAYS_GROUP, f"{ARRAYS_GROUP}/{fanout}"):
            if group not in self._groups:
                self._put(f"{group}/zarr.json", group_metadata(), f"group {group}", create=True)
                with self._lock:
                    self._groups.add(group)

    def _meta_of(self, digest: str) -> ArrayMeta:
        """The array's parsed ``zarr.json`` (cached: components never change)."""
        check_digest(digest)
        meta = self._meta.get(digest)
        if meta is not None:
            return meta
        raw = self._get(self._array_key(digest, "zarr.json"), f"array component {digest}")
        if raw is None:
            raise BlobNotFoundError(f"no array component {digest} in the blob store {self.url}")
        try:
            meta = parse_array_metadata(raw)
        except UnsupportedZarrError as exc:
            raise CorruptBlobError(
                f"array component {digest} in {self.url} is not in a layout compstore "
                f"writes ({exc}); read it with zarr-python"
            ) from exc
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"has a bad zarr.json: {exc}") from exc
        bounded_put(self._meta, digest, meta, _META_CACHE_SIZE)
        return meta

    def _forget(self, digest: str) -> None:
        """Drop what is held in memory of a component (deleted, here or by another process).

        Its place in a pack too: gc may have deleted that pack, and a put since
        written the component into another.
        """
        with self._lock:
            self._located.pop(digest, None)
            self._meta.pop(digest, None)
            self._sums.pop(digest, None)
            self._tails.pop(digest, None)

    def _sums_of(self, digest: str) -> Sums | None:
        if digest in self._sums:
            return self._sums[digest]
        raw = self._get(self._array_key(digest, SUMS_NAME), f"array component {digest}")
        try:
            sums = None if raw is None else parse_sums(raw)
        except ValueError as exc:
            raise corrupt_array(digest, f"has a damaged {SUMS_NAME}: {exc}") from exc
        bounded_put(self._sums, digest, sums, _META_CACHE_SIZE)
        return sums

    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
        try:
            return self._get_array(digest, region)
        except CorruptBlobError:
            # A damaged copy in the local cache is not a damaged component: fetch again.
            if not self._drop_cached(digest):
                raise
            return self._get_array(digest, region)

    def _drop_cached(self, digest: str) -> bool:
        """Forget an array's cached objects, on disk and in memory; whether any was on disk."""
        self._forget(digest)
        if self._cache is None:
            return False
        return self._cache.drop_folder(f"{ARRAYS_GROUP}/{digest[:2]}/{digest}")

    def _get_array(self, digest: str, region: RegionLike) -> np.ndarray:
        meta = self._meta_of(digest)
        reg = normalize_region(region, meta.shape)
        hasher = hasher_for(meta, reg, self.digest_algorithm)
        # compstore writes no compstore.sums for what checked_whole reads whole: no GET for it.
        sums = None if hasher is not None or checked_whole(meta) else self._sums_of(digest)
        # As LocalBlobStore: a whole read is checked against the digest; so is a cut-out
        # of an array without checksums (small ones: one GET of all of it is as cheap).
        if hasher is not None or sums is None:
            whole = self._read_whole(digest, meta)
            box = whole if hasher is not None else np.array(whole[region_box(reg)])
            return read_only_view(box, reg)
        key = self._data_key(digest, meta)
        cached = self._cache.path(key) if self._cache is not None else None
        part: np.ndarray | None = None
        try:
            if cached is not None:
                try:
                    with open(cached, "rb", buffering=0) as f:
                        part = read_box(meta, reg.lo, reg.hi, sums, *_file_readers(f.fileno()))
                except OSError:  # evicted meanwhile (another process), or unreadable: fetch
                    part = None
            if part is None:
                part = read_box(meta, reg.lo, reg.hi, sums, *self._range_readers(digest, key))
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"cannot be decoded: {exc}") from exc
        return read_only_view(part, reg)

    def _range_readers(self, digest: str, key: str) -> tuple[FetchRanges, FetchSuffix]:
        """Byte ranges of the data file ``key``, by ranged GETs."""

        def fetch(starts: list[int], ends: list[int]) -> list[bytes | memoryview]:
            with self._data_file_errors(digest):
                return list(self._obs.get_ranges(self._client, key, starts=starts, ends=ends))

        def fetch_suffix(n: int) -> tuple[bytes | memoryview, int]:
            # A shard's index: kept (a few KiB), so later cut-outs cost one GET, not two.
            tail = self._tails.get(digest)
            if tail is None or len(tail[0]) != n:
                with self._data_file_errors(digest):
                    got = self._obs.get(self._client, key, options={"range": {"suffix": n}})
                    tail = (bytes(got.bytes()), int(got.meta["size"]))
                bounded_put(self._tails, digest, tail, _TAIL_CACHE_SIZE)
            return tail

        return fetch, fetch_suffix

    @contextlib.contextmanager
    def _data_file_errors(self, digest: str) -> Iterator[None]:
        """Map the errors of reading an array's data file (it exists: zarr.json was read)."""
        try:
            yield
        except FileNotFoundError as exc:
            self._drop_cached(digest)
            if not self.has_array(digest):  # deleted since its zarr.json was read
                raise BlobNotFoundError(
                    f"array component {digest} vanished from {self.url} while being read"
                ) from None
            raise corrupt_array(digest, "has lost its data file") from exc
        except CompstoreError:
            raise
        except Exception as exc:
            raise BlobStoreError(
                f"cannot read array component {digest} from {self.url}: {first_line(exc)}; {TO_DO}"
            ) from exc

    def _read_whole(self, digest: str, meta: ArrayMeta) -> np.ndarray:
        """The whole array, one GET of its data file, checked against its digest."""
        data: bytes | memoryview | None = None
        key = self._data_key(digest, meta)
        if math.prod(meta.shape):  # an empty array has no data file
            direct = getattr(self._direct, "on", False)
            data = self._cache.get(key) if self._cache is not None and not direct else None
            if data is None and not direct:
                data = self._take_ahead(key)
                if data is not None and self._cache is not None:
                    self._cache.put(key, data)
            if data is None:
                with self._data_file_errors(digest):
                    # obstore's Bytes is a buffer: a view, not a copy.
                    data = self._get_object(key)
                if self._cache is not None and not direct:
                    self._cache.put(key, data)
        try:
            array = decode_array_data(meta, data)
        except DECODE_ERRORS as exc:
            raise corrupt_array(digest, f"cannot be decoded: {exc}") from exc
        hasher = self.digest_algorithm.array_hasher(meta.dtype, meta.shape)
        hasher.update(array_bytes(array))
        check_hash(digest, hasher)
        return array

    def array_info(self, digest: str) -> ArrayInfo:
        meta = self._meta_of(digest)
        return ArrayInfo(meta.shape, meta.dtype, self.stored_bytes(digest))

    def has_array(self, digest: str) -> bool:
        check_digest(digest)
        # Always asked (the index, a HEAD), never cached: another process may have deleted it.
        found = self._locate(digest, fresh=True)
        if found is not None and found.kind == KIND_ARRAY:
            return True
        key = self._array_key(digest, "zarr.json")
        return self._head(key, f"array component {digest}") is not None

    # -- documents ------------------------------------------------------------
    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        return self.put_new_document(data, digest)[0]

    def put_new_document(
        self, data: bytes | bytearray | memoryview, digest: str | None = None
    ) -> tuple[str, bool]:
        data, digest = prepare_document(data, digest, self.digest_algorithm)
        if self._packs_it(len(data)):
            stored = self._locate(digest, fresh=True) is None and self._add_pending(
                digest, Pending(KIND_DOCUMENT, [(f"{DOCUMENTS}/{digest}.json", data)], None)
            )
        else:
            key = self._document_key(digest)
            # One conditional PUT; a big document is looked up first, so that a stored
            # one is not uploaded again only to be refused (412).
            stored = (
                len(data) < _LOOK_FIRST_BYTES or self._head(key, f"document {digest}") is None
            ) and self._put(key, data, f"document {digest}", create=True)
        if not stored:
            self.check_hit(digest, data)
        return digest, stored

    def get_document(self, digest: str) -> bytes:
        try:
            return checked_document(
                digest, self.get_document_unchecked(digest), self.digest_algorithm
            )
        except CorruptBlobError:
            if self._cache is None or self._cache.path(self._document_key(digest)) is None:
                raise
            # A damaged copy in the local cache: fetch again.
            self._cache.drop(self._document_key(digest))
            return checked_document(
                digest, self.get_document_unchecked(digest), self.digest_algorithm
            )

    def get_document_unchecked(self, digest: str) -> bytes:
        check_digest(digest)
        data = self._get(self._document_key(digest), f"document {digest}")
        if data is None:
            raise BlobNotFoundError(f"no document {digest} in the blob store {self.url}")
        return data

    def has_document(self, digest: str) -> bool:
        check_digest(digest)
        found = self._locate(digest, fresh=True)
        if found is not None and found.kind == KIND_DOCUMENT:
            return True
        return self._head(self._document_key(digest), f"document {digest}") is not None

    # -- both -----------------------------------------------------------------
    def _array_objects(self, digest: str) -> list[dict[str, Any]]:
        prefix = f"{ARRAYS_GROUP}/{digest[:2]}/{digest}/"
        return list(self._list(prefix, f"array component {digest}"))

    def check_files(self, digest: str) -> None:
        """Check, with one LIST and no data read, that an array's data file is there.

        And, for a raw array, of the size its shape says. A document is only looked up.
        """
        check_digest(digest)
        found = self._locate(digest, fresh=True)
        if isinstance(found, PackedMember):
            self._pack_end(digest, found)
        if found is not None:
            return
        sizes = {o["path"].rsplit("/", 1)[-1]: int(o["size"]) for o in self._array_objects(digest)}
        if "zarr.json" not in sizes:
            super().check_files(digest)  # a document, or BlobNotFoundError
            return
        meta = self._meta_of(digest)
        if not math.prod(meta.shape):
            return
        name = chunk_key((0,) * len(meta.shape), meta.separator)
        if name not in sizes:
            raise corrupt_array(digest, f"has lost its data file {name}")
        if meta.shard is None and not meta.compressors:
            expected = math.prod(meta.chunk_shape) * meta.dtype.itemsize
            if sizes[name] != expected:
                raise corrupt_array(
                    digest, f"has a raw data file of {sizes[name]} bytes, not {expected}"
                )

    def stored_bytes(self, digest: str) -> int:
        check_digest(digest)
        packed = self._locate(digest, fresh=True)
        if isinstance(packed, Pending):
            return packed.nbytes
        if packed is not None:
            return packed.data_size + (packed.meta_size or 0)
        objects = self._array_objects(digest)
        found = any(o["path"].endswith("/zarr.json") for o in objects)
        total = sum(int(o["size"]) for o in objects) if found else 0
        size = self._head(self._document_key(digest), f"document {digest}")
        if size is not None:
            found = True
            total += size
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store {self.url}")
        return total

    def iter_arrays(self) -> Iterator[str]:
        found = set()
        for o in self._list(f"{ARRAYS_GROUP}/", "array components"):
            parts = o["path"].split("/")
            # arrays/ab/<digest>/zarr.json; the groups' zarr.json are shorter.
            if len(parts) == 4 and parts[3] == "zarr.json" and is_digest(parts[2]):
                found.add(parts[2])
        return iter(sorted(found | self._packed_digests(KIND_ARRAY)))

    def iter_documents(self) -> Iterator[str]:
        found = set()
        for o in self._list(f"{DOCUMENTS}/", "documents"):
            name = o["path"].rsplit("/", 1)[-1]
            if name.endswith(".json") and is_digest(name[:-5]):
                found.add(name[:-5])
        return iter(sorted(found | self._packed_digests(KIND_DOCUMENT)))

    def delete(self, digest: str) -> None:
        """As `BlobStore.delete`; a packed component is dropped from the index (its pack stays)."""
        check_digest(digest)
        found = self._unpack(digest)
        objects = self._array_objects(digest)
        if objects:
            found = found or any(o["path"].endswith("/zarr.json") for o in objects)
            # zarr.json first: the array stops existing before its data goes.
            meta_key = self._array_key(digest, "zarr.json")
            self._delete([meta_key], f"array component {digest}")
            rest = [o["path"] for o in objects if o["path"] != meta_key]
            if rest:
                self._delete(rest, f"array component {digest}")
        self._drop_cached(digest)
        if self._cache is not None:
            self._cache.drop(self._document_key(digest))
        if self.has_document(digest):
            found = True
            self._delete([self._document_key(digest)], f"document {digest}")
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store {self.url}")


def _file_readers(fd: int) -> tuple[FetchRanges, FetchSuffix]:
    """Byte ranges of a data file in the local cache, open as ``fd``."""

    def fetch(starts: list[int], ends: list[int]) -> list[bytes | memoryview]:
        return [os.pread(fd, end - start, start) for start, end in zip(starts, ends)]

    def fetch_suffix(n: int) -> tuple[bytes | memoryview, int]:
        size = os.fstat(fd).st_size
        return os.pread(fd, min(n, size), max(0, size - n)), size

    return fetch, fetch_suffix
