"""Errors of the blob store (defined in ``compstore.errors``, re-exported here)."""

from __future__ import annotations

from compstore.errors import InvalidDigestError, InvalidRegionError

__all__ = ["InvalidDigestError", "InvalidRegionError"]
