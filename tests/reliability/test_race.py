"""8 writers and 2 readers on overlapping data: no corrupt read, no error, one physical copy per digest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from compstore import Butler

HERE = Path(__file__).resolve().parent
WRITERS = 8
READERS = 2


def physical_copies(blobs: Path) -> Counter[str]:
    """How many times each digest is on disk: its array folder or document file, plus pack members."""
    copies: Counter[str] = Counter()
    for folder in (blobs / "arrays").glob("??/*"):
        if folder.is_dir():
            copies[folder.name] += 1
    for document in (blobs / "documents").glob("??/*.json"):
        copies[document.name[:-5]] += 1
    for pack in (blobs / "packs").glob("??/*.zip"):
        with zipfile.ZipFile(pack) as z:
            for name in z.namelist():
                kind, rest = name.split("/", 1)
                if kind == "documents":
                    copies[rest[:-5]] += 1
                elif rest.endswith("/zarr.json"):  # an array: counted once, by its zarr.json
                    copies[rest.split("/")[0]] += 1
    return copies


def test_writers_and_readers_race(tmp_path: Path, reliability_scale: int, reliability_counts) -> None:
    root = tmp_path / "repo"
    butler = Butler.create(root)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    puts = 12 * reliability_scale
    go, stop = tmp_path / "go", tmp_path / "stop"
    child = [sys.executable, str(HERE / "race_child.py")]
    writers = [
        subprocess.Popen([*child, "writer", str(root), str(w), str(puts), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(WRITERS)
    ]
    readers = [
        subprocess.Popen([*child, "reader", str(root), str(r), "0", str(stop)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(READERS)
    ]
    for proc in writers:  # all have made their exposures: start them together
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    acks = []
    for proc in writers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        acks += [json.loads(line) for line in out.splitlines()]
    stop.touch()
    reads = corrupt = errors = 0
    for proc in readers:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        counts = json.loads(out.splitlines()[-1])
        reads, corrupt, errors = reads + counts["reads"], corrupt + counts["corrupt"], errors + counts["errors"]
        assert counts["errors"] == 0, err

    sys.path.insert(0, str(HERE))
    try:
        import race_child
    finally:
        sys.path.remove(str(HERE))
    assert len(acks) == WRITERS * puts
    reader = Butler(root)
    for ack in acks[:: max(1, len(acks) // 48)]:  # a sample read back whole, in this process
        got = reader.get("calexp", visit=ack["visit"], detector=ack["detector"], collections=ack["run"])
        want = race_child.exposure(ack["detector"])
        assert np.array_equal(got.image, want.image) and got.wcs == want.wcs
    report = reader.verify()
    assert report.ok and report.datasets == len(acks) and report.unreferenced == 0
    copies = physical_copies(root / "blobs")
    extra = sum(n - 1 for n in copies.values())
    stored = set(reader.blobs.iter_arrays()) | set(reader.blobs.iter_documents())
    assert set(copies) == stored  # every copy counted is a stored component
    leftovers = list((root / "blobs" / "staging").iterdir())
    reliability_counts(
        "race", puts=len(acks), reads=reads, corrupt=corrupt, errors=errors, extra_copies=extra,
        staging_left=len(leftovers),
    )
    assert (corrupt, errors, extra, leftovers) == (0, 0, 0, [])
