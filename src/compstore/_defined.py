"""Defined dataset types at the Butler: declaring aggregates and joins, and reading them.

A defined dataset type is resolved at read time through the Butler's
collections: its members are found like any dataset (the first collection
that has a member data ID wins), read through the identity cache, and handed
to the combiner of their storage class (`compstore.storage_classes.Combiner`).
Nothing is stored for a definition but its registry row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import (
    AmbiguousDatasetError,
    DataIdError,
    DatasetNotFoundError,
    DefinitionError,
    MissingDatasetTypeError,
)
from .registry import DatasetRef
from .registry._definitions import DatasetTypeDefinition
from .storage_classes import Member, get_combiner

if TYPE_CHECKING:
    from .butler import Butler, DatasetName

__all__ = ["read_defined", "register_aggregate", "register_join"]


def _member_type(butler: Butler, name: str, role: str) -> Any:
    try:
        return butler.registry.get_dataset_type(name)
    except MissingDatasetTypeError:
        raise DefinitionError(
            f"{role} {name!r} is not a registered dataset type; register it first "
            "(register_dataset_type)"
        ) from None


def register_aggregate(
    butler: Butler, name: str, member: str, over: str | Iterable[str]
) -> DatasetTypeDefinition:
    """Declare ``name`` as the row-wise union of ``member`` datasets over ``over``.

    Raises
    ------
    DefinitionError
        If ``member`` is unknown, ``over`` names a dimension it lacks or all of
        its dimensions, or its storage class has no aggregate.
    DatasetTypeConflictError, InvalidNameError
        As for any dataset type name.
    """
    dims = (over,) if isinstance(over, str) else tuple(over)
    dtype = _member_type(butler, member, "member")
    if not dims:
        raise DefinitionError(f"aggregate {name!r} needs at least one dimension to unite over")
    lacking = [d for d in dims if d not in dtype.dimensions]
    if lacking:
        raise DefinitionError(
            f"member {member!r} has no dimension(s) {', '.join(lacking)}; "
            f"its dimensions: {', '.join(dtype.dimensions)}"
        )
    kept = tuple(d for d in dtype.required_dimensions if d not in dims)
    get_combiner(dtype.storage_class).check_aggregate(dims)
    definition = DatasetTypeDefinition(
        name=name, kind="aggregate", members=(member,), dimensions=kept,
        storage_class=dtype.storage_class, over=dims,
    )
    return butler.registry.register_definition(definition)


def register_join(
    butler: Butler, name: str, members: Sequence[str], on: str = "id"
) -> DatasetTypeDefinition:
    """Declare ``name`` as the column-wise join of ``members`` on key column ``on``.

    Raises
    ------
    DefinitionError
        If a member is unknown, the members have other dimensions or storage
        classes, there are fewer than two, or their storage class has no join.
    """
    members = [members] if isinstance(members, str) else list(members)
    if len(members) < 2 or len(set(members)) != len(members):
        raise DefinitionError(f"join {name!r} needs two or more distinct members, got {members}")
    if not isinstance(on, str) or not on:
        raise DefinitionError(f"join {name!r} needs a key column name, got {on!r}")
    types = [_member_type(butler, m, "member") for m in members]
    first = types[0]
    for t in types[1:]:
        if set(t.required_dimensions) != set(first.required_dimensions):
            raise DefinitionError(
                f"join members must have the same dimensions: {first.name!r} has "
                f"{first.required_dimensions}, {t.name!r} has {t.required_dimensions}"
            )
        if t.storage_class != first.storage_class:
            raise DefinitionError(
                f"join members must have one storage class: {first.name!r} is "
                f"{first.storage_class}, {t.name!r} is {t.storage_class}"
            )
    get_combiner(first.storage_class).check_join()
    definition = DatasetTypeDefinition(
        name=name, kind="join", members=tuple(members),
        dimensions=first.required_dimensions, storage_class=first.storage_class, on=on,
    )
    return butler.registry.register_definition(definition)


def _member(butler: Butler, ref: DatasetRef, over: Sequence[str]) -> Member:
    io = butler._io
    manifest = ref.manifest

    def read(component: str | None = None, parameters: Mapping[str, Any] | None = None) -> Any:
        return io.read(manifest, parameters, component)

    data_id = dict(ref.data_id)
    return Member(ref.dataset_type, data_id, {d: data_id[d] for d in over}, read)


def read_defined(
    butler: Butler,
    definition: DatasetTypeDefinition,
    name: DatasetName,
    given: Mapping[str, Any],
    parameters: Mapping[str, Any] | None,
    collections: str | Sequence[str] | None,
) -> Any:
    """Read defined dataset type ``definition`` (or a component of it) for data ID ``given``.

    Raises
    ------
    DataIdError
        If ``given`` lacks a dimension of the definition or names one the
        members do not have.
    DatasetNotFoundError
        If no member dataset matches (naming the members and collections).
    AmbiguousDatasetError
        If, with no collections to search in order, one member data ID is in
        several runs.
    CombineError
        If the members do not combine (see the combiner).
    """
    combiner = get_combiner(definition.storage_class)
    params = dict(parameters or {})
    where_extra = params.pop("where", None)
    search = butler._search_path(name.stage, collections)
    missing = [d for d in definition.dimensions if d not in given]
    if missing:
        raise DataIdError(
            f"{definition.name} needs {', '.join(definition.dimensions)} in its data ID; "
            f"missing {', '.join(missing)}"
        )
    if definition.kind == "join":
        if where_extra is not None:
            raise DefinitionError("a join takes no 'where' parameter: its members are one each")
        members = [
            _member(butler, butler.find_dataset(
                m if name.stage is None else f"{m}:{name.stage}", given, collections=collections
            ), ())
            for m in definition.members
        ]
        joined = combiner.join(members, definition.on or "id", params)
        if name.component is None:
            return joined
        if name.component in ("table", "columns", "wcs", "calib"):
            return getattr(joined, name.component)
        raise DefinitionError(
            f"a join has components table, columns, wcs and calib, not {name.component!r}"
        )
    member_type = butler.registry.get_dataset_type(definition.members[0])
    extra = [d for d in given if d not in member_type.dimensions]
    if extra:
        raise DataIdError(
            f"{definition.name} has no dimension(s) {', '.join(extra)}; "
            f"its members have {', '.join(member_type.dimensions)}"
        )
    clauses, bind = [], {}
    for i, (dimension, value) in enumerate(sorted(given.items())):
        clauses.append(f"{dimension} = :defined_{i}")
        bind[f"defined_{i}"] = value
    where = " AND ".join(clauses)
    if where_extra is not None:
        if not isinstance(where_extra, str):
            raise DefinitionError(f"read parameter 'where' must be a string, got {where_extra!r}")
        where = f"({where}) AND ({where_extra})" if where else where_extra
    refs = butler.registry.query_datasets(
        member_type.name, where=where or None, collections=search, bind=bind,
        find_first=search is not None,
    )
    if search is None:
        _check_unique(definition, refs)
    if not refs:
        raise DatasetNotFoundError(
            f"no {member_type.name} dataset for {definition.name} with data ID {dict(given)}"
            + (f" and where {where_extra!r}" if where_extra else "")
            + f" in collections {list(search) if search is not None else 'all runs'}"
        )
    members = [_member(butler, ref, definition.over) for ref in refs]
    if name.component is not None:
        return combiner.aggregate_component(members, name.component, params)
    return combiner.aggregate(members, params)


def _check_unique(definition: DatasetTypeDefinition, refs: Sequence[DatasetRef]) -> None:
    seen: dict[Any, DatasetRef] = {}
    for ref in refs:
        key = tuple(sorted(ref.data_id.items()))
        if key in seen:
            raise AmbiguousDatasetError(
                f"{ref.dataset_type} with data ID {ref.data_id} is in runs {seen[key].run!r} and "
                f"{ref.run!r}: give collections=[...] to read {definition.name}"
            )
        seen[key] = ref
