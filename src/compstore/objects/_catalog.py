"""SourceCatalog: an astropy Table of sources with the Wcs and Calib it was measured with."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import astropy.units as u
import numpy as np
from astropy.table import Column, Table, vstack
from astropy.wcs import WCS

from compstore.errors import ObjectError

from ._calib import Calib
from ._frozen import Immutable, check_optional
from ._wcs import Wcs

__all__ = ["CatalogMember", "SourceCatalog"]

# Marks "not given" in replace(), where None is a real value (drop the Wcs or Calib).
_KEEP: Any = object()


@dataclass(frozen=True, eq=False)
class CatalogMember:
    """Rows ``start:stop`` of a united catalog, with the Wcs and Calib they were measured with.

    A catalog made of others (``SourceCatalog.concatenate``, or an aggregate read
    through a Butler such as ``src_visit``) keeps one member per input, so each
    row is calibrated with its own input's Calib and placed with its own Wcs.

    Attributes
    ----------
    key : mapping of str to int or str
        What tells the member apart: its data ID values over the aggregated
        dimensions (``{"detector": 3}``), or ``{"member": i}``.
    start, stop : int
        Its rows in the united table.
    wcs, calib : optional
        The member's own objects (shared, not copied).
    """

    key: Mapping[str, int | str]
    start: int
    stop: int
    wcs: Wcs | None = None
    calib: Calib | None = None
    #: The member's table metadata, as it was (not merged).
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", MappingProxyType(dict(self.key)))
        check_optional(self.wcs, Wcs, "wcs")
        check_optional(self.calib, Calib, "calib")

    @property
    def rows(self) -> slice:
        """The member's rows, as a slice of the united table."""
        return slice(self.start, self.stop)


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
    wcs : Wcs or astropy.wcs.WCS, optional
        An astropy WCS is kept as a Wcs (every axis).
    calib : Calib, optional
    members : sequence of CatalogMember, optional
        For a catalog united from others: which rows came from which input,
        with that input's Wcs and Calib (contiguous, in row order, covering
        every row). ``calibrated_flux`` and ``sky_coordinates`` then use each
        row's own member.

    Raises
    ------
    ObjectError
        If ``table`` cannot be made a Table, ``wcs``/``calib`` have the wrong type,
        or ``members`` do not cover the rows in order.

    Notes
    -----
    The catalog's attributes cannot be reassigned; use :meth:`replace`. The Table
    itself is astropy's, mutable unless its columns came read-only from a store.
    """

    __slots__ = ("_table", "_wcs", "_calib", "_members", "__weakref__")
    _how_to_change = "; use replace()"
    _table: Table
    _wcs: Wcs | None
    _calib: Calib | None
    _members: tuple[CatalogMember, ...]

    def __init__(
        self,
        table: Table | Any,
        wcs: Wcs | None = None,
        calib: Calib | None = None,
        *,
        members: Sequence[CatalogMember] = (),
    ):
        if not isinstance(table, Table):
            try:
                table = Table(table)
            except (TypeError, ValueError) as exc:
                raise ObjectError(f"SourceCatalog needs an astropy Table: {exc}") from exc
        if isinstance(wcs, WCS):  # an astropy WCS is kept whole, as put() keeps one
            from ._astropy import wcs_from_astropy

            wcs = wcs_from_astropy(wcs, "wcs")
        check_optional(wcs, Wcs, "wcs")
        check_optional(calib, Calib, "calib")
        members = tuple(members)
        _check_members(members, len(table))
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_wcs", wcs)
        object.__setattr__(self, "_calib", calib)
        object.__setattr__(self, "_members", members)

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
        """The photometric calibration of the catalog's instrumental fluxes.

        None for a united catalog whose members' Calibs differ: each member
        keeps its own (:attr:`members`), and :meth:`calibrated_flux` uses them.
        """
        return self._calib

    @property
    def members(self) -> tuple[CatalogMember, ...]:
        """For a catalog united from others, its members (empty otherwise)."""
        return self._members

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
    def replace(
        self,
        *,
        table: Table = _KEEP,
        wcs: Wcs | None = _KEEP,
        calib: Calib | None = _KEEP,
        members: Sequence[CatalogMember] = _KEEP,
    ) -> SourceCatalog:
        """A new catalog with some parts replaced and the others shared (same objects).

        A new ``table`` drops the members (its rows may be others) unless
        ``members`` is given too.

        Raises
        ------
        ObjectError
            If a new value has the wrong type.
        """
        if members is _KEEP:
            members = self._members if table is _KEEP else ()
        return SourceCatalog(
            self._table if table is _KEEP else table,
            self._wcs if wcs is _KEEP else wcs,
            self._calib if calib is _KEEP else calib,
            members=members,
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
        table = self._table.__class__(
            [self._table[n] for n in names], names=names, copy=False, meta=self._table.meta
        )
        return self.replace(table=table, members=self._members)

    @classmethod
    def concatenate(
        cls,
        catalogs: Sequence[SourceCatalog],
        keys: Sequence[Mapping[str, int | str]] | None = None,
    ) -> SourceCatalog:
        """Stack catalogs row-wise (patches into a tract), keeping each one's Wcs and Calib.

        All catalogs must have the same column names, dtypes and units. The
        result has one :class:`CatalogMember` per input (its rows, Wcs, Calib
        and metadata), so nothing is dropped: :meth:`calibrated_flux` calibrates
        every row with its own input's Calib. ``wcs`` and ``calib`` of the
        result are the shared object when every input's is equal by value (the
        first input's), else None. Table metadata keeps the keys on which every
        input agrees; each member keeps its own.

        Parameters
        ----------
        catalogs : sequence of SourceCatalog
        keys : sequence of mapping, optional
            What names each input (``{"detector": 3}``); default ``{"member": i}``.

        Raises
        ------
        ObjectError
            If ``catalogs`` is empty, holds a non-catalog, the columns disagree,
            or ``keys`` has another length.
        """
        catalogs = list(catalogs)
        if not catalogs:
            raise ObjectError("concatenate() needs at least one SourceCatalog")
        for cat in catalogs:
            if not isinstance(cat, SourceCatalog):
                raise ObjectError(f"concatenate() takes SourceCatalogs, got {type(cat).__name__}")
        if keys is not None and len(keys) != len(catalogs):
            raise ObjectError(f"concatenate() got {len(keys)} keys for {len(catalogs)} catalogs")
        first = catalogs[0]
        schema = _schema(first.table)
        for i, cat in enumerate(catalogs[1:], start=1):
            other = _schema(cat.table)
            if other != schema:
                raise ObjectError(
                    f"catalog {i} has columns {other}, catalog 0 has {schema}; "
                    "concatenate needs equal names, dtypes and units"
                )
        tables = [cat.table for cat in catalogs]
        table = _stack(tables)
        table.meta = _agreed_meta([t.meta for t in tables])
        members: list[CatalogMember] = []
        start = 0
        for i, cat in enumerate(catalogs):
            key = dict(keys[i]) if keys is not None else {"member": i}
            if cat.members:  # a united input: its members, shifted, under its key
                members += [
                    CatalogMember({**key, **m.key}, start + m.start, start + m.stop, m.wcs,
                                  m.calib, m.meta)
                    for m in cat.members
                ]
            else:
                members.append(
                    CatalogMember(key, start, start + len(cat), cat.wcs, cat.calib,
                                  dict(cat.table.meta))
                )
            start += len(cat)
        return cls(
            table,
            _shared([m.wcs for m in members]),
            _shared([m.calib for m in members]),
            members=members,
        )

    def calibrated_flux(self, column: str = "instflux") -> u.Quantity:
        """The instrumental flux ``column`` calibrated to nJy.

        Each row is calibrated with its own member's Calib in a united catalog
        (see :attr:`members`), else with this catalog's Calib.

        Raises
        ------
        ObjectError
            If a row has no Calib, or there is no such column.
        """
        data = self[column].data
        if self._calib is not None:
            return self._calib.instflux_to_nanojansky(data)
        values = np.asarray(data)
        if not self._members:
            raise ObjectError("this catalog has no Calib; attach one with replace(calib=...)")
        out = np.empty(values.shape, dtype=np.float64)
        for m in self._members:
            if m.calib is None:
                raise ObjectError(f"member {dict(m.key)} of this catalog has no Calib")
            flux: Any = m.calib.instflux_to_nanojansky(values[m.rows])
            out[m.rows] = flux.to_value(u.nJy)
        return out * u.nJy

    def sky_coordinates(self, x: str = "x", y: str = "y") -> tuple[np.ndarray, np.ndarray]:
        """RA and Dec (degrees) of the pixel positions in columns ``x``, ``y``.

        Each row uses its own member's Wcs in a united catalog, else this
        catalog's Wcs.

        Raises
        ------
        ObjectError
            If a row has no Wcs, or a column is missing.
        """
        xs, ys = np.asarray(self[x].data, float), np.asarray(self[y].data, float)
        if self._wcs is not None and not self._members:
            return self._wcs.pixel_to_sky(xs, ys)
        if not self._members:
            raise ObjectError("this catalog has no Wcs; attach one with replace(wcs=...)")
        ra, dec = np.empty_like(xs), np.empty_like(ys)
        for m in self._members:
            if m.wcs is None:
                raise ObjectError(f"member {dict(m.key)} of this catalog has no Wcs")
            ra[m.rows], dec[m.rows] = m.wcs.pixel_to_sky(xs[m.rows], ys[m.rows])
        return ra, dec

    # -- FITS (implemented in compstore.fits) ---------------------------------------------
    @classmethod
    def read_fits(cls, path: str | Path) -> SourceCatalog:
        """Read a SourceCatalog from a FITS file (see ``compstore.fits._catalog``).

        Raises
        ------
        FitsFormatError
            If the file cannot be read as a catalog.
        """
        # Imported here: compstore.fits sits above the object model.
        from compstore.fits import _catalog as _fits

        return _fits.read_catalog(path)

    def write_fits(self, path: str | Path) -> None:
        """Write this catalog to a FITS file (see ``compstore.fits._catalog``)."""
        # Imported here: compstore.fits sits above the object model.
        from compstore.fits import _catalog as _fits

        _fits.write_catalog(self, path)


    def __repr__(self) -> str:
        members = f", members={len(self._members)}" if self._members else ""
        return (
            f"SourceCatalog({len(self)} rows, columns={list(self.columns)}, "
            f"wcs={'yes' if self._wcs is not None else 'no'}, "
            f"calib={self._calib!r}{members})"
        )


def _check_members(members: tuple[CatalogMember, ...], length: int) -> None:
    start = 0
    for m in members:
        if not isinstance(m, CatalogMember):
            raise ObjectError(f"members must be CatalogMember objects, got {type(m).__name__}")
        if m.start != start or m.stop < m.start:
            raise ObjectError(
                f"member {dict(m.key)} holds rows {m.start}:{m.stop}; members must cover "
                f"the rows in order from {start}"
            )
        start = m.stop
    if members and start != length:
        raise ObjectError(f"members cover {start} rows, the table has {length}")


def _stack(tables: list[Table]) -> Table:
    """Row-wise stack of tables with equal schemas (checked by the caller).

    Plain columns are concatenated directly (astropy's ``vstack`` costs a
    visible share of an aggregate read); mixin columns (Time, Quantity) and
    masked ones go through ``vstack``.
    """
    first = tables[0]
    names = first.colnames
    if not all(type(t[n]) is Column for t in tables for n in names):
        return vstack(tables, join_type="exact", metadata_conflicts="silent")
    columns = []
    for n in names:
        model = first[n]
        columns.append(Column(
            np.concatenate([t[n].data for t in tables]), name=n, unit=model.unit,
            description=model.description, format=model.format, meta=model.meta, copy=False,
        ))
    return first.__class__(columns, copy=False)


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
