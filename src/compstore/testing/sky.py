"""A synthetic sky: deterministic, sky-like Exposures and SourceCatalogs for tests,
the demo and benchmarks.

Every exposure belongs to a detector of a 5-column focal plane centred on the visit's
boresight (detector 12 sits on the boresight; 0..24 fill a 5x5 grid, higher numbers
continue the rows outward), with a TAN-SIP Wcs at 0.2 arcsec/pixel whose SIP terms
describe a mildly distorted camera. Pixels hold a smooth sky, Gaussian stars with
power-law fluxes (a few saturated), Gaussian noise with a matching variance plane,
and BAD, SAT and EDGE mask planes.

Everything is a pure function of ``(seed, visit, detector, size, band)``; separate
random streams feed the pointing, the stars and the noise, so that
:func:`make_catalog` can rebuild the true star list of any exposure made here, even
after a FITS or repository round trip, from the exposure's metadata.

Examples
--------
>>> from compstore.testing.sky import make_catalog, make_exposure
>>> exp = make_exposure(visit=1, detector=12, size=256)
>>> cat = make_catalog(exp)
>>> cat.wcs is exp.wcs and cat.calib is exp.calib
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table
from astropy.wcs import WCS, Sip

from compstore.errors import ObjectError
from compstore.objects import (
    Background,
    Box2I,
    Calib,
    Exposure,
    GaussianPsf,
    Mask,
    SourceCatalog,
    VisitInfo,
    Wcs,
)

__all__ = [
    "FOCAL_PLANE_COLUMNS",
    "PIXEL_SCALE_ARCSEC",
    "SATURATION",
    "OBJECT_TABLE_MEMBERS",
    "make_catalog",
    "make_exposure",
    "make_object_tables",
    "make_visit",
    "make_wcs",
]

#: Detectors per row of the synthetic focal plane (a 5x5 grid for detectors 0..24).
FOCAL_PLANE_COLUMNS = 5
#: Pixel scale of every detector, arcsec per pixel (Rubin's).
PIXEL_SCALE_ARCSEC = 0.2
#: Counts at which a pixel saturates (clipped there, flagged SAT).
SATURATION = 65000.0
#: Read noise in counts (gain is 1 electron per count).
READ_NOISE = 5.0
#: Width in pixels of the EDGE border.
EDGE_WIDTH = 4
#: Stars per 1024 x 1024 pixels (a moderately crowded high-latitude field).
STAR_DENSITY = 300.0
#: Exposure time of every visit, seconds.
EXPOSURE_TIME = 30.0

# Distortion at the edge of the field (pixels) and the field radius in detector pitches:
# a few pixels across a wide-field camera, like Rubin's residual optical distortion.
_EDGE_DISTORTION_PX = 2.0
_FIELD_RADIUS_PITCHES = 3.6
# Stream tags: independent random streams per purpose, so that adding a use of one
# stream never changes what another produces.
_POINTING, _DETECTOR, _STARS, _NOISE = 1, 2, 3, 4


def _rng(seed: int, *key: int) -> np.random.Generator:
    # SeedSequence mixes the whole tuple; negative numbers are folded to keep it valid.
    return np.random.default_rng([abs(int(k)) for k in (seed, *key)])


def _check(visit: int, detector: int, size: int) -> None:
    if visit < 0 or detector < 0:
        raise ObjectError(f"visit and detector must be >= 0, got visit={visit}, detector={detector}")
    if size < 4 * EDGE_WIDTH:
        raise ObjectError(f"size must be at least {4 * EDGE_WIDTH} pixels, got {size}")


# -- pointing, visit info, geometry -------------------------------------------------------
@dataclass(frozen=True)
class _Pointing:
    ra: float  # boresight, degrees
    dec: float
    rotation: float  # sky rotation of the focal plane, degrees
    mjd: float
    airmass: float
    sip2: tuple[float, ...]  # per-visit second-order SIP terms (optics + atmosphere)


SURVEYS = ("wide", "deep")
#: Dither radius of the "deep" survey, degrees: visits overlap most of the focal plane.
_DEEP_DITHER = 0.05


@functools.lru_cache(maxsize=4096)
def _pointing(visit: int, seed: int, survey: str = "wide") -> _Pointing:
    if survey == "deep":
        # Every visit looks at one field (visit 0's pointing), dithered and slightly
        # rotated, so that visits overlap as a coadd needs.
        field = _pointing(0, seed, "wide")
        rng = _rng(seed, _POINTING, visit, 7)
        own = _pointing(visit, seed, "wide")
        dec = field.dec + float(rng.uniform(-_DEEP_DITHER, _DEEP_DITHER))
        ra = field.ra + float(rng.uniform(-_DEEP_DITHER, _DEEP_DITHER)) / math.cos(math.radians(dec))
        return _Pointing(
            ra=ra % 360.0,
            dec=dec,
            rotation=field.rotation + float(rng.uniform(-2.0, 2.0)),
            mjd=own.mjd,
            airmass=own.airmass,
            sip2=own.sip2,
        )
    if survey != "wide":
        raise ObjectError(f"survey must be one of {SURVEYS}, got {survey!r}")
    rng = _rng(seed, _POINTING, visit)
    # Southern sky, away from the poles, where a survey like Rubin's spends its time.
    ra = float(rng.uniform(0.0, 360.0))
    dec = float(np.degrees(np.arcsin(rng.uniform(np.sin(np.radians(-65)), np.sin(np.radians(5))))))
    return _Pointing(
        ra=ra,
        dec=dec,
        rotation=float(rng.uniform(-180.0, 180.0)),
        mjd=60500.0 + visit * 0.000625 + float(rng.uniform(0.0, 0.0005)),
        airmass=float(rng.uniform(1.0, 1.8)),
        sip2=tuple(float(v) for v in rng.normal(0.0, 1.0, size=6)),
    )


@functools.lru_cache(maxsize=4096)
def _visit_info(visit: int, seed: int, survey: str = "wide") -> VisitInfo:
    # Cached so that every detector of a visit holds the *same* VisitInfo object, as a
    # real butler would hand out; frozen, so sharing it is safe.
    p = _pointing(visit, seed, survey)
    return VisitInfo(
        exposure_time=EXPOSURE_TIME,
        date_mjd=p.mjd,
        boresight_ra=p.ra,
        boresight_dec=p.dec,
        rotation_angle=p.rotation,
        airmass=p.airmass,
    )


def _detector_offset(detector: int, size: int) -> tuple[float, float]:
    """Focal-plane position (pixels) of the detector centre relative to the boresight."""
    pitch = size * 1.0625  # detectors with narrow gaps between them
    centre = (FOCAL_PLANE_COLUMNS - 1) / 2
    col, row = detector % FOCAL_PLANE_COLUMNS, detector // FOCAL_PLANE_COLUMNS
    return (col - centre) * pitch, (row - centre) * pitch


def make_wcs(visit: int, detector: int, size: int = 512, seed: int = 0, survey: str = "wide") -> Wcs:
    """The TAN-SIP Wcs of ``detector`` in ``visit``, for a ``size`` x ``size`` detector.

    The tangent point is the visit's boresight (outside most detectors, as in a real
    camera); CRPIX places it relative to the detector, the CD matrix carries the
    0.2 arcsec pixels rotated by the visit's rotation (plus a tiny per-detector
    mounting rotation), and third-order SIP terms give a radial distortion of about
    two pixels at the field edge plus small per-visit second-order terms.

    Parameters
    ----------
    visit, detector : int
        Non-negative identifiers.
    size : int
        Detector width and height in pixels.
    seed : int
        Seed of the synthetic sky.
    survey : {"wide", "deep"}
        "wide": each visit points somewhere else; "deep": every visit looks at
        one field, dithered by up to 0.05 degrees, so visits overlap.

    Returns
    -------
    Wcs
        Maps parent pixel coordinates of a detector image with ``xy0 = (0, 0)``.

    Raises
    ------
    ObjectError
        If ``visit`` or ``detector`` is negative or ``size`` too small.
    """
    _check(visit, detector, size)
    p = _pointing(visit, seed, survey)
    rng = _rng(seed, _DETECTOR, visit, detector)
    dx, dy = _detector_offset(detector, size)
    # Mounting errors of a few pixels and ~20 arcsec, as a real focal plane has.
    dx += float(rng.normal(0.0, 2.0))
    dy += float(rng.normal(0.0, 2.0))
    rot = math.radians(p.rotation) + float(rng.normal(0.0, 1e-4))
    centre = (size - 1) / 2
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    c, s = math.cos(rot), math.sin(rot)
    # East to the left (RA decreases with x) at rotation 0, then rotated.
    cd = scale * np.array([[-c, s], [s, c]])

    field_radius = _FIELD_RADIUS_PITCHES * size * 1.0625
    k = _EDGE_DISTORTION_PX / field_radius**3
    q = 0.15 / field_radius**2  # second-order terms: ~0.15 px at the field edge
    a = np.zeros((4, 4))
    b = np.zeros((4, 4))
    # Radial pincushion: (u, v) * k * (u^2 + v^2).
    a[3, 0] = a[1, 2] = k
    b[0, 3] = b[2, 1] = k
    a[2, 0], a[1, 1], a[0, 2], b[2, 0], b[1, 1], b[0, 2] = (q * v for v in p.sip2)

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
    # FITS pixels are 1-based: the boresight sits at detector pixel centre - offset.
    crpix = [centre - dx + 1.0, centre - dy + 1.0]
    wcs.wcs.crpix = crpix
    wcs.wcs.crval = [p.ra, p.dec]
    wcs.wcs.cd = cd
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.sip = Sip(a, b, None, None, crpix)
    wcs.wcs.set()
    return Wcs(wcs)


def _calib(visit: int, detector: int, seed: int) -> Calib:
    rng = _rng(seed, _DETECTOR, visit, detector, 1)
    # Zero point (AB mag of one count in 30 s) near Rubin r's, varying by a few percent
    # between visits (transparency) and detectors (quantum efficiency).
    zero_point = 32.0 + float(rng.normal(0.0, 0.03))
    cal = Calib.from_zero_point(zero_point)
    return Calib(cal.calibration, cal.calibration * 0.005)


def _psf_sigma(visit: int, detector: int, seed: int) -> float:
    rng = _rng(seed, _DETECTOR, visit, detector, 2)
    return float(rng.uniform(1.5, 2.0))


# -- stars -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stars:
    x: np.ndarray  # parent pixel coordinates (float64)
    y: np.ndarray
    flux: np.ndarray  # total counts


def _stars(visit: int, detector: int, size: int, seed: int, sigma: float) -> _Stars:
    rng = _rng(seed, _STARS, visit, detector, size)
    n = max(4, int(round(STAR_DENSITY * size * size / 1024**2)))
    # Stars a little beyond the border spill light onto the detector, as on a real sky.
    margin = 3.0 * sigma
    x = rng.uniform(-margin, size - 1 + margin, n)
    y = rng.uniform(-margin, size - 1 + margin, n)
    # Number counts N(>f) ~ f^-0.8 above 300 counts (about 25.8 mag), capped where
    # saturation would bleed far beyond a stamp.
    flux = 300.0 * rng.uniform(1e-6, 1.0, n) ** (-1.0 / 0.8)
    flux = np.minimum(flux, 5e7)
    # "Some saturated" even on small detectors: at least one star well over saturation.
    n_bright = max(1, n // 60)
    bright = rng.choice(n, size=n_bright, replace=False)
    peak_to_flux = 2.0 * np.pi * sigma**2
    flux[bright] = SATURATION * peak_to_flux * rng.uniform(1.5, 10.0, n_bright)
    return _Stars(x=x, y=y, flux=flux)


def _render(stars: _Stars, sigma: float, size: int) -> np.ndarray:
    """Sum of the star images, each drawn only in a postage stamp around the star."""
    half = int(math.ceil(6.0 * sigma))
    offsets = np.arange(-half, half + 1)
    ix = np.rint(stars.x).astype(np.int64)
    iy = np.rint(stars.y).astype(np.int64)
    cols = ix[:, None] + offsets  # (n, s)
    rows = iy[:, None] + offsets
    gx = np.exp(-0.5 * ((cols - stars.x[:, None]) / sigma) ** 2)
    gy = np.exp(-0.5 * ((rows - stars.y[:, None]) / sigma) ** 2)
    amp = stars.flux / (2.0 * np.pi * sigma**2)
    values = amp[:, None, None] * gy[:, :, None] * gx[:, None, :]
    rr = np.broadcast_to(rows[:, :, None], values.shape)
    cc = np.broadcast_to(cols[:, None, :], values.shape)
    inside = (rr >= 0) & (rr < size) & (cc >= 0) & (cc < size)
    # bincount sums overlapping stamps in one pass, far faster than np.add.at.
    flat = rr[inside] * size + cc[inside]
    model = np.bincount(flat, weights=values[inside], minlength=size * size)
    return model.reshape(size, size)


def _sky_level(visit: int, detector: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column terms whose outer sum is the smooth sky (a few hundred counts)."""
    rng = _rng(seed, _NOISE, visit, detector, 1)
    level = float(rng.uniform(250.0, 550.0))
    t = np.arange(size) / size
    gx, gy, wx, wy = rng.normal(0.0, 0.05, 4)
    phase = rng.uniform(0.0, 2 * np.pi, 2)
    col = level * (0.5 + gx * (t - 0.5) + 0.02 * np.sin(2 * np.pi * (t + wx) + phase[0]))
    row = level * (0.5 + gy * (t - 0.5) + 0.02 * np.sin(2 * np.pi * (t + wy) + phase[1]))
    return row, col


