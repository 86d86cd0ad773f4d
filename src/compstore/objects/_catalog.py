"""SourceCatalog: an astropy Table of sources with the Wcs and Calib it was measured with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import astropy.units as u
from astropy.table import Column, Table, vstack

from compstore.errors import ObjectError

from ._calib import Calib
from ._wcs import Wcs
from ._frozen import Immutable, check_optional

__all__ = ["SourceCatalog"]

# Marks "not given" in replace(), where None is a real value (drop the Wcs or Calib).
_KEEP: Any = object()


class SourceCatalog(Immutable):
    """A table of sources (one row each) and the Wcs and Calib that go with it.

    The usual columns are ``id`` (int64), ``x``, ``y`` (float64, parent pixels),
    ``ra``, ``dec`` (float64, deg), ``instflux``, ``instflux_err`` (float64, counts)
    and int32 or bool flag columns; none is required, since a column-partitioned
    catalog holds only some of them.

    Parameters
    ----------
    table : astropy.table.Table
        The rows; referenced, not copied (anything ``Table()`` accepts is converted).
    wcs : Wcs, optional
    calib : Calib, optional

    Raises
    ------
    ObjectError
        If ``table`` cannot be made a Table, or ``wcs``/``calib`` have the wrong type.

    Notes
    -----
    The catalog's attributes cannot be reassigned; use :meth:`replace`. The Table
    itself is astropy's, mutable unless its columns came read-only from a store.
    """

    __slots__ = ("_table", "_wcs", "_calib", "__weakref__")
    _how_to_change = "; use replace()"
    _table: Table
    _wcs: Wcs | None
    _calib: Calib | None

    def __init__(self, table: Table | Any, wcs: Wcs | None = None, calib: Calib | None = None):
        if not isinstance(table, Table):
            try:
                table = Table(table)
            except (TypeError, ValueError) as exc:
                raise ObjectError(f"SourceCatalog needs an astropy Table: {exc}") from exc
        check_optional(wcs, Wcs, "wcs")
        check_optional(calib, Calib, "calib")
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_wcs", wcs)
        object.__setattr__(self, "_calib", calib)

    @property
    def table(self) -> Table:
        """The astropy Table of sources."""
        return self._table

    @property
    def wcs(self) -> Wcs | None:
        """The Wcs that maps the catalog's ``x, y`` to ``ra, dec``."""
        return self._wcs

    @property
    def calib(self) -> Calib | None:
        """The photometric calibration of the catalog's instrumental fluxes."""
        return self._calib

    def to_table(self) -> Table:
        """The rows as a new astropy Table (a `QTable` if it was put as one).

        The new table shares the column data (read-only when it came from a
        store), so adding, removing or renaming its columns leaves this catalog
        alone; copy it (``cat.to_table().copy()``) to change values. The Wcs and
        Calib are not part of the table: keep them from ``wcs`` and ``calib``.
        """
        return self._table.__class__(self._table, copy=False)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column names, in table order."""
        return tuple(self._table.colnames)

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, name: str) -> Column:
        """The column called ``name``.

        Raises
        ------
        ObjectError
            If there is no such column; the message lists those there are.
        """
        self._check_names([name])
        return self._table[name]

    def __contains__(self, name: object) -> bool:
        return name in self._table.colnames

    def _check_names(self, names: Iterable[str]) -> None:
        missing = [n for n in names if n not in self._table.colnames]
        if missing:
            raise ObjectError(
                f"no column(s) {', '.join(map(repr, missing))} in this catalog; "
                f"columns: {', '.join(self._table.colnames)}"
            )

    # -- derived catalogs ---------------------------------------------------------
    def replace(self, *, table: Table = _KEEP, wcs: Wcs | None = _KEEP, calib: Calib | None = _KEEP
                ) -> SourceCatalog:
        """A new catalog with some parts replaced and the others shared (same objects).

        Raises
        ------
        ObjectError
            If a new value has the wrong type.
        """
        return SourceCatalog(
            self._table if table is _KEEP else table,
            self._wcs if wcs is _KEEP else wcs,
            self._calib if calib is _KEEP else calib,
        )

    def select_columns(self, names: Sequence[str]) -> SourceCatalog:
        """A catalog with only ``names`` (in that order), sharing column data, Wcs and Calib.

        Raises
        ------
        ObjectError
            If a name is not a column (the message lists the columns).
        """
        if isinstance(names, str):
            names = [names]
        names = list(names)
        self._check_names(names)
        # copy=False: a column selection must not duplicate (possibly store-backed) data.
        table = Table([self._table[n] for n in names], copy=False, meta=self._table.meta)
        return self.replace(table=table)

    @classmethod
    def concatenate(cls, catalogs: Sequence[SourceCatalog]) -> SourceCatalog:
        """Stack catalogs row-wise (patch catalogs into a tract catalog).

        All catalogs must have the same column names, dtypes and units. The result
        keeps the Wcs (and Calib) when every input's is equal by value (the first
        input's object is kept), else None; table metadata keeps the keys on which
        every input agrees.

        Raises
        ------
        ObjectError
            If ``catalogs`` is empty, holds a non-catalog, or the columns disagree.
        """
        catalogs = list(catalogs)
        if not catalogs:
            raise ObjectError("concatenate() needs at least one SourceCatalog")
        for cat in catalogs:
            if not isinstance(cat, SourceCatalog):
                raise ObjectError(f"concatenate() takes SourceCatalogs, got {type(cat).__name__}")
        first = catalogs[0]
        schema = _schema(first.table)
        for i, cat in enumerate(catalogs[1:], start=1):
            other = _schema(cat.table)
            if other != schema:
                raise ObjectError(
                    f"catalog {i} has columns {other}, catalog 0 has {schema}; "
                    "concatenate needs equal names, dtypes and units"
                )
        table = vstack(
            [cat.table for cat in catalogs], join_type="exact", metadata_conflicts="silent"
        )
        table.meta = _agreed_meta([cat.table.meta for cat in catalogs])
        return cls(
            table,
            _shared([cat.wcs for cat in catalogs]),
            _shared([cat.calib for cat in catalogs]),
        )

    def calibrated_flux(self, column: str = "instflux") -> u.Quantity:
        """The instrumental flux ``column`` calibrated to nJy with this catalog's Calib.

        Raises
        ------
        ObjectError
            If the catalog has no Calib or no such column.
        """
        if self._calib is None:
            raise ObjectError("this catalog has no Calib; attach one with replace(calib=...)")
        values = self[column]
        return self._calib.instflux_to_nanojansky(values.data)

    # -- FITS (implemented in _fits.py) ---------------------------------------------
    @classmethod
    def read_fits(cls, path: str | Path) -> SourceCatalog:
        """Read a SourceCatalog from a FITS file (see ``compstore.objects._fits``).

        Raises
        ------
        FitsFormatError
            If the file cannot be read as a catalog.
        """
        from compstore.objects import _fits

        return _fits.read_catalog(path)

    def write_fits(self, path: str | Path) -> None:
        """Write this catalog to a FITS file (see ``compstore.objects._fits``)."""
        from compstore.objects import _fits

        _fits.write_catalog(self, path)


    def __repr__(self) -> str:
        return (
            f"SourceCatalog({len(self)} rows, columns={list(self.columns)}, "
            f"wcs={'yes' if self._wcs is not None else 'no'}, "
            f"calib={self._calib!r})"
        )


def _schema(table: Table) -> list[tuple[str, str, str]]:
    return [(name, str(table[name].dtype), str(table[name].unit)) for name in table.colnames]


def _shared(values: list[Any]) -> Any:
    """The first value when all are equal (by value), else None."""
    first = values[0]
    if first is None or any(v is None or v != first for v in values[1:]):
        return None
    return first


def _agreed_meta(metas: list[Any]) -> dict[str, Any]:
    first = metas[0]
    agreed = {}
    for key, value in first.items():
        try:
            if all(key in m and bool(m[key] == value) for m in metas[1:]):
                agreed[key] = value
        except (TypeError, ValueError):  # e.g. array values whose == is not a bool
            continue
    return agreed
