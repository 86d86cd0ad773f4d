"""Butler.transfer_from: datasets copied between existing repositories, as stored, all or nothing."""

from __future__ import annotations

import filecmp
import os

import numpy as np
import pytest

from compstore import Butler
from compstore.butler.transfer import copy_component, copy_through
from compstore.cas import LocalBlobStore
from compstore.errors import ConflictingDatasetError, CorruptBlobError, DatasetNotFoundError
from compstore.registry import DatasetRef
from compstore.testing.digests import colliding_per_kind
from compstore.testing.repository import blob_bytes
from compstore.testing.sky import make_catalog, make_exposure


@pytest.fixture
def source(tmp_path):
    root = tmp_path / "source"
    Butler.create(root)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in (1, 2):
        for detector in (0, 1):
            # 600² float32 planes are over 1 MiB: array folders (with compstore.sums), not packs
            exposure = make_exposure(visit, detector, size=600 if detector == 0 else 64)
            butler.put_many([
                (exposure, "calexp", {"visit": visit, "detector": detector}),
                (make_catalog(exposure), "src", {"visit": visit, "detector": detector}),
            ])
    butler.registry.record_provenance(
        butler.find_dataset("src", visit=1, detector=0).id, "measure", "MeasureTask", {"sigma": 3},
        [butler.find_dataset("calexp", visit=1, detector=0).id],
    )
    return butler


@pytest.fixture
def dest(tmp_path):
    return Butler.create(tmp_path / "dest")


def test_transfer_keeps_ids_provenance_and_values(source, dest):
    refs = source.query_datasets("src") + source.query_datasets("calexp", where="visit = 1")
    report = dest.transfer_from(source, refs)
    assert report.datasets == len(refs) == 6 and {r.id for r in report.refs} == {r.id for r in refs}
    for ref in refs:
        assert dest.registry.get_dataset(ref.id) == ref
        assert dest.provenance(ref) == source.provenance(ref)
    assert sum(dest.provenance(r) is not None for r in refs) == 1
    exposure, copy = source.get("calexp", visit=1, detector=0), dest.get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(exposure.image, copy.image)
    np.testing.assert_array_equal(exposure.mask.array, copy.mask.array)
    assert exposure.wcs == copy.wcs and exposure.psf == copy.psf
    # the catalog and the exposure share their Wcs object in the destination as in the source
    assert dest.get("src", visit=1, detector=0).wcs is copy.wcs
    assert dest.verify(deep=True).ok


def test_big_arrays_are_copied_as_stored(source, dest):
    dest.transfer_from(source, source.query_datasets("calexp", where="detector = 0"))
    image = source._io.manifest(source.find_dataset("calexp", visit=1, detector=0).manifest)
    digest = image["components"]["image"]["array"]
    a = source.blobs.root / source.blobs.component_path(digest)
    b = dest.blobs.root / dest.blobs.component_path(digest)
    names = sorted(os.listdir(a))
    assert "compstore.sums" in names and sorted(os.listdir(b)) == names
    assert all(filecmp.cmp(a / n, b / n, shallow=False) for n in names)
    # read in part: the copied checksums are used
    cut = dest.blobs.get_array(digest, (slice(10, 20), slice(30, 50)))
    np.testing.assert_array_equal(cut, source.blobs.get_array(digest)[10:20, 30:50])


def test_second_transfer_writes_no_bytes(source, dest):
    refs = source.query_datasets("calexp") + source.query_datasets("src")
    before = blob_bytes(dest.root)
    first = dest.transfer_from(source, refs)
    grown = blob_bytes(dest.root) - before
    assert grown > 4 * 600 * 600 * 4 and first.bytes_written > 0
    assert first.components_written == first.components
    again = blob_bytes(dest.root)
    second = dest.transfer_from(source, refs)
    assert blob_bytes(dest.root) == again  # measured on disk: 0 bytes
    assert second.bytes_written == 0 and second.components_written == 0 and second.datasets == 0
    assert {r.id for r in second.refs} == {r.id for r in refs}
    assert dest.registry.count_datasets() == len(refs)


def test_components_the_destination_has_are_skipped(source, dest):
    # the destination holds the same exposure under another dataset: its planes are not copied again
    writer = Butler(dest.root, run="mine")
    writer.register_dataset_type("raw", ("visit", "detector"), "Exposure")
    writer.put(source.get("calexp", visit=2, detector=0), "raw", visit=2, detector=0)
    before = blob_bytes(dest.root)
    report = dest.transfer_from(source, source.query_datasets("calexp", where="visit = 2 AND detector = 0"))
    assert report.components_written < report.components
    assert blob_bytes(dest.root) - before < 100_000  # a 600² exposure is ~3 MiB
    assert dest.verify(deep=True).ok


