"""Shared fixtures of the object-model tests: a TAN-SIP Wcs, a full Exposure, a catalog."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS, Sip

from compstore.objects import (
    Background,
    Box2I,
    Calib,
    Exposure,
    GaussianPsf,
    SourceCatalog,
    VisitInfo,
    Wcs,
)


def make_sip_wcs(crval: tuple[float, float] = (150.1234567890123, 2.2345678901234)) -> WCS:
    """An astropy TAN-SIP WCS with awkward (many-digit) values and real distortion."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    w.wcs.crpix = [2036.123456789012, 2000.987654321098]
    w.wcs.crval = list(crval)
    scale = 0.2 / 3600
    theta = np.deg2rad(12.345678901234)
    w.wcs.cd = scale * np.array(
        [[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]]
    )
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    a[2, 0], a[1, 1], a[0, 2], a[3, 0] = 1.234567890123e-6, -3.3333333333e-7, 2.1e-7, 1.1e-10
    b[2, 0], b[1, 1], b[0, 2], b[0, 3] = -4.5e-7, 7.77777777e-7, 1.0e-6, -2.2e-10
    w.sip = Sip(a, b, None, None, w.wcs.crpix)
    w.wcs.set()
    return w


@pytest.fixture
def sip_astropy() -> WCS:
    return make_sip_wcs()


@pytest.fixture
def sip_wcs() -> Wcs:
    return Wcs(make_sip_wcs())


@pytest.fixture
def exposure(sip_wcs: Wcs) -> Exposure:
    rng = np.random.default_rng(42)
    shape = (40, 60)
    bbox = Box2I((100, 200), (shape[1], shape[0]))
    return Exposure(
        rng.normal(100.0, 5.0, shape).astype(np.float32),
        variance=np.full(shape, 25.0, np.float32),
        xy0=bbox.min,
        wcs=sip_wcs,
        calib=Calib(0.5, 0.01),
        psf=GaussianPsf(1.7),
        visit_info=VisitInfo(exposure_time=30.0, date_mjd=60310.25, boresight_ra=150.1,
                             boresight_dec=2.2),
        background=Background([[90.0, 95.0], [100.0, 105.0]], bbox),
        metadata={"EXPTIME": 30.0, "OBSID": "x1", "FLAG": True, "N": 3},
        band="r",
        detector=7,
    )


@pytest.fixture
def catalog(sip_wcs: Wcs) -> SourceCatalog:
    n = 5
    table = Table(
        {
            "id": np.arange(n, dtype=np.int64),
            "x": np.linspace(10, 50, n),
            "y": np.linspace(5, 25, n),
            "instflux": np.array([100.0, 200.0, 300.0, 400.0, 500.0]),
            "instflux_err": np.full(n, 10.0),
            "flags": np.zeros(n, dtype=np.int32),
        }
    )
    ra, dec = sip_wcs.pixel_to_sky(table["x"], table["y"])
    table["ra"] = ra
    table["ra"].unit = "deg"
    table["dec"] = dec
    table["dec"].unit = "deg"
    return SourceCatalog(table, wcs=sip_wcs, calib=Calib(2.0, 0.1))
