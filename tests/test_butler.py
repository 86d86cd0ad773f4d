"""The Butler: put/get round trips, components, parameters, queries, errors, stats."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from compstore import Box2I, Butler
from compstore.errors import (
    AmbiguousDatasetError,
    ConflictingDatasetError,
    DataIdError,
    DatasetNotFoundError,
    InvalidNameError,
    InvalidParameterError,
    MissingDatasetTypeError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    StorageClassTypeError,
    UnknownComponentError,
    UnknownStorageClassError,
)


def assert_exposures_equal(a, b):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask.array, b.mask.array)
    assert dict(a.mask.planes) == dict(b.mask.planes)
    np.testing.assert_array_equal(a.variance, b.variance)
    assert a.xy0 == b.xy0
    for name in ("wcs", "calib", "psf", "visit_info", "background", "band", "detector"):
        assert getattr(a, name) == getattr(b, name), name
    assert dict(a.metadata) == dict(b.metadata)


def test_create_refuses_existing_and_open_refuses_missing(tmp_path, repo):
    with pytest.raises(RepositoryExistsError, match="already"):
        Butler.create(repo)
    assert Butler.create(repo, exist_ok=True).root == repo
    with pytest.raises(RepositoryNotFoundError, match="no compstore repository"):
        Butler(tmp_path / "nowhere")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(RepositoryExistsError, match="not empty"):
        Butler.create(tmp_path / "full")


def test_unknown_major_version_is_refused_and_newer_minor_is_read_only(repo):
    import json

    config = repo / "compstore.json"
    data = json.loads(config.read_text())
    config.write_text(json.dumps({**data, "version": "4.0"}))
    with pytest.raises(RepositoryFormatError, match="version 4.0"):
        Butler(repo)
    from compstore.errors import ReadOnlyRepositoryError

    for newer in ("3.9", "2.9"):
        config.write_text(json.dumps({**data, "version": newer}))
        butler = Butler(repo)
        with pytest.raises(ReadOnlyRepositoryError):
            butler.register_dataset_type("x", ("visit",), "Wcs")


def test_put_get_round_trip(butler, sky):
    exposure, catalog = sky(1, 0)
    ref = butler.put(exposure, "calexp", visit=1, detector=0)
    assert ref.run == "sfm" and dict(ref.data_id) == {"visit": 1, "detector": 0}
    butler.put(catalog, "src", {"visit": 1}, detector=0)
    got = butler.get("calexp", visit=1, detector=0)
    assert_exposures_equal(got, exposure)
    assert not got.image.flags.writeable and not got.variance.flags.writeable
    cat = butler.get("src", visit=1, detector=0)
    assert cat.columns == catalog.columns
    for name in catalog.columns:
        np.testing.assert_array_equal(cat[name], catalog[name])
        assert cat[name].unit == catalog[name].unit
    assert cat.wcs == catalog.wcs and cat.calib == catalog.calib
    # get by ref
    assert butler.get(ref) is got


def test_identity_while_held_and_across_butlers(butler, sky, repo):
    exposure, catalog = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    butler.put(catalog, "src", visit=1, detector=0)
    butler.cache.clear()
    reader = Butler(repo, collections=["sfm"])
    exp = reader.get("calexp", visit=1, detector=0)
    again = Butler(repo, collections="sfm").get("calexp", visit=1, detector=0)
    assert again is exp
    cat = reader.get("src", visit=1, detector=0)
    assert cat.wcs is exp.wcs and cat.calib is exp.calib
    assert reader.get("calexp.wcs", visit=1, detector=0) is exp.wcs


def test_components_and_bbox(butler, sky):
    exposure, _ = sky(1, 1)
    butler.put(exposure, "calexp", visit=1, detector=1)
    assert butler.get("calexp.psf", visit=1, detector=1) == exposure.psf
    assert butler.get("calexp.visit_info", visit=1, detector=1) == exposure.visit_info
    np.testing.assert_array_equal(butler.get("calexp.image", visit=1, detector=1), exposure.image)
    bbox = Box2I((exposure.xy0[0] + 10, exposure.xy0[1] + 20), (30, 40))
    cut = butler.get("calexp", visit=1, detector=1, parameters={"bbox": bbox})
    assert cut.bbox == bbox
    assert_exposures_equal(cut, exposure.subset(bbox))
    image_cut = butler.get("calexp.image", visit=1, detector=1, parameters={"bbox": bbox})
    np.testing.assert_array_equal(image_cut, exposure.subset(bbox).image)
    mask_cut = butler.get("calexp.mask", visit=1, detector=1, parameters={"bbox": bbox})
    np.testing.assert_array_equal(mask_cut.array, exposure.subset(bbox).mask.array)


def test_catalog_columns_parameter(butler, sky):
    exposure, catalog = sky(1, 2)
    butler.put(catalog, "src", visit=1, detector=2)
    cat = butler.get("src", visit=1, detector=2, parameters={"columns": ["ra", "dec"]})
    assert cat.columns == ("ra", "dec")
    assert cat.wcs == catalog.wcs
    with pytest.raises(InvalidParameterError, match="no column"):
        butler.get("src", visit=1, detector=2, parameters={"columns": ["nope"]})


def test_bad_requests_raise_clear_errors(butler, sky):
    exposure, catalog = sky(1, 0)
    with pytest.raises(MissingDatasetTypeError, match="calexpp"):
        butler.put(exposure, "calexpp", visit=1, detector=0)
    with pytest.raises(DataIdError, match="missing detector"):
        butler.put(exposure, "calexp", visit=1)
    with pytest.raises(DataIdError, match="extra tract"):
        butler.put(exposure, "calexp", visit=1, detector=0, tract=9)
    with pytest.raises(StorageClassTypeError, match="Exposure"):
        butler.put(catalog, "calexp", visit=1, detector=0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    with pytest.raises(ConflictingDatasetError, match="already"):
        butler.put(exposure, "calexp", visit=1, detector=0)
    with pytest.raises(DatasetNotFoundError, match=r"detector: 5.*sfm"):
        butler.get("calexp", visit=1, detector=5)
    with pytest.raises(UnknownComponentError, match="wcss"):
        butler.get("calexp.wcss", visit=1, detector=0)
    with pytest.raises(InvalidParameterError, match="bbox"):
        butler.get("calexp", visit=1, detector=0, parameters={"columns": ["x"]})
    with pytest.raises(InvalidParameterError, match="not inside"):
        butler.get("calexp", visit=1, detector=0, parameters={"bbox": Box2I((-5, -5), (3, 3))})
    with pytest.raises(InvalidNameError):
        butler.get("calexp..wcs", visit=1, detector=0)
    with pytest.raises(UnknownStorageClassError, match="Nope"):
        butler.register_dataset_type("x", ("visit",), "Nope")


def test_query_exists_remove(butler, sky):
    for detector in range(3):
        butler.put(sky(2, detector)[0], "calexp", visit=2, detector=detector)
    refs = butler.query_datasets("calexp", where="visit = 2 AND detector IN (0, 2)")
    assert sorted(r.data_id["detector"] for r in refs) == [0, 2]
    assert butler.exists("calexp", visit=2, detector=1)
    assert butler.exists("calexp", refs[0].data_id)  # the lookup is remembered now
    Butler(butler.root, run=butler.run).remove(refs[0])  # another Butler removes it
    assert not butler.exists("calexp", refs[0].data_id)  # the memory of it is dropped
    assert len(butler.query_datasets("calexp")) == 2


def test_without_collections_a_data_id_in_two_runs_is_ambiguous(butler, sky, repo):
    """No search path orders the runs: neither dataset is chosen silently."""
    exposure, catalog = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    Butler(repo, run="rerun").put(exposure, "calexp", visit=1, detector=0)
    everywhere = Butler(repo)
    with pytest.raises(AmbiguousDatasetError, match=r"collections=\['rerun'\] for .*collections=\['sfm'\]"):
        everywhere.get("calexp", visit=1, detector=0)
    refs = everywhere.registry.query_datasets("calexp", find_first=True)
    assert sorted(r.run for r in refs) == ["rerun", "sfm"]  # nothing shadowed without a search path
    assert everywhere.get("calexp:rerun", visit=1, detector=0) is not None


@pytest.mark.local_blobs_only  # a path into the repository's folder
def test_component_path_opens_with_stock_zarr(butler, sky):
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    path = butler.component_path("calexp.image", visit=1, detector=0)
    array = zarr.open_array(str(path), mode="r")
    np.testing.assert_array_equal(array[:], exposure.image)
    with pytest.raises(UnknownComponentError, match="array components"):
        butler.component_path("calexp.wcs", visit=1, detector=0)


def test_stats_count_dedup(butler, sky):
    exposure, catalog = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    butler.put(catalog, "src", visit=1, detector=0)
    first = butler.stats()
    assert first.datasets == 2
    other = Butler(butler.root, run="copy")
    other.put(exposure, "calexp", visit=1, detector=0)
    second = butler.stats()
    assert second.datasets == 3
    # The second copy costs only its registry row: no new component at all.
    assert second.stored_bytes == first.stored_bytes
    assert second.logical_bytes > first.logical_bytes
    assert second.dedup_ratio > first.dedup_ratio
    assert "dedup ratio" in str(second)


def test_reput_from_store_costs_no_hashing(butler, sky, repo):
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    loaded = Butler(repo, collections="sfm").get("calexp", visit=1, detector=0)
    result = Butler(repo, run="again").put_with_report(loaded, "calexp", visit=1, detector=0)
    assert result.report.bytes_hashed == 0
    assert result.report.bytes_written == 0
    changed = loaded.replace(calib=type(loaded.calib)(loaded.calib.calibration * 1.01))
    result = Butler(repo, run="again2").put_with_report(changed, "calexp", visit=1, detector=0)
    assert result.report.bytes_hashed == 0  # pixels came from the store: recognised
    assert result.report.arrays_written == 0
    assert result.report.documents_written == 2  # the new Calib and the new manifest


@pytest.mark.sqlite_only  # reads SQLite's synchronous pragma
@pytest.mark.local_blobs_only  # a MemoryBlobStore is never durable
@pytest.mark.parametrize("fsync, level", [(True, 2), (False, 1)])
def test_a_put_commits_its_rows_as_durably_as_its_components(repo, sky, monkeypatch, fsync, level):
    # fsync=False writes components without fsync: its registry commits skip the WAL
    # fsync too (SQLite synchronous: 2 = FULL, 1 = NORMAL).
    butler = Butler(repo, run="sfm", fsync=fsync)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    seen = []
    real = butler.registry.insert_dataset

    def spy(*args, **kwargs):
        seen.append(butler.registry._local.conn.exec_driver_sql("PRAGMA synchronous").scalar())
        return real(*args, **kwargs)

    monkeypatch.setattr(butler.registry, "insert_dataset", spy)
    exposure, _ = sky(visit=1)
    butler.put(exposure, "calexp", visit=1, detector=0)
    assert seen == [level]


def test_over_a_memory_store_what_needs_files_names_the_store_and_the_operation(
    tmp_path, monkeypatch, sky
):
    from compstore.cas import MemoryBlobStore
    from compstore.errors import BlobStoreError

    Butler.create(tmp_path / "repo")
    memory_blobs(monkeypatch)
    butler = Butler(tmp_path / "repo", run="sfm")
    assert isinstance(butler.blobs, MemoryBlobStore)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    assert_exposures_equal(Butler(tmp_path / "repo", collections="sfm").get("calexp", visit=1, detector=0), exposure)
    where = f"memory:{id(butler.blobs):x} is a MemoryBlobStore"
    with pytest.raises(BlobStoreError, match=f"component_path works on .*; {where}"):
        butler.component_path("calexp.image", visit=1, detector=0)
    with pytest.raises(BlobStoreError, match=f"gc works on .*; {where}"):
        butler.gc()


@pytest.fixture(params=["sqlite", "postgresql", "sqlite+memory", "sqlite+s3"])
def repo(request, tmp_path, monkeypatch):
    """A new, empty repository: registry in SQLite, and in PostgreSQL (issue 16).

    ``sqlite+memory``: every Butler of it keeps its components in one
    `MemoryBlobStore` instead of the folder, so the Butler is seen to rely on
    the `BlobStore` contract only (issue 15). ``sqlite+s3``: in an
    `S3BlobStore` on the test session's S3 server (issue 17), a new store
    object per Butler (what one Butler keeps in memory is not another's).
    """
    root = tmp_path / "repo"
    if request.param == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("SQLite-only: tests the SQLite registry file itself")
        Butler.create(root, registry=request.getfixturevalue("postgres_url"))
    else:
        Butler.create(root)
    if request.param in ("sqlite+memory", "sqlite+s3"):
        if request.node.get_closest_marker("local_blobs_only"):
            pytest.skip("LocalBlobStore only: tests its files or its fsync")
        if request.param == "sqlite+memory":
            memory_blobs(monkeypatch)
        else:
            s3_blobs(monkeypatch, request.getfixturevalue("s3_server"))
    return root


def memory_blobs(monkeypatch):
    """Make every repository opened from now on keep its components in memory (one store each)."""
    from compstore._repository import Repository
    from compstore.cas import MemoryBlobStore

    stores: dict = {}
    real_open = Repository.open.__func__

    def open_in_memory(cls, root, **kwargs):
        opened = real_open(cls, root, **kwargs)
        opened.blobs = stores.setdefault(opened.root.resolve(), MemoryBlobStore())
        return opened

    monkeypatch.setattr(Repository, "open", classmethod(open_in_memory))


def s3_blobs(monkeypatch, server):
    """Make every repository opened from now on keep its components in a bucket of ``server``.

    One bucket per repository root; each open makes a new `S3BlobStore` of it,
    packing small components and comparing on a digest hit as a format 3
    repository on object storage does (its pack index an SQLite file in the root).
    """
    from compstore._repository import Repository
    from compstore.cas import S3BlobStore
    from compstore.cas._pack import PackIndex

    buckets: dict = {}
    real_open = Repository.open.__func__

    def open_on_s3(cls, root, **kwargs):
        opened = real_open(cls, root, **kwargs)
        bucket = buckets.setdefault(opened.root.resolve(), server.new_bucket())
        index = PackIndex(str(opened.root / "s3-packs.sqlite3"), fsync=False)
        # As the folder's store: format 3, its digest algorithm, compared on a hit.
        opened.blobs = S3BlobStore(bucket, "blobs", pack_index=index, **server.store_options(),
                                   digest_algorithm=opened.blobs.digest_algorithm,
                                   compare_on_hit=opened.blobs.compare_on_hit)  # fmt: skip
        return opened

    monkeypatch.setattr(Repository, "open", classmethod(open_on_s3))
