"""The old import path of `compstore.butler.gc` (garbage collection), kept working."""

from __future__ import annotations

from .butler.gc import (
    REPACK_BELOW,
    GcReport,
    collect_garbage,
    put_guard,
    remember_generation,
)

__all__ = ["REPACK_BELOW", "GcReport", "collect_garbage", "put_guard", "remember_generation"]
