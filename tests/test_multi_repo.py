"""Butler([first, second, ...]): several repositories read in order, written to the first (issue 14)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from compstore import Butler
from compstore._chain import ChainedButler
from compstore.errors import (
    CorruptBlobError,
    DatasetNotFoundError,
    DefinitionError,
    MissingCollectionError,
    MissingDatasetTypeError,
    RepositoryError,
)
from compstore.objects import CoaddInput, CoaddInputs
from compstore.testing.repository import copy_repository

DATA_IDS = [(1, 0), (1, 1), (2, 0)]


def _contents(root) -> tuple[object, ...]:
    """What a repository holds: its component files, datasets, collections, dataset types.

    (SQLite files are left out of the listing: a checkpoint changes their size
    without changing what they hold; their rows are compared instead.)
    """
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if ".sqlite3" in name:
                continue
            path = os.path.join(folder, name)
            files[os.path.relpath(path, root)] = os.path.getsize(path)
    butler = Butler(root)
    blobs = (sorted(butler.blobs.iter_arrays()), sorted(butler.blobs.iter_documents()))
    return files, blobs, sorted(map(str, butler._all_refs())), butler.query_collections(), sorted(
        t.name for t in butler.registry.dataset_types()
    )


@pytest.fixture
def archive(tmp_path, sky):
    """Repository B: calexp and src of every data ID in run ``sfm``."""
    root = tmp_path / "archive"
    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit, detector in DATA_IDS:
        exposure, catalog = sky(visit, detector)
        butler.put(exposure, "calexp", visit=visit, detector=detector)
        butler.put(catalog, "src", visit=visit, detector=detector)
    return root


@pytest.fixture
def catalogs(tmp_path, sky):
    """Repository A, made by hand: the src catalogs only (each with its Wcs and Calib), no pixels."""
    root = tmp_path / "catalogs"
    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit, detector in DATA_IDS:
        butler.put(sky(visit, detector)[1], "src", visit=visit, detector=detector)
    assert [t.name for t in butler.registry.dataset_types()] == ["src"]
    return root


def test_a_list_of_roots_opens_a_chain_and_a_list_of_one_a_plain_butler(catalogs, archive):
    chain = Butler([catalogs, archive], collections=["sfm"])
    assert isinstance(chain, ChainedButler)
    assert chain.roots == (catalogs, archive) and chain.root == catalogs
    assert repr(chain).startswith(f"Butler([{str(catalogs)!r}, {str(archive)!r}]")
    assert type(Butler(catalogs)) is Butler
    assert type(Butler([catalogs])) is Butler and Butler([catalogs]).root == catalogs
    assert isinstance(Butler((catalogs, archive)), ChainedButler)


def test_catalog_from_the_subset_calexp_from_the_archive_share_one_wcs(catalogs, archive):
    chain = Butler([catalogs, archive], collections=["sfm"])
    cat_ref = chain.find_dataset("src", visit=1, detector=0)
    exp_ref = chain.find_dataset("calexp", visit=1, detector=0)
    assert Butler(catalogs).registry.get_dataset(cat_ref.id) is not None  # from A
    assert Butler(catalogs).registry.get_dataset(exp_ref.id) is None  # from B
    cat = chain.get("src", visit=1, detector=0)
    exp = chain.get("calexp", visit=1, detector=0)
    assert cat.wcs is exp.wcs and cat.calib is exp.calib
    assert chain.get("calexp.wcs", visit=1, detector=0) is exp.wcs  # a component alone
    # A second chain Butler over the same repositories shares the identity cache.
    again = Butler([catalogs, archive], collections=["sfm"]).get("src", visit=1, detector=0)
    assert again.wcs is cat.wcs and again.calib is cat.calib
    # The values are those stored.
    plain = Butler(archive, collections=["sfm"]).get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(exp.image, plain.image)
    assert exp.wcs == plain.wcs


def test_components_are_read_from_whichever_repository_holds_them(catalogs, archive):
    """A dataset of A whose Wcs document is gone from A reads it from B (same digest)."""
    chain = Butler([catalogs, archive], collections=["sfm"])
    ref = Butler(catalogs).find_dataset("src", visit=2, detector=0, collections="sfm")
    manifest = Butler(catalogs)._io.manifest(ref.manifest)
    wcs_digest = manifest["components"]["wcs"]["document"]
    Butler(catalogs).blobs.delete(wcs_digest)
    # The sky fixture still holds the Wcs that was put; forget it so A must read the blob.
    Butler(catalogs).cache.clear()
    with pytest.raises(Exception):
        Butler(catalogs, collections=["sfm"]).get("src.wcs", visit=2, detector=0)
    cat = chain.get("src", visit=2, detector=0)
    assert cat.wcs is chain.get("calexp", visit=2, detector=0).wcs


def test_the_first_repository_wins_for_a_data_id_in_both(catalogs, archive, sky):
    """A and B both hold src visit=1 detector=0 (A's has fewer columns): A's is read and listed."""
    trimmed = sky(1, 0)[1]
    trimmed = trimmed.select_columns(list(trimmed.columns)[:2])
    writer = Butler(catalogs, run="rerun", fsync=False)
    writer.put(trimmed, "src", visit=1, detector=0)
    chain = Butler([catalogs, archive], collections=["rerun", "sfm"])
    assert chain.get("src", visit=1, detector=0).columns == trimmed.columns
    # A has src for every data ID of run sfm too; with run "rerun" only, B answers the rest.
    only_rerun = Butler([catalogs, archive], collections=["rerun"])
    with pytest.raises(DatasetNotFoundError):
        only_rerun.get("src", visit=2, detector=0)  # B has no run "rerun" either
    chain_b_first = Butler([archive, catalogs], collections=["rerun", "sfm"])
    assert chain_b_first.get("src", visit=1, detector=0).columns == sky(1, 0)[1].columns


def test_query_is_the_union_with_earlier_repositories_first(catalogs, archive, sky):
    only_a = Butler(catalogs, run="solo", fsync=False)
    only_a.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    exposure, _ = sky(1, 0)
    only_a.put(exposure, "calexp", visit=1, detector=0)
    chain = Butler([catalogs, archive], collections=["solo", "sfm"])
    refs = chain.query_datasets("calexp")
    a_ids = {r.id for r in Butler(catalogs).registry.query_datasets("calexp")}
    assert [dict(r.data_id) for r in refs] == [
        {"visit": 1, "detector": 0}, {"visit": 1, "detector": 1}, {"visit": 2, "detector": 0}
    ]
    assert refs[0].id in a_ids and not ({r.id for r in refs[1:]} & a_ids)  # A's hides B's
    # where applies in each repository
    assert [dict(r.data_id) for r in chain.query_datasets("calexp", where="detector = 1")] == [
        {"visit": 1, "detector": 1}
    ]
    # a dataset type only B has
    assert len(Butler([catalogs, archive], collections=["sfm"]).query_datasets("calexp")) == 3
    with pytest.raises(MissingDatasetTypeError) as err:
        chain.query_datasets("deepCoadd")
    assert str(catalogs) in str(err.value) and str(archive) in str(err.value)


def test_a_dataset_missing_everywhere_names_every_repository(catalogs, archive):
    chain = Butler([catalogs, archive], collections=["sfm"])
    with pytest.raises(DatasetNotFoundError) as err:
        chain.get("calexp", visit=9, detector=0)
    message = str(err.value)
    assert str(catalogs) in message and str(archive) in message
    assert "calexp" in message and "'visit': 9" in message
    assert not chain.exists("calexp", visit=9, detector=0)
    assert chain.exists("calexp", visit=1, detector=0)
    with pytest.raises(MissingDatasetTypeError) as missing:
        chain.get("deepCoadd", tract=1)
    assert str(catalogs) in str(missing.value) and str(archive) in str(missing.value)
    with pytest.raises(MissingCollectionError):
        chain.get("calexp", visit=1, detector=0, collections=["nowhere"])
    with pytest.raises(MissingCollectionError):
        chain.get("calexp:nowhere", visit=1, detector=0)


def test_writes_land_in_the_first_repository_which_verifies_clean_alone(catalogs, archive):
    before = _contents(archive)
    chain = Butler([catalogs, archive], run="jointcal", collections=["sfm"], fsync=False)
    exposure = chain.get("calexp", visit=1, detector=0)  # all its components are in B only
    result = chain.put_with_report(exposure.replace(metadata={"step": "jointcal"}), "calexp",
                                   visit=1, detector=0)
    # Its pixels were copied into A (A lacked them), nothing was hashed again.
    assert result.report.arrays_written >= 3 and result.report.bytes_written > 0
    assert result.report.bytes_hashed == 0
    assert _contents(archive) == before  # B untouched
    alone = Butler(catalogs)
    assert alone.registry.get_dataset_type("calexp").storage_class == "Exposure"
    report = alone.verify(deep=True)
    assert report.ok, report.problems
    assert chain.verify(deep=True).ok
    back = Butler(catalogs, collections=["jointcal"]).get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(back.image, exposure.image)
    assert back.wcs == exposure.wcs and back.metadata["step"] == "jointcal"
    # The same object put again costs nothing new.
    again = Butler([catalogs, archive], run="jointcal2", collections=["sfm"], fsync=False)
    second = again.put_with_report(exposure, "calexp", visit=1, detector=0)
    assert second.report.arrays_written == 0
    assert Butler(catalogs).verify(deep=True).ok
    # Through the chain, the new dataset hides B's for that data ID.
    reader = Butler([catalogs, archive], collections=["jointcal", "sfm"])
    assert reader.find_dataset("calexp", visit=1, detector=0).run == "jointcal"


def test_an_unchanged_object_put_through_the_chain_copies_the_component_it_lacks(catalogs, archive):
    """The Wcs object known to the cache (read from B) is copied, not merely named, in A."""
    chain = Butler([catalogs, archive], run="wcs_only", collections=["sfm"], fsync=False)
    chain.register_dataset_type("wcs", ("visit", "detector"), "Wcs")
    # visit 2 detector 0's Wcs: delete A's copy so that only B holds that document.
    ref = Butler(catalogs).find_dataset("src", visit=2, detector=0, collections="sfm")
    digest = Butler(catalogs)._io.manifest(ref.manifest)["components"]["wcs"]["document"]
    Butler(catalogs).blobs.delete(digest)
    wcs = chain.get("calexp.wcs", visit=2, detector=0)
    assert not Butler(catalogs).blobs.has_document(digest)
    chain.put(wcs, "wcs", visit=2, detector=0)
    assert Butler(catalogs).blobs.has_document(digest)
    assert Butler(catalogs, collections=["wcs_only"]).get("wcs", visit=2, detector=0) == wcs


def test_a_plain_butler_of_the_first_repository_does_not_trust_the_chains_digests(
    catalogs, archive
):
    chain = Butler([catalogs, archive], collections=["sfm"])
    exposure = chain.get("calexp", visit=1, detector=1)
    plain = Butler(catalogs, run="plain", fsync=False)
    plain.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    plain.put(exposure, "calexp", visit=1, detector=1)
    assert Butler(catalogs).verify(deep=True).ok


@pytest.fixture
def coadded(tmp_path, sky):
    """Repository X: calexps of visit 1 and a deepCoadd whose inputs refer to them (use case 7)."""
    root = tmp_path / "coadded"
    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    inputs = []
    for detector in range(2):
        exposure, _ = sky(1, detector)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        inputs.append(CoaddInput("calexp", {"visit": 1, "detector": detector}, wcs=exposure.wcs))
    coadd, _ = sky(2, 0)
    butler.put(coadd.replace(coadd_inputs=CoaddInputs(inputs)), "deepCoadd",
               tract=1, patch=1, band="r")
    butler.registry.close()
    return root


def test_a_reference_whose_target_is_in_a_later_repository_resolves(tmp_path, coadded):
    # A: a copy of X without the calexp rows, so its coadd refers to datasets only X holds.
    first = copy_repository(coadded, tmp_path / "coadds")
    alone = Butler(first, collections=["sfm"])
    alone.registry.remove_datasets(alone.query_datasets("calexp"))
    with pytest.raises(DatasetNotFoundError):
        alone.get("deepCoadd", tract=1, patch=1, band="r")  # dangling on its own
    dangling = alone.verify().problems
    assert dangling and all(p.dataset.data_id["patch"] == 1 for p in dangling)
    chain = Butler([first, coadded], collections=["sfm"])
    coadd = chain.get("deepCoadd", tract=1, patch=1, band="r")
    calexp = chain.get("calexp", visit=1, detector=1)
    assert coadd.coadd_inputs[1].wcs is calexp.wcs
    # A put through the chain of that coadd keeps A self-contained: a reference
    # to a dataset A lacks becomes the stored value.
    writer = Butler([first, coadded], run="copy", collections=["sfm"], fsync=False)
    writer.put(coadd, "deepCoadd", tract=1, patch=2, band="r")
    mine = Butler(first, collections=["copy"])
    assert mine.verify(deep=True).problems == dangling  # the new coadd adds no problem
    again = mine.get("deepCoadd", tract=1, patch=2, band="r")
    assert again.coadd_inputs[1].wcs == calexp.wcs


def test_provenance_and_collections_come_from_every_repository(catalogs, archive):
    chain = Butler([catalogs, archive], collections=["sfm"])
    assert ("sfm", "RUN") in chain.query_collections()
    ref = chain.find_dataset("calexp", visit=1, detector=0)
    assert chain.provenance(ref) is None  # B recorded none; looked up without error
    Butler(archive, run="other", fsync=False)
    assert ("other", "RUN") in chain.query_collections()


def test_remove_through_a_chain_refuses_a_later_repositorys_dataset(catalogs, archive):
    chain = Butler([catalogs, archive], collections=["sfm"])
    calexp = chain.find_dataset("calexp", visit=1, detector=0)
    with pytest.raises(DatasetNotFoundError) as err:
        chain.remove(calexp)
    assert str(catalogs) in str(err.value) and "first repository" in str(err.value)
    assert Butler(archive, collections=["sfm"]).exists("calexp", visit=1, detector=0)
    src = chain.find_dataset("src", visit=1, detector=0)
    assert chain.remove(src) == [src]
    assert not Butler(catalogs, collections=["sfm"]).exists("src", visit=1, detector=0)
    # Through the chain, B's src now answers for that data ID.
    assert chain.find_dataset("src", visit=1, detector=0).id != src.id


def test_aggregates_through_a_chain_are_refused_not_read_partially(catalogs, archive):
    Butler(archive).register_aggregate("src_visit", "src", over=("detector",))
    chain = Butler([catalogs, archive], collections=["sfm"])
    with pytest.raises(DefinitionError, match="aggregate"):
        chain.get("src_visit", visit=1)


def test_bad_roots_are_refused(catalogs, archive, tmp_path):
    with pytest.raises(RepositoryError, match="one repository"):
        Butler.create([tmp_path / "x", tmp_path / "y"])
    assert not (tmp_path / "x").exists()
    with pytest.raises(RepositoryError, match="one repository"):
        Butler.create([tmp_path / "x"])
    with pytest.raises(RepositoryError, match="empty list"):
        Butler([])
    with pytest.raises(RepositoryError, match="twice"):
        Butler([catalogs, archive, str(catalogs)])
    with pytest.raises(RepositoryError, match="folder path"):
        Butler([catalogs, 3])
    from compstore.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        Butler([catalogs, tmp_path / "nothing"])


def test_component_path_is_in_the_repository_that_holds_the_dataset(catalogs, archive, sky):
    """calexp is in B only: its image folder is B's, and stock zarr reads the pixels."""
    zarr = pytest.importorskip("zarr")
    chain = Butler([catalogs, archive], collections=["sfm"])
    path = chain.component_path("calexp.image", visit=1, detector=0)
    assert str(path).startswith(str(archive))
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], sky(1, 0)[0].image)
    with pytest.raises(DatasetNotFoundError):
        chain.component_path("calexp.image", visit=9, detector=0)


