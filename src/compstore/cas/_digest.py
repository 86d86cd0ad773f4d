"""Content digests: xxh3-128 over a kind tag, a small header and the content.

Every digest is 32 lowercase hexadecimal characters. The hash input always
starts with a kind tag, so bytes and an array never share a digest even when
the array's buffer equals the bytes. The tags and the header layout are part
of the on-disk format (``docs/format.md``, "Digests"): changing them changes
every digest.
"""

from __future__ import annotations

import re
from typing import Any, Final

import numpy as np
import xxhash

from compstore.cas._errors import InvalidDigestError
from compstore.errors import EncodingError

__all__ = [
    "ARRAY_TAG",
    "BYTES_TAG",
    "array_bytes",
    "array_hasher",
    "array_header",
    "check_digest",
    "digest_array",
    "digest_bytes",
    "is_digest",
]

# Tags end in NUL: a tag is never a prefix of another tag plus content.
BYTES_TAG: Final = b"compstore:bytes:1\x00"
ARRAY_TAG: Final = b"compstore:array:1\x00"

_DIGEST_RE: Final = re.compile(r"[0-9a-f]{32}")


def is_digest(value: object) -> bool:
    """Return whether ``value`` is a well-formed digest string (32 lowercase hex)."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def check_digest(value: object) -> str:
    """Return ``value`` if it is a well-formed digest.

    Callers validate before building any path from a digest, so that a user
    string can never name a file.

    Raises
    ------
    InvalidDigestError
        If ``value`` is not a str of exactly 32 lowercase hexadecimal characters.
    """
    if not is_digest(value):
        raise InvalidDigestError(
            f"{value!r} is not a digest: expected 32 lowercase hexadecimal characters"
        )
    return value  # type: ignore[return-value]


def digest_bytes(data: bytes | bytearray | memoryview) -> str:
    """Digest a byte string (documents are digested this way).

    Parameters
    ----------
    data
        Any C-contiguous bytes-like object.

    Returns
    -------
    str
        ``xxh3_128(BYTES_TAG + data)`` as 32 lowercase hex characters.

    Raises
    ------
    EncodingError
        If ``data`` is not bytes-like.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EncodingError(
            f"digest_bytes takes bytes, bytearray or memoryview, not {type(data).__name__}"
        )
    h = xxhash.xxh3_128(BYTES_TAG)
    h.update(data)
    return h.hexdigest()


def _dtype_descr(dtype: np.dtype) -> object:
    if dtype.hasobject:
        raise EncodingError(
            f"arrays of dtype {dtype} hold Python objects and have no canonical encoding"
        )
    if dtype.fields is None:
        # dtype.str always spells the byte order ('<', '>' or '|'), never '='.
        return dtype.str
    # Structured: names, formats and offsets (padding included) all matter.
    return np.lib.format.dtype_to_descr(dtype)


def array_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """Return the header hashed before an array's bytes: canonical JSON of dtype and shape.

    Raises
    ------
    EncodingError
        If the dtype holds Python objects.
    """
    descr = _dtype_descr(dtype)
    dims = ",".join(str(int(n)) for n in shape)
    if isinstance(descr, str):
        # Same bytes canonical_json({"dtype": descr, "shape": list(shape)}) gives,
        # without its cost on the hot path (a test pins the equality).
        return f'{{"dtype":"{descr}","shape":[{dims}]}}'.encode()
    from compstore.cas._encoding import canonical_json

    return canonical_json({"dtype": descr, "shape": [int(n) for n in shape]})


def digest_array(array: np.ndarray) -> str:
    """Digest an array by its dtype (with byte order), shape and C-order bytes.

    A C-contiguous array is hashed in place; any other layout is copied once to
    C order, so a view and its contiguous copy share a digest.

    Parameters
    ----------
    array
        A numpy array (anything ``np.asarray`` accepts is converted first).

    Returns
    -------
    str
        ``xxh3_128(ARRAY_TAG + header + b"\\0" + bytes)`` as 32 lowercase hex.

    Raises
    ------
    EncodingError
        If the dtype is ``object`` or a structured dtype with object fields.
    """
    arr = np.asarray(array)
    h = array_hasher(arr.dtype, arr.shape)
    arr = np.ascontiguousarray(arr)
    if arr.size:
        h.update(array_bytes(arr))
    digest: str = h.hexdigest()
    return digest


def array_hasher(dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    """Start the digest of an array of ``dtype`` and ``shape``: a hasher fed all but its bytes.

    Feeding it the array's C-order bytes (`array_bytes`) whole, or in
    consecutive pieces, then ``hexdigest()`` gives `digest_array` (a store may
    hash while it writes).

    Raises
    ------
    EncodingError
        If the dtype holds Python objects.
    """
    h = xxhash.xxh3_128(ARRAY_TAG)
    # The header is canonical JSON, which never holds a raw NUL: the NUL marks its end.
    h.update(array_header(dtype, shape))
    h.update(b"\x00")
    return h


def array_bytes(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, as one flat byte view (no copy).

    A uint8 view reads any dtype (datetime64, float16...) without a copy.
    """
    return arr.reshape(-1).view(np.uint8).data
