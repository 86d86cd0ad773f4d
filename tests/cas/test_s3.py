"""S3BlobStore against a real S3-compatible server on loopback (moto's, tests/conftest.py)."""

from __future__ import annotations

import pathlib
import re
import uuid

import numpy as np
import pytest

from compstore.cas import BlobStore, S3BlobStore, digest_array
from compstore.errors import BlobNotFoundError, BlobStoreError, CorruptBlobError
from compstore.testing.blobstore import BlobStoreTests, sample_array

obstore = pytest.importorskip("obstore")


class TestS3BlobStore(BlobStoreTests):
    """The shipped conformance suite, unchanged; each store in a fresh prefix of one bucket."""

    @pytest.fixture(autouse=True)
    def _server(self, s3_server, s3_bucket):  # type: ignore[no-untyped-def]
        self.server = s3_server
        self.bucket = s3_bucket

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        # The state machine makes many stores per test: one prefix each, one bucket.
        prefix = f"stores/{uuid.uuid4().hex}"
        return S3BlobStore(self.bucket, prefix, **self.server.store_options())


@pytest.fixture
def store(s3_server, s3_bucket) -> S3BlobStore:
    return S3BlobStore(s3_bucket, "blobs", **s3_server.store_options())


def _raw(store: S3BlobStore):  # type: ignore[no-untyped-def]
    """The store's own obstore client, to damage objects behind its back."""
    return store._client


def test_layout_opens_with_stock_zarr(store: S3BlobStore) -> None:
    zarr = pytest.importorskip("zarr")
    from zarr.storage import ObjectStore

    array = sample_array("<i4", (600, 530))
    digest = store.put_array(array)
    opened = zarr.open_array(
        ObjectStore(_raw(store), read_only=True), path=store.component_path(digest), mode="r"
    )
    assert np.array_equal(opened[...], array)
    group = zarr.open_group(ObjectStore(_raw(store), read_only=True), path="arrays", mode="r")
    assert group.attrs.asdict() == {}


