"""Wcs: an immutable, hashable value type over an astropy WCS (by default its celestial part).

The canonical form (:meth:`Wcs.to_dict`) is a set of FITS header cards that
compstore writes itself from wcslib's values, by fixed rules per feature
(``_wcs_cards.py``, docs/spec/format.md), so that which cards a document holds,
and hence its digest, does not change with the astropy version that made it.
Every number that wcslib holds in double precision is written *exactly*: a FITS
card keeps at most 20 characters, so ``WCS.to_header`` rounds CRVAL, CD/PC and SIP
coefficients to about 14 digits, which moves a pixel by micro-arcseconds and would
make two "equal" Wcs objects hash differently after a round trip.

Lookup-table distortions (``CPDISj``/``DPj`` and ``D2IMDISj``/``D2IMj``, HST's
WCSDVARR and D2IMARR extensions) are not header cards; the canonical form holds their
tables under ``"lookup"`` (only when there are any, so the canonical form, and hence
the digest, of every other Wcs is what it always was).

The cards are plain JSON (keyword -> number, string or bool), encoded like any
document (RFC 8785 from format 3), so the document does not hold astropy's
header text. Cards that astropy versions emitted or omitted with wcslib's defaults
and that carry no information (``DEFAULT_CARDS``: the MJD 0 time reference) are
left out, when a Wcs is made and when one is read (documents written by astropy's
header before compstore wrote its own cards may hold them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import (
    WCS,
    WCSSUB_CELESTIAL,
    DistortionLookupTable,
    NoConvergence,
    Sip,
)
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

from ._frozen import Immutable
from ._wcs_cards import AXIS_KEY as _AXIS_KEY
from ._wcs_cards import MATRIX_KEY as _MATRIX_KEY
from ._wcs_cards import PV_KEY as _PV_KEY
from ._wcs_cards import SIP_KEY as _SIP_KEY
from ._wcs_cards import canonical_cards
from ._wcs_cards import plain as _plain
from ._wcs_cards import quiet as _quiet
from ._wcs_cards import sip_matrices as _sip_matrices
from ._wcs_cards import without_defaults as _without_defaults
from ._wcsapi import _INVERSE_MAXITER, _INVERSE_TOLERANCE, WcsApiMixin

__all__ = ["Wcs"]


#: astropy's attributes holding lookup-table distortions (paper IV prior distortion,
#: and HST's detector-to-image correction).
_LOOKUP_NAMES = ("cpdis1", "cpdis2", "det2im1", "det2im2")


def _apply_exact(wcs: WCS, cards: Mapping[str, Any]) -> None:
    """Write the exact card values into ``wcs`` (the inverse of `_wcs_cards.exact_value`)."""
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


def _has_lookups(wcs: WCS) -> bool:
    return any(getattr(wcs, name) is not None for name in _LOOKUP_NAMES)


def _celestial(wcs: WCS) -> WCS:
    if not wcs.has_celestial:
        raise ObjectError(
            "the WCS has no celestial (longitude/latitude) axes; "
            "Wcs(wcs, all_axes=True) keeps a non-celestial WCS whole"
        )
    if wcs.naxis == 2:
        return copy.deepcopy(wcs)
    if _has_lookups(wcs):
        # astropy cannot take the celestial part of a WCS with lookup tables; refuse
        # rather than silently drop the tables.
        raise ObjectError(
            f"the WCS has {wcs.naxis} axes and lookup-table distortions (CPDIS/D2IM): its "
            "celestial part cannot be taken; Wcs(wcs, all_axes=True) keeps it whole"
        )
    cel = wcs.celestial
    if cel.naxis != 2:
        raise ObjectError(f"expected 2 celestial axes, found {cel.naxis}")
    return cel


def _lookup_doc(wcs: WCS) -> dict[str, Any]:
    """The lookup tables of ``wcs`` as plain JSON: exact (float32 values are exact doubles)."""
    doc: dict[str, Any] = {}
    for name in _LOOKUP_NAMES:
        table = getattr(wcs, name)
        if table is None:
            continue
        data = np.asarray(table.data, dtype=np.float32)
        doc[name] = {
            "shape": [int(n) for n in data.shape],
            "values": [_plain(v) for v in data.ravel().tolist()],
            "crpix": [_plain(v) for v in table.crpix],
            "crval": [_plain(v) for v in table.crval],
            "cdelt": [_plain(v) for v in table.cdelt],
        }
    return doc


def _check_lookup_doc(doc: Any) -> dict[str, Any]:
    """``doc`` if it is a valid ``"lookup"`` entry of a Wcs dict.

    Raises
    ------
    ObjectError
        If it is not.
    """
    if not isinstance(doc, Mapping) or not set(doc) <= set(_LOOKUP_NAMES):
        raise ObjectError(f"not a Wcs dict: 'lookup' must map some of {_LOOKUP_NAMES} to tables")
    for name, table in doc.items():
        try:
            shape = [int(n) for n in table["shape"]]
            ok = (
                len(shape) == 2
                and all(n > 0 for n in shape)
                and len(table["values"]) == shape[0] * shape[1]
                and all(len(table[k]) == 2 for k in ("crpix", "crval", "cdelt"))
                and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for k in ("values", "crpix", "crval", "cdelt")
                    for v in table[k]
                )
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ObjectError(
                f"not a Wcs dict: lookup table {name!r} needs shape (2 sizes), values "
                "(shape[0] * shape[1] numbers), crpix, crval and cdelt (2 numbers each)"
            )
    return dict(doc)


def _check_rebuilds(wcs: WCS, cards: dict[str, Any], lookups: dict[str, Any]) -> None:
    """Refuse a WCS its canonical form does not reproduce (never a silently wrong Wcs).

    Raises
    ------
    ObjectError
        If the rebuilt WCS fails or maps a grid of pixels elsewhere (beyond 1e-10).
    """
    grid = np.linspace(-50.0, 4150.0, 7)
    pixels = np.zeros((grid.size**2, wcs.pixel_n_dim))
    pixels[:, 0] = np.repeat(grid, grid.size)
    if wcs.pixel_n_dim > 1:
        pixels[:, 1] = np.tile(grid, grid.size)
    try:
        rebuilt = _wcs_from_cards(cards)
        _attach_lookups(rebuilt, lookups)
        again = rebuilt.all_pix2world(pixels, 0)
    except Exception as exc:
        raise ObjectError(f"this WCS cannot be kept: its header cards do not rebuild it ({exc})") from exc
    before = wcs.all_pix2world(pixels, 0)
    if not np.allclose(again, before, rtol=1e-13, atol=1e-10, equal_nan=True):
        raise ObjectError(
            "this WCS cannot be kept: astropy's header cards for it do not reproduce it "
            f"(axes {list(wcs.wcs.ctype)})"
        )


def _attach_lookups(wcs: WCS, doc: Mapping[str, Any]) -> None:
    for name, table in doc.items():
        data = np.asarray(table["values"], dtype=np.float32).reshape(table["shape"])
        setattr(
            wcs,
            name,
            DistortionLookupTable(
                data,
                tuple(float(v) for v in table["crpix"]),
                tuple(float(v) for v in table["crval"]),
                tuple(float(v) for v in table["cdelt"]),
            ),
        )


def _wcs_from_cards(cards: Mapping[str, Any]) -> WCS:
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    with _quiet():
        wcs = WCS(header, relax=True)
        _apply_exact(wcs, cards)
    return wcs


class Wcs(Immutable, WcsApiMixin):
    """An immutable world coordinate system mapping parent pixels to the sky.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Any WCS astropy understands (TAN, TAN-SIP, TPV, lookup-table distortions
        ...); the input is copied, never referenced.
    all_axes : bool, optional
        Keep every axis of ``wcs`` (spectral, Stokes, time, or a WCS with no
        celestial axes at all), as the FITS reader does. By default only the
        celestial part is kept.

    Raises
    ------
    ObjectError
        If the WCS is invalid; without ``all_axes``, if it has no celestial axes,
        or has more than two axes and lookup-table distortions (astropy cannot
        take the celestial part of those).

    Notes
    -----
    Pixel coordinates are 0-based with pixel centres at integers (astropy
    ``origin=0``). Equality and hash are by value: two Wcs are equal exactly when
    their :meth:`to_dict` forms are.

    A Wcs implements astropy's shared WCS interface (APE 14, low and high level):
    ``pixel_to_world(x, y)`` returns a `~astropy.coordinates.SkyCoord` (plus a
    `~astropy.coordinates.SpectralCoord` and so on for further axes),
    ``world_to_pixel(skycoord)`` takes one, and ``pixel_to_world_values`` /
    ``world_to_pixel_values`` work in plain numbers; see ``objects/_wcsapi.py``.
    """

    __slots__ = ("_wcs", "_cards", "_lookups", "_hash", "__weakref__")
    _how_to_change = "; build a new one from an astropy WCS or a header"
    _wcs: WCS | None  # built from _cards on first use (see _astropy)
    _cards: dict[str, Any]
    _lookups: dict[str, Any]  # lookup-table distortions as plain JSON (see to_dict)
    _hash: int | None

    def __init__(self, wcs: WCS, *, all_axes: bool = False) -> None:
        if isinstance(wcs, Wcs):
            wcs = wcs._astropy()
        if not isinstance(wcs, WCS):
            raise ObjectError(f"Wcs() takes an astropy.wcs.WCS, got {type(wcs).__name__}")
        try:
            with _quiet():
                kept = copy.deepcopy(wcs) if all_axes else _celestial(wcs)
                if kept.naxis < 1:
                    raise ObjectError("the WCS has no axes")
                kept.wcs.set()
                if getattr(kept.wcs, "tab", None):
                    # -TAB coordinates live in a binary table that no header card holds.
                    raise ObjectError(
                        "WCS -TAB (tabular) coordinates are not supported; "
                        f"axes {list(kept.wcs.ctype)}"
                    )
                cards = canonical_cards(kept)
                lookups = _lookup_doc(kept)
                if all_axes:
                    _check_rebuilds(kept, cards, lookups)
        except ObjectError:
            raise
        except Exception as exc:  # wcslib raises its own error classes for invalid values
            raise ObjectError(f"invalid WCS: {exc}") from exc
        self._init_from_cards(cards, lookups)

    def _init_from_cards(self, cards: dict[str, Any], lookups: dict[str, Any] | None = None) -> None:
        # The wrapped WCS is always rebuilt from the canonical cards, so that two equal
        # Wcs objects compute bit-identical coordinates; it is built on first use, as a
        # Wcs read from a store is often only compared, shared or written again.
        object.__setattr__(self, "_cards", cards)
        object.__setattr__(self, "_lookups", lookups or {})
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
                _attach_lookups(wcs, self._lookups)
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
            extra = set(data) - {"header", "lookup"}
        except (KeyError, TypeError, ValueError) as exc:
            raise ObjectError(f"not a Wcs dict: {exc}") from exc
        if extra:
            # A newer compstore's field: reading on without it would drop part of the WCS.
            raise ObjectError(f"not a Wcs dict this compstore reads: unknown keys {sorted(extra)}")
        if not all(isinstance(k, str) and isinstance(v, (str, int, float, bool)) for k, v in cards.items()):
            raise ObjectError("not a Wcs dict: header cards must map str to str, int, float or bool")
        cards = _without_defaults(cards)  # a document written before they were left out
        lookups = _check_lookup_doc(data["lookup"]) if "lookup" in data else {}
        # to_dict() gives canonical cards already: keep them as they are (the astropy
        # WCS is built lazily), rather than parse, re-canonicalise and parse again.
        wcs = object.__new__(cls)
        wcs._init_from_cards(cards, lookups)
        return wcs

    # -- views --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form: ``{"header": {card: value, ...}}``, keys sorted,
        floats exact; plus ``"lookup": {"cpdis1": {...}, ...}`` when the WCS has
        lookup-table distortions (``shape``, row-major ``values``, ``crpix``, ``crval``,
        ``cdelt`` of each table)."""
        if self._lookups:
            return {"header": dict(self._cards), "lookup": copy.deepcopy(self._lookups)}
        return {"header": dict(self._cards)}

    def to_header(self) -> fits.Header:
        """A FITS header for this WCS (SIP included, ``relax=True``).

        Values in the returned Header are exact; writing it to a file rounds floats to
        FITS's 20 characters, so prefer :meth:`to_dict` for lossless storage. Lookup-table
        distortions are not header cards: :meth:`astropy` has them, and ``write_fits``
        writes them as WCSDVARR/D2IMARR extensions.
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

    def to_astropy(self) -> WCS:
        """This Wcs as a new ``astropy.wcs.WCS`` (the way back of ``put``-ing one).

        The copy is the caller's: changing it changes nothing here. It maps the same
        0-based parent pixels, exactly (``Wcs(wcs.to_astropy()) == wcs``).
        """
        return self.astropy

    @property
    def has_distortion(self) -> bool:
        """Whether the WCS includes SIP, lookup-table (or other non-linear) distortion."""
        return bool(self._astropy().has_distortion)

    @property
    def has_celestial(self) -> bool:
        """Whether the WCS has celestial axes (so :meth:`pixel_to_sky` works)."""
        return bool(self._astropy().has_celestial)

    @property
    def world_axis_types(self) -> tuple[str, ...]:
        """The CTYPE of each world axis, in order (``("RA---TAN", "DEC--TAN")``)."""
        return tuple(str(t) for t in self._astropy().wcs.ctype)

    def _pixels(self, x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xa, ya = np.broadcast_arrays(np.asarray(x, float), np.asarray(y, float))
        # Axes past the image's two are the plane that was read: pixel 0 of each.
        pixels = np.zeros((xa.size, self._astropy().pixel_n_dim))
        pixels[:, 0] = xa.ravel()
        if pixels.shape[1] > 1:
            pixels[:, 1] = ya.ravel()
        return xa, ya, pixels

    def _require_celestial(self) -> None:
        if not self._astropy().has_celestial:
            raise ObjectError(
                f"this Wcs has no celestial axes ({', '.join(self.world_axis_types)}); "
                "use pixel_to_world_values"
            )

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
        self._require_celestial()
        xa, ya, pixels = self._pixels(x, y)
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
        self._require_celestial()
        ra_a, dec_a = np.broadcast_arrays(np.asarray(ra, float), np.asarray(dec, float))
        w = self._astropy().wcs
        if self._astropy().naxis > 2:
            # Further world axes (spectral, Stokes) take their value on the plane read.
            _, _, origin = self._pixels(0.0, 0.0)
            try:
                at_origin = self._astropy().all_pix2world(origin, 0)[0]
            except Exception as exc:
                raise ObjectError(f"sky_to_pixel failed: {exc}") from exc
            world = np.tile(at_origin, (ra_a.size, 1))
        else:
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
        return self._cards == other._cards and self._lookups == other._lookups

    def __hash__(self) -> int:
        value = self._hash
        if value is None:
            # Lookup tables are left out: equal objects still hash equal, and hashing
            # thousands of table values for a dict key would be slow.
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
