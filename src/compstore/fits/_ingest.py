"""Ingest FITS files into a repository and export datasets back to FITS.

These are the public functions behind ``compstore ingest`` and
``compstore export``; the CLI only parses arguments and calls them. Their public
home is `compstore.fitsio`. This module sits above the Butler (it writes datasets),
so the package's ``__init__`` does not import it: the rest of `compstore.fits`
stays below the Butler, just above the object model.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from astropy.io import fits

from compstore._progress import progress_bar
from compstore.butler import Butler
from compstore.errors import DataIdError, FitsFormatError, StorageClassError
from compstore.objects import Exposure, SourceCatalog
from compstore.registry import DatasetRef

from ._hdus import HduSpec, select_image_hdu

__all__ = ["export_fits", "ingest_fits"]

_READERS: dict[str, Callable[[Path], Any]] = {
    "Exposure": Exposure.read_fits,
    "SourceCatalog": SourceCatalog.read_fits,
}


def _header_data_id(
    path: Path, header_keys: Mapping[str, str], hdu: HduSpec | None
) -> dict[str, Any]:
    """Dimension values read from ``path``'s headers: the chosen HDU's header first."""
    values: dict[str, Any] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            with fits.open(path) as hdus:
                first = [] if hdu is None else [select_image_hdu(hdus, str(path), hdu).header]
                headers = first + [h.header for h in hdus]
    except (OSError, ValueError, TypeError, IndexError, fits.VerifyError) as err:
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


def _hdu_list(hdu: HduSpec | Sequence[HduSpec] | None) -> list[HduSpec | None]:
    # A tuple is one HDU, (EXTNAME, EXTVER); a list names several.
    if isinstance(hdu, list):
        if not hdu:
            raise FitsFormatError("hdu= is an empty list; name at least one HDU, or give None")
        return list(hdu)
    return [hdu]  # type: ignore[list-item]


def ingest_fits(
    butler: Butler,
    paths: Iterable[str | os.PathLike[str]],
    dataset_type: str,
    data_id: Mapping[str, Any] | None = None,
    *,
    header_keys: Mapping[str, str] | None = None,
    hdu: HduSpec | list[HduSpec] | None = None,
    progress: bool = False,
) -> list[DatasetRef]:
    """Read FITS files and put each as a dataset of ``dataset_type``, in one transaction.

    Every dataset of the call is registered, or none is: when a file fails to read or
    to store, nothing of the call is registered. Re-running the same call is a no-op
    that returns the same refs: a dataset the run has already, with the same data ID
    and the same content, is not written again (other content under that data ID is
    a conflict).

    Parameters
    ----------
    butler
        A Butler with a run to write into.
    paths
        FITS files: exposures (image HDUs; any FITS image reads, see
        `compstore.Exposure.read_fits`) or source catalogs (a binary table), as the
        dataset type's storage class says.
    dataset_type
        A registered dataset type whose storage class is Exposure or SourceCatalog.
    data_id
        Dimension values shared by every file.
    header_keys
        Dimension -> FITS keyword to read that dimension's value from each
        file (``{"visit": "VISIT", "detector": "DETECTOR"}``); the chosen HDU's
        header is searched first, then every header of the file in order.
    hdu
        Which image HDU of each file to read (Exposure only): an index, an EXTNAME or
        ``(EXTNAME, EXTVER)``; a list of them reads each as its own dataset (then
        ``header_keys`` must tell them apart). A file with several images needs it.
    progress
        Show a progress bar (tqdm) on stderr.

    Returns
    -------
    list of DatasetRef
        One per file (per file and HDU), in order.

    Raises
    ------
    StorageClassError
        If the dataset type's storage class cannot be read from FITS, or ``hdu`` is
        given for catalogs.
    FitsFormatError
        If a file cannot be read (the message names it); nothing is registered.
    DataIdError
        If a file's data ID is incomplete, or two files (HDUs) would get the same one.
    ConflictingDatasetError
        If the run has a dataset with one of the data IDs and other content.
    """
    dtype = butler.registry.get_dataset_type(dataset_type)
    reader = _READERS.get(dtype.storage_class)
    if reader is None:
        raise StorageClassError(
            f"dataset type {dataset_type!r} has storage class {dtype.storage_class!r}; "
            f"FITS ingest reads {', '.join(_READERS)} only"
        )
    if hdu is not None and dtype.storage_class != "Exposure":
        raise StorageClassError(
            f"hdu= picks an image HDU; dataset type {dataset_type!r} holds "
            f"{dtype.storage_class}s, read from the file's first binary table"
        )
    hdus = _hdu_list(hdu)
    # Every data ID first (headers only): two files with one data ID are refused
    # before any pixels are read or written.
    plan: list[tuple[Path, HduSpec | None, dict[str, Any]]] = []
    first_with: dict[tuple[tuple[str, Any], ...], str] = {}
    for path in (Path(p) for p in paths):
        for which in hdus:
            values = dict(data_id or {})
            if header_keys:
                values.update(_header_data_id(path, header_keys, which))
            where = str(path) if which is None else f"{path} HDU {which!r}"
            key = tuple(sorted((k, repr(v)) for k, v in values.items()))
            if key in first_with:
                raise DataIdError(
                    f"{first_with[key]} and {where} would get the same data ID {values}; "
                    "give header_keys (CLI: --header-key DIM=KEYWORD) so each has its own"
                )
            first_with[key] = where
            plan.append((path, which, values))
    iterator = progress_bar(plan, enabled=progress, desc=f"ingest {dataset_type}", unit="file")

    def read(path: Path, which: HduSpec | None) -> Any:
        return reader(path) if which is None else Exposure.read_fits(path, which)

    # Lazily: one file's object in memory at a time; rows commit together at the end.
    return butler.put_stream(
        ((read(path, which), dataset_type, values) for path, which, values in iterator),
        skip_same=True,
    )


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
