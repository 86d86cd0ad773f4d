"""Alternate WCSes (key letters A-Z) of a FITS file survive a cut-out and an export (issue 12 audit).

A file's alternate WCS describes its pixels as the primary one does; on
export it belongs with the primary WCS (on the image planes), and a cut-out
must move its reference pixel as it moves the primary's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from compstore import Box2I
from compstore.objects import Exposure

PRIMARY = {"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
           "CRPIX1": 40.5, "CRPIX2": 30.5, "CD1_1": -5e-5, "CD1_2": 0.0, "CD2_1": 0.0,
           "CD2_2": 5e-5}
# The same pixels in another frame: a linear "detector" coordinate (mm).
ALTERNATE = {"WCSNAMEA": "FOCAL", "CTYPE1A": "LINEAR", "CTYPE2A": "LINEAR", "CRVAL1A": 10.0,
             "CRVAL2A": -3.0, "CRPIX1A": 1.0, "CRPIX2A": 1.0, "CDELT1A": 0.015,
             "CDELT2A": 0.015, "CUNIT1A": "mm", "CUNIT2A": "mm"}


@pytest.fixture(params=[(0, 0), (100, 200)], ids=["origin", "ltv"])
def fits_file(request, tmp_path: Path) -> tuple[Path, tuple[int, int]]:
    x0, y0 = request.param
    header = fits.Header({**PRIMARY, **ALTERNATE})
    if (x0, y0) != (0, 0):  # IRAF/LSST physical offset: the array starts at (x0, y0)
        header["LTV1"], header["LTV2"] = -x0, -y0
    data = np.arange(60 * 80, dtype="f4").reshape(60, 80)
    path = tmp_path / "alt.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    return path, (x0, y0)


def _alt_world(header: fits.Header, x: float, y: float) -> np.ndarray:
    return np.asarray(WCS(header, key="A").wcs_pix2world([[x, y]], 0)[0])


def test_an_alternate_wcs_stays_right_after_a_cut_out_and_an_export(fits_file, tmp_path):
    path, (x0, y0) = fits_file
    original = fits.getheader(path)
    exposure = Exposure.read_fits(path)
    cut = exposure.subset(Box2I((x0 + 20, y0 + 10), (30, 25)))
    cut.write_fits(tmp_path / "cut.fits")
    with fits.open(tmp_path / "cut.fits") as hdul:
        image = next(h for h in hdul if h.name == "IMAGE")
        assert "CTYPE1A" in image.header  # with the primary WCS, on the image plane
        # Pixel (3, 4) of the cut-out file is pixel (23, 14) of the original file.
        np.testing.assert_allclose(_alt_world(image.header, 3, 4), _alt_world(original, 23, 14))
        np.testing.assert_allclose(WCS(image.header).wcs_pix2world([[3, 4]], 0)[0],
                                   WCS(original).wcs_pix2world([[23, 14]], 0)[0])
    again = Exposure.read_fits(tmp_path / "cut.fits")
    assert again.metadata["CRPIX1A"] == pytest.approx(exposure.metadata["CRPIX1A"])  # parent pixels
