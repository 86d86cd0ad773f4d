"""Butler.remove_run and Butler.gc: what no dataset needs goes, everything else reads the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compstore import Butler
from compstore.errors import (
    CollectionTypeError,
    CorruptBlobError,
    DatasetInUseError,
    MissingCollectionError,
)
from compstore.gc import GcReport
from compstore.objects import CoaddInput, CoaddInputs


def _disk_bytes(root: Path) -> int:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def _assert_same_exposure(got, want):
    np.testing.assert_array_equal(got.image, want.image)
    np.testing.assert_array_equal(got.variance, want.variance)
    assert got.wcs == want.wcs


def _fill(butler, sky, run, visits=(1, 2), detectors=(0, 1)):
    b = Butler(butler.root, run=run)
    for visit in visits:
        for detector in detectors:
            exposure, catalog = sky(visit, detector)
            b.put(exposure, "calexp", visit=visit, detector=detector)
            b.put(catalog, "src", visit=visit, detector=detector)
    return b


def test_gc_after_removing_everything_leaves_the_empty_size(repo, butler, sky):
    Butler(repo).gc()  # the lock files exist from here on, as in any used repository
    empty = _disk_bytes(repo)
    _fill(butler, sky, "sfm")
    full = _disk_bytes(repo)
    assert full > empty + 500_000
    removed = butler.remove_run("sfm")
    assert len(removed) == 8
    report = Butler(repo).gc()
    assert isinstance(report, GcReport) and not report.dry_run
    assert report.components > 0 and report.bytes_freed > 0 and report.live == 0
    after = _disk_bytes(repo)
    assert after - empty < 8 * 1024, (empty, full, after)
    again = Butler(repo).gc()
    assert again.components == 0 and again.bytes_freed == 0


def test_gc_keeps_every_byte_the_remaining_datasets_need(repo, butler, sky):
    _fill(butler, sky, "sfm")
    other = _fill(butler, sky, "other", visits=(1, 3))  # visit 1 shared with sfm
    butler.remove_run("sfm")
    dry = Butler(repo).gc(dry_run=True)
    assert dry.dry_run and dry.components > 0
    assert Butler(repo).verify().unreferenced > 0  # the dry run deleted nothing
    report = Butler(repo).gc()
    assert report.components == dry.components
    assert report.bytes_freed == dry.bytes_freed
    fresh = Butler(repo, collections="other")
    verify = fresh.verify(deep=True)
    assert verify.ok and verify.unreferenced == 0 and verify.datasets == 8
    for v in (1, 3):
        for d in (0, 1):
            exposure, catalog = sky(v, d)
            _assert_same_exposure(fresh.get("calexp", visit=v, detector=d), exposure)
            got = fresh.get("src", visit=v, detector=d)
            for name in catalog.columns:
                np.testing.assert_array_equal(got.table[name], catalog.table[name])
    assert other.run == "other"


def test_remove_run_refuses_while_other_runs_refer_to_it(repo, butler, sky):
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    coadder = Butler(repo, run="coadd")
    coadd, _ = sky(2, 0)
    inputs = CoaddInputs([CoaddInput("calexp", {"visit": 1, "detector": 0}, wcs=exposure.wcs)])
    coadder.put(coadd.replace(coadd_inputs=inputs), "deepCoadd", tract=1, patch=1, band="r")
    with pytest.raises(DatasetInUseError) as err:
        butler.remove_run("sfm")
    assert "referrers=True" in str(err.value) and err.value.referrers[0].run == "coadd"
    assert Butler(repo).registry.collection_type("sfm").name == "RUN"  # nothing removed
    would = butler.remove_run("sfm", referrers=True, dry_run=True)
    assert sorted(r.dataset_type for r in would) == ["calexp", "deepCoadd"]
    assert Butler(repo, collections="coadd").exists("deepCoadd", tract=1, patch=1, band="r")
    butler.remove_run("sfm", referrers=True)
    fresh = Butler(repo)
    assert "sfm" not in [name for name, _ in fresh.query_collections()]
    assert fresh.registry.count_datasets() == 0
    fresh.gc()
    assert fresh.verify(deep=True).ok


def test_remove_run_takes_the_run_out_of_chains(repo, butler, sky):
    _fill(butler, sky, "sfm", visits=(1,), detectors=(0,))
    _fill(butler, sky, "jointcal", visits=(2,), detectors=(0,))
    butler.collection_chain("all", ["jointcal", "sfm"])
    butler.remove_run("jointcal")
    fresh = Butler(repo)
    assert fresh.registry.get_chain("all") == ("sfm",)
    assert Butler(repo, collections="all").exists("calexp", visit=1, detector=0)
    with pytest.raises(MissingCollectionError):
        fresh.remove_run("jointcal")
    with pytest.raises(CollectionTypeError):
        fresh.remove_run("all")


def test_gc_refuses_to_sweep_when_a_manifest_is_unreadable(repo, butler, sky):
    _fill(butler, sky, "sfm", visits=(1,), detectors=(0,))
    _fill(butler, sky, "scratch", visits=(5,), detectors=(0,))
    Butler(repo).remove_run("scratch")
    ref = butler.find_dataset("calexp", visit=1, detector=0)
    butler.blobs.delete(ref.manifest)  # damage: a registered dataset lost its manifest
    with pytest.raises(CorruptBlobError, match="stopped before deleting anything"):
        Butler(repo).gc()
    assert Butler(repo).verify().unreferenced > 0  # nothing was swept


def test_gc_repacks_a_mostly_dead_pack_and_reads_stay_right(repo, sky):
    b = Butler(repo, run="a")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    catalogs = {d: sky(1, d)[1] for d in range(6)}
    # One put_many: one pack holding all six catalogs' small components.
    b.put_many([(catalogs[d], "src", {"visit": 1, "detector": d}) for d in range(6)])
    keep = b.find_dataset("src", visit=1, detector=0)
    b.remove([b.find_dataset("src", visit=1, detector=d) for d in range(1, 6)])
    reader = Butler(repo, collections="a")
    assert len(reader.get("src", visit=1, detector=0)) == len(catalogs[0])  # places looked up
    packs_before = sorted((repo / "blobs" / "packs").rglob("*.zip"))
    bytes_before = sum(p.stat().st_size for p in packs_before)
    report = Butler(repo).gc()
    assert report.packs_rewritten >= 1, report
    packs_after = sorted((repo / "blobs" / "packs").rglob("*.zip"))
    assert set(packs_after).isdisjoint(packs_before)
    assert sum(p.stat().st_size for p in packs_after) < bytes_before
    # The Butler that read before the repack (its blob store remembers the old pack),
    # and a fresh one, read the same rows.
    reader.cache.clear()
    for r in (reader, Butler(repo, collections="a")):
        got = r.get("src", visit=1, detector=0)
        for name in catalogs[0].columns:
            np.testing.assert_array_equal(got.table[name], catalogs[0].table[name])
    assert Butler(repo).verify(deep=True).ok
    assert keep.manifest in {r.manifest for r in Butler(repo, collections="a").query_datasets("src")}


def test_gc_removes_dead_writers_leftovers(repo, butler, sky):
    staging = repo / "blobs" / "staging"
    dead = staging / "999999999-0123456789ab"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "junk").write_bytes(b"x" * 1000)
    partial = repo / "blobs" / "documents" / "00" / "x.json.999999999-abcd-1.partial"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"{}")
    report = Butler(repo).gc()
    assert report.leftovers == 2
    assert not dead.exists() and not partial.exists()


def test_a_put_after_gc_rewrites_what_a_remembered_digest_no_longer_names(repo, butler, sky):
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    got = butler.get("calexp", visit=1, detector=0)  # its Wcs, Calib... remember their digests
    butler.remove(butler.find_dataset("calexp", visit=1, detector=0))
    Butler(repo).gc()  # (another Butler: as another process would)
    butler.put(got, "calexp", visit=2, detector=0)
    fresh = Butler(repo, collections="sfm")
    assert fresh.verify(deep=True).ok
    again = fresh.get("calexp", visit=2, detector=0)
    _assert_same_exposure(again, exposure)


def test_gc_dry_run_on_a_read_only_check_changes_nothing(repo, butler, sky):
    _fill(butler, sky, "sfm", visits=(1,), detectors=(0,))
    butler.remove_run("sfm")
    before = {p: p.stat().st_size for p in repo.rglob("*") if p.is_file() and "sqlite3" not in p.name}
    Butler(repo).gc(dry_run=True)
    after = {p: p.stat().st_size for p in repo.rglob("*") if p.is_file() and "sqlite3" not in p.name}
    assert before == after
