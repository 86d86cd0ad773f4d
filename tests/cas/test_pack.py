"""Packs (format 2): small components of a sync written together, one zip file, indexed."""

from __future__ import annotations

import pathlib
import sqlite3
import zipfile

import numpy as np
import pytest
import zarr

from compstore.cas import LocalBlobStore, digest_array, digest_bytes
from compstore.cas._pack import PACK_MAX_BYTES, build_pack
from compstore.errors import BlobNotFoundError, BlobStoreError, CorruptBlobError
from compstore.testing.blobstore import sample_array


@pytest.fixture
def store(tmp_path: pathlib.Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)


def _packs(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted((root / "packs").glob("*/*.zip"))


def _component_files(root: pathlib.Path) -> list[pathlib.Path]:
    """Files of components outside packs (fan-out group zarr.json files aside)."""
    arrays = [p for p in (root / "arrays").glob("*/*/*") if p.is_file()]
    return arrays + sorted((root / "documents").glob("*/*.json"))


def test_a_sync_writes_its_small_components_as_one_pack(store: LocalBlobStore) -> None:
    arrays = [sample_array(d, (40, 30), seed=i) for i, d in enumerate(["<f4", "<i4", "|b1"])]
    column = np.arange(1000, dtype="<i8")
    digests = [store.put_array(a) for a in [*arrays, column]]
    doc = store.put_document(b'{"k":1}')
    assert _packs(store.root) == []  # waiting in memory, readable here
    np.testing.assert_array_equal(store.get_array(digests[3]), column)
    assert store.get_document(doc) == b'{"k":1}'
    store.sync()
    [pack] = _packs(store.root)
    assert pack.stem == digest_bytes(pack.read_bytes())  # named by its content
    assert _component_files(store.root) == []
    names = zipfile.ZipFile(pack).namelist()
    assert f"documents/{doc}.json" in names
    assert {f"arrays/{d}/zarr.json" for d in digests} <= set(names)
    for d, a in zip(digests, [*arrays, column], strict=True):
        np.testing.assert_array_equal(store.get_array(d), a)
        assert store.has_array(d)
    assert sorted(store.iter_arrays()) == sorted(digests)
    assert list(store.iter_documents()) == [doc]
    store.sync()  # nothing pending: no second pack
    assert len(_packs(store.root)) == 1


def test_pack_members_are_the_files_a_folder_would_hold(tmp_path: pathlib.Path) -> None:
    packed = LocalBlobStore(tmp_path / "packed", fsync=False, packs=True)
    plain = LocalBlobStore(tmp_path / "plain", fsync=False)
    for array in [sample_array("<i4", (300, 500), seed=1), np.array(2.5), np.zeros((0, 4))]:
        d = packed.put_array(array)
        assert plain.put_array(array) == d
        packed.sync()
        folder = plain.root / plain.component_path(d)
        members = {}
        for pack in _packs(packed.root):
            with zipfile.ZipFile(pack) as z:
                members.update({n: z.read(n) for n in z.namelist() if n.startswith(f"arrays/{d}/")})
        assert members == {f"arrays/{d}/{f.name}": f.read_bytes() for f in folder.iterdir()}


def test_stock_zarr_opens_a_packed_array_through_zipstore(store: LocalBlobStore) -> None:
    array = sample_array("<f8", (30, 40), seed=3)
    d = store.put_array(array)
    store.sync()
    [pack] = _packs(store.root)
    zipped = zarr.storage.ZipStore(pack, mode="r")
    np.testing.assert_array_equal(zarr.open_array(zipped, path=f"arrays/{d}", mode="r")[...], array)


def test_component_path_writes_a_packed_array_out_for_stock_zarr(store: LocalBlobStore) -> None:
    mask = sample_array("<i4", (300, 500), seed=2)
    d = store.put_array(mask)
    store.sync()
    path = store.root / store.component_path(d)
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], mask)
    assert store.component_path(d) == f"arrays/{d[:2]}/{d}"  # a second call writes nothing
    assert list(store.iter_arrays()) == [d]
    store.delete(d)
    assert not store.has_array(d) and not path.exists()


