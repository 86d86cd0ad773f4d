"""Pixel containers: MaskedImage (image, mask, variance) and Exposure (plus its metadata)."""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from astropy.wcs import WCS
from numpy.typing import ArrayLike

from compstore.errors import ObjectError, ReplaceKeyError

from ._background import Background
from ._box import Box2I
from ._calib import Calib
from ._coadd_inputs import CoaddInputs
from ._frozen import Immutable, check_optional
from ._mask import Mask
from ._psf import Psf
from ._visit import VisitInfo
from ._wcs import Wcs

__all__ = ["Exposure", "MaskedImage"]


def _as_float_plane(array: ArrayLike, what: str) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim != 2:
        raise ObjectError(f"{what} must be a 2-D array, got shape {arr.shape}")
    if arr.dtype in (np.float32, np.float64):
        # No copy: an Exposure built from existing arrays shares them. float64 stays
        # float64: narrowing it would silently lose precision (a FITS -64 image).
        return arr
    if arr.dtype.kind not in "fiu":
        raise ObjectError(
            f"{what} must hold real numbers (stored as float32 or float64), got {arr.dtype}"
        )
    return arr.astype(np.float32)


class MaskedImage(Immutable):
    """An image, its Mask and its variance, all of one 2-D shape.

    Parameters
    ----------
    image : array_like
        2-D real values: float32 and float64 are kept as they are (no copy); other
        real types (integers, float16) are stored as float32.
    mask : Mask or array_like, optional
        Defaults to an all-zero :class:`Mask` with the default planes.
    variance : array_like, optional
        Per-pixel variance, stored as the image is (float32 or float64). Defaults to zeros (meaning "unknown";
        compstore never invents a noise model).

    Raises
    ------
    ObjectError
        If an array is not 2-D real data or the three shapes differ.

    Notes
    -----
    The holder is immutable (attributes cannot be reassigned); the arrays themselves
    are shared, not copied, so that a cutout or a replace() costs no pixel copies.
    """

    __slots__ = ("_image", "_mask", "_variance", "__weakref__")
    _how_to_change = "; build a new one"
    _image: np.ndarray
    _mask: Mask
    _variance: np.ndarray

    def __init__(
        self,
        image: ArrayLike,
        mask: Mask | ArrayLike | None = None,
        variance: ArrayLike | None = None,
    ) -> None:
        img = _as_float_plane(image, "image")
        if mask is None:
            mask = Mask.zeros(img.shape)
        elif not isinstance(mask, Mask):
            mask = Mask(mask)
        var = np.zeros(img.shape, np.float32) if variance is None else variance
        var = _as_float_plane(var, "variance")
        if mask.shape != img.shape or var.shape != img.shape:
            raise ObjectError(
                f"image, mask and variance shapes differ: {img.shape}, {mask.shape}, {var.shape}"
            )
        object.__setattr__(self, "_image", img)
        object.__setattr__(self, "_mask", mask)
        object.__setattr__(self, "_variance", var)

    @property
    def image(self) -> np.ndarray:
        """float32 (or float64) pixel values, indexed ``[y, x]``."""
        return self._image

    @property
    def mask(self) -> Mask:
        """The pixel Mask."""
        return self._mask

    @property
    def variance(self) -> np.ndarray:
        """float32 (or float64) per-pixel variance."""
        return self._variance

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self._image.shape

    def subset(self, bbox: Box2I) -> MaskedImage:
        """Views of the pixels inside ``bbox`` (array coordinates, origin 0).

        Raises
        ------
        ObjectError
            If ``bbox`` is empty or not inside the array.
        """
        full = Box2I((0, 0), (self.shape[1], self.shape[0]))
        if bbox.is_empty or not full.contains(bbox):
            raise ObjectError(f"{bbox} is empty or not inside the image {full}")
        sl = bbox.slices()
        return MaskedImage(self._image[sl], self._mask.subset(sl), self._variance[sl])

    def __repr__(self) -> str:
        return f"MaskedImage(shape={self.shape})"