def test_subset_and_transfer_from_a_chain_copy_from_each_repository(catalogs, archive, tmp_path):
    """A chain as the source: src from A (first wins), calexp from B; the copy verifies alone."""
    rerun = Butler(catalogs, run="rerun", fsync=False)
    rerun.put(Butler(archive, collections=["sfm"]).get("src", visit=1, detector=0), "src",
              visit=1, detector=0)
    chain = Butler([catalogs, archive], collections=["sfm"])
    sub = chain.subset(tmp_path / "sub", dataset_types=["src", "calexp"], where="visit = 1")
    want = {(r.dataset_type, r.id) for t in ("src", "calexp")
            for r in chain.query_datasets(t, where="visit = 1")}
    got = {(r.dataset_type, r.id) for t in ("src", "calexp")
           for r in sub.query_datasets(t, collections=["sfm"])}
    assert got == want and any(t == "calexp" for t, _ in got)
    assert sub.verify(deep=True).ok
    dest = Butler.create(tmp_path / "dest")
    report = dest.transfer_from(chain, chain.query_datasets("calexp"))
    assert report.datasets == len(DATA_IDS) and report.bytes_written > 0
    assert dest.transfer_from(chain, chain.query_datasets("calexp")).bytes_written == 0
    foreign = Butler(rerun.root, collections=["rerun"]).find_dataset("src", visit=1, detector=0)
    with pytest.raises(DatasetNotFoundError, match="none of the repositories"):
        dest.transfer_from(Butler([archive, Butler.create(tmp_path / "empty").root]), [foreign])


