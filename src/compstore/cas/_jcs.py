"""RFC 8785 (JSON Canonicalization Scheme, JCS): the document encoding of format 3.

Format 3 documents (a Wcs, a Calib, a manifest...) are these bytes, so that a
reader in any language with a JCS library recomputes their digests
(``docs/spec/format.md``, "Documents"). Differences from the format 1-2
encoding (`compstore.cas._encoding.canonical_json`, Python ``repr`` floats):

- numbers are written as ECMAScript ``Number.prototype.toString`` does:
  ``1.0`` is ``1``, ``1e-05`` is ``0.00001``, ``1e-07`` is ``1e-7``, ``1e16`` is
  ``10000000000000000``, ``-0.0`` is ``0``; an int and the float equal to it give
  the same bytes;
- integers MUST be within +-(2**53 - 1) (I-JSON: a JSON number is a double);
  a bigger one is refused (`EncodingError`): store it as a string;
- object keys are sorted by their UTF-16 code units (not code points).

The rest is as before: UTF-8, no whitespace, strings escaped as ``json`` does
with ``ensure_ascii=False`` (``\\"``, ``\\\\``, ``\\b\\f\\n\\r\\t``, other
controls as ``\\u00xx``), str keys only, NaN and infinities refused.
``tests/cas/test_jcs.py`` checks it against RFC 8785's published vectors and
the ``rfc8785`` package.
"""

from __future__ import annotations

import math
from json.encoder import encode_basestring
from typing import Any, Final

from compstore.errors import EncodingError

__all__ = ["MAX_SAFE_INTEGER", "jcs", "jcs_number"]

# Deeper is damaged, hostile or circular (compstore's documents nest a few levels).
_MAX_DEPTH: Final = 500

#: The largest integer a JCS document holds (2**53 - 1, I-JSON's "safe" range).
MAX_SAFE_INTEGER: Final = (1 << 53) - 1


def jcs_number(value: float) -> str:
    """ECMAScript ``Number.prototype.toString`` of a finite double (RFC 8785 section 3.2.2.3).

    Raises
    ------
    EncodingError
        If ``value`` is NaN or infinite.
    """
    r = repr(value)
    if "e" not in r and r[-1] != "n" and r[-1] != "f":
        # repr's fixed notation (1e-4 <= |x| < 1e16) has ECMAScript's digits; only an
        # integral value differs, by its ".0" (and -0.0 is "0").
        if r.endswith(".0"):
            r = r[:-2]
            return "0" if r == "-0" else r
        return r
    if not math.isfinite(value):
        raise EncodingError(
            f"{value!r} has no JSON encoding; store it as null or a string explicitly"
        )
    # General case: the shortest round-tripping digits (repr's) laid out by ECMAScript's rules.
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    if frac == "0":
        frac = ""
    raw = (whole + frac).lstrip("0")
    digits = raw.rstrip("0")
    k = len(digits)
    n = int(exp or 0) - len(frac) + (len(raw) - k) + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{head}e{'+' if e > 0 else '-'}{abs(e)}"


def _key(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


class _Refused(Exception):
    """A value with no encoding; ``where`` collects the path as the walk unwinds."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []


def _encode(value: Any, out: list[str], depth: int) -> None:
    t = type(value)
    if t is str:
        out.append(encode_basestring(value))
    elif t is float:
        try:
            out.append(jcs_number(value))
        except EncodingError:
            raise _Refused(f"{value!r} has no JSON encoding; store it as null or a string explicitly") from None
    elif t is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            out.append(str(value))
        else:
            raise _Refused(
                f"integer {value} is beyond +-(2**53 - 1), which a JSON number "
                "(a double) holds exactly: store it as a string"
            )
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, dict):
        if depth > _MAX_DEPTH:
            raise _Refused("value is nested too deeply (or is circular)")
        for key in value:
            if type(key) is not str:
                raise _Refused(f"key {key!r} is a {type(key).__name__}; canonical JSON keys are str")
        out.append("{")
        first = True
        for key, item in sorted(value.items(), key=_key):
            if not first:
                out.append(",")
            first = False
            out.append(encode_basestring(key))
            out.append(":")
            try:
                _encode(item, out, depth + 1)
            except _Refused as exc:
                exc.where.append(f".{key}")
                raise
        out.append("}")
    elif isinstance(value, (list, tuple)):
        if depth > _MAX_DEPTH:
            raise _Refused("value is nested too deeply (or is circular)")
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            try:
                _encode(item, out, depth + 1)
            except _Refused as exc:
                exc.where.append(f"[{i}]")
                raise
        out.append("]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        # int and float subclasses (an IntEnum, numpy.float64): their plain value.
        _encode(int(value) if isinstance(value, int) else float(value), out, depth)
    else:
        raise _Refused(
            f"{type(value).__name__} is not a JSON value "
            "(use str, int, float, bool, None, list or dict; convert numpy scalars first)"
        )


def jcs(value: Any) -> bytes:
    """Encode a JSON value by RFC 8785 (JCS).

    Parameters
    ----------
    value
        ``None``, ``bool``, ``int`` (within +-(2**53 - 1)), finite ``float``,
        ``str``, ``list``/``tuple`` and ``dict`` with ``str`` keys, nested freely.

    Raises
    ------
    EncodingError
        On NaN or infinity, an integer out of range, a non-str key, a non-JSON
        type, a cycle, or a string that is not valid Unicode (a lone surrogate).
    """
    out: list[str] = []
    try:
        _encode(value, out, 0)
    except _Refused as exc:
        where = "".join(reversed(exc.where[-40:])) + ("..." if len(exc.where) > 40 else "")
        raise EncodingError(f"{exc.reason} (at ${where})") from None
    except RecursionError as exc:
        raise EncodingError("value is nested too deeply (or is circular)") from exc
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EncodingError(f"value has no canonical JSON encoding: {exc}") from exc
