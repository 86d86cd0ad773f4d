"""astropy in, astropy out: put takes astropy objects, and each has a way back (issue 18)."""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import (
    CCDData,
    InverseVariance,
    StdDevUncertainty,
    UnknownUncertainty,
    VarianceUncertainty,
)
from astropy.table import MaskedColumn, QTable, Table
from astropy.utils.data import get_pkg_data_filename
from astropy.wcs import WCS, FITSFixedWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compstore import Butler
from compstore.errors import AstropyConversionError, FitsFormatError, StorageClassTypeError
from compstore.objects import Exposure, ImagePsf, SourceCatalog, Wcs

from .conftest import make_sip_wcs

DATA_ID = {"visit": 1, "detector": 2}


@pytest.fixture
def butler(repo):
    b = Butler(repo, run="sfm")
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    b.register_dataset_type("skywcs", ("visit", "detector"), "Wcs")
    return b


def _ccd(shape=(30, 40), *, uncertainty="std", mask="bool", meta=None, wcs=True) -> CCDData:
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 5.0, shape)
    sigma = rng.uniform(1.0, 3.0, shape)
    unc = {
        "std": StdDevUncertainty(sigma),
        "variance": VarianceUncertainty(sigma**2),
        "ivar": InverseVariance(1.0 / sigma**2),
        None: None,
    }[uncertainty]
    masks = {
        "bool": rng.random(shape) < 0.1,
        None: None,
    }
    return CCDData(
        data,
        unit="electron",
        mask=masks[mask],
        uncertainty=unc,
        wcs=make_sip_wcs() if wcs else None,
        meta={"EXPTIME": 30.0, "FILTER": "r", "NCOMBINE": 3, **(meta or {})},
    )


def _same_sky(a: WCS, b: WCS) -> None:
    x, y = np.meshgrid(np.linspace(-10, 4000, 7), np.linspace(-10, 4000, 7))
    assert np.allclose(
        a.all_pix2world(x.ravel(), y.ravel(), 0), b.all_pix2world(x.ravel(), y.ravel(), 0),
        rtol=0, atol=1e-12,
    )


# -- WCS --------------------------------------------------------------------------------
def test_put_astropy_wcs_and_get_it_back(butler):
    w = make_sip_wcs()
    butler.put(w, "skywcs", DATA_ID)
    got = butler.get("skywcs", DATA_ID)
    assert isinstance(got, Wcs) and got == Wcs(w)
    back = got.to_astropy()
    assert isinstance(back, WCS) and back is not got.to_astropy()  # the caller's own copy
    _same_sky(back, w)
    assert Wcs(back) == got


def test_a_cube_wcs_keeps_every_axis(butler):
    path = get_pkg_data_filename("data/3d_cd.hdr", package="astropy.wcs.tests")
    with open(path, "rb") as f:
        header = fits.Header.fromstring(f.read().decode("ascii"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        w = WCS(header)
    assert w.naxis == 3
    butler.put(w, "skywcs", DATA_ID)
    back = butler.get("skywcs", DATA_ID).to_astropy()
    assert back.naxis == 3  # not silently cut to its celestial part
    pixels = np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 0.0]])
    assert np.allclose(back.all_pix2world(pixels, 0), w.all_pix2world(pixels, 0), atol=1e-12)


def test_an_exposure_takes_an_astropy_wcs():
    w = make_sip_wcs()
    exp = Exposure(np.zeros((4, 5)), wcs=w)
    assert isinstance(exp.wcs, Wcs) and exp.wcs == Wcs(w)
    assert exp.replace(wcs=w).wcs == Wcs(w)


def test_a_catalog_takes_an_astropy_wcs(butler):
    w = make_sip_wcs()
    cat = SourceCatalog(_table(Table), wcs=w)
    assert cat.wcs == Wcs(w) and cat.replace(wcs=w).wcs == Wcs(w)
    butler.put(cat, "src", DATA_ID)
    _same_sky(butler.get("src", DATA_ID).wcs.to_astropy(), w)