def test_a_transfer_from_a_chain_is_all_or_nothing_across_its_repositories(
    catalogs, archive, tmp_path, sky
):
    """A conflict on the second repository's part writes no row of the first's either."""
    from compstore.errors import ConflictingDatasetError

    dest = Butler.create(tmp_path / "dest")
    clash = Butler(dest.root, run="sfm", fsync=False)
    clash.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    clash.put(sky(9, 9)[0], "calexp", visit=2, detector=0)  # another dataset, same data ID
    chain = Butler([catalogs, archive], collections=["sfm"])
    refs = chain.query_datasets("src") + chain.query_datasets("calexp")
    before = _contents(dest.root)
    with pytest.raises(ConflictingDatasetError):
        dest.transfer_from(chain, refs)
    after = Butler(dest.root)
    assert "src" not in {t.name for t in after.registry.dataset_types()} or not list(
        after.query_datasets("src", collections=["sfm"])
    )
    assert sorted(map(str, after._all_refs())) == before[2]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pipeline_on_a_chain_reads_both_and_writes_the_first(catalogs, archive, jobs):
    """Worker processes open the same chain: calexps from B, srcs from A, outputs into A."""
    from compstore.pipeline import Pipeline, execute

    chain = Butler([catalogs, archive], collections=["sfm"], run="jointcal", fsync=False)
    # The sky fixture's exposures are small: a linear fit on a few sources will do.
    pipeline = Pipeline.from_dict(
        {"tasks": {"jointcal": {"class": "jointcal", "config": {"order": 1, "min_sources": 3}}}}
    )
    report = execute(pipeline, chain, jobs=jobs)
    assert report.exit_status == 0 and not report.failed and report.succeeded, report
    alone = Butler(catalogs, collections=["jointcal"])
    outputs = alone.query_datasets("calexp")
    assert len(outputs) == len(DATA_IDS)
    assert alone.verify(deep=True).ok  # self-contained: the pixels were copied into A
    assert _contents(archive)[2] == sorted(map(str, Butler(archive)._all_refs()))


