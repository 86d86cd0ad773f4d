"""Butler.subset: a new repository of chosen datasets and exactly the closure of what they name."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compstore import Butler
from compstore.demo import run_demo
from compstore.errors import (
    DatasetNotFoundError,
    MissingDatasetTypeError,
    RepositoryError,
    RepositoryExistsError,
)
from compstore.registry import CollectionType
from compstore.testing.repository import blob_bytes, copy_repository
from compstore.testing.sky import make_catalog, make_exposure
from compstore.transfer import closure

CATALOG_TYPES = ["src", "deepCoadd_meas", "deepCoadd_forced_src", "deepCoadd_ref"]
DEMO_LINES: list[str] = []  # what run_demo printed in the module's fixture


@pytest.fixture(scope="module")
def source_template(tmp_path_factory):
    """The demo repository (2 visits x 2 detectors of 256²), plus a TAGGED and two CHAINED collections."""
    root = tmp_path_factory.mktemp("subset") / "demo"
    run_demo(root, visits=2, detectors=2, size=256, out=DEMO_LINES.append)
    butler = Butler(root)
    best = butler.query_datasets("src", where="visit = 1", collections=["sfm"])
    butler.register_collection("best", "TAGGED")
    butler.tag("best", best + butler.query_datasets("calexp", collections=["sfm"]))
    butler.register_collection("all", "CHAINED")
    butler.collection_chain("all", ["best", "sfm", "coadd"])
    butler.register_collection("coadds_only", "CHAINED")
    butler.collection_chain("coadds_only", ["coadd"])
    butler.registry.close()
    return root


@pytest.fixture
def source(source_template, tmp_path):
    return Butler(copy_repository(source_template, tmp_path / "source"))


def _components(butler: Butler) -> set[str]:
    return set(butler.blobs.iter_arrays()) | set(butler.blobs.iter_documents())


def _expected_closure(butler: Butler, refs) -> set[str]:
    """The closure, computed here by walking the manifests independently of compstore.transfer."""
    found: set[str] = set()
    stack = [ref.manifest for ref in refs]
    while stack:
        digest = stack.pop()
        if digest in found:
            continue
        found.add(digest)
        for entry in butler._io.manifest(digest)["components"].values():
            for kind in ("array", "document"):
                if kind in entry:
                    found.add(entry[kind])
            if "manifest" in entry:
                stack.append(entry["manifest"])
    return found


def _is_plane(shape: tuple[int, ...]) -> bool:
    """An image-like array: 2-D, more than one row and column (a (300, 1) column is not)."""
    return len(shape) == 2 and min(shape) > 1


def _empty_blob_bytes(tmp_path) -> int:
    Butler.create(tmp_path / "empty")
    return blob_bytes(tmp_path / "empty")


def test_catalogs_only_subset_holds_the_closure_and_no_pixels(source, tmp_path):
    chosen = [r for t in CATALOG_TYPES for r in source.query_datasets(t)]
    cats = source.subset(tmp_path / "cats", dataset_types=CATALOG_TYPES)
    # exactly the closure, nothing else
    assert _components(cats) == _expected_closure(source, chosen)
    # no pixels: no array of any Exposure (image, mask, variance planes) is in the subset
    exposures = [r for t in ("calexp", "deepCoadd", "deepCoadd_calexp") for r in source.query_datasets(t)]
    pixels = {
        d for d in _expected_closure(source, exposures)
        if source.blobs.has_array(d) and _is_plane(source.blobs.array_info(d).shape)
    }
    arrays = set(cats.blobs.iter_arrays())
    assert len(pixels) > 10 and arrays and not pixels & arrays
    pixel_bytes = sum(cats.blobs.stored_bytes(d) for d in arrays if _is_plane(cats.blobs.array_info(d).shape))
    assert pixel_bytes == 0
    # the same datasets: UUIDs, runs, data IDs, manifests
    got = {(r.id, r.dataset_type, r.run, dict(r.data_id).items().__repr__(), r.manifest)
           for t in CATALOG_TYPES for r in cats.query_datasets(t)}
    want = {(r.id, r.dataset_type, r.run, dict(r.data_id).items().__repr__(), r.manifest) for r in chosen}
    assert got == want
    # bytes written: within 5% of what the closure occupies in the source
    stored = sum(source.blobs.stored_bytes(d) for d in _components(cats))
    assert sum(cats.blobs.stored_bytes(d) for d in _components(cats)) == stored
    written = blob_bytes(cats.root) - _empty_blob_bytes(tmp_path)
    assert written <= 1.05 * _footprint(source, _components(cats))
    assert written < blob_bytes(source.root) / 10


def _footprint(butler: Butler, digests) -> int:
    """Bytes the components take in ``butler``'s blob store, zip headers of packed members included."""
    total = 0
    for digest in digests:
        member = butler.blobs._packed(digest, None)
        if member is None:
            total += butler.blobs.stored_bytes(digest)
            continue
        names = 1 if member.kind == "document" else (2 if member.key is not None else 1)
        # each zip member: a 30-byte local header and 46-byte central entry, each with its name
        total += butler.blobs.stored_bytes(digest) + names * (76 + 2 * 45)
    return total


