"""The checked read of an array folder in a local blob store.

A whole read is hashed as it is read and checked against the digest; a
cut-out is checked against the ``compstore.sums`` of the parts it reads
(``docs/format.md``, "Checksums"). Arrays another zarr writer made are read
through zarr-python. `verify` and `check_files` of a folder live here too.
"""

from __future__ import annotations

import math
import os

import numpy as np

from compstore.cas._checks import (
    DECODE_ERRORS,
    bounded_put,
    check_hash,
    checked_whole,
    corrupt_array,
    hasher_for,
    read_only_view,
    region_box,
)
from compstore.cas._digest import check_digest
from compstore.cas._localbase import META_CACHE_SIZE, LocalBase
from compstore.cas._region import normalize_region
from compstore.cas._store import RegionLike
from compstore.cas._sums import SUMS_NAME, Sums, parse_sums
from compstore.cas._zarrfmt import (
    ArrayMeta,
    UnsupportedZarrError,
    chunk_key,
    iter_chunk_indices,
    parse_array_metadata,
)
from compstore.cas._zarrio import (
    MissingChunkError,
    check_array_sums,
    check_chunk_file,
    read_array_dir,
)
from compstore.errors import BlobNotFoundError, BlobStoreError, CompstoreError

__all__ = ["FolderReader"]


class FolderReader(LocalBase):
    """Reading and checking array folders (a part of `LocalBlobStore`)."""

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
        bounded_put(self._meta, digest, meta, META_CACHE_SIZE)
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
        bounded_put(self._sums, digest, sums, META_CACHE_SIZE)
        return sums

    def _read(self, digest: str, path: str, region: RegionLike) -> np.ndarray:
        meta = self._meta_of(digest, path)
        if meta is None:
            return self._read_with_zarr(digest, path, region)
        reg = normalize_region(region, meta.shape)
        # A whole read is checked against the digest, hashed as it is read; a
        # cut-out against the checksums of the parts it reads (docs/format.md,
        # "Checksums"), or, for a small array or one compressed chunk (decoded
        # whole anyway), as a whole read.
        hasher = hasher_for(meta, reg, self.digest_algorithm)
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

    def _read_with_zarr(self, digest: str, path: str, region: RegionLike) -> np.ndarray:
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
            actual = self.digest_algorithm.digest_array(box)
            if actual != digest:
                raise corrupt_array(digest, f"is corrupt: its content hashes to {actual}")
        return read_only_view(box, reg)

    def _check_folder(self, digest: str) -> None:
        """`check_files` of the array folder of ``digest`` (see `LocalBlobStore.check_files`)."""
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


    def _verify_sums(self, digest: str) -> None:
        """Check the folder of array ``digest`` against its ``compstore.sums``, if it has both."""
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

