"""Repository format versions: format 2 (and 3) packs small components, format 1 stays as it was."""

from __future__ import annotations

import json

import numpy as np
import zarr

from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure


def _butler(root):
    b = Butler(root, run="sfm")
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    return b


def _files(root, pattern):
    return sorted(p for p in (root / "blobs").glob(pattern) if p.is_file())


def test_a_new_repository_is_format_3_and_packs_each_puts_small_components(tmp_path):
    root = tmp_path / "repo"
    Butler.create(root)
    assert json.loads((root / "compstore.json").read_text())["version"] == "3.0"
    b = _butler(root)
    exposure = make_exposure(1, 0, size=64)
    catalog = make_catalog(exposure)
    b.put(exposure, "calexp", visit=1, detector=0)
    b.put(catalog, "src", visit=1, detector=0)
    assert len(_files(root, "packs/*/*.zip")) == 2  # one per put
    assert _files(root, "documents/*/*.json") == []
    assert _files(root, "arrays/*/*/zarr.json") == []  # every array here is small
    reader = Butler(root, collections="sfm")
    got = reader.get("src", visit=1, detector=0)
    assert got.columns == catalog.columns
    mask = reader.get("calexp.mask", visit=1, detector=0)
    np.testing.assert_array_equal(mask.array, exposure.mask.array)
    # Stock zarr: the array is written out as its folder on request.
    path = reader.component_path("calexp.image", visit=1, detector=0)
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], exposure.image)
    stats = reader.stats()
    assert stats.documents > 0 and stats.arrays > 0 and stats.stored_bytes > 0


def test_a_format_1_repository_is_written_without_packs(tmp_path):
    root = tmp_path / "repo"
    Butler.create(root)
    config = root / "compstore.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "version": "1.0"}))
    b = _butler(root)
    assert not b.blobs.packs
    exposure = make_exposure(1, 0, size=64)
    b.put(exposure, "calexp", visit=1, detector=0)
    assert _files(root, "packs/*/*.zip") == []
    assert _files(root, "documents/*/*.json")  # one file per document, as format 1 says
    got = Butler(root, collections="sfm").get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(got.image, exposure.image)


def test_newer_minor_versions_of_both_majors_open_read_only(tmp_path):
    import pytest

    from compstore.errors import ReadOnlyRepositoryError

    root = tmp_path / "repo"
    Butler.create(root)
    config = root / "compstore.json"
    for version in ("1.5", "2.7"):
        config.write_text(json.dumps({**json.loads(config.read_text()), "version": version}))
        with pytest.raises(ReadOnlyRepositoryError):
            Butler(root).register_dataset_type("x", ("visit",), "Wcs")


def test_the_blob_store_of_a_newer_minor_version_refuses_writes_below_the_butler(tmp_path):
    import pytest

    from compstore._repository import Repository
    from compstore.cas import LocalBlobStore
    from compstore.errors import BlobStoreError

    root = tmp_path / "repo"
    Butler.create(root)
    b = _butler(root)
    exposure = make_exposure(1, 0, size=64)
    b.put(exposure, "calexp", visit=1, detector=0)
    config = root / "compstore.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "version": "2.7"}))
    before = sorted(p.relative_to(root) for p in (root / "blobs").rglob("*"))
    blobs = Repository.open(root).blobs
    assert blobs.read_only and repr(blobs).endswith("read_only=True)")
    [digest, *_] = blobs.iter_arrays()
    with pytest.raises(BlobStoreError, match="read-only"):
        blobs.put_document(b"[]")
    with pytest.raises(BlobStoreError, match="read-only"):
        blobs.put_array(np.arange(3))
    with pytest.raises(BlobStoreError, match="read-only"):
        blobs.delete(digest)
    with pytest.raises(BlobStoreError, match="read-only"):
        blobs.component_path(digest)  # packed: writing it out is a write
    blobs.close()
    # The Butler reads it, and hands stock zarr the array from outside the repository.
    reader = Butler(root, collections="sfm")
    np.testing.assert_array_equal(reader.get("calexp", visit=1, detector=0).image, exposure.image)
    path = reader.component_path("calexp.image", visit=1, detector=0)
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[...], exposure.image)
    direct = LocalBlobStore(root / "blobs", packs=True, read_only=True)
    with pytest.raises(BlobStoreError, match="read-only"):
        direct.put_new_array(np.arange(5.0))
    direct.close()
    assert sorted(p.relative_to(root) for p in (root / "blobs").rglob("*")) == before


