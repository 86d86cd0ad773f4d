"""FITS round trips of Exposure and SourceCatalog, and interop with plain astropy."""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import MaskedColumn, Table
from astropy.wcs import WCS, FITSFixedWarning
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from compstore.errors import FitsFormatError, ObjectError
from compstore.objects import (
    Background,
    Box2I,
    Calib,
    Exposure,
    GaussianPsf,
    ImagePsf,
    Mask,
    SourceCatalog,
    VisitInfo,
)
from compstore.fits import read_catalog, read_exposure, write_catalog, write_exposure
from compstore.testing.sky import make_catalog, make_exposure, make_wcs

_HYPOTHESIS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def assert_exposures_equal(a: Exposure, b: Exposure) -> None:
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.variance, b.variance)
    assert a.image.dtype == b.image.dtype == np.float32
    assert a.mask == b.mask
    assert dict(a.mask.planes) == dict(b.mask.planes)
    assert a.xy0 == b.xy0
    for name in ("wcs", "calib", "psf", "visit_info", "background", "band", "detector"):
        assert getattr(a, name) == getattr(b, name), name
    assert dict(a.metadata) == dict(b.metadata)
    assert {k: type(v) for k, v in a.metadata.items()} == {
        k: type(v) for k, v in b.metadata.items()
    }


def assert_catalogs_equal(a: SourceCatalog, b: SourceCatalog) -> None:
    assert a.columns == b.columns
    for name in a.columns:
        ca, cb = a.table[name], b.table[name]
        assert ca.dtype == cb.dtype, name
        assert ca.unit == cb.unit, name
        mask = np.ma.getmaskarray(ca)
        assert np.array_equal(mask, np.ma.getmaskarray(cb)), name
        np.testing.assert_array_equal(np.asarray(ca)[~mask], np.asarray(cb)[~mask])
    assert a.wcs == b.wcs
    assert a.calib == b.calib
    assert dict(a.table.meta) == dict(b.table.meta)


@pytest.fixture(scope="module")
def exposure() -> Exposure:
    return make_exposure(visit=3, detector=7, size=128)


# -- Exposure round trips ------------------------------------------------------------------
def test_synthetic_exposure_round_trip(exposure: Exposure, tmp_path: Path) -> None:
    path = tmp_path / "calexp.fits"
    exposure.write_fits(path)
    back = Exposure.read_fits(path)
    assert_exposures_equal(exposure, back)
    assert not (tmp_path / "calexp.fits.partial").exists()


def test_cutout_with_xy0_round_trip(exposure: Exposure, tmp_path: Path) -> None:
    cut = exposure.subset(Box2I((17, 33), (60, 41)))
    assert cut.xy0 == (17, 33)
    write_exposure(cut, tmp_path / "cut.fits")
    back = read_exposure(tmp_path / "cut.fits")
    assert_exposures_equal(cut, back)
    # Both map the same parent pixel to the same sky position.
    assert back.wcs.pixel_to_sky(40.5, 50.0) == exposure.wcs.pixel_to_sky(40.5, 50.0)


def test_minimal_exposure_round_trip(tmp_path: Path) -> None:
    exp = Exposure(np.arange(12, dtype=np.float32).reshape(3, 4))
    write_exposure(exp, tmp_path / "min.fits")
    assert_exposures_equal(exp, read_exposure(tmp_path / "min.fits"))


def test_image_psf_and_extra_mask_plane_round_trip(exposure: Exposure, tmp_path: Path) -> None:
    kernel = np.outer(np.hanning(7), np.hanning(9)) + 1e-3
    mask = exposure.mask.copy()
    bit = mask.add_plane("STREAK")
    mask.set_plane("STREAK", np.eye(*mask.shape, dtype=bool))
    exp = exposure.replace(psf=ImagePsf(kernel), mask=mask, metadata={"lower key": 1.5})
    write_exposure(exp, tmp_path / "x.fits")
    back = read_exposure(tmp_path / "x.fits")
    assert_exposures_equal(exp, back)
    assert back.mask.planes["STREAK"] == bit
    with fits.open(tmp_path / "x.fits") as hdul:
        assert hdul["MASK"].header["MP_STREAK"] == bit
        np.testing.assert_array_equal(hdul["PSF"].data, exp.psf.kernel)