def test_a_wcs_where_it_does_not_belong_is_still_refused(butler):
    with pytest.raises(StorageClassTypeError, match="Exposure"):
        butler.put(make_sip_wcs(), "calexp", DATA_ID)


# -- CCDData ----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["std", "variance", "ivar"])
def test_ccddata_round_trip_through_put(butler, kind):
    ccd = _ccd(uncertainty=kind)
    butler.put(ccd, "calexp", DATA_ID)
    exp = butler.get("calexp", DATA_ID)
    assert isinstance(exp, Exposure)
    sigma = np.sqrt(exp.variance)
    original = ccd.uncertainty.array
    expected = {"std": original, "variance": np.sqrt(original), "ivar": 1 / np.sqrt(original)}
    assert np.allclose(sigma, expected[kind], rtol=1e-12)
    back = exp.to_ccddata(uncertainty=kind)
    assert type(back.uncertainty) is type(ccd.uncertainty)
    assert np.allclose(back.uncertainty.array, original, rtol=1e-12)
    assert back.unit == ccd.unit == u.electron
    np.testing.assert_array_equal(back.data, ccd.data)
    np.testing.assert_array_equal(back.mask, ccd.mask)
    _same_sky(back.wcs, ccd.wcs)
    assert {k: back.meta[k] for k in ccd.meta} == dict(ccd.meta)


def test_variance_uncertainty_is_exact():
    ccd = _ccd(uncertainty="variance")
    back = Exposure.from_ccddata(ccd).to_ccddata()
    assert isinstance(back.uncertainty, VarianceUncertainty)
    np.testing.assert_array_equal(back.uncertainty.array, ccd.uncertainty.array)
    assert back.uncertainty.unit == u.electron**2


def test_uncertainty_in_its_own_unit_is_converted():
    ccd = _ccd(uncertainty=None)
    ccd.uncertainty = StdDevUncertainty(np.full(ccd.shape, 2000.0), unit=u.Unit("0.001 electron"))
    assert np.allclose(Exposure.from_ccddata(ccd).variance, 4.0)


def test_bool_mask_is_plane_bad():
    ccd = _ccd(mask="bool")
    exp = Exposure.from_ccddata(ccd)
    np.testing.assert_array_equal(exp.mask.plane("BAD"), ccd.mask)
    assert not (exp.mask.array & ~exp.mask.bitmask("BAD")).any()


def test_mask_planes_choose_what_is_masked_on_the_way_out():
    exp = Exposure(np.ones((2, 3), np.float32))
    exp.mask.set_plane("SAT", np.array([[True, False, False], [False, False, False]]))
    exp.mask.set_plane("DETECTED", np.array([[False, True, False], [False, False, True]]))
    # A detection is no defect: by default only the other planes mask a pixel.
    assert exp.to_ccddata(unit="adu").mask.tolist() == [[True, False, False], [False] * 3]
    detected = exp.to_ccddata(unit="adu", mask_planes=["DETECTED"]).mask
    assert detected.tolist() == [[False, True, False], [False, False, True]]
    both = exp.to_ccddata(unit="adu", mask_planes=["SAT", "DETECTED"]).mask
    assert both.sum() == 3
    one = exp.to_ccddata(unit="adu", mask_planes="DETECTED").mask  # a name, not its letters
    np.testing.assert_array_equal(one, detected)
    with pytest.raises(AstropyConversionError, match=r"\['NOPE'\] are not planes"):
        exp.to_ccddata(unit="adu", mask_planes=["NOPE"])


def test_no_uncertainty_no_mask_no_wcs():
    ccd = _ccd(uncertainty=None, mask=None, wcs=False)
    exp = Exposure.from_ccddata(ccd)
    assert exp.wcs is None and not exp.variance.any() and not exp.mask.array.any()
    back = exp.to_ccddata()
    assert back.uncertainty is None and back.wcs is None and not back.mask.any()