def test_big_arrays_keep_their_folders(store: LocalBlobStore) -> None:
    big = np.ones(PACK_MAX_BYTES // 4, dtype="<f4")
    d = store.put_array(big)
    assert (store.root / f"arrays/{d[:2]}/{d}/zarr.json").is_file()
    digest, stored = store.put_new_array(np.arange(10, dtype="<u2"))
    assert stored and digest == digest_array(np.arange(10, dtype="<u2"))
    assert store.put_new_array(np.arange(10, dtype="<u2")) == (digest, False)
    store.sync()
    assert len(_packs(store.root)) == 1


def test_other_store_objects_see_packed_components_after_sync(tmp_path: pathlib.Path) -> None:
    writer = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    reader = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    d = writer.put_document(b"[1,2]")
    assert not reader.has_document(d)
    writer.sync()
    assert reader.get_document(d) == b"[1,2]"


def test_the_same_component_packed_twice_is_indexed_once(tmp_path: pathlib.Path) -> None:
    a = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    b = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    array = np.arange(12, dtype="<i2").reshape(3, 4)
    assert a.put_array(array) == b.put_array(array)
    a.sync()
    b.sync()  # b's pack holds it too; the first row written stays
    assert len(_packs(a.root)) == 1  # the same members make the same pack, written once
    assert list(b.iter_arrays()) == [digest_array(array)]


def test_a_pack_whose_rows_never_landed_is_invisible(store: LocalBlobStore) -> None:
    # A crash between writing a pack and committing its rows leaves an unreferenced pack.
    raw, _ = build_pack([("documents/x.json", b"{}")])
    orphan = store.root / "packs" / "ab" / f"ab{'0' * 30}.zip"
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(raw)
    assert list(store.iter_documents()) == [] and not store.has_document(digest_bytes(b"{}"))
    d = store.put_document(b"{}")
    store.sync()
    assert store.get_document(d) == b"{}"


def test_a_missing_pack_is_reported_as_damage(store: LocalBlobStore) -> None:
    d = store.put_array(np.arange(5))
    store.sync()
    _packs(store.root)[0].unlink()
    with pytest.raises(CorruptBlobError, match="missing; the repository is damaged"):
        store.get_array(d)
    with pytest.raises(CorruptBlobError):
        store.verify(d)


def test_a_damaged_member_fails_verify(store: LocalBlobStore) -> None:
    d = store.put_document(b'{"value":12345}')
    store.sync()
    [pack] = _packs(store.root)
    raw = bytearray(pack.read_bytes())
    raw[raw.index(b"12345")] = ord("9")
    pack.write_bytes(bytes(raw))
    with pytest.raises(CorruptBlobError, match="hashes to"):
        store.verify(d)


def test_delete_forgets_a_packed_component_and_it_can_come_back(store: LocalBlobStore) -> None:
    array = sample_array("|b1", (20, 20), seed=5)
    d = store.put_array(array)
    store.sync()
    store.delete(d)
    assert not store.has_array(d)
    with pytest.raises(BlobNotFoundError):
        store.get_array(d)
    with pytest.raises(BlobNotFoundError):
        store.delete(d)
    store.put_array(array)
    store.sync()
    np.testing.assert_array_equal(store.get_array(d, (slice(2, 5), slice(0, 3))), array[2:5, 0:3])


def test_pack_index_rows(store: LocalBlobStore) -> None:
    d = store.put_array(np.arange(7, dtype="<i4"))
    store.sync()
    with sqlite3.connect(store.root / "packs.sqlite3") as conn:
        [(kind, pack, key)] = conn.execute("SELECT kind, pack, key FROM member").fetchall()
    assert (kind, key) == ("array", "c.0")
    assert (store.root / "packs" / pack[:2] / f"{pack}.zip").exists()
    np.testing.assert_array_equal(store.get_array(d), np.arange(7))


def test_packs_and_their_folders_are_fsynced_before_their_rows(
    tmp_path: pathlib.Path, monkeypatch
) -> None:
    import compstore.cas._packwrite as local

    events: list[str] = []
    real_file, real_dir = local.fsync_file, local.fsync_dir
    monkeypatch.setattr(local, "fsync_file", lambda p: (events.append(f"file {p}"), real_file(p)))
    monkeypatch.setattr(local, "fsync_dir", lambda p: (events.append(f"dir {p}"), real_dir(p)))

    root = tmp_path / "blobs"
    writers = [LocalBlobStore(root, packs=True) for _ in range(2)]  # fsync on
    assert (root / "packs").is_dir()  # made (and fsynced) with the store
    for store in writers:
        real_add = store._index.add  # type: ignore[union-attr]
        monkeypatch.setattr(
            store._index, "add", lambda rows, add=real_add: (events.append("index"), add(rows))
        )
    for store in writers:
        store.put_document(b"[]")  # both before either syncs
    first, second = writers
    events.clear()
    first.sync()
    [pack] = _packs(root)
    assert events[-3:] == [f"file {pack}", f"dir {pack.parent}", "index"]
    # The second finds the component indexed: it writes (and fsyncs) nothing, no second copy.
    events.clear()
    second.sync()
    assert events == [] and _packs(root) == [pack]


def test_a_pack_found_on_disk_unindexed_is_fsynced_again_before_its_rows(
    tmp_path: pathlib.Path, monkeypatch
) -> None:
    import compstore.cas._packwrite as local

    events: list[str] = []
    real_file, real_dir = local.fsync_file, local.fsync_dir
    monkeypatch.setattr(local, "fsync_file", lambda p: (events.append(f"file {p}"), real_file(p)))
    monkeypatch.setattr(local, "fsync_dir", lambda p: (events.append(f"dir {p}"), real_dir(p)))
    root = tmp_path / "blobs"
    first, second = [LocalBlobStore(root, packs=True) for _ in range(2)]  # fsync on

    def locked(rows: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(first._index, "add", locked)
    real_add = second._index.add  # type: ignore[union-attr]
    monkeypatch.setattr(
        second._index, "add", lambda rows, add=real_add: (events.append("index"), add(rows))
    )
    for store in (first, second):
        store.put_document(b"[]")
    with pytest.raises(BlobStoreError):
        first.sync()  # its pack is on disk, not indexed (as if its writer had died)
    events.clear()
    second.sync()  # the same bytes: it finds the pack there, and still fsyncs it
    [pack] = _packs(root)
    assert events[-3:] == [f"file {pack}", f"dir {pack.parent}", "index"]


def test_a_failed_pack_write_keeps_its_components_for_the_next_sync(
    store: LocalBlobStore, monkeypatch
) -> None:
    d = store.put_document(b'{"a":1}')
    real_add = store._index.add  # type: ignore[union-attr]

    def locked(rows):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store._index, "add", locked)
    with pytest.raises(BlobStoreError, match="kept and written by the next sync"):
        store.sync()
    assert store.get_document(d) == b'{"a":1}'  # still pending, still readable
    monkeypatch.setattr(store._index, "add", real_add)
    store.sync()
    assert LocalBlobStore(store.root, fsync=False, packs=True).get_document(d) == b'{"a":1}'
    assert list((store.root / "staging").glob("*/*.zip")) == []  # no partial pack left


def test_a_delete_by_another_store_object_is_seen_by_existence_checks(
    tmp_path: pathlib.Path,
) -> None:
    x = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    y = LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True)
    array = np.arange(6, dtype="<i4")
    d = x.put_array(array)
    x.sync()
    np.testing.assert_array_equal(x.get_array(d), array)  # x now knows where d is
    y.delete(d)
    assert not x.has_array(d)
    assert x.put_array(array) == d  # so a put writes it again ...
    x.sync()
    assert LocalBlobStore(tmp_path / "blobs", fsync=False, packs=True).has_array(d)  # ... for all


