"""The canonical header cards of a Wcs: written from wcslib's values by compstore's rules.

A Wcs document holds its WCS as FITS cards (keyword -> number, string or bool),
and its digest is the hash of those cards, so *which* cards there are must not
depend on the astropy (and wcslib) version that made them. :func:`canonical_cards`
therefore writes them itself, from the ``wcsprm`` (and the SIP polynomials),
by a fixed rule per feature (docs/spec/format.md, "Wcs"):

* ``WCSAXES``; for each axis ``i``: ``CRPIXi``, ``CRVALi``, ``CDELTi`` (always),
  ``CTYPEi``, ``CUNITi``, ``CNAMEi`` (when not empty), ``CRDERi``, ``CSYERi``
  (when defined); the ``PCi_j`` of the PC matrix that differ from the unit
  matrix (a CD matrix is held as PC and CDELT, as wcslib keeps it);
* ``PVi_m`` and ``PSi_m``: every projection parameter wcslib holds;
* ``LONPOLE`` and ``LATPOLE`` when defined (wcslib computes them when a
  header has none: they are written as computed);
* ``RADESYS``, ``WCSNAME``, ``DATE-OBS``, ``SPECSYS``, ``SSYSOBS``,
  ``SSYSSRC`` when not empty; ``EQUINOX``, ``MJD-OBS``, ``VELOSYS``,
  ``ZSOURCE`` when defined; ``RESTFRQ``, ``RESTWAV`` when not 0;
* with SIP: ``A_ORDER``, ``B_ORDER`` (and ``AP_ORDER``, ``BP_ORDER`` when the
  inverse is there), the coefficients that are not 0, and ``-SIP`` after
  each CTYPE (when some CTYPE lacks it: the CTYPE less any of ``-SIP`` at its
  ends, then ``-SIP``).

CRPIX, CRVAL, CDELT, PC, PV, LONPOLE, LATPOLE and SIP coefficients are the
exact doubles wcslib holds; the other numbers are rounded to 14 significant
digits. This is the form astropy 4 to 8 wrote for every one of these cards,
so that the documents written before these rules keep their digests.

Two things are not written by these rules, and come from astropy's own header
(``WCS.to_header(relax=True)``), with a digest that may then change with the
astropy version:

* the polynomial distortions wcslib holds apart from the ``wcsprm``
  (``CPDISj``/``CQDISi`` with their ``DPj.*``/``DQi.*`` records: DSS plate
  solutions, TPD; and TPV, whose ``PVi_m`` cards and ``-TPV`` CTYPE come from
  them): astropy gives no access to them but through its header, so those
  cards (and the CTYPE of those axes) are copied from it;
* a WCS with a feature none of the rules above covers (time cards such as
  ``DATE-AVG``/``MJDREF``/``TIMESYS``, ``OBSGEO-*``, ``VELANGL``, solar
  ``aux`` values, alternate-key or binary-table WCS...: see `_UNCOVERED`):
  its cards are astropy's header, whole (:func:`astropy_cards`).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import math
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, WCSHDO_P14, FITSFixedWarning, WCSHDO_all

__all__ = ["canonical_cards", "astropy_cards", "uncovered_features"]


SIP_KEY = re.compile(r"^(A|B|AP|BP)_(\d+)_(\d+)$")
AXIS_KEY = re.compile(r"^(CRPIX|CRVAL|CDELT)(\d+)$")
MATRIX_KEY = re.compile(r"^PC(\d+)_(\d+)$")
PV_KEY = re.compile(r"^PV(\d+)_(\d+)$")
#: Cards of the distortions wcslib keeps in its ``disprm`` (not in the wcsprm).
_DISTORTION_KEY = re.compile(r"^(CPDIS\d+|CQDIS\d+|DP\d+\..*|DQ\d+\..*)$")
#: The same, as wcslib writes them (``DQ1     = 'AXIS.1: 1'``: a record-valued card).
_RAW_DISTORTION_KEY = re.compile(r"^(CPDIS|CQDIS|DP|DQ)\d+$")

#: Cards with the value wcslib gives when a header has none, which astropy writes
#: in some versions and not in others (MJDREF = 0.0 since astropy 4.x; DATEREF,
#: MJDREFI, MJDREFF in others): left out of the canonical cards.
DEFAULT_CARDS: dict[str, object] = {
    "MJDREF": 0.0, "MJDREFI": 0.0, "MJDREFF": 0.0, "DATEREF": "1858-11-17",
}

#: wcsprm attributes no rule of :func:`canonical_cards` writes: a WCS where one
#: differs from a new WCS's value is written by astropy (:func:`astropy_cards`).
_UNCOVERED = (
    "alt", "colnum", "colax", "cubeface", "velref", "bepoch", "jepoch",
    "dateavg", "datebeg", "dateend", "mjdavg", "mjdbeg", "mjdend",
    "mjdref", "obsgeo", "obsorbit", "plephem", "telapse", "timedel", "timeoffs",
    "timepixr", "timesys", "timeunit", "timrder", "timsyer", "trefdir",
    "trefpos", "tstart", "tstop", "velangl", "xposure", "czphs", "cperi",
)
_UNCOVERED_AUX = (
    "rsun_ref", "dsun_obs", "crln_obs", "hgln_obs", "hglt_obs",
    "a_radius", "b_radius", "c_radius", "blon_obs", "blat_obs", "bdis_obs",
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence astropy's warnings about the quirky headers it fixes."""
    # astropy "fixes" quirky headers (old RADECSYS, missing -SIP, DATE-OBS formats) and
    # warns about each; a Wcs accepts those fixes silently, as the issue asks it to.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def plain(value: Any) -> Any:
    """A JSON-ready Python value; -0.0 becomes 0.0 so equal values give equal dicts."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) + 0.0
    return str(value)


def without_defaults(cards: dict[str, Any]) -> dict[str, Any]:
    """``cards`` without the cards of `DEFAULT_CARDS` holding their default value."""
    if not any(k in cards for k in DEFAULT_CARDS):
        return cards
    return {
        k: v for k, v in cards.items()
        if k not in DEFAULT_CARDS or v != DEFAULT_CARDS[k] or isinstance(v, bool)
    }


def sip_matrices(wcs: WCS) -> dict[str, np.ndarray | None]:
    sip = wcs.sip
    if sip is None:
        return {}
    return {"A": sip.a, "B": sip.b, "AP": sip.ap, "BP": sip.bp}


def exact_value(wcs: WCS, key: str) -> float | None:
    """The full-precision double behind header card ``key``, or None if not numeric."""
    w = wcs.wcs
    if key in ("LONPOLE", "LATPOLE"):
        return float(w.lonpole if key == "LONPOLE" else w.latpole)
    if m := AXIS_KEY.match(key):
        i = int(m.group(2)) - 1
        source = {"CRPIX": w.crpix, "CRVAL": w.crval, "CDELT": w.get_cdelt()}[m.group(1)]
        return float(source[i])
    if m := MATRIX_KEY.match(key):
        return float(w.get_pc()[int(m.group(1)) - 1, int(m.group(2)) - 1])
    if m := PV_KEY.match(key):
        wanted = (int(m.group(1)), int(m.group(2)))
        for i, k, value in w.get_pv():
            if (i, k) == wanted:
                return float(value)
        return None
    if m := SIP_KEY.match(key):
        matrix = sip_matrices(wcs).get(m.group(1))
        if matrix is not None:
            return float(matrix[int(m.group(2)), int(m.group(3))])
    return None


def _astropy_header(wcs: WCS) -> dict[str, Any]:
    """astropy's header cards for ``wcs`` (no commentary, no undefined values)."""
    with quiet():
        header = wcs.to_header(relax=True)
    cards: dict[str, Any] = {}
    for key in header.keys():
        value = header[key]
        if key in ("", "COMMENT", "HISTORY") or isinstance(value, fits.card.Undefined):
            continue
        cards[key] = value
    return cards


