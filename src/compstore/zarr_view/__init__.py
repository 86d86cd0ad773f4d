"""Datasets presented as read-only zarr v3 groups, for zarr, xarray and Dask.

`Butler.zarr_store` is the entry point; ``docs/concepts.md`` ("Opening datasets
with zarr, xarray and Dask") shows the layout and how to use it.
"""

from __future__ import annotations

from ._store import DatasetZarrStore
from ._view import CHUNK_BYTES, ZarrView

__all__ = ["CHUNK_BYTES", "DatasetZarrStore", "ZarrView"]
