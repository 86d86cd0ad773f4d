"""Exposure storage beyond plain components: derived images, attribute components, precursor refs."""

from __future__ import annotations

import numpy as np
import pytest

from compstore import Background, Box2I, Butler
from compstore.objects import CoaddInput, CoaddInputs


@pytest.fixture
def coadd_butler(butler):
    butler.register_dataset_type("deepCoadd", ("tract", "patch", "band"), "Exposure")
    butler.register_dataset_type("deepCoadd_calexp", ("tract", "patch", "band"), "Exposure")
    return butler


def test_background_subtracted_exposure_stores_no_second_image(coadd_butler, sky):
    exposure, _ = sky(1, 0)
    coadd_butler.put(exposure, "deepCoadd", tract=1, patch=2, band="r")
    stored = coadd_butler.get("deepCoadd", tract=1, patch=2, band="r")
    background = Background(np.array([[100.0, 120.0], [140.0, 90.0]]), stored.bbox)
    subtracted = background.subtract_from(stored)
    detected = subtracted.mask.with_plane("DETECTED", subtracted.image > 500)
    result = coadd_butler.put_with_report(
        subtracted.replace(mask=detected), "deepCoadd_calexp", tract=1, patch=2, band="r"
    )
    assert result.report.arrays_written == 1  # the DETECTED plane only
    coadd_butler.cache.clear()
    got = Butler(coadd_butler.root, collections="sfm").get("deepCoadd_calexp", tract=1, patch=2, band="r")
    np.testing.assert_array_equal(got.image, subtracted.image)  # bit for bit
    assert got.background == background
    np.testing.assert_array_equal(got.mask.plane("DETECTED"), subtracted.image > 500)
    assert not got.image.flags.writeable
    # component reads and cutouts of the derived image agree too
    image = coadd_butler.get("deepCoadd_calexp.image", tract=1, patch=2, band="r")
    np.testing.assert_array_equal(image, subtracted.image)
    box = Box2I((stored.xy0[0] + 7, stored.xy0[1] + 9), (50, 40))
    cut = coadd_butler.get("deepCoadd_calexp", tract=1, patch=2, band="r", parameters={"bbox": box})
    np.testing.assert_array_equal(cut.image, subtracted.subset(box).image)
    cut_image = coadd_butler.get("deepCoadd_calexp.image", tract=1, patch=2, band="r",
                                 parameters={"bbox": box})
    np.testing.assert_array_equal(cut_image, subtracted.subset(box).image)


def test_a_changed_base_is_stored_as_pixels(coadd_butler, sky):
    exposure, _ = sky(1, 1)
    base = exposure.image.copy()
    background = Background(np.full((2, 2), 50.0), exposure.bbox)
    subtracted = background.subtract_from(exposure.replace(image=base))
    base[0, 0] += 1000  # the lineage no longer holds: the image must be stored as it is
    result = coadd_butler.put_with_report(subtracted, "deepCoadd_calexp", tract=1, patch=3, band="r")
    assert result.report.arrays_written >= 1
    manifest = coadd_butler._io.manifest(result.ref.manifest)
    assert "image" in manifest["components"] and "image_base" not in manifest["components"]
    assert "image" not in manifest["attributes"]  # not marked "image_base - background"
    got = coadd_butler.get("deepCoadd_calexp", tract=1, patch=3, band="r")
    np.testing.assert_array_equal(got.image, subtracted.image)


def test_attribute_components_read_no_blob(butler, sky, monkeypatch):
    exposure, _ = sky(1, 0)
    butler.put(exposure, "calexp", visit=1, detector=0)
    butler.cache.clear()
    arrays, documents = [], []
    get_array, get_document = butler.blobs.get_array, butler.blobs.get_document
    monkeypatch.setattr(butler.blobs, "get_array", lambda *a: arrays.append(a) or get_array(*a))
    monkeypatch.setattr(butler.blobs, "get_document", lambda d: documents.append(d) or get_document(d))
    assert butler.get("calexp.bbox", visit=1, detector=0) == exposure.bbox
    assert butler.get("calexp.band", visit=1, detector=0) == exposure.band
    assert butler.get("calexp.detector", visit=1, detector=0) == exposure.detector
    assert butler.get("calexp.xy0", visit=1, detector=0) == exposure.xy0
    assert arrays == []
    assert len(documents) == 1  # the manifest, once


