"""Resampling an exposure onto another pixel grid (a patch of a tract), numpy only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...objects import Box2I, Exposure, Wcs

__all__ = ["Warp", "warp_exposure"]

# Planes whose pixels must not enter a coadd.
REJECT_PLANES = ("BAD", "SAT", "NO_DATA", "CR")


@dataclass(frozen=True)
class Warp:
    """An exposure resampled onto a target grid, in calibrated units (nJy).

    The arrays cover ``bbox`` (the part of the target grid the exposure
    overlaps). ``valid`` marks pixels that fell inside the exposure and on no
    rejected plane; ``mask`` carries the exposure's mask bits (nearest pixel).
    """

    bbox: Box2I
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    valid: np.ndarray


def _interp_axis(coarse: np.ndarray, at: np.ndarray, axis_points: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``coarse`` along ``axis`` from ``axis_points`` to ``at``."""
    idx = np.clip(np.searchsorted(axis_points, at, side="right") - 1, 0, len(axis_points) - 2)
    span = axis_points[idx + 1] - axis_points[idx]
    frac = (at - axis_points[idx]) / span
    lo = np.take(coarse, idx, axis=axis)
    hi = np.take(coarse, idx + 1, axis=axis)
    shape = [1, 1]
    shape[axis] = -1
    interpolated: np.ndarray = lo + (hi - lo) * frac.reshape(shape)
    return interpolated


def _source_coordinates(
    source: Wcs, target: Wcs, bbox: Box2I, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Source-pixel coordinates of every target pixel, exact on a coarse grid, bilinear between.

    The Wcs round trip (with its iterative SIP inversion) is costly per pixel
    but smooth over tens of pixels, so computing it every ``step`` pixels and
    interpolating keeps warps fast with sub-millipixel error.
    """
    xs = np.arange(bbox.x0, bbox.end_x, dtype=float)
    ys = np.arange(bbox.y0, bbox.end_y, dtype=float)
    cx = np.unique(np.append(xs[::step], xs[-1]))
    cy = np.unique(np.append(ys[::step], ys[-1]))
    if len(cx) < 2:
        cx = np.array([xs[0], xs[0] + 1.0])
    if len(cy) < 2:
        cy = np.array([ys[0], ys[0] + 1.0])
    gx, gy = np.meshgrid(cx, cy)
    ra, dec = target.pixel_to_sky(gx.ravel(), gy.ravel())
    sx, sy = source.sky_to_pixel(ra, dec)
    sx = np.asarray(sx).reshape(gx.shape)
    sy = np.asarray(sy).reshape(gx.shape)
    full = []
    for coarse in (sx, sy):
        along_x = _interp_axis(coarse, xs, cx, axis=1)
        full.append(_interp_axis(along_x, ys, cy, axis=0))
    return full[0], full[1]


def _overlap(exposure: Exposure, target_wcs: Wcs, target_bbox: Box2I) -> Box2I | None:
    """The part of ``target_bbox`` the exposure's footprint covers (plus a pixel of margin)."""
    box = exposure.bbox
    xs = np.linspace(box.x0 - 1, box.end_x, 16)
    ys = np.linspace(box.y0 - 1, box.end_y, 16)
    border_x = np.concatenate([xs, xs, np.full(16, xs[0]), np.full(16, xs[-1])])
    border_y = np.concatenate([np.full(16, ys[0]), np.full(16, ys[-1]), ys, ys])
    assert exposure.wcs is not None  # warp_exposure checks it first
    ra, dec = exposure.wcs.pixel_to_sky(border_x, border_y)
    tx, ty = target_wcs.sky_to_pixel(ra, dec)
    x0 = max(target_bbox.x0, int(np.floor(np.min(tx))) - 1)
    y0 = max(target_bbox.y0, int(np.floor(np.min(ty))) - 1)
    x1 = min(target_bbox.end_x, int(np.ceil(np.max(tx))) + 2)
    y1 = min(target_bbox.end_y, int(np.ceil(np.max(ty))) + 2)
    if x1 <= x0 or y1 <= y0:
        return None
    return Box2I((x0, y0), (x1 - x0, y1 - y0))


def warp_exposure(
    exposure: Exposure, target_wcs: Wcs, target_bbox: Box2I, *, step: int = 32
) -> Warp | None:
    """Resample ``exposure`` onto ``target_bbox`` of ``target_wcs`` (bilinear; mask by nearest).

    Pixel values are converted to nJy with the exposure's Calib, so warps of
    exposures with different zero points can be stacked directly. Only the
    part of the target the exposure overlaps is computed; None if it misses.
    """
    if exposure.wcs is None or exposure.calib is None:
        raise ValueError("an exposure needs a Wcs and a Calib to be warped")
    overlap = _overlap(exposure, target_wcs, target_bbox)
    if overlap is None:
        return None
    sx, sy = _source_coordinates(exposure.wcs, target_wcs, overlap, step)
    # array indices within the exposure
    ax = sx - exposure.xy0[0]
    ay = sy - exposure.xy0[1]
    height, width = exposure.image.shape
    inside = (ax >= 0) & (ax <= width - 1) & (ay >= 0) & (ay <= height - 1)
    x0 = np.clip(np.floor(ax).astype(np.intp), 0, max(width - 2, 0))
    y0 = np.clip(np.floor(ay).astype(np.intp), 0, max(height - 2, 0))
    fx = np.clip(ax - x0, 0.0, 1.0)
    fy = np.clip(ay - y0, 0.0, 1.0)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)

    def bilinear(plane: np.ndarray, square: bool = False) -> np.ndarray:
        w00, w01 = (1 - fx) * (1 - fy), fx * (1 - fy)
        w10, w11 = (1 - fx) * fy, fx * fy
        if square:  # variance of a weighted sum
            w00, w01, w10, w11 = w00**2, w01**2, w10**2, w11**2
        weighted: np.ndarray = (
            plane[y0, x0] * w00 + plane[y0, x1] * w01 + plane[y1, x0] * w10 + plane[y1, x1] * w11
        )
        return weighted

    scale = exposure.calib.calibration
    image = (bilinear(exposure.image) * scale).astype(np.float32)
    variance = (bilinear(exposure.variance, square=True) * scale**2).astype(np.float32)
    mask = exposure.mask.array[np.rint(ay).clip(0, height - 1).astype(np.intp),
                               np.rint(ax).clip(0, width - 1).astype(np.intp)]
    reject = 0
    for plane in REJECT_PLANES:
        if plane in exposure.mask.planes:
            reject |= exposure.mask.bitmask(plane)
    valid = inside & ((mask & reject) == 0) & np.isfinite(image) & (variance > 0)
    mask = np.where(inside, mask, 0).astype(np.int32)
    return Warp(bbox=overlap, image=image, variance=variance, mask=mask, valid=valid)
