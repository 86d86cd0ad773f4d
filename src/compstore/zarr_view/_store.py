"""`DatasetZarrStore`: a `ZarrView` served through zarr-python 3's store interface, read-only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

from zarr.abc.store import (
    ByteRequest,
    OffsetByteRequest,
    RangeByteRequest,
    Store,
    SuffixByteRequest,
)
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype

from ._view import ZarrView

__all__ = ["DatasetZarrStore"]


class DatasetZarrStore(Store):
    """A read-only `zarr.abc.store.Store` over a `ZarrView` (usually made by `Butler.zarr_store`).

    ``zarr.open_group(store, mode="r")``, ``xarray.open_zarr(store)`` and
    ``dask.array.from_zarr`` read it; every write raises ``ValueError`` (zarr's
    own read-only error).

    Parameters
    ----------
    view
        The hierarchy to serve.
    read_only
        Must be true: the store presents a stored dataset, which nothing may change.
    description
        What the view presents, for ``repr`` (``calexp {'visit': 1, ...}``).

    Raises
    ------
    ValueError
        If ``read_only`` is false.
    """

    def __init__(self, view: ZarrView, *, read_only: bool = True, description: str = "") -> None:
        if not read_only:
            raise ValueError(
                "a DatasetZarrStore is read-only: it presents a stored dataset; to change the "
                "dataset, get it, change the object and put it again"
            )
        super().__init__(read_only=True)
        self._view = view
        self._description = description

    def __repr__(self) -> str:
        return f"DatasetZarrStore({self._description or 'view'})"

    def __eq__(self, value: object) -> bool:
        return isinstance(value, DatasetZarrStore) and value._view is self._view

    def __hash__(self) -> int:
        return id(self._view)

    def __getstate__(self) -> Any:
        # A store holds a Butler's loaders, open files and locks: never serialised.
        raise TypeError(
            "a DatasetZarrStore cannot be pickled; in another process, open the repository "
            "with Butler(root) and call butler.zarr_store(...) there"
        )

    # -- reading ------------------------------------------------------------
    async def get(
        self,
        key: str,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """The bytes of ``key`` (or the part ``byte_range`` asks for), None if absent.

        Raises
        ------
        TypeError
            If ``byte_range`` is not a zarr `ByteRequest`.
        CompstoreError
            If the component a chunk comes from cannot be read (damage: `CorruptBlobError`).
        """
        if not self._is_open:
            await self._open()
        if self._view.is_chunk(key):
            # Loading a component reads and decodes it: off the event loop.
            return await asyncio.to_thread(self.get_sync, key, prototype=prototype,
                                           byte_range=byte_range)
        return self.get_sync(key, prototype=prototype, byte_range=byte_range)

    def get_sync(
        self,
        key: str,
        *,
        prototype: BufferPrototype | None = None,
        byte_range: ByteRequest | None = None,
    ) -> Buffer | None:
        """As `get`, on the calling thread (zarr's ``SupportsGetSync``).

        Raises
        ------
        TypeError, CompstoreError
            As `get`.
        """
        if byte_range is not None and not isinstance(
            byte_range, (RangeByteRequest, OffsetByteRequest, SuffixByteRequest)
        ):
            raise TypeError(f"Unexpected byte_range, got {byte_range!r}")
        data = self._view.get(key)
        if data is None:
            return None
        view = memoryview(data)
        if byte_range is not None:
            view = view[_slice(byte_range, len(view))]
        return (prototype or default_buffer_prototype()).buffer.from_bytes(view)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        """As `get`, for several keys and ranges, in order."""
        return [await self.get(key, prototype, byte_range) for key, byte_range in key_ranges]

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is in the store."""
        return key in self._view._documents or self._view.is_chunk(key)

    async def getsize(self, key: str) -> int:
        """The byte size of ``key``'s value.

        Raises
        ------
        FileNotFoundError
            If there is no such key.
        """
        data: bytes | memoryview | None = self._view._documents.get(key)
        if data is None:
            data = await asyncio.to_thread(self._view.get, key) if self._view.is_chunk(key) else None
        if data is None:
            raise FileNotFoundError(key)
        return len(memoryview(data).cast("B"))

    # -- writing: refused ----------------------------------------------------
    @property
    def supports_writes(self) -> bool:
        return False

    @property
    def supports_deletes(self) -> bool:
        return False

    @property
    def supports_listing(self) -> bool:
        return True

    async def set(self, key: str, value: Buffer) -> None:
        """Refused: the store is read-only.

        Raises
        ------
        ValueError
            Always (zarr's read-only error).
        """
        self._check_writable()

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        """Refused, as `set`.

        Raises
        ------
        ValueError
            Always.
        """
        self._check_writable()

    async def delete(self, key: str) -> None:
        """Refused, as `set`.

        Raises
        ------
        ValueError
            Always.
        """
        self._check_writable()

    # -- listing -------------------------------------------------------------
    async def list(self) -> AsyncIterator[str]:
        """Every key."""
        for key in self._view.keys():
            yield key

    async def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        """Every key starting with ``prefix``."""
        for key in self._view.keys():
            if key.startswith(prefix):
                yield key

    async def list_dir(self, prefix: str) -> AsyncIterator[str]:
        """The names directly under ``prefix`` (keys and folders), each once."""
        prefix = prefix.rstrip("/")
        start = f"{prefix}/" if prefix else ""
        seen: set[str] = set()
        for key in self._view.keys():
            if key.startswith(start) and len(key) > len(start):
                name = key[len(start) :].split("/", 1)[0]
                if name not in seen:
                    seen.add(name)
                    yield name


def _slice(byte_range: ByteRequest, size: int) -> slice:
    if isinstance(byte_range, RangeByteRequest):
        return slice(byte_range.start, byte_range.end)
    if isinstance(byte_range, OffsetByteRequest):
        return slice(byte_range.offset, None)
    return slice(max(0, size - byte_range.suffix), None)
