"""Flip single bytes of a repository's objects in a bucket: never a silent wrong read, never a traceback.

The object-storage counterpart of ``test_flips.py`` (issues 12 and 17). The
repository (``s3://``, on the session's S3 server) holds two 512x512
exposures and their catalogs, so the bucket has every kind of object a
repository on object storage has: raw data files, shard data and indexes,
``compstore.sums``, array ``zarr.json``, packs (documents -- Wcs, Calib,
manifests, catalog metadata -- and small arrays) and the repository's config. Each flip overwrites one
object with one byte XORed, reads every dataset (whole, and each exposure as a
cut-out) through a new Butler, restores the object, and classifies each read
as ``error`` (a `CompstoreError`), ``same``, ``wrong`` (bad) or
``traceback`` (bad).
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any


from compstore import Butler
from compstore.objects import Box2I
from compstore.testing.repository import FlipTally, read_everything
from compstore.testing.sky import make_catalog, make_exposure

#: Flips per kind of object at scale 1.
FLIPS = {
    "raw data": 40,
    "shard data": 25,
    "shard index": 25,
    "sums": 25,
    "array zarr.json": 35,
    "pack": 60,  # documents (Wcs, Calib, manifests...) and small arrays, packed (format 2.3)
    "config": 10,
}
DATA_IDS = [(1, 0), (2, 1)]


def _reads(url: str) -> dict[str, Any]:
    from compstore import _repository

    _repository._registries.clear()  # as a new process: the registry's owner is checked again
    return read_everything(lambda: Butler(url, collections="sfm"), DATA_IDS,
                           Box2I((100, 150), (60, 50)))  # fmt: skip


def test_flipped_bytes_in_a_bucket_never_read_silently_wrong(
    s3_server, s3_bucket, tmp_path: Path, monkeypatch, reliability_scale, reliability_counts
) -> None:
    import obstore
    from obstore.store import S3Store

    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    url = f"s3://{s3_bucket}/flips"
    Butler.create(url, registry=str(tmp_path / "registry.sqlite3"))
    butler = Butler(url, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit, detector in DATA_IDS:
        exposure = make_exposure(visit, detector, size=512)
        butler.put(exposure, "calexp", visit=visit, detector=detector)
        butler.put(make_catalog(exposure), "src", visit=visit, detector=detector)
    expected = _reads(url)
    assert all(isinstance(v, str) for v in expected.values()), expected

    bucket = S3Store(s3_bucket, prefix="flips", config=s3_server.store_options() | {},
                     client_options={"allow_http": True})
    objects = {o["path"]: o["size"] for batch in obstore.list(bucket) for o in batch}
    kinds: dict[str, list[tuple[str, int, int]]] = collections.defaultdict(list)
    for key, size in objects.items():
        if key == "compstore.json":
            kinds["config"].append((key, 0, size))
        elif key.startswith("blobs/documents/"):
            kinds["document"].append((key, 0, size))
        elif key.startswith("blobs/packs/"):
            kinds["pack"].append((key, 0, size))
        elif key.endswith("/zarr.json") and key.count("/") == 4:  # blobs/arrays/ab/<digest>/
            kinds["array zarr.json"].append((key, 0, size))
            meta = json.loads(bytes(obstore.get(bucket, key).bytes()))
            data = key.rsplit("/", 1)[0] + "/c.0.0"
            if data not in objects:
                continue
            n = objects[data]
            if meta["codecs"][0]["name"] == "sharding_indexed":
                inner = meta["codecs"][0]["configuration"]["chunk_shape"]
                grid = 1
                for a, c in zip(meta["shape"], inner):
                    grid *= -(-a // c)
                index = 16 * grid + 4
                kinds["shard data"].append((data, 0, n - index))
                kinds["shard index"].append((data, n - index, n))
            else:
                kinds["raw data"].append((data, 0, n))
        elif key.endswith("/compstore.sums"):
            kinds["sums"].append((key, 0, size))
    for kind in FLIPS:
        assert kinds[kind], f"the bucket has no {kind} to flip"

    rng = random.Random(17)
    flips = []
    for kind, ranges in sorted(kinds.items()):
        weights = [end - first for _, first, end in ranges]
        for _ in range(FLIPS.get(kind, 25) * reliability_scale):
            key, first, end = rng.choices(ranges, weights)[0]
            flips.append((kind, key, rng.randrange(first, end)))

    tally = FlipTally(expected)
    counts = tally.counts
    for kind, key, offset in flips:
        original = bytes(obstore.get(bucket, key).bytes())
        damaged = bytearray(original)
        damaged[offset] ^= rng.randrange(1, 256)
        obstore.put(bucket, key, bytes(damaged))
        try:
            got = _reads(url)
        finally:
            obstore.put(bucket, key, original)
        tally.add(kind, f"{key}@{offset}", got)
    assert _reads(url) == expected  # every object restored
    reliability_counts(
        "s3 flips", flips=counts["flips"], damaging=counts["damaging"],
        silent_wrong=counts["silent_wrong"], tracebacks=counts["tracebacks"],
        **tally.by_kind_figures(),
    )
    assert counts["flips"] >= 200 * reliability_scale, counts
    assert not tally.bad, "\n".join(tally.bad[:30])
