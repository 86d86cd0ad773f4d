"""Canonical JSON: one byte string for one JSON value, and its digest.

Rules (``docs/format.md``, "Documents"): keys sorted, no whitespace, UTF-8
(not ASCII-escaped), floats by ``repr`` (shortest round-tripping form), only
str keys, NaN and infinities rejected. Two values that compare equal as JSON
data give the same bytes; a tuple encodes as the list with the same items.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

import orjson

from compstore.cas._digest import digest_bytes
from compstore.errors import EncodingError

__all__ = ["MAX_JSON_DEPTH", "canonical_json", "digest_json", "parse_json"]

#: The deepest nesting of arrays and objects `parse_json` accepts. compstore's own
#: documents nest a few levels; a deeper one is damaged or hostile, and would
#: exhaust the stack of the recursive code that reads it (docs/format.md).
MAX_JSON_DEPTH: Final = 256

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=True,
)


def _check(value: Any, path: str) -> None:
    # json.dumps would turn {1: x} into {"1": x} and accept NaN-free numpy
    # scalars only sometimes; one explicit walk makes the accepted set exact.
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodingError(
                f"{value!r} at {path} has no canonical JSON encoding; "
                "store it as null or a string explicitly"
            )
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EncodingError(
                    f"key {key!r} at {path} is a {type(key).__name__}; canonical JSON keys are str"
                )
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    raise EncodingError(
        f"{type(value).__name__} at {path} is not a JSON value "
        "(use str, int, float, bool, None, list or dict; convert numpy scalars first)"
    )


def canonical_json(value: Any) -> bytes:
    """Encode a JSON value canonically.

    Parameters
    ----------
    value
        ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list``/``tuple``
        and ``dict`` with ``str`` keys, nested freely.

    Returns
    -------
    bytes
        UTF-8 JSON with sorted keys and ``,``/``:`` separators.

    Raises
    ------
    EncodingError
        On NaN or infinity, a non-str key, a non-JSON type, a cycle, or a
        string that is not valid Unicode (a lone surrogate).
    """
    try:
        _check(value, "$")
        return _ENCODER.encode(value).encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:  # circular reference, surrogates
        raise EncodingError(f"value has no canonical JSON encoding: {exc}") from exc
    except RecursionError as exc:
        raise EncodingError("value is nested too deeply (or is circular)") from exc


def digest_json(value: Any) -> str:
    """Return ``digest_bytes(canonical_json(value))``, the digest of a document.

    Raises
    ------
    EncodingError
        As :func:`canonical_json`.
    """
    return digest_bytes(canonical_json(value))


def parse_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON text into Python values, exactly as :func:`json.loads` does.

    orjson parses documents and manifests several times faster than the
    standard library (ad-hoc timing: a Wcs document 2.4 us against 20 us),
    and every read of a dataset parses several. Text orjson would read differently goes to
    ``json``: an integer of 19 or more digits (orjson turns integers beyond 64
    bits into floats) and what orjson refuses (``NaN``/``Infinity`` literals).

    Raises
    ------
    ValueError
        If ``data`` is not JSON (``json.JSONDecodeError``), or nests arrays and
        objects deeper than `MAX_JSON_DEPTH`.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    value = _UNPARSED
    # C-speed screen first (any 19-digit run?), the exact regex only then: the
    # regex alone cost more than parsing a document (ad-hoc timing).
    if _NINETEEN_ZEROS not in raw.translate(_DIGITS_TO_ZERO) or _LONG_DIGITS.search(raw) is None:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    if value is _UNPARSED:
        try:
            value = json.loads(raw)
        except RecursionError:
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Nesting deeper than the limit takes 2 * limit bytes and more brackets than
    # the limit (two C-speed counts); only such a document is walked.
    if len(raw) > 2 * MAX_JSON_DEPTH and raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        _check_depth(value)
    return value


_UNPARSED: Final = object()


def _check_depth(value: Any) -> None:
    """Raise ValueError if ``value`` nests deeper than `MAX_JSON_DEPTH` (iteratively)."""
    if not isinstance(value, (dict, list)):
        return  # a lone string full of brackets
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= MAX_JSON_DEPTH:
                    raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
                stack.append((child, depth + 1))


_DIGITS_TO_ZERO: Final = bytes.maketrans(b"123456789", b"000000000")
_NINETEEN_ZEROS: Final = b"0" * 19
# An integer token of 19 or more digits: not after a digit or ".", not before a
# digit, "." or an exponent. (Float digits, like 0.00012345678901234567, are fine:
# orjson reads floats exactly as json does.)
_LONG_INTEGER: Final = r"(?<![0-9.])[0-9]{19,}(?![0-9.eE])"
_LONG_DIGITS: Final = re.compile(_LONG_INTEGER.encode())