finite = st.floats(width=32)  # NaN and inf included: FITS float32 holds them
small_int = st.integers(-(2**40), 2**40)
meta_values = st.one_of(
    st.booleans(),
    small_int,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90).map(str.rstrip),
)
meta_keys = st.one_of(
    st.from_regex(r"\A[A-Z][A-Z0-9_]{0,7}\Z"),
    st.from_regex(r"\A[a-z][a-z0-9_.]{0,30}\Z"),
).filter(lambda k: k not in {"SIMPLE", "EXTEND", "BITPIX", "NAXIS", "END", "BLANK", "BZERO",
                             "BSCALE", "EXTNAME", "INHERIT", "PCOUNT", "GCOUNT", "XTENSION"}
         and not k.startswith(("NAXIS", "COMPSTORE")))


@st.composite
def exposures(draw: st.DrawFn) -> Exposure:
    h = draw(st.integers(1, 6))
    w = draw(st.integers(1, 6))
    image = draw(hnp.arrays(np.float32, (h, w), elements=finite))
    variance = draw(hnp.arrays(np.float32, (h, w), elements=st.floats(0, 1e6, width=32)))
    mask = Mask(draw(hnp.arrays(np.int32, (h, w), elements=st.integers(0, 127))))
    xy0 = (draw(st.integers(-5000, 5000)), draw(st.integers(-5000, 5000)))
    size = max(h, w, 16)
    wcs = draw(st.none() | st.builds(make_wcs, st.integers(0, 50), st.integers(0, 30),
                                      st.just(size), st.integers(0, 3)))
    calib = draw(st.none() | st.builds(
        Calib, st.floats(1e-12, 1e12), st.floats(0, 1e3, allow_subnormal=False)))
    psf = draw(st.none() | st.builds(GaussianPsf, st.floats(0.3, 5.0), st.sampled_from([5, 11, 25])))
    visit = draw(st.none() | st.builds(
        VisitInfo,
        exposure_time=st.floats(0, 1e4),
        date_mjd=st.floats(40000, 80000),
        boresight_ra=st.floats(0, 359.999),
        boresight_dec=st.floats(-90, 90),
        rotation_angle=st.floats(-360, 360),
        airmass=st.floats(1.0, 5.0),
        observatory=st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20)
        .map(str.rstrip),
    ))
    background = draw(st.none() | hnp.arrays(
        np.float64, (draw(st.integers(1, h)), draw(st.integers(1, w))),
        elements=st.floats(-1e6, 1e6),
    ).map(lambda g: Background(g, Box2I(xy0, (w, h)))))
    metadata = draw(st.dictionaries(meta_keys, meta_values, max_size=5))
    return Exposure(
        image, mask, variance, xy0=xy0, wcs=wcs, calib=calib, psf=psf, visit_info=visit,
        background=background, metadata=metadata,
        band=draw(st.none() | st.sampled_from(["u", "g", "r", "i", "z", "y", "N921"])),
        detector=draw(st.none() | st.integers(0, 10_000)),
    )


@_HYPOTHESIS
@given(exp=exposures())
def test_any_exposure_round_trips(exp: Exposure, tmp_path: Path) -> None:
    path = tmp_path / "h.fits"
    write_exposure(exp, path)
    assert_exposures_equal(exp, read_exposure(path))


def test_reserved_metadata_key_is_refused(tmp_path: Path) -> None:
    exp = Exposure(np.zeros((2, 2), np.float32), metadata={"NAXIS": 3})
    with pytest.raises(FitsFormatError, match="NAXIS"):
        write_exposure(exp, tmp_path / "bad.fits")
    assert not list(tmp_path.iterdir())


def test_unwritable_metadata_value_is_refused(tmp_path: Path) -> None:
    exp = Exposure(np.zeros((2, 2), np.float32), metadata={"SEEING": float("nan")})
    with pytest.raises(FitsFormatError, match="SEEING"):
        write_exposure(exp, tmp_path / "bad.fits")