def make_exposure(
    visit: int, detector: int, size: int = 512, seed: int = 0, band: str = "r", survey: str = "wide"
) -> Exposure:
    """A synthetic detector exposure.

    Parameters
    ----------
    visit, detector : int
        Non-negative identifiers; the Wcs, Calib, Psf and pixels depend on both.
    size : int
        Width and height in pixels (4096 builds in a few seconds).
    seed : int
        Seed of the whole synthetic sky.
    band : str
        Stored as the exposure's band.
    survey : {"wide", "deep"}
        Where visits point (see :func:`make_wcs`): "deep" makes overlapping visits.

    Returns
    -------
    Exposure
        Holding the sky-plus-stars image, its variance, a mask with EDGE, BAD and SAT
        set, a TAN-SIP :func:`make_wcs` Wcs, a per-detector Calib, a GaussianPsf with
        sigma 1.5-2 pixels, the visit's shared VisitInfo (the same object for every
        detector), a Background modelling the sky left in the image, and metadata
        (``VISIT``, ``CCDNUM``, ``SKYSEED``, ``DETWIDTH`` let :func:`make_catalog` rebuild the truth).

    Raises
    ------
    ObjectError
        If ``visit`` or ``detector`` is negative or ``size`` too small.
    """
    _check(visit, detector, size)
    sigma = _psf_sigma(visit, detector, seed)
    stars = _stars(visit, detector, size, seed, sigma)
    row, col = _sky_level(visit, detector, size, seed)
    sky = row[:, None] + col[None, :]
    model = sky + _render(stars, sigma, size)

    rng = _rng(seed, _NOISE, visit, detector, size)
    # Gain 1: the variance of a pixel is its expected count plus the read noise squared.
    true_variance = model + READ_NOISE**2
    noise = rng.standard_normal((size, size), dtype=np.float32)
    image = (model + noise * np.sqrt(true_variance)).astype(np.float32)
    # The variance plane is estimated from the pixels, as pipelines do (they do not
    # know the model): noisy like the image, so it compresses as little as a real one.
    variance = (np.maximum(image, 0.0) + READ_NOISE**2).astype(np.float32)

    mask = Mask.zeros((size, size))
    saturated = image >= SATURATION
    image[saturated] = SATURATION
    mask.set_plane("SAT", saturated)
    edge = np.zeros((size, size), dtype=bool)
    edge[:EDGE_WIDTH, :] = edge[-EDGE_WIDTH:, :] = True
    edge[:, :EDGE_WIDTH] = edge[:, -EDGE_WIDTH:] = True
    mask.set_plane("EDGE", edge)
    bad = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(2, 5))):
        # Dead column segments, as CCDs have; they read zero after bias subtraction.
        column = int(rng.integers(EDGE_WIDTH, size - EDGE_WIDTH))
        start = int(rng.integers(0, size // 2))
        bad[start:, column] = True
    image[bad] = 0.0
    mask.set_plane("BAD", bad)

    # Background grid: the sky sampled at the centres of Background's cells.
    cells = max(1, min(8, size // 64))
    centres = (np.arange(cells) + 0.5) * (size / cells) - 0.5
    t = np.arange(size)
    grid = np.interp(centres, t, row)[:, None] + np.interp(centres, t, col)[None, :]
    bbox = Box2I((0, 0), (size, size))

    metadata = {
        "TELESCOP": "compstore-synthetic",
        "INSTRUME": "SynCam",
        "VISIT": visit,
        "CCDNUM": detector,
        "SKYSEED": seed,
        "DETWIDTH": size,
        "FILTER": band,
        "EXPTIME": EXPOSURE_TIME,
        "GAIN": 1.0,
        "RDNOISE": READ_NOISE,
        "SATURATE": SATURATION,
        "NSTARS": int(stars.x.size),
        "SURVEY": survey,
    }
    return Exposure(
        image,
        mask,
        variance,
        wcs=make_wcs(visit, detector, size, seed, survey),
        calib=_calib(visit, detector, seed),
        psf=GaussianPsf(sigma),
        visit_info=_visit_info(visit, seed, survey),
        background=Background(grid, bbox),
        metadata=metadata,
        band=band,
        detector=detector,
    )


# -- catalogs ------------------------------------------------------------------------------
def make_catalog(exposure: Exposure, *, aperture_sigmas: float = 3.0) -> SourceCatalog:
    """The source catalog of an exposure made by :func:`make_exposure`.

    Sources are the true stars whose centres fall inside the exposure (so a cut-out
    made with ``exposure.subset`` gets only its own stars); positions are the true
    positions, ``ra``/``dec`` come from the exposure's Wcs, and ``instflux`` is a
    background-subtracted circular-aperture sum of radius ``aperture_sigmas`` PSF
    sigmas, corrected to total flux for a Gaussian PSF.

    Parameters
    ----------
    exposure : Exposure
        Made by :func:`make_exposure` (its metadata names visit, detector and seed),
        possibly after a FITS or store round trip or a ``subset``.
    aperture_sigmas : float
        Aperture radius in units of the PSF sigma.

    Returns
    -------
    SourceCatalog
        Columns ``id`` (int64), ``x``, ``y`` (pix), ``ra``, ``dec`` (deg), ``instflux``,
        ``instflux_err`` (ct), ``flag_saturated``, ``flag_edge``, ``flag_bad`` (bool);
        its ``wcs`` and ``calib`` are the exposure's very objects.

    Raises
    ------
    ObjectError
        If the exposure lacks the synthetic-sky metadata, its Wcs or its Psf.
    """
    meta = exposure.metadata
    try:
        visit, detector, seed = int(meta["VISIT"]), int(meta["CCDNUM"]), int(meta["SKYSEED"])
    except KeyError as exc:
        raise ObjectError(
            f"make_catalog needs an exposure from make_exposure (metadata lacks {exc})"
        ) from None
    if exposure.wcs is None or exposure.psf is None:
        raise ObjectError("make_catalog needs an exposure with a Wcs and a Psf")
    sigma = exposure.psf.sigma
    # A cut-out's stars are those drawn for its whole detector.
    full_size = int(meta.get("DETWIDTH", max(exposure.bbox.end_x, exposure.bbox.end_y)))
    stars = _stars(visit, detector, full_size, seed, _psf_sigma(visit, detector, seed))
    bbox = exposure.bbox
    x0, y0 = exposure.xy0
    inside = (
        (stars.x >= bbox.x0 - 0.5)
        & (stars.x < bbox.end_x - 0.5)
        & (stars.y >= bbox.y0 - 0.5)
        & (stars.y < bbox.end_y - 0.5)
    )
    index = np.flatnonzero(inside)
    x, y = stars.x[index], stars.y[index]

    radius = aperture_sigmas * sigma
    half = int(math.ceil(radius))
    offsets = np.arange(-half, half + 1)
    h, w = exposure.shape
    cols = np.rint(x - x0).astype(np.int64)[:, None, None] + offsets[None, None, :]
    rows = np.rint(y - y0).astype(np.int64)[:, None, None] + offsets[None, :, None]
    in_aperture = (cols + x0 - x[:, None, None]) ** 2 + (rows + y0 - y[:, None, None]) ** 2 <= radius**2
    on_image = (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    use = in_aperture & on_image
    rc = np.clip(rows, 0, h - 1)
    cc = np.clip(cols, 0, w - 1)
    pixels = exposure.image[rc, cc].astype(np.float64)
    if exposure.background is not None and exposure.background.bbox.contains(bbox):
        pixels -= exposure.background.evaluate(bbox)[rc, cc]
    flux = np.where(use, pixels, 0.0).sum(axis=(1, 2))
    var = np.where(use, exposure.variance[rc, cc], 0.0).sum(axis=(1, 2))
    # A circular aperture of radius r holds 1 - exp(-r^2 / 2 sigma^2) of a Gaussian's flux.
    enclosed = 1.0 - math.exp(-0.5 * aperture_sigmas**2)
    mask = exposure.mask

    def touches(plane: str) -> np.ndarray:
        return np.asarray(np.where(use, mask.plane(plane)[rc, cc], False).any(axis=(1, 2)))

    ra, dec = exposure.wcs.pixel_to_sky(x, y)
    table = Table(
        {
            "id": (np.int64(visit) * 1000 + detector) * 100_000 + index.astype(np.int64),
            "x": x,
            "y": y,
            "ra": np.atleast_1d(np.asarray(ra, dtype=np.float64)),
            "dec": np.atleast_1d(np.asarray(dec, dtype=np.float64)),
            "instflux": flux / enclosed,
            "instflux_err": np.sqrt(var) / enclosed,
            "flag_saturated": touches("SAT"),
            # Apertures running off the image are as unreliable as those on EDGE pixels.
            "flag_edge": touches("EDGE") | (in_aperture & ~on_image).any(axis=(1, 2)),
            "flag_bad": touches("BAD"),
        }
    )
    for name, unit in (("x", u.pix), ("y", u.pix), ("ra", u.deg), ("dec", u.deg)):
        table[name].unit = unit
    table["instflux"].unit = u.ct
    table["instflux_err"].unit = u.ct
    return SourceCatalog(table, wcs=exposure.wcs, calib=exposure.calib)


def make_visit(
    visit: int,
    detectors: Iterable[int] = range(4),
    size: int = 256,
    seed: int = 0,
    band: str = "r",
    survey: str = "wide",
) -> tuple[list[Exposure], list[SourceCatalog]]:
    """Exposures and catalogs of several detectors of one visit.

    All exposures share the visit's one VisitInfo object; each catalog shares its
    exposure's Wcs and Calib.

    Raises
    ------
    ObjectError
        If a detector or the visit is negative or ``size`` too small.
    """
    exposures = [
        make_exposure(visit, d, size=size, seed=seed, band=band, survey=survey) for d in detectors
    ]
    return exposures, [make_catalog(e) for e in exposures]


#: The column partitions of an Object table, as Rubin writes them per patch
#: (use case 5): reference positions, coadd measurements, forced photometry.
OBJECT_TABLE_MEMBERS = ("deepCoadd_ref", "deepCoadd_meas", "deepCoadd_forced_src")


def make_object_tables(
    tract: int, patch: int, band: str = "r", rows: int = 500, seed: int = 0,
    extra_columns: int = 0,
) -> dict[str, SourceCatalog]:
    """The three column partitions of one patch's Object table, keyed by member name.

    Every partition holds the key column ``id`` (the same ids; forced photometry
    lists them in another order, as a separate pass would) and a ``band``
    string column; otherwise each holds its own columns. ``extra_columns`` adds
    that many float columns to each partition (for benchmarks).

    Raises
    ------
    ObjectError
        If ``rows`` is negative.
    """
    if rows < 0:
        raise ObjectError(f"rows must be >= 0, got {rows}")
    rng = _rng(seed, tract, patch, 7)
    ids = (np.int64(tract) * 10**12 + np.int64(patch) * 10**7 + np.arange(rows, dtype=np.int64))
    ra = 150.0 + tract * 0.5 + rng.uniform(0, 0.1, rows)
    dec = 2.0 + patch * 0.1 + rng.uniform(0, 0.1, rows)
    flux = rng.lognormal(7.0, 1.0, rows)
    bands = np.full(rows, band)

    def extra(prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}_{i}": rng.normal(size=rows) for i in range(extra_columns)}

    ref = Table({"id": ids, "band": bands, "coord_ra": ra * u.deg, "coord_dec": dec * u.deg,
                 "detect_isPrimary": rng.random(rows) > 0.1, **extra("ref")})
    meas = Table({"id": ids, "band": bands, "psfFlux": flux, "psfFlux_err": np.sqrt(flux),
                  "shape_xx": rng.uniform(1, 3, rows), "shape_yy": rng.uniform(1, 3, rows),
                  **extra("meas")})
    order = rng.permutation(rows)
    forced = Table({"id": ids[order], "band": bands, "forced_psfFlux": flux[order] * 1.01,
                    "forced_psfFlux_err": np.sqrt(flux[order]), **extra("forced")})
    return {
        "deepCoadd_ref": SourceCatalog(ref),
        "deepCoadd_meas": SourceCatalog(meas),
        "deepCoadd_forced_src": SourceCatalog(forced),
    }
