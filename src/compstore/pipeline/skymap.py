"""A simple sky map: the sky cut into tracts (declination bands of RA cells), each cut into patches.

Tracts and patches are what coadds are keyed by (``tract, patch, band``) and
what jointcal groups its inputs by. Each tract has its own TAN projection
centred on its cell; its patches tile that projection's pixel grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

from ..errors import ObjectError
from ..objects import Box2I, Exposure, Wcs

__all__ = ["SkyMap", "TractInfo"]


@dataclass(frozen=True)
class TractInfo:
    """One tract: its id, its TAN Wcs and its pixel bbox (patches tile the bbox)."""

    tract: int
    wcs: Wcs
    bbox: Box2I
    patches_per_side: int

    @property
    def patch_size(self) -> tuple[int, int]:
        """(width, height) of one patch in pixels."""
        return (
            math.ceil(self.bbox.width / self.patches_per_side),
            math.ceil(self.bbox.height / self.patches_per_side),
        )

    def patch_bbox(self, patch: int) -> Box2I:
        """Pixel bbox of ``patch`` (``0 .. patches_per_side**2 - 1``, row-major) in tract pixels.

        Raises
        ------
        ObjectError
            If ``patch`` is out of range.
        """
        n = self.patches_per_side
        if not 0 <= patch < n * n:
            raise ObjectError(f"tract {self.tract} has patches 0..{n * n - 1}, not {patch}")
        width, height = self.patch_size
        px, py = patch % n, patch // n
        x0, y0 = self.bbox.x0 + px * width, self.bbox.y0 + py * height
        return Box2I(
            (x0, y0), (min(width, self.bbox.end_x - x0), min(height, self.bbox.end_y - y0))
        )

    def patches_overlapping(self, x: np.ndarray, y: np.ndarray) -> set[int]:
        """Patches containing any of the tract-pixel points ``(x, y)``."""
        n = self.patches_per_side
        width, height = self.patch_size
        px = np.floor((np.asarray(x) - self.bbox.x0) / width).astype(int)
        py = np.floor((np.asarray(y) - self.bbox.y0) / height).astype(int)
        inside = (px >= 0) & (px < n) & (py >= 0) & (py < n)
        return {int(p) for p in (py[inside] * n + px[inside])}


class SkyMap:
    """Tracts are cells of ``tract_size`` degrees in declination bands; patches tile each tract.

    Parameters
    ----------
    tract_size
        Side of a tract in degrees.
    patches_per_side
        A tract holds ``patches_per_side**2`` patches, numbered row-major.
    pixel_scale
        Arcseconds per coadd pixel.
    """

    def __init__(self, tract_size: float = 0.5, patches_per_side: int = 4, pixel_scale: float = 0.2):
        if not 0 < tract_size <= 10:
            raise ObjectError(f"tract_size must be in (0, 10] degrees, got {tract_size}")
        if patches_per_side < 1:
            raise ObjectError(f"patches_per_side must be >= 1, got {patches_per_side}")
        self.tract_size = float(tract_size)
        self.patches_per_side = int(patches_per_side)
        self.pixel_scale = float(pixel_scale)
        self._bands = int(math.ceil(180.0 / self.tract_size))
        self._tracts: dict[int, TractInfo] = {}

    def _band_cells(self, band: int) -> int:
        dec_centre = -90.0 + (band + 0.5) * self.tract_size
        return max(1, int(360.0 * math.cos(math.radians(dec_centre)) // self.tract_size))

    def _band_offset(self, band: int) -> int:
        return sum(self._band_cells(b) for b in range(band))

    def find_tracts(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Tract id of each sky position (degrees)."""
        ra = np.mod(np.asarray(ra, dtype=float), 360.0)
        dec = np.asarray(dec, dtype=float)
        bands = np.clip(((dec + 90.0) // self.tract_size).astype(int), 0, self._bands - 1)
        out = np.empty(bands.shape, dtype=int)
        for band in np.unique(bands):
            cells = self._band_cells(int(band))
            sel = bands == band
            out[sel] = self._band_offset(int(band)) + np.minimum((ra[sel] / 360.0 * cells).astype(int), cells - 1)
        return out

    def tract(self, tract: int) -> TractInfo:
        """Return tract ``tract``: a TAN Wcs centred on its cell, and its pixel bbox.

        Raises
        ------
        ObjectError
            If no tract has that id.
        """
        info = self._tracts.get(tract)
        if info is not None:
            return info
        offset = 0
        for band in range(self._bands):
            cells = self._band_cells(band)
            if tract < offset + cells:
                break
            offset += cells
        else:
            raise ObjectError(f"no tract {tract} in this sky map")
        cell = tract - offset
        dec = -90.0 + (band + 0.5) * self.tract_size
        ra = (cell + 0.5) * 360.0 / cells
        # A tract's pixels cover its cell with a 10% margin, so cells' edges overlap.
        scale = self.pixel_scale / 3600.0
        width = int(math.ceil(1.1 * self.tract_size / scale))
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [ra, dec]
        w.wcs.crpix = [width / 2.0 + 0.5, width / 2.0 + 0.5]
        w.wcs.cd = [[-scale, 0.0], [0.0, scale]]
        info = TractInfo(tract, Wcs(w), Box2I((0, 0), (width, width)), self.patches_per_side)
        self._tracts[tract] = info
        return info

    def overlaps(self, exposure_wcs: Wcs, bbox: Box2I, samples: int = 8) -> dict[int, set[int]]:
        """Tracts (and their patches) an exposure's footprint touches.

        The footprint is sampled on a ``samples x samples`` grid including its border.
        """
        xs = np.linspace(bbox.x0, bbox.end_x - 1, samples)
        ys = np.linspace(bbox.y0, bbox.end_y - 1, samples)
        gx, gy = np.meshgrid(xs, ys)
        ra, dec = exposure_wcs.pixel_to_sky(gx.ravel(), gy.ravel())
        found: dict[int, set[int]] = {}
        for tract in {int(t) for t in self.find_tracts(ra, dec)}:
            info = self.tract(tract)
            x, y = info.wcs.sky_to_pixel(ra, dec)
            patches = info.patches_overlapping(x, y)
            if patches:
                found[tract] = patches
        return found

    def exposure_overlaps(self, exposure: Exposure) -> dict[int, set[int]]:
        """As `overlaps`, for an Exposure with a Wcs."""
        if exposure.wcs is None:
            raise ObjectError("an exposure without a Wcs has no place on the sky map")
        return self.overlaps(exposure.wcs, exposure.bbox)
