"""The Wcs and xy0 in FITS headers: CRPIX shifted by xy0, LTV1/LTV2, lookup-table distortions."""

from __future__ import annotations

import re
import warnings
from typing import Any

from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from compstore.errors import FitsFormatError, ObjectError
from compstore.objects import Wcs

from ._cards import _NS, _WCS_PRESENT, _card


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

