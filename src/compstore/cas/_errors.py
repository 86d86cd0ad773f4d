"""Errors the blob store adds under ``compstore.errors.BlobStoreError``.

They are both blob-store errors and ``ValueError`` so that a caller passing a
bad argument can catch either. (Candidates to move into ``compstore.errors``
once the error tree there is next revised; their codes are stable already.)
"""

from __future__ import annotations

from compstore.errors import BlobStoreError

__all__ = ["InvalidDigestError", "InvalidRegionError"]


class InvalidDigestError(BlobStoreError, ValueError):
    """A digest string is not 32 lowercase hexadecimal characters."""

    code = "digest-invalid"


class InvalidRegionError(BlobStoreError, ValueError):
    """A region is not a tuple of at most ``ndim`` slices."""

    code = "region-invalid"