def test_coadd_inputs_are_references_to_the_input_datasets(coadd_butler, sky):
    """Use case 7: a coadd's precursor components resolve through the input datasets."""
    inputs = []
    for detector in range(2):
        exposure, _ = sky(1, detector)
        coadd_butler.put(exposure, "calexp", visit=1, detector=detector)
        inputs.append(CoaddInput("calexp", {"visit": 1, "detector": detector}, wcs=exposure.wcs,
                                 psf=exposure.psf, calib=exposure.calib, weight=10.0 + detector))
    coadd, _ = sky(2, 0)
    coadd_butler.put_with_report(
        coadd.replace(coadd_inputs=CoaddInputs(inputs)), "deepCoadd", tract=1, patch=1, band="r"
    )
    coadd_butler.cache.clear()
    reader = Butler(coadd_butler.root, collections="sfm")
    got = reader.get("deepCoadd.coadd_inputs", tract=1, patch=1, band="r")
    assert got == CoaddInputs(inputs)
    calexp = reader.get("calexp", visit=1, detector=1)
    assert got[1].wcs is calexp.wcs and got[1].psf is calexp.psf and got[1].calib is calexp.calib
    ref_manifest = reader._io.manifest(
        reader._io.manifest(reader.find_dataset("deepCoadd", tract=1, patch=1, band="r").manifest)
        ["components"]["coadd_inputs"]["manifest"]
    )
    kinds = {name: entry for name, entry in ref_manifest["components"].items()}
    assert set(kinds) == {f"{kind}:{i}" for kind in ("wcs", "psf", "calib") for i in (0, 1)}
    assert all("dataset" in entry for entry in kinds.values()), kinds


def test_coadd_input_without_its_dataset_is_stored_by_value(coadd_butler, sky):
    exposure, _ = sky(1, 0)
    lonely = CoaddInputs([CoaddInput("calexp", {"visit": 99, "detector": 0}, wcs=exposure.wcs)])
    coadd_butler.put(exposure.replace(coadd_inputs=lonely), "deepCoadd", tract=2, patch=0, band="r")
    coadd_butler.cache.clear()
    assert coadd_butler.get("deepCoadd.coadd_inputs", tract=2, patch=0, band="r") == lonely


def test_a_mask_changed_after_with_plane_is_stored_whole():
    """The derivation recorded by with_plane is checked, never trusted."""
    from compstore import Mask
    from compstore.cache import ObjectCache
    from compstore.cas import MemoryBlobStore
    from compstore.storage_classes import ObjectIO, WriteReport

    io = ObjectIO(MemoryBlobStore(), ObjectCache(1 << 24))
    base = Mask.zeros((32, 32))
    base.set_plane("SAT", np.eye(32, dtype=bool))
    io.write(base, "Mask")
    derived = base.with_plane("DETECTED", np.ones((32, 32), bool))
    assert derived.derivation == (base, ("DETECTED",))
    honest = WriteReport()
    io.write(derived, "Mask", honest)
    assert honest.arrays_written == 1  # the DETECTED plane
    tampered = base.with_plane("CR", np.zeros((32, 32), bool))
    tampered.array[0, 5] |= 1 << 4  # EDGE, behind the derivation's back
    assert tampered.derivation is not None  # a direct array edit cannot be seen by the Mask...
    report = WriteReport()
    digest = io.write(tampered, "Mask", report)
    assert io.manifest(digest)["components"].keys() == {"bits"}  # ...but the write-time check does
    io.cache.clear()
    assert io.read(digest) == tampered


def test_in_place_edits_drop_the_derivation():
    from compstore import Mask

    base = Mask.zeros((4, 4))
    derived = base.with_plane("CR", np.ones((4, 4), bool))
    derived.set_plane("SAT")
    assert derived.derivation is None