def test_create_without_fsync_makes_the_same_repository(tmp_path, monkeypatch):
    """fsync=False creates the same files and a Butler that does not fsync; nothing is lost in-process."""
    import os

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    fast = Butler.create(tmp_path / "fast", fsync=False)
    fast_calls = len(calls)
    calls.clear()
    Butler.create(tmp_path / "slow")
    assert fast_calls < len(calls) / 10  # the config alone, not 512 folders and 256 group files
    assert fast.blobs.fsync is False
    listing = {p.relative_to(tmp_path / "slow") for p in (tmp_path / "slow").rglob("*")
               if ".sqlite3" not in p.name}
    assert {p.relative_to(tmp_path / "fast") for p in (tmp_path / "fast").rglob("*")
            if ".sqlite3" not in p.name} == listing
    writer = Butler(fast.root, run="r", fsync=False)
    writer.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure = make_exposure(1, 0, size=32)
    writer.put(exposure, "calexp", visit=1, detector=0)
    assert Butler(fast.root).verify(deep=True).ok


def test_a_repository_made_again_where_one_was_deleted_is_a_new_one(tmp_path):
    """rm -rf a repository, create one at the same path, in the same process: nothing stale.

    The registry is shared by the Butlers of one repository in a process; one
    still alive for the deleted repository must not serve (or swallow the writes
    of) the new one at the same path.
    """
    import shutil
    import subprocess
    import sys

    root = tmp_path / "repo"
    Butler.create(root)
    old = Butler(root, run="sfm")
    old.register_dataset_type("x", ("visit",), "Array")
    old.put(np.arange(3), "x", visit=1)
    big = np.arange(400_000, dtype=np.float64)  # an array folder, not a pack member
    old.put(big, "x", visit=3)
    assert old.get("x", visit=3) is not None  # cached in this process
    shutil.rmtree(root)
    Butler.create(root)
    new = Butler(root, run="sfm")
    assert [t.name for t in new.registry.dataset_types()] == []  # a new, empty repository
    new.register_dataset_type("x", ("visit",), "Array")
    new.put(np.arange(5), "x", visit=1)  # no conflict with the deleted repository's dataset
    # The very array the deleted repository held: written again, not taken as present.
    new.put(np.arange(3), "x", visit=2)
    new.put(big, "x", visit=3)
    report = Butler(root).verify(deep=True)
    assert report.ok, report
    assert list(Butler(root, collections="sfm").get("x", visit=1)) == [0, 1, 2, 3, 4]
    # What another process sees on disk: the new put, not lost into the deleted file.
    code = (
        "import sys; from compstore import Butler; "
        "print(Butler(sys.argv[1], collections='sfm').get('x', visit=1).tolist())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[0, 1, 2, 3, 4]"
    assert old.registry is not new.registry


def test_objects_read_from_a_deleted_repository_are_stored_again_in_its_successor(tmp_path):
    """The object cache of a process must not take the new repository for the old one.

    An object read from the first repository carries its digests in the cache;
    put into the repository made again at the same path, its components must be
    written there, not assumed present.
    """
    import shutil
    import subprocess
    import sys

    from compstore.testing.sky import make_exposure

    root = tmp_path / "repo"
    Butler.create(root)
    first = Butler(root, run="r")
    first.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    first.put(make_exposure(1, 0, size=64, seed=1), "calexp", visit=1, detector=0)
    exposure = first.get("calexp", visit=1, detector=0)
    shutil.rmtree(root)
    Butler.create(root)
    second = Butler(root, run="r")
    assert second.cache is not first.cache
    second.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    second.put(exposure, "calexp", visit=1, detector=0)
    assert Butler(root).verify(deep=True).ok
    code = (
        "import sys; from compstore import Butler; "
        "e = Butler(sys.argv[1], collections='r').get('calexp', visit=1, detector=0); "
        "print(e.image.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "(64, 64)", out.stderr[-500:]



def test_a_create_opens_its_registry_once_and_builds_its_schema_description_once(tmp_path, monkeypatch):
    """Butler.create and Butler.subset hand the registry they created to the Butler they return.

    Opening it again (and describing its schema a second time) was most of a
    small subset's time; the schema statements are compiled once per process.
    """
    from compstore.registry import _connections, _schema

    built: list[object] = []
    real_build = _schema.build_metadata

    def counting_build(dimensions):
        built.append(dict(dimensions))
        return real_build(dimensions)

    monkeypatch.setattr(_connections, "build_metadata", counting_build)
    butler = Butler.create(tmp_path / "a", fsync=False)
    assert len(built) == 1
    butler = Butler(tmp_path / "a", run="r", fsync=False)  # the same process: the same registry
    assert len(built) == 1
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    butler.put(make_catalog(make_exposure(1, 0, size=32)), "src", visit=1, detector=0)
    built.clear()
    subset = butler.subset(tmp_path / "b", ["src"])
    assert len(built) == 1
    assert subset.query_datasets("src")[0].id == butler.query_datasets("src")[0].id
    # A registry opened from its file describes the schema the file holds.
    from compstore.registry import Registry

    registry = Registry(tmp_path / "b" / "registry.sqlite3")
    assert set(built[-1]) <= set(registry._dimensions)