def test_many_pending_components_are_packed_before_sync(store: LocalBlobStore, monkeypatch) -> None:
    import compstore.cas._packwrite as local

    monkeypatch.setattr(local, "PENDING_MAX_BYTES", 10_000)
    for i in range(10):
        store.put_document(json_bytes := f'{{"i":{i},"pad":"{"x" * 3000}"}}'.encode())
        assert store.get_document(digest_bytes(json_bytes)) == json_bytes
    assert 2 <= len(_packs(store.root)) <= 4  # a pack every ~10 kB, before any sync
    store.sync()
    assert len(list(store.iter_documents())) == 10


def test_failing_early_pack_writes_neither_fail_puts_nor_repeat_on_every_put(
    store: LocalBlobStore, monkeypatch
) -> None:
    import compstore.cas._packwrite as local

    monkeypatch.setattr(local, "PENDING_MAX_BYTES", 10_000)
    real_add = store._index.add  # type: ignore[union-attr]
    attempts = []

    def locked(rows):
        attempts.append(len(rows))
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(store._index, "add", locked)
    docs = [f'{{"i":{i},"pad":"{"x" * 3000}"}}'.encode() for i in range(20)]
    for data in docs[:12]:
        store.put_document(data)  # no error: the components wait for sync
    assert 1 <= len(attempts) <= 2  # retried when twice as much waits, not every put
    with pytest.raises(BlobStoreError, match="cannot be written"):
        for data in docs[12:]:
            store.put_document(data)  # over 4x the limit: refused before it is taken
    refused = [d for d in docs[12:] if not store.has_document(digest_bytes(d))]
    assert refused  # the put that raised did not store its document
    with pytest.raises(BlobStoreError, match="kept and written by the next sync"):
        store.sync()  # sync reports the failure
    monkeypatch.setattr(store._index, "add", real_add)
    store.sync()
    assert all(store.has_document(digest_bytes(d)) for d in docs if d not in refused)


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("meta_offset", None, "damaged row"),
        ("data_offset", "'x'", "damaged row"),
        ("pack", "'../../etc'", "damaged row"),
        ("data_size", 10**12, "ends before its member"),
    ],
)
def test_damaged_index_rows_are_reported(store: LocalBlobStore, column, value, message) -> None:
    d = store.put_array(np.arange(6, dtype="<i4"))
    store.sync()
    with sqlite3.connect(store.root / "packs.sqlite3") as conn:
        conn.execute(f"UPDATE member SET {column} = {'NULL' if value is None else value}")
    fresh = LocalBlobStore(store.root, fsync=False, packs=True)
    with pytest.raises(CorruptBlobError, match=message):
        fresh.get_array(d)
