"""An in-memory blob store: for tests, and as the reference the others must match."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import EllipsisType

import numpy as np

from compstore.cas._digest import XXH3_128, DigestAlgorithm, check_digest
from compstore.cas._region import normalize_region
from compstore.cas._store import (
    ArrayInfo,
    BlobStore,
    RegionLike,
    prepare_array,
    prepare_document,
)
from compstore.errors import BlobNotFoundError

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore(BlobStore):
    """A blob store in a dict; ``sync`` does nothing and stored bytes are logical bytes.

    ``digest_algorithm`` names its components (xxh3-128 by default).
    """

    def __init__(self, digest_algorithm: DigestAlgorithm = XXH3_128) -> None:
        self.digest_algorithm = digest_algorithm
        self._arrays: dict[str, np.ndarray] = {}
        self._documents: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        """``memory:<id>``: this process's memory (the store is gone with it)."""
        return f"memory:{id(self):x}"

    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        array, digest = prepare_array(array, digest, self.digest_algorithm)
        if digest not in self._arrays:
            self._keep(digest, array)
        return digest

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        array, digest = prepare_array(array, None, self.digest_algorithm)
        return digest, digest not in self._arrays and self._keep(digest, array)

    def _keep(self, digest: str, array: np.ndarray) -> bool:
        """Keep a private, read-only C-order copy (the caller may mutate its array later).

        Returns False if another thread kept this digest first.
        """
        stored = np.array(array, order="C", copy=True)
        stored.flags.writeable = False
        with self._lock:
            return self._arrays.setdefault(digest, stored) is stored

    def _array(self, digest: str) -> np.ndarray:
        check_digest(digest)
        try:
            return self._arrays[digest]
        except KeyError:
            raise BlobNotFoundError(f"no array component {digest} in the blob store") from None

    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
        stored = self._array(digest)
        reg = normalize_region(region, stored.shape)
        # The trailing Ellipsis keeps a 0-d result an array ([()] would be a scalar).
        index: tuple[slice | EllipsisType, ...] = (
            *(slice(a, b) for a, b in zip(reg.lo, reg.hi)),
            Ellipsis,
        )
        box = stored[index]
        # A view of a read-only base cannot be made writeable again.
        return box[reg.local_index]

    def array_info(self, digest: str) -> ArrayInfo:
        stored = self._array(digest)
        return ArrayInfo(stored.shape, stored.dtype, stored.nbytes)

    def has_array(self, digest: str) -> bool:
        return check_digest(digest) in self._arrays

    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        data, digest = prepare_document(data, digest, self.digest_algorithm)
        with self._lock:
            self._documents.setdefault(digest, data)
        return digest

    def get_document(self, digest: str) -> bytes:
        check_digest(digest)
        try:
            return self._documents[digest]
        except KeyError:
            raise BlobNotFoundError(f"no document {digest} in the blob store") from None

    def has_document(self, digest: str) -> bool:
        return check_digest(digest) in self._documents

    def stored_bytes(self, digest: str) -> int:
        check_digest(digest)
        total = 0
        found = False
        if digest in self._arrays:
            total += self._arrays[digest].nbytes
            found = True
        if digest in self._documents:
            total += len(self._documents[digest])
            found = True
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store")
        return total

    def iter_arrays(self) -> Iterator[str]:
        return iter(sorted(self._arrays))

    def iter_documents(self) -> Iterator[str]:
        return iter(sorted(self._documents))

    def delete(self, digest: str) -> None:
        check_digest(digest)
        with self._lock:
            found = self._arrays.pop(digest, None) is not None
            found = (self._documents.pop(digest, None) is not None) or found
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store")

    def sync(self) -> None:
        pass