def test_subset_is_a_normal_repository(source, tmp_path):
    cats = source.subset(tmp_path / "cats", dataset_types=CATALOG_TYPES)
    report = cats.verify(deep=True)
    assert report.ok, report
    # reads equal what the source reads
    pairs = []
    for name in CATALOG_TYPES:
        for ref in source.query_datasets(name):
            a, b = source.get(ref), cats.get(ref)
            assert a.columns == b.columns and len(a) == len(b)
            for column in a.columns:
                np.testing.assert_array_equal(np.asarray(a[column]), np.asarray(b[column]))
            assert a.wcs == b.wcs and a.calib == b.calib
            pairs.append((a, b))
    # shared Wcs and Calib objects stay shared (and only those)
    assert any(x[1].wcs is y[1].wcs for x, y in itertools.combinations(pairs, 2))
    for (sa, ca), (sb, cb) in itertools.combinations(pairs, 2):
        assert (sa.wcs is sb.wcs) == (ca.wcs is cb.wcs)
        assert (sa.calib is sb.calib) == (ca.calib is cb.calib)
    # it takes new puts
    writer = Butler(cats.root, run="new")
    exposure = make_exposure(9, 3, size=64)
    ref = writer.put(make_catalog(exposure), "src", visit=9, detector=3)
    assert len(writer.get(ref)) == len(make_catalog(exposure))
    writer.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    writer.put(exposure, "calexp", visit=9, detector=3)
    assert Butler(cats.root).verify(deep=True).ok


def test_provenance_types_and_definitions_are_carried(source, tmp_path):
    made = source.subset(tmp_path / "made", dataset_types=["calexp", "deepCoadd"])
    with_provenance = 0
    for ref in made.query_datasets("calexp") + made.query_datasets("deepCoadd"):
        prov = source.provenance(ref)
        assert made.provenance(ref) == prov
        with_provenance += prov is not None
    assert with_provenance == 4 + 7  # jointcal's calexps and the coadds
    cats = source.subset(tmp_path / "cats", dataset_types=CATALOG_TYPES)
    for name in CATALOG_TYPES:
        assert cats.registry.get_dataset_type(name) == source.registry.get_dataset_type(name)
    # src_visit (over src) and objectTable (over the three coadd catalogs) come along, calexp_visit not
    assert {d.name for d in cats.registry.definitions()} == {"src_visit", "objectTable"}
    visit = cats.get("src_visit", visit=1, collections=["sfm"])
    assert len(visit) == len(source.get("src_visit", visit=1, collections=["sfm"]))


def test_optional_dimensions_are_carried(source, tmp_path):
    calexps = source.subset(tmp_path / "c", dataset_types=["calexp"])
    assert calexps.registry.get_dataset_type("calexp") == source.registry.get_dataset_type("calexp")
    assert calexps.registry.get_dataset_type("calexp").optional_dimensions == ("tract",)
    assert len(calexps.query_datasets("calexp")) == len(source.query_datasets("calexp"))
    assert calexps.verify(deep=True).ok


def test_collections_are_carried_as_far_as_they_concern_the_datasets(source, tmp_path):
    cats = source.subset(tmp_path / "cats", dataset_types=["src"], where="detector = 12")
    chosen = source.query_datasets("src", where="detector = 12")
    assert {r.id for r in cats.query_datasets("src")} == {r.id for r in chosen}
    reg = cats.registry
    assert set(reg.query_collections()) == {"sfm", "best", "all"}
    assert reg.collection_type("best") is CollectionType.TAGGED
    # the tag holds the chosen src of visit 1 only: no calexp, no other detector
    tagged = reg.query_datasets("src", collections=["best"])
    assert [dict(r.data_id) for r in tagged] == [{"visit": 1, "detector": 12}]
    assert reg.get_chain("all") == ("best", "sfm")  # "coadd" was not carried
    ref = cats.find_dataset("src", visit=1, detector=12, collections=["all"])
    assert ref.id == source.find_dataset("src", visit=1, detector=12, collections=["all"]).id


