"""Reads check what they read: missing chunks, flipped bytes, damaged zarr.json and index.

Issue 12, items 2 and 3: a damaged component is `CorruptBlobError` naming its
digest, never zeros, never other pixels, never a builtin exception from inside.
"""

from __future__ import annotations

import json
import os
import pathlib
import sqlite3

import numpy as np
import pytest

from compstore.cas import LocalBlobStore, digest_array
from compstore.errors import BlobStoreError, CorruptBlobError
from compstore.testing.blobstore import sample_array


@pytest.fixture
def store(tmp_path: pathlib.Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", fsync=False)


@pytest.fixture
def packed(tmp_path: pathlib.Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "packed", fsync=False, packs=True)


def _folder(store: LocalBlobStore, digest: str) -> pathlib.Path:
    return store.root / store.component_path(digest)


def _flip(path: pathlib.Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


# -- item 2: a missing chunk is damage, not zeros ------------------------------------
@pytest.mark.parametrize("dtype", ["<f4", "<i4"])  # raw, and one shard of blosc chunks
def test_a_missing_chunk_file_is_corrupt_not_zeros(store: LocalBlobStore, dtype: str) -> None:
    array = sample_array(dtype, (600, 530), seed=1)
    digest = store.put_array(array)
    chunk = _folder(store, digest) / "c.0.0"
    chunk.unlink()
    fresh = LocalBlobStore(store.root)
    with pytest.raises(CorruptBlobError, match=f"{digest} is missing its chunk file.*c.0.0"):
        fresh.get_array(digest)
    with pytest.raises(CorruptBlobError, match=digest):  # a cut-out too
        fresh.get_array(digest, (slice(10, 20), slice(30, 40)))
    with pytest.raises(CorruptBlobError, match=digest):
        fresh.verify(digest)


def test_a_truncated_shard_is_corrupt(store: LocalBlobStore) -> None:
    digest = store.put_array(sample_array("<i4", (600, 530), seed=2))
    shard = _folder(store, digest) / "c.0.0"
    shard.write_bytes(shard.read_bytes()[:-100])
    fresh = LocalBlobStore(store.root)
    for region in (None, (slice(0, 5), slice(0, 5))):
        with pytest.raises(CorruptBlobError, match=digest):
            fresh.get_array(digest, region)


# -- item 3: flipped bytes never read as other values ---------------------------------
@pytest.mark.parametrize("dtype", ["<f4", "<i4", "<f8"])
def test_a_flipped_data_byte_fails_a_whole_read(store: LocalBlobStore, dtype: str) -> None:
    shape = (300, 257) if dtype != "<f8" else (40_000,)
    digest = store.put_array(sample_array(dtype, shape, seed=3))
    data = _folder(store, digest) / "c.0.0" if len(shape) == 2 else _folder(store, digest) / "c.0"
    size = data.stat().st_size
    for offset in (0, size // 3, size // 2, size - 1):
        _flip(data, offset)
        with pytest.raises(CorruptBlobError, match=digest):
            LocalBlobStore(store.root).get_array(digest)
        _flip(data, offset)  # restored
    LocalBlobStore(store.root).get_array(digest)


def test_a_flipped_endian_in_zarr_json_is_corrupt(store: LocalBlobStore) -> None:
    # "little" -> "lIttle" was read as big-endian: other values, silently.
    digest = store.put_array(sample_array("<f4", (20, 30), seed=4))
    meta = _folder(store, digest) / "zarr.json"
    meta.write_bytes(meta.read_bytes().replace(b'"little"', b'"lIttle"'))
    with pytest.raises(CorruptBlobError, match=f"{digest} has a bad zarr.json.*endian"):
        LocalBlobStore(store.root).get_array(digest)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(node_type="group"),
        lambda m: m["codecs"].append({"name": "nosuchcodec"}),
        lambda m: m["chunk_grid"]["configuration"].update(chunk_shape=[0, 0]),
        lambda m: m.update(shape=[20, 2e40]),
        lambda m: m.update(data_type="float33"),
    ],
    ids=["group", "unknown-codec", "chunk-shape-0", "huge-shape", "data-type"],
)
def test_hostile_zarr_json_is_corrupt_blob_error(store: LocalBlobStore, change) -> None:
    digest = store.put_array(sample_array("<f4", (20, 30), seed=5))
    path = _folder(store, digest) / "zarr.json"
    meta = json.loads(path.read_bytes())
    change(meta)
    path.write_text(json.dumps(meta))
    for region in (None, (slice(0, 2),)):
        with pytest.raises(CorruptBlobError, match=digest):
            LocalBlobStore(store.root).get_array(digest, region)
    with pytest.raises(CorruptBlobError, match=digest):  # plain verify's check, no re-hash
        LocalBlobStore(store.root).check_files(digest)


def test_a_flipped_document_byte_is_corrupt(store: LocalBlobStore, packed: LocalBlobStore) -> None:
    for s in (store, packed):
        doc = s.put_document(b'{"ra":10.5}')
        s.sync()
        if s is store:
            path = s.root / f"documents/{doc[:2]}/{doc}.json"
            _flip(path, path.read_bytes().index(b"10.5"))
        else:
            [pack] = list((s.root / "packs").rglob("*.zip"))
            _flip(pack, pack.read_bytes().index(b"10.5"))
        with pytest.raises(CorruptBlobError, match=f"document {doc} is corrupt"):
            LocalBlobStore(s.root, packs=s.packs).get_document(doc)


def test_a_flipped_packed_array_byte_fails_whole_reads_and_cutouts(packed: LocalBlobStore) -> None:
    array = np.arange(1000, dtype="<f8")
    digest = packed.put_array(array)
    packed.sync()
    [pack] = list((packed.root / "packs").rglob("*.zip"))
    with sqlite3.connect(packed.root / "packs.sqlite3") as conn:
        offset, size = conn.execute("SELECT data_offset, data_size FROM member").fetchone()
    _flip(pack, offset + size // 2)
    fresh = LocalBlobStore(packed.root, packs=True)
    for region in (None, (slice(495, 505),)):
        with pytest.raises(CorruptBlobError, match=digest):
            fresh.get_array(digest, region)


def test_arrays_zarr_wrote_without_empty_chunks_still_read(store: LocalBlobStore) -> None:
    # Stock zarr leaves out chunks of fill values: a whole read with them as the
    # fill value hashes to the digest, and so does a cut-out's (checked) whole read.
    import zarr

    array = sample_array("<f4", (600, 530), seed=3)
    array[:512, :512] = 0
    digest = digest_array(array)
    path = store.zarr_root / digest[:2] / digest
    path.parent.mkdir(exist_ok=True)
    z = zarr.create_array(store=str(path), shape=array.shape, dtype=array.dtype,
                          chunks=(512, 512), compressors=None, fill_value=0)  # fmt: skip
    z[...] = array
    assert not (path / "c" / "0" / "0").exists()
    np.testing.assert_array_equal(store.get_array(digest, (slice(10, 20),)), array[10:20])
    np.testing.assert_array_equal(store.get_array(digest), array)


# -- damaged store files ----------------------------------------------------------------
def test_a_non_utf8_byte_in_the_pack_index_is_a_damaged_row(packed: LocalBlobStore) -> None:
    digest = packed.put_array(np.arange(6, dtype="<i4"))
    packed.sync()
    with sqlite3.connect(packed.root / "packs.sqlite3") as conn:
        conn.execute("UPDATE member SET key = CAST(X'632EFF30' AS TEXT) WHERE digest = ?", (digest,))
    fresh = LocalBlobStore(packed.root, packs=True)
    with pytest.raises(CorruptBlobError, match=f"{digest} has a damaged row"):
        fresh.get_array(digest)


def test_a_staging_symlink_is_refused(tmp_path: pathlib.Path) -> None:
    LocalBlobStore(tmp_path / "blobs").close()
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rmdir(tmp_path / "blobs" / "staging")
    os.symlink(outside, tmp_path / "blobs" / "staging")
    with pytest.raises(BlobStoreError, match="symbolic link"):
        LocalBlobStore(tmp_path / "blobs").put_array(np.ones((600, 600)))
    assert list(outside.iterdir()) == []


# -- cut-outs check the parts they read (compstore.sums) -------------------------------
def _cutout_flip_cases(store: LocalBlobStore, dtype: str):
    # 1024x1024: raw for noisy floats (64 tiles of 128x128), one shard of
    # 256x256 blosc chunks for ints.
    array = sample_array(dtype, (1024, 1024), seed=6)
    digest = store.put_array(array)
    return array, digest, _folder(store, digest) / "c.0.0"


@pytest.mark.parametrize("dtype", ["<f4", "<i4"])
def test_a_flipped_byte_in_the_parts_a_cutout_reads_fails_it(store: LocalBlobStore, dtype: str) -> None:
    array, digest, data = _cutout_flip_cases(store, dtype)
    box = (slice(600, 700), slice(300, 400))
    if dtype == "<f4":
        offset = (650 * 1024 + 350) * 4  # a pixel inside the box
    else:  # the middle of inner chunk (2, 1), which the box needs
        import zarr

        index = np.frombuffer(data.read_bytes()[-(16 * 16 + 4) : -4], "<u8").reshape(4, 4, 2)
        offset = int(index[2, 1, 0] + index[2, 1, 1] // 2)
        assert zarr.open_array(str(data.parent))[box].shape == (100, 100)
    _flip(data, offset)
    with pytest.raises(CorruptBlobError, match=f"{digest}.*checksum"):
        LocalBlobStore(store.root).get_array(digest, box)
    # A cut-out elsewhere reads right; verify names the damage.
    np.testing.assert_array_equal(
        LocalBlobStore(store.root).get_array(digest, (slice(0, 10),)), array[:10]
    )
    with pytest.raises(CorruptBlobError, match=digest):
        LocalBlobStore(store.root).verify(digest)


def test_a_flipped_sums_file_fails_cutouts_and_verify(store: LocalBlobStore) -> None:
    array, digest, data = _cutout_flip_cases(store, "<f4")
    sums = data.parent / "compstore.sums"
    _flip(sums, len(sums.read_bytes()) - 3)  # the checksum of the last tile
    fresh = LocalBlobStore(store.root)
    np.testing.assert_array_equal(fresh.get_array(digest), array)  # the data is intact
    with pytest.raises(CorruptBlobError, match=digest):
        fresh.get_array(digest, (slice(1020, 1024),))
    with pytest.raises(CorruptBlobError, match=f"{digest} does not match its compstore.sums"):
        fresh.verify(digest)
    _flip(sums, 3)  # the header
    with pytest.raises(CorruptBlobError, match=f"{digest} has a damaged compstore.sums"):
        LocalBlobStore(store.root).get_array(digest, (slice(0, 4),))


def test_a_small_folder_array_cutout_is_checked_whole(store: LocalBlobStore) -> None:
    array = sample_array("<f4", (100, 100), seed=7)  # 40 KB: no sums file
    digest = store.put_array(array)
    data = _folder(store, digest) / "c.0.0"
    assert not (data.parent / "compstore.sums").exists()
    _flip(data, 4 * (50 * 100 + 50))
    with pytest.raises(CorruptBlobError, match=digest):
        LocalBlobStore(store.root).get_array(digest, (slice(40, 60), slice(40, 60)))


def test_a_non_utf8_byte_in_the_pack_index_schema_is_a_blob_store_error(tmp_path: pathlib.Path) -> None:
    # SQLite's error message quotes the damaged schema; sqlite3 decoded it as UTF-8.
    store = LocalBlobStore(tmp_path / "b", fsync=False, packs=True)
    store.put_array(np.arange(6, dtype="<i4"))
    store.sync()
    del store
    index = tmp_path / "b" / "packs.sqlite3"
    with sqlite3.connect(index) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = bytearray(index.read_bytes())
    raw[raw.index(b"CREATE TABLE member") + 7] = 0xC7  # "CREATE \xc7ABLE member"
    index.write_bytes(bytes(raw))
    with pytest.raises(BlobStoreError, match="packs.sqlite3"):
        LocalBlobStore(tmp_path / "b", fsync=False, packs=True)
