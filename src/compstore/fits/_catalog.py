"""SourceCatalogs to and from FITS files.

A SourceCatalog file holds a PRIMARY HDU (Calib cards), a ``CATALOG`` binary table
(with TUNITn units) and, when the catalog has a Wcs, an empty ``WCS`` image HDU whose
header is that Wcs.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

from compstore.errors import FitsFormatError
from compstore.objects import Calib, SourceCatalog

from ._cards import _NS, FORMAT_VERSION, _card, _leaf_cards, _leaf_dict
from ._hdus import _hdu_of, _open, _read_errors, _write_atomic
from ._wcs import _lookup_parts, _wcs_cards, _wcs_from_header

__all__ = ["read_catalog", "write_catalog"]


def write_catalog(catalog: SourceCatalog, path: str | os.PathLike[str]) -> None:
    """Write ``catalog`` to a FITS file at ``path`` (replacing any file there).

    The table goes to a binary-table HDU named CATALOG (units as TUNITn), the Calib to
    ``COMPSTORE CALIB <field>`` cards of the primary header, and the Wcs, if any, to the
    header of an empty image HDU named WCS (``WCS(fits.open(p)["WCS"].header)`` works).

    Raises
    ------
    FitsFormatError
        If a column or value cannot be stored in FITS (e.g. an object column).
    OSError
        If the file cannot be written.
    """
    primary = fits.PrimaryHDU()
    header = primary.header
    header.append(_card(f"{_NS} TYPE", "SourceCatalog", "compstore object type"))
    header.append(_card(f"{_NS} FORMAT", FORMAT_VERSION, "compstore FITS layout version"))
    if catalog.calib is not None:
        header.extend(_leaf_cards("CALIB", catalog.calib.to_dict()))
    table = Table(catalog.table, copy=False)
    meta = dict(table.meta)
    try:
        bare = Table(table, copy=False)
        bare.meta.clear()  # meta goes to JSON below; astropy would mangle nested values
        int8 = [c.name for c in bare.itercols() if c.dtype.base == np.int8]
        for name in int8:
            # astropy's table_to_hdu writes int8 as logical 'L', losing every value;
            # widen to int16 on disk and narrow back on read.
            bare[name] = bare[name].astype(np.int16)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            table_hdu = fits.table_to_hdu(bare)
    except (ValueError, TypeError) as exc:
        raise FitsFormatError(f"{path}: cannot write the catalog table as FITS: {exc}") from exc
    table_hdu.name = "CATALOG"
    masked = [c.name for c in bare.itercols() if getattr(c, "mask", None) is not None]
    if masked:
        table_hdu.header.append(_card(f"{_NS} MASKED JSON", json.dumps(masked)))
    if int8:
        table_hdu.header.append(_card(f"{_NS} INT8 JSON", json.dumps(int8)))
    if meta:
        try:
            text = json.dumps(meta, ensure_ascii=True, allow_nan=True)
        except TypeError as exc:
            raise FitsFormatError(f"{path}: table meta is not JSON-serializable: {exc}") from exc
        table_hdu.header.append(_card(f"{_NS} META JSON", text))
    hdus: list[Any] = [primary, table_hdu]
    if catalog.wcs is not None:
        wcs_hdu = fits.ImageHDU(name="WCS")
        for card in _wcs_cards(catalog.wcs, (0, 0)):
            wcs_hdu.header.append(card)
        hdus.append(wcs_hdu)
        hdus += _lookup_parts(catalog.wcs, (0, 0))[1]
    _write_atomic(fits.HDUList(hdus), path)


def read_catalog(path: str | os.PathLike[str]) -> SourceCatalog:
    """Read a SourceCatalog written by :func:`write_catalog`, or any FITS binary table.

    For a foreign file the first binary table is read, with no Wcs or Calib unless a
    WCS HDU or compstore Calib cards are present.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    FitsFormatError
        If the file is not FITS, holds no binary table, or its compstore cards are
        malformed.
    """
    name, hdul = _open(path)
    with _read_errors(name, "a SourceCatalog"), hdul:
        table_hdu = _hdu_of(hdul, "CATALOG")
        if table_hdu is None:
            table_hdu = next((h for h in hdul if isinstance(h, fits.BinTableHDU)), None)
        if not isinstance(table_hdu, fits.BinTableHDU):
            raise FitsFormatError(f"{name}: no binary-table HDU to read as a catalog")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)
            # mask_invalid=False: a NaN in a plain float column is a value, not a gap.
            table = Table.read(table_hdu, character_as_bytes=False, mask_invalid=False)
        for col_name in json.loads(table_hdu.header.get(f"{_NS} MASKED JSON", "[]")):
            column = table[col_name]
            if not hasattr(column, "mask") and column.dtype.kind == "f":
                # Masked float entries are stored as NaN (the FITS convention).
                table[col_name] = MaskedColumn(column, mask=np.isnan(column))
        for column in table.itercols():
            if not column.dtype.isnative:
                # FITS is big-endian; callers compare dtypes with native ones.
                table[column.name] = column.astype(column.dtype.newbyteorder("="))
        for col_name in json.loads(table_hdu.header.get(f"{_NS} INT8 JSON", "[]")):
            table[col_name] = table[col_name].astype(np.int8)
        meta_text = table_hdu.header.get(f"{_NS} META JSON")
        table.meta.clear()
        if meta_text is not None:
            table.meta.update(json.loads(meta_text))
        calib_dict = _leaf_dict(hdul[0].header, "CALIB")
        calib = None if calib_dict is None else Calib.from_dict(calib_dict)
        wcs_hdu = _hdu_of(hdul, "WCS")
        wcs = None
        if wcs_hdu is not None:
            wcs = _wcs_from_header(wcs_hdu.header, (0, 0), name, "WCS", hdul)
        return SourceCatalog(table, wcs=wcs, calib=calib)
