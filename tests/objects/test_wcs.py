"""Wcs: SIP-aware transforms, canonical dict (exact), headers with more axes, quirks."""

from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from compstore.errors import ObjectError
from compstore.objects import Wcs

from .conftest import make_sip_wcs

GRID = np.meshgrid(np.linspace(-100.0, 4172.0, 23), np.linspace(-50.0, 4050.0, 19))


def test_pixel_to_sky_matches_astropy_including_sip(sip_wcs, sip_astropy):
    x, y = GRID
    ra, dec = sip_wcs.pixel_to_sky(x, y)
    ref_ra, ref_dec = sip_astropy.all_pix2world(x, y, 0)
    assert ra.shape == x.shape
    np.testing.assert_allclose(ra, ref_ra, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dec, ref_dec, rtol=0, atol=1e-12)
    # The distortion matters: the linear (no SIP) solution is off by far more.
    lin_ra, _ = sip_astropy.wcs_pix2world(x, y, 0)
    assert np.abs(lin_ra - ra).max() > 1e-4
    assert sip_wcs.has_distortion


def test_pixel_sky_pixel_round_trip_over_a_grid(sip_wcs):
    x, y = GRID
    ra, dec = sip_wcs.pixel_to_sky(x, y)
    x2, y2 = sip_wcs.sky_to_pixel(ra, dec)
    np.testing.assert_allclose(x2, x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(y2, y, rtol=0, atol=1e-6)


def test_zero_based_pixels(sip_astropy):
    # CRPIX is 1-based in FITS: 0-based pixel crpix - 1 lands exactly on CRVAL.
    wcs = Wcs(sip_astropy)
    ra, dec = wcs.pixel_to_sky(sip_astropy.wcs.crpix[0] - 1, sip_astropy.wcs.crpix[1] - 1)
    assert ra == pytest.approx(sip_astropy.wcs.crval[0], abs=1e-12)
    assert dec == pytest.approx(sip_astropy.wcs.crval[1], abs=1e-12)


def test_scalars_give_floats_and_arrays_broadcast(sip_wcs):
    ra, dec = sip_wcs.pixel_to_sky(10.0, 20.0)
    assert isinstance(ra, float) and isinstance(dec, float)
    x, y = sip_wcs.sky_to_pixel(ra, dec)
    assert isinstance(x, float) and (x, y) == pytest.approx((10.0, 20.0), abs=1e-7)
    ra, dec = sip_wcs.pixel_to_sky([1.0, 2.0, 3.0], 5.0)
    assert ra.shape == (3,) and dec.shape == (3,)


def test_to_dict_round_trip_is_exact(sip_wcs):
    d = sip_wcs.to_dict()
    assert json.loads(json.dumps(d)) == d
    again = Wcs.from_dict(json.loads(json.dumps(d)))
    assert again == sip_wcs and hash(again) == hash(sip_wcs)
    assert again.to_dict() == d
    x, y = GRID
    a = np.array(sip_wcs.pixel_to_sky(x, y))
    b = np.array(again.pixel_to_sky(x, y))
    assert np.abs(a - b).max() <= 1e-12


def test_to_dict_keeps_full_precision(sip_astropy):
    cards = Wcs(sip_astropy).to_dict()["header"]
    assert cards["CRVAL1"] == sip_astropy.wcs.crval[0]
    assert cards["CRPIX2"] == sip_astropy.wcs.crpix[1]
    assert cards["PC1_2"] == sip_astropy.wcs.cd[0, 1]
    assert cards["A_1_1"] == sip_astropy.sip.a[1, 1]
    # astropy's own header rounds these (20-character FITS cards): that is what we avoid.
    assert sip_astropy.to_header(relax=True)["CRVAL1"] != sip_astropy.wcs.crval[0]
    assert list(cards) == sorted(cards)


def test_equal_wcs_give_equal_dicts_and_hashes(sip_astropy):
    a, b = Wcs(sip_astropy), Wcs(make_sip_wcs())
    assert a is not b and a == b and hash(a) == hash(b)
    assert a.to_dict() == b.to_dict()
    assert Wcs(a.astropy) == a  # canonical form is a fixed point
    assert len({a, b}) == 1
    other = Wcs(make_sip_wcs(crval=(150.1234567890124, 2.2345678901234)))
    assert other != a


def test_astropy_property_is_a_copy(sip_wcs):
    before = sip_wcs.pixel_to_sky(5.0, 5.0)
    w = sip_wcs.astropy
    w.wcs.crval = [10.0, 10.0]
    w.wcs.set()
    assert sip_wcs.pixel_to_sky(5.0, 5.0) == before
    assert sip_wcs.astropy is not sip_wcs.astropy
    assert copy.deepcopy(sip_wcs) is sip_wcs


def test_input_is_copied():
    w = make_sip_wcs()
    wcs = Wcs(w)
    before = wcs.to_dict()
    w.wcs.crval = [0.0, 0.0]
    w.wcs.set()
    assert wcs.to_dict() == before


def test_to_header_round_trip_to_fits_precision(sip_wcs):
    header = sip_wcs.to_header()
    assert header["CTYPE1"] == "RA---TAN-SIP" and "A_2_0" in header
    assert header["CRVAL1"] == sip_wcs.to_dict()["header"]["CRVAL1"]  # exact in memory
    # Through FITS text (20-character cards) values round to ~1e-15 relative.
    text = fits.Header.fromstring(header.tostring())
    again = Wcs.from_header(text)
    x, y = GRID
    a = np.array(sip_wcs.pixel_to_sky(x, y))
    b = np.array(again.pixel_to_sky(x, y))
    assert np.abs(a - b).max() < 1e-9


def _cube_header(order: tuple[str, str, str]) -> fits.Header:
    axes = {
        "RA": ("RA---TAN", 150.0, -5.0e-5, 50.0),
        "DEC": ("DEC--TAN", 2.5, 5.0e-5, 60.0),
        "FREQ": ("FREQ", 1.4e9, 1.0e6, 1.0),
    }
    header = fits.Header()
    header["NAXIS"] = 3
    for i, name in enumerate(order, start=1):
        ctype, crval, cdelt, crpix = axes[name]
        header[f"NAXIS{i}"] = 100
        header[f"CTYPE{i}"] = ctype
        header[f"CRVAL{i}"] = crval
        header[f"CDELT{i}"] = cdelt
        header[f"CRPIX{i}"] = crpix
        header[f"CUNIT{i}"] = "Hz" if name == "FREQ" else "deg"
    return header


def test_from_header_with_a_spectral_axis_keeps_the_celestial_part():
    cube = Wcs.from_header(_cube_header(("RA", "DEC", "FREQ")))
    plain = WCS(naxis=2)
    plain.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    plain.wcs.crval = [150.0, 2.5]
    plain.wcs.cdelt = [-5.0e-5, 5.0e-5]
    plain.wcs.crpix = [50.0, 60.0]
    plain.wcs.cunit = ["deg", "deg"]
    expected = Wcs(plain)
    assert cube.astropy.naxis == 2
    x, y = GRID
    np.testing.assert_allclose(cube.pixel_to_sky(x, y), expected.pixel_to_sky(x, y), atol=1e-12)
    assert cube.pixel_to_sky(49.0, 59.0) == pytest.approx((150.0, 2.5), abs=1e-12)


def test_from_header_with_spectral_axis_first_and_dec_before_ra():
    wcs = Wcs.from_header(_cube_header(("FREQ", "DEC", "RA")))
    # Celestial axes in (DEC, RA) order: pixel x is along DEC, but results are (ra, dec).
    ra, dec = wcs.pixel_to_sky(59.0, 49.0)
    assert (ra, dec) == pytest.approx((150.0, 2.5), abs=1e-12)
    x, y = wcs.sky_to_pixel(150.001, 2.499)
    assert wcs.pixel_to_sky(x, y) == pytest.approx((150.001, 2.499), abs=1e-12)


def test_from_header_tolerates_quirks():
    header = fits.Header()
    header["SIMPLE"] = True
    header["NAXIS"] = 2
    header["NAXIS1"] = 100
    header["NAXIS2"] = 100
    header["CTYPE1"] = "RA---TAN"
    header["CTYPE2"] = "DEC--TAN"
    header["CRVAL1"] = 10.0
    header["CRVAL2"] = -20.0
    header["CRPIX1"] = 50.0
    header["CRPIX2"] = 50.0
    header["CD1_1"] = -1e-4
    header["CD2_2"] = 1e-4
    header["RADECSYS"] = "FK5"  # deprecated spelling of RADESYS
    header["EQUINOX"] = 2000.0
    header["DATE-OBS"] = "2024-01-02"  # old-style date that astropy "fixes"
    header["OBJECT"] = "M31"  # unrelated card
    header["A_ORDER"] = 2  # SIP cards although CTYPE says plain TAN
    header["A_2_0"] = 1e-6
    header["B_ORDER"] = 2
    header["B_0_2"] = 1e-6
    wcs = Wcs.from_header(header)
    assert wcs.pixel_to_sky(49.0, 49.0) == pytest.approx((10.0, -20.0), abs=1e-12)
    # From header text and from a dict of cards too.
    assert Wcs.from_header(header.tostring()) == wcs
    assert Wcs.from_header(dict(header)) == wcs
    assert Wcs.from_dict(wcs.to_dict()) == wcs


def test_no_celestial_axes_raises():
    header = fits.Header({"NAXIS": 1, "CTYPE1": "FREQ", "CRVAL1": 1e9, "CDELT1": 1e6})
    with pytest.raises(ObjectError, match="celestial"):
        Wcs.from_header(header)


def test_bad_inputs_raise_object_error():
    with pytest.raises(ObjectError):
        Wcs("RA---TAN")  # type: ignore[arg-type]
    with pytest.raises(ObjectError):
        Wcs.from_dict({"nope": 1})


def test_immutable(sip_wcs):
    with pytest.raises(AttributeError):
        sip_wcs._wcs = None
    with pytest.raises(AttributeError):
        sip_wcs.foo = 1


def test_from_header_sip_cube(sip_wcs, sip_astropy):
    # astropy refuses SIP with three axes unless the celestial axes are picked first.
    header = sip_astropy.to_header(relax=True)
    header["WCSAXES"] = 3
    header["CTYPE3"], header["CRVAL3"], header["CDELT3"], header["CRPIX3"] = "FREQ", 1.4e9, 1e6, 1.0
    cube = Wcs.from_header(header)
    assert cube.has_distortion and cube.astropy.naxis == 2
    x, y = GRID
    np.testing.assert_allclose(cube.pixel_to_sky(x, y), sip_wcs.pixel_to_sky(x, y), atol=1e-9)


def test_tpv_polynomial_round_trips():
    # TPV's PV cards are a distortion polynomial, not TAN projection parameters.
    header = fits.Header(
        {"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "CRPIX1": 12.0, "CRPIX2": 8.0,
         "CRVAL1": 10.0, "CRVAL2": 20.0, "CD1_1": -1e-3, "CD2_2": 1e-3,
         "PV1_1": 1.0, "PV1_4": 2e-3, "PV1_7": -1e-2, "PV2_1": 1.0, "PV2_5": 1e-3}
    )
    wcs = Wcs.from_header(header)
    assert Wcs.from_dict(wcs.to_dict()) == wcs
    x, y = GRID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = WCS(header).all_pix2world(x, y, 0)
    np.testing.assert_allclose(wcs.pixel_to_sky(x, y), ref, rtol=0, atol=1e-12)


def test_zpn_projection_parameters_are_exact():
    header = fits.Header(
        {"CTYPE1": "RA---ZPN", "CTYPE2": "DEC--ZPN", "CRPIX1": 12.0, "CRPIX2": 8.0,
         "CRVAL1": 0.5, "CRVAL2": 89.9, "CDELT1": -2e-3, "CDELT2": 2e-3,
         "PV2_1": 1.0, "PV2_3": 220.123456789012345}
    )
    wcs = Wcs.from_header(header)
    assert wcs.to_dict()["header"]["PV2_3"] == 220.123456789012345
    assert Wcs.from_dict(wcs.to_dict()) == wcs


def test_lookup_table_distortion_is_kept_exactly():
    import astropy

    path = f"{astropy.__path__[0]}/wcs/tests/data/dist_lookup.fits.gz"
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = WCS(hdul[1].header, hdul)
    wcs = Wcs(original)  # 2-D celestial: the tables are kept, not refused
    d = json.loads(json.dumps(wcs.to_dict()))
    assert set(d["lookup"]) == {"cpdis1", "cpdis2", "det2im1"}
    again = Wcs.from_dict(d)
    assert again == wcs and again.has_distortion
    x, y = np.meshgrid(np.linspace(0, 99, 10), np.linspace(0, 99, 10))
    ra, dec = original.all_pix2world(x, y, 0)
    np.testing.assert_allclose(again.pixel_to_sky(x, y), (ra, dec), rtol=0, atol=1e-12)
    # Without its tables the Wcs would be another one: they are part of equality.
    assert Wcs.from_dict({"header": d["header"]}) != wcs
    with pytest.raises(ObjectError, match="unknown keys"):
        Wcs.from_dict({**d, "future": 1})
    with pytest.raises(ObjectError, match="lookup table 'cpdis1'"):
        Wcs.from_dict({**d, "lookup": {"cpdis1": {**d["lookup"]["cpdis1"], "values": [1.0]}}})
