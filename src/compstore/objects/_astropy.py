"""astropy in, astropy out: astropy objects to compstore's and back.

``Butler.put`` calls :func:`from_astropy` once, before it checks the object's type
against the dataset type's storage class, so an astropy object may be put wherever
its compstore counterpart goes:

==============================  ==============  =====================================
astropy                         stored as       way back
==============================  ==============  =====================================
``astropy.wcs.WCS``             Wcs             ``Wcs.to_astropy()``
``astropy.table.Table/QTable``  SourceCatalog   ``SourceCatalog.to_table()``
``astropy.nddata.CCDData``      Exposure        ``Exposure.to_ccddata()``
``astropy.io.fits.HDUList``     Exposure        ``Exposure.to_ccddata()`` / ``write_fits``
==============================  ==============  =====================================

(A Table needs no conversion here: the SourceCatalog storage class takes it as it is.)

Rules of a CCDData (what :func:`exposure_from_ccddata` keeps, and how):

- ``data`` is the image: float32/float64 kept, integers of up to 16 bits as float32,
  wider ones as float64 (exact; beyond 2**53 refused), as the FITS reader does.
- ``mask``: None is no mask; True (CCDData holds bool masks only) sets plane ``BAD``.
  On the way out a pixel is masked where any plane but ``DETECTED`` is set (or the
  planes named by ``mask_planes``): the plane names do not survive a CCDData.
- ``uncertainty`` becomes the variance: ``StdDevUncertainty`` squared,
  ``VarianceUncertainty`` as it is, ``InverseVariance`` inverted (0 gives inf), each
  converted to the data's unit squared when it has its own unit. None is a zero
  variance ("unknown"). Any other uncertainty type is refused.
- ``wcs`` becomes the Wcs, every axis of it; ``LTV1``/``LTV2`` in ``meta`` (whole
  numbers) give ``xy0``, the Wcs then mapping parent pixels as always.
- ``unit`` is kept as metadata ``BUNIT``; ``meta`` scalars become metadata
  (``COMMENT``/``HISTORY`` cards are left out; any other non-scalar is refused).
- ``psf`` becomes an ImagePsf (normalised to sum 1).

Everything refused raises `AstropyConversionError` saying which part and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

from compstore.errors import AstropyConversionError, FitsFormatError, ObjectError

from ._catalog import SourceCatalog
from ._image import Exposure
from ._wcs import Wcs

if TYPE_CHECKING:
    from astropy.nddata import CCDData

#: compstore's own types, which put() passes on as they are.
_NATIVE = (Exposure, SourceCatalog, Wcs)

__all__ = [
    "exposure_from_ccddata",
    "exposure_from_hdulist",
    "exposure_to_ccddata",
    "from_astropy",
    "wcs_from_astropy",
]

#: ``to_ccddata(uncertainty=...)`` choices: Variance-, StdDev- or InverseVariance-Uncertainty.
_UNCERTAINTY_KINDS = ("variance", "std", "ivar")
#: Mask planes that mark no defect: left out of a CCDData's mask unless asked for.
_NOT_DEFECTS = frozenset({"DETECTED", "DETECTED_NEGATIVE"})
#: Cards of a FITS header that are not values (never metadata).
_COMMENTARY = frozenset({"", "COMMENT", "HISTORY"})


def wcs_from_astropy(wcs: Any, what: str = "WCS") -> Wcs:
    """A Wcs holding every axis of the astropy ``wcs``: nothing is dropped.

    A two-axis celestial WCS is kept as ``Wcs(wcs)``; any other (a cube's, a
    non-celestial one) as ``Wcs(wcs, all_axes=True)``, which refuses what it cannot
    rebuild exactly.

    Raises
    ------
    AstropyConversionError
        If ``wcs`` is not an ``astropy.wcs.WCS`` or compstore cannot keep it exactly.
    """
    if isinstance(wcs, Wcs):
        return wcs
    if not isinstance(wcs, WCS):
        raise AstropyConversionError(
            f"{what} must be an astropy.wcs.WCS (or a compstore Wcs), got "
            f"{type(wcs).__module__}.{type(wcs).__qualname__}; other APE 14 objects hold no "
            "header compstore can store"
        )
    try:
        if wcs.naxis == 2 and wcs.has_celestial:
            return Wcs(wcs)
        return Wcs(wcs, all_axes=True)
    except ObjectError as exc:
        raise AstropyConversionError(f"{what} cannot be stored: {exc}") from exc


def _shifted(wcs: Wcs, dx: int, dy: int) -> Wcs:
    """``wcs`` for pixels moved by ``(dx, dy)``: CRPIX and lookup tables move with them."""
    if dx == 0 and dy == 0:
        return wcs
    from compstore.fits._wcs import _shift_lookups

    doc = wcs.to_dict()
    cards = dict(doc["header"])
    for key, d in (("CRPIX1", dx), ("CRPIX2", dy)):
        if key in cards:
            cards[key] = float(cards[key]) + d
    return Wcs.from_dict(_shift_lookups({**doc, "header": cards}, dx, dy))


def _variance(ccd: CCDData) -> np.ndarray | None:
    """The variance plane of ``ccd``'s uncertainty, in the data's unit squared."""
    from astropy.nddata import InverseVariance, StdDevUncertainty, VarianceUncertainty

    unc = ccd.uncertainty
    if unc is None:
        return None
    # (class, power of the data unit the uncertainty is in)
    kinds = {StdDevUncertainty: 1, VarianceUncertainty: 2, InverseVariance: -2}
    power = kinds.get(type(unc))
    if power is None:
        raise AstropyConversionError(
            f"CCDData uncertainty of type {type(unc).__name__} has no variance compstore "
            "can derive; give StdDevUncertainty, VarianceUncertainty or InverseVariance"
        )
    arr = np.asarray(unc.array)
    if arr.shape != np.shape(ccd.data):
        raise AstropyConversionError(
            f"CCDData uncertainty has shape {arr.shape}, the data {np.shape(ccd.data)}; "
            "give one value per pixel"
        )
    if arr.dtype.kind not in "fiu":
        raise AstropyConversionError(f"CCDData uncertainty holds {arr.dtype}, not real numbers")
    # float32 uncertainties give a float32 variance (as the image), the rest float64;
    # the arithmetic is float64 either way.
    dtype = np.float32 if arr.dtype == np.float32 else np.float64
    scale = 1.0
    if unc.unit is not None and ccd.unit is not None:
        try:
            scale = float(unc.unit.to(ccd.unit**power))
        except u.UnitConversionError as exc:
            raise AstropyConversionError(
                f"CCDData uncertainty unit {unc.unit} is not the data unit {ccd.unit} "
                f"to the power {power}: {exc}"
            ) from None
    values: np.ndarray = arr.astype(np.float64) * scale
    with np.errstate(divide="ignore"):
        var = values**2 if power == 1 else values if power == 2 else 1.0 / values
    return np.asarray(var, dtype=dtype)


def _mask(mask: Any, shape: tuple[int, ...]) -> Any:
    from ._mask import DEFAULT_MASK_PLANES, Mask

    if mask is None:
        return None
    arr = np.asarray(mask)
    if arr.shape != shape:
        raise AstropyConversionError(
            f"CCDData mask has shape {arr.shape}, the data {shape}; give one value per pixel"
        )
    if arr.dtype != np.bool_:
        # CCDData makes every mask bool; anything else did not come from astropy's rules.
        raise AstropyConversionError(
            f"CCDData mask holds {arr.dtype}; compstore takes bool masks (True = bad, "
            "plane BAD): convert it, e.g. mask.astype(bool)"
        )
    # True marks a bad pixel in astropy: it becomes plane BAD.
    return Mask(arr.astype(np.int32) << DEFAULT_MASK_PLANES["BAD"])


def _metadata(ccd: CCDData) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in ccd.meta.items():
        if key in _COMMENTARY or key in ("LTV1", "LTV2"):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(key, str) or not isinstance(value, (bool, int, float, str)):
            raise AstropyConversionError(
                f"CCDData meta[{key!r}] is a {type(value).__name__}; Exposure metadata holds "
                "str keys with int, float, str or bool values: drop or convert it"
            )
        meta[key] = value
    if ccd.unit is not None:
        meta["BUNIT"] = ccd.unit.to_string()
    return meta


def exposure_from_ccddata(ccd: CCDData) -> Exposure:
    """An Exposure holding what ``ccd`` holds (the rules are in this module's docstring).

    Raises
    ------
    AstropyConversionError
        If a part of ``ccd`` cannot be kept (an uncertainty of another shape or type,
        a non-scalar meta value, data that is not a 2-D real image ...).
    """
    from compstore.fits._hdus import _pixel_values
    from compstore.fits._wcs import _xy0_from_header

    from ._psf import ImagePsf

    data = np.asarray(ccd.data)
    if data.ndim != 2 or data.dtype.kind not in "fiu":
        raise AstropyConversionError(
            f"CCDData data of shape {data.shape} and dtype {data.dtype} is not a 2-D real "
            "image; an Exposure holds one plane"
        )
    try:
        # As the FITS reader does: integers of up to 16 bits as float32, wider as float64,
        # so every pixel value is kept exactly.
        data = _pixel_values(data, "CCDData", "data")
    except FitsFormatError as exc:
        raise AstropyConversionError(str(exc)) from exc
    xy0 = _xy0_from_header(ccd.meta)
    wcs = None if ccd.wcs is None else wcs_from_astropy(ccd.wcs, "CCDData wcs")
    if wcs is not None:
        # CCDData's WCS maps array indices; an Exposure's maps parent pixels.
        wcs = _shifted(wcs, xy0[0], xy0[1])
    try:
        psf = None if getattr(ccd, "psf", None) is None else ImagePsf(ccd.psf)
        return Exposure(
            data,
            _mask(ccd.mask, data.shape),
            _variance(ccd),
            xy0=xy0,
            wcs=wcs,
            psf=psf,
            metadata=_metadata(ccd),
        )
    except AstropyConversionError:
        raise
    except ObjectError as exc:
        raise AstropyConversionError(f"CCDData cannot be an Exposure: {exc}") from exc


def exposure_to_ccddata(
    exposure: Exposure,
    *,
    uncertainty: str = "variance",
    mask_planes: Sequence[str] | None = None,
    unit: Any = None,
) -> CCDData:
    """``exposure`` as an ``astropy.nddata.CCDData`` (see `Exposure.to_ccddata`).

    Raises
    ------
    AstropyConversionError
        If ``uncertainty`` is not a known choice, or there is no unit
        (no ``unit`` given and no ``BUNIT`` in the metadata) or it is not a unit.
    """
    from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty

    from compstore.fits._wcs import _ltv_cards

    if uncertainty not in _UNCERTAINTY_KINDS:
        raise AstropyConversionError(
            f"uncertainty={uncertainty!r} is not one of {', '.join(_UNCERTAINTY_KINDS)}"
        )
    planes = exposure.mask.planes
    if isinstance(mask_planes, str):  # one name, not its letters
        mask_planes = [mask_planes]
    chosen = [p for p in planes if p not in _NOT_DEFECTS] if mask_planes is None else mask_planes
    unknown = [p for p in chosen if p not in planes]
    if unknown:
        raise AstropyConversionError(
            f"mask_planes {unknown} are not planes of this Exposure's Mask ({', '.join(planes)})"
        )
    bits = np.int32(0)
    for p in chosen:
        bits |= np.int32(exposure.mask.bitmask(p))
    meta = dict(exposure.metadata)
    if unit is None:
        unit = meta.get("BUNIT")
    if unit is None:
        raise AstropyConversionError(
            "this Exposure has no unit (no BUNIT in its metadata) and CCDData needs one; "
            "pass one, e.g. exp.to_ccddata(unit='adu')"
        )
    try:
        unit = u.Unit(unit)
    except (TypeError, ValueError) as exc:
        raise AstropyConversionError(f"{unit!r} is not an astropy unit: {exc}") from None
    meta["BUNIT"] = unit.to_string()
    xy0 = exposure.xy0
    if xy0 != (0, 0):
        meta.update((card.keyword, card.value) for card in _ltv_cards(xy0))
    var = exposure.variance
    unc: Any = None
    if np.any(var != 0):  # all zero is "unknown": no uncertainty at all
        with np.errstate(divide="ignore", invalid="ignore"):
            if uncertainty == "variance":
                unc = VarianceUncertainty(var.copy(), unit=unit**2)
            elif uncertainty == "std":
                unc = StdDevUncertainty(np.sqrt(var), unit=unit)
            else:
                unc = InverseVariance(1.0 / var, unit=unit**-2)
    wcs = exposure.wcs
    return CCDData(
        exposure.image.copy(),
        unit=unit,
        mask=(exposure.mask.array & bits) != 0,
        uncertainty=unc,
        wcs=None if wcs is None else _shifted(wcs, -xy0[0], -xy0[1]).to_astropy(),
        meta=meta,
        psf=None if exposure.psf is None else exposure.psf.compute_image().copy(),
    )


def exposure_from_hdulist(hdul: fits.HDUList, hdu: Any = None, name: str = "HDUList") -> Exposure:
    """An Exposure read from an open ``HDUList`` exactly as from a file (`Exposure.read_fits`).

    Raises
    ------
    FitsFormatError
        As `Exposure.read_fits`; ``name`` stands for the path in messages.
    """
    from compstore.fits._exposure import _read_layout, _read_plain
    from compstore.fits._hdus import _hdu_of, _read_errors

    with _read_errors(name, "an Exposure"):
        if hdu is None and _hdu_of(hdul, "IMAGE") is not None:
            return _read_layout(hdul, name)
        return _read_plain(hdul, name, hdu)


def from_astropy(obj: Any, python_type: type | tuple[type, ...]) -> Any:
    """``obj`` as the compstore type ``python_type`` names, when it is an astropy object.

    Anything else (a compstore object, an astropy object no conversion applies to)
    is returned as it is, for the storage class's own type check to judge.

    Raises
    ------
    AstropyConversionError
        If a conversion applies and a part of ``obj`` cannot be kept.
    FitsFormatError
        If an HDUList holds no image an Exposure can be read from.
    """
    if isinstance(obj, _NATIVE):  # the usual put: nothing to convert (one check)
        return obj
    types = python_type if isinstance(python_type, tuple) else (python_type,)
    if isinstance(obj, WCS) and Wcs in types:
        return wcs_from_astropy(obj)
    if Exposure in types:  # exactly Exposure: a subclass (VisitExposure) holds more
        from astropy.nddata import CCDData

        if isinstance(obj, CCDData):
            return exposure_from_ccddata(obj)
        if isinstance(obj, fits.HDUList):
            try:
                return exposure_from_hdulist(obj)
            except FitsFormatError as exc:
                raise FitsFormatError(
                    f"{exc}; put Exposure.from_hdulist(hdul, hdu=...) to choose the image"
                ) from exc
    return obj
