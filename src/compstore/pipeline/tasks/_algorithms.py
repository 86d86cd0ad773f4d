"""The numerical cores of the built-in stages: stacking, a TAN-SIP fit, background, detection.

Pure functions on arrays and objects, so each can be tested and reused
without a repository or a pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from astropy.io import fits

from ...objects import Background, Box2I, Calib, Exposure, GaussianPsf, Mask, Wcs
from ._warp import Warp

__all__ = [
    "detect",
    "estimate_background",
    "fit_tan_sip",
    "relative_calibration",
    "stack_warps",
]


# -- coadd ------------------------------------------------------------------------------
def stack_warps(
    warps: Sequence[Warp],
    *,
    wcs: Wcs,
    bbox: Box2I,
    psf_sigmas: Sequence[float],
    band: str | None,
) -> Exposure:
    """Inverse-variance weighted mean of warps, in nJy (``Calib(1.0)``).

    Pixels no warp covers get the NO_DATA plane and zero weight; the mask of a
    covered pixel is the OR of the contributing warps' masks.
    """
    shape = (bbox.height, bbox.width)
    total = np.zeros(shape, dtype=np.float64)
    weights = np.zeros(shape, dtype=np.float64)
    bits = np.zeros(shape, dtype=np.int32)
    for warp in warps:
        inner = warp.bbox.intersection(bbox)
        if inner.is_empty:
            continue
        dst = inner.slices(origin=(bbox.x0, bbox.y0))
        src = inner.slices(origin=(warp.bbox.x0, warp.bbox.y0))
        valid = warp.valid[src]
        weight = np.where(valid, 1.0 / np.where(valid, warp.variance[src], 1.0), 0.0)
        total[dst] += np.where(valid, warp.image[src], 0.0) * weight
        weights[dst] += weight
        bits[dst] |= np.where(valid, warp.mask[src], 0).astype(np.int32)
    covered = weights > 0
    image = np.where(covered, total / np.where(covered, weights, 1.0), 0.0).astype(np.float32)
    variance = np.where(covered, 1.0 / np.where(covered, weights, 1.0), np.inf).astype(np.float32)
    mask = Mask(bits)
    mask.set_plane("NO_DATA", ~covered)
    sigma = float(np.mean(psf_sigmas)) if len(psf_sigmas) else 1.5
    return Exposure(
        image,
        mask,
        variance,
        xy0=(bbox.x0, bbox.y0),
        wcs=wcs,
        calib=Calib(1.0),
        psf=GaussianPsf(sigma),
        band=band,
        metadata={"NINPUTS": len(warps)},
    )


# -- jointcal ---------------------------------------------------------------------------
def _gnomonic(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """TAN projection of (ra, dec) about (ra0, dec0), in degrees of intermediate coordinates."""
    lon, lat, lon0, lat0 = (np.radians(v) for v in (ra, dec, ra0, dec0))
    cos_c = np.sin(lat0) * np.sin(lat) + np.cos(lat0) * np.cos(lat) * np.cos(lon - lon0)
    xi = np.cos(lat) * np.sin(lon - lon0) / cos_c
    eta = (np.cos(lat0) * np.sin(lat) - np.sin(lat0) * np.cos(lat) * np.cos(lon - lon0)) / cos_c
    # FITS TAN intermediate world coordinates grow east (x) and north (y).
    return np.degrees(xi), np.degrees(eta)


def _poly_terms(u: np.ndarray, v: np.ndarray, order: int) -> list[tuple[int, int, np.ndarray]]:
    return [(p, q, u**p * v**q) for p in range(order + 1) for q in range(order + 1 - p)]


def fit_tan_sip(
    x: np.ndarray, y: np.ndarray, ra: np.ndarray, dec: np.ndarray, *, crval: tuple[float, float],
    crpix: tuple[float, float], order: int = 3,
) -> Wcs:
    """Least-squares TAN-SIP Wcs mapping 0-based pixels ``(x, y)`` to ``(ra, dec)``.

    The tangent point is fixed at ``crval`` and the reference pixel at ``crpix``
    (0-based). A polynomial of ``order`` maps pixel offsets to intermediate
    coordinates; its linear part is the CD matrix and the rest, brought back
    through CD's inverse, the SIP A/B terms: one linear solve, no iteration.

    Raises
    ------
    ValueError
        If there are fewer points than polynomial terms.
    """
    u = np.asarray(x, dtype=float) - crpix[0]
    v = np.asarray(y, dtype=float) - crpix[1]
    xw, yw = _gnomonic(np.asarray(ra), np.asarray(dec), *crval)
    terms = [t for t in _poly_terms(u, v, order) if (t[0], t[1]) != (0, 0)]
    if len(u) < len(terms) + 1:
        raise ValueError(f"{len(u)} points cannot fit a TAN-SIP of order {order} ({len(terms)} terms)")
    scale = np.abs(u).max() + np.abs(v).max() + 1.0  # condition the solve
    design_scaled = np.stack([t[2] / scale ** (t[0] + t[1]) for t in terms], axis=1)
    coef_x = np.linalg.lstsq(design_scaled, xw, rcond=None)[0]
    coef_y = np.linalg.lstsq(design_scaled, yw, rcond=None)[0]
    coef_x = coef_x / np.array([scale ** (p + q) for p, q, _ in terms])
    coef_y = coef_y / np.array([scale ** (p + q) for p, q, _ in terms])
    index = {(p, q): i for i, (p, q, _) in enumerate(terms)}
    cd = np.array([[coef_x[index[1, 0]], coef_x[index[0, 1]]], [coef_y[index[1, 0]], coef_y[index[0, 1]]]])
    cd_inv = np.linalg.inv(cd)
    header = fits.Header()
    header["NAXIS"] = 2
    header["CTYPE1"] = "RA---TAN-SIP" if order > 1 else "RA---TAN"
    header["CTYPE2"] = "DEC--TAN-SIP" if order > 1 else "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = float(crval[0]), float(crval[1])
    header["CRPIX1"], header["CRPIX2"] = float(crpix[0]) + 1.0, float(crpix[1]) + 1.0
    header["CD1_1"], header["CD1_2"] = float(cd[0, 0]), float(cd[0, 1])
    header["CD2_1"], header["CD2_2"] = float(cd[1, 0]), float(cd[1, 1])
    if order > 1:
        header["A_ORDER"] = header["B_ORDER"] = order
        for (p, q), i in index.items():
            if p + q < 2:
                continue
            a, b = cd_inv @ np.array([coef_x[i], coef_y[i]])
            header[f"A_{p}_{q}"] = float(a)
            header[f"B_{p}_{q}"] = float(b)
    return Wcs.from_header(header)


def relative_calibration(calibs: dict[Any, Calib], visit_of: dict[Any, int]) -> dict[Any, Calib]:
    """A gray per-visit correction: every visit's zero point pulled to the tract's median.

    A crude stand-in for jointcal's photometric fit (which needs repeated
    stars): all detectors of a visit are scaled by the ratio of the tract's
    median calibration to that visit's median calibration, so the correction
    is a few percent, the size of a night's transparency changes.
    """
    target = float(np.median([c.calibration for c in calibs.values()]))
    by_visit: dict[int, list[float]] = {}
    for key, calib in calibs.items():
        by_visit.setdefault(visit_of[key], []).append(calib.calibration)
    factor = {visit: target / float(np.median(values)) for visit, values in by_visit.items()}
    return {
        key: Calib(calib.calibration * factor[visit_of[key]], calib.calibration_err * factor[visit_of[key]])
        for key, calib in calibs.items()
    }


# -- detection --------------------------------------------------------------------------
def estimate_background(exposure: Exposure, *, cell: int = 128) -> Background:
    """A grid of clipped-median sky levels, one per ``cell x cell`` pixels, ignoring masked pixels."""
    height, width = exposure.image.shape
    ny, nx = max(1, height // cell), max(1, width // cell)
    image = exposure.image
    bad = exposure.mask.array != 0
    grid = np.zeros((ny, nx))
    ys = np.linspace(0, height, ny + 1).astype(int)
    xs = np.linspace(0, width, nx + 1).astype(int)
    for j in range(ny):
        for i in range(nx):
            block = image[ys[j]:ys[j + 1], xs[i]:xs[i + 1]]
            good = block[~bad[ys[j]:ys[j + 1], xs[i]:xs[i + 1]] & np.isfinite(block)]
            if good.size == 0:
                continue
            median = np.median(good)
            mad = np.median(np.abs(good - median)) * 1.4826
            clipped = good[np.abs(good - median) < 3 * mad] if mad > 0 else good
            grid[j, i] = float(np.median(clipped)) if clipped.size else float(median)
    return Background(grid, exposure.bbox)


def detect(exposure: Exposure, *, threshold: float = 5.0) -> np.ndarray:
    """Pixels above ``threshold`` sigma (``image / sqrt(variance)``), as a bool array."""
    with np.errstate(invalid="ignore", divide="ignore"):
        significance = exposure.image / np.sqrt(exposure.variance)
    detected: np.ndarray = np.isfinite(significance) & (significance > threshold)
    return detected
