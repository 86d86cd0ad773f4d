"""Wcs: an immutable, hashable value type over the celestial part of an astropy WCS.

The canonical form (:meth:`Wcs.to_dict`) is astropy's own FITS header for the WCS
with every number that wcslib holds in double precision written back *exactly*:
a FITS card keeps at most 20 characters, so ``WCS.to_header`` rounds CRVAL, CD/PC
and SIP coefficients to about 14 digits, which moves a pixel by micro-arcseconds and
would make two "equal" Wcs objects hash differently after a round trip.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, WCSSUB_CELESTIAL, FITSFixedWarning, NoConvergence, Sip
from numpy.typing import ArrayLike

from compstore.errors import ObjectError
from ._frozen import Immutable

__all__ = ["Wcs"]

# Tolerance (pixels) of the iterative inversion of SIP distortion in sky_to_pixel.
# astropy's default of 1e-4 pixel is far too loose for exact round trips.
_INVERSE_TOLERANCE = 1e-11
_INVERSE_MAXITER = 100

_SIP_KEY = re.compile(r"^(A|B|AP|BP)_(\d+)_(\d+)$")
_AXIS_KEY = re.compile(r"^(CRPIX|CRVAL|CDELT)(\d+)$")
_MATRIX_KEY = re.compile(r"^PC(\d+)_(\d+)$")
_PV_KEY = re.compile(r"^PV(\d+)_(\d+)$")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # astropy "fixes" quirky headers (old RADECSYS, missing -SIP, DATE-OBS formats) and
    # warns about each; a Wcs accepts those fixes silently, as the issue asks it to.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _plain(value: Any) -> Any:
    """A JSON-ready Python value; -0.0 becomes 0.0 so equal values give equal dicts."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) + 0.0
    return str(value)


def _sip_matrices(wcs: WCS) -> dict[str, np.ndarray | None]:
    sip = wcs.sip
    if sip is None:
        return {}
    return {"A": sip.a, "B": sip.b, "AP": sip.ap, "BP": sip.bp}


def _exact_value(wcs: WCS, key: str) -> float | None:
    """The full-precision double behind header card ``key``, or None if not numeric."""
    w = wcs.wcs
    if key in ("LONPOLE", "LATPOLE"):
        return float(w.lonpole if key == "LONPOLE" else w.latpole)
    if m := _AXIS_KEY.match(key):
        i = int(m.group(2)) - 1
        source = {"CRPIX": w.crpix, "CRVAL": w.crval, "CDELT": w.get_cdelt()}[m.group(1)]
        return float(source[i])
    if m := _MATRIX_KEY.match(key):
        return float(w.get_pc()[int(m.group(1)) - 1, int(m.group(2)) - 1])
    if m := _PV_KEY.match(key):
        wanted = (int(m.group(1)), int(m.group(2)))
        for i, k, value in w.get_pv():
            if (i, k) == wanted:
                return float(value)
        return None
    if m := _SIP_KEY.match(key):
        matrix = _sip_matrices(wcs).get(m.group(1))
        if matrix is not None:
            return float(matrix[int(m.group(2)), int(m.group(3))])
    return None


def _apply_exact(wcs: WCS, cards: Mapping[str, Any]) -> None:
    """Write the exact card values into ``wcs`` (the inverse of :func:`_exact_value`)."""
    w = wcs.wcs
    crpix, crval, cdelt = w.crpix.copy(), w.crval.copy(), w.get_cdelt().copy()
    pc = w.get_pc().copy()
    # Only PV values wcslib keeps as projection parameters: TPV's PV cards become a
    # polynomial distortion instead, and setting them as parameters of TAN is an error.
    pv = {(int(i), int(m)): float(v) for i, m, v in w.get_pv()}
    parsed_pv = set(pv)
    sip = {name: (None if m is None else m.copy()) for name, m in _sip_matrices(wcs).items()}
    for key, value in cards.items():
        if not isinstance(value, float):
            continue
        if key == "LONPOLE":
            w.lonpole = value
        elif key == "LATPOLE":
            w.latpole = value
        elif m := _AXIS_KEY.match(key):
            target = {"CRPIX": crpix, "CRVAL": crval, "CDELT": cdelt}[m.group(1)]
            target[int(m.group(2)) - 1] = value
        elif m := _MATRIX_KEY.match(key):
            pc[int(m.group(1)) - 1, int(m.group(2)) - 1] = value
        elif (m := _PV_KEY.match(key)) and (int(m.group(1)), int(m.group(2))) in parsed_pv:
            pv[int(m.group(1)), int(m.group(2))] = value
        elif (m := _SIP_KEY.match(key)) and sip.get(m.group(1)) is not None:
            sip[m.group(1)][int(m.group(2)), int(m.group(3))] = value  # type: ignore[index]
    w.crpix, w.crval, w.cdelt, w.pc = crpix, crval, cdelt, pc
    if pv:
        w.set_pv([(i, m, v) for (i, m), v in sorted(pv.items())])
    if sip:
        # Sip keeps its own copy of CRPIX; it must be the exact one too.
        wcs.sip = Sip(sip["A"], sip["B"], sip["AP"], sip["BP"], crpix)
    w.set()


