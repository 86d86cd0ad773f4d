"""What S3BlobStore operations cost on the wire: requests and bytes, counted by the server.

The S3 server (compstore.testing.s3.S3Server) records every request it
answers; these tests pin the counts docs/object-storage.md quotes.
"""

from __future__ import annotations

import numpy as np
import pytest

from compstore.cas import S3BlobStore
from compstore.testing.blobstore import sample_array


@pytest.fixture
def new_store(s3_server, s3_bucket):
    """A factory of S3BlobStore objects on one bucket and prefix (a fresh object: empty caches)."""

    def make() -> S3BlobStore:
        return S3BlobStore(s3_bucket, "costs", **s3_server.store_options())

    return make


def _cost(server, call):
    """Run ``call()``; return its result and the (method, range, bytes sent) of each request."""
    server.clear_requests()
    result = call()
    return result, [(r.method, r.range, r.sent) for r in server.requests]


def _data_gets(requests):
    return [(rng, sent) for method, rng, sent in requests if method == "GET" and rng]


def test_cutout_of_a_sharded_plane_reads_only_its_inner_chunks(s3_server, new_store) -> None:
    # An int plane is stored as one shard of 256x256 compressed inner chunks (16 of them).
    array = sample_array("<i4", (1024, 1024), seed=5)
    digest = new_store().put_array(array)
    stored = new_store().stored_bytes(digest)
    store = new_store()
    region = (slice(300, 400), slice(300, 400))  # inside inner chunk (1, 1)
    got, requests = _cost(s3_server, lambda: store.get_array(digest, region))
    assert np.array_equal(got, array[region])
    # zarr.json, compstore.sums, the shard index (a suffix range), the one inner chunk.
    assert [m for m, _, _ in requests] == ["GET"] * 4
    (index_range, index_bytes), (chunk_range, chunk_bytes) = _data_gets(requests)
    assert index_range.startswith("bytes=-") and index_bytes == 4 * 4 * 16 + 4  # + crc32c
    assert chunk_range.startswith("bytes=") and not chunk_range.startswith("bytes=-")
    inner_chunk = 256 * 256 * 4  # random int32 does not compress: about its raw size
    assert inner_chunk <= chunk_bytes < 1.01 * inner_chunk
    assert sum(sent for _, _, sent in requests) < stored / 15
    # Again, with zarr.json, sums and index known: one ranged GET.
    got, requests = _cost(s3_server, lambda: store.get_array(digest, (slice(800, 900),) * 2))
    assert np.array_equal(got, array[800:900, 800:900])
    assert len(requests) == 1 and _data_gets(requests)[0][1] < 1.01 * inner_chunk


def test_cutout_of_a_raw_plane_reads_the_rows_of_its_checksum_tiles(s3_server, new_store) -> None:
    # A float plane of noise is stored raw (C order); a cut-out is checked by 128x128 tiles,
    # so it reads the rows of the tiles meeting it: one ranged GET (rows merged by obstore).
    array = sample_array("<f4", (2048, 2048), seed=6)
    digest = new_store().put_array(array)
    store = new_store()
    region = (slice(300, 400), slice(1000, 1100))  # tile rows 2-3, tile columns 7-8
    got, requests = _cost(s3_server, lambda: store.get_array(digest, region))
    assert np.array_equal(got, array[region])
    assert [m for m, _, _ in requests] == ["GET"] * 3  # zarr.json, compstore.sums, data
    [(rng, sent)] = _data_gets(requests)
    row = 2048 * 4
    first, last = 256 * row + 896 * 4, (511 * row + 1152 * 4) - 1
    assert rng == f"bytes={first}-{last}" and sent == last - first + 1
    assert sent < array.nbytes / 8


def test_full_get_put_and_documents(s3_server, new_store) -> None:
    array = sample_array("<f4", (1024, 1024), seed=7)
    store = new_store()
    digest, requests = _cost(s3_server, lambda: store.put_array(array))
    # HEAD zarr.json (absent), the two groups' zarr.json (first time in this process),
    # data file, compstore.sums, then zarr.json by conditional PUT.
    assert [m for m, _, _ in requests] == ["HEAD", "PUT", "PUT", "PUT", "PUT", "PUT"]
    _, requests = _cost(s3_server, lambda: store.put_array(array))
    assert [m for m, _, _ in requests] == ["HEAD"]  # present: nothing written
    fresh = new_store()
    got, requests = _cost(s3_server, lambda: fresh.get_array(digest))
    assert np.array_equal(got, array)
    assert [(m, rng) for m, rng, _ in requests] == [("GET", ""), ("GET", "")]
    assert requests[1][2] == array.nbytes  # zarr.json, then the raw data file whole
    _, requests = _cost(s3_server, lambda: fresh.get_array(digest))
    assert [m for m, _, _ in requests] == ["GET"]  # zarr.json is cached
    doc, requests = _cost(s3_server, lambda: store.put_document(b'{"a":1}'))
    assert [m for m, _, _ in requests] == ["PUT"]
    assert _cost(s3_server, lambda: store.put_document(b'{"a":1}'))[1][0][0] == "PUT"  # 412
    data, requests = _cost(s3_server, lambda: store.get_document(doc))
    assert data == b'{"a":1}' and [m for m, _, _ in requests] == ["GET"]


def test_cutout_of_a_small_array_is_one_whole_checked_read(s3_server, new_store) -> None:
    # Under 1 MiB there is no compstore.sums: the cut-out reads the array whole and checks
    # its digest, and does not ask for the sums file either.
    array = sample_array("<f4", (300, 300), seed=8)
    digest = new_store().put_array(array)
    store = new_store()
    got, requests = _cost(s3_server, lambda: store.get_array(digest, (slice(10, 20),) * 2))
    assert np.array_equal(got, array[10:20, 10:20])
    assert [(m, rng) for m, rng, _ in requests] == [("GET", ""), ("GET", "")]
    # All it has: zarr.json and the data file (compressed: small float planes compress).
    assert requests[0][2] + requests[1][2] == store.stored_bytes(digest)


def test_a_stored_big_document_is_not_uploaded_again(s3_server, new_store) -> None:
    data = bytes(range(256)) * (8 << 10)  # 2 MiB
    store = new_store()
    digest, requests = _cost(s3_server, lambda: store.put_document(data))
    assert [m for m, _, _ in requests] == ["HEAD", "PUT"]
    assert _cost(s3_server, lambda: store.put_document(data))[1] == [("HEAD", "", 0)]
    assert store.get_document(digest) == data