def test_xy0_travels_as_ltv_and_the_wcs_follows():
    ccd = _ccd(meta={"LTV1": -100, "LTV2": -200})
    exp = Exposure.from_ccddata(ccd)
    assert exp.xy0 == (100, 200)
    # The Wcs maps parent pixels: array pixel (3, 4) is parent (103, 204).
    ra, dec = ccd.wcs.all_pix2world(3.0, 4.0, 0)
    assert np.allclose(exp.wcs.pixel_to_sky(103.0, 204.0), (ra, dec), rtol=0, atol=1e-12)
    back = exp.to_ccddata()
    assert (back.meta["LTV1"], back.meta["LTV2"]) == (-100, -200)
    _same_sky(back.wcs, ccd.wcs)


def test_psf_becomes_an_image_psf():
    ccd = _ccd()
    kernel = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0])
    ccd.psf = kernel
    exp = Exposure.from_ccddata(ccd)
    assert isinstance(exp.psf, ImagePsf)
    np.testing.assert_allclose(exp.to_ccddata().psf, kernel / kernel.sum())


def test_real_ccddata_file_round_trips(butler):
    # astropy's own CCDData test file: int16 pixels scaled to uint16, a TAN-SIP header.
    path = get_pkg_data_filename("data/sip-wcs.fits", package="astropy.nddata.tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        ccd = CCDData.read(path, unit="adu")
    butler.put(ccd, "calexp", DATA_ID)
    back = butler.get("calexp", DATA_ID).to_ccddata()
    np.testing.assert_array_equal(back.data, ccd.data)
    assert back.unit == u.adu
    assert back.wcs.sip is not None
    _same_sky(back.wcs, ccd.wcs)
    scalars = {k: v for k, v in ccd.meta.items() if k not in ("", "COMMENT", "HISTORY")}
    assert scalars and {k: back.meta[k] for k in scalars} == scalars


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=12),
                    elements=st.floats(-1e6, 1e6)),
    kind=st.sampled_from(["std", "variance", "ivar"]),
    seed=st.integers(0, 2**16),
)
def test_ccddata_conversion_round_trips(data, kind, seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.1, 10.0, data.shape)
    cls = {"std": StdDevUncertainty, "variance": VarianceUncertainty, "ivar": InverseVariance}
    ccd = CCDData(data, unit="adu", mask=rng.random(data.shape) < 0.3, uncertainty=cls[kind](values))
    back = Exposure.from_ccddata(ccd).to_ccddata(uncertainty=kind)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_array_equal(back.mask, ccd.mask)
    np.testing.assert_allclose(back.uncertainty.array, values, rtol=1e-12)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: setattr(c, "uncertainty", UnknownUncertainty(np.ones(c.shape))),
         "UnknownUncertainty"),
        (lambda c: setattr(c, "uncertainty", StdDevUncertainty(np.ones((2, 2)))),
         r"uncertainty has shape \(2, 2\)"),
        (lambda c: c.meta.__setitem__("LIST", [1, 2]), r"meta\['LIST'\] is a list"),
    ],
)
def test_unsupported_parts_are_refused_and_nothing_is_stored(butler, change, match):
    ccd = _ccd()
    change(ccd)
    with pytest.raises(AstropyConversionError, match=match):
        butler.put(ccd, "calexp", DATA_ID)
    assert butler.query_datasets("calexp") == []


def test_integer_pixels_are_kept_exactly():
    big = np.array([[2**24 + 1, -(2**30)], [7, 2**31 - 1]], dtype=np.int32)
    exp = Exposure.from_ccddata(CCDData(big, unit="adu"))
    assert exp.image.dtype == np.float64
    np.testing.assert_array_equal(exp.to_ccddata().data, big)
    small = Exposure.from_ccddata(CCDData(big.astype(np.int16), unit="adu"))
    assert small.image.dtype == np.float32
    with pytest.raises(AstropyConversionError, match="beyond 2\\*\\*53"):
        Exposure.from_ccddata(CCDData(np.full((2, 2), 2**60, np.int64), unit="adu"))


def test_a_cube_is_not_an_exposure():
    with pytest.raises(AstropyConversionError, match="2-D real image"):
        Exposure.from_ccddata(CCDData(np.zeros((2, 3, 4)), unit="adu"))