def _celestial(wcs: WCS) -> WCS:
    if not wcs.has_celestial:
        raise ObjectError("the WCS has no celestial (longitude/latitude) axes")
    if any(getattr(wcs, f) is not None for f in ("cpdis1", "cpdis2", "det2im1", "det2im2")):
        # Lookup-table distortions live in FITS extensions, not in header cards, so they
        # have no canonical header form; refuse rather than silently drop them.
        raise ObjectError("WCS lookup-table distortions (CPDIS/DET2IM) are not supported")
    cel = wcs.celestial if wcs.naxis != 2 else copy.deepcopy(wcs)
    if cel.naxis != 2:
        raise ObjectError(f"expected 2 celestial axes, found {cel.naxis}")
    return cel


def _canonical_cards(wcs: WCS) -> dict[str, Any]:
    with _quiet():
        header = wcs.to_header(relax=True)
    cards: dict[str, Any] = {}
    for key in sorted(set(header.keys())):
        value = header[key]
        if key in ("", "COMMENT", "HISTORY") or isinstance(value, fits.card.Undefined):
            continue
        if isinstance(value, float):
            exact = _exact_value(wcs, key)
            value = value if exact is None else exact
        cards[key] = _plain(value)
    return cards


def _wcs_from_cards(cards: Mapping[str, Any]) -> WCS:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    with _quiet():
        wcs = WCS(header, relax=True)
        _apply_exact(wcs, cards)
    return wcs


