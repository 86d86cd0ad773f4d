"""The blob-store contract: the abstract base class every backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from compstore.cas._digest import XXH3_128, DigestAlgorithm, check_digest
from compstore.cas._hits import check_same_array, check_same_document
from compstore.cas._layout import zarr_data_type
from compstore.errors import BlobNotFoundError, CorruptBlobError, EncodingError

ARRAYS_GROUP = "arrays"
"""Name of the zarr root group of array components, under a blob store's root."""

__all__ = [
    "ARRAYS_GROUP",
    "ArrayInfo",
    "BlobStore",
    "RegionLike",
    "check_array",
    "prepare_array",
    "prepare_document",
]

RegionLike = Sequence[slice] | slice | None


@dataclass(frozen=True)
class ArrayInfo:
    """What an array component is, without reading its data.

    Attributes
    ----------
    shape
        The array's shape.
    dtype
        The array's dtype, byte order included.
    stored_bytes
        Bytes the component occupies in the store (compressed, metadata included).
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    stored_bytes: int

    @property
    def nbytes(self) -> int:
        """Logical (uncompressed) size in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class BlobStore(ABC):
    """A content-addressed store of array and document components.

    Components are named by their digest (:func:`compstore.cas.digest_array`,
    :func:`compstore.cas.digest_bytes`), written once and never changed. Every
    method taking a digest validates it strictly first.

    Arrays are bool, int, uint, float or complex numpy arrays of any shape
    (byte order kept); documents are byte strings, canonical JSON by convention.

    ``digest_algorithm`` names components (xxh3-128 unless the store was made
    for a repository that records another, `compstore.cas._digest`).
    """

    digest_algorithm: DigestAlgorithm = XXH3_128

    # -- arrays ---------------------------------------------------------------
    @abstractmethod
    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        """Store an array unless its digest is present; return the digest.

        Parameters
        ----------
        array
            The array; it is copied or written out, never kept by reference.
        digest
            The array's digest if the caller already knows it (e.g. the array
            came out of this store): the caller vouches for it, nothing is hashed.

        Raises
        ------
        EncodingError
            If the dtype is not bool, int, uint, float or complex.
        InvalidDigestError
            If ``digest`` is given and malformed.
        BlobStoreError
            If the write fails.
        """

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        """Hash and store an array; return its digest and whether this call stored it.

        For an array whose digest nobody knows yet. A store may hash it as it
        writes it, naming it by its digest only afterwards; an array found
        present then is discarded, never stored twice. This
        default hashes first and writes only if the digest is new; of calls
        racing with equal content it may answer True to more than one, which
        both backends here avoid with their own version.

        Raises
        ------
        As `put_array`.
        """
        array, digest = prepare_array(array, None, self.digest_algorithm)
        if self.has_array(digest):
            self.check_hit(digest, array)
            return digest, False
        self.put_array(array, digest)
        return digest, True

    @abstractmethod
    def get_array(self, digest: str, region: RegionLike = None) -> np.ndarray:
        """Return an array component, or the ``region`` of it, read-only.

        Parameters
        ----------
        digest
            The component's digest.
        region
            A slice or tuple of slices (fewer than ``ndim`` allowed); only the
            chunks it overlaps are read. ``None`` reads the whole array.

        Raises
        ------
        BlobNotFoundError
            If no array has this digest.
        InvalidDigestError, InvalidRegionError
            On a malformed digest or region.
        CorruptBlobError
            If the stored component cannot be decoded.
        """

    @abstractmethod
    def array_info(self, digest: str) -> ArrayInfo:
        """Return shape, dtype and stored size of an array component.

        Raises
        ------
        BlobNotFoundError
            If no array has this digest.
        """

    @abstractmethod
    def has_array(self, digest: str) -> bool:
        """Return whether an array with this digest is stored.

        Raises
        ------
        InvalidDigestError
            On a malformed digest.
        """

    # -- documents ------------------------------------------------------------
    @abstractmethod
    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        """Store a document unless its digest is present; return ``digest_bytes(data)``.

        Raises
        ------
        EncodingError
            If ``data`` is not bytes-like.
        InvalidDigestError
            If ``digest`` is given and malformed.
        """

    def put_new_document(
        self, data: bytes | bytearray | memoryview, digest: str | None = None
    ) -> tuple[str, bool]:
        """Store a document unless its digest is present; return it and whether this call stored it.

        As `put_document`, asking whether the document is present once: the
        write path reports what it stored without a separate `has_document`.
        This default asks `has_document`, then `put_document` (a subclass
        overriding `put_document` is still called; `MemoryBlobStore` keeps it);
        `LocalBlobStore` and `S3BlobStore` answer from their own put. Of calls racing with equal content, more than one may
        answer True (the document is still stored once).

        Raises
        ------
        As `put_document`.
        """
        data, digest = prepare_document(data, digest, self.digest_algorithm)
        if self.has_document(digest):
            self.check_hit(digest, data)
            return digest, False
        self.put_document(data, digest)
        return digest, True

    @abstractmethod
    def get_document(self, digest: str) -> bytes:
        """Return a document's bytes.

        Raises
        ------
        BlobNotFoundError
            If no document has this digest.
        """

    @abstractmethod
    def has_document(self, digest: str) -> bool:
        """Return whether a document with this digest is stored."""

    # -- both -----------------------------------------------------------------
    @abstractmethod
    def stored_bytes(self, digest: str) -> int:
        """Return the bytes the component (array or document) occupies in the store.

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        """

    @abstractmethod
    def iter_arrays(self) -> Iterator[str]:
        """Iterate over the digests of all array components (sorted)."""

    @abstractmethod
    def iter_documents(self) -> Iterator[str]:
        """Iterate over the digests of all documents (sorted)."""

    @abstractmethod
    def delete(self, digest: str) -> None:
        """Remove the component with this digest (array, document, or both).

        Deleting is the garbage collector's job: only delete what nothing
        references.

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        """

    @abstractmethod
    def sync(self) -> None:
        """Make everything written (and deleted) since the last sync durable.

        Call it once before committing a registry row that refers to the new
        components.

        Raises
        ------
        BlobStoreError
            If an fsync or rename fails.
        """

    def prefetch(self, documents: Iterable[str] = (), arrays: Iterable[str] = ()) -> None:
        """Fetch these components ahead of the reads that follow (a hint; may do nothing).

        A reader that knows which components it will read next (a manifest
        names them) says so; a store whose every request is a round trip
        (object storage) fetches them at once. The default does nothing and
        never iterates its arguments, so a caller may pass generators.
        """

    # -- what a user of the store may rely on ----------------------------------
    @property
    def durable(self) -> bool:
        """Whether what :meth:`sync` returned from survives a crash or a power cut.

        A caller committing a registry row that names new components commits
        it durably when the store is durable (`compstore.Butler` does). The
        default is False; a store that flushes its writes says True.
        """
        return False

    @property
    def read_only(self) -> bool:
        """Whether every write (put, delete) is refused; reads work as usual.

        The default is False. A read-only store raises `BlobStoreError` from
        every put and delete; :meth:`sync` and :meth:`close` do nothing.
        """
        return False

    @property
    def compare_on_hit(self) -> bool:
        """Whether a put finding its digest stored compares the stored component first (`check_hit`).

        The default is False (the digest is trusted); `LocalBlobStore` and
        `S3BlobStore` say True for a format 3 repository (``docs/spec/format.md``, "Threat model").
        """
        return False

    def check_hit(self, digest: str, value: np.ndarray | bytes) -> None:
        """What a put finding ``digest`` stored does before reusing it.

        With `compare_on_hit`, read the stored component back and raise unless it
        holds ``value`` (an array: dtype, shape and bytes; a document: bytes,
        `compstore.cas._hits`); without, nothing. Every put of a store that
        compares calls it on a hit, and so does a copy between stores
        (`compstore.butler.transfer`) before skipping a component the
        destination holds.

        Raises
        ------
        CorruptBlobError
            If the stored component differs from ``value`` (a digest collision,
            or a component replaced under its name), or fails its digest.
        """
        if not self.compare_on_hit:
            return
        if isinstance(value, np.ndarray):
            check_same_array(self, digest, value)
        else:
            check_same_document(self, digest, value)

    @property
    def location(self) -> str:
        """Where the store keeps its components, for messages (a folder, a URL).

        Printable only: not a path to open. The default is the store's ``repr``.
        """
        return repr(self)

    # -- concrete helpers -----------------------------------------------------
    def component_path(self, digest: str) -> str:
        """Return an array's path relative to the blob store root: ``"arrays/<d[:2]>/<d>"``.

        ``arrays`` is the zarr v3 root group of all array components, so
        ``zarr.open_array(store.root / store.component_path(d))`` opens the
        array with stock zarr (for :class:`LocalBlobStore`, which first writes
        a packed array out as its folder), and
        ``xarray.open_zarr(store.root / "arrays", group=d[:2])`` its group.

        Raises
        ------
        BlobNotFoundError
            If no array has this digest.
        InvalidDigestError
            On a malformed digest.
        """
        if not self.has_array(digest):
            raise BlobNotFoundError(f"no array component {digest} in the blob store")
        return f"{ARRAYS_GROUP}/{digest[:2]}/{digest}"

    def get_document_unchecked(self, digest: str) -> bytes:
        """The stored bytes of document ``digest``, even if they fail their digest.

        For `compstore.butler.verify` only, to walk what a damaged manifest still
        names (so it is not counted unreferenced); readers use `get_document`.

        Raises
        ------
        BlobNotFoundError
            If no document has this digest.
        """
        return self.get_document(digest)

    def check_files(self, digest: str) -> None:
        """Check, without reading its data, that every file of a component is there.

        What plain ``compstore verify`` runs for each component: cheap (a
        listing, a stat), unlike `verify`. The default only looks the
        component up; `LocalBlobStore` also checks an array's chunk files and
        a packed component's pack.

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        CorruptBlobError
            If a file of it is missing or of the wrong size.
        """
        if not (self.has_array(digest) or self.has_document(digest)):
            raise BlobNotFoundError(f"no component {digest} in the blob store")

    def verify(self, digest: str) -> None:
        """Re-read and re-hash a component; raise if it does not match its digest.

        Raises
        ------
        BlobNotFoundError
            If nothing has this digest.
        CorruptBlobError
            If the content's digest differs, or it cannot be decoded.
        """
        found = False
        if self.has_array(digest):
            found = True
            actual = self.digest_algorithm.digest_array(self.get_array(digest))
            if actual != digest:
                raise CorruptBlobError(
                    f"array component {digest} is corrupt: its content hashes to {actual}"
                )
        if self.has_document(digest):
            found = True
            actual = self.digest_algorithm.digest_bytes(self.get_document(digest))
            if actual != digest:
                raise CorruptBlobError(
                    f"document {digest} is corrupt: its content hashes to {actual}"
                )
        if not found:
            raise BlobNotFoundError(f"no component {digest} in the blob store")

    def close(self) -> None:
        """Sync and release resources; the default only syncs."""
        self.sync()

    def __enter__(self) -> BlobStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_array(array: np.ndarray) -> None:
    """Check that ``array`` is a numpy array of a dtype the store holds.

    Raises
    ------
    EncodingError
        If it is not, saying which type or dtype it is.
    """
    if not isinstance(array, np.ndarray):
        raise EncodingError(f"put_array takes a numpy array, not {type(array).__name__}")
    zarr_data_type(array.dtype)


def prepare_array(
    array: np.ndarray, digest: str | None, algorithm: DigestAlgorithm = XXH3_128
) -> tuple[np.ndarray, str]:
    """Check that an array can be stored and return it with its digest.

    Raises
    ------
    EncodingError
        If the dtype is not one the store holds.
    InvalidDigestError
        If ``digest`` is given and malformed.
    """
    check_array(array)
    if digest is None:
        digest = algorithm.digest_array(array)
    else:
        check_digest(digest)
    return array, digest


def prepare_document(
    data: bytes | bytearray | memoryview, digest: str | None, algorithm: DigestAlgorithm = XXH3_128
) -> tuple[bytes, str]:
    """Check a document and return it as ``bytes`` with its digest.

    Raises
    ------
    EncodingError
        If ``data`` is not bytes-like.
    InvalidDigestError
        If ``digest`` is given and malformed.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(f"a document is bytes, not {type(data).__name__}")
    data = bytes(data)
    return data, (algorithm.digest_bytes(data) if digest is None else check_digest(digest))
