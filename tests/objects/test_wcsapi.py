"""Wcs speaks astropy's shared WCS interface (APE 14): results equal astropy's own."""

from __future__ import annotations

import warnings
from pathlib import Path

import astropy
import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import pixel_to_pixel
from astropy.wcs.wcsapi import (
    BaseHighLevelWCS,
    BaseLowLevelWCS,
    HighLevelWCSWrapper,
    SlicedLowLevelWCS,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from compstore.errors import ObjectError
from compstore.objects import Wcs
from compstore.objects._astropy import wcs_from_astropy

from .conftest import make_sip_wcs

_DATA = Path(astropy.__file__).parent / "wcs" / "tests" / "data"
# Real headers shipped with astropy: every projection of the "maps" set, SIP, TPV, ZPN,
# a spectral cube, HST's lookup-table distortion.
_FILES = [f"maps/{p.name}" for p in sorted((_DATA / "maps").glob("*.hdr"))] + [
    "sip.fits", "sip2.fits", "tpvonly.hdr", "siponly.hdr", "irac_sip.hdr",
    "3d_cd.hdr", "dist_lookup.fits.gz",
]
_DEG = 1e-9  # the tolerances: degrees on the sky ...
_PIX = 1e-6  # ... and pixels


def _astropy_wcs(name: str) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        if name.endswith((".fits", ".fits.gz")):
            with fits.open(_DATA / name) as hdul:
                return WCS(hdul[0].header, hdul, relax=True)
        raw = (_DATA / name).read_bytes().decode("ascii")
        try:
            header = fits.Header.fromstring(raw)
        except ValueError:
            header = fits.Header.fromstring(raw, sep="\n")
        return WCS(header, relax=True)


def _grid(n_dim: int) -> tuple[np.ndarray, ...]:
    # Pixels around each header's reference point, inside where every projection is valid.
    x, y = np.meshgrid(np.linspace(0.0, 40.0, 5), np.linspace(0.0, 30.0, 4))
    extra = [np.zeros(x.size)] * (n_dim - 2)
    return (x.ravel(), y.ravel(), *extra)


def test_wcs_is_an_ape14_wcs(sip_wcs):
    assert isinstance(sip_wcs, BaseLowLevelWCS)
    assert isinstance(sip_wcs, BaseHighLevelWCS)
    assert sip_wcs.low_level_wcs is sip_wcs
    assert (sip_wcs.pixel_n_dim, sip_wcs.world_n_dim) == (2, 2)
    assert sip_wcs.world_axis_physical_types == ["pos.eq.ra", "pos.eq.dec"]
    assert sip_wcs.world_axis_units == ["deg", "deg"]
    assert sip_wcs.axis_correlation_matrix.tolist() == [[True, True], [True, True]]
    assert sip_wcs.array_shape is None and sip_wcs.pixel_bounds is None


def test_value_semantics_are_unchanged(sip_wcs):
    # Still immutable and hashable by value, equal to a Wcs built anew.
    again = Wcs(make_sip_wcs())
    assert again == sip_wcs and hash(again) == hash(sip_wcs)
    assert {sip_wcs: 1}[again] == 1
    with pytest.raises(AttributeError, match="immutable"):
        sip_wcs.low_level_wcs = None  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        sip_wcs.anything = 1  # type: ignore[attr-defined]


def test_pixel_to_world_returns_skycoord_equal_to_astropys(sip_wcs, sip_astropy):
    x, y = np.array([0.0, 2035.0, 4000.5]), np.array([0.0, 1999.0, 3900.25])
    ours = sip_wcs.pixel_to_world(x, y)
    theirs = sip_astropy.pixel_to_world(x, y)
    assert isinstance(ours, SkyCoord) and ours.frame.name == theirs.frame.name == "icrs"
    assert np.all(ours.separation(theirs).deg < _DEG)
    scalar = sip_wcs.pixel_to_world(10.0, 20.0)
    assert scalar.isscalar
    assert scalar.separation(sip_astropy.pixel_to_world(10.0, 20.0)).deg < _DEG


def test_world_to_pixel_inverts_sip_tightly(sip_wcs, sip_astropy):
    x, y = np.array([5.0, 1000.0, 4000.0]), np.array([7.0, 3000.0, 100.0])
    sky = sip_astropy.pixel_to_world(x, y)
    px, py = sip_wcs.world_to_pixel(sky)
    # astropy's own default inversion (tolerance 1e-4 pixel) is looser than this.
    assert np.allclose(px, x, rtol=0, atol=1e-9) and np.allclose(py, y, rtol=0, atol=1e-9)
    ax, ay = sip_astropy.world_to_pixel(sky)
    assert np.allclose(px, ax, atol=1e-4) and np.allclose(py, ay, atol=1e-4)


def test_other_frames_are_converted_like_astropy(sip_wcs, sip_astropy):
    galactic = sip_astropy.pixel_to_world(100.0, 200.0).galactic
    assert galactic.frame.name == "galactic"
    assert np.allclose(sip_wcs.world_to_pixel(galactic), (100.0, 200.0), atol=_PIX)


def test_values_interface_matches_old_pixel_to_sky(sip_wcs):
    ra, dec = sip_wcs.pixel_to_world_values([1.0, 2.0], [3.0, 4.0])
    assert np.array_equal((ra, dec), sip_wcs.pixel_to_sky([1.0, 2.0], [3.0, 4.0]))
    assert isinstance(sip_wcs.pixel_to_world_values(1.0, 2.0)[0], float)
    x, y = sip_wcs.world_to_pixel_values(ra, dec)
    assert np.allclose(x, [1.0, 2.0], atol=1e-9) and np.allclose(y, [3.0, 4.0], atol=1e-9)
    with pytest.raises(ObjectError, match="2 world axes; got 1"):
        sip_wcs.world_to_pixel_values(ra)
    with pytest.raises(ObjectError, match="2 pixel axes; got 3"):
        sip_wcs.pixel_to_world_values(1.0, 2.0, 3.0)


@pytest.mark.parametrize("name", _FILES)
def test_real_headers_agree_with_astropy(name):
    theirs = _astropy_wcs(name)
    ours = wcs_from_astropy(theirs)  # every axis, as put() keeps it
    assert ours.world_axis_physical_types == list(theirs.world_axis_physical_types)
    assert ours.world_axis_units == list(theirs.world_axis_units)
    pixels = _grid(theirs.pixel_n_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns on some frames (no DATE-OBS ...)
        want = theirs.pixel_to_world_values(*pixels)
        got = ours.pixel_to_world_values(*pixels)
        assert np.allclose(got, want, rtol=0, atol=_DEG, equal_nan=True)
        high_ours = ours.pixel_to_world(*pixels)
        high_theirs = theirs.pixel_to_world(*pixels)
        if isinstance(high_theirs, SkyCoord):
            assert np.all(high_ours.separation(high_theirs).deg < _DEG)
            high_theirs = [high_theirs]
        else:
            assert [type(o) for o in high_ours] == [type(o) for o in high_theirs]
        back = ours.world_to_pixel(*high_theirs)
        # Distortions are inverted iteratively: astropy's default stops at 1e-4 pixel,
        # ours at 1e-11, so those compare with where the pixels came from. The rest
        # (CSC's inverse is itself approximate) compare with astropy's own inverse.
        expected = pixels if theirs.has_distortion else theirs.world_to_pixel(*high_theirs)
    ok = np.isfinite(want[0])
    for axis in range(2):
        assert np.allclose(np.asarray(back[axis])[ok], np.asarray(expected[axis])[ok], atol=_PIX)


def test_astropy_utilities_accept_a_wcs(sip_wcs, sip_astropy):
    # pixel_to_pixel goes through the high-level API of both WCSs.
    x, y = np.array([0.0, 123.4, 3999.0]), np.array([1.0, 77.7, 2500.0])
    px, py = pixel_to_pixel(sip_wcs, sip_astropy, x, y)
    assert np.allclose(px, x, atol=_PIX) and np.allclose(py, y, atol=_PIX)
    # APE 14 slicing and wrapping work on the low-level interface alone.
    sliced = HighLevelWCSWrapper(SlicedLowLevelWCS(sip_wcs, (slice(10, 20), slice(5, 15))))
    direct = sip_wcs.pixel_to_world(5.0 + 2.0, 10.0 + 3.0)
    assert sliced.pixel_to_world(2.0, 3.0).separation(direct).deg < _DEG
    # The way back to a real astropy WCS, for what needs one (SkyCoord.to_pixel, Cutout2D).
    sky = sip_astropy.pixel_to_world(50.0, 60.0)
    assert np.allclose(sky.to_pixel(sip_wcs.to_astropy()), (50.0, 60.0), atol=1e-4)


def test_cube_plane_needs_only_x_and_y():
    theirs = _astropy_wcs("3d_cd.hdr")
    ours = wcs_from_astropy(theirs)
    assert ours.pixel_n_dim == 3
    # Pixel axes not given are 0: the plane an Exposure read from the cube holds.
    assert np.allclose(
        ours.pixel_to_world_values(3.0, 4.0), theirs.pixel_to_world_values(3.0, 4.0, 0.0), atol=_DEG
    )


@settings(max_examples=40, deadline=None)
@given(
    ra=st.floats(0.0, 359.9),
    dec=st.floats(-89.0, 89.0),
    scale=st.floats(0.05, 2.0),
    rot=st.floats(0.0, 360.0),
    crpix=st.tuples(st.floats(-500, 4500), st.floats(-500, 4500)),
    x=st.floats(-100.0, 4200.0),
    y=st.floats(-100.0, 4200.0),
)
def test_tan_agrees_with_astropy(ra, dec, scale, rot, crpix, x, y):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = list(crpix)
    t = np.deg2rad(rot)
    w.wcs.cd = scale / 3600 * np.array([[-np.cos(t), np.sin(t)], [np.sin(t), np.cos(t)]])
    ours = Wcs(w)
    got, want = ours.pixel_to_world(x, y), w.pixel_to_world(x, y)
    assert got.separation(want).to_value(u.deg) < _DEG
    assert np.allclose(ours.world_to_pixel(want), (x, y), rtol=0, atol=_PIX)
