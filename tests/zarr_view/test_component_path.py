"""Butler.component_path on a repository it must not write: packed arrays go outside it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import zarr

from compstore import Butler
from compstore.errors import CorruptBlobError

CALEXP = {"visit": 1, "detector": 0}


def _snapshot(root):
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, files in os.walk(root) for f in files
    }


@pytest.fixture
def read_only(butler, sky, tmp_path, monkeypatch):
    """A repository of a newer minor format (opened read-only) with one small calexp."""
    exposure, _ = sky(1, 0)  # 256 x 256: its arrays are kept in packs
    butler.put(exposure, "calexp", **CALEXP)
    config = butler.root / "compstore.json"
    data = json.loads(config.read_text())
    data["version"] = "2.9"
    config.write_text(json.dumps(data))
    monkeypatch.setenv("COMPSTORE_CACHE_DIR", str(tmp_path / "cache"))
    reader = Butler(butler.root, collections="sfm")
    assert reader._repo.read_only
    return reader, exposure


def test_a_packed_array_opens_with_stock_zarr_without_writing_the_repository(read_only, tmp_path):
    reader, exposure = read_only
    ref = reader.find_dataset("calexp", **CALEXP)
    digest = reader._io.manifest(ref.manifest)["components"]["image"]["array"]
    assert reader.blobs.packed_array_files(digest) is not None  # really packed
    before = _snapshot(reader.root)
    path = reader.component_path("calexp.image", **CALEXP)
    assert path == tmp_path / "cache" / "arrays" / digest[:2] / digest
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[:], exposure.image)
    assert _snapshot(reader.root) == before  # nothing written into the repository
    assert reader.component_path("calexp.image", **CALEXP) == path  # found the second time
    variance = reader.component_path("calexp.variance", **CALEXP)
    np.testing.assert_array_equal(zarr.open_array(str(variance), mode="r")[:], exposure.variance)


def test_a_damaged_pack_is_refused_not_written_out(read_only):
    reader, _ = read_only
    packs = [os.path.join(d, f) for d, _, fs in os.walk(reader.blobs.root / "packs")
             for f in fs if f.endswith(".zip")]
    assert packs
    for pack in packs:  # flip bytes in the middle of every pack
        data = bytearray(open(pack, "rb").read())
        for i in range(len(data) // 3, len(data) // 3 + 64):
            data[i] ^= 0xFF
        with open(pack, "wb") as f:
            f.write(data)
    with pytest.raises(CorruptBlobError):
        for name in ("image", "variance"):
            reader.component_path(f"calexp.{name}", **CALEXP)


def test_cli_zarr_path_prints_a_folder_stock_zarr_opens(read_only, capsys):
    from compstore.cli import main

    reader, exposure = read_only
    status = main(["zarr-path", "--repo", str(reader.root), "calexp.image", "visit=1", "detector=0",
                   "--collections", "sfm"])
    assert status == 0
    path = capsys.readouterr().out.strip().splitlines()[-1]
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], exposure.image)
