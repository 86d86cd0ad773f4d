"""LocalBlobStore specifics: files on disk, zarr/xarray interoperability, durability."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import threading
import warnings

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec, ZstdCodec

from compstore.cas import LocalBlobStore, digest_array
from compstore.cas._layout import choose_layout, one_file_layout
from compstore.errors import CorruptBlobError
from compstore.testing.blobstore import DTYPES, sample_array

INTEROP_SHAPES = [(), (1,), (17,), (1_100_003,), (3, 4), (600, 530), (2, 3, 4), (3, 513, 7), (0, 5)]


@pytest.fixture
def store(tmp_path: pathlib.Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _files_under(path: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# -- layout -------------------------------------------------------------------
def test_layout(store: LocalBlobStore) -> None:
    a = store.put_array(np.arange(6, dtype="<f4").reshape(2, 3))
    d = store.put_document(b'{"k":1}')
    store.sync()
    root = store.root
    assert isinstance(root, pathlib.Path)
    files = _files_under(root)
    assert files == sorted(
        [
            "arrays/zarr.json",
            f"arrays/{a[:2]}/zarr.json",
            f"arrays/{a[:2]}/{a}/zarr.json",
            f"arrays/{a[:2]}/{a}/c.0.0",
            f"documents/{d[:2]}/{d}.json",
        ]
    )
    assert json.loads((root / "arrays/zarr.json").read_bytes()) == {
        "attributes": {},
        "zarr_format": 3,
        "node_type": "group",
    }
    assert (root / f"documents/{d[:2]}/{d}.json").read_bytes() == b'{"k":1}'
    assert store.zarr_root == root / "arrays"
    assert store.component_path(a) == f"arrays/{a[:2]}/{a}"


def test_chosen_layout() -> None:
    f4 = choose_layout(np.dtype("<f4"), (4096, 4096))
    assert f4.chunk_shape == (512, 512)
    assert f4.compressor["name"] == "blosc"
    assert f4.compressor["configuration"]["shuffle"] == "shuffle"
    i4 = choose_layout(np.dtype("<i4"), (4096, 4096))  # a mask
    assert i4.compressor == {
        "name": "blosc",
        "configuration": {
            "typesize": 4,
            "cname": "blosclz",
            "clevel": 5,
            "shuffle": "noshuffle",
            "blocksize": 262144,
        },
    }
    assert i4.chunk_shape == (256, 256)
    assert choose_layout(np.dtype("|b1"), (64, 64)).compressor["configuration"]["typesize"] == 1
    i8 = choose_layout(np.dtype("<i8"), (1000,))  # a catalog column
    assert i8.compressor == {"name": "zstd", "configuration": {"level": 1, "checksum": False}}
    assert choose_layout(np.dtype("<f8"), (10_000_000,)).chunk_shape == (524288,)
    assert choose_layout(np.dtype("<f4"), (10, 4096, 4096)).chunk_shape == (1, 512, 512)
    assert choose_layout(np.dtype("<f4"), (10, 20, 30)).chunk_shape == (10, 20, 30)
    assert choose_layout(np.dtype("<f4"), (0, 5)).chunk_shape == (1, 5)
    assert choose_layout(np.dtype(">f4"), (3,)).endian == "big"
    assert choose_layout(np.dtype("|u1"), (3,)).endian is None


# -- zarr reads what we wrote ---------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_zarr_reads_ours_bit_for_bit(store: LocalBlobStore, dtype: str) -> None:
    for shape in INTEROP_SHAPES:
        if np.prod(shape) > 100_000 and dtype not in ("<f4", "|b1", ">i4"):
            continue
        array = sample_array(dtype, shape, seed=7)
        digest = store.put_array(array)
        store.sync()
        z = zarr.open_array(store.root / store.component_path(digest), mode="r")
        got = np.asarray(z[...])
        assert got.shape == shape
        assert z.dtype == array.dtype.newbyteorder("=") or z.dtype == array.dtype
        # zarr hands back native byte order; the values are identical bit for bit.
        assert got.astype(array.dtype).tobytes() == array.tobytes(), (dtype, shape)
        assert z.metadata.dimension_names == (
            tuple(f"{digest}_{i}" for i in range(len(shape))) if shape else None
        )


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "<c8", "<i4", "|b1", "|u1", "<u8", "<f2"])
@pytest.mark.parametrize("shape", [(), (17,), (600, 530), (2, 3, 4)], ids=str)
def test_metadata_equals_zarrs(
    store: LocalBlobStore, tmp_path: pathlib.Path, dtype: str, shape: tuple[int, ...]
) -> None:
    array = sample_array(dtype, shape)
    digest = store.put_array(array)
    store.sync()
    ours = json.loads((store.root / store.component_path(digest) / "zarr.json").read_bytes())
    codecs = ours["codecs"]
    if codecs[0]["name"] == "sharding_indexed":
        codecs = codecs[0]["configuration"]["codecs"]
    # The codec actually chosen: floats that do not compress are stored raw.
    codec = codecs[1] if len(codecs) > 1 else None
    layout = choose_layout(array.dtype, shape)
    if codec is not None:
        assert codec == layout.compressor
    layout = one_file_layout(dataclasses.replace(layout, compressor=codec), shape)
    compressors = (
        []
        if codec is None
        else [BloscCodec(**codec["configuration"])]
        if codec["name"] == "blosc"
        else [ZstdCodec(**codec["configuration"])]
    )
    theirs_array = zarr.create_array(
        store=str(tmp_path / "theirs"),
        chunk_key_encoding={"name": "default", "separator": "."},
        shape=shape,
        dtype=array.dtype,
        chunks=layout.chunk_shape,
        shards=layout.shard_shape,
        compressors=compressors,
        fill_value=0,
        dimension_names=[f"{digest}_{i}" for i in range(len(shape))] if shape else None,
    )
    theirs_array[...] = array
    theirs = json.loads((tmp_path / "theirs" / "zarr.json").read_bytes())
    assert ours == theirs
    # The same chunk files, holding the same array: zarr reads each layout as the other's.
    # (zarr leaves out chunks that hold only the fill value; compstore writes every one.)
    assert set(_files_under(tmp_path / "theirs")) <= set(_files_under(store.root / store.component_path(digest)))
    ours_array = zarr.open_array(store.root / store.component_path(digest), mode="r")
    assert np.asarray(ours_array[...]).tobytes() == np.asarray(theirs_array[...]).tobytes()


def test_zarr_opens_the_whole_tree_without_warnings(store: LocalBlobStore) -> None:
    digests = [store.put_array(sample_array("<f4", (5, 5), seed=i)) for i in range(20)]
    store.put_document(b"{}")
    store.sync()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        root = zarr.open_group(store.zarr_root, mode="r")
        members = dict(root.members(max_depth=None))
    for d in digests:
        assert isinstance(members[f"{d[:2]}/{d}"], zarr.Array)


def test_xarray_opens_a_fanout_group(store: LocalBlobStore) -> None:
    xr = pytest.importorskip("xarray")
    a = sample_array("<f4", (600, 530))
    digest = store.put_array(a)
    # Another array of a different shape in the same group must not clash.
    others = [store.put_array(sample_array("<i4", (7, n))) for n in range(1, 40)]
    store.sync()
    group = digest[:2]
    ds = xr.open_zarr(store.zarr_root, group=group, consolidated=False)
    assert digest in ds.data_vars
    var = ds[digest]
    assert var.dims == (f"{digest}_0", f"{digest}_1")
    np.testing.assert_array_equal(var.values, a)
    for d in others:
        if d[:2] == group:
            assert d in ds.data_vars


# -- we read what zarr wrote ------------------------------------------------------
def _zarr_write(path: pathlib.Path, array: np.ndarray, **kwargs: object) -> None:
    layout = choose_layout(array.dtype, array.shape)
    codec = layout.compressor
    compressor = (
        BloscCodec(**codec["configuration"])
        if codec["name"] == "blosc"
        else ZstdCodec(**codec["configuration"])
    )
    options: dict[str, object] = {
        "chunks": layout.chunk_shape,
        "compressors": [compressor],
        "fill_value": 0,
    }
    options.update(kwargs)
    z = zarr.create_array(
        store=str(path),
        shape=array.shape,
        dtype=array.dtype,
        **options,  # type: ignore[arg-type]
    )
    z[...] = array


@pytest.mark.parametrize("dtype", ["<f4", ">f4", "<f8", "<c16", "<i2", "|b1", "<u4", "|i1"])
@pytest.mark.parametrize("shape", [(), (17,), (600, 530), (3, 513, 7)], ids=str)
def test_we_read_what_zarr_wrote(store: LocalBlobStore, dtype: str, shape: tuple[int, ...]) -> None:
    array = sample_array(dtype, shape, seed=3)
    # Zero a whole chunk: zarr then skips writing it (write_empty_chunks=False).
    if len(shape) == 2:
        array[:512, :512] = 0
    digest = digest_array(array)
    path = store.zarr_root / digest[:2] / digest
    path.parent.mkdir(exist_ok=True)
    serializer = BytesCodec(endian="big") if dtype.startswith(">") else "auto"
    _zarr_write(path, array, serializer=serializer)
    got = store.get_array(digest)
    assert got.tobytes() == array.tobytes() and got.dtype == array.dtype
    store.verify(digest)
    if shape:
        region = tuple(slice(n // 3, n - n // 5) for n in shape)
        np.testing.assert_array_equal(store.get_array(digest, region), array[region])


@pytest.mark.parametrize("index_location", ["end", "start"])
def test_we_read_zarrs_shards(store: LocalBlobStore, index_location: str) -> None:
    # Several shards, a partial edge shard, and inner chunks zarr leaves out (all zero).
    array = sample_array("<f4", (300, 200))
    array[:100, :100] = 0
    digest = digest_array(array)
    path = store.zarr_root / digest[:2] / digest
    path.parent.mkdir(exist_ok=True)
    sharding = ShardingCodec(chunk_shape=(100, 100), codecs=[BytesCodec(), ZstdCodec(level=3)],
                             index_location=index_location)  # fmt: skip
    z = zarr.create(store=str(path), shape=array.shape, dtype=array.dtype, chunks=(200, 200),
                    fill_value=0, zarr_format=3, codecs=[sharding])  # fmt: skip
    z[...] = array
    assert json.loads((path / "zarr.json").read_bytes())["codecs"][0]["configuration"]["index_location"] == index_location
    assert isinstance(z.metadata.codecs[0], ShardingCodec)
    np.testing.assert_array_equal(store.get_array(digest), array)
    np.testing.assert_array_equal(store.get_array(digest, (slice(50, 250),)), array[50:250])
    np.testing.assert_array_equal(store.get_array(digest, (slice(10, 20), slice(150, 160))), array[10:20, 150:160])
    assert store.array_info(digest).shape == (300, 200)


def test_other_zarr_codecs_fall_back_to_zarr(store: LocalBlobStore) -> None:
    array = sample_array("<f4", (300, 200))
    digest = digest_array(array)
    path = store.zarr_root / digest[:2] / digest
    path.parent.mkdir(exist_ok=True)
    z = zarr.create_array(store=str(path), shape=array.shape, dtype=array.dtype, chunks=(100, 100),
                          compressors=[Crc32cCodec()], fill_value=0)  # fmt: skip
    z[...] = array
    np.testing.assert_array_equal(store.get_array(digest), array)
    np.testing.assert_array_equal(store.get_array(digest, (slice(50, 250),)), array[50:250])
    assert store.array_info(digest).shape == (300, 200)
    assert store._meta[digest] is None  # read through zarr itself


# -- reads touch only what they need ---------------------------------------------
def _stored_shard(store: LocalBlobStore, array: np.ndarray) -> tuple[str, pathlib.Path, bytearray]:
    """Put a compressed array; return its digest, its shard file and the file's bytes."""
    digest = store.put_array(array)
    store.sync()
    shard = store.root / store.component_path(digest) / "c.0.0"
    return digest, shard, bytearray(shard.read_bytes())


