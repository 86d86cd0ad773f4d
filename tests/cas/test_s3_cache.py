"""S3BlobStore's local read-through cache: a second read costs no request, damage is refetched."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from compstore.cas import S3BlobStore
from compstore.cas._objcache import ObjectCache
from compstore.testing.blobstore import sample_array


@pytest.fixture
def new_store(s3_server, s3_bucket, tmp_path):
    """A factory of fresh S3BlobStore objects (empty memory caches) sharing one cache folder."""

    def make(cache_bytes: int = 1 << 30) -> S3BlobStore:
        return S3BlobStore(
            s3_bucket,
            "cached",
            cache=tmp_path / "cache",
            cache_bytes=cache_bytes,
            **s3_server.store_options(),
        )

    return make


def _requests(server, call):
    server.clear_requests()
    result = call()
    return result, [(r.method, r.range) for r in server.requests]


@pytest.mark.parametrize("dtype", ["<f4", "<i4"])  # raw, and one shard of compressed chunks
def test_second_get_costs_no_request(s3_server, new_store, dtype) -> None:
    array = sample_array(dtype, (1024, 1024), seed=11)
    digest = new_store().put_array(array)
    doc = new_store().put_document(b'{"x": 1}')
    got, first = _requests(s3_server, lambda: new_store().get_array(digest))
    assert np.array_equal(got, array) and [m for m, _ in first] == ["GET", "GET"]
    store = new_store()  # nothing in memory: everything comes from the folder
    got, again = _requests(s3_server, lambda: store.get_array(digest))
    assert np.array_equal(got, array) and again == []
    # A cut-out of the cached data file checks the tiles it reads against compstore.sums,
    # which whole reads never needed: fetched (and cached) by the first cut-out only.
    region = (slice(300, 400), slice(500, 600))
    got, cutout = _requests(s3_server, lambda: new_store().get_array(digest, region))
    assert np.array_equal(got, array[region]) and cutout == [("GET", "")]
    got, cutout = _requests(s3_server, lambda: new_store().get_array(digest, region[::-1]))
    assert np.array_equal(got, array[region[::-1]]) and cutout == []
    assert _requests(s3_server, lambda: new_store().get_document(doc))[1] == [("GET", "")]
    data, again = _requests(s3_server, lambda: new_store().get_document(doc))
    assert data == b'{"x": 1}' and again == []


def _flip(path: str, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x10]))


def test_a_damaged_cached_copy_is_fetched_again(s3_server, new_store, tmp_path) -> None:
    array = sample_array("<f4", (1024, 1024), seed=12)
    digest = new_store().put_array(array)
    doc = new_store().put_document(b'{"y": 2}')
    new_store().get_array(digest)
    new_store().get_document(doc)
    folder = tmp_path / "cache" / "arrays" / digest[:2] / digest
    _flip(str(folder / "c.0.0"), 1024 * 4 * 350 + 4 * 550)  # inside the region read below
    got, requests = _requests(
        s3_server, lambda: new_store().get_array(digest, (slice(300, 400), slice(500, 600)))
    )
    assert np.array_equal(got, array[300:400, 500:600])
    # The cached tile failed its checksum: the data was fetched from S3 again (ranged).
    assert any(m == "GET" and rng.startswith("bytes=") for m, rng in requests)
    new_store().get_array(digest)  # cached whole again
    _flip(str(folder / "c.0.0"), 7)
    got, requests = _requests(s3_server, lambda: new_store().get_array(digest))
    assert np.array_equal(got, array) and ("GET", "") in requests  # failed its digest
    assert _requests(s3_server, lambda: new_store().get_array(digest))[1] == []  # repaired
    _flip(str(tmp_path / "cache" / "documents" / doc[:2] / f"{doc}.json"), 2)
    data, requests = _requests(s3_server, lambda: new_store().get_document(doc))
    assert data == b'{"y": 2}' and requests == [("GET", "")]


def test_the_cache_stays_within_its_bytes(s3_server, new_store, tmp_path) -> None:
    arrays = [sample_array("<i2", (300, 300), seed=i) for i in range(6)]
    digests = [new_store().put_array(a) for a in arrays]
    store = new_store(cache_bytes=600_000)
    for digest, array in zip(digests, arrays):
        assert np.array_equal(store.get_array(digest), array)
    on_disk = sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert on_disk <= 600_000 and on_disk == store._cache.nbytes  # type: ignore[union-attr]
    # The last read is the most recently used: still cached, read without a request.
    assert _requests(s3_server, lambda: store.get_array(digests[-1]))[1] == []


def test_object_cache_evicts_least_recently_used(tmp_path) -> None:
    A, B, C, BIG = (f"documents/0{i}/{i}123456789abcdef0123456789abcdef.json" for i in range(4))
    cache = ObjectCache(tmp_path / "c", max_bytes=250)
    cache.put(A, b"a" * 100)
    time.sleep(0.01)
    cache.put(B, b"b" * 100)
    time.sleep(0.01)
    assert cache.get(A) == b"a" * 100  # a is now more recent than b
    time.sleep(0.01)
    cache.put(C, b"c" * 100)
    assert cache.get(B) is None
    assert cache.get(A) == b"a" * 100 and cache.get(C) == b"c" * 100
    assert cache.nbytes == 2 * (100 + 16)  # a document's file ends with its 16-byte seal
    cache.put(BIG, b"x" * 251)  # bigger than the whole cache: not kept
    assert cache.get(BIG) is None and not os.path.exists(tmp_path / "c" / BIG)
    # A new object counts what an earlier one left in the folder.
    assert ObjectCache(tmp_path / "c", max_bytes=250).nbytes == 2 * (100 + 16)


D = "0123456789abcdef0123456789abcdef"  # a digest


def test_files_that_are_not_cached_objects_are_never_counted_or_evicted(tmp_path) -> None:
    """A cache folder may hold a user's files (a mistake, a shared folder): they are not ours."""
    folder = tmp_path / "cache"
    (folder / "data").mkdir(parents=True)
    (folder / "thesis.tex").write_bytes(b"x" * 1000)
    (folder / "data" / "obs.fits").write_bytes(b"y" * 1000)
    cache = ObjectCache(folder, max_bytes=300)
    assert cache.nbytes == 0
    cache.put(f"arrays/01/{D}/c.0.0", b"z" * 200)
    cache.put(f"documents/01/{D}.json", b"w" * 200)  # over the bound: the oldest goes
    assert (folder / "thesis.tex").exists() and (folder / "data" / "obs.fits").exists()
    assert cache.nbytes <= 300


