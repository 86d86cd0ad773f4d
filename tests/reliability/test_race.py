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


def _race(root: str, tmp_path: Path, puts: int, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """Run the writers and readers on ``root``; return (acks, reads, corrupt, errors)."""
    go, stop = tmp_path / "go", tmp_path / "stop"
    child = [sys.executable, str(HERE / "race_child.py")]
    writers = [
        subprocess.Popen([*child, "writer", root, str(w), str(puts), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for w in range(WRITERS)
    ]
    readers = [
        subprocess.Popen([*child, "reader", root, str(r), "0", str(stop)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
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
    return acks, reads, corrupt, errors


def _read_back(reader: Butler, acks: list[dict[str, int]]) -> None:
    """A sample of the acknowledged puts, read back whole in this process."""
    sys.path.insert(0, str(HERE))
    try:
        import race_child
    finally:
        sys.path.remove(str(HERE))
    for ack in acks[:: max(1, len(acks) // 48)]:
        got = reader.get("calexp", visit=ack["visit"], detector=ack["detector"], collections=ack["run"])
        want = race_child.exposure(ack["detector"])
        assert np.array_equal(got.image, want.image) and got.wcs == want.wcs


def test_writers_and_readers_race(tmp_path: Path, reliability_scale: int, reliability_counts) -> None:
    root = tmp_path / "repo"
    butler = Butler.create(root)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    puts = 12 * reliability_scale
    acks, reads, corrupt, errors = _race(str(root), tmp_path, puts)
    assert len(acks) == WRITERS * puts
    reader = Butler(root)
    _read_back(reader, acks)
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


def test_writers_and_readers_race_on_object_storage(
    s3_server, s3_bucket, postgres_url, tmp_path: Path, monkeypatch, reliability_scale: int,
    reliability_counts,
) -> None:
    """The same race on an s3:// repository whose registry is PostgreSQL (as on a cluster).

    Objects are named by their digests, so a component has one object however
    many writers race (each array's zarr.json is a conditional PUT).
    """
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    url = f"s3://{s3_bucket}/race"
    butler = Butler.create(url, registry=postgres_url)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    puts = 6 * reliability_scale
    acks, reads, corrupt, errors = _race(url, tmp_path, puts, env=dict(os.environ))
    assert len(acks) == WRITERS * puts
    reader = Butler(url)
    _read_back(reader, acks)
    report = reader.verify()
    reliability_counts("s3 race", puts=len(acks), reads=reads, corrupt=corrupt, errors=errors,
                       verify_problems=len(report.problems))
    assert report.ok and report.datasets == len(acks)
    assert (corrupt, errors) == (0, 0)