def test_region_reads_only_overlapping_chunks(store: LocalBlobStore) -> None:
    # A compressed plane is one shard of 256x256 chunks; damage every inner chunk
    # but (2, 4) in place: a cutout inside it still reads, a whole read fails.
    array = (sample_array("<i4", (2048, 2048)) & 0xFF).astype("<i4")
    digest, shard, data = _stored_shard(store, array)
    index = np.frombuffer(bytes(data[-(16 * 64 + 4) : -4]), dtype="<u8").reshape(8, 8, 2)
    for i in range(8):
        for j in range(8):
            if (i, j) != (2, 4):
                offset, nbytes = (int(v) for v in index[i, j])
                data[offset : offset + nbytes] = b"\xff" * nbytes
    shard.write_bytes(bytes(data))
    np.testing.assert_array_equal(
        store.get_array(digest, (slice(600, 700), slice(1100, 1200))), array[600:700, 1100:1200]
    )
    with pytest.raises(CorruptBlobError, match=digest):
        store.get_array(digest)
    with pytest.raises(CorruptBlobError):
        store.verify(digest)


def test_a_chunk_decoding_to_too_few_bytes_is_corrupt_not_stale(store: LocalBlobStore) -> None:
    # Inner chunk (2, 4) is swapped for a well-formed blosc chunk of a quarter of
    # its size (index and crc32c rewritten to match). A cut-out of it must fail,
    # not return what a cut-out of (2, 3) left in the decoding buffer before.
    import google_crc32c
    import numcodecs

    array = (sample_array("<i4", (2048, 2048)) & 0xFF).astype("<i4")
    digest, shard, data = _stored_shard(store, array)
    index = np.frombuffer(bytes(data[-(16 * 64 + 4) : -4]), dtype="<u8").reshape(8, 8, 2)
    chunks = [bytes(data[int(o) : int(o) + int(n)]) for o, n in index.reshape(64, 2)]
    codec = numcodecs.Blosc(cname="blosclz", shuffle=numcodecs.Blosc.NOSHUFFLE, typesize=4)
    chunks[2 * 8 + 4] = codec.encode(np.ascontiguousarray(array[512:640, 1024:1152]))
    offsets = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    new_index = np.stack([offsets, [len(c) for c in chunks]], axis=1).astype("<u8").tobytes()
    crc = google_crc32c.value(new_index).to_bytes(4, "little")
    shard.write_bytes(b"".join(chunks) + new_index + crc)
    np.testing.assert_array_equal(
        store.get_array(digest, (slice(600, 700), slice(800, 900))), array[600:700, 800:900]
    )
    with pytest.raises(CorruptBlobError, match=digest):
        store.get_array(digest, (slice(600, 700), slice(1100, 1200)))