def astropy_cards(wcs: WCS) -> dict[str, Any]:
    """The canonical cards as astropy's header gives them, with the exact numbers.

    The form of every Wcs before compstore wrote its own cards; still the form
    of a WCS with `uncovered_features`.
    """
    cards: dict[str, Any] = {}
    for key, value in sorted(_astropy_header(wcs).items()):
        if isinstance(value, float):
            exact = exact_value(wcs, key)
            value = value if exact is None else exact
        cards[key] = plain(value)
    return without_defaults(cards)


def _same(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


@functools.lru_cache(maxsize=8)
def _new_values(naxis: int) -> dict[str, Any]:
    """The `_UNCOVERED` (and ``aux.*``) values of a new WCS of ``naxis`` axes."""
    fresh = WCS(naxis=naxis).wcs
    values = {name: getattr(fresh, name) for name in _UNCOVERED}
    values.update({f"aux.{name}": getattr(fresh.aux, name) for name in _UNCOVERED_AUX})
    return values


def uncovered_features(wcs: WCS) -> list[str]:
    """The wcsprm attributes of ``wcs`` that no rule of :func:`canonical_cards` writes.

    Those whose value differs from a new WCS's (of as many axes); empty for a
    WCS the rules cover whole.
    """
    w = wcs.wcs
    new = _new_values(w.naxis)
    found = [name for name in _UNCOVERED if not _same(getattr(w, name), new[name])]
    if w.dateref not in ("", DEFAULT_CARDS["DATEREF"]):  # wcslib leaves it unset, or sets MJD 0
        found.append("dateref")
    found += [
        f"aux.{name}" for name in _UNCOVERED_AUX
        if not _same(getattr(w.aux, name), new[f"aux.{name}"])
    ]
    return found


def _rounded(value: float) -> float:
    """``value`` to 14 significant digits (as wcslib writes it for astropy)."""
    return float(f"{value:.14G}")


def _defined(value: float) -> bool:
    return not math.isnan(value)


def _raw_units(w: Any) -> list[str]:
    # The unit strings wcslib holds (``w.cunit[i]`` is an astropy Unit, whose text
    # can differ: 'm/s' is 'm / s'); the proxy's repr is the list of those strings.
    try:
        units = ast.literal_eval(repr(w.cunit))
    except (ValueError, SyntaxError):
        units = None
    if isinstance(units, list) and len(units) == w.naxis and all(isinstance(u, str) for u in units):
        return units
    return [str(u) for u in w.cunit]  # pragma: no cover - astropy's proxy repr changed


def _axis_cards(w: Any, cards: dict[str, Any]) -> None:
    n = w.naxis
    crpix, crval, cdelt, pc = w.crpix, w.crval, w.get_cdelt(), w.get_pc()
    units = _raw_units(w)
    cards["WCSAXES"] = n
    for i in range(n):
        a = i + 1
        cards[f"CRPIX{a}"] = float(crpix[i])
        cards[f"CRVAL{a}"] = float(crval[i])
        cards[f"CDELT{a}"] = float(cdelt[i])
        for key, text in ((f"CTYPE{a}", w.ctype[i]), (f"CUNIT{a}", units[i]), (f"CNAME{a}", w.cname[i])):
            if text:
                cards[key] = str(text)
        for key, value in ((f"CRDER{a}", w.crder[i]), (f"CSYER{a}", w.csyer[i])):
            if _defined(value):
                cards[key] = _rounded(value)
        for j in range(n):
            if pc[i, j] != (1.0 if i == j else 0.0):
                cards[f"PC{a}_{j + 1}"] = float(pc[i, j])
    for i, m, value in w.get_pv():
        cards[f"PV{i}_{m}"] = float(value)
    for i, m, text in w.get_ps():
        cards[f"PS{i}_{m}"] = str(text)


def _frame_cards(w: Any, cards: dict[str, Any]) -> None:
    for key, value in (("LONPOLE", w.lonpole), ("LATPOLE", w.latpole)):
        if _defined(value):
            cards[key] = float(value)
    for key, text in (
        ("RADESYS", w.radesys), ("WCSNAME", w.name), ("DATE-OBS", w.dateobs),
        ("SPECSYS", w.specsys), ("SSYSOBS", w.ssysobs), ("SSYSSRC", w.ssyssrc),
    ):
        if text:
            cards[key] = str(text)
    for key, value in (
        ("EQUINOX", w.equinox), ("MJD-OBS", w.mjdobs), ("VELOSYS", w.velosys),
        ("ZSOURCE", w.zsource),
    ):
        if _defined(value):
            cards[key] = _rounded(value)
    for key, value in (("RESTFRQ", w.restfrq), ("RESTWAV", w.restwav)):
        if value != 0.0:
            cards[key] = _rounded(value)


def _sip_cards(wcs: WCS, cards: dict[str, Any]) -> None:
    matrices = sip_matrices(wcs)
    if not matrices:
        return
    for name, matrix in matrices.items():
        if matrix is None:
            continue
        size = matrix.shape[0]
        cards[f"{name}_ORDER"] = size - 1
        for p in range(size):
            for q in range(size - p):
                if matrix[p, q] != 0.0:
                    cards[f"{name}_{p}_{q}"] = float(matrix[p, q])
    ctypes = [k for k in cards if re.fullmatch(r"CTYPE\d+", k)]
    if any(not str(cards[k]).endswith("-SIP") for k in ctypes):
        for key in ctypes:
            cards[key] = str(cards[key]).strip("-SIP") + "-SIP"


def _distortion_cards(wcs: WCS, cards: dict[str, Any]) -> None:
    """Copy the cards of wcslib's ``disprm`` distortions (TPV, TPD, DSS) from astropy's header."""
    held_pv = {f"PV{i}_{m}" for i, m, _ in wcs.wcs.get_pv()}
    # wcslib's own header (a few microseconds; astropy's parse of it is the slow
    # part): read astropy's only if a distortion's keyword is there.
    raw = wcs.wcs.to_header(WCSHDO_all | WCSHDO_P14)
    keywords = {raw[i:i + 8].rstrip() for i in range(0, len(raw), 80)}
    if not any(_RAW_DISTORTION_KEY.match(k) or (PV_KEY.match(k) and k not in held_pv) for k in keywords):
        return
    header = _astropy_header(wcs)
    copied = [
        k for k in header
        if _DISTORTION_KEY.match(k) or (PV_KEY.match(k) and k not in held_pv)
    ]
    if not copied:
        return
    for key in copied:
        cards[key] = header[key]
    for key, value in header.items():  # the -TPV of a CTYPE is the distortion's too
        if re.fullmatch(r"CTYPE\d+", key):
            cards[key] = value


def canonical_cards(wcs: WCS) -> dict[str, Any]:
    """The canonical cards of ``wcs`` (set up: ``wcs.wcs.set()`` called), keys sorted.

    By the rules of this module's docstring; a WCS with `uncovered_features`
    gets :func:`astropy_cards` instead.
    """
    if uncovered_features(wcs):
        return astropy_cards(wcs)
    w = wcs.wcs
    cards: dict[str, Any] = {}
    _axis_cards(w, cards)
    _frame_cards(w, cards)
    _distortion_cards(wcs, cards)
    _sip_cards(wcs, cards)
    return without_defaults({key: plain(cards[key]) for key in sorted(cards)})
