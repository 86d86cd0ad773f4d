"""ObjectIO.write: big arrays written on the thread pool, manifests only after them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from compstore import Exposure, Mask
from compstore.cache import ObjectCache
from compstore.cas import BlobStore, LocalBlobStore, MemoryBlobStore, digest_array
from compstore.errors import BlobStoreError
from compstore.storage_classes import ObjectIO, WriteReport
from compstore.datastore import ASYNC_WRITE_MIN_BYTES


class RecordingStore(MemoryBlobStore):
    """Records the writes in order, with their thread; can be slow or fail on cue."""

    def __init__(self, *, fail_array: bool = False, fail_document: bool = False, delay: float = 0.0) -> None:
        super().__init__()
        self.events: list[tuple[str, str, str]] = []  # (kind, digest, thread name)
        self.fail_array, self.fail_document, self.delay = fail_array, fail_document, delay
        self._events_lock = threading.Lock()

    def _record(self, kind: str, digest: str) -> None:
        with self._events_lock:
            self.events.append((kind, digest, threading.current_thread().name))

    def put_array(self, array: np.ndarray, digest: str | None = None) -> str:
        time.sleep(self.delay)
        if self.fail_array and array.nbytes >= ASYNC_WRITE_MIN_BYTES:
            raise BlobStoreError("disk full (test)")
        d = super().put_array(array, digest)
        self._record("array", d)
        return d

    def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
        time.sleep(self.delay)
        if self.fail_array and array.nbytes >= ASYNC_WRITE_MIN_BYTES:
            raise BlobStoreError("disk full (test)")
        digest, stored = super().put_new_array(array)
        self._record("array", digest)
        return digest, stored

    def put_document(self, data: bytes | bytearray | memoryview, digest: str | None = None) -> str:
        if self.fail_document:
            raise BlobStoreError("document store down (test)")
        d = super().put_document(data, digest)
        self._record("manifest" if b'"compstore.manifest/1"' in bytes(data) else "document", d)
        return d


def big_exposure(edge: int = 1024) -> Exposure:
    rng = np.random.default_rng(5)
    image = rng.normal(100.0, 5.0, (edge, edge)).astype(np.float32)
    assert image.nbytes >= ASYNC_WRITE_MIN_BYTES
    mask = Mask(np.zeros((edge, edge), dtype=np.int32), {"BAD": 0})
    # The metadata is a document, written while the arrays are on the pool.
    return Exposure(image, mask, np.full((edge, edge), 25.0, dtype=np.float32), metadata={"OBSERVER": "test"})


def test_big_arrays_go_to_the_pool_and_manifests_come_last() -> None:
    store = RecordingStore()
    io = ObjectIO(store, ObjectCache(1 << 30))
    report = WriteReport()
    exposure = big_exposure()
    digest = io.write(exposure, "Exposure", report)
    kinds = [kind for kind, _, _ in store.events]
    arrays = [e for e in store.events if e[0] == "array"]
    assert len(arrays) == 3
    assert any(thread != threading.current_thread().name for _, _, thread in arrays)
    # Components first, then manifests (the mask's, then the exposure's, last of all).
    assert max(i for i, k in enumerate(kinds) if k != "manifest") < kinds.index("manifest")
    assert kinds.count("manifest") == 2 and store.events[-1][1] == digest
    assert report.arrays_written == 3 and len(report.written) == len(store.events)
    np.testing.assert_array_equal(io.read(digest).image, exposure.image)


def test_a_write_still_queued_when_the_caller_is_done_runs_on_the_caller() -> None:
    from compstore import _pool

    # Every pool worker is kept busy until the walk is over: the caller then finds
    # all three array writes queued, takes them back and runs them itself.
    release = threading.Event()
    workers = _pool._pool()._max_workers
    blockers = [_pool.submit(release.wait, 10) for _ in range(workers)]
    store = RecordingStore()
    io = ObjectIO(store, ObjectCache(1 << 30))
    try:
        digest = io.write(big_exposure(), "Exposure")
    finally:
        release.set()
        for blocker in blockers:
            blocker.result(timeout=10)
    threads = [thread for kind, _, thread in store.events if kind == "array"]
    assert threads == [threading.current_thread().name] * 3
    np.testing.assert_array_equal(io.read(digest).variance, big_exposure().variance)


def test_a_failed_pool_write_fails_the_write_and_stores_no_manifest() -> None:
    store = RecordingStore(fail_array=True)
    io = ObjectIO(store, ObjectCache(1 << 30))
    with pytest.raises(BlobStoreError, match="disk full"):
        io.write(big_exposure(), "Exposure")
    assert "manifest" not in [kind for kind, _, _ in store.events]


def test_an_error_while_walking_waits_for_the_pool_and_is_the_one_raised() -> None:
    # The first document fails while the (slow) array writes are queued or running.
    # The error raised is the walk's own; write() returns only once no write runs,
    # and writes not yet started never start (nothing keeps writing behind the error).
    started: list[str] = []
    finished: list[str] = []

    class SlowStore(RecordingStore):
        def put_new_array(self, array: np.ndarray) -> tuple[str, bool]:
            started.append(threading.current_thread().name)
            time.sleep(0.2)
            finished.append(threading.current_thread().name)
            return super().put_new_array(array)

    store = SlowStore(fail_document=True)
    io = ObjectIO(store, ObjectCache(1 << 30))
    with pytest.raises(BlobStoreError, match="document store down"):
        io.write(big_exposure(), "Exposure")
    assert len(started) == len(finished) <= 3  # every write that started had finished
    assert threading.current_thread().name not in started  # the caller ran none
    time.sleep(0.3)
    assert len(started) == len(finished)  # and none started afterwards
    assert "manifest" not in [kind for kind, _, _ in store.events]


# -- big arrays hashed while written (BlobStore.put_new_array) -------------------------
@pytest.mark.parametrize("backend", ["memory", "local"])
def test_a_manifest_does_not_depend_on_whether_digests_were_known(tmp_path: Path, backend: str) -> None:
    # New big arrays get their digests from the pool, after the walk (LocalBlobStore
    # hashes them while writing them); arrays the cache knows are named at once.
    # Either way the manifests are the same bytes.
    exposure = big_exposure()
    fresh_store: BlobStore = MemoryBlobStore() if backend == "memory" else LocalBlobStore(tmp_path, fsync=False)
    fresh = ObjectIO(fresh_store, ObjectCache(1 << 30))
    digest = fresh.write(exposure, "Exposure")
    knowing_store = MemoryBlobStore()
    knowing = ObjectIO(knowing_store, ObjectCache(1 << 30))
    for array in (exposure.image, exposure.mask.array, exposure.variance):
        knowing.cache.remember_digest(array, digest_array(array))
    assert knowing.write(exposure, "Exposure") == digest
    assert sorted(knowing_store.iter_documents()) == sorted(fresh_store.iter_documents())
    assert fresh_store.get_document(digest) == knowing_store.get_document(digest)
    read = fresh.read(digest)
    np.testing.assert_array_equal(read.mask.array, exposure.mask.array)
    np.testing.assert_array_equal(read.variance, exposure.variance)


def test_equal_big_arrays_of_new_objects_are_stored_once_and_reported_reused() -> None:
    store = MemoryBlobStore()
    io = ObjectIO(store, ObjectCache(1 << 30))
    first = WriteReport()
    digest = io.write(big_exposure(), "Exposure", first)
    assert first.arrays_written == 3 and first.bytes_hashed >= 3 * ASYNC_WRITE_MIN_BYTES
    arrays = sorted(store.iter_arrays())
    again = WriteReport()
    assert io.write(big_exposure(), "Exposure", again) == digest  # equal content, new objects
    assert again.arrays_written == 0 and again.documents_written == 0
    assert again.components_reused == 6  # 3 arrays, the metadata, 2 manifests
    assert sorted(store.iter_arrays()) == arrays


def test_one_big_array_named_twice_in_an_object_is_written_once() -> None:
    edge = 1024
    plane = np.full((edge, edge), 7.0, dtype=np.float32)
    exposure = Exposure(plane, Mask(np.zeros((edge, edge), dtype=np.int32), {"BAD": 0}), plane)
    store = RecordingStore()
    io = ObjectIO(store, ObjectCache(1 << 30))
    report = WriteReport()
    digest = io.write(exposure, "Exposure", report)
    manifest = io.manifest(digest)["components"]
    assert manifest["image"]["array"] == manifest["variance"]["array"] == digest_array(plane)
    assert [kind for kind, _, _ in store.events].count("array") == 2  # the plane and the mask
    assert report.arrays_written == 2 and report.components_reused == 1  # the plane named again


@pytest.mark.parametrize("kind", ["memory", "packs", "folders"])
def test_one_small_array_named_twice_is_written_once_and_reported_reused(kind, tmp_path, monkeypatch) -> None:
    # Small arrays are hashed, looked up and stored in one put_new_array call: a
    # duplicate is neither written nor encoded, and encoding never holds the lock.
    import compstore.cas._folders as folders
    import compstore.cas._packwrite as packwrite

    encoded: list[bool] = []  # for each encoding: whether the store's lock was held
    written: list[str] = []
    real_encode, real_write = packwrite.encode_array_files, folders.write_array_dir
    monkeypatch.setattr(packwrite, "encode_array_files",
                        lambda *a: encoded.append(store._lock._is_owned()) or real_encode(*a))
    monkeypatch.setattr(folders, "write_array_dir", lambda path, *a: written.append(path) or real_write(path, *a))
    if kind == "memory":
        store: BlobStore = MemoryBlobStore()
    else:
        store = LocalBlobStore(tmp_path / "blobs", packs=kind == "packs")
    edge = 64
    plane = np.full((edge, edge), 3.0, dtype=np.float32)
    exposure = Exposure(plane, Mask(np.zeros((edge, edge), dtype=np.int32), {"BAD": 0}), plane)
    io = ObjectIO(store, ObjectCache(1 << 30))
    report = WriteReport()
    digest = io.write(exposure, "Exposure", report)
    store.sync()
    assert report.arrays_written == 2 and report.components_reused == 1  # the plane named again
    assert report.bytes_hashed == 3 * plane.nbytes
    assert not any(encoded)
    calls = (len(encoded), len(written))
    again = WriteReport()
    equal = Exposure(plane.copy(), Mask(np.zeros((edge, edge), dtype=np.int32), {"BAD": 0}), plane.copy())
    assert ObjectIO(store, ObjectCache(1 << 30)).write(equal, "Exposure", again) == digest
    assert (len(encoded), len(written)) == calls  # the duplicates: neither encoded nor written
    assert calls == {"memory": (0, 0), "packs": (2, 0), "folders": (0, 2)}[kind]
    assert again.arrays_written == 0 and again.components_reused >= 3
    assert sorted(store.iter_arrays()) == sorted({digest_array(plane), digest_array(exposure.mask.array)})
    if kind == "folders":  # a duplicate found by its digest leaves nothing behind in staging
        assert not any(p.is_file() for p in (tmp_path / "blobs" / "staging").rglob("*"))
