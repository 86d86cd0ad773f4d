"""FITS interoperability: Exposures and SourceCatalogs to and from FITS files.

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

A SourceCatalog file holds a PRIMARY HDU (Calib cards), a ``CATALOG`` binary table
(with TUNITn units) and, when the catalog has a Wcs, an empty ``WCS`` image HDU whose
header is that Wcs.

Floats are written with all 17 significant digits (FITS allows free-format values
longer than astropy's default 20 characters), so every object reads back *equal*,
not merely close. Nothing here unpickles or evaluates anything read from a file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table
from astropy.wcs import WCS, FITSFixedWarning

from compstore.errors import FitsFormatError, ObjectError

if TYPE_CHECKING:
    from ._catalog import SourceCatalog
    from ._image import Exposure
    from ._wcs import Wcs

__all__ = [
    "HduSpec",
    "read_catalog",
    "read_exposure",
    "select_image_hdu",
    "write_catalog",
    "write_exposure",
]

#: Version of the layout above, in ``HIERARCH COMPSTORE FORMAT``.
FORMAT_VERSION = 1

#: Prefix of every compstore-owned HIERARCH card; metadata keys may not start with it.
_NS = "COMPSTORE"

# Cards that describe the HDU itself; they are never metadata.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|XTENSION|PCOUNT|GCOUNT|EXTNAME|EXTVER|EXTLEVEL|"
    r"EXTTYPE|INHERIT|BZERO|BSCALE|BLANK|CHECKSUM|DATASUM|COMMENT|HISTORY|END|"
    r"TFIELDS|THEAP|T(TYPE|FORM|UNIT|NULL|SCAL|ZERO|DISP|DIM|DMIN|DMAX|LMIN|LMAX)\d+|)$"
)
# Primary WCS cards and IRAF/LSST physical-coordinate cards: these are read into the Wcs
# and xy0, so they are not copied into a foreign file's metadata. Alternate WCSs (key
# letters A-Z) are not read into the Wcs: they stay in the metadata, so nothing is lost.
_WCS_KEY = re.compile(
    r"^((WCSAXES|CTYPE\d+|CRVAL\d+|CRPIX\d+|CDELT\d+|CROTA\d+|CUNIT\d+|CRDER\d+|CSYER\d+|"
    r"CNAME\d+|(PC|CD|PV|PS)\d+_\d+|WCSNAME|LONPOLE|LATPOLE|RADESYS|EQUINOX|MJDREF[IF]?|"
    r"DATEREF|RESTFRQ|RESTWAV|SPECSYS|SSYSOBS|VELOSYS|ZSOURCE)|RADECSYS|EPOCH|"
    r"(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)|LT[VM]\d(_\d)?|MP_.*|WAT\d_\d+|"
    # distortion functions (paper IV, HST's D2IM): record-valued cards such as
    # ``DP1 = 'NAXES: 2'`` read as keyword ``DP1.NAXES``.
    r"(CPDIS|CQDIS|D2IMDIS)\d+|(DP|DQ|D2IM)\d+(\..+)?)$"
)
# An alternate WCS (key letter A-Z, FITS WCS paper I): the primary WCS's keywords with
# the letter appended. Kept in an Exposure's metadata with CRPIXja in parent pixels (as
# the Wcs's CRPIX), written on the image planes beside the primary WCS with CRPIXja
# moved to the array's pixels, so a cut-out keeps them right.
_ALT_WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE\d+|CRVAL\d+|CRPIX\d+|CDELT\d+|CROTA\d+|CUNIT\d+|CRDER\d+|CSYER\d+|"
    r"CNAME\d+|(PC|CD|PV|PS)\d+_\d+|WCSNAME|LONPOLE|LATPOLE|RADESYS|EQUINOX|MJDREF[IF]?|"
    r"DATEREF|RESTFRQ|RESTWAV|SPECSYS|SSYSOBS|VELOSYS|ZSOURCE)[A-Z]$"
)
_ALT_CRPIX = re.compile(r"^CRPIX([12])[A-Z]$")
# A record-valued keyword card (FITS WCS paper IV): ``DP1 = 'AXIS.1: 1'`` is the card
# astropy calls ``DP1.AXIS.1``; written as HIERARCH it would mean nothing to wcslib.
_RECORD_KEY = re.compile(r"^((?:DP|DQ|D2IM)\d+)\.([A-Z0-9_.]+)$")
# Header cards that say an HDU has a WCS; without any, it has none.
_WCS_PRESENT = re.compile(r"^(WCSAXES|(CTYPE|CRVAL|CRPIX|CDELT|CUNIT)\d+|(CD|PC)\d+_\d+)$")
# Extensions that hold a WCS's distortion tables, never an image to read.
_TABLE_EXTNAMES = ("WCSDVARR", "D2IMARR")
_PLAIN_KEY = re.compile(r"^[A-Z0-9_-]{1,8}$")
_MASK_PLANE_PREFIX = "MP_"


# -- cards ------------------------------------------------------------------------------
def _float_text(value: float) -> str | None:
    """FITS text of ``value`` that reads back as the same double, or None (NaN, inf)."""
    if not math.isfinite(value):
        return None
    text = repr(float(value)).upper()
    mantissa, _, exponent = text.partition("E")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + ("E" + exponent if exponent else "")


def _card(key: str, value: Any, comment: str = "") -> fits.Card:
    """A header card for ``key`` (HIERARCH when needed) holding ``value`` exactly.

    astropy formats floats into 20 characters and so rounds them; free-format values
    may be longer, so floats are written from their full ``repr`` instead.

    Raises
    ------
    FitsFormatError
        If ``value`` cannot be a FITS card value (NaN, non-ASCII text, nested data).
    """
    name = key if _PLAIN_KEY.match(key) else f"HIERARCH {key}"
    if (record := _RECORD_KEY.match(key)) and isinstance(value, (int, float)):
        text = str(int(value)) if isinstance(value, int) else _float_text(float(value))
        card_text = f"{record.group(1):8}= '{record.group(2)}: {text}'"
        if text is None or len(card_text) > 80:
            raise FitsFormatError(f"header card {key!r}: FITS cannot hold the value {value!r}")
        return fits.Card.fromstring(card_text.ljust(80))
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        text = _float_text(float(value))
        if text is None:
            raise FitsFormatError(f"header card {key!r}: FITS cannot hold the value {value!r}")
        plain = _PLAIN_KEY.match(key) is not None
        head = f"{name:8}= {text:>20}" if plain else f"{name} = {text}"
        if comment and len(head) + 3 + len(comment) <= 80:
            head += f" / {comment}"
        if len(head) <= 80:
            return fits.Card.fromstring(head.ljust(80))
        raise FitsFormatError(f"header card {key!r} is too long for an 80-character card")
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (bool, int, str)):
        raise FitsFormatError(
            f"header card {key!r}: FITS cannot hold a {type(value).__name__} value"
        )
    try:
        with warnings.catch_warnings():
            # HIERARCH is what we ask for; astropy's VerifyWarning about it is noise here.
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            card = fits.Card(name, value, comment)
            card.verify("exception")
    except (ValueError, fits.VerifyError) as exc:
        raise FitsFormatError(f"header card {key!r} = {value!r} is not valid FITS: {exc}") from exc
    return card


def _leaf_cards(prefix: str, data: Mapping[str, Any]) -> Iterator[fits.Card]:
    """``HIERARCH COMPSTORE <prefix> <field>`` cards for a ``to_dict`` mapping.

    Scalars become native FITS values; anything else (lists, dicts, None, NaN) becomes a
    JSON string under ``... <field> JSON`` so that it still reads back exactly.
    """
    for field, value in data.items():
        key = f"{_NS} {prefix} {field}"
        native = isinstance(value, (bool, int, str)) or (
            isinstance(value, float) and math.isfinite(value)
        )
        if native:
            try:
                yield _card(key, value)
                continue
            except FitsFormatError:
                pass  # non-ASCII text or an over-long key: fall back to JSON below
        yield _card(f"{key} JSON", json.dumps(value, ensure_ascii=True, allow_nan=True))


def _leaf_dict(header: fits.Header, prefix: str) -> dict[str, Any] | None:
    """Inverse of :func:`_leaf_cards`; None when the header has no such cards."""
    start = f"{_NS} {prefix} "
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if not key.startswith(start):
            continue
        field = key[len(start):]
        if field.endswith(" JSON"):
            out[field[:-5]] = json.loads(card.value)
        else:
            out[field] = card.value
    return out or None


def _hdu_of(hdul: fits.HDUList, name: str) -> fits.hdu.base._BaseHDU | None:
    try:
        return hdul[name]
    except KeyError:
        return None


# -- Wcs in headers -------------------------------------------------------------------------
def _ltv_cards(xy0: tuple[int, int]) -> list[fits.Card]:
    """LTV1/LTV2: array index = parent pixel + LTV (the IRAF/LSST cut-out convention)."""
    return [
        _card("LTV1", -xy0[0], "array x = parent x + LTV1"),
        _card("LTV2", -xy0[1], "array y = parent y + LTV2"),
    ]


def _shift_lookups(doc: dict[str, Any], dx: float, dy: float) -> dict[str, Any]:
    """A Wcs dict whose lookup tables apply to pixels shifted by ``(dx, dy)``.

    A table maps pixel ``p`` through ``(p - crval) / cdelt + crpix``: moving the pixel
    origin moves ``crval`` with it (SIP and the linear part move with CRPIX).
    """
    lookup = doc.get("lookup")
    if not lookup:
        return doc
    moved = {}
    for name, table in lookup.items():
        crval = table["crval"]
        moved[name] = {**table, "crval": [float(crval[0]) + dx, float(crval[1]) + dy]}
    return {**doc, "lookup": moved}


def _lookup_parts(wcs: Wcs, xy0: tuple[int, int]) -> tuple[list[fits.Card], list[Any]]:
    """The cards (``CPDISj``, ``DPj``, ``D2IM...``) and WCSDVARR/D2IMARR extensions of
    ``wcs``'s lookup-table distortions, for an array whose pixel ``[0, 0]`` is ``xy0``."""
    from ._wcs import Wcs

    doc = wcs.to_dict()
    if not doc.get("lookup"):
        return [], []
    shifted = Wcs.from_dict(_shift_lookups(doc, -xy0[0], -xy0[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        hdul = shifted.astropy.to_fits(relax=True)
    keys = re.compile(r"^((CPDIS|D2IMDIS)\d+|(DP|D2IM)\d+(\..+)?)$")
    cards = [card for card in hdul[0].header.cards if keys.match(card.keyword)]
    return cards, list(hdul[1:])


def _wcs_cards(wcs: Wcs, xy0: tuple[int, int]) -> list[fits.Card]:
    """Cards of ``wcs`` for an array whose pixel ``[0, 0]`` is parent pixel ``xy0``.

    The Wcs maps parent pixels; plain FITS readers index the array, so CRPIX moves by
    ``-xy0`` and LTV1/LTV2 record the shift (the IRAF/LSST convention). The exact parent
    CRPIX is kept in ``COMPSTORE CRPIXn`` because ``(c - x0) + x0`` need not equal ``c``.
    Lookup-table distortions add their cards here and their tables as extensions
    (:func:`_lookup_parts`).
    """
    exact = wcs.to_dict()["header"]
    order = list(wcs.to_header().keys())
    cards = []
    for key in [*order, *(k for k in exact if k not in order)]:
        if key not in exact:
            continue
        value = exact[key]
        if key in ("CRPIX1", "CRPIX2"):
            value = float(value) - xy0[int(key[-1]) - 1]
        cards.append(_card(key, value))
    cards += _lookup_parts(wcs, xy0)[0]
    cards += _ltv_cards(xy0)
    for axis in (1, 2):
        if f"CRPIX{axis}" in exact:
            cards.append(_card(f"{_NS} CRPIX{axis}", float(exact[f"CRPIX{axis}"])))
    return cards


def _xy0_from_header(header: fits.Header) -> tuple[int, int]:
    """xy0 from LTV1/LTV2 (parent = array index - LTV), when they are whole numbers."""
    xy0 = []
    for axis in (1, 2):
        value = header.get(f"LTV{axis}", 0)
        scale = header.get(f"LTM{axis}_{axis}", 1)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and float(value).is_integer()
            and scale == 1
        ):
            xy0.append(-int(value))
        else:
            # A fractional or scaled LTV is an IRAF binning transform, not a parent offset.
            xy0.append(0)
    return xy0[0], xy0[1]


def _quiet_wcs(header: fits.Header, hdul: fits.HDUList | None) -> WCS:
    with warnings.catch_warnings():
        # Old headers (EPOCH, RADECSYS, odd DATE-OBS) are fixed by astropy, as we want.
        warnings.simplefilter("ignore", FITSFixedWarning)
        # The HDUList, not the header alone: lookup-table distortions (CPDIS, D2IM)
        # keep their tables in WCSDVARR/D2IMARR extensions.
        return WCS(header, hdul, relax=True)


def _wcs_from_header(
    header: fits.Header,
    xy0: tuple[int, int],
    path: str,
    extname: str,
    hdul: fits.HDUList | None = None,
) -> Wcs | None:
    """The whole Wcs (mapping parent pixels) of an image header, or None if it has none.

    Every axis astropy reads is kept (spectral, Stokes, non-celestial), and lookup-table
    distortions with their tables from ``hdul``: nothing of the WCS is dropped.

    Raises
    ------
    FitsFormatError
        If the header has WCS cards that astropy cannot parse.
    """
    from ._wcs import Wcs

    if not any(_WCS_PRESENT.match(key) for key in header.keys()):
        return None
    try:
        full = _quiet_wcs(header, hdul)
    except Exception as exc:  # wcslib raises its own classes, plus ValueError/KeyError
        raise FitsFormatError(f"{path}: HDU {extname}: cannot parse its WCS: {exc}") from exc
    try:
        wcs = Wcs(full, all_axes=True)
        if xy0 == (0, 0):
            return wcs
        doc = wcs.to_dict()
        cards = dict(doc["header"])
        for axis in (1, 2):
            key = f"CRPIX{axis}"
            shifted = float(cards.get(key, 0.0)) + xy0[axis - 1]
            exact = header.get(f"{_NS} {key}")
            if isinstance(exact, float) and abs(exact - shifted) <= 1e-9 * max(1.0, abs(exact)):
                shifted = exact
            cards[key] = shifted
        return Wcs.from_dict(_shift_lookups({**doc, "header": cards}, xy0[0], xy0[1]))
    except ObjectError as exc:
        raise FitsFormatError(f"{path}: HDU {extname}: unusable WCS: {exc}") from exc


# -- opening ---------------------------------------------------------------------------------
def _open(path: str | os.PathLike[str]) -> tuple[str, fits.HDUList]:
    """Open ``path`` read-only.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    FitsFormatError
        If it is not a FITS file.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such FITS file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul = fits.open(name, memmap=False, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError, fits.VerifyError) as exc:
        raise FitsFormatError(f"{name}: not a readable FITS file: {exc}") from exc
    return name, hdul


def _write_atomic(hdul: fits.HDUList, path: str | os.PathLike[str]) -> None:
    """Write ``hdul`` to ``path`` via ``path.partial`` and ``os.replace``, so a reader
    never sees half a file."""
    target = Path(os.fspath(path))
    partial = target.with_name(target.name + ".partial")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            hdul.writeto(partial, overwrite=True, output_verify="exception")
    except (ValueError, fits.VerifyError) as exc:
        partial.unlink(missing_ok=True)
        raise FitsFormatError(f"{target}: cannot write FITS: {exc}") from exc
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)


def _alt_crpix_moved(metadata: Mapping[str, Any], dx: int, dy: int) -> dict[str, Any]:
    """``metadata`` with the reference pixel of every alternate WCS moved by ``(dx, dy)``."""
    out = dict(metadata)
    for key, value in metadata.items():
        axis = _ALT_CRPIX.match(key)
        if axis and isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value) + (dx if axis[1] == "1" else dy)
    return out


def _alt_wcs_cards(metadata: Mapping[str, Any], xy0: tuple[int, int]) -> list[fits.Card]:
    """The alternate WCSes of ``metadata`` as an image plane's cards (CRPIXja in its pixels)."""
    moved = _alt_crpix_moved(metadata, -xy0[0], -xy0[1])
    return [_card(key, value) for key, value in moved.items() if _ALT_WCS_KEY.match(key)]


def _metadata_cards(metadata: Mapping[str, Any]) -> Iterator[fits.Card]:
    """The primary header's cards of ``metadata`` (alternate WCSes go on the planes)."""
    for key, value in metadata.items():
        if _ALT_WCS_KEY.match(key):
            continue
        if key.startswith(_NS + " ") or key.upper() == _NS or _STRUCTURAL.match(key.upper()):
            raise FitsFormatError(
                f"metadata key {key!r} is reserved in FITS headers; rename it before writing"
            )
        yield _card(key, value)


def _metadata_from(headers: Iterable[fits.Header], *, skip_wcs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for header in headers:
        for card in header.cards:
            key = card.keyword
            if _STRUCTURAL.match(key) or key.startswith(_NS + " "):
                continue
            if skip_wcs and _WCS_KEY.match(key):
                continue
            value = card.value
            if isinstance(value, (bool, int, float, str)) and not (
                isinstance(value, float) and not math.isfinite(value)
            ):
                out[key] = value
    return out


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
HduSpec = int | str | tuple[str, int]


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


@contextlib.contextmanager
def _read_errors(name: str, what: str) -> Iterator[None]:
    """Turn what reading file ``name`` as ``what`` may raise into a `FitsFormatError` naming it."""
    try:
        yield
    except (FitsFormatError, FileNotFoundError):
        raise
    except ObjectError as exc:
        raise FitsFormatError(f"{name}: {exc}") from exc
    except (OSError, ValueError, TypeError, KeyError, IndexError, fits.VerifyError) as exc:
        # Truncated data and damaged headers surface from astropy as any of these.
        raise FitsFormatError(f"{name}: cannot read as {what}: {exc}") from exc


def _read_layout(hdul: fits.HDUList, path: str) -> Exposure:
    """An IMAGE/MASK/VARIANCE file (ours, or LSST's)."""
    from ._calib import Calib
    from ._image import Exposure
    from ._mask import Mask
    from ._psf import Psf

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
            from ._visit import VisitInfo

            components["visit_info"] = VisitInfo.from_dict(visit)
        psf_hdu = _hdu_of(hdul, "PSF")
        if psf_hdu is not None and (psf := _leaf_from_hdu(psf_hdu, "PSF", path)) is not None:
            components["psf"] = Psf.from_dict(psf)
        bkg_hdu = _hdu_of(hdul, "BACKGROUND")
        if bkg_hdu is not None and (bkg := _leaf_from_hdu(bkg_hdu, "BACKGROUND", path)) is not None:
            from ._background import Background

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


def _pixel_values(data: Any, path: str, extname: str, *, copy: bool = False) -> np.ndarray:
    """Pixels as a native-order float array that holds every value exactly.

    float32 and float64 stay as they are (BZERO/BSCALE already applied by astropy);
    integers of up to 16 bits become float32 and wider ones float64, both exact.

    Raises
    ------
    FitsFormatError
        If a value cannot be held exactly (64-bit integers beyond 2**53, complex).
    """
    arr = np.asarray(data)
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f" and size in (4, 8):
        target = np.dtype(np.float32 if size == 4 else np.float64)
    elif kind in "iub" and size <= 2:
        target = np.dtype(np.float32)
    elif kind in "iu" and size <= 8:
        if size == 8 and arr.size and int(np.abs(arr).max()) > 2**53:
            raise FitsFormatError(
                f"{path}: HDU {extname} holds 64-bit integers beyond 2**53, which no float "
                "image holds exactly; convert them before ingesting"
            )
        target = np.dtype(np.float64)
    else:
        raise FitsFormatError(
            f"{path}: HDU {extname} holds {arr.dtype} pixels; an Exposure holds float32 or "
            "float64 images"
        )
    return arr.astype(target, copy=copy or arr.dtype != target)


def _is_image(hdu: Any) -> bool:
    return (
        isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))
        and hdu.header.get("NAXIS", 0) >= 2
        and hdu.name not in _TABLE_EXTNAMES
        and hdu.data is not None
        and hdu.data.ndim >= 2
    )


def _hdu_label(hdul: fits.HDUList, hdu: Any) -> str:
    ver = hdu.header.get("EXTVER", 1)
    name = f"({hdu.name!r}, {ver})" if ver != 1 else repr(hdu.name)
    return f"{hdul.index_of(hdu)} {name}"


def select_image_hdu(hdul: fits.HDUList, path: str, hdu: HduSpec | None) -> Any:
    """The image HDU ``hdu`` names, or the only image HDU of ``hdul``.

    Raises
    ------
    FitsFormatError
        If there is no such HDU, it holds no 2-D image, there is no image at all, or
        ``hdu`` is None and there are several (a multi-extension file).
    """
    images = [h for h in hdul if _is_image(h)]
    if hdu is None:
        if len(images) == 1:
            return images[0]
        if not images:
            kinds = ", ".join(f"{type(h).__name__}{getattr(h.data, 'shape', '')}" for h in hdul)
            raise FitsFormatError(f"{path}: no HDU holds a 2-D (or higher) image; found {kinds}")
        listing = ", ".join(_hdu_label(hdul, h) for h in images)
        raise FitsFormatError(
            f"{path} holds {len(images)} images (HDUs {listing}); say which to read with "
            "hdu= (CLI: --hdu), an index, an EXTNAME or (EXTNAME, EXTVER)"
        )
    try:
        chosen = hdul[tuple(hdu) if isinstance(hdu, list) else hdu]
    except (KeyError, IndexError, TypeError):
        listing = ", ".join(_hdu_label(hdul, h) for h in hdul)
        raise FitsFormatError(f"{path} has no HDU {hdu!r}; its HDUs are {listing}") from None
    if not _is_image(chosen):
        raise FitsFormatError(
            f"{path}: HDU {_hdu_label(hdul, chosen)} holds no 2-D image "
            f"({type(chosen).__name__}{getattr(chosen.data, 'shape', '')})"
        )
    return chosen


def _read_plain(hdul: fits.HDUList, path: str, which: HduSpec | None = None) -> Exposure:
    """An ordinary FITS image: the image HDU ``which``, or the file's only image HDU."""
    from ._image import Exposure
    from ._mask import Mask

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


# -- SourceCatalog -------------------------------------------------------------------------
def write_catalog(catalog: SourceCatalog, path: str | os.PathLike[str]) -> None:
    """Write ``catalog`` to a FITS file at ``path`` (replacing any file there).

    The table goes to a binary-table HDU named CATALOG (units as TUNITn), the Calib to
    ``COMPSTORE CALIB <field>`` cards of the primary header, and the Wcs, if any, to the
    header of an empty image HDU named WCS (``WCS(fits.open(p)["WCS"].header)`` works).

    Raises
    ------
    FitsFormatError
        If a column or value cannot be stored in FITS (e.g. an object column).
    OSError
        If the file cannot be written.
    """
    primary = fits.PrimaryHDU()
    header = primary.header
    header.append(_card(f"{_NS} TYPE", "SourceCatalog", "compstore object type"))
    header.append(_card(f"{_NS} FORMAT", FORMAT_VERSION, "compstore FITS layout version"))
    if catalog.calib is not None:
        header.extend(_leaf_cards("CALIB", catalog.calib.to_dict()))
    table = Table(catalog.table, copy=False)
    meta = dict(table.meta)
    try:
        bare = Table(table, copy=False)
        bare.meta.clear()  # meta goes to JSON below; astropy would mangle nested values
        int8 = [c.name for c in bare.itercols() if c.dtype.base == np.int8]
        for name in int8:
            # astropy's table_to_hdu writes int8 as logical 'L', losing every value;
            # widen to int16 on disk and narrow back on read.
            bare[name] = bare[name].astype(np.int16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            table_hdu = fits.table_to_hdu(bare)
    except (ValueError, TypeError) as exc:
        raise FitsFormatError(f"{path}: cannot write the catalog table as FITS: {exc}") from exc
    table_hdu.name = "CATALOG"
    masked = [c.name for c in bare.itercols() if getattr(c, "mask", None) is not None]
    if masked:
        table_hdu.header.append(_card(f"{_NS} MASKED JSON", json.dumps(masked)))
    if int8:
        table_hdu.header.append(_card(f"{_NS} INT8 JSON", json.dumps(int8)))
    if meta:
        try:
            text = json.dumps(meta, ensure_ascii=True, allow_nan=True)
        except TypeError as exc:
            raise FitsFormatError(f"{path}: table meta is not JSON-serializable: {exc}") from exc
        table_hdu.header.append(_card(f"{_NS} META JSON", text))
    hdus: list[Any] = [primary, table_hdu]
    if catalog.wcs is not None:
        wcs_hdu = fits.ImageHDU(name="WCS")
        for card in _wcs_cards(catalog.wcs, (0, 0)):
            wcs_hdu.header.append(card)
        hdus.append(wcs_hdu)
        hdus += _lookup_parts(catalog.wcs, (0, 0))[1]
    _write_atomic(fits.HDUList(hdus), path)


def read_catalog(path: str | os.PathLike[str]) -> SourceCatalog:
    """Read a SourceCatalog written by :func:`write_catalog`, or any FITS binary table.

    For a foreign file the first binary table is read, with no Wcs or Calib unless a
    WCS HDU or compstore Calib cards are present.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FitsFormatError
        If the file is not FITS, holds no binary table, or its compstore cards are
        malformed.
    """
    from ._calib import Calib
    from ._catalog import SourceCatalog

    name, hdul = _open(path)
    with _read_errors(name, "a SourceCatalog"), hdul:
        table_hdu = _hdu_of(hdul, "CATALOG")
        if table_hdu is None:
            table_hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        if not isinstance(table_hdu, fits.BinTableHDU):
            raise FitsFormatError(f"{name}: no binary-table HDU to read as a catalog")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            # mask_invalid=False: a NaN in a plain float column is a value, not a gap.
            table = Table.read(table_hdu, character_as_bytes=False, mask_invalid=False)
        for col_name in json.loads(table_hdu.header.get(f"{_NS} MASKED JSON", "[]")):
            column = table[col_name]
            if not hasattr(column, "mask") and column.dtype.kind == "f":
                # Masked float entries are stored as NaN (the FITS convention).
                table[col_name] = MaskedColumn(column, mask=np.isnan(column))
        for column in table.itercols():
            if not column.dtype.isnative:
                # FITS is big-endian; callers compare dtypes with native ones.
                table[column.name] = column.astype(column.dtype.newbyteorder("="))
        for col_name in json.loads(table_hdu.header.get(f"{_NS} INT8 JSON", "[]")):
            table[col_name] = table[col_name].astype(np.int8)
        meta_text = table_hdu.header.get(f"{_NS} META JSON")
        table.meta.clear()
        if meta_text is not None:
            table.meta.update(json.loads(meta_text))
        calib_dict = _leaf_dict(hdul[0].header, "CALIB")
        calib = None if calib_dict is None else Calib.from_dict(calib_dict)
        wcs_hdu = _hdu_of(hdul, "WCS")
        wcs = None
        if wcs_hdu is not None:
            wcs = _wcs_from_header(wcs_hdu.header, (0, 0), name, "WCS", hdul)
        return SourceCatalog(table, wcs=wcs, calib=calib)