def test_to_ccddata_needs_a_unit_and_known_choices():
    exp = Exposure(np.ones((3, 3), np.float32))
    with pytest.raises(AstropyConversionError, match="no unit"):
        exp.to_ccddata()
    assert exp.to_ccddata(unit="adu").unit == u.adu
    with pytest.raises(AstropyConversionError, match="not an astropy unit"):
        exp.to_ccddata(unit="not-a-unit")
    with pytest.raises(AstropyConversionError, match="uncertainty='sigma'"):
        exp.to_ccddata(unit="adu", uncertainty="sigma")


# -- HDUList ----------------------------------------------------------------------------
def test_put_hdulist_reads_it_like_a_file(butler, tmp_path):
    path = get_pkg_data_filename("data/sip-wcs.fits", package="astropy.nddata.tests")
    with fits.open(path) as hdul:
        butler.put(hdul, "calexp", DATA_ID)
    got = butler.get("calexp", DATA_ID)
    expected = Exposure.read_fits(path)
    np.testing.assert_array_equal(got.image, expected.image)
    assert got.wcs == expected.wcs and got.metadata == expected.metadata


def test_put_hdulist_of_our_own_layout(butler, exposure, tmp_path):
    exposure.write_fits(tmp_path / "exp.fits")
    with fits.open(tmp_path / "exp.fits") as hdul:
        butler.put(hdul, "calexp", DATA_ID)
    got = butler.get("calexp", DATA_ID)
    assert got.wcs == exposure.wcs and got.xy0 == exposure.xy0 and got.psf == exposure.psf
    np.testing.assert_array_equal(got.variance, exposure.variance)


def test_multi_extension_hdulist_needs_a_choice(butler):
    path = get_pkg_data_filename("data/test0.fits", package="astropy.io.fits.tests")
    with fits.open(path) as hdul:
        with pytest.raises(FitsFormatError, match=r"4 images.*Exposure.from_hdulist"):
            butler.put(hdul, "calexp", DATA_ID)
        butler.put(Exposure.from_hdulist(hdul, ("SCI", 2)), "calexp", DATA_ID)
        np.testing.assert_array_equal(butler.get("calexp", DATA_ID).image, hdul["SCI", 2].data)
    with pytest.raises(FitsFormatError, match="no HDU holds a 2-D"):
        butler.put(fits.HDUList([fits.PrimaryHDU()]), "calexp", {"visit": 2, "detector": 2})


# -- Table / QTable ---------------------------------------------------------------------
def _table(cls: type) -> Table:
    t = cls()
    t["id"] = np.arange(5, dtype=np.int64)
    t["flux"] = np.linspace(1.0, 5.0, 5) * u.nJy
    t["name"] = ["a", "bb", "ccc", "", "ee"]
    t["flag"] = MaskedColumn([1, 2, 3, 4, 5], mask=[False, True, False, False, True])
    t.meta["ORIGIN"] = "test"
    return t


@pytest.mark.parametrize("cls", [Table, QTable])
def test_table_round_trip_through_put(butler, cls):
    table = _table(cls)
    butler.put(table, "src", DATA_ID)
    cat = butler.get("src", DATA_ID)
    assert isinstance(cat, SourceCatalog)
    back = cat.to_table()
    assert type(back) is cls and back.colnames == table.colnames
    assert back["flux"].unit == u.nJy
    for name in table.colnames:
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(table[name]))
    np.testing.assert_array_equal(back["flag"].mask, table["flag"].mask)
    assert back.meta["ORIGIN"] == "test"


def test_real_fits_table_round_trips(butler):
    path = get_pkg_data_filename("data/tb.fits", package="astropy.io.fits.tests")
    table = Table.read(path)
    butler.put(table, "src", DATA_ID)
    back = butler.get("src", DATA_ID).to_table()
    assert back.colnames == table.colnames
    for name in table.colnames:
        assert back[name].dtype.newbyteorder("=") == table[name].dtype.newbyteorder("=")
        np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(table[name]))
