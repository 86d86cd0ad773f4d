"""Dimensions, dataset types and dataset-type definitions."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import (
    DatasetTypeConflictError,
    InvalidNameError,
    MissingDatasetTypeError,
    RegistryError,
)

from ._bulk import insert_unless_raced
from ._caches import _Caches
from ._common import (
    _listing,
)
from ._connections import reconnecting
from ._definitions import DatasetTypeDefinition, definition_table, read_definitions
from ._dimensions import (
    BUILTIN_DIMENSIONS,
    ValueType,
    infer_value_type,
)
from ._schema import (
    add_dimension_column,
)
from ._type_info import _TypeInfo
from ._types import (
    DatasetType,
    validate_dataset_type_name,
    validate_dimension_name,
)


class _DatasetTypes(_Caches):
    """Registry methods for dimensions, dataset types and their definitions."""

    # -- dimensions -----------------------------------------------------------------
    @reconnecting
    def dimensions(self) -> dict[str, str | None]:
        """Return every known dimension and its value type.

        Returns
        -------
        dimensions : `dict` [`str`, `str` or `None`]
            ``"int"`` or ``"str"``; `None` for a dimension registered with a
            dataset type but given no value yet.
        """
        with self._read() as conn:
            self._refresh(conn, force=True)
            return dict(sorted(self._dimensions.items()))

    def _dimension_types(self, conn: sa.Connection, info: _TypeInfo) -> dict[str, ValueType | None]:
        dims = info.dataset_type.dimensions
        if any(self._dimensions.get(d) is None for d in dims):
            # Another process (or an earlier insert) may have typed it since.
            self._refresh(conn, force=True)
        return {d: self._dimensions.get(d) for d in dims}

    def _type_new_dimensions(
        self, conn: sa.Connection, info: _TypeInfo, first: Mapping[str, object]
    ) -> dict[str, ValueType]:
        """Give untyped dimensions a type from the first inserted data ID."""
        types = self._dimension_types(conn, info)
        for dim, value_type in types.items():
            if value_type is None:
                if dim not in first:
                    continue  # an absent optional dimension: typed by its first value
                types[dim] = self._type_dimension(conn, dim, infer_value_type(dim, first[dim]))
        return types  # type: ignore[return-value]

    def _type_dimension(self, conn: sa.Connection, dim: str, value_type: ValueType) -> ValueType:
        """Give the untyped dimension ``dim`` its type and column; return the type it has.

        If another writer typed it meanwhile (its UPDATE committed first; ours
        then matches no row), its type stands: the column exists already, and is
        only described here; a value of the other type is refused by the caller's
        coercion as any value of a wrong type is.
        """
        dim_table = self._t["dimension"]
        with self._lock:
            changed = conn.execute(
                sa.update(dim_table)
                .where(dim_table.c.name == dim, dim_table.c.value_type.is_(None))
                .values(value_type=value_type)
            ).rowcount
            if changed:
                add_dimension_column(conn, self._md, dim, value_type)
                self._dimensions[dim] = value_type
        if changed:
            self._bump_catalog(conn)
            return value_type
        self._refresh(conn, force=True)  # learns the other writer's type and column
        typed = self._dimensions.get(dim)
        if typed is None:
            raise RegistryError(f"dimension {dim!r} could not be given a value type")
        return typed

    # -- dataset types ---------------------------------------------------------------
    def register_dataset_type(
        self, name: str, dimensions: Sequence[str], storage_class: str
    ) -> DatasetType:
        """Register a dataset type, or check an existing one is identical.

        Parameters
        ----------
        name : `str`
            Dataset type name (``^[A-Za-z_][A-Za-z0-9_]*$``).
        dimensions : sequence of `str`
            Its dimensions, e.g. ``("visit", "detector")``. A dimension not yet
            known is created; its value type comes from the first value inserted.
        storage_class : `str`
            Storage class name.

        Returns
        -------
        dataset_type : `DatasetType`
            The registered dataset type (the stored one if it existed).

        Raises
        ------
        InvalidNameError
            If the name, a dimension name or the storage class is malformed, or
            a dimension is listed twice.
        DatasetTypeConflictError
            If ``name`` is registered with other dimensions or storage class.
        """
        validate_dataset_type_name(name)
        if isinstance(dimensions, str):
            dimensions = (dimensions,)
        dims = tuple(validate_dimension_name(d) for d in dimensions)
        if len(set(dims)) != len(dims):
            raise InvalidNameError(f"dataset type {name!r} lists a dimension twice: {dims}")
        if not isinstance(storage_class, str) or not storage_class.strip():
            raise InvalidNameError(f"invalid storage class name {storage_class!r}")
        wanted = DatasetType(name, dims, storage_class)
        with self._write() as conn:
            self._refresh(conn)
            for _attempt in range(2):
                existing = self._lookup_type(conn, name)
                if existing is not None:
                    have = existing.dataset_type
                    if have.storage_class == storage_class:
                        if set(have.required_dimensions) <= set(dims) <= set(have.dimensions):
                            return have
                        if set(dims) > set(have.dimensions):
                            return self._extend_dataset_type(conn, existing, dims)
                    raise DatasetTypeConflictError(
                        f"dataset type {name!r} is registered as {have}; "
                        f"cannot register it again as {wanted} (a later stage may only add "
                        "dimensions, with the same storage class)"
                    )
                if name in read_definitions(conn, definition_table(self._md)):
                    raise DatasetTypeConflictError(
                        f"{name!r} is a defined dataset type (an aggregate or join); "
                        "choose another name for the dataset type"
                    )
                self._insert_dimensions(conn, {d: None for d in dims})
                table = self._t["dataset_type"]
                insert = table.insert().values(
                    name=name, dimensions=json.dumps(list(dims)), storage_class=storage_class
                )
                if insert_unless_raced(conn, self._local, insert):
                    self._bump_catalog(conn)
                    info = self._lookup_type(conn, name)
                    assert info is not None
                    return info.dataset_type
                # Another writer registered it since the lookup: check against theirs.
            raise RegistryError(f"dataset type {name!r} could not be registered nor found")

    def _insert_dimensions(self, conn: sa.Connection, wanted: Mapping[str, ValueType | None]) -> None:
        """Insert the dimensions of ``wanted`` (name -> value type or None) not in the table.

        One another writer inserts meanwhile is left as it made it.
        """
        dim_table = self._t["dimension"]
        known = {n for (n,) in conn.execute(sa.select(dim_table.c.name))}
        for dim, value_type in wanted.items():
            if dim in known:
                continue
            insert = dim_table.insert().values(name=dim, value_type=value_type)
            if insert_unless_raced(conn, self._local, insert) and value_type is None:
                with self._lock:
                    self._dimensions.setdefault(dim, None)

    # -- defined dataset types (aggregates, joins) -------------------------------
    def register_definition(self, definition: DatasetTypeDefinition) -> DatasetTypeDefinition:
        """Store a defined dataset type, or check an existing one is identical.

        The caller checks that members and dimensions make sense (the Butler
        does, knowing storage classes); here a name is kept unique across
        dataset types and definitions.

        Raises
        ------
        InvalidNameError
            If the name is malformed.
        DatasetTypeConflictError
            If the name is a dataset type, or defined differently.
        """
        validate_dataset_type_name(definition.name)
        text = definition.to_json()
        with self._write() as conn:
            self._refresh(conn)
            if self._lookup_type(conn, definition.name) is not None:
                raise DatasetTypeConflictError(
                    f"{definition.name!r} is a registered dataset type; a defined dataset type "
                    "needs a name of its own"
                )
            table = definition_table(self._md)
            table.create(conn, checkfirst=True)
            stored = read_definitions(conn, table).get(definition.name)
            if stored is None:
                insert = table.insert().values(name=definition.name, definition=text)
                if not insert_unless_raced(conn, self._local, insert):
                    # Another writer defined it since: theirs is checked as if it had been there.
                    stored = read_definitions(conn, table).get(definition.name)
            if stored is not None and stored != text:
                have = DatasetTypeDefinition.from_json(definition.name, stored)
                raise DatasetTypeConflictError(
                    f"{definition.name!r} is defined already as {have.describe()}; "
                    f"cannot define it again as {definition.describe()}"
                )
        return definition

    @reconnecting
    def get_definition(self, name: str) -> DatasetTypeDefinition | None:
        """The definition called ``name``, read afresh (None if there is none)."""
        with self._read() as conn:
            text = read_definitions(conn, definition_table(self._md)).get(name)
        return None if text is None else DatasetTypeDefinition.from_json(name, text)

    @reconnecting
    def definitions(self) -> list[DatasetTypeDefinition]:
        """Every defined dataset type, by name."""
        with self._read() as conn:
            stored = read_definitions(conn, definition_table(self._md))
        return [DatasetTypeDefinition.from_json(n, t) for n, t in sorted(stored.items())]

    def _extend_dataset_type(
        self, conn: sa.Connection, existing: _TypeInfo, dims: Sequence[str]
    ) -> DatasetType:
        """Add dimensions a later stage uses (jointcal's ``tract``) as optional ones.

        Datasets written before keep their data IDs and keys; new ones may give
        the added dimensions. The added dimensions must have a known value type
        (built in, or used before), so that their columns exist at once.
        """
        have = existing.dataset_type
        added = [d for d in dims if d not in have.dimensions]
        dim_table = self._t["dimension"]
        known = dict(conn.execute(sa.select(dim_table.c.name, dim_table.c.value_type)).all())
        for dim in added:
            value_type = known.get(dim) or BUILTIN_DIMENSIONS.get(dim)
            if value_type is None:
                raise DatasetTypeConflictError(
                    f"cannot add dimension {dim!r} to dataset type {have.name!r}: its value type "
                    "is unknown; use it in another dataset type first, or use a built-in one"
                )
            if dim not in known:
                self._insert_dimensions(conn, {dim: None})
            if known.get(dim) is None:
                self._type_dimension(conn, dim, value_type)
        table = self._t["dataset_type"]
        extended = DatasetType(
            have.name, have.dimensions + tuple(added), have.storage_class,
            have.optional_dimensions + tuple(added),
        )
        conn.execute(
            sa.update(table)
            .where(table.c.id == existing.id)
            .values(
                dimensions=json.dumps(list(extended.dimensions)),
                optional_dimensions=json.dumps(list(extended.optional_dimensions)),
            )
        )
        self._bump_catalog(conn)
        with self._lock:
            self._types.pop(have.name, None)
        return extended

    def _lookup_type(self, conn: sa.Connection, name: str) -> _TypeInfo | None:
        info = self._types.get(name)
        if info is not None:
            return info
        table = self._t["dataset_type"]
        row = conn.execute(sa.select(table).where(table.c.name == name)).first()
        if row is None:
            return None
        # A dataset type changes only by gaining optional dimensions (a later
        # stage adding one); callers that meet an unexpected dimension reload it.
        optional = tuple(json.loads(row.optional_dimensions)) if row.optional_dimensions else ()
        info = _TypeInfo(
            row.id,
            DatasetType(row.name, tuple(json.loads(row.dimensions)), row.storage_class, optional),
        )
        with self._lock:
            self._types[name] = info
            self._type_names[row.id] = name
        return info

    def _type(self, conn: sa.Connection, name: str) -> _TypeInfo:
        self._refresh(conn)
        info = self._lookup_type(conn, name)
        if info is None:
            table = self._t["dataset_type"]
            known = conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars()
            raise MissingDatasetTypeError(
                f"dataset type {name!r} is not registered; known dataset types: "
                f"{_listing(known)}"
            )
        return info

    def _fresh_type_for(
        self, conn: sa.Connection, info: _TypeInfo, data_id: Mapping[str, Any]
    ) -> _TypeInfo:
        """``info``, reloaded if ``data_id`` names a dimension it lacks.

        Another registry (another process) may have added an optional dimension
        since this one cached the dataset type.
        """
        if all(d in info.dataset_type.dimensions for d in data_id):
            return info
        name = info.dataset_type.name
        with self._lock:
            self._types.pop(name, None)
        self._refresh(conn, force=True)
        fresh = self._lookup_type(conn, name)
        return fresh if fresh is not None else info

    def _type_name(self, conn: sa.Connection, type_id: int) -> str:
        name = self._type_names.get(type_id)
        if name is None:
            table = self._t["dataset_type"]
            name = conn.execute(sa.select(table.c.name).where(table.c.id == type_id)).scalar_one()
            self._lookup_type(conn, name)
        return name

    @reconnecting
    def get_dataset_type(self, name: str, *, refresh: bool = False) -> DatasetType:
        """Return the registered dataset type called ``name``.

        With ``refresh``, re-read it from the database (another process may have
        added a dimension to it since it was cached).

        Raises
        ------
        MissingDatasetTypeError
            If it is not registered; the message lists the known names.
        """
        if refresh:
            with self._lock:
                self._types.pop(name, None)
        elif (
            not self._stale
            and getattr(self._local, "conn", None) is None
            and self.data_version() is not None  # validates the cache: one PRAGMA
        ):
            # Cached and not rolled back: what _type would return, without opening a
            # read transaction (which alone cost about half a by-data-ID lookup, ad hoc).
            cached = self._types.get(name)
            if cached is not None:
                return cached.dataset_type
        with self._read() as conn:
            return self._type(conn, name).dataset_type

    @reconnecting
    def dataset_types(self) -> list[DatasetType]:
        """Return every registered dataset type, sorted by name."""
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset_type"]
            names = conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars().all()
            return [self._type(conn, n).dataset_type for n in names]