# -- plain astropy sees what we wrote --------------------------------------------------------
def test_plain_astropy_opens_written_file(exposure: Exposure, tmp_path: Path) -> None:
    cut = exposure.subset(Box2I((9, 21), (80, 70)))
    write_exposure(cut, tmp_path / "c.fits")
    with fits.open(tmp_path / "c.fits") as hdul:
        assert [h.name for h in hdul[:4]] == ["PRIMARY", "IMAGE", "MASK", "VARIANCE"]
        np.testing.assert_array_equal(hdul["IMAGE"].data, cut.image)
        np.testing.assert_array_equal(hdul["VARIANCE"].data, cut.variance)
        np.testing.assert_array_equal(hdul["MASK"].data, cut.mask.array)
        assert hdul["MASK"].header["MP_SAT"] == cut.mask.planes["SAT"]
        assert (hdul["IMAGE"].header["LTV1"], hdul["IMAGE"].header["LTV2"]) == (-9, -21)
        for name in ("IMAGE", "MASK", "VARIANCE"):
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a clean header: astropy fixes nothing
                plain = WCS(hdul[name].header)
            iy, ix = np.mgrid[0:70:7, 0:80:9]
            ra, dec = plain.all_pix2world(ix.ravel(), iy.ravel(), 0)
            ra2, dec2 = cut.wcs.pixel_to_sky(ix.ravel() + 9, iy.ravel() + 21)
            np.testing.assert_allclose(ra, ra2, rtol=0, atol=1e-10)
            np.testing.assert_allclose(dec, dec2, rtol=0, atol=1e-10)
        assert hdul[0].header["FILTER"] == cut.band