@pytest.mark.parametrize("codec_name", ["blosc", "zstd"])
def test_decode_chunk_into_out_refuses_a_chunk_of_another_size(codec_name: str) -> None:
    # numcodecs fills only the first bytes of a too-big output and leaves the rest.
    import numcodecs

    from compstore.cas._zarrfmt import decode_chunk

    codec = numcodecs.Blosc() if codec_name == "blosc" else numcodecs.Zstd(level=1)
    short = codec.encode(np.arange(8, dtype="<i4"))
    out = np.full(32, 7, dtype="<i4")
    with pytest.raises(ValueError, match="expected 128"):
        decode_chunk(short, (codec,), (32,), np.dtype("<i4"), out=out)
    right = codec.encode(np.arange(32, dtype="<i4"))
    np.testing.assert_array_equal(decode_chunk(right, (codec,), (32,), np.dtype("<i4"), out=out), np.arange(32))
    for into in (out, None):  # cut short (zstd: numcodecs' own error), into out or not
        with pytest.raises((ValueError, RuntimeError)):
            decode_chunk(right[:-1], (codec,), (32,), np.dtype("<i4"), out=into)
    if codec_name == "blosc":  # refused from its header, before numcodecs reads it
        with pytest.raises(ValueError, match="cut short"):
            decode_chunk(right[:-1], (codec,), (32,), np.dtype("<i4"))