class Wcs(Immutable):
    """An immutable world coordinate system mapping parent pixels to the sky.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Any WCS astropy understands (TAN, TAN-SIP, TPV, ...). Only its celestial
        part is kept; the input is copied, never referenced.

    Raises
    ------
    ObjectError
        If the WCS has no celestial axes or uses lookup-table distortions.

    Notes
    -----
    Pixel coordinates are 0-based with pixel centres at integers (astropy
    ``origin=0``). Equality and hash are by value: two Wcs are equal exactly when
    their :meth:`to_dict` forms are.
    """

    __slots__ = ("_wcs", "_cards", "_hash", "__weakref__")
    _how_to_change = "; build a new one from an astropy WCS or a header"
    _wcs: WCS | None  # built from _cards on first use (see _astropy)
    _cards: dict[str, Any]
    _hash: int | None

    def __init__(self, wcs: WCS) -> None:
        if isinstance(wcs, Wcs):
            wcs = wcs._astropy()
        if not isinstance(wcs, WCS):
            raise ObjectError(f"Wcs() takes an astropy.wcs.WCS, got {type(wcs).__name__}")
        try:
            with _quiet():
                cel = _celestial(wcs)
                cel.wcs.set()
                cards = _canonical_cards(cel)
        except ObjectError:
            raise
        except Exception as exc:  # wcslib raises its own error classes for invalid values
            raise ObjectError(f"invalid WCS: {exc}") from exc
        self._init_from_cards(cards)

    def _init_from_cards(self, cards: dict[str, Any]) -> None:
        # The wrapped WCS is always rebuilt from the canonical cards, so that two equal
        # Wcs objects compute bit-identical coordinates; it is built on first use, as a
        # Wcs read from a store is often only compared, shared or written again.
        object.__setattr__(self, "_cards", cards)
        object.__setattr__(self, "_wcs", None)
        # Hashing is rare (dict keys, sets); computed on first use.
        object.__setattr__(self, "_hash", None)

    def _astropy(self) -> WCS:
        """The wrapped astropy WCS, built from the canonical cards when first needed.

        Raises
        ------
        ObjectError
            If the cards (e.g. from a damaged document) do not make a valid WCS.
        """
        wcs = self._wcs
        if wcs is None:
            try:
                wcs = _wcs_from_cards(self._cards)
            except Exception as exc:  # wcslib raises its own error classes
                raise ObjectError(f"invalid WCS cards: {exc}") from exc
            # Two threads may both build it; either result is the same, so no lock.
            object.__setattr__(self, "_wcs", wcs)
        return wcs

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_header(cls, header: fits.Header | Mapping[str, Any] | str) -> Wcs:
        """Read the celestial WCS from a FITS header (a Header, a dict of cards or text).

        Extra axes (a spectral axis of a cube, Stokes) are dropped, as
        ``WCS(header).celestial`` does; astropy's fixes of quirky headers are accepted.

        Raises
        ------
        ObjectError
            If the header has no celestial WCS or astropy cannot parse it.
        """
        if isinstance(header, str):
            header = fits.Header.fromstring(header, sep="\n" if "\n" in header else "")
        elif not isinstance(header, fits.Header):
            header = fits.Header(list(dict(header).items()))
        try:
            with _quiet():
                # Select the celestial axes while parsing, not after: astropy refuses SIP
                # in a header with more than two axes (a SIP image cube) unless sub-setting
                # happens first.
                wcs = WCS(header, relax=True, naxis=[WCSSUB_CELESTIAL])
        except Exception:
            try:
                with _quiet():
                    wcs = WCS(header, relax=True)
            except Exception as exc:
                raise ObjectError(f"cannot read a WCS from the header: {exc}") from exc
        return cls(wcs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Wcs:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ObjectError
            If ``data`` is not a Wcs dict.
        """
        try:
            cards = dict(data["header"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ObjectError(f"not a Wcs dict: {exc}") from exc
        if not all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in cards.items()):
            raise ObjectError("not a Wcs dict: header cards must map str to str, int, float or bool")
        # to_dict() gives canonical cards already: keep them as they are (the astropy
        # WCS is built lazily), rather than parse, re-canonicalise and parse again.
        wcs = object.__new__(cls)
        wcs._init_from_cards(cards)
        return wcs

    # -- views --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form: ``{"header": {card: value, ...}}``, keys sorted,
        floats exact."""
        return {"header": dict(self._cards)}

    def to_header(self) -> fits.Header:
        """A FITS header for this WCS (SIP included, ``relax=True``).

        Values in the returned Header are exact; writing it to a file rounds floats to
        FITS's 20 characters, so prefer :meth:`to_dict` for lossless storage.
        """
        with _quiet():
            header = self._astropy().to_header(relax=True)
        for key in header:
            if isinstance(header[key], float) and key in self._cards:
                header[key] = self._cards[key]
        return header

    @property
    def astropy(self) -> WCS:
        """A deep copy of the underlying ``astropy.wcs.WCS`` (changing it changes nothing here)."""
        return copy.deepcopy(self._astropy())

    @property
    def has_distortion(self) -> bool:
        """Whether the WCS includes SIP (or other non-linear) distortion."""
        return self._astropy().has_distortion

    # -- transforms -----------------------------------------------------------------
    def pixel_to_sky(self, x: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
        """Sky longitude and latitude (RA, Dec for equatorial frames) in degrees.

        Parameters
        ----------
        x, y : float or array_like
            0-based parent pixel coordinates (broadcast together).

        Returns
        -------
        ra, dec : float or numpy.ndarray
            Floats for scalar input, arrays of the broadcast shape otherwise.

        Raises
        ------
        ObjectError
            If astropy cannot transform the coordinates.
        """
        xa, ya = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        pixels = np.stack([xa.ravel(), ya.ravel()], axis=1)
        try:
            world = self._astropy().all_pix2world(pixels, 0)
        except Exception as exc:
            raise ObjectError(f"pixel_to_sky failed: {exc}") from exc
        w = self._astropy().wcs
        # lng/lat say which axis is which, so a "DEC--TAN, RA---TAN" header still works.
        lon = world[:, w.lng].reshape(xa.shape)
        lat = world[:, w.lat].reshape(xa.shape)
        return _unwrap(lon), _unwrap(lat)

    def sky_to_pixel(self, ra: ArrayLike, dec: ArrayLike) -> tuple[Any, Any]:
        """0-based parent pixel coordinates of sky positions given in degrees.

        SIP distortion is inverted iteratively to 1e-11 pixel; positions where that
        diverges come back as NaN.

        Raises
        ------
        ObjectError
            If astropy cannot transform the coordinates.
        """
        ra_a, dec_a = np.broadcast_arrays(np.asarray(ra, float), np.asarray(dec, float))
        w = self._astropy().wcs
        world = np.empty((ra_a.size, 2))
        world[:, w.lng] = ra_a.ravel()
        world[:, w.lat] = dec_a.ravel()
        try:
            pixels = self._astropy().all_world2pix(
                world, 0, tolerance=_INVERSE_TOLERANCE, maxiter=_INVERSE_MAXITER, quiet=False
            )
        except NoConvergence as exc:
            pixels = np.array(exc.best_solution, dtype=float)
            if exc.divergent is not None:
                pixels[exc.divergent] = np.nan
        except Exception as exc:
            raise ObjectError(f"sky_to_pixel failed: {exc}") from exc
        return _unwrap(pixels[:, 0].reshape(ra_a.shape)), _unwrap(pixels[:, 1].reshape(ra_a.shape))

    # -- value semantics ----------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Wcs):
            return NotImplemented
        return self._cards == other._cards

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            value = hash(json.dumps(self._cards, sort_keys=True))
            object.__setattr__(self, "_hash", value)
        return value

    def __copy__(self) -> Wcs:
        return self  # immutable: a copy may be the object itself

    def __deepcopy__(self, memo: dict[int, Any]) -> Wcs:
        return self

    def __repr__(self) -> str:
        c = self._cards
        ctype = f"{c.get('CTYPE1', '?')}, {c.get('CTYPE2', '?')}"
        return f"Wcs({ctype}; CRVAL=({c.get('CRVAL1')}, {c.get('CRVAL2')}))"


def _unwrap(values: np.ndarray) -> Any:
    return float(values) if values.ndim == 0 else values
