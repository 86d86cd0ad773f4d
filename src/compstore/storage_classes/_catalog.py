"""Composite storage classes for tables: Table (column by column) and SourceCatalog."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from astropy import units as u
from astropy.table import QTable, Table

from .. import objects
from ..errors import InvalidParameterError
from ._base import ComponentReader, CompositeStorageClass, Disassembly
from ._columns import decode_column, encode_column

__all__ = ["SourceCatalogStorageClass", "TableStorageClass"]


def _unit_string(unit: Any) -> str | None:
    if unit is None:
        return None
    try:
        return _unit_strings(unit)
    except TypeError:  # an unhashable unit spec: not remembered
        text: str = u.Unit(unit).to_string(format="generic")
        return text


@functools.lru_cache(maxsize=1024)
def _unit_strings(unit: Any) -> str:
    # Writing a unit out is slow in astropy (a visible part of a catalog put in a
    # profile), and a catalog's columns repeat a few units.
    text: str = u.Unit(unit).to_string(format="generic")
    return text


class TableStorageClass(CompositeStorageClass):
    """An `astropy.table.Table` stored one array per column.

    Column names, units, descriptions and formats live in the manifest, so a
    column's digest depends only on its values: equal columns of different
    tables are stored once. String (fixed and variable width), masked,
    `astropy.time.Time` and `~astropy.units.Quantity` columns are stored as
    numeric arrays that undo exactly (see ``_columns``); a `QTable` comes back
    a `QTable`. Read parameter ``columns`` reads only those.
    Tables are mutable, so assembled tables are never shared (their read-only
    column arrays are).
    """

    name = "Table"
    python_type = Table
    parameters = frozenset({"columns"})
    components: ClassVar[Mapping[str, str]] = {}
    cacheable = False

    def component_storage_class(self, name: str) -> str:
        if name.startswith(("col:", "mask:", "offsets:", "jd2:")):
            return "Array"
        if name == "columns":
            return "Metadata"
        return super().component_storage_class(name)

    def read_component(
        self, reader: ComponentReader, name: str, parameters: Mapping[str, Any]
    ) -> Any:
        if name == "columns":  # the names alone, from the manifest: no column is read
            self.check_parameters(parameters)
            return tuple(c["name"] for c in reader.attributes["columns"])
        return super().read_component(reader, name, parameters)

    def disassemble(self, obj: Any) -> Disassembly:
        self.check_type(obj)
        components: dict[str, tuple[str, Any]] = {}
        described = []
        for index, name in enumerate(obj.colnames):
            column = obj[name]
            arrays, encoding = encode_column(name, column, index)
            components.update((key, ("Array", array)) for key, array in arrays.items())
            info = column.info
            described.append(
                {
                    "name": name,
                    "unit": _unit_string(info.unit),
                    "description": info.description or None,
                    "format": info.format if isinstance(info.format, str) else None,
                    "meta": dict(info.meta) if info.meta else {},
                    "masked": any(key.startswith("mask:") for key in arrays),
                    **encoding,
                }
            )
        attributes: dict[str, Any] = {"columns": described, "meta": dict(obj.meta), "length": len(obj)}
        if isinstance(obj, QTable):
            attributes["table_class"] = "QTable"
        return Disassembly(components=components, attributes=attributes)

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
        selected = self._selected(reader, params.get("columns"))
        columns = [decode_column(described[i], i, reader.get) for i in selected]
        table_class = QTable if reader.attributes.get("table_class") == "QTable" else Table
        return table_class(
            columns, names=[described[i]["name"] for i in selected], copy=False,
            meta=reader.attributes["meta"],
        )


class SourceCatalogStorageClass(CompositeStorageClass):
    """A `SourceCatalog`: a column-wise table plus the Wcs and Calib it shares with its exposure."""

    name = "SourceCatalog"
    # A bare Table or QTable is accepted too: a catalog without Wcs or Calib.
    python_type = (objects.SourceCatalog, Table)
    parameters = frozenset({"columns"})
    components: ClassVar[Mapping[str, str]] = {"table": "Table", "wcs": "Wcs", "calib": "Calib"}
    cacheable = False

    def component_storage_class(self, name: str) -> str:
        if name == "columns":  # answered from the table's manifest (see read_component)
            return "Metadata"
        return super().component_storage_class(name)

    def disassemble(self, obj: Any) -> Disassembly:
        self.check_type(obj)
        if isinstance(obj, Table):
            obj = objects.SourceCatalog(obj)
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
        if name == "columns":
            self.check_parameters(parameters)
            return reader.get_component("table", "columns")
        return super().read_component(reader, name, parameters)
