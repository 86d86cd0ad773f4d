"""The blob store of a chain of repositories: read in order, written to the first."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .cas import ArrayInfo, BlobStore
from .cas._store import RegionLike
from .errors import BlobNotFoundError, RepositoryError

__all__ = ["ChainedBlobStore"]


class ChainedBlobStore(BlobStore):
    """Blob stores read in order, written to the first.

    Reads (`get_array`, `get_document`, `array_info`) answer from the first
    store that holds the digest. Everything else concerns the first store,
    where writes go: `has_array` and `has_document` say whether the *first*
    store holds a digest (so a writer stores what the first store lacks),
    and `stored_bytes`, the iterators, `delete` and `sync` are the first
    store's.

    Parameters
    ----------
    stores
        The stores, first (the one written) first.
    """

    def __init__(self, stores: Sequence[BlobStore]) -> None:
        if not stores:
            raise RepositoryError("a chain of blob stores needs at least one store")
        self.stores = tuple(stores)
        self.first = self.stores[0]
        # One naming for the chain: a digest read from one store is put into the first.
        self.digest_algorithm = self.first.digest_algorithm
        names = sorted({s.digest_algorithm.name for s in self.stores})
        if len(names) > 1:
            raise RepositoryError(
                f"repositories of different digest algorithms ({', '.join(names)}) cannot be "
                "read as one chain: a digest read from one would be written into the first"
            )

    def holder(self, digest: str, *, array: bool) -> BlobStore:
        """The first store that holds ``digest``.

        Raises
        ------
        BlobNotFoundError
            If none does (the message names how many stores were searched).
        """
        for store in self.stores:
            if (store.has_array(digest) if array else store.has_document(digest)):
                return store
        kind = "array component" if array else "document"
        raise BlobNotFoundError(
            f"no {kind} {digest} in any of the {len(self.stores)} repositories searched"
        )

    @property
    def durable(self) -> bool:
        """Whether the first store (where writes go) is durable."""
        return self.first.durable

    @property
    def read_only(self) -> bool:
        """Whether the first store (where writes go) refuses writes."""
        return self.first.read_only

    @property
    def compare_on_hit(self) -> bool:
        """Whether the first store (where writes go) compares on a digest hit."""
        return self.first.compare_on_hit

    def check_hit(self, digest: str, value: np.ndarray | bytes) -> None:
        """As `BlobStore.check_hit`, in the first store (where a put finds its hits)."""
        self.first.check_hit(digest, value)

    @property
    def location(self) -> str:
        """The first store's location, and how many stores are read after it."""
        more = len(self.stores) - 1
        return self.first.location + (f" (then {more} more, only read)" if more else "")

    # -- reads: the first store that holds the digest ---------------------------
    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
        for store in self.stores[:-1]:
            try:
                return store.get_array(digest, region)
            except BlobNotFoundError:
                continue
        try:
            return self.stores[-1].get_array(digest, region)
        except BlobNotFoundError:
            raise BlobNotFoundError(
                f"no array component {digest} in any of the {len(self.stores)} "
                "repositories searched"
            ) from None

    def get_document(self, digest: str) -> bytes:
        for store in self.stores[:-1]:
            try:
                return store.get_document(digest)
            except BlobNotFoundError:
                continue
        try:
            return self.stores[-1].get_document(digest)
        except BlobNotFoundError:
            raise BlobNotFoundError(
                f"no document {digest} in any of the {len(self.stores)} repositories searched"
            ) from None

    def array_info(self, digest: str) -> ArrayInfo:
        return self.holder(digest, array=True).array_info(digest)

    # -- the first store: writes and what concerns them --------------------------
    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        return self.first.put_array(array, digest)

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        return self.first.put_new_array(array)

    def has_array(self, digest: str) -> bool:
        return self.first.has_array(digest)

    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        return self.first.put_document(data, digest)

    def put_new_document(
        self, data: bytes | bytearray | memoryview, digest: str | None = None
    ) -> tuple[str, bool]:
        return self.first.put_new_document(data, digest)

    def has_document(self, digest: str) -> bool:
        return self.first.has_document(digest)

    def stored_bytes(self, digest: str) -> int:
        return self.first.stored_bytes(digest)

    def iter_arrays(self) -> Iterator[str]:
        return self.first.iter_arrays()

    def iter_documents(self) -> Iterator[str]:
        return self.first.iter_documents()

    def delete(self, digest: str) -> None:
        self.first.delete(digest)

    def sync(self) -> None:
        self.first.sync()

    def check_files(self, digest: str) -> None:
        self.first.check_files(digest)

    def verify(self, digest: str) -> None:
        self.first.verify(digest)

    def component_path(self, digest: str) -> str:
        return self.first.component_path(digest)

    def get_document_unchecked(self, digest: str) -> bytes:
        return self.first.get_document_unchecked(digest)