def _as_xy0(value: Any) -> tuple[int, int]:
    try:
        x, y = value
        return operator.index(x), operator.index(y)
    except (TypeError, ValueError) as exc:
        raise ObjectError(f"xy0 must be a pair of integers, got {value!r}") from exc


def _as_metadata(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ObjectError(f"metadata must be a mapping, got {type(value).__name__}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ObjectError(f"metadata keys must be str, got {key!r}")
        if isinstance(item, np.generic):
            # numpy scalars come from FITS headers and table cells; store plain Python.
            item = item.item()
        if not isinstance(item, (bool, int, float, str)):
            raise ObjectError(
                f"metadata[{key!r}] must be int, float, str or bool, got {type(item).__name__}"
            )
        out[key] = item
    # A private copy behind a read-only view: the caller's dict can change freely.
    return MappingProxyType(out)


def _as_optional_str(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ObjectError(f"band must be a str or None, got {value!r}")
    return value


def _as_optional_int(value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise ObjectError(f"detector must be an int or None, got {value!r}") from None


def _as_wcs(value: Any) -> Wcs | None:
    # An astropy WCS is kept whole as a Wcs (as put() does); anything else must be a Wcs.
    if isinstance(value, WCS):
        from compstore.objects._astropy import wcs_from_astropy

        wcs: Wcs = wcs_from_astropy(value, "wcs")
        return wcs
    checked: Wcs | None = check_optional(value, Wcs, "wcs")
    return checked


# Per-component normalizer; replace() runs only those of the replaced components, so
# everything else is carried over by identity.
_NORMALIZERS = {
    "xy0": _as_xy0,
    "wcs": _as_wcs,
    "calib": lambda v: check_optional(v, Calib, "calib"),
    "psf": lambda v: check_optional(v, Psf, "psf"),
    "visit_info": lambda v: check_optional(v, VisitInfo, "visit_info"),
    "background": lambda v: check_optional(v, Background, "background"),
    "coadd_inputs": lambda v: check_optional(v, CoaddInputs, "coadd_inputs"),
    "metadata": _as_metadata,
    "band": _as_optional_str,
    "detector": _as_optional_int,
}
_PIXEL_KEYS = ("image", "mask", "variance", "masked_image")
_REPLACEABLE = (*_PIXEL_KEYS, *_NORMALIZERS)


class Exposure(Immutable):
    """A MaskedImage placed at ``xy0`` in its parent, with everything that describes it.

    Parameters
    ----------
    image : array_like or MaskedImage
        The pixel values; or a whole :class:`MaskedImage` (then ``mask`` and
        ``variance`` must be None).
    mask : Mask or array_like, optional
        Defaults to an all-zero Mask with the default planes.
    variance : array_like, optional
        Defaults to zeros ("unknown").
    xy0 : tuple of int
        Parent coordinates of pixel ``[0, 0]``.
    wcs, calib, psf, visit_info, background : optional
        :class:`Wcs`, :class:`Calib`, :class:`Psf`, :class:`VisitInfo`, :class:`Background`.
    metadata : mapping of str to int, float, str or bool, optional
        Header-like values; copied and stored read-only.
    band : str, optional
    detector : int, optional
    coadd_inputs : CoaddInputs, optional
        For a coadd: the datasets it was stacked from, each a :class:`CoaddInput`
        (dataset type, data ID, weight, and that input's own Wcs, Psf and Calib).
        A Butler stores each input's Wcs, Psf and Calib as a *reference* to the
        input dataset when it exists (use case 7: nothing is copied), and a
        read of ``deepCoadd.coadd_inputs`` hands back the input's very objects.

    Raises
    ------
    ObjectError
        If pixels are inconsistent (see :class:`MaskedImage`) or a component has the
        wrong type or value.

    Notes
    -----
    Immutable: attributes cannot be reassigned, and :meth:`replace` returns a new
    Exposure sharing every array and object it was not asked to change.
    """

    __slots__ = ("_masked_image", "_image_base", *(f"_{k}" for k in _NORMALIZERS), "__weakref__")
    _how_to_change = "; use replace() to get a changed copy"
    _masked_image: MaskedImage
    _image_base: np.ndarray | None
    _xy0: tuple[int, int]
    _wcs: Wcs | None
    _calib: Calib | None
    _psf: Psf | None
    _visit_info: VisitInfo | None
    _background: Background | None
    _metadata: Mapping[str, Any]
    _band: str | None
    _detector: int | None
    _coadd_inputs: CoaddInputs | None

    def __init__(
        self,
        image: ArrayLike | MaskedImage,
        mask: Mask | ArrayLike | None = None,
        variance: ArrayLike | None = None,
        *,
        xy0: tuple[int, int] = (0, 0),
        wcs: Wcs | None = None,
        calib: Calib | None = None,
        psf: Psf | None = None,
        visit_info: VisitInfo | None = None,
        background: Background | None = None,
        metadata: Mapping[str, Any] | None = None,
        band: str | None = None,
        detector: int | None = None,
        coadd_inputs: CoaddInputs | None = None,
    ) -> None:
        if isinstance(image, MaskedImage):
            if mask is not None or variance is not None:
                raise ObjectError("pass either a MaskedImage or image/mask/variance, not both")
            masked_image = image
        else:
            masked_image = MaskedImage(image, mask, variance)
        object.__setattr__(self, "_masked_image", masked_image)
        object.__setattr__(self, "_image_base", None)
        values = {
            "xy0": xy0,
            "wcs": wcs,
            "calib": calib,
            "psf": psf,
            "visit_info": visit_info,
            "background": background,
            "metadata": metadata,
            "band": band,
            "detector": detector,
            "coadd_inputs": coadd_inputs,
        }
        for key, normalize in _NORMALIZERS.items():
            object.__setattr__(self, f"_{key}", normalize(values[key]))

    # -- pixels -----------------------------------------------------------------
    @property
    def masked_image(self) -> MaskedImage:
        """The pixels: image, mask and variance."""
        return self._masked_image

    @property
    def image(self) -> np.ndarray:
        """float32 (or float64) pixel values, indexed ``[y, x]`` (array coordinates)."""
        return self._masked_image.image

    @property
    def mask(self) -> Mask:
        """The pixel Mask."""
        return self._masked_image.mask

    @property
    def variance(self) -> np.ndarray:
        """float32 (or float64) per-pixel variance."""
        return self._masked_image.variance

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self._masked_image.shape

    @property
    def xy0(self) -> tuple[int, int]:
        """Parent coordinates of array pixel ``[0, 0]``."""
        return self._xy0

    @property
    def bbox(self) -> Box2I:
        """The pixels covered, in parent coordinates."""
        height, width = self.shape
        return Box2I(self._xy0, (width, height))

    # -- descriptive components ---------------------------------------------------
    @property
    def wcs(self) -> Wcs | None:
        """Sky coordinates of parent pixel coordinates."""
        return self._wcs

    @property
    def calib(self) -> Calib | None:
        """Photometric calibration."""
        return self._calib

    @property
    def psf(self) -> Psf | None:
        """Point-spread function."""
        return self._psf

    @property
    def visit_info(self) -> VisitInfo | None:
        """Observation metadata shared by the visit's detectors."""
        return self._visit_info

    @property
    def background(self) -> Background | None:
        """The sky background model (subtracted or not, as the pipeline says)."""
        return self._background

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Read-only header-like mapping."""
        return self._metadata

    @property
    def band(self) -> str | None:
        """Filter band name, e.g. ``"r"``."""
        return self._band

    @property
    def detector(self) -> int | None:
        """Detector number."""
        return self._detector

    @property
    def coadd_inputs(self) -> CoaddInputs | None:
        """For a coadd, the datasets it was stacked from (with their Wcs, Psf, Calib)."""
        return self._coadd_inputs

    @property
    def image_base(self) -> np.ndarray | None:
        """The pixels before :attr:`background` was subtracted, when known.

        Set by :meth:`Background.subtract_from` (``image == image_base -
        background.evaluate(bbox)``) and kept while the image and background
        stay; a store uses it to keep one set of pixels for both exposures.
        None otherwise.
        """
        return self._image_base

    # -- derived exposures --------------------------------------------------------
    def replace(self, **changes: Any) -> Exposure:
        """A new Exposure with some components replaced and all others shared.

        Parameters
        ----------
        **changes
            Any of ``image, mask, variance, masked_image, xy0, wcs, calib, psf,
            visit_info, background, metadata, band, detector``. Pass None to drop an
            optional component.

        Returns
        -------
        Exposure
            Shares (by identity) every array and object not named in ``changes``.

        Raises
        ------
        ReplaceKeyError
            (an ObjectError and a TypeError) for an unknown keyword.
        ObjectError
            If ``masked_image`` is given together with ``image``/``mask``/``variance``,
            or a new value is invalid (e.g. an image of another shape).
        """
        unknown = sorted(set(changes) - set(_REPLACEABLE))
        if unknown:
            raise ReplaceKeyError(
                f"Exposure.replace() got unknown component(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(_REPLACEABLE)}"
            )
        new = object.__new__(Exposure)
        for slot in Exposure.__slots__:
            if slot != "__weakref__":
                object.__setattr__(new, slot, getattr(self, slot))
        if "masked_image" in changes:
            if any(k in changes for k in ("image", "mask", "variance")):
                raise ObjectError("replace() takes masked_image or image/mask/variance, not both")
            masked_image = check_optional(changes["masked_image"], MaskedImage, "masked_image")
            if masked_image is None:
                raise ObjectError("masked_image cannot be None")
            object.__setattr__(new, "_masked_image", masked_image)
        elif any(k in changes for k in ("image", "mask", "variance")):
            old = self._masked_image
            object.__setattr__(
                new,
                "_masked_image",
                MaskedImage(
                    changes.get("image", old.image),
                    changes.get("mask", old.mask),
                    changes.get("variance", old.variance),
                ),
            )
        for key, normalize in _NORMALIZERS.items():
            if key in changes:
                object.__setattr__(new, f"_{key}", normalize(changes[key]))
        if any(k in changes for k in ("image", "masked_image", "background", "xy0")):
            # the lineage image == image_base - background no longer holds
            object.__setattr__(new, "_image_base", None)
        return new

    def subset(self, bbox: Box2I) -> Exposure:
        """The part of this Exposure inside ``bbox`` (parent coordinates), as views.

        Every non-pixel component is shared; the Wcs needs no change because it maps
        parent coordinates, and the sub-exposure's ``xy0`` is ``bbox.min``.

        Raises
        ------
        ObjectError
            If ``bbox`` is not a Box2I, is empty, or is not inside :attr:`bbox`.
        """
        if not isinstance(bbox, Box2I):
            raise ObjectError(f"subset() takes a Box2I, got {type(bbox).__name__}")
        if bbox.is_empty or not self.bbox.contains(bbox):
            raise ObjectError(f"{bbox} is empty or not inside the exposure's {self.bbox}")
        local = bbox.shifted(-self._xy0[0], -self._xy0[1])
        sub = self.replace(masked_image=self._masked_image.subset(local), xy0=bbox.min)
        if self._image_base is not None:
            object.__setattr__(sub, "_image_base", self._image_base[local.slices()])
        return sub

    def __getitem__(self, bbox: Box2I) -> Exposure:
        return self.subset(bbox)

    # -- FITS (implemented in compstore.fits) ---------------------------------------------
    @classmethod
    def read_fits(cls, path: str | Path, hdu: int | str | tuple[str, int] | None = None) -> Exposure:
        """Read an Exposure from a FITS file (see ``compstore.fits._exposure``).

        ``hdu`` picks the image HDU of a multi-extension file (index, EXTNAME or
        ``(EXTNAME, EXTVER)``).

        Raises
        ------
        FitsFormatError
            If the file cannot be read as an Exposure.
        """
        # Imported here: compstore.fits sits above the object model.
        from compstore.fits import _exposure as _fits

        return _fits.read_exposure(path, hdu)

    def write_fits(self, path: str | Path) -> None:
        """Write this Exposure to a FITS file (see ``compstore.fits._exposure``)."""
        # Imported here: compstore.fits sits above the object model.
        from compstore.fits import _exposure as _fits

        _fits.write_exposure(self, path)

    # -- astropy (implemented in _astropy.py) -------------------------------------------
    @classmethod
    def from_ccddata(cls, ccd: Any) -> Exposure:
        """An Exposure from an ``astropy.nddata.CCDData`` (what ``put`` does with one).

        Image, mask (True: plane BAD), uncertainty as variance
        (StdDev squared, Variance as is, InverseVariance inverted), wcs (every axis),
        unit (metadata ``BUNIT``), meta scalars, psf; ``LTV1/LTV2`` give ``xy0``.

        Raises
        ------
        AstropyConversionError
            If a part cannot be kept (a float mask, another uncertainty type ...).
        """
        from compstore.objects import _astropy

        return _astropy.exposure_from_ccddata(ccd)

    @classmethod
    def from_hdulist(cls, hdul: Any, hdu: int | str | tuple[str, int] | None = None) -> Exposure:
        """An Exposure from an open ``astropy.io.fits.HDUList``, read as `read_fits` reads a file.

        Raises
        ------
        FitsFormatError
            As `read_fits` (several images and no ``hdu``, no image, bad cards ...).
        """
        from compstore.objects import _astropy

        return _astropy.exposure_from_hdulist(hdul, hdu)

    def to_ccddata(
        self,
        *,
        uncertainty: str = "variance",
        mask_planes: Sequence[str] | None = None,
        unit: Any = None,
    ) -> Any:
        """This Exposure as a new ``astropy.nddata.CCDData`` (arrays copied).

        Parameters
        ----------
        uncertainty : {"variance", "std", "ivar"}
            The uncertainty class: ``VarianceUncertainty`` (exact), ``StdDevUncertainty``
            (its square root) or ``InverseVariance``. None when the variance is all
            zero ("unknown").
        mask_planes : sequence of str, optional
            The planes that mask a pixel (CCDData masks are bool: True is bad). By
            default every plane but ``DETECTED`` (a detection is no defect).
        unit : str or astropy.units.Unit, optional
            Defaults to the metadata's ``BUNIT``.

        Returns
        -------
        astropy.nddata.CCDData
            Its ``wcs`` maps array indices (the parent-pixel Wcs moved by ``xy0``,
            which goes to ``meta`` as ``LTV1/LTV2``); ``meta`` is the metadata; the
            psf is ``psf.compute_image()``. Calib, visit info, background, band and
            detector have no CCDData counterpart and are left out.

        Raises
        ------
        AstropyConversionError
            If there is no unit (none given, no ``BUNIT``), ``uncertainty`` is not a
            choice, or ``mask_planes`` names an unknown plane.
        """
        from compstore.objects import _astropy

        return _astropy.exposure_to_ccddata(
            self, uncertainty=uncertainty, mask_planes=mask_planes, unit=unit
        )

    def __repr__(self) -> str:
        parts = [f"bbox={self.bbox!r}"]
        parts += [f"{k}={getattr(self, k)!r}" for k in ("band", "detector")
                  if getattr(self, k) is not None]
        present = [k for k in ("wcs", "calib", "psf", "visit_info", "background")
                   if getattr(self, k) is not None]
        if present:
            parts.append("with " + ", ".join(present))
        return f"Exposure({', '.join(parts)})"