def test_stale_temporaries_are_removed_when_a_cache_first_writes(tmp_path) -> None:
    folder = tmp_path / "cache"
    old = folder / f"documents/01/{D}.json.123-abc-1.partial"
    new = folder / f"documents/01/{D}.json.124-abc-1.partial"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half")
    new.write_bytes(b"half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    cache = ObjectCache(folder, max_bytes=1 << 20)
    assert old.exists()  # opening scans nothing (a reader served from the cache: no cost)
    cache.put(f"documents/02/{D}.json", b"{}")  # the first write scans the folder
    assert not old.exists() and new.exists()  # a live writer's is left alone


def test_a_file_where_the_cache_folder_should_be_is_a_clear_error(tmp_path) -> None:
    from compstore.errors import BlobStoreError

    (tmp_path / "file").write_text("x")
    with pytest.raises(BlobStoreError, match="local cache folder"):
        ObjectCache(tmp_path / "file", max_bytes=1 << 20)


def test_a_cache_it_may_not_touch_still_serves(tmp_path, monkeypatch) -> None:
    """utime refused (another user's file, a read-only mount): a hit, not a traceback."""
    cache = ObjectCache(tmp_path / "cache", max_bytes=1 << 20)
    cache.put(f"documents/01/{D}.json", b"{}")

    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "utime", refuse)
    assert cache.get(f"documents/01/{D}.json") == b"{}"
    monkeypatch.setattr(os, "unlink", refuse)
    cache.drop(f"documents/01/{D}.json")  # cannot remove it: forgotten, no error


@pytest.mark.parametrize("damage", ["shape", "garbage", "truncated"])
def test_a_damaged_cached_zarr_json_is_never_believed(s3_server, new_store, tmp_path, damage) -> None:
    """array_info, check_files and reads see the bucket's zarr.json, not a damaged copy.

    A cached zarr.json is not covered by the array's digest (array_info reads
    only it): a copy whose shape was changed would otherwise be believed.
    """
    array = sample_array("<i4", (300, 200), seed=13)
    digest = new_store().put_array(array)
    new_store().get_array(digest)  # zarr.json and the data file now cached
    meta = tmp_path / "cache" / "arrays" / digest[:2] / digest / "zarr.json"
    raw = meta.read_bytes()
    assert b"300" in raw
    meta.write_bytes(
        {"shape": raw.replace(b"300", b"301", 1), "garbage": b"{\x00nonsense",
         "truncated": raw[: len(raw) // 2]}[damage]
    )  # fmt: skip
    info = new_store().array_info(digest)
    assert (info.shape, info.dtype) == ((300, 200), np.dtype("<i4"))
    meta.write_bytes(b"{\x00nonsense")
    new_store().check_files(digest)
    meta.write_bytes(raw.replace(b"300", b"301", 1))
    assert np.array_equal(new_store().get_array(digest, (slice(0, 10), slice(5, 9))), array[:10, 5:9])
    meta.write_bytes(raw.replace(b"300", b"301", 1))
    assert np.array_equal(new_store().get_array(digest), array)


def test_a_damaged_cached_sums_file_is_fetched_again(s3_server, new_store, tmp_path) -> None:
    array = sample_array("<f4", (1024, 1024), seed=14)
    digest = new_store().put_array(array)
    region = (slice(300, 400), slice(500, 600))
    new_store().get_array(digest, region)  # zarr.json and compstore.sums cached
    sums = tmp_path / "cache" / "arrays" / digest[:2] / digest / "compstore.sums"
    _flip(str(sums), 40)
    got, requests = _requests(s3_server, lambda: new_store().get_array(digest, region))
    assert np.array_equal(got, array[region]) and ("GET", "") in requests  # sums fetched again
    # Repaired: only the cut-out's ranged GET (ranges are never cached), no sums.
    again = _requests(s3_server, lambda: new_store().get_array(digest, region))[1]
    assert [rng.startswith("bytes=") for _, rng in again] == [True]
