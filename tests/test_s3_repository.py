"""Repositories on object storage: ``Butler.create("s3://bucket/prefix", registry=...)`` (issue 17).

Against a real S3-compatible server on loopback (moto's, started by the
``s3_server`` fixture); the endpoint and credentials reach compstore through
the standard ``AWS_*`` variables, as they would on a cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from compstore import Butler
from compstore.errors import (
    BlobStoreError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)

DATA_IDS = [(1, 0), (1, 1), (2, 0)]


@pytest.fixture
def filled(s3_url, tmp_path, sky):
    """An S3 repository (SQLite registry on the local disk) with calexp and src per data ID."""
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    butler = Butler(s3_url, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit, detector in DATA_IDS:
        exposure, catalog = sky(visit, detector)
        butler.put(exposure, "calexp", visit=visit, detector=detector)
        butler.put(catalog, "src", visit=visit, detector=detector)
    return s3_url


def test_put_and_get_round_trip_and_share_wcs_and_calib(filled, sky):
    butler = Butler(filled, collections=["sfm"])
    exposure, catalog = sky(1, 1)
    got = butler.get("calexp", visit=1, detector=1)
    np.testing.assert_array_equal(got.image, exposure.image)
    np.testing.assert_array_equal(got.mask, exposure.mask)
    assert got.wcs == exposure.wcs and got.calib == exposure.calib
    cat = butler.get("src", visit=1, detector=1)
    assert len(cat) == len(catalog)
    assert cat.wcs is got.wcs and cat.calib is got.calib  # the identity cache, as locally
    assert butler.get("calexp.wcs", visit=1, detector=1) is got.wcs


def test_the_repository_is_objects_under_its_prefix_and_a_config(filled, s3_env):
    from compstore.cas import S3BlobStore

    top = S3BlobStore(filled.split("/")[2], "survey/main")
    config = json.loads(top.read_object("compstore.json"))
    assert config["format"] == "compstore" and config["version"] == "3.0"
    assert config["digest"] == "xxh3-128"
    assert config["registry"].endswith("registry.sqlite3") and config["blobs"] == "blobs"
    text = json.dumps(config)
    assert "testing" not in text and "127.0.0.1" not in text  # no credentials, no endpoint
    assert not top.is_empty()


def test_verify_and_stats(filled):
    butler = Butler(filled)
    report = butler.verify(deep=True)
    assert report.ok, report
    stats = butler.stats()
    assert stats.datasets == 2 * len(DATA_IDS) and stats.dedup_ratio > 1.0


def test_cut_out_reads_a_region(filled, sky):
    from compstore import Box2I

    butler = Butler(filled, collections=["sfm"])
    exposure, _ = sky(2, 0)
    box = Box2I((exposure.bbox.min[0] + 10, exposure.bbox.min[1] + 20), (30, 40))
    cut = butler.get("calexp", visit=2, detector=0, parameters={"bbox": box})
    np.testing.assert_array_equal(cut.image, exposure.image[20:60, 10:40])


def test_a_second_get_with_the_local_cache_costs_no_request(filled, s3_env, tmp_path):
    cache = tmp_path / "cache"
    first = Butler(filled, collections=["sfm"], local_cache=cache, local_cache_bytes=1 << 28)
    first.cache.clear()  # (the writer's objects are in this process's identity cache)
    want = first.get("calexp", visit=1, detector=0)
    first.cache.clear()  # the identity cache: the next get reads the store again
    s3_env.clear_requests()
    again = first.get("calexp", visit=1, detector=0)
    assert s3_env.requests == []
    np.testing.assert_array_equal(again.image, want.image)
    assert sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) <= 1 << 28


def test_without_a_local_cache_a_second_get_asks_the_server(filled, s3_env):
    butler = Butler(filled, collections=["sfm"])
    butler.get("calexp", visit=1, detector=0)
    butler.cache.clear()
    s3_env.clear_requests()
    butler.get("calexp", visit=1, detector=0)
    assert s3_env.requests  # (the in-memory metadata caches still save some)


def test_a_postgresql_registry(s3_url, postgres_url, sky):
    Butler.create(s3_url, registry=postgres_url)
    butler = Butler(s3_url, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    again = Butler(s3_url, collections=["sfm"])
    np.testing.assert_array_equal(again.get("calexp", visit=1, detector=0).image, exposure.image)
    assert again.verify().ok
    # Small components are packed, indexed in the database's pack_member table.
    from compstore.cas._pack_pg import PgPackIndex

    assert isinstance(again.blobs._index, PgPackIndex)
    manifest = again.registry.find_dataset("calexp", {"visit": 1, "detector": 0}, ["sfm"]).manifest
    assert again.blobs._index.existing([manifest]) and manifest in set(again.blobs.iter_documents())


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pipeline_runs_on_an_s3_repository(filled, jobs):
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "pipeline"))
    from pipeline_test_tasks import Recalibrate

    from compstore.pipeline import Pipeline, execute

    butler = Butler(filled, collections=["sfm"], run="recal")
    report = execute(Pipeline().add_task("recal", Recalibrate, {"factor": 2.0}), butler, jobs=jobs)
    assert report.exit_status == 0 and len(report.succeeded) == len(DATA_IDS), report
    reader = Butler(filled, collections=["recal", "sfm"])
    for visit, detector in DATA_IDS:
        before = Butler(filled, collections=["sfm"]).get("calexp", visit=visit, detector=detector)
        after = reader.get("calexp", visit=visit, detector=detector)
        assert after.calib.calibration == pytest.approx(2 * before.calib.calibration)


def test_cli_create_query_and_verify(s3_url, tmp_path, s3_env):
    registry = tmp_path / "cli-registry.sqlite3"
    env = {**__import__("os").environ, "COMPSTORE_LOCAL_CACHE": str(tmp_path / "clicache")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "compstore", *args], capture_output=True,
                              text=True, env=env, timeout=120)

    made = cli("--repo", s3_url, "create", "--registry", str(registry))
    assert made.returncode == 0, made.stderr
    assert s3_url in made.stdout
    shown = cli("--repo", s3_url, "--python", "stats")
    assert f"Butler({s3_url!r}, local_cache=" in shown.stdout
    stats = cli("--repo", s3_url, "--json", "stats")
    assert stats.returncode == 0 and json.loads(stats.stdout)["datasets"] == 0, stats.stderr
    assert cli("--repo", s3_url, "verify").returncode == 0
    again = cli("--repo", s3_url, "create", "--registry", str(registry))
    assert again.returncode != 0 and "already" in again.stderr and "Traceback" not in again.stderr


def test_compstore_repo_may_list_s3_urls_and_folders(monkeypatch):
    from compstore.cli import _default_repo

    monkeypatch.setenv("COMPSTORE_REPO", "s3://bucket-a/survey:archive:s3://bucket-b")
    assert _default_repo() == ["s3://bucket-a/survey", "archive", "s3://bucket-b"]


# -- what is refused, and how -------------------------------------------------------
def test_create_needs_a_registry_outside_the_bucket(s3_url):
    with pytest.raises(RepositoryError, match="registry="):
        Butler.create(s3_url)
    with pytest.raises(RepositoryError, match="neither"):
        Butler.create(s3_url, registry="registry.txt")


def test_create_twice_is_refused_unless_exist_ok(filled, tmp_path):
    with pytest.raises(RepositoryExistsError, match="already"):
        Butler.create(filled, registry=str(tmp_path / "other.sqlite3"))
    assert Butler.create(filled, registry=str(tmp_path / "registry.sqlite3"), exist_ok=True)


def test_a_prefix_holding_other_objects_is_refused(s3_env, s3_bucket, tmp_path):
    from compstore.cas import S3BlobStore

    S3BlobStore(s3_bucket, "data").create_object("someone-elses.txt", b"hello")
    with pytest.raises(RepositoryExistsError, match="not empty"):
        Butler.create(f"s3://{s3_bucket}/data", registry=str(tmp_path / "r.sqlite3"))


def test_a_registry_of_another_repository_is_refused(filled, s3_env, s3_bucket, tmp_path):
    with pytest.raises(RepositoryExistsError, match="created for"):
        Butler.create(f"s3://{s3_bucket}/second", registry=str(tmp_path / "registry.sqlite3"))


def test_a_config_pointing_at_another_registry_is_refused(filled, s3_env, s3_bucket, tmp_path):
    """An edited config cannot send a reader to another repository's registry."""
    from compstore.cas import S3BlobStore

    Butler.create(f"s3://{s3_bucket}/other", registry=str(tmp_path / "other.sqlite3"))
    top = S3BlobStore(s3_bucket, "survey/main")
    config = json.loads(top.read_object("compstore.json"))
    config["registry"] = str(tmp_path / "other.sqlite3")
    top._put("compstore.json", json.dumps(config).encode(), "config", create=False)
    from compstore import _repository

    _repository._registries.clear()  # a new process
    with pytest.raises(RepositoryFormatError, match="was created for"):
        Butler(filled)


