"""Composite storage classes for tables: Table (column by column) and SourceCatalog."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from astropy import units as u
from astropy.table import Column, MaskedColumn, Table

from .. import objects
from ..errors import EncodingError, InvalidParameterError
from ._base import ComponentReader, CompositeStorageClass, Disassembly

__all__ = ["SourceCatalogStorageClass", "TableStorageClass"]


def _column_key(index: int) -> str:
    return f"col:{index}"


def _mask_key(index: int) -> str:
    return f"mask:{index}"


def _unit_string(unit: Any) -> str | None:
    if unit is None:
        return None
    try:
        return _unit_strings(unit)
    except TypeError:  # an unhashable unit spec: not remembered
        return u.Unit(unit).to_string(format="generic")


@functools.lru_cache(maxsize=1024)
def _unit_strings(unit: Any) -> str:
    # Writing a unit out is slow in astropy (a visible part of a catalog put in a
    # profile), and a catalog's columns repeat a few units.
    return u.Unit(unit).to_string(format="generic")


class TableStorageClass(CompositeStorageClass):
    """An `astropy.table.Table` stored one array per column.

    Column names, units, descriptions and formats live in the manifest, so a
    column's digest depends only on its values: equal columns of different
    tables are stored once. Read parameter ``columns`` reads only those.
    Tables are mutable, so assembled tables are never shared (their read-only
    column arrays are).
    """

    name = "Table"
    python_type = Table
    parameters = frozenset({"columns"})
    components: ClassVar[Mapping[str, str]] = {}
    cacheable = False

    def component_storage_class(self, name: str) -> str:
        if name.startswith(("col:", "mask:")):
            return "Array"
        return super().component_storage_class(name)

    def disassemble(self, obj: Any) -> Disassembly:
        self.check_type(obj)
        components: dict[str, tuple[str, Any]] = {}
        described = []
        for index, name in enumerate(obj.colnames):
            column = obj[name]
            if not isinstance(column, Column):
                raise EncodingError(
                    f"table column {name!r} is a {type(column).__name__}; only plain and masked "
                    "columns are stored (convert mixin columns such as SkyCoord to plain columns)"
                )
            if column.dtype.hasobject:
                raise EncodingError(f"table column {name!r} has object dtype; it has no encoding")
            components[_column_key(index)] = ("Array", column.data.data if isinstance(column, MaskedColumn) else np.asarray(column))
            if isinstance(column, MaskedColumn):
                components[_mask_key(index)] = ("Array", np.ma.getmaskarray(column))
            described.append(
                {
                    "name": name,
                    "unit": _unit_string(column.unit),
                    "description": column.description or None,
                    "format": column.format if isinstance(column.format, str) else None,
                    "meta": dict(column.meta) if column.meta else {},
                    "masked": isinstance(column, MaskedColumn),
                }
            )
        return Disassembly(
            components=components,
            attributes={"columns": described, "meta": dict(obj.meta), "length": len(obj)},
        )

    def _selected(self, reader: ComponentReader, names: Any) -> list[int]:
        described = reader.attributes["columns"]
        if names is None:
            return list(range(len(described)))
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise InvalidParameterError(
                f"read parameter 'columns' must be a list of column names, got {names!r}"
            )
        index = {c["name"]: i for i, c in enumerate(described)}
        missing = [n for n in names if n not in index]
        if missing:
            raise InvalidParameterError(
                f"no column(s) {', '.join(map(repr, missing))} in this table; "
                f"its columns are: {', '.join(index)}"
            )
        return [index[n] for n in names]

    def assemble(self, reader: ComponentReader, parameters: Mapping[str, Any]) -> Any:
        params = self.check_parameters(parameters)
        described = reader.attributes["columns"]
        columns = []
        for i in self._selected(reader, params.get("columns")):
            info = described[i]
            data = reader.get(_column_key(i))
            kwargs = {
                "name": info["name"],
                "unit": info["unit"],
                "description": info["description"],
                "format": info["format"],
                "meta": info["meta"],
                "copy": False,
            }
            if info["masked"]:
                columns.append(MaskedColumn(data, mask=reader.get(_mask_key(i)), **kwargs))
            else:
                columns.append(Column(data, **kwargs))
        table = Table(columns, copy=False, meta=reader.attributes["meta"])
        return table


class SourceCatalogStorageClass(CompositeStorageClass):
    """A `SourceCatalog`: a column-wise table plus the Wcs and Calib it shares with its exposure."""

    name = "SourceCatalog"
    python_type = objects.SourceCatalog
    parameters = frozenset({"columns"})
    components: ClassVar[Mapping[str, str]] = {"table": "Table", "wcs": "Wcs", "calib": "Calib"}
    cacheable = False

    def disassemble(self, obj: Any) -> Disassembly:
        self.check_type(obj)
        return Disassembly(
            components={"table": ("Table", obj.table), "wcs": ("Wcs", obj.wcs), "calib": ("Calib", obj.calib)}
        )

    def assemble(self, reader: ComponentReader, parameters: Mapping[str, Any]) -> Any:
        params = self.check_parameters(parameters)
        table = reader.get("table", params or None)
        return objects.SourceCatalog(
            table,
            wcs=reader.get("wcs") if reader.has("wcs") else None,
            calib=reader.get("calib") if reader.has("calib") else None,
        )

    def read_component(
        self, reader: ComponentReader, name: str, parameters: Mapping[str, Any]
    ) -> Any:
        if name == "table" and parameters:
            return reader.get("table", self.check_parameters(parameters))
        return super().read_component(reader, name, parameters)
