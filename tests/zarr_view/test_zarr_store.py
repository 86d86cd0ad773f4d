"""zarr-python's own store conformance suite (``zarr.testing.store.StoreTests``), read-only parts.

The suite fills a store through two helpers that must bypass the store's own
methods (a folder store's helpers write files; zarr's FsspecStore tests write
through the file system under it). A `DatasetZarrStore` serves a `ZarrView`, so
the helpers place bytes in the view (`ZarrView.add_bytes`), the equivalent of
writing a file under the store's root. Tests that fill the store through
``store.set``/``_set_many`` are replaced below by read-only versions that fill
it through the helper and assert the same; tests of writing are skipped with
the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from zarr.core.buffer import Buffer, cpu, default_buffer_prototype
from zarr.core.sync import _collect_aiterator
from zarr.testing.store import StoreTests

from compstore.zarr_view import DatasetZarrStore, ZarrView

# The suite mixes async and plain tests; the mark is for the async ones (strict mode).
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'"),
]


_WRITES = "DatasetZarrStore is read-only: it presents a stored dataset (writes raise ValueError)"


class TestDatasetZarrStore(StoreTests[DatasetZarrStore, cpu.Buffer]):
    store_cls = DatasetZarrStore
    buffer_cls = cpu.Buffer

    async def set(self, store: DatasetZarrStore, key: str, value: Buffer) -> None:
        store._view.add_bytes(key, value.to_bytes())

    async def get(self, store: DatasetZarrStore, key: str) -> Buffer:
        data = store._view.get(key)
        assert data is not None
        return self.buffer_cls.from_bytes(bytes(data))

    @pytest.fixture
    def store_kwargs(self) -> dict[str, Any]:
        return {"view": ZarrView(), "read_only": True}

    # pytest-asyncio's strict mode wants its own decorator on async fixtures.
    @pytest_asyncio.fixture
    async def store(self, open_kwargs: dict[str, Any]) -> DatasetZarrStore:
        return await self.store_cls.open(**open_kwargs)

    @pytest_asyncio.fixture
    async def store_not_open(self, store_kwargs: dict[str, Any]) -> DatasetZarrStore:
        return self.store_cls(**store_kwargs)

    async def _fill(self, store: DatasetZarrStore, keys: Any, data: bytes = b"") -> None:
        for key in keys:
            await self.set(store, key, self.buffer_cls.from_bytes(data))

    # -- the store's own answers ------------------------------------------------
    def test_store_repr(self, store: DatasetZarrStore) -> None:
        assert repr(store).startswith("DatasetZarrStore(")

    def test_store_supports_writes(self, store: DatasetZarrStore) -> None:
        assert not store.supports_writes
        assert not store.supports_deletes

    def test_store_supports_listing(self, store: DatasetZarrStore) -> None:
        assert store.supports_listing

    def test_store_read_only(self, store: DatasetZarrStore) -> None:
        assert store.read_only
        with pytest.raises(AttributeError):
            store.read_only = False  # type: ignore[misc]

    @pytest.mark.parametrize("read_only", [True, False])
    async def test_store_open_read_only(self, open_kwargs: dict[str, Any], read_only: bool) -> None:
        open_kwargs["read_only"] = read_only
        if not read_only:
            with pytest.raises(ValueError, match="read-only"):
                await self.store_cls.open(**open_kwargs)
            return
        store = await self.store_cls.open(**open_kwargs)
        assert store._is_open and store.read_only

    async def test_serializable_store(self, store: DatasetZarrStore) -> None:
        # House rule: no pickle. The store refuses it with a message saying what to do.
        import pickle

        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(store)

    async def test_writes_raise(self, store: DatasetZarrStore) -> None:
        data = self.buffer_cls.from_bytes(b"x")
        for write in (store.set("k", data), store.set_if_not_exists("k", data), store.delete("k"),
                      store._set_many([("k", data)])):
            with pytest.raises(ValueError, match="read-only mode"):
                await write
        with pytest.raises(NotImplementedError):
            await store.clear()
        assert not await store.exists("k")

    # -- read-only versions of the tests that fill the store through store.set -----
    async def test_getsize_prefix(self, store: DatasetZarrStore) -> None:
        await self._fill(store, ["c/0/0", "c/0/1", "c/1/0", "c/1/1"], b"\x01\x02\x03\x04")
        assert await store.getsize_prefix("c") == 16

    async def test_exists(self, store: DatasetZarrStore) -> None:
        assert not await store.exists("foo")
        await self._fill(store, ["foo/zarr.json"], b"bar")
        assert await store.exists("foo/zarr.json")

    async def test_list(self, store: DatasetZarrStore) -> None:
        assert await _collect_aiterator(store.list()) == ()
        keys = ["foo/zarr.json", *(f"foo/c/{i}" for i in range(10))]
        await self._fill(store, keys)
        assert sorted(await _collect_aiterator(store.list())) == sorted(keys)

    async def test_list_prefix(self, store: DatasetZarrStore) -> None:
        prefixes = ("", "a/", "a/b/", "a/b/c/")
        keys = [p + "zarr.json" for p in prefixes]
        await self._fill(store, keys)
        for prefix in prefixes:
            observed = sorted(await _collect_aiterator(store.list_prefix(prefix)))
            assert observed == sorted(k for k in keys if k.startswith(prefix))

    async def test_list_empty_path(self, store: DatasetZarrStore) -> None:
        keys = ["foo/bar/zarr.json", "foo/bar/c/1", "foo/baz/c/0"]
        await self._fill(store, keys)
        assert sorted(await _collect_aiterator(store.list())) == sorted(keys)
        assert sorted(await _collect_aiterator(store.list_prefix(""))) == sorted(keys)
        observed = sorted(await _collect_aiterator(store.list_prefix("foo/bar/")))
        assert observed == ["foo/bar/c/1", "foo/bar/zarr.json"]

    async def test_list_dir(self, store: DatasetZarrStore) -> None:
        assert await _collect_aiterator(store.list_dir("")) == ()
        for root, keys in (
            ("foo", ["foo/zarr.json", "foo/c/1"]),
            ("foo/bar", ["foo/bar/foobar_first_child", "foo/bar/foobar_second_child/zarr.json"]),
        ):
            assert await _collect_aiterator(store.list_dir(root)) == ()
            await self._fill(store, keys, b"1")
            expected = sorted({k.removeprefix(root + "/").split("/")[0] for k in keys})
            assert sorted(await _collect_aiterator(store.list_dir(root))) == expected
            assert sorted(await _collect_aiterator(store.list_dir(root + "/"))) == expected

    async def test_get_missing_is_none(self, store: DatasetZarrStore) -> None:
        assert await store.get("nope/zarr.json", default_buffer_prototype()) is None

    # -- writing: not this store's business ------------------------------------------
    @pytest.mark.skip(reason=_WRITES)
    async def test_set(self) -> None: ...

    @pytest.mark.skip(reason=_WRITES)
    async def test_set_not_open(self) -> None: ...

    @pytest.mark.skip(reason=_WRITES)
    async def test_set_many(self) -> None: ...

    @pytest.mark.skip(reason=_WRITES)
    async def test_set_if_not_exists(self) -> None: ...

    @pytest.mark.skip(reason=_WRITES)
    async def test_clear(self) -> None: ...