def test_where_and_collections_choose(source, tmp_path):
    one = source.subset(tmp_path / "one", ["src"], where="visit = 2", collections=["sfm"])
    assert [r.data_id["visit"] for r in one.query_datasets("src")] == [2, 2]
    none = source.subset(tmp_path / "none", ["src"], where="visit = 99")
    assert none.query_datasets("src") == []  # the type is there, with no dataset
    assert _components(none) == set()


def test_existing_destination_is_refused(source, tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    before = blob_bytes(source.root)
    with pytest.raises(RepositoryExistsError):
        source.subset(dest, ["src"])
    assert (dest / "notes.txt").read_text() == "mine" and os.listdir(dest) == ["notes.txt"]
    source.subset(tmp_path / "cats", ["src"])
    with pytest.raises(RepositoryExistsError, match="already"):
        source.subset(tmp_path / "cats", ["src"])
    assert blob_bytes(source.root) == before
    (tmp_path / "empty").mkdir()
    assert len(source.subset(tmp_path / "empty", ["src"]).query_datasets("src")) == 4


def test_bad_input_creates_nothing(source, tmp_path):
    with pytest.raises(MissingDatasetTypeError):
        source.subset(tmp_path / "x", ["nope"])
    assert not (tmp_path / "x").exists()
    with pytest.raises(RepositoryError, match="one repository"):
        source.subset([tmp_path / "x", tmp_path / "y"], CATALOG_TYPES)
    assert not (tmp_path / "x").exists()


def test_coadd_input_references_are_carried_not_resolved(source, tmp_path):
    coadds = source.subset(tmp_path / "coadds", ["deepCoadd"])
    ref = coadds.query_datasets("deepCoadd")[0]
    # the pixels of the coadd are there, the calexps it refers to are not
    assert coadds.query_datasets("deepCoadd")
    np.testing.assert_array_equal(
        coadds.get("deepCoadd.image", ref.data_id, collections=[ref.run]),
        source.get("deepCoadd.image", ref.data_id, collections=[ref.run]),
    )
    manifest = coadds._io.manifest(coadds._io.manifest(ref.manifest)["components"]["coadd_inputs"]["manifest"])
    targets = {e["dataset"] for e in manifest["components"].values() if "dataset" in e}
    assert targets
    with pytest.raises(DatasetNotFoundError) as err:
        coadds.get(ref)
    assert any(t in str(err.value) for t in targets)
    report = coadds.verify()
    assert report.problems and all("dangling reference" in str(p) for p in report.problems)
    # transfer the targets (of every coadd): the references resolve, to the same values
    every = {p.digest for p in report.problems}
    assert targets <= every
    inputs = [r for r in source.query_datasets("calexp") if str(r.id) in every]
    assert len(inputs) == len(every)
    coadds.transfer_from(source, inputs)
    got, want = coadds.get(ref), source.get(ref)
    np.testing.assert_array_equal(got.image, want.image)
    assert got.coadd_inputs == want.coadd_inputs
    assert coadds.verify(deep=True).ok


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.sampled_from(["src", "calexp", "deepCoadd_meas", "deepCoadd_ref", "deepCoadd_calexp"]),
               min_size=1))
def test_closure_invariants(source, tmp_path_factory, types):
    dest = tmp_path_factory.mktemp("h") / "subset"
    names = sorted(types)
    chosen = [r for t in names for r in source.query_datasets(t)]
    made = source.subset(dest, names)
    # the subset holds exactly the chosen datasets and exactly their closure
    assert {r.id for t in names for r in made.query_datasets(t)} == {r.id for r in chosen}
    assert _components(made) == _expected_closure(source, chosen) == set(closure(source, chosen))
    # every problem verify finds is a reference to a dataset that was not chosen
    report = made.verify(deep=True)
    ids = {str(r.id) for r in chosen}
    for problem in report.problems:
        assert "dangling reference" in str(problem)
        assert str(problem).split("dangling reference: ")[1][:36] not in ids


def test_demo_ends_with_a_catalogs_only_subset(source_template):
    dest = source_template.parent / "demo-catalogs"
    cats = Butler(dest)
    assert sorted(t.name for t in cats.registry.dataset_types()) == sorted(CATALOG_TYPES)
    tail = DEMO_LINES[-3:]
    assert tail[0].startswith(f"catalogs-only subset {dest.resolve()} (")
    assert tail[0].endswith(f"{cats.registry.count_datasets()} datasets")
    assert tail[1] == f"subset size on disk:          {blob_bytes(dest) / 1024**2:.2f} MiB, pixel bytes 0"
    assert tail[2].startswith("full repository size on disk: ")
    assert blob_bytes(dest) * 5 < blob_bytes(source_template)
    assert cats.verify(deep=True).ok