def test_transfer_is_all_or_nothing(source, dest):
    # the destination has another src for visit 2, detector 1 in run sfm: a conflict
    writer = Butler(dest.root, run="sfm")
    writer.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    writer.put(make_catalog(make_exposure(7, 7, size=64)), "src", visit=2, detector=1)
    before = dest.registry.count_datasets()
    with pytest.raises(ConflictingDatasetError, match="sfm"):
        dest.transfer_from(source, source.query_datasets("src"))
    assert dest.registry.count_datasets() == before  # not even the three that fitted
    assert all(dest.registry.get_dataset(r.id) is None for r in source.query_datasets("src"))
    assert Butler(dest.root).verify().ok
    # a UUID the destination uses for another dataset: refused too
    mine = writer.find_dataset("src", visit=2, detector=1)
    other = source.find_dataset("src", visit=1, detector=0)
    clash = DatasetRef(mine.id, other.dataset_type, other.data_id, other.run, other.manifest)
    with pytest.raises(DatasetNotFoundError):
        dest.transfer_from(source, [clash])  # not a dataset of the source


def test_uuid_taken_in_destination_is_a_conflict(source, dest):
    ref = source.find_dataset("src", visit=1, detector=1)
    dest.transfer_from(source, [ref])
    # the destination's row is changed behind compstore's back: same ID, other manifest
    other = source.find_dataset("src", visit=2, detector=1)
    with dest.registry.transaction():
        dest.registry.remove_datasets([ref])
        dest.registry.insert_dataset("src", dict(ref.data_id), "sfm", other.manifest, id=ref.id)
    with pytest.raises(ConflictingDatasetError, match=str(ref.id)):
        dest.transfer_from(source, [ref])


def test_refs_must_come_from_the_source(source, dest, tmp_path):
    stranger = Butler.create(tmp_path / "stranger")
    writer = Butler(stranger.root, run="sfm")
    writer.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    ref = writer.put(make_catalog(make_exposure(5, 5, size=64)), "src", visit=5, detector=5)
    with pytest.raises(DatasetNotFoundError, match=str(ref.id)):
        dest.transfer_from(source, [ref])
    assert blob_bytes(dest.root) == blob_bytes(Butler.create(tmp_path / "empty").root)


def test_transfer_from_a_repository_written_without_fsync(source, tmp_path):
    Butler.create(tmp_path / "fast")
    scratch = Butler(tmp_path / "fast", run="sfm", fsync=False)
    scratch.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    scratch.put(make_catalog(make_exposure(3, 0, size=64)), "src", visit=3, detector=0)
    source.transfer_from(scratch, scratch.query_datasets("src"))
    assert len(source.get("src", visit=3, detector=0)) == len(scratch.get("src", visit=3, detector=0))
    assert source.verify(deep=True).ok


def test_a_transfer_waits_for_a_running_gc_of_the_destination(source, tmp_path):
    """The copy holds the destination's gc lock shared: a sweep in progress finishes first,
    and none can start between its existence checks and its registry rows."""
    import threading
    import time

    from compstore.cas._gclock import sweep_guard

    dest = Butler.create(tmp_path / "dest")
    done = threading.Event()

    def copy() -> None:
        dest.transfer_from(source, source.query_datasets("src"))
        done.set()

    with sweep_guard(str(dest.blobs.root), bump=False):
        worker = threading.Thread(target=copy)
        worker.start()
        time.sleep(0.5)
        assert not done.is_set()  # waiting for the sweep
    worker.join(timeout=60)
    assert done.is_set()
    assert len(dest.query_datasets("src", collections=["sfm"])) == 4
    assert dest.verify(deep=True).ok


# -- a digest the destination holds with other content ----------------------------------
COLLIDING = colliding_per_kind()


@pytest.mark.parametrize("copy", [copy_component, copy_through])
@pytest.mark.parametrize("packs", [False, True])
def test_a_copy_onto_a_colliding_component_is_refused_not_shared(tmp_path, copy, packs):
    def store(name, compare=True):
        return LocalBlobStore(tmp_path / name, fsync=False, packs=packs,
                              digest_algorithm=COLLIDING, compare_on_hit=compare)

    src, dst = store("src"), store("dst")
    document, array = src.put_document(b'{"honest":1}'), src.put_array(np.ones(4))
    planted = (dst.put_document(b'{"planted":1}'), dst.put_array(np.zeros(4)))
    assert planted == (document, array)  # the destination holds other bytes under both digests
    src.sync()
    dst.sync()
    with pytest.raises(CorruptBlobError, match=f"document {document}"):
        copy(src, dst, document, "document")
    with pytest.raises(CorruptBlobError, match=f"array {array}"):
        copy(src, dst, array, "array")
    assert dst.get_document(document) == b'{"planted":1}'  # nothing was written over it
    # The same bytes are a hit as before: nothing copied.
    same = store("same")
    same.put_document(b'{"honest":1}')
    same.put_array(np.ones(4))
    same.sync()
    assert copy(src, same, document, "document") == 0 and copy(src, same, array, "array") == 0
    # A destination that trusts its digests (format 1 and 2) skips without reading.
    trusting = store("dst", compare=False)
    assert copy(src, trusting, document, "document") == 0 and copy(src, trusting, array, "array") == 0