# -- ordinary FITS images -------------------------------------------------------------------
def _celestial_sky(header: fits.Header, ix: np.ndarray, iy: np.ndarray) -> tuple[np.ndarray, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        cel = WCS(header).celestial
    world = cel.all_pix2world(np.stack([ix, iy], axis=1), 0)
    return world[:, cel.wcs.lng], world[:, cel.wcs.lat]


def _check_sky(exp: Exposure, header: fits.Header) -> None:
    h, w = exp.shape
    iy, ix = (a.ravel().astype(float) for a in np.mgrid[0 : h : max(1, h // 5), 0 : w : max(1, w // 5)])
    ra0, dec0 = _celestial_sky(header, ix, iy)
    ra, dec = exp.wcs.pixel_to_sky(ix + exp.xy0[0], iy + exp.xy0[1])
    np.testing.assert_allclose(ra, ra0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(dec, dec0, rtol=0, atol=1e-10)


def _tan_cards(**extra: object) -> list[tuple[str, object]]:
    cards: list[tuple[str, object]] = [
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CRPIX1", 20.5),
        ("CRPIX2", 12.25),
        ("CRVAL1", 150.123456789),
        ("CRVAL2", 2.2),
        ("CDELT1", -0.00015),
        ("CDELT2", 0.00015),
    ]
    return cards + list(extra.items())


QUIRKS = {
    "epoch_crota_radecsys": _tan_cards(EPOCH=1950.0, RADECSYS="FK4", CROTA2=12.5),
    "old_date_obs": _tan_cards(**{"DATE-OBS": "12/03/97", "EQUINOX": 2000.0, "CROTA2": -3.0}),
    "cd_matrix_fk5": [
        ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRPIX1", 1.0), ("CRPIX2", 1.0),
        ("CRVAL1", 10.0), ("CRVAL2", -45.0), ("CD1_1", -1e-4), ("CD1_2", 2e-5),
        ("CD2_1", 2e-5), ("CD2_2", 1e-4), ("RADESYS", "FK5"), ("EQUINOX", 2000.0),
    ],
    "galactic_car": [
        ("CTYPE1", "GLON-CAR"), ("CTYPE2", "GLAT-CAR"), ("CRPIX1", 5.0), ("CRPIX2", 5.0),
        ("CRVAL1", 120.0), ("CRVAL2", 0.0), ("CDELT1", -0.01), ("CDELT2", 0.01),
    ],
    "dec_first": [
        ("CTYPE1", "DEC--TAN"), ("CTYPE2", "RA---TAN"), ("CRPIX1", 10.0), ("CRPIX2", 7.0),
        ("CRVAL1", 30.0), ("CRVAL2", 200.0), ("CDELT1", 1e-3), ("CDELT2", -1e-3),
    ],
    "sip_without_inverse": _tan_cards(
        CTYPE1="RA---TAN-SIP", CTYPE2="DEC--TAN-SIP", A_ORDER=2, B_ORDER=2,
        A_2_0=1e-5, A_1_1=-2e-6, B_0_2=3e-6,
    ),
    "wcsaxes_3_naxis_2": _tan_cards(WCSAXES=3, CTYPE3="FREQ", CRVAL3=1.4e9, CDELT3=1e6, CRPIX3=1.0),
    "iraf_ltv_cutout": _tan_cards(LTV1=-100.0, LTV2=-50.0, LTM1_1=1.0, LTM2_2=1.0),
    "tpv_distortion": _tan_cards(
        CTYPE1="RA---TPV", CTYPE2="DEC--TPV", PV1_0=0.0, PV1_1=1.0, PV1_4=2e-3, PV1_7=-1e-2,
        PV2_0=0.0, PV2_1=1.0, PV2_5=1e-3,
    ),
    "zpn_pc_matrix": [
        ("CTYPE1", "RA---ZPN"), ("CTYPE2", "DEC--ZPN"), ("CRPIX1", 12.0), ("CRPIX2", 8.0),
        ("CRVAL1", 0.5), ("CRVAL2", 89.9), ("CDELT1", -2e-3), ("CDELT2", 2e-3),
        ("PC1_1", 0.9), ("PC1_2", 0.1), ("PC2_1", -0.1), ("PC2_2", 0.9),
        ("PV2_1", 1.0), ("PV2_3", 220.0),
    ],
}


@pytest.mark.parametrize("name", sorted(QUIRKS))
def test_quirky_headers_agree_with_astropy(name: str, tmp_path: Path) -> None:
    data = np.random.default_rng(1).normal(100, 5, (24, 40)).astype(np.float32)
    header = fits.Header(QUIRKS[name])
    header["OBSERVER"] = "Hubble"
    path = tmp_path / f"{name}.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    exp = read_exposure(path)
    np.testing.assert_array_equal(exp.image, data)
    assert not exp.mask.array.any()
    assert not exp.variance.any()
    assert exp.metadata["OBSERVER"] == "Hubble"
    assert "CRPIX1" not in exp.metadata
    assert exp.wcs is not None
    if name == "iraf_ltv_cutout":
        assert exp.xy0 == (100, 50)
    _check_sky(exp, fits.open(path)[0].header)
    # What was read from a foreign file writes and reads back equal.
    write_exposure(exp, tmp_path / "again.fits")
    assert_exposures_equal(exp, read_exposure(tmp_path / "again.fits"))


def test_tile_compressed_image(tmp_path: Path) -> None:
    data = np.random.default_rng(3).normal(500, 10, (30, 20)).astype(np.float32)
    hdul = fits.HDUList(
        [fits.PrimaryHDU(), fits.CompImageHDU(data, fits.Header(_tan_cards()), quantize_level=0.0,
                                              compression_type="GZIP_2")]
    )
    hdul.writeto(tmp_path / "c.fits.fz")
    exp = read_exposure(tmp_path / "c.fits.fz")
    np.testing.assert_array_equal(exp.image, data)
    _check_sky(exp, fits.Header(_tan_cards()))


def test_radio_cube_with_degenerate_axes(tmp_path: Path) -> None:
    header = fits.Header(
        [
            ("CTYPE1", "RA---SIN"), ("CTYPE2", "DEC--SIN"), ("CTYPE3", "FREQ"), ("CTYPE4", "STOKES"),
            ("CRPIX1", 33.0), ("CRPIX2", 17.0), ("CRPIX3", 1.0), ("CRPIX4", 1.0),
            ("CRVAL1", 83.6), ("CRVAL2", 22.0), ("CRVAL3", 1.4e9), ("CRVAL4", 1.0),
            ("CDELT1", -2e-3), ("CDELT2", 2e-3), ("CDELT3", 1e6), ("CDELT4", 1.0),
            ("CUNIT3", "Hz"), ("BUNIT", "JY/BEAM"), ("EPOCH", 2000.0),
        ]
    )
    cube = np.random.default_rng(2).normal(size=(1, 1, 32, 64)).astype(np.float32)
    path = tmp_path / "radio.fits"
    fits.PrimaryHDU(cube, header).writeto(path)
    exp = read_exposure(path)
    np.testing.assert_array_equal(exp.image, cube[0, 0])
    assert exp.metadata["BUNIT"] == "JY/BEAM"
    _check_sky(exp, fits.open(path)[0].header)
    # The FREQ and STOKES axes are kept: the plane's frequency is part of its WCS.
    assert exp.wcs.world_axis_types[2:] == ("FREQ", "STOKES")
    assert exp.wcs.pixel_to_world_values(3.0, 4.0)[2] == pytest.approx(1.4e9)
    # A cube with several planes is refused, not cut down to its first plane silently.
    fits.PrimaryHDU(np.zeros((1, 3, 32, 64), np.float32), header).writeto(tmp_path / "c3.fits")
    with pytest.raises(FitsFormatError, match=r"c3\.fits.*cube of shape \(1, 3, 32, 64\)"):
        read_exposure(tmp_path / "c3.fits")


def test_scaled_integers_and_blank(tmp_path: Path) -> None:
    raw = np.arange(-50, 50, dtype=np.int16).reshape(10, 10)
    hdu = fits.PrimaryHDU(raw, fits.Header(_tan_cards()))
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 1000.0
    hdu.header["BLANK"] = -50
    # astropy scales on write unless told the data is already raw.
    hdu = fits.PrimaryHDU(header=hdu.header)
    hdu.data = raw
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 0.5, 1000.0, -50
    path = tmp_path / "scaled.fits"
    hdu.writeto(path, output_verify="silentfix")
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        assert hdul[0].header["BITPIX"] == 16
    exp = read_exposure(path)
    assert exp.image.dtype == np.float32
    expected = raw * 0.5 + 1000.0
    ok = raw != -50
    np.testing.assert_array_equal(exp.image[ok], expected[ok].astype(np.float32))
    assert np.isnan(exp.image[0, 0])
    assert exp.mask.plane("NO_DATA")[0, 0] and exp.mask.plane("NO_DATA").sum() == 1


def test_unsigned_16_bit(tmp_path: Path) -> None:
    raw = np.array([[0, 1, 40000, 65535]], dtype=np.uint16)
    path = tmp_path / "u16.fits"
    fits.PrimaryHDU(raw).writeto(path)  # written with BZERO = 32768
    exp = read_exposure(path)
    np.testing.assert_array_equal(exp.image, raw.astype(np.float32))
    assert exp.wcs is None


def test_image_in_extension_after_empty_primary(tmp_path: Path) -> None:
    data = np.ones((5, 6), dtype=np.float64)
    primary = fits.PrimaryHDU()
    primary.header["TELESCOP"] = "Mayall"
    hdul = fits.HDUList([primary, fits.BinTableHDU(Table({"a": [1]})),
                         fits.ImageHDU(data, fits.Header(_tan_cards()), name="SCI")])
    hdul.writeto(tmp_path / "mef.fits")
    exp = read_exposure(tmp_path / "mef.fits")
    assert exp.shape == (5, 6)
    assert exp.metadata["TELESCOP"] == "Mayall"
    _check_sky(exp, fits.open(tmp_path / "mef.fits")["SCI"].header)


# -- bad files -------------------------------------------------------------------------------
def test_not_fits(tmp_path: Path) -> None:
    path = tmp_path / "junk.fits"
    path.write_bytes(b"this is not a FITS file at all\n" * 10)
    with pytest.raises(FitsFormatError, match="junk.fits"):
        read_exposure(path)
    with pytest.raises(FitsFormatError, match="junk.fits"):
        read_catalog(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.fits"
    path.write_bytes(b"")
    with pytest.raises(FitsFormatError, match="empty.fits"):
        read_exposure(path)


def test_no_image_hdu(tmp_path: Path) -> None:
    path = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"a": [1, 2]}))]).writeto(path)
    with pytest.raises(FitsFormatError, match=r"table\.fits.*no HDU holds a 2-D"):
        read_exposure(path)


def test_one_dimensional_image(tmp_path: Path) -> None:
    path = tmp_path / "spectrum.fits"
    fits.PrimaryHDU(np.arange(10.0)).writeto(path)
    with pytest.raises(FitsFormatError, match="spectrum.fits"):
        read_exposure(path)


@pytest.mark.filterwarnings("ignore:File may have been truncated")
def test_truncated_file(exposure: Exposure, tmp_path: Path) -> None:
    path = tmp_path / "cut.fits"
    write_exposure(exposure, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FitsFormatError, match="cut.fits"):
        read_exposure(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.fits"):
        read_exposure(tmp_path / "nope.fits")


def test_newer_format_refused(exposure: Exposure, tmp_path: Path) -> None:
    path = tmp_path / "new.fits"
    write_exposure(exposure, path)
    with fits.open(path, mode="update") as hdul:
        hdul[0].header["HIERARCH COMPSTORE FORMAT"] = 99
    with pytest.raises(FitsFormatError, match="upgrade"):
        read_exposure(path)


def test_non_celestial_wcs_is_kept(tmp_path: Path) -> None:
    # Issue 12: a WCS without celestial axes used to be dropped (wcs None, and an export
    # with no coordinates at all); it is kept whole now.
    header = fits.Header([("CTYPE1", "WAVE"), ("CTYPE2", "LINEAR"), ("CRVAL1", 5000.0),
                          ("CDELT1", 0.5), ("CRPIX1", 2.0)])
    fits.PrimaryHDU(np.zeros((3, 3)), header).writeto(tmp_path / "lin.fits")
    exp = read_exposure(tmp_path / "lin.fits")
    assert exp.wcs is not None and exp.wcs.world_axis_types == ("WAVE", "LINEAR")
    assert not exp.wcs.has_celestial
    assert exp.wcs.pixel_to_world_values(1.0, 0.0)[0] == pytest.approx(5000.0)
    with pytest.raises(ObjectError, match="no celestial axes"):
        exp.wcs.pixel_to_sky(0.0, 0.0)
    write_exposure(exp, tmp_path / "again.fits")
    assert read_exposure(tmp_path / "again.fits").wcs == exp.wcs
    # An alternate WCS (key letter A) is not read into the Wcs: it stays in the metadata.
    header["CTYPE1A"], header["CRVAL1A"] = "PIXEL", 3.5
    fits.PrimaryHDU(np.zeros((3, 3)), header).writeto(tmp_path / "alt.fits")
    alt = read_exposure(tmp_path / "alt.fits")
    assert (alt.metadata["CTYPE1A"], alt.metadata["CRVAL1A"]) == ("PIXEL", 3.5)
    write_exposure(alt, tmp_path / "alt2.fits")
    assert read_exposure(tmp_path / "alt2.fits").metadata["CRVAL1A"] == 3.5
    # A header with no WCS cards at all still gives no Wcs.
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(tmp_path / "none.fits")
    assert read_exposure(tmp_path / "none.fits").wcs is None


# -- SourceCatalog ----------------------------------------------------------------------------
def test_synthetic_catalog_round_trip(exposure: Exposure, tmp_path: Path) -> None:
    cat = make_catalog(exposure)
    cat.write_fits(tmp_path / "src.fits")
    back = SourceCatalog.read_fits(tmp_path / "src.fits")
    assert_catalogs_equal(cat, back)
    with fits.open(tmp_path / "src.fits") as hdul:
        assert hdul["CATALOG"].header["TUNIT2"] == "pix"
        with warnings.catch_warnings():
            # NAXIS = 0: astropy notes that the WCS has more axes than the (empty) HDU.
            warnings.simplefilter("ignore", FITSFixedWarning)
            plain = WCS(hdul["WCS"].header)
        ra, dec = plain.all_pix2world(cat["x"], cat["y"], 0)
        np.testing.assert_allclose(ra, cat["ra"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(dec, cat["dec"], rtol=0, atol=1e-10)


def test_catalog_of_many_dtypes_round_trip(tmp_path: Path) -> None:
    table = Table(
        {
            "i8": np.array([1, -2, 3], np.int8),
            "u16": np.array([1, 2, 65535], np.uint16),
            "i64": np.array([2**62, -1, 0], np.int64),
            "u64": np.array([2**63, 1, 0], np.uint64),
            "f32": np.array([1.5, np.nan, -np.inf], np.float32),
            "flag": np.array([True, False, True]),
            "name": ["a", "bb", "ccc"],
            "vec": np.arange(9, dtype=np.float64).reshape(3, 3),
            "masked": MaskedColumn([1.0, 2.0, 3.0], mask=[False, True, False]),
        },
        meta={"survey": "synthetic", "nested": {"a": [1, 2]}},
    )
    table["f32"].unit = u.nJy
    table["i64"].unit = u.ct / u.s
    cat = SourceCatalog(table, calib=Calib(0.25, 0.01))
    write_catalog(cat, tmp_path / "t.fits")
    assert_catalogs_equal(cat, read_catalog(tmp_path / "t.fits"))


def test_empty_catalog_without_wcs_round_trip(tmp_path: Path) -> None:
    table = Table({"id": np.zeros(0, np.int64), "flux": np.zeros(0)})
    cat = SourceCatalog(table)
    write_catalog(cat, tmp_path / "e.fits")
    back = read_catalog(tmp_path / "e.fits")
    assert_catalogs_equal(cat, back)
    assert back.wcs is None and back.calib is None


@_HYPOTHESIS
@given(
    columns=st.dictionaries(
        st.from_regex(r"\A[a-z][a-z0-9_]{0,15}\Z"),
        st.sampled_from(["i2", "i4", "i8", "u1", "f4", "f8", "?"]),
        min_size=1, max_size=5,
    ),
    rows=st.integers(0, 6),
    data=st.data(),
)
def test_any_catalog_round_trips(columns: dict, rows: int, data: st.DataObject, tmp_path: Path) -> None:
    table = Table()
    for name, dtype in columns.items():
        table[name] = data.draw(hnp.arrays(np.dtype(dtype), rows))
        table[name].unit = data.draw(st.sampled_from([None, u.deg, u.pix, u.nJy, u.mag]))
    wcs = data.draw(st.none() | st.just(make_wcs(1, 2, 64)))
    cat = SourceCatalog(table, wcs=wcs, calib=data.draw(st.none() | st.just(Calib(1.5e-3, 0.0))))
    write_catalog(cat, tmp_path / "h.fits")
    assert_catalogs_equal(cat, read_catalog(tmp_path / "h.fits"))


def test_foreign_binary_table(tmp_path: Path) -> None:
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU(Table({"ra": [1.0], "dec": [2.0]}))]).writeto(
        tmp_path / "f.fits"
    )
    cat = read_catalog(tmp_path / "f.fits")
    assert cat.columns == ("ra", "dec") and cat.wcs is None and cat.calib is None


def test_catalog_file_without_table(tmp_path: Path) -> None:
    fits.PrimaryHDU(np.zeros((2, 2))).writeto(tmp_path / "img.fits")
    with pytest.raises(FitsFormatError, match="img.fits.*no binary-table"):
        read_catalog(tmp_path / "img.fits")


def test_catalog_errors_name_the_file_even_with_int8_columns(exposure: Exposure, tmp_path: Path) -> None:
    # An int8 column used to rebind the name the error messages use to the column's.
    catalog = make_catalog(exposure)
    catalog.table["flag8"] = np.arange(len(catalog), dtype=np.int8) % 3
    path = tmp_path / "cat.fits"
    write_catalog(catalog, path)
    with fits.open(path, mode="update") as hdul:
        key = next(k for k in hdul[0].header if k.startswith("COMPSTORE CALIB "))
        hdul[0].header[key] = "not a number"
    with pytest.raises(FitsFormatError, match=r"cat\.fits: ") as info:
        read_catalog(path)
    assert "flag8" not in str(info.value).split(":")[0]


def test_lookup_distortion_wcs_round_trips_in_exposure_cutout_and_catalog(tmp_path: Path) -> None:
    import astropy

    path = f"{astropy.__path__[0]}/wcs/tests/data/dist_lookup.fits.gz"
    exp = read_exposure(path)
    assert exp.wcs is not None and exp.wcs.to_dict().get("lookup")
    cut = exp.subset(Box2I((10, 20), (50, 40)))  # xy0 moves the lookup tables too
    write_exposure(cut, tmp_path / "cut.fits")
    back = read_exposure(tmp_path / "cut.fits")
    assert back.wcs == cut.wcs
    with fits.open(tmp_path / "cut.fits") as hdul:
        assert "HIERARCH" not in str(hdul["IMAGE"].header.cards["DP1.EXTVER"])
        plain = WCS(hdul["IMAGE"].header, hdul)
        iy, ix = (a.ravel().astype(float) for a in np.mgrid[0:40:4, 0:50:5])
        np.testing.assert_allclose(plain.all_pix2world(ix, iy, 0),
                                   cut.wcs.pixel_to_sky(ix + 10, iy + 20), rtol=0, atol=1e-10)
    cat = SourceCatalog(Table({"id": np.arange(3)}), wcs=exp.wcs)
    write_catalog(cat, tmp_path / "cat.fits")
    assert read_catalog(tmp_path / "cat.fits").wcs == exp.wcs


def test_sequent_distortion_dq_cards_export_as_record_valued_cards(tmp_path: Path) -> None:
    """CQDISia / DQia (Paper IV) round-trip as `DQ1 = 'NAXES: 2'` cards, never HIERARCH DQ1.NAXES."""
    header = fits.Header()
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, 50, 40
    for key, value in dict(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRPIX1=25.0, CRPIX2=20.0,
                           CRVAL1=10.0, CRVAL2=20.0, CDELT1=-1e-4, CDELT2=1e-4).items():
        header[key] = value
    for axis, quadratic in ((1, 1e-3), (2, 2e-3)):
        header[f"CQDIS{axis}"] = "TPD"
        for record in ("NAXES: 2", "AXIS.1: 1", "AXIS.2: 2", "TPD.FWD.0: 0.0",
                       "TPD.FWD.1: 1.0", f"TPD.FWD.4: {quadratic}"):
            header.append((f"DQ{axis}", record))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        original = WCS(header)
    fits.PrimaryHDU(np.zeros((40, 50), np.float32), header=header).writeto(tmp_path / "dq.fits")
    exposure = read_exposure(tmp_path / "dq.fits")
    write_exposure(exposure, tmp_path / "out.fits")
    pixels = np.array([[1.0, 2.0], [30.0, 10.0], [49.0, 39.0]])
    with fits.open(tmp_path / "out.fits") as hdul:
        image = hdul["IMAGE"].header
        dq = [card for card in image.cards if card.keyword.startswith("DQ")]
        assert dq and all("HIERARCH" not in str(card) for card in dq)
        assert any(str(card).startswith("DQ1     = 'NAXES: 2") for card in image.cards)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            back = WCS(image)
    expected = original.all_pix2world(pixels, 0)
    plain = fits.Header([c for c in header.cards if not c.keyword.startswith(("CQDIS", "DQ"))])
    undistorted = WCS(plain).all_pix2world(pixels, 0)
    assert np.abs(expected - undistorted).max() > 1e-6  # the distortion is really there
    np.testing.assert_allclose(back.all_pix2world(pixels, 0), expected, rtol=0, atol=1e-9)
    ra, dec = exposure.wcs.pixel_to_sky(pixels[:, 0], pixels[:, 1])
    np.testing.assert_allclose(np.column_stack([ra, dec]), expected, rtol=0, atol=1e-9)
