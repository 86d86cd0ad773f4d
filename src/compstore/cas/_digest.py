"""Content digests: xxh3-128 (or blake3-128) over a kind tag, a small header and the content.

Every digest is 32 lowercase hexadecimal characters. The hash input always
starts with a kind tag, so bytes and an array never share a digest even when
the array's buffer equals the bytes. The tags and the header layout are part
of the on-disk format (``docs/spec/format.md``, "Digests"): changing them changes
every digest.

The module functions (`digest_bytes`, `digest_array`, `array_hasher`) are
xxh3-128, the algorithm of every format 1 and 2 repository and the default of
format 3. A format 3 repository records its algorithm (`DigestAlgorithm`,
`digest_algorithm`): ``"xxh3-128"`` or ``"blake3"`` (BLAKE3 cut to 128 bits,
so that a digest is 32 hex characters whatever the algorithm).
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
    "BLAKE3",
    "BYTES_TAG",
    "DIGEST_ALGORITHMS",
    "XXH3_128",
    "DigestAlgorithm",
    "array_bytes",
    "array_hasher",
    "array_header",
    "check_digest",
    "digest_algorithm",
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
    return XXH3_128.digest_bytes(data)


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
    return XXH3_128.digest_array(array)


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
    return XXH3_128.array_hasher(dtype, shape)


def array_bytes(arr: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, as one flat byte view (no copy).

    A uint8 view reads any dtype (datetime64, float16...) without a copy.
    """
    return arr.reshape(-1).view(np.uint8).data


class _Blake3Hasher:
    """A blake3 hasher whose ``hexdigest()`` is 128 bits (32 hex), as every digest is."""

    __slots__ = ("_h",)

    def __init__(self, data: bytes) -> None:
        import blake3  # only a blake3 repository needs it

        # max_threads: 1 (the default); the shared pool hashes several arrays at once.
        self._h = blake3.blake3(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)

    def hexdigest(self) -> str:
        return str(self._h.hexdigest(length=16))


class DigestAlgorithm:
    """One digest algorithm of the format: how bytes and arrays are named.

    ``name`` is what a repository config records (``"xxh3-128"``, ``"blake3"``);
    the methods are `digest_bytes`, `digest_array` and `array_hasher` computed
    with this algorithm (same tags, same header, same layout).
    """

    __slots__ = ("_new", "name")

    def __init__(self, name: str, new: Any) -> None:
        self.name = name
        self._new = new

    def hasher(self, tag: bytes) -> Any:
        """A new hasher fed ``tag`` (``update(bytes)``, ``hexdigest()`` -> 32 hex)."""
        return self._new(tag)

    def digest_bytes(self, data: bytes | bytearray | memoryview) -> str:
        """Digest a byte string with this algorithm: see the module's `digest_bytes`."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise EncodingError(
                f"digest_bytes takes bytes, bytearray or memoryview, not {type(data).__name__}"
            )
        h = self._new(BYTES_TAG)
        h.update(data)
        return str(h.hexdigest())

    def array_hasher(self, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
        """Start an array's digest with this algorithm: see the module's `array_hasher`."""
        h = self._new(ARRAY_TAG)
        # The header is canonical JSON, which never holds a raw NUL: the NUL marks its end.
        h.update(array_header(dtype, shape))
        h.update(b"\x00")
        return h

    def digest_array(self, array: np.ndarray) -> str:
        """Digest an array with this algorithm: see the module's `digest_array`."""
        arr = np.asarray(array)
        h = self.array_hasher(arr.dtype, arr.shape)
        arr = np.ascontiguousarray(arr)
        if arr.size:
            h.update(array_bytes(arr))
        return str(h.hexdigest())

    def __repr__(self) -> str:
        return f"DigestAlgorithm({self.name!r})"


#: xxh3-128: fast, spreads accidental collisions, not collision resistant.
XXH3_128: Final = DigestAlgorithm("xxh3-128", xxhash.xxh3_128)
#: BLAKE3 cut to 128 bits: a cryptographic hash (second preimages cost 2**128).
BLAKE3: Final = DigestAlgorithm("blake3", _Blake3Hasher)
#: The algorithms a repository config may name, by name.
DIGEST_ALGORITHMS: Final = {a.name: a for a in (XXH3_128, BLAKE3)}


def digest_algorithm(name: object) -> DigestAlgorithm:
    """The algorithm called ``name`` (``"xxh3-128"`` or ``"blake3"``).

    Raises
    ------
    EncodingError
        If no algorithm has that name.
    """
    found = DIGEST_ALGORITHMS.get(name) if isinstance(name, str) else None
    if found is None:
        raise EncodingError(
            f"unknown digest algorithm {str(name)[:50]!r}: choose one of "
            f"{', '.join(repr(n) for n in DIGEST_ALGORITHMS)}"
        )
    return found
