"""Ingest FITS files into a repository and export datasets back to FITS.

These are the public functions behind ``compstore ingest`` and
``compstore export``; the CLI only parses arguments and calls them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

from .butler import Butler
from .errors import DataIdError, FitsFormatError, StorageClassError
from .objects import Exposure, SourceCatalog
from .registry import DatasetRef

__all__ = ["export_fits", "ingest_fits"]

_READERS = {"Exposure": Exposure.read_fits, "SourceCatalog": SourceCatalog.read_fits}


def _header_data_id(path: Path, header_keys: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    try:
        with fits.open(path) as hdus:
            headers = [hdu.header for hdu in hdus]
    except (OSError, ValueError) as err:
        raise FitsFormatError(f"cannot read {path} as FITS: {err}") from None
    for dimension, keyword in header_keys.items():
        for header in headers:
            if keyword in header:
                values[dimension] = header[keyword]
                break
        else:
            raise DataIdError(
                f"{path} has no header keyword {keyword!r} for dimension {dimension!r}; "
                "give the value with data_id= (CLI: KEY=VALUE) instead"
            )
    return values


def ingest_fits(
    butler: Butler,
    paths: Iterable[str | os.PathLike[str]],
    dataset_type: str,
    data_id: Mapping[str, Any] | None = None,
    *,
    header_keys: Mapping[str, str] | None = None,
    progress: bool = False,
) -> list[DatasetRef]:
    """Read FITS files and put each as a dataset of ``dataset_type``.

    Parameters
    ----------
    butler
        A Butler with a run to write into.
    paths
        FITS files: exposures (image HDUs; any FITS image with a celestial WCS
        reads) or source catalogs (a binary table), as the dataset type's
        storage class says.
    dataset_type
        A registered dataset type whose storage class is Exposure or SourceCatalog.
    data_id
        Dimension values shared by every file.
    header_keys
        Dimension -> FITS keyword to read that dimension's value from each
        file (``{"visit": "VISIT", "detector": "DETECTOR"}``).
    progress
        Show a progress bar (tqdm) on stderr.

    Returns
    -------
    list of DatasetRef
        One per file, in order.

    Raises
    ------
    StorageClassError
        If the dataset type's storage class cannot be read from FITS.
    FitsFormatError
        If a file cannot be read.
    DataIdError
        If a file's data ID is incomplete.
    """
    dtype = butler.registry.get_dataset_type(dataset_type)
    reader = _READERS.get(dtype.storage_class)
    if reader is None:
        raise StorageClassError(
            f"dataset type {dataset_type!r} has storage class {dtype.storage_class!r}; "
            f"FITS ingest reads {', '.join(_READERS)} only"
        )
    files = [Path(p) for p in paths]
    if len(files) > 1 and not header_keys and data_id and set(data_id) >= set(dtype.dimensions):
        raise DataIdError(
            f"{len(files)} files would all get the data ID {dict(data_id)}; "
            "give header_keys (CLI: --header-key DIM=KEYWORD) so each file has its own"
        )
    iterator: Iterable[Path] = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc=f"ingest {dataset_type}", unit="file")
    refs = []
    for path in iterator:
        values = dict(data_id or {})
        if header_keys:
            values.update(_header_data_id(path, header_keys))
        refs.append(butler.put(reader(path), dataset_type, values))
    return refs


def export_fits(
    butler: Butler,
    name: str,
    data_id: Mapping[str, Any] | None,
    path: str | os.PathLike[str],
    *,
    collections: Sequence[str] | None = None,
) -> Path:
    """Write the dataset ``name`` with ``data_id`` to the FITS file ``path``.

    Raises
    ------
    StorageClassError
        If the dataset is not an Exposure or a SourceCatalog.
    DatasetNotFoundError
        If there is no such dataset.
    """
    obj = butler.get(name, data_id, collections=collections)
    if not isinstance(obj, (Exposure, SourceCatalog)):
        raise StorageClassError(
            f"{name!r} is a {type(obj).__name__}; FITS export writes Exposure and SourceCatalog"
        )
    out = Path(path)
    obj.write_fits(out)
    return out
