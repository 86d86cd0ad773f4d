"""Ingest FITS files into a repository and export datasets back to FITS.

The public home of `ingest_fits` and `export_fits` (``compstore ingest`` and
``compstore export``); they are implemented in `compstore.fits._ingest`.
"""

from __future__ import annotations

from compstore.fits._ingest import export_fits, ingest_fits

__all__ = ["export_fits", "ingest_fits"]
