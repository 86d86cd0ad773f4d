"""Calib: counts <-> nJy <-> AB magnitudes with astropy units, scalars and arrays."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compstore.errors import ObjectError
from compstore.objects import Calib

calibrations = st.floats(1e-3, 1e4)
fluxes = st.floats(1e-3, 1e9)


def test_instflux_to_nanojansky_units_and_values():
    calib = Calib(2.5, 0.1)
    flux = calib.instflux_to_nanojansky(100.0)
    assert isinstance(flux, u.Quantity) and flux.unit == u.nJy and flux.value == 250.0
    flux, err = calib.instflux_to_nanojansky(np.array([100.0, 200.0]), np.array([3.0, 4.0]))
    np.testing.assert_allclose(flux.to_value(u.nJy), [250.0, 500.0])
    # Error: instflux error and calibration error added in quadrature.
    np.testing.assert_allclose(err.to_value(u.nJy), [math.hypot(7.5, 10.0), math.hypot(10.0, 20.0)])
    assert calib.instflux_to_nanojansky(4 * u.count).value == 10.0


def test_magnitudes():
    calib = Calib(1.0)
    zero = (0.0 * u.ABmag).to_value(u.nJy)  # ~3631 Jy is AB magnitude 0
    mag = calib.instflux_to_magnitude(zero)
    assert mag.unit == u.ABmag and mag.value == pytest.approx(0.0, abs=1e-12)
    mag, err = calib.instflux_to_magnitude([1.0, -1.0], [0.1, 0.1])
    assert mag.value[0] == pytest.approx(31.4, abs=1e-3)
    assert np.isnan(mag.value[1])  # negative fluxes have no magnitude
    assert err.unit == u.mag and err.value[0] == pytest.approx(2.5 / math.log(10) * 0.1)
    assert calib.zero_point == pytest.approx(31.4, abs=1e-3)
    assert Calib.from_zero_point(27.0).zero_point == pytest.approx(27.0, abs=1e-12)


@given(calibrations, fluxes)
def test_round_trips(cal, instflux):
    calib = Calib(cal)
    njy = calib.instflux_to_nanojansky(instflux)
    assert calib.nanojansky_to_instflux(njy) == pytest.approx(instflux, rel=1e-12)
    assert calib.nanojansky_to_instflux(njy.to(u.mJy)) == pytest.approx(instflux, rel=1e-12)
    assert calib.nanojansky_to_instflux(njy.value) == pytest.approx(instflux, rel=1e-12)
    mag = calib.instflux_to_magnitude(instflux)
    assert calib.magnitude_to_instflux(mag) == pytest.approx(instflux, rel=1e-9)
    assert calib.magnitude_to_instflux(mag.value) == pytest.approx(instflux, rel=1e-9)


@given(calibrations, st.lists(fluxes, min_size=1, max_size=10))
def test_array_round_trip(cal, values):
    calib = Calib(cal)
    arr = np.array(values)
    back = calib.magnitude_to_instflux(calib.instflux_to_magnitude(arr))
    assert back.shape == arr.shape
    np.testing.assert_allclose(back, arr, rtol=1e-9)


@pytest.mark.parametrize(("cal", "err"), [(0.0, 0.0), (-1.0, 0.0), (math.inf, 0.0),
                                          (math.nan, 0.0), (1.0, -0.1), ("a", 0.0)])
def test_validation(cal, err):
    with pytest.raises(ObjectError):
        Calib(cal, err)


def test_unit_errors():
    calib = Calib(1.0)
    with pytest.raises(ObjectError, match="nJy"):
        calib.nanojansky_to_instflux(3 * u.m)
    with pytest.raises(ObjectError, match="AB"):
        calib.magnitude_to_instflux(3 * u.s)
    with pytest.raises(ObjectError, match="count"):
        calib.instflux_to_nanojansky(3 * u.nJy)


def test_dict_and_value_semantics():
    calib = Calib(1.5, 0.25)
    assert Calib.from_dict(calib.to_dict()) == calib
    assert calib.to_dict() == {"calibration": 1.5, "calibration_err": 0.25}
    assert Calib(1, 0) == Calib(1.0, 0.0) and hash(Calib(1, 0)) == hash(Calib(1.0, -0.0))
    assert Calib(1.0, -0.0).to_dict() == Calib(1.0).to_dict()
    with pytest.raises(ObjectError):
        Calib.from_dict({"calibration_err": 1.0})
