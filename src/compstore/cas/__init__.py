"""Content addressing: digests, canonical encodings and the zarr-backed blob store.

Everything here is bytes, arrays and digests; nothing knows astronomy. The
on-disk format is specified in ``docs/format.md``.
"""

from __future__ import annotations

from compstore.cas._digest import (
    BLAKE3,
    XXH3_128,
    DigestAlgorithm,
    check_digest,
    digest_algorithm,
    digest_array,
    digest_bytes,
    is_digest,
)
from compstore.cas._encoding import canonical_json, digest_json, parse_json
from compstore.cas._errors import InvalidDigestError, InvalidRegionError
from compstore.cas._jcs import jcs
from compstore.cas._local import LocalBlobStore
from compstore.cas._memory import MemoryBlobStore
from compstore.cas._s3 import S3BlobStore
from compstore.cas._store import ArrayInfo, BlobStore, check_array

__all__ = [
    "BLAKE3",
    "XXH3_128",
    "ArrayInfo",
    "BlobStore",
    "DigestAlgorithm",
    "InvalidDigestError",
    "InvalidRegionError",
    "LocalBlobStore",
    "MemoryBlobStore",
    "S3BlobStore",
    "canonical_json",
    "check_array",
    "check_digest",
    "digest_algorithm",
    "digest_array",
    "digest_bytes",
    "digest_json",
    "is_digest",
    "jcs",
    "parse_json",
]
