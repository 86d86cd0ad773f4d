"""The synthetic sky: deterministic, shared where a butler would share, physically sane."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from compstore.errors import ObjectError
from compstore.objects import Box2I, Exposure, GaussianPsf, SourceCatalog
from compstore.testing.sky import (
    EDGE_WIDTH,
    PIXEL_SCALE_ARCSEC,
    SATURATION,
    make_catalog,
    make_exposure,
    make_visit,
    make_wcs,
)


@pytest.fixture(scope="module")
def exposure() -> Exposure:
    return make_exposure(visit=5, detector=4, size=256)


def test_deterministic_for_a_seed() -> None:
    a = make_exposure(2, 1, size=96, seed=7)
    b = make_exposure(2, 1, size=96, seed=7)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.variance, b.variance)
    assert a.mask == b.mask
    for name in ("wcs", "calib", "psf", "visit_info", "background"):
        assert getattr(a, name) == getattr(b, name)
    assert dict(a.metadata) == dict(b.metadata)
    c = make_exposure(2, 1, size=96, seed=8)
    assert not np.array_equal(a.image, c.image)
    assert a.wcs != c.wcs


def test_detectors_and_visits_differ() -> None:
    a, b = make_exposure(1, 0, size=64), make_exposure(1, 1, size=64)
    c = make_exposure(2, 0, size=64)
    assert a.wcs != b.wcs and a.calib != b.calib and a.psf != b.psf
    assert a.wcs != c.wcs and a.calib != c.calib
    # Boresights move between visits.
    assert a.visit_info.boresight_ra != c.visit_info.boresight_ra


def test_visit_info_shared_by_identity() -> None:
    exposures, _ = make_visit(11, detectors=range(4), size=64)
    assert all(e.visit_info is exposures[0].visit_info for e in exposures)
    assert make_exposure(11, 9, size=64).visit_info is exposures[0].visit_info
    assert make_exposure(11, 0, size=64, seed=1).visit_info is not exposures[0].visit_info
    assert [e.detector for e in exposures] == [0, 1, 2, 3]


def test_catalog_shares_wcs_and_calib(exposure: Exposure) -> None:
    cat = make_catalog(exposure)
    assert isinstance(cat, SourceCatalog)
    assert cat.wcs is exposure.wcs
    assert cat.calib is exposure.calib
    exposures, catalogs = make_visit(3, detectors=[0, 12], size=64)
    for e, c in zip(exposures, catalogs):
        assert c.wcs is e.wcs and c.calib is e.calib


def test_mask_planes(exposure: Exposure) -> None:
    mask = exposure.mask
    edge = mask.plane("EDGE")
    assert edge[:EDGE_WIDTH].all() and edge[:, -EDGE_WIDTH:].all()
    assert not edge[EDGE_WIDTH:-EDGE_WIDTH, EDGE_WIDTH:-EDGE_WIDTH].any()
    bad = mask.plane("BAD")
    assert bad.any()
    bad_columns = np.flatnonzero(bad.any(axis=0))
    assert 1 <= bad_columns.size <= 4
    sat = mask.plane("SAT")
    assert sat.any()
    np.testing.assert_array_equal(exposure.image[sat], SATURATION)
    assert (exposure.image[~sat] < SATURATION).all()


def test_pixels_are_sky_like(exposure: Exposure) -> None:
    image, variance = exposure.image, exposure.variance
    assert image.dtype == variance.dtype == np.float32
    good = exposure.mask.array == 0
    sky = np.median(image[good])
    assert 100 < sky < 700  # a few hundred counts
    # Noise consistent with the variance plane: normalized residuals about the
    # (known) background have unit scatter in star-free pixels.
    bkg = exposure.background.evaluate()
    resid = (image - bkg) / np.sqrt(variance)
    # Star-free pixels, chosen by the expected sky noise (not by the variance plane,
    # which is estimated from the pixels and would select negative noise).
    expected = np.sqrt(bkg + 25.0)
    quiet = good & (np.abs(image - bkg) < 4 * expected)
    assert abs(np.std(resid[quiet]) - 1.0) < 0.1
    # The variance plane is estimated from the pixels, as a pipeline's is: noisy.
    assert np.std(variance[quiet] - (bkg[quiet] + 25.0)) > 0.5 * np.median(expected[quiet])
    assert isinstance(exposure.psf, GaussianPsf)
    assert 1.5 <= exposure.psf.sigma <= 2.0


def test_wcs_is_tan_sip_with_right_scale(exposure: Exposure) -> None:
    wcs = make_wcs(5, 4, 256)
    assert wcs == exposure.wcs
    assert wcs.has_distortion
    header = wcs.to_header()
    assert header["CTYPE1"] == "RA---TAN-SIP"
    ra, dec = wcs.pixel_to_sky([128.0, 129.0, 128.0], [128.0, 128.0, 129.0])
    cosd = np.cos(np.radians(dec[0]))
    dx = np.hypot((ra[1] - ra[0]) * cosd, dec[1] - dec[0]) * 3600
    dy = np.hypot((ra[2] - ra[0]) * cosd, dec[2] - dec[0]) * 3600
    assert dx == pytest.approx(PIXEL_SCALE_ARCSEC, rel=0.01)
    assert dy == pytest.approx(PIXEL_SCALE_ARCSEC, rel=0.01)


def test_focal_plane_layout() -> None:
    # Detector 12 is the centre of the 5x5 grid: the boresight falls on it.
    centre = make_exposure(8, 12, size=64)
    x, y = centre.wcs.sky_to_pixel(centre.visit_info.boresight_ra, centre.visit_info.boresight_dec)
    assert 0 <= x < 64 and 0 <= y < 64
    corner = make_wcs(8, 0, 64)
    x, y = corner.sky_to_pixel(centre.visit_info.boresight_ra, centre.visit_info.boresight_dec)
    assert x > 64 and y > 64  # the boresight lies beyond a corner detector


def test_catalog_positions_agree_with_wcs(exposure: Exposure) -> None:
    cat = make_catalog(exposure)
    assert len(cat) > 10
    ra, dec = exposure.wcs.pixel_to_sky(cat["x"], cat["y"])
    np.testing.assert_allclose(cat["ra"], ra, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cat["dec"], dec, rtol=0, atol=1e-12)
    x, y = exposure.wcs.sky_to_pixel(cat["ra"], cat["dec"])
    np.testing.assert_allclose(x, cat["x"], atol=1e-6)
    np.testing.assert_allclose(y, cat["y"], atol=1e-6)
    assert str(cat["ra"].unit) == "deg" and str(cat["instflux"].unit) == "ct"
    assert cat["flag_saturated"].any()
    assert len(np.unique(cat["id"])) == len(cat)


def test_catalog_fluxes_are_measured(exposure: Exposure) -> None:
    from compstore.testing.sky import _psf_sigma, _stars  # the truth, for checking only

    cat = make_catalog(exposure)
    truth = _stars(5, 4, 256, 0, _psf_sigma(5, 4, 0)).flux[cat["id"] % 100_000]
    good = ~(cat["flag_saturated"] | cat["flag_edge"] | cat["flag_bad"])
    assert good.sum() >= 8
    pull = ((cat["instflux"] - truth) / cat["instflux_err"])[good]
    # Aperture fluxes agree with the truth within their errors (blends aside).
    assert np.median(np.abs(pull)) < 2.0
    assert np.mean(np.abs(pull) < 5.0) > 0.7
    assert (cat["instflux_err"] > 0).all()


def test_catalog_of_cutout_keeps_only_its_stars(exposure: Exposure) -> None:
    full = make_catalog(exposure)
    box = Box2I((40, 60), (100, 90))
    cut = make_catalog(exposure.subset(box))
    inside = [box.contains((int(round(x)), int(round(y)))) for x, y in zip(full["x"], full["y"])]
    assert set(cut["id"]) == set(full["id"][np.array(inside)])


def test_catalog_after_fits_round_trip(exposure: Exposure, tmp_path: Path) -> None:
    exposure.write_fits(tmp_path / "e.fits")
    back = Exposure.read_fits(tmp_path / "e.fits")
    a, b = make_catalog(exposure), make_catalog(back)
    np.testing.assert_array_equal(a["instflux"], b["instflux"])


def test_make_catalog_needs_synthetic_metadata() -> None:
    plain = Exposure(np.zeros((8, 8), np.float32))
    with pytest.raises(ObjectError, match="make_exposure"):
        make_catalog(plain)


def test_bad_arguments() -> None:
    with pytest.raises(ObjectError):
        make_exposure(-1, 0)
    with pytest.raises(ObjectError):
        make_exposure(0, 0, size=4)


def test_2048_builds_quickly() -> None:
    start = time.perf_counter()
    exp = make_exposure(1, 2, size=2048)
    assert exp.shape == (2048, 2048)
    assert time.perf_counter() - start < 5.0
    n = exp.metadata["NSTARS"]
    assert 800 < n < 1600  # a few hundred per 1k^2


@pytest.mark.slow
def test_4096_builds_in_a_few_seconds() -> None:
    start = time.perf_counter()
    exp = make_exposure(1, 2, size=4096)
    assert time.perf_counter() - start < 8.0
    cat = make_catalog(exp)
    assert len(cat) > 3000


def test_deep_survey_visits_overlap_and_wide_ones_do_not():
    from compstore.testing.sky import make_exposure

    deep = [make_exposure(v, 12, size=64, survey="deep") for v in range(1, 4)]
    wide = [make_exposure(v, 12, size=64) for v in range(1, 4)]
    for a in deep[1:]:
        assert abs(a.visit_info.boresight_dec - deep[0].visit_info.boresight_dec) < 0.11
    assert deep[0].visit_info is make_exposure(1, 3, size=64, survey="deep").visit_info
    assert deep[0].metadata["SURVEY"] == "deep"
    decs = [e.visit_info.boresight_dec for e in wide]
    assert max(decs) - min(decs) > 0.11  # random pointings spread over the sky


def test_unknown_survey_is_refused():
    import pytest

    from compstore.errors import ObjectError
    from compstore.testing.sky import make_exposure

    with pytest.raises(ObjectError, match="survey"):
        make_exposure(1, 0, size=64, survey="ultra")