@pytest.mark.parametrize(
    "shape, dtype", [((2048, 2048), "<f4"), ((1024, 1024), "<i4"), ((40, 30), "<f8")]
)
def test_damaged_data_is_caught(store: S3BlobStore, shape, dtype) -> None:  # type: ignore[no-untyped-def]
    array = sample_array(dtype, shape)
    digest = store.put_array(array)
    key = f"arrays/{digest[:2]}/{digest}/c.0.0"
    data = bytearray(bytes(obstore.get(_raw(store), key).bytes()))
    data[len(data) // 3] ^= 0x40  # a byte inside the data, not in a shard's index
    obstore.put(_raw(store), key, bytes(data))
    fresh = S3BlobStore(store._bucket, "blobs", **_options(store))
    with pytest.raises(CorruptBlobError, match=digest):
        fresh.get_array(digest)
    n = shape[0]
    with pytest.raises(CorruptBlobError, match=digest):
        fresh.get_array(digest, (slice(n // 3 - 5, n // 3 + 5),))
    with pytest.raises(CorruptBlobError, match="compstore verify"):
        fresh.verify(digest)


def test_lost_data_file_and_damaged_document(store: S3BlobStore) -> None:
    digest = store.put_array(sample_array("<f4", (700, 600)))
    obstore.delete(_raw(store), f"arrays/{digest[:2]}/{digest}/c.0.0")
    with pytest.raises(CorruptBlobError, match=f"{digest} has lost its data file"):
        store.get_array(digest)
    doc = store.put_document(b'{"a": 1}')
    obstore.put(_raw(store), f"documents/{doc[:2]}/{doc}.json", b'{"a": 2}')
    with pytest.raises(CorruptBlobError, match=doc):
        store.get_document(doc)
    assert store.get_document_unchecked(doc) == b'{"a": 2}'


def test_put_is_create_once(store: S3BlobStore) -> None:
    array = sample_array("<u2", (30, 30))
    other = S3BlobStore(store._bucket, "blobs", **_options(store))
    # Both saw it absent; only one of them creates it.
    first = store._write_array(array, digest_array(array))
    second = other._write_array(array, digest_array(array))
    assert (first, second) == (True, False)
    assert list(store.iter_arrays()) == [digest_array(array)]


def test_settings_from_the_environment(s3_server, s3_bucket, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    options = s3_server.store_options()
    monkeypatch.setenv("AWS_ENDPOINT_URL", options["endpoint"])
    monkeypatch.setenv("AWS_REGION", options["region"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", options["access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "a-secret-value")
    store = S3BlobStore(s3_bucket, "env")
    digest = store.put_document(b"[]")
    assert store.get_document(digest) == b"[]"
    assert (
        "a-secret-value" not in repr(store)
        and repr(store) == f"S3BlobStore('s3://{s3_bucket}/env')"
    )


def test_a_missing_bucket_is_a_blob_store_error(s3_server) -> None:  # type: ignore[no-untyped-def]
    store = S3BlobStore("no-such-bucket", **s3_server.store_options())
    with pytest.raises(BlobStoreError, match="cannot write document .*check the endpoint, bucket"):
        store.put_document(b"{}")


def _options(store: S3BlobStore) -> dict[str, str]:
    endpoint = store._client.config["endpoint"]
    return {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "testing",
            "secret_access_key": "testing"}  # fmt: skip


def test_object_storage_doc_runs(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # docs/object-storage.md's example starts its own S3Server (tests/test_docs.py runs
    # the pages that need nothing optional).
    pytest.importorskip("moto")
    monkeypatch.chdir(tmp_path)
    page = pathlib.Path(__file__).resolve().parents[2] / "docs" / "object-storage.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)
    assert blocks
    namespace: dict[str, object] = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"object-storage.md block {i}", "exec"), namespace)  # noqa: S102


class TestS3BlobStoreCached(TestS3BlobStore):
    """The conformance suite again, reading through a local cache folder."""

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        prefix = f"stores/{uuid.uuid4().hex}"
        return S3BlobStore(
            self.bucket, prefix, cache=tmp_path / "cache", **self.server.store_options()
        )


class TestS3BlobStorePacked(TestS3BlobStore):
    """The conformance suite again, small components in packs indexed in an SQLite file."""

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        from compstore.cas._pack import PackIndex

        name = uuid.uuid4().hex
        index = PackIndex(str(tmp_path / f"{name}.sqlite3"), fsync=False)
        return S3BlobStore(
            self.bucket, f"stores/{name}", pack_index=index, **self.server.store_options()
        )


class TestS3BlobStoreComparing(TestS3BlobStore):
    """The conformance suite again, packed, comparing on a digest hit (a format 3 repository's store)."""

    def make_store(self, tmp_path: pathlib.Path) -> BlobStore:
        from compstore.cas._pack import PackIndex

        name = uuid.uuid4().hex
        index = PackIndex(str(tmp_path / f"{name}.sqlite3"), fsync=False)
        return S3BlobStore(self.bucket, f"stores/{name}", pack_index=index, compare_on_hit=True,
                           **self.server.store_options())  # fmt: skip


def test_check_files(store: S3BlobStore) -> None:
    raw = store.put_array(sample_array("<f4", (700, 600)))
    packed = store.put_array(sample_array("<i4", (700, 600)))
    doc = store.put_document(b"{}")
    for digest in (raw, packed, doc):
        store.check_files(digest)
    with pytest.raises(BlobNotFoundError, match="0123456789abcdef0123456789abcdef"):
        store.check_files("0123456789abcdef0123456789abcdef")
    obstore.put(_raw(store), f"arrays/{raw[:2]}/{raw}/c.0.0", b"cut short")
    with pytest.raises(CorruptBlobError, match=f"{raw} has a raw data file of 9 bytes"):
        store.check_files(raw)
    obstore.delete(_raw(store), f"arrays/{packed[:2]}/{packed}/c.0.0")
    with pytest.raises(CorruptBlobError, match=f"{packed} has lost its data file c.0.0"):
        store.check_files(packed)


def test_racing_put_new_array_stores_once(store: S3BlobStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    array = sample_array("<f4", (600, 600), seed=4)
    stores = [S3BlobStore(store._bucket, "blobs", **_options(store)) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: s.put_new_array(array), stores))
    assert [digest for digest, _ in answers] == [digest_array(array)] * 8
    assert sum(stored for _, stored in answers) == 1  # the one whose zarr.json was created
    assert np.array_equal(store.get_array(digest_array(array)), array)


def test_packs_of_two_writers_with_the_same_components(s3_server, s3_bucket, tmp_path) -> None:
    """Two stores pack the same small components: the first rows win, both read them right."""
    from compstore.cas._pack import PackIndex

    def make() -> S3BlobStore:
        index = PackIndex(str(tmp_path / "index.sqlite3"), fsync=False)
        return S3BlobStore(s3_bucket, "racing", pack_index=index, **s3_server.store_options())

    first, second = make(), make()
    array = sample_array("<i2", (100, 100), seed=3)
    for store in (first, second):
        assert store.put_new_array(array)[1] and store.put_new_document(b'{"a": 1}')[1]
    s3_server.clear_requests()
    first.sync()
    assert [r.method for r in s3_server.requests] == ["PUT"]  # one pack, no other object
    digest = digest_array(array)
    before = first._index.lookup(digest)  # type: ignore[union-attr]
    second.sync()  # its components are indexed already: no pack written
    assert first._index.lookup(digest) == before  # type: ignore[union-attr]
    third = make()
    assert np.array_equal(third.get_array(digest), array)
    assert third.get_document(third.put_document(b'{"a": 1}')) == b'{"a": 1}'
    assert not third.put_new_document(b'{"a": 1}')[1]  # known: not pending again
    packs = [o for b in obstore.list(_raw(third), "packs/") for o in b]
    assert len(packs) == 1


def _packing(s3_server, s3_bucket, tmp_path, prefix: str):  # type: ignore[no-untyped-def]
    """A maker of stores on one prefix sharing one SQLite pack index (as a repository's)."""
    from compstore.cas._pack import PackIndex

    def make() -> S3BlobStore:
        index = PackIndex(str(tmp_path / f"{prefix}.sqlite3"), fsync=False)
        return S3BlobStore(s3_bucket, prefix, pack_index=index, **s3_server.store_options())

    return make


def test_a_writer_that_loses_the_race_for_a_row_remembers_the_winners_pack(
    s3_server, s3_bucket, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """B checks the index, A indexes d, B writes its pack: B's copy of d is unreferenced.

    B must not remember its own pack for d (gc deletes it), but the index's row.
    """
    from compstore.cas._s3sweep import sweep_s3

    make = _packing(s3_server, s3_bucket, tmp_path, "racing")
    a, b = make(), make()
    d = a.put_document(b'{"a": 1}')
    a.put_document(b'{"f": 2}')  # A's pack differs from B's
    b.put_document(b'{"a": 1}')
    assert b._index is not None
    existing = b._index.existing

    def late(digests):  # type: ignore[no-untyped-def]
        found = existing(digests)
        if d in digests and d not in found:
            a.sync()  # A indexes d right after B looked
        return found

    monkeypatch.setattr(b._index, "existing", late)
    b.sync()
    monkeypatch.undo()
    row = a._index.lookup(d)  # type: ignore[union-attr]
    assert row is not None
    assert b._located.get(d) in (None, row)  # never B's own, unreferenced pack
    assert b.get_document(d) == b'{"a": 1}'
    assert sweep_s3(make(), {d}).packs_removed == 1  # B's pack
    assert b.get_document(d) == b'{"a": 1}'


def test_a_place_remembered_before_gc_is_looked_up_again(s3_server, s3_bucket, tmp_path) -> None:
    """gc deletes a reader's remembered pack; the components are put again into another."""
    from compstore.cas._s3sweep import sweep_s3

    make = _packing(s3_server, s3_bucket, tmp_path, "stale")
    writer, gone, moved = make(), make(), make()
    array = np.arange(10)
    d, da = writer.put_document(b'{"a": 1}'), writer.put_array(array)
    writer.sync()
    for reader in (gone, moved):  # each remembers their places
        assert reader.get_document(d) == b'{"a": 1}'
        assert np.array_equal(reader.get_array(da), array)
    assert sweep_s3(make(), set()).packs_removed == 1  # both dead: rows and pack go
    with pytest.raises(BlobNotFoundError):  # deleted: not "the repository is damaged"
        gone.get_document(d)
    with pytest.raises(BlobNotFoundError):
        gone.get_array(da)
    again = make()
    assert again.put_document(b'{"a": 1}') == d and again.put_array(array) == da
    again.put_document(b'{"x": 1}')  # (a pack that differs from the first)
    again.sync()  # put again: into a new pack
    assert moved.get_document(d) == b'{"a": 1}'
    assert np.array_equal(moved.get_array(da), array)
    assert gone.get_document(d) == b'{"a": 1}'


def test_a_missing_pack_is_corruption_not_a_network_error(s3_server, s3_bucket, tmp_path) -> None:
    """An index row naming a pack the bucket lacks: CorruptBlobError, as `check_files` says."""
    make = _packing(s3_server, s3_bucket, tmp_path, "lost")
    store = make()
    d = store.put_document(b'{"a": 1}')
    store.sync()
    row = store._index.lookup(d)  # type: ignore[union-attr]
    assert row is not None
    obstore.delete(_raw(store), store._pack_key(row.pack))
    for reader in (store, make()):
        with pytest.raises(CorruptBlobError, match=f"{d} is indexed in pack {row.pack}"):
            reader.get_document(d)
        with pytest.raises(CorruptBlobError, match=row.pack):
            reader.check_files(d)


def test_dropping_an_arrays_cached_objects_drops_its_remembered_place_too(
    s3_server, s3_bucket, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """After `_drop_cached` (a read found damage) the index is asked, not a stale pack."""
    from compstore.cas._s3sweep import sweep_s3

    make = _packing(s3_server, s3_bucket, tmp_path, "dropped")
    writer, reader = make(), make()
    array = np.arange(12)
    da = writer.put_array(array)
    writer.sync()
    assert np.array_equal(reader.get_array(da), array)
    old = reader._located[da]
    assert old is not None
    assert sweep_s3(make(), set()).packs_removed == 1
    again = make()
    assert again.put_array(array) == da
    again.put_document(b'{"x": 1}')  # another pack
    again.sync()
    reader._drop_cached(da)
    s3_server.clear_requests()
    assert np.array_equal(reader.get_array(da), array)
    assert not [r for r in s3_server.requests if old.pack in r.path]  # no GET of the gone pack