def test_a_join_defined_in_a_later_repository_opens_as_zarr_through_the_chain(tmp_path):
    """ChainedButler.zarr_store finds a definition the way get does: in any repository."""
    zarr = pytest.importorskip("zarr")
    from compstore.testing.sky import OBJECT_TABLE_MEMBERS, make_object_tables

    first, later = tmp_path / "first", tmp_path / "later"
    Butler.create(first)
    Butler.create(later)
    butler = Butler(later, run="coadd", fsync=False)
    for name in OBJECT_TABLE_MEMBERS:
        butler.register_dataset_type(name, ("tract", "patch", "band"), "SourceCatalog")
    for name, cat in make_object_tables(9, 0, rows=50).items():
        butler.put(cat, name, tract=9, patch=0, band="r")
    butler.register_join("objectTable", list(OBJECT_TABLE_MEMBERS), on="id")
    chain = Butler([first, later], collections=["coadd"])
    expected = chain.get("objectTable", tract=9, patch=0, band="r")
    group = zarr.open_group(chain.zarr_store("objectTable", tract=9, patch=0, band="r"), mode="r")
    np.testing.assert_array_equal(np.asarray(group["id"][:]), np.asarray(expected["id"]))


def test_a_chain_of_blob_stores_is_as_durable_and_writable_as_its_first(tmp_path):
    from compstore._chain import ChainedBlobStore
    from compstore.cas import LocalBlobStore, MemoryBlobStore

    first = LocalBlobStore(tmp_path / "blobs", fsync=True)
    later = MemoryBlobStore()
    chain = ChainedBlobStore([first, later])
    assert chain.durable and not chain.read_only
    assert chain.location == f"{first.location} (then 1 more, only read)"
    alone = ChainedBlobStore([LocalBlobStore(tmp_path / "blobs", fsync=False, read_only=True)])
    assert not alone.durable and alone.read_only and alone.location == first.location
    # It compares on a digest hit as its first does: in its first (format 3 repositories).
    assert not chain.compare_on_hit
    comparing = LocalBlobStore(tmp_path / "f3", fsync=False, compare_on_hit=True)
    digest = comparing.put_document(b'{"a":1}')
    later.put_document(b'{"a":2}', digest=digest)  # other bytes under that digest, later
    chain = ChainedBlobStore([comparing, later])
    assert chain.compare_on_hit
    chain.check_hit(digest, b'{"a":1}')
    with pytest.raises(CorruptBlobError, match=f"document {digest}"):
        chain.check_hit(digest, b'{"a":2}')
