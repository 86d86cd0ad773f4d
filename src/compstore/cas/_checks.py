"""What a blob store's readers share: decode errors, integrity checks, read-only results.

`LocalBlobStore` and `S3BlobStore` read the same array layout and check it
the same way: a whole read against the digest, a cut-out against its parts'
checksums or, for arrays without them, as a whole read (`checked_whole`).
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from compstore.cas._digest import XXH3_128, DigestAlgorithm
from compstore.cas._region import Region
from compstore.cas._sums import SUMS_MIN_BYTES
from compstore.cas._zarrfmt import ArrayMeta
from compstore.errors import CorruptBlobError

__all__ = [
    "DECODE_ERRORS",
    "bounded_put",
    "check_hash",
    "checked_document",
    "checked_whole",
    "corrupt_array",
    "hasher_for",
    "read_only_view",
    "region_box",
]

# What a damaged chunk or zarr.json makes numcodecs / json / numpy raise.
# (ArithmeticError: a zero or absurd size in a damaged zarr.json.)
DECODE_ERRORS: Final = (
    ValueError, RuntimeError, KeyError, TypeError, IndexError, ArithmeticError, MemoryError
)  # fmt: skip


def bounded_put(cache: dict[str, Any], key: str, value: Any, limit: int) -> None:
    """``cache[key] = value``, first dropping the oldest entry if ``cache`` holds ``limit``."""
    if len(cache) >= limit:
        cache.pop(next(iter(cache)), None)
    cache[key] = value


def corrupt_array(digest: str, what: str) -> CorruptBlobError:
    """The error for a damaged array component: what is wrong, and what to do."""
    return CorruptBlobError(
        f"array component {digest} {what}; the repository is damaged: "
        "run `compstore verify` to list what it breaks"
    )


def hasher_for(meta: ArrayMeta, region: Region, algorithm: DigestAlgorithm = XXH3_128) -> Any:
    """A hasher to check a read of ``region`` against the digest: None unless it is the whole array."""
    if region.lo != (0,) * len(meta.shape) or region.hi != meta.shape:
        return None
    return algorithm.array_hasher(meta.dtype, meta.shape)


def check_hash(digest: str, hasher: Any, missing: list[str] | None = None) -> None:
    """Raise `CorruptBlobError` unless ``hasher`` (fed a whole array) gives ``digest``.

    ``missing``: chunk files found missing (read as the fill value), named as the cause.
    """
    actual = hasher.hexdigest()
    if actual != digest:
        if missing:
            raise corrupt_array(digest, f"is missing its chunk file(s) {', '.join(missing)}")
        raise corrupt_array(digest, f"is corrupt: its content hashes to {actual}")


def checked_whole(meta: ArrayMeta) -> bool:
    """Whether a cut-out of an array without checksums is read whole, to be checked.

    Small arrays (as packed ones), and one compressed chunk, which is decoded
    whole for any cut-out anyway.
    """
    nbytes = math.prod(meta.shape) * meta.dtype.itemsize
    one_chunk = meta.shard is None and meta.chunk_shape == meta.shape
    return nbytes < SUMS_MIN_BYTES or (one_chunk and bool(meta.compressors))


def region_box(region: Region) -> tuple[slice, ...]:
    """The slices of ``region``'s bounding box."""
    return tuple(slice(a, b) for a, b in zip(region.lo, region.hi))


def checked_document(digest: str, data: bytes, algorithm: DigestAlgorithm = XXH3_128) -> bytes:
    """``data``, once it hashes to ``digest`` (~0.1 us a KiB: every document read is checked).

    Raises
    ------
    CorruptBlobError
        If it does not: a damaged document or manifest is never parsed.
    """
    actual = algorithm.digest_bytes(data)
    if actual != digest:
        raise CorruptBlobError(
            f"document {digest} is corrupt: its content hashes to {actual}; the repository "
            "is damaged: run `compstore verify` to list what it breaks"
        )
    return data


def read_only_view(box: np.ndarray, region: Region) -> np.ndarray:
    """Return a view of the part of ``box`` that ``region`` selects, which cannot be made writeable.

    A view of a read-only base refuses ``flags.writeable = True``, so an array
    shared through the identity cache cannot be changed under other holders.
    """
    box.flags.writeable = False
    return box[region.local_index]