def test_a_missing_registry_file_is_named(filled, tmp_path):
    from compstore import _repository

    _repository._registries.clear()
    (tmp_path / "registry.sqlite3").rename(tmp_path / "moved.sqlite3")
    with pytest.raises(RepositoryFormatError, match="does not exist on this host"):
        Butler(filled)
    assert not (tmp_path / "registry.sqlite3").exists()  # opening made no empty file


def test_no_repository_at_a_prefix(s3_env, s3_bucket):
    with pytest.raises(RepositoryNotFoundError, match="no compstore repository"):
        Butler(f"s3://{s3_bucket}/nothing-here")


@pytest.mark.parametrize("url", ["s3://Bad_Bucket/x", "s3://ok-bucket/../up", "s3://ok-bucket/a//b",
                                 "s3://ok-bucket/a b"])
def test_bad_urls_are_refused(url):
    with pytest.raises(RepositoryError):
        Butler(url)


def test_a_missing_bucket_is_a_clear_error(s3_env, tmp_path):
    with pytest.raises(RepositoryError, match="cannot read"):
        Butler.create("s3://no-such-bucket-here/x", registry=str(tmp_path / "r.sqlite3"))


def _keys(url: str, s3_env) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Every object under the repository's blob store: key -> size."""
    import obstore
    from obstore.store import S3Store

    bucket, prefix = url[len("s3://"):].split("/", 1)
    store = S3Store(bucket, prefix=f"{prefix}/blobs", config=s3_env.store_options(),
                    client_options={"allow_http": True})  # fmt: skip
    return {o["path"]: o["size"] for batch in obstore.list(store) for o in batch}