def test_damaged_shard_index_is_corrupt(store: LocalBlobStore) -> None:
    digest, shard, data = _stored_shard(store, (sample_array("<i4", (1024, 1024)) & 0xF).astype("<i4"))
    data[-10] ^= 0xFF  # inside the index: its crc32c no longer matches
    shard.write_bytes(bytes(data))
    with pytest.raises(CorruptBlobError, match="crc32c"):
        store.get_array(digest, (slice(0, 10), slice(0, 10)))
    shard.write_bytes(bytes(data[:100]))  # too short to hold its index
    with pytest.raises(CorruptBlobError, match="index"):
        store.get_array(digest)


def test_raw_chunk_of_the_wrong_size_is_corrupt(store: LocalBlobStore) -> None:
    array = sample_array("<f4", (1024, 1024))
    digest = store.put_array(array)
    store.sync()
    chunk = store.root / store.component_path(digest) / "c.0.0"
    chunk.write_bytes(chunk.read_bytes()[:-4])
    store._meta.clear()
    for region in (None, (slice(5, 10), slice(5, 10))):
        with pytest.raises(CorruptBlobError, match=digest):
            store.get_array(digest, region)
    chunk.write_bytes(array.tobytes() + b"\0\0\0\0")
    with pytest.raises(CorruptBlobError, match=digest):
        store.get_array(digest)


