"""FITS header cards for compstore values: exact floats, HIERARCH leaf values, metadata.

Floats are written with all 17 significant digits (FITS allows free-format values
longer than astropy's default 20 characters), so every value reads back *equal*,
not merely close. Leaf values (Calib, VisitInfo, Psf and Background fields) become
``HIERARCH COMPSTORE <prefix> <field>`` cards.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from astropy.io import fits

from compstore.errors import FitsFormatError

#: Version of the FITS layout (``docs/fits.md``), in ``HIERARCH COMPSTORE FORMAT``.
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



# -- metadata ----------------------------------------------------------------------------
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

