"""End-to-end tests of the DESIGN use cases on the synthetic sky (2, 3 and 9)."""

from __future__ import annotations


import numpy as np
import pytest

from compstore import Butler, Calib
from compstore.testing.repository import blob_bytes


class SpyBlobs:
    """Records which array digests a blob store is asked for."""

    def __init__(self, blobs, monkeypatch):
        self.read: list[str] = []
        original = blobs.get_array

        def get_array(digest, region=None):
            self.read.append(digest)
            return original(digest, region)

        monkeypatch.setattr(blobs, "get_array", get_array)


@pytest.fixture
def survey(butler, sky):
    for detector in range(2):
        exposure, catalog = sky(1, detector)
        butler.put(exposure, "calexp", visit=1, detector=detector)
        butler.put(catalog, "src", visit=1, detector=detector)
    butler.cache.clear()
    return butler


def test_use_case_2_psf_alone(survey, monkeypatch, sky):
    """calexp.psf loads the Psf alone: no array is read."""
    reader = Butler(survey.root, collections=["sfm"])
    spy = SpyBlobs(reader.blobs, monkeypatch)
    psf = reader.get("calexp.psf", visit=1, detector=1)
    assert psf == sky(1, 1)[0].psf
    assert spy.read == []


def test_use_case_3_catalog_reads_no_pixels_and_shares_wcs_calib(survey, monkeypatch):
    reader = Butler(survey.root, collections=["sfm"])
    spy = SpyBlobs(reader.blobs, monkeypatch)
    cat = reader.get("src", visit=1, detector=0)
    assert cat.wcs is not None and cat.calib is not None
    manifest = reader._io.manifest(reader.find_dataset("calexp", visit=1, detector=0).manifest)
    pixel_digests = {manifest["components"][n]["array"] for n in ("image", "variance")}
    assert spy.read, "the catalog's columns are read"
    assert not pixel_digests & set(spy.read), "a catalog load must read no pixel data"
    exp = reader.get("calexp", visit=1, detector=0)
    assert cat.wcs is exp.wcs
    assert cat.calib is exp.calib
    # A visit loaded together: one VisitInfo object for all detectors.
    exps = [reader.get("calexp", visit=1, detector=d) for d in range(2)]
    assert exps[0].visit_info is exps[1].visit_info


def test_use_case_9_new_wcs_costs_a_wcs_and_a_manifest(survey):
    before = blob_bytes(survey.root)
    exp = Butler(survey.root, collections="sfm").get("calexp", visit=1, detector=0)
    wcs_header = exp.wcs.to_header()
    wcs_header["CRVAL1"] = wcs_header["CRVAL1"] + 1e-4
    new = exp.replace(wcs=type(exp.wcs).from_header(wcs_header))
    result = Butler(survey.root, run="newwcs").put_with_report(new, "calexp", visit=1, detector=0)
    added = blob_bytes(survey.root) - before
    assert result.report.arrays_written == 0
    assert result.report.documents_written == 2  # the Wcs and the Exposure manifest
    # The two documents, in one pack: their bytes and the pack's zip headers.
    assert 0 <= added - result.report.bytes_written <= 512
    assert added < 16_384, f"a new Wcs cost {added} bytes on disk"
    got = Butler(survey.root, collections="newwcs").get("calexp", visit=1, detector=0)
    assert got.wcs == new.wcs and got.image is exp.image


def test_use_case_9_new_mask_plane_costs_a_plane(survey):
    before = blob_bytes(survey.root)
    exp = Butler(survey.root, collections="sfm").get("calexp", visit=1, detector=0)
    cr = np.zeros(exp.image.shape, dtype=bool)
    cr[10:12, 10:12] = True
    new = exp.replace(mask=exp.mask.with_plane("CR", cr))
    result = Butler(survey.root, run="newmask").put_with_report(new, "calexp", visit=1, detector=0)
    added = blob_bytes(survey.root) - before
    assert result.report.arrays_written == 1  # only the CR plane
    assert result.report.documents_written == 2  # the mask manifest, the exposure manifest
    image_bytes = survey.blobs.stored_bytes(
        survey._io.manifest(survey.find_dataset("calexp", visit=1, detector=0).manifest)["components"]["image"]["array"]
    )
    assert added < image_bytes / 20, (added, image_bytes)
    got = Butler(survey.root, collections="newmask").get("calexp", visit=1, detector=0)
    np.testing.assert_array_equal(got.mask.plane("CR"), cr)
    np.testing.assert_array_equal(got.mask.plane("SAT"), exp.mask.plane("SAT"))


def test_new_calib_in_a_stage_run(survey):
    exp = Butler(survey.root, collections="sfm").get("calexp", visit=1, detector=1)
    new = exp.replace(calib=Calib(exp.calib.calibration * 1.02, exp.calib.calibration_err))
    Butler(survey.root, run="jointcal").put(new, "calexp", visit=1, detector=1)
    reader = Butler(survey.root)
    assert reader.get("calexp:jointcal", visit=1, detector=1).calib == new.calib
    assert reader.get("calexp:sfm", visit=1, detector=1).calib == exp.calib