def test_big_array_parallel_paths(store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from compstore.cas import _zarrio, _zarrwrite

    calls: list[tuple[int, bool]] = []
    real_map = _zarrio.parallel_map

    def spy(fn, items, parallel):  # type: ignore[no-untyped-def]
        items = list(items)
        calls.append((len(items), parallel))
        return real_map(fn, items, parallel)

    monkeypatch.setattr(_zarrio, "parallel_map", spy)  # decoding
    monkeypatch.setattr(_zarrwrite, "parallel_map", spy)  # encoding
    array = sample_array("<f4", (2100, 2100))
    digest = store.put_array(array)
    np.testing.assert_array_equal(store.get_array(digest), array)
    np.testing.assert_array_equal(store.get_array(digest, (slice(1, 2099, 3),)), array[1:2099:3])
    mask = sample_array("<i4", (2100, 2100)) & 0x3
    calls.clear()
    np.testing.assert_array_equal(store.get_array(store.put_array(mask)), mask)
    # The mask's 81 inner chunks were encoded, then decoded in batches, on the pool.
    assert (81, True) in calls and any(n > 1 and parallel for n, parallel in calls[1:])


# -- corruption -------------------------------------------------------------------
def test_verify_catches_silent_corruption(store: LocalBlobStore) -> None:
    array = np.zeros((100, 100), dtype="<i4")
    digest = store.put_array(array)
    doc = store.put_document(b'{"a":1}')
    store.sync()
    store.verify(digest)
    # Replace the chunk with a valid encoding of other data: decodes fine, hashes wrong.
    other = LocalBlobStore(store.root.parent / "other", fsync=False)
    od = other.put_array(np.ones((100, 100), dtype="<i4"))
    chunk = "c.0.0"
    (store.root / store.component_path(digest) / chunk).write_bytes(
        (other.root / other.component_path(od) / chunk).read_bytes()
    )
    store._meta.clear()
    with pytest.raises(CorruptBlobError, match=digest):
        store.verify(digest)
    (store.root / f"documents/{doc[:2]}/{doc}.json").write_bytes(b'{"a":2}')
    with pytest.raises(CorruptBlobError, match=doc):
        store.verify(doc)


def test_bad_zarr_json_is_corrupt(store: LocalBlobStore) -> None:
    digest = store.put_array(np.zeros(3))
    store.sync()
    (store.root / store.component_path(digest) / "zarr.json").write_bytes(b"{not json")
    with pytest.raises(CorruptBlobError):
        LocalBlobStore(store.root).get_array(digest)


# -- durability and concurrency ---------------------------------------------------
def test_unsynced_puts_are_staged(tmp_path: pathlib.Path) -> None:
    writer = LocalBlobStore(tmp_path / "b")
    reader = LocalBlobStore(tmp_path / "b")
    a = writer.put_array(sample_array("<f4", (30, 30)))
    d = writer.put_document(b"[]")
    # Visible to the writer, not yet under a final name.
    assert writer.has_array(a) and writer.has_document(d)
    assert not reader.has_array(a) and not reader.has_document(d)
    assert not (writer.root / writer.component_path(a)).exists()
    writer.sync()
    assert reader.has_array(a) and reader.has_document(d)
    np.testing.assert_array_equal(reader.get_array(a), writer.get_array(a))
    writer.close()
    assert list((tmp_path / "b" / "staging").iterdir()) == []
    assert not [p for p in (tmp_path / "b").rglob("*") if "partial" in p.name]


def test_no_fsync_publishes_at_once(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    writer = LocalBlobStore(tmp_path / "b", fsync=False)
    a = writer.put_array(sample_array("<f4", (30, 30)))
    d = writer.put_document(b"[]")
    reader = LocalBlobStore(tmp_path / "b", fsync=False)
    assert reader.has_array(a) and reader.has_document(d)
    writer.sync()
    assert calls == []


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths fsynced from now on, in order (``os.fsync`` spied on)."""
    paths: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return paths


def test_sync_fsyncs_files_and_directories(tmp_path: pathlib.Path, synced: list[str]) -> None:
    store = LocalBlobStore(tmp_path / "b")
    synced.clear()  # what creating the store synced
    a = store.put_array(sample_array("<f4", (600, 600)))
    d = store.put_document(b"{}")
    assert synced == []  # puts never fsync: sync batches them
    store.sync()
    final = str(store.root / store.component_path(a))
    # Content was synced before the rename, under its staging name; the directory
    # that gained the final name is synced after.
    staged = [p for p in synced if "/staging/" in p]
    assert sum(p.endswith("/zarr.json") for p in staged) == 1
    assert sum("/c." in p for p in staged) == 1  # one data file, directly in the array folder
    assert os.path.dirname(final) in synced
    assert str(store.root / "documents" / d[:2]) in synced
    synced.clear()
    store.sync()
    assert synced == []


def test_put_new_array_fsyncs_its_zarr_json_and_data(tmp_path: pathlib.Path, synced: list[str]) -> None:
    # zarr.json is written after the data (it names the digest): it must be synced too.
    store = LocalBlobStore(tmp_path / "b")
    synced.clear()  # what creating the store synced
    digest, stored = store.put_new_array(sample_array("<f4", (1100, 600)))
    assert stored and synced == []
    store.sync()
    staged = [p for p in synced if "/staging/" in p]
    assert sum(p.endswith("/zarr.json") for p in staged) == 1
    assert sum("/c." in p for p in staged) == 1
    assert os.path.dirname(str(store.root / store.component_path(digest))) in synced


@pytest.mark.parametrize("fsync", [False, True])
def test_put_new_array_racing_a_writer_of_the_same_array(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    # Two threads both find the array absent (has_array answers False for both):
    # one stores it and says so, the other removes its copy and says it did not.
    store = LocalBlobStore(tmp_path / "b", fsync=fsync)
    monkeypatch.setattr(store, "has_array", lambda digest: False)
    array = sample_array("<f4", (1100, 600))  # raw: hashed 256 KiB at a time while written
    first = store.put_new_array(array)
    second = store.put_new_array(array.copy())
    assert first == (digest_array(array), True)
    assert second == (first[0], False)
    store.close()
    assert list((tmp_path / "b" / "staging").iterdir()) == []  # no copy left behind
    reopened = LocalBlobStore(tmp_path / "b")
    assert list(reopened.iter_arrays()) == [first[0]]
    data = reopened.root / reopened.component_path(first[0]) / "c.0.0"
    assert data.stat().st_size == array.nbytes  # stored raw, from the block loop
    np.testing.assert_array_equal(reopened.get_array(first[0]), array)


def test_put_new_array_failure_leaves_no_temporary_folder(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import compstore.cas._local as local

    store = LocalBlobStore(tmp_path / "b", fsync=False)

    def broken(*args: object, **kwargs: object) -> None:
        raise MemoryError("no room to copy the array (test)")

    monkeypatch.setattr(local, "write_array_data", broken)
    with pytest.raises(MemoryError):
        store.put_new_array(sample_array("<f4", (1100, 600)))
    leftovers = [p for p in (tmp_path / "b" / "staging").rglob("*") if p.name.startswith("new.")]
    assert leftovers == []


def test_two_writers_same_component(tmp_path: pathlib.Path) -> None:
    one = LocalBlobStore(tmp_path / "b")
    two = LocalBlobStore(tmp_path / "b")
    array = sample_array("<f4", (700, 700))
    a1 = one.put_array(array)
    a2 = two.put_array(array)
    d1 = one.put_document(b"x")
    d2 = two.put_document(b"x")
    one.sync()
    two.sync()  # the target appeared meanwhile: two discards its copy
    assert (a1, d1) == (a2, d2)
    np.testing.assert_array_equal(two.get_array(a1), array)
    one.close()
    two.close()
    assert list((tmp_path / "b" / "staging").iterdir()) == []
    assert list(LocalBlobStore(tmp_path / "b").iter_arrays()) == [a1]


def test_concurrent_threads(store: LocalBlobStore) -> None:
    arrays = [sample_array("<i4", (300, 300), seed=i % 3) for i in range(12)]
    errors: list[BaseException] = []

    def work(a: np.ndarray) -> None:
        try:
            d = store.put_array(a)
            np.testing.assert_array_equal(store.get_array(d), a)
            store.sync()
            np.testing.assert_array_equal(store.get_array(d), a)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(a,)) for a in arrays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store.sync()
    assert len(list(store.iter_arrays())) == 3


def test_reopen_reads_back(tmp_path: pathlib.Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    array = sample_array(">f8", (40, 50))
    a = store.put_array(array)
    store.close()
    again = LocalBlobStore(tmp_path / "b")
    got = again.get_array(a)
    assert got.dtype == np.dtype(">f8") and digest_array(got) == a
    info = again.array_info(a)
    assert info.nbytes == array.nbytes and info.stored_bytes > 0


def test_strays_are_ignored(store: LocalBlobStore) -> None:
    a = store.put_array(np.zeros(3))
    d = store.put_document(b"1")
    store.sync()
    (store.zarr_root / a[:2] / f"{a}.abc.partial").mkdir()
    (store.zarr_root / a[:2] / "junk").mkdir()
    (store.root / "documents" / d[:2] / f"{d}.json.abc.partial").write_bytes(b"")
    (store.root / "documents" / d[:2] / "README").write_bytes(b"")
    assert list(store.iter_arrays()) == [a]
    assert list(store.iter_documents()) == [d]


def test_floats_that_do_not_compress_are_stored_raw(store: LocalBlobStore) -> None:
    """A noisy image is stored without a compressor; a smooth one compressed; both read back."""
    rng = np.random.default_rng(1)
    noisy = rng.normal(1000.0, 30.0, (1024, 1024)).astype(np.float32)
    smooth = np.repeat(np.arange(1024, dtype=np.float32)[:, None], 1024, axis=1)  # a flat field
    for array, raw in ((noisy, True), (smooth, False)):
        digest = store.put_array(array)
        store.sync()
        folder = store.root / store.component_path(digest)
        meta = json.loads((folder / "zarr.json").read_bytes())
        if raw:  # one chunk: the file is the array's bytes
            assert meta["codecs"] == [{"name": "bytes", "configuration": {"endian": "little"}}]
            assert (folder / "c.0.0").read_bytes() == array.tobytes()
        else:  # one shard of compressed 512x512 chunks
            (sharding,) = meta["codecs"]
            assert sharding["name"] == "sharding_indexed"
            assert sharding["configuration"]["codecs"][1]["name"] == "blosc"
        # compstore.sums: checksums of its parts, for cut-outs (docs/format.md, "Checksums")
        assert sorted(p.name for p in folder.iterdir()) == ["c.0.0", "compstore.sums", "zarr.json"]
        np.testing.assert_array_equal(store.get_array(digest), array)
        np.testing.assert_array_equal(zarr.open_array(str(store.root / store.component_path(digest)))[:], array)


@pytest.mark.parametrize(
    "region",
    [
        (slice(100, 200), slice(300, 400)),  # inside one chunk: rows read alone
        (slice(500, 530), slice(500, 530)),  # across four chunks
        (slice(0, 10), slice(1000, 1024)),  # an edge chunk
        (slice(7, 900), slice(3, 1020)),  # large: whole chunks read
        (slice(10, 60, 3), slice(0, 100, 7)),  # steps
        (slice(None), slice(1023, 1024)),  # one column
    ],
    ids=str,
)
def test_raw_region_reads_equal_slicing(store: LocalBlobStore, region: tuple[slice, slice]) -> None:
    noisy = np.random.default_rng(2).normal(0.0, 1.0, (1024, 1030)).astype(np.float32)
    digest = store.put_array(noisy)
    store.sync()
    meta = json.loads((store.root / store.component_path(digest) / "zarr.json").read_bytes())
    assert len(meta["codecs"]) == 1  # stored raw
    np.testing.assert_array_equal(store.get_array(digest, region), noisy[region])


def test_make_fanout(tmp_path: pathlib.Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.make_fanout()
    root = store.root
    prefixes = [f"{i:02x}" for i in range(256)]
    assert sorted(p.name for p in (root / "arrays").iterdir() if p.is_dir()) == prefixes
    assert sorted(p.name for p in (root / "documents").iterdir()) == prefixes
    for prefix in prefixes:
        assert json.loads((root / "arrays" / prefix / "zarr.json").read_bytes())["node_type"] == "group"
    store.make_fanout()  # again: nothing changes
    d = store.put_array(sample_array("<f4", (5, 5)))
    store.sync()
    assert list(store.iter_arrays()) == [d]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        members = dict(zarr.open_group(store.zarr_root, mode="r").members(max_depth=None))
    assert isinstance(members[f"{d[:2]}/{d}"], zarr.Array)


def test_an_array_read_from_its_folder_is_found_again_after_it_moves(tmp_path: pathlib.Path) -> None:
    # A reader remembers that an array lives in a folder; another store object
    # deletes that folder and stores the array again, now in a pack. The reader
    # must find it there; an array deleted outright reads as missing.
    from compstore.errors import BlobNotFoundError

    array, gone = sample_array("<f4", (64, 64)), sample_array("<i4", (8, 8))
    root = tmp_path / "blobs"
    LocalBlobStore(root, packs=True).close()  # a format-2 layout (packs index made)
    with LocalBlobStore(root, packs=False) as folders:
        digest, gone_digest = folders.put_array(array), folders.put_array(gone)  # small, but folders
    reader, other = LocalBlobStore(root, packs=True), LocalBlobStore(root, packs=True)
    np.testing.assert_array_equal(reader.get_array(digest), array)
    np.testing.assert_array_equal(reader.get_array(gone_digest), gone)
    assert (root / reader.component_path(digest)).is_dir()
    lookups: list[str] = []
    index = reader._index
    assert index is not None
    real_lookup = index.lookup
    index.lookup = lambda d: lookups.append(d) or real_lookup(d)  # type: ignore[method-assign]
    np.testing.assert_array_equal(reader.get_array(digest, (slice(0, 3), slice(0, 3))), array[:3, :3])
    assert lookups == []  # read from its folder again: no pack-index query
    other.delete(digest)
    other.put_array(array)
    other.sync()
    assert not (root / "arrays" / digest[:2] / digest).exists()  # packed this time
    np.testing.assert_array_equal(reader.get_array(digest, (slice(1, 5), slice(2, 9))), array[1:5, 2:9])
    other.delete(gone_digest)
    with pytest.raises(BlobNotFoundError, match=gone_digest):
        reader.get_array(gone_digest)
