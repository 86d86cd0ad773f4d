"""Flip single bytes of a small repository's files: never a silent wrong read, never a traceback.

Issue 12, item 3. The repository holds two exposures (512x512: raw float
planes and a one-shard mask as array folders with their ``compstore.sums``)
and their catalogs (columns packed), so every kind of stored file is there:
raw chunks, shard data and indexes, ``compstore.sums``, array ``zarr.json``,
packs (packed arrays, documents, manifests, zip headers) and ``packs.sqlite3``.
For each flip (one byte XORed with a random non-zero value, restored after)
every dataset is read whole and each exposure as a cut-out, in a new Butler
with its caches empty, and each read is classified:

- ``error``: a `CompstoreError` (good: the damage is reported);
- ``same``: the very values read before the flip (fine: an unused byte);
- ``wrong``: other values, silently (bad);
- ``traceback``: any other exception (bad).

Every flip that changed what a read gives (an error or a wrong read) is a
damaging one: ``verify(deep=True)`` must then report a problem naming one of
the datasets it broke.
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from compstore import Butler
from compstore.errors import CompstoreError
from compstore.objects import Box2I
from compstore.testing.repository import FlipTally, copy_repository, read_everything
from compstore.testing.sky import make_catalog, make_exposure

#: Flips per kind of file at scale 1 (536 in all when every kind is present; the
#: sample repository packs every document, so "document" finds no file: 516).
FLIPS = {
    "raw chunk": 90,
    "shard data": 50,
    "shard index": 40,
    "sums": 50,
    "array zarr.json": 70,
    "pack": 160,
    "document": 20,
    "packs.sqlite3": 56,
}
DATA_IDS = [(1, 0), (2, 1)]


def _reads(root: Path) -> dict[str, Any]:
    """Every read of the flip test: name -> fingerprint, or ("error"/"traceback", text)."""
    opened: list[Butler] = []

    def open_butler() -> Butler:
        opened.append(Butler(root, collections="sfm"))
        return opened[-1]

    try:
        return read_everything(open_butler, DATA_IDS, Box2I((100, 150), (60, 50)))
    finally:
        for butler in opened:
            butler.registry.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flips") / "template"
    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit, detector in DATA_IDS:
        exposure = make_exposure(visit, detector, size=512)
        # xy0 is (0, 0): the cut-out box of _reads lies inside.
        assert tuple(exposure.xy0) == (0, 0)
        butler.put(exposure, "calexp", visit=visit, detector=detector)
        butler.put(make_catalog(exposure), "src", visit=visit, detector=detector)
    butler.registry.close()
    return root


def _targets(blobs: Path) -> dict[str, list[tuple[Path, int, int]]]:
    """Kind -> (file, first, end) byte ranges of the blob store to flip in."""
    kinds: dict[str, list[tuple[Path, int, int]]] = collections.defaultdict(list)
    for meta_path in blobs.glob("arrays/*/*/zarr.json"):
        folder = meta_path.parent
        kinds["array zarr.json"].append((meta_path, 0, meta_path.stat().st_size))
        meta = json.loads(meta_path.read_bytes())
        data = folder / "c.0.0"
        if not data.exists():
            continue
        size = data.stat().st_size
        if meta["codecs"][0]["name"] == "sharding_indexed":
            inner = meta["codecs"][0]["configuration"]["chunk_shape"]
            grid = [-(-n // c) for n, c in zip(meta["shape"], inner)]
            index = 16 * int(np.prod(grid)) + 4
            kinds["shard data"].append((data, 0, size - index))
            kinds["shard index"].append((data, size - index, size))
        else:
            kinds["raw chunk"].append((data, 0, size))
        sums = folder / "compstore.sums"
        if sums.exists():
            kinds["sums"].append((sums, 0, sums.stat().st_size))
    for pack in blobs.glob("packs/*/*.zip"):
        kinds["pack"].append((pack, 0, pack.stat().st_size))
    for doc in blobs.glob("documents/*/*.json"):
        kinds["document"].append((doc, 0, doc.stat().st_size))
    index = blobs / "packs.sqlite3"
    if index.exists():
        kinds["packs.sqlite3"].append((index, 0, index.stat().st_size))
    return kinds


def test_flipped_bytes_never_read_silently_wrong(template, tmp_path, reliability_scale,
                                                 reliability_counts) -> None:  # fmt: skip
    root = copy_repository(template, tmp_path / "repo")  # SQLite checkpointed: no -wal
    blobs = root / "blobs"
    expected = _reads(root)
    assert all(isinstance(v, str) for v in expected.values()), expected
    targets = _targets(blobs)
    for kind in ("raw chunk", "shard data", "shard index", "sums", "array zarr.json", "pack"):
        assert targets[kind], f"the repository has no {kind} to flip"
    rng = random.Random(12)
    flips: list[tuple[str, Path, int]] = []
    for kind, ranges in sorted(targets.items()):
        weights = [end - first for _, first, end in ranges]
        for _ in range(FLIPS[kind] * reliability_scale):
            path, first, end = rng.choices(ranges, weights)[0]
            flips.append((kind, path, rng.randrange(first, end)))

    tally = FlipTally(expected)
    counts, bad = tally.counts, tally.bad
    for kind, path, offset in flips:
        original = path.read_bytes()
        damaged = bytearray(original)
        damaged[offset] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(damaged))
        try:
            outcomes = tally.add(kind, f"{path.name}@{offset}", _reads(root))
            if any(o != "same" for o in outcomes.values()):
                named = _verify_names(root, outcomes)
                counts["verify_named" if named else "verify_missed"] += 1
                if not named:
                    bad.append(f"{kind} {path.name}@{offset}: verify missed {outcomes}")
        finally:
            path.write_bytes(original)
    assert _reads(root) == expected  # every file restored

    reliability_counts(
        "flips",
        flips=counts["flips"],
        damaging=counts["damaging"],
        silent_wrong=counts["silent_wrong"],
        tracebacks=counts["tracebacks"],
        verify_named=counts["verify_named"],
        verify_missed=counts["verify_missed"],
        **tally.by_kind_figures(),
    )
    assert counts["flips"] >= 500 * reliability_scale, counts  # the minimum, per scale
    assert not bad, "\n".join(bad[:30])
    assert counts["silent_wrong"] == 0 and counts["tracebacks"] == 0
    assert counts["verify_missed"] == 0


def _verify_names(root: Path, outcomes: dict[str, str]) -> bool:
    """Whether ``verify(deep=True)`` reports a problem naming a dataset the flip broke."""
    broken = {(int(k.split()[-2]), int(k.split()[-1])) for k, o in outcomes.items()
              if o != "same" and k != "open"}  # fmt: skip
    try:
        butler = Butler(root)
    except CompstoreError:
        # The repository cannot be opened at all: that is the report (the CLI prints
        # it, exit status non-zero), if the reads could not open it either.
        return "open" in outcomes
    try:
        report = butler.verify(deep=True)
    except Exception:  # noqa: BLE001 (verify must report, not raise: counted as missed)
        return False
    finally:
        butler.cache.clear()
        butler.registry.close()
    if report.ok:
        return False
    named = {(p.dataset.data_id["visit"], p.dataset.data_id["detector"]) for p in report.problems}
    return "open" in outcomes or bool(named & broken)
