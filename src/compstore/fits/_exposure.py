"""Exposures to and from FITS files: the IMAGE/MASK/VARIANCE layout and ordinary images.

Layout of an Exposure file (see ``docs/fits.md`` for the full description)::

    HDU 0  PRIMARY     no data; metadata as plain cards, compstore values as
                       ``HIERARCH COMPSTORE ...`` cards (TYPE, FORMAT, BAND, DETECTOR,
                       CALIB <field>, VISIT <field>)
    HDU 1  IMAGE       float32 or float64 image; the Wcs (CRPIX shifted by xy0), LTV1/LTV2
    HDU 2  MASK        int32 mask; MP_<PLANE> = bit cards; Wcs and LTV as in IMAGE
    HDU 3  VARIANCE    float32 or float64 variance; Wcs and LTV as in IMAGE
    HDU    PSF         (optional) float64 PSF image; ``COMPSTORE PSF <field>`` cards
    HDU    BACKGROUND  (optional) the background grid; ``COMPSTORE BACKGROUND <field>``
    HDU    WCSDVARR, D2IMARR  (when the Wcs has lookup-table distortions) its tables

Nothing here unpickles or evaluates anything read from a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import Any

import numpy as np
from astropy.io import fits

from compstore.errors import FitsFormatError, ObjectError
from compstore.objects import Background, Calib, Exposure, Mask, Psf, VisitInfo

from ._cards import (
    _ALT_WCS_KEY,
    _MASK_PLANE_PREFIX,
    _NS,
    FORMAT_VERSION,
    _alt_crpix_moved,
    _alt_wcs_cards,
    _card,
    _leaf_cards,
    _leaf_dict,
    _metadata_cards,
    _metadata_from,
)
from ._hdus import (
    HduSpec,
    _hdu_label,
    _hdu_of,
    _open,
    _pixel_values,
    _read_errors,
    _write_atomic,
    select_image_hdu,
)
from ._wcs import _lookup_parts, _ltv_cards, _wcs_cards, _wcs_from_header, _xy0_from_header

__all__ = ["read_exposure", "write_exposure"]


# -- Exposure -----------------------------------------------------------------------------------
def write_exposure(exposure: Exposure, path: str | os.PathLike[str]) -> None:
    """Write ``exposure`` to a FITS file at ``path`` (replacing any file there).

    Parameters
    ----------
    exposure : Exposure
        What to write; every component is written so that :func:`read_exposure` gives
        an equal Exposure.
    path : str or path-like
        Destination; written to ``path.partial`` first and renamed into place.

    Raises
    ------
    FitsFormatError
        If a metadata key is reserved or a value cannot be stored in a FITS header.
    OSError
        If the file cannot be written.
    """
    primary = fits.PrimaryHDU()
    header = primary.header
    for card in _metadata_cards(exposure.metadata):
        header.append(card)
    header.append(_card(f"{_NS} TYPE", "Exposure", "compstore object type"))
    header.append(_card(f"{_NS} FORMAT", FORMAT_VERSION, "compstore FITS layout version"))
    if exposure.band is not None:
        header.append(_card(f"{_NS} BAND", exposure.band))
    if exposure.detector is not None:
        header.append(_card(f"{_NS} DETECTOR", exposure.detector))
    if exposure.calib is not None:
        header.extend(_leaf_cards("CALIB", exposure.calib.to_dict()))
        # Informational only (never read): the AB magnitude of one count.
        header.append(_card(f"{_NS} ZEROPOINT", float(exposure.calib.zero_point)))
    if exposure.visit_info is not None:
        header.extend(_leaf_cards("VISIT", exposure.visit_info.to_dict()))

    xy0 = exposure.xy0
    wcs_cards = _ltv_cards(xy0) if exposure.wcs is None else _wcs_cards(exposure.wcs, xy0)
    wcs_cards += _alt_wcs_cards(exposure.metadata, xy0)

    def plane(data: np.ndarray, name: str, extra: Iterable[fits.Card] = ()) -> fits.ImageHDU:
        hdu = fits.ImageHDU(data=np.ascontiguousarray(data), name=name)
        hdu.header["INHERIT"] = (True, "primary-header cards apply here too")
        for card in [*wcs_cards, *extra]:
            hdu.header.append(card)
        return hdu

    mask = exposure.mask
    plane_cards = [
        _card(f"{_MASK_PLANE_PREFIX}{name}", bit, "mask plane bit")
        for name, bit in sorted(mask.planes.items(), key=lambda item: item[1])
    ]
    hdus: list[Any] = [
        primary,
        plane(exposure.image, "IMAGE"),
        plane(mask.array, "MASK", plane_cards),
        plane(exposure.variance, "VARIANCE"),
    ]
    if exposure.psf is not None:
        hdus.append(_leaf_hdu("PSF", exposure.psf.to_dict(), exposure.psf.compute_image()))
    if exposure.background is not None:
        hdus.append(_leaf_hdu("BACKGROUND", exposure.background.to_dict(), None))
    if exposure.wcs is not None:
        # One set of tables serves IMAGE, MASK and VARIANCE (their DPj cards name it).
        hdus += _lookup_parts(exposure.wcs, xy0)[1]
    _write_atomic(fits.HDUList(hdus), path)


def _leaf_hdu(name: str, data: dict[str, Any], display: np.ndarray | None) -> fits.ImageHDU:
    """An image HDU for a leaf object: its largest 2-D numeric field as pixel data (where
    FITS viewers show it), everything else as ``COMPSTORE <name> <field>`` cards.

    ``display`` is shown as data when no field is an array (a GaussianPsf's image).
    """
    fields = dict(data)
    array_field = None
    best = 0
    for field, value in fields.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            try:
                arr = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                continue  # ragged or non-numeric: stays JSON
            if arr.ndim == 2 and arr.size > best and np.array_equal(arr.tolist(), value):
                array_field, best = field, arr.size
    pixels = display
    if array_field is not None:
        pixels = np.asarray(fields.pop(array_field), dtype=np.float64)
    hdu = fits.ImageHDU(data=None if pixels is None else np.asarray(pixels, np.float64), name=name)
    if array_field is not None:
        hdu.header.append(_card(f"{_NS} {name} DATA", array_field, "field stored as HDU data"))
    hdu.header.extend(_leaf_cards(name, fields))
    return hdu


def _leaf_from_hdu(hdu: Any, name: str, path: str) -> dict[str, Any] | None:
    """The leaf value's dict stored in ``hdu`` (None if it holds no ``name`` cards)."""
    fields = _leaf_dict(hdu.header, name)
    if fields is None:
        return None
    array_field = fields.pop("DATA", None)
    if array_field is not None:
        if hdu.data is None:
            raise FitsFormatError(f"{path}: HDU {name} lost its data")
        fields[array_field] = np.asarray(hdu.data, dtype=np.float64).tolist()
    return fields


#: How a caller names one HDU: its index, its EXTNAME, or (EXTNAME, EXTVER).

def read_exposure(path: str | os.PathLike[str], hdu: HduSpec | None = None) -> Exposure:
    """Read an Exposure from a FITS file: one written by :func:`write_exposure`, an
    LSST-style IMAGE/MASK/VARIANCE file, or an ordinary FITS image.

    An ordinary image is the first image HDU holding 2-D or higher data. For a cube
    (NAXIS >= 3) the first 2-D plane ``data[0, ..., 0, :, :]`` is read. Its Exposure has:

    - ``image``: the pixel values with BZERO/BSCALE applied, float32 or float64 as the
      file holds them (integers of up to 16 bits as float32, wider ones as float64:
      exact either way); BLANK and NaN pixels become NaN and are flagged in the
      ``NO_DATA`` mask plane;
    - ``mask``: otherwise zero (default planes); ``variance``: zeros, which compstore
      reads as "unknown" (no noise model is guessed);
    - ``xy0`` from LTV1/LTV2 when they are whole numbers (IRAF/LSST cut-outs), else (0, 0);
    - ``wcs``: the whole of ``astropy.wcs.WCS(header, hdulist)`` (old keywords fixed the
      way astropy fixes them): every axis, celestial or not, and lookup-table
      distortions with their tables; None when the header has no WCS cards;
    - ``metadata``: the remaining scalar cards of the primary and image headers (not
      structural or WCS cards); no band, detector, calib, psf or visit info.

    A file with more than one image HDU (a multi-extension file) needs ``hdu``: no
    image is dropped silently. A cube whose further axes are longer than 1 is refused
    (an Exposure is one plane).

    Parameters
    ----------
    path : str or path-like
        The FITS file.
    hdu : int, str or (str, int), optional
        The image HDU to read: its index, its EXTNAME, or ``(EXTNAME, EXTVER)``. Read
        as an ordinary image even in an IMAGE/MASK/VARIANCE file.

    Returns
    -------
    Exposure

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FitsFormatError
        If the file is not FITS, has no 2-D image, holds several and ``hdu`` is not
        given, has no HDU ``hdu``, or its compstore cards or WCS are malformed; the
        message names the path and the problem.
    """
    name, hdul = _open(path)
    with _read_errors(name, "an Exposure"), hdul:
        if hdu is None and _hdu_of(hdul, "IMAGE") is not None:
            return _read_layout(hdul, name)
        return _read_plain(hdul, name, hdu)



def _read_layout(hdul: fits.HDUList, path: str) -> Exposure:
    """An IMAGE/MASK/VARIANCE file (ours, or LSST's)."""
    primary = hdul[0].header
    image_hdu = hdul["IMAGE"]
    if image_hdu.data is None or image_hdu.data.ndim != 2:
        raise FitsFormatError(f"{path}: HDU IMAGE does not hold a 2-D image")
    image = _pixel_values(image_hdu.data, path, "IMAGE")
    xy0 = _xy0_from_header(image_hdu.header)

    mask = None
    mask_hdu = _hdu_of(hdul, "MASK")
    if mask_hdu is not None and mask_hdu.data is not None:
        planes = {
            key[len(_MASK_PLANE_PREFIX):]: int(value)
            for key, value in mask_hdu.header.items()
            if key.startswith(_MASK_PLANE_PREFIX)
        }
        mask = Mask(np.asarray(mask_hdu.data).astype(np.int32), planes or None)
    variance = None
    var_hdu = _hdu_of(hdul, "VARIANCE")
    if var_hdu is not None and var_hdu.data is not None:
        variance = _pixel_values(var_hdu.data, path, "VARIANCE")

    ours = primary.get(f"{_NS} TYPE") is not None
    if ours:
        version = primary.get(f"{_NS} FORMAT")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise FitsFormatError(
                f"{path}: compstore FITS format {version!r} is newer than this compstore "
                f"reads ({FORMAT_VERSION}); upgrade compstore"
            )
    components: dict[str, Any] = {}
    try:
        if (calib := _leaf_dict(primary, "CALIB")) is not None:
            components["calib"] = Calib.from_dict(calib)
        if (visit := _leaf_dict(primary, "VISIT")) is not None:
            components["visit_info"] = VisitInfo.from_dict(visit)
        psf_hdu = _hdu_of(hdul, "PSF")
        if psf_hdu is not None and (psf := _leaf_from_hdu(psf_hdu, "PSF", path)) is not None:
            components["psf"] = Psf.from_dict(psf)
        bkg_hdu = _hdu_of(hdul, "BACKGROUND")
        if bkg_hdu is not None and (bkg := _leaf_from_hdu(bkg_hdu, "BACKGROUND", path)) is not None:
            components["background"] = Background.from_dict(bkg)
    except (ObjectError, json.JSONDecodeError) as exc:
        raise FitsFormatError(f"{path}: malformed compstore cards: {exc}") from exc

    band = primary.get(f"{_NS} BAND")
    detector = primary.get(f"{_NS} DETECTOR")
    if ours:
        metadata = _metadata_from([primary], skip_wcs=False)
        alternates = {k: v for k, v in _metadata_from([image_hdu.header], skip_wcs=True).items()
                      if _ALT_WCS_KEY.match(k)}  # fmt: skip
        metadata.update(_alt_crpix_moved(alternates, *xy0))
    else:
        metadata = _alt_crpix_moved(_metadata_from([primary, image_hdu.header], skip_wcs=True), *xy0)
    return Exposure(
        image,
        mask,
        variance,
        xy0=xy0,
        wcs=_wcs_from_header(image_hdu.header, xy0, path, "IMAGE", hdul),
        metadata=metadata,
        band=band,
        detector=detector,
        **components,
    )



def _read_plain(hdul: fits.HDUList, path: str, which: HduSpec | None = None) -> Exposure:
    """An ordinary FITS image: the image HDU ``which``, or the file's only image HDU."""
    hdu = select_image_hdu(hdul, path, which)
    header = hdu.header
    data = hdu.data
    extname = header.get("EXTNAME", str(hdul.index_of(hdu)))
    if any(n > 1 for n in data.shape[:-2]):
        # Reading one plane would drop the others silently.
        raise FitsFormatError(
            f"{path}: HDU {_hdu_label(hdul, hdu)} is a cube of shape {data.shape}; an "
            "Exposure is one 2-D plane, and only cubes whose further axes have length 1 "
            "are read"
        )
    # Degenerate STOKES/FREQ axes: numpy puts the extra FITS axes first.
    plane = np.asarray(data[(0,) * (data.ndim - 2)])
    if plane.size == 0:
        raise FitsFormatError(f"{path}: the image in HDU {hdul.index_of(hdu)} is empty")
    invalid = np.zeros(plane.shape, dtype=bool)
    blank = header.get("BLANK")
    if plane.dtype.kind in "iu" and isinstance(blank, int):
        # astropy turns BLANK into NaN only when it scales; unscaled integers keep the
        # raw code, shifted by BZERO for the unsigned convention.
        invalid |= plane == blank * header.get("BSCALE", 1) + header.get("BZERO", 0)
    image = _pixel_values(plane, path, str(extname), copy=True)
    invalid |= ~np.isfinite(image)
    image[invalid] = np.nan
    mask = Mask.zeros(image.shape)
    if invalid.any():
        mask.set_plane("NO_DATA", invalid)
    xy0 = _xy0_from_header(header)
    headers = [header] if hdu is hdul[0] else [hdul[0].header, header]
    return Exposure(
        image,
        mask,
        np.zeros(image.shape, dtype=image.dtype),
        xy0=xy0,
        wcs=_wcs_from_header(header, xy0, path, extname, hdul),
        metadata=_alt_crpix_moved(_metadata_from(headers, skip_wcs=True), *xy0),
    )


