"""FITS interoperability: Exposures and SourceCatalogs to and from FITS files.

The layout is described in ``docs/fits.md``. One idea per module:

- ``_cards``: header cards (exact floats, ``HIERARCH COMPSTORE`` leaf values such
  as Calib and VisitInfo, metadata) and the layout version;
- ``_wcs``: the Wcs and xy0 in headers (CRPIX shifted by xy0, LTV1/LTV2,
  lookup-table distortions);
- ``_hdus``: opening files, the atomic write, choosing and reading image HDUs;
- ``_exposure``: Exposures (the IMAGE/MASK/VARIANCE layout, ordinary images);
- ``_catalog``: SourceCatalogs;
- ``_ingest``: `ingest_fits` and `export_fits`, which put and get datasets
  through a Butler (public as `compstore.fitsio`; not imported here, because
  they sit above the Butler while the rest sits just above the object model).

This package imports `compstore.objects`; the object model imports it only
lazily, inside ``Exposure.read_fits``/``write_fits``,
``SourceCatalog.read_fits``/``write_fits`` and the astropy conversions.
"""

from __future__ import annotations

from ._catalog import read_catalog, write_catalog
from ._exposure import read_exposure, write_exposure
from ._hdus import HduSpec, select_image_hdu

__all__ = [
    "HduSpec",
    "read_catalog",
    "read_exposure",
    "select_image_hdu",
    "write_catalog",
    "write_exposure",
]