def test_gc_on_object_storage_deletes_what_no_dataset_needs(s3_url, s3_env, tmp_path, sky):
    """Removed datasets' objects, packed members and a killed writer's leftovers go; the rest reads."""
    import obstore

    from compstore.testing.sky import make_exposure

    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    butler = Butler(s3_url, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    # 600x600: image, mask and variance over 1 MiB each, so their own objects (not packed).
    keep, gone = make_exposure(1, 0, size=600, seed=1), make_exposure(2, 0, size=600, seed=2)
    butler.put(keep, "calexp", visit=1, detector=0)
    butler.put(sky(1, 0)[1], "src", visit=1, detector=0)
    refs = [butler.put(gone, "calexp", visit=2, detector=0),
            butler.put(sky(2, 0)[1], "src", visit=2, detector=0)]  # fmt: skip
    before = _keys(s3_url, s3_env)
    # A writer killed after its data file, before zarr.json; and after a pack's PUT.
    blobs = butler.blobs
    leftover = f"arrays/ab/{'ab' * 16}/c.0.0"
    obstore.put(blobs._client, leftover, b"x" * 100)
    obstore.put(blobs._client, f"packs/cd/{'cd' * 16}.zip", b"y" * 100)
    butler.remove(refs)
    dry = Butler(s3_url).gc(dry_run=True)
    assert dry.arrays == 3 and dry.leftovers == 1 and dry.pack_members > 0 and dry.packs_removed >= 1
    assert set(_keys(s3_url, s3_env)) == set(before) | {leftover, f"packs/cd/{'cd' * 16}.zip"}
    report = Butler(s3_url).gc()
    assert (report.arrays, report.leftovers) == (dry.arrays, dry.leftovers)
    assert (report.pack_members, report.packs_removed) == (dry.pack_members, dry.packs_removed)
    after = _keys(s3_url, s3_env)
    assert leftover not in after and f"packs/cd/{'cd' * 16}.zip" not in after
    assert len([k for k in after if k.endswith("/zarr.json") and k.count("/") == 3]) == 3
    reader = Butler(s3_url, collections=["sfm"])
    np.testing.assert_array_equal(reader.get("calexp", visit=1, detector=0).image, keep.image)
    assert reader.get("src", visit=1, detector=0) is not None
    assert reader.verify(deep=True).ok
    again = Butler(s3_url).gc()
    assert again.components == 0 and again.packs_removed == 0 and again.leftovers == 0
    # What gc deleted can be put again (the identity cache forgot it: a new generation).
    butler.put(gone, "calexp", visit=2, detector=0)
    np.testing.assert_array_equal(Butler(s3_url, collections=["sfm"]).get(
        "calexp", visit=2, detector=0).image, gone.image)  # fmt: skip


def test_gc_on_object_storage_waits_for_a_put_in_flight(filled, s3_env):
    """The gc lock (beside the SQLite registry) is held shared by puts: gc waits for them."""
    import threading
    import time

    from compstore.gc import put_guard

    butler = Butler(filled, run="sfm")
    done = []
    with put_guard(butler.blobs, butler.cache):
        worker = threading.Thread(target=lambda: done.append(Butler(filled).gc()))
        worker.start()
        time.sleep(0.5)
        assert not done  # blocked behind the put
    worker.join(30)
    assert done and done[0].components == 0


def test_component_path_names_the_arrays_url(filled):
    with pytest.raises(BlobStoreError, match=r"s3://.*/blobs/arrays/"):
        Butler(filled, collections=["sfm"]).component_path("calexp.image", visit=1, detector=0)


def test_zarr_store_opens_a_dataset_on_object_storage(filled, sky):
    zarr = pytest.importorskip("zarr")
    butler = Butler(filled, collections=["sfm"])
    group = zarr.open_group(butler.zarr_store("calexp", visit=1, detector=0), mode="r")
    np.testing.assert_array_equal(group["image"][:], sky(1, 0)[0].image)


def test_a_catalogs_only_subset_of_an_s3_archive_to_a_local_folder(filled, tmp_path, sky):
    """Use case 8 with the archive on object storage: the catalogs and their closure, no pixels."""
    archive = Butler(filled, collections=["sfm"])
    sub = archive.subset(tmp_path / "catalogs", dataset_types=["src"])
    assert sub.verify(deep=True).ok
    local = Butler(sub.root, collections=["sfm"])
    got = {r.id for r in local.query_datasets("src")}
    assert got == {r.id for r in archive.query_datasets("src")}  # UUIDs kept
    cat = local.get("src", visit=1, detector=1)
    assert len(cat) == len(sky(1, 1)[1]) and cat.wcs == sky(1, 1)[0].wcs
    assert local.stats().arrays < archive.stats().arrays  # the pixels stayed behind
    # Read both in order: catalogs locally, calexps from the bucket, one Wcs object.
    chain = Butler([sub.root, filled], collections=["sfm"])
    assert chain.get("src", visit=1, detector=1).wcs is chain.get("calexp", visit=1, detector=1).wcs


def test_transfer_from_a_folder_into_an_s3_repository(filled, tmp_path, sky):
    folder = Butler.create(tmp_path / "local")
    writer = Butler(folder.root, run="deep")
    writer.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure, _ = sky(3, 0)
    writer.put(exposure, "calexp", visit=3, detector=0)
    dest = Butler(filled)
    report = dest.transfer_from(writer, writer.query_datasets("calexp", collections=["deep"]))
    assert report.datasets == 1 and report.components_written > 0
    again = dest.transfer_from(writer, writer.query_datasets("calexp", collections=["deep"]))
    assert again.bytes_written == 0
    got = Butler(filled, collections=["deep"]).get("calexp", visit=3, detector=0)
    np.testing.assert_array_equal(got.image, exposure.image)
    assert Butler(filled).verify(deep=True).ok


def test_a_get_fetches_its_components_ahead_and_keeps_nothing_after(filled, s3_env, sky):
    """The manifest's components are fetched at once (in parallel) and all taken by the read."""
    butler = Butler(filled, collections=["sfm"])
    butler.cache.clear()
    taken = []
    original = butler.blobs._take_ahead

    def spy(key):
        got = original(key)
        taken.append((key, got is not None))
        return got

    butler.blobs._take_ahead = spy
    s3_env.clear_requests()
    exposure = butler.get("calexp", visit=1, detector=0)
    # Nothing fetched twice (nested reads included); a pack is read by ranges (its members).
    paths = [(r.path, r.range) for r in s3_env.requests if r.method == "GET"]
    assert len(paths) == len(set(paths))
    np.testing.assert_array_equal(exposure.image, sky(1, 0)[0].image)
    hits = [key for key, hit in taken if hit]
    assert any(k.startswith("documents/") for k in hits) and any(k.startswith("arrays/") for k in hits)
    assert butler.blobs._ahead == {}  # every fetched object was read (and checked)


def test_verify_checks_the_bucket_not_the_local_cache(filled, s3_env, tmp_path):
    """Damage in the bucket is found even when every object was read into the local cache."""
    import obstore
    from obstore.store import S3Store

    cache = tmp_path / "cache"
    butler = Butler(filled, collections=["sfm"], local_cache=cache)
    butler.cache.clear()
    for visit, detector in DATA_IDS:  # every exposure's objects now cached locally
        butler.get("calexp", visit=visit, detector=detector)
    bucket = S3Store(filled.split("/")[2], prefix="survey/main",
                     config=s3_env.store_options(), client_options={"allow_http": True})
    # Big data files, and packs (the 256x256 planes are small: packed).
    data = [o["path"] for batch in obstore.list(bucket) for o in batch
            if (o["path"].endswith("/c.0.0") or o["path"].endswith(".zip")) and o["size"] > 100_000]
    assert data
    for key in data:
        raw = bytearray(obstore.get(bucket, key).bytes())
        raw[len(raw) // 2] ^= 0xFF
        obstore.put(bucket, key, bytes(raw))
    report = Butler(filled, local_cache=cache).verify(deep=True)
    assert not report.ok and report.problems


def test_small_components_are_packed_and_a_catalog_get_is_not_one_request_per_column(
    s3_url, s3_env, tmp_path, sky
):
    """A put packs its small components in one object; a catalog get reads its pack once."""
    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    writer = Butler(s3_url, run="sfm")
    writer.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    _, catalog = sky(5, 0)
    s3_env.clear_requests()
    writer.put(catalog, "src", visit=5, detector=0)
    puts = [r.path for r in s3_env.requests if r.method == "PUT"]
    assert len(puts) == 1 and "/blobs/packs/" in puts[0] and puts[0].endswith(".zip")
    columns = len(catalog.table.colnames)
    assert columns >= 10
    reader = Butler(s3_url, collections=["sfm"])
    reader.cache.clear()
    s3_env.clear_requests()
    got = reader.get("src", visit=5, detector=0)
    gets = [r for r in s3_env.requests if r.method == "GET"]
    # Ranged GETs of the pack, one per level of the catalog's manifests: its manifest,
    # then its documents (the table's manifest among them), then every column at once.
    assert len(gets) == 3 and all(r.range.startswith("bytes=") for r in gets), gets
    assert {r.path for r in gets} == {puts[0]}
    assert list(got.table.colnames) == list(catalog.table.colnames)
    for name in catalog.table.colnames:
        np.testing.assert_array_equal(np.asarray(got.table[name]), np.asarray(catalog.table[name]))


def test_a_pack_is_written_before_its_index_rows_and_those_before_the_registry_row(
    s3_url, s3_env, tmp_path, sky, monkeypatch
):
    from compstore.cas._pack import PackIndex
    from compstore.cas._s3base import S3Base

    Butler.create(s3_url, registry=str(tmp_path / "registry.sqlite3"))
    butler = Butler(s3_url, run="sfm")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    events: list[str] = []
    put, add, insert = S3Base._put, PackIndex.add, butler.registry.insert_dataset

    def spy_put(self, key, *args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("pack" if key.startswith("packs/") else key)
        return put(self, key, *args, **kwargs)

    def spy_add(self, rows):  # type: ignore[no-untyped-def]
        events.append(f"index {len(rows)}")
        return add(self, rows)

    def spy_insert(*args, **kwargs):  # type: ignore[no-untyped-def]
        events.append("registry row")
        return insert(*args, **kwargs)

    monkeypatch.setattr(S3Base, "_put", spy_put)
    monkeypatch.setattr(PackIndex, "add", spy_add)
    monkeypatch.setattr(butler.registry, "insert_dataset", spy_insert)
    butler.put(sky(6, 0)[1], "src", visit=6, detector=0)
    assert events[0] == "pack" and events[1].startswith("index ") and events[2:] == ["registry row"]
    assert int(events[1].split()[1]) > 10  # the columns, their metadata and the manifest
