"""The lookup policy and its memo: which dataset a name and a data ID mean.

A name is parsed (and its component checked) once per Butler (``_names``);
a lookup of plain ints and strings is remembered by the registry while its
``data_version`` holds, so a get the identity cache answers costs no SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import CompstoreError, DataIdError, DatasetNotFoundError
from ..registry import DataId, DatasetRef, DatasetType
from ..storage_classes import CompositeStorageClass, get_storage_class
from ._base import ButlerBase
from ._names import DatasetName, parse_dataset_name

__all__ = ["Lookup", "RegistryResolver"]


class RegistryResolver:
    """The `compstore.datastore.DatasetResolver` of a Butler: its registry, through it."""

    __slots__ = ("_butler",)

    def __init__(self, butler: Lookup) -> None:
        self._butler = butler

    def manifest_of(self, dataset_id: str) -> str:
        return self._butler._resolve_dataset(dataset_id)

    def find_target(
        self, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        return self._butler._find_reference_target(dataset_type, data_id)


class Lookup(ButlerBase):
    """Finding datasets: `find_dataset`, `exists`, `query_datasets` and their helpers."""

    def _checked_name(self, text: str) -> DatasetName:
        """``parse_dataset_name`` plus a check that the component exists, remembered per name."""
        name = self._names.get(text) if isinstance(text, str) else None
        if name is None:
            name = parse_dataset_name(text)  # refuses a non-string (InvalidNameError)
            if name.component is not None:
                dtype = self.registry.get_dataset_type(name.dataset_type)
                sc = get_storage_class(dtype.storage_class)
                if isinstance(sc, CompositeStorageClass):
                    sc.component_storage_class(name.component)
            self._names[text] = name
        return name

    def find_dataset(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Return the ref `get` would read for ``name`` and the data ID.

        Raises
        ------
        DatasetNotFoundError, AmbiguousDatasetError, MissingDatasetTypeError, DataIdError
            As `get`.
        """
        key = self._memo_key(name, data_id, collections, kwargs)
        if key is None:
            return self._find_dataset(name, data_id, collections, kwargs)
        # Remembered by the registry while its data_version holds (one reading of
        # the counter per call): a get the identity cache answers costs no SQL.
        return self.registry.remembered(
            key, self._find_dataset, name, data_id, collections, kwargs
        )

    def _memo_key(
        self,
        name: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> tuple[Any, ...] | None:
        items = [*(data_id or {}).items(), *kwargs.items()]
        if not all(type(k) is str and type(v) in (int, str) for k, v in items):
            return None  # numpy ints and the like: normalised by the slow path only
        search = (collections,) if isinstance(collections, str) else (
            tuple(collections) if collections is not None else None
        )
        return ("find_dataset", name, tuple(sorted(items)), search, self.collections)

    def _find_dataset(
        self,
        name: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> DatasetRef:
        parsed = parse_dataset_name(name)
        dtype = self.registry.get_dataset_type(parsed.dataset_type)
        given = self._data_id(dtype, data_id, kwargs, partial=True)
        search = self._search_path(parsed.stage, collections)
        # The registry applies the search rule (per identity, the first collection
        # that has a match wins) and says how to pick among several matches. A data
        # ID leaving out a dimension, even one a later stage added (tract), is a
        # partial lookup; so is any lookup without a search path, where a data ID
        # found in several runs is ambiguous rather than silently resolved.
        ref = self.registry.find_dataset(
            dtype.name, given, search,
            partial=search is None or len(given) < len(dtype.dimensions),
        )
        if ref is None:
            raise DatasetNotFoundError(self._not_found_message(parsed, dtype, given, search))
        return ref

    def _not_found_message(
        self, parsed: DatasetName, dtype: DatasetType, data_id: DataId, search: Sequence[str] | None
    ) -> str:
        where = f"collections {list(search)}" if search is not None else "any RUN collection"
        message = f"no {dtype.name} dataset with data ID {data_id} in {where}"
        if parsed.stage is not None:
            elsewhere = self.registry.find_datasets_partial(dtype.name, data_id, None)
            if elsewhere:
                runs = sorted({ref.run for ref in elsewhere})
                message += (
                    f"; run(s) {', '.join(map(repr, runs))} have one, but stage-qualified lookups "
                    f"('{dtype.name}:{parsed.stage}') never fall back to another stage: "
                    f"has stage {parsed.stage!r} processed this data ID yet?"
                )
        return message

    def _search_path(
        self, stage: str | None, collections: str | Sequence[str] | None
    ) -> list[str] | None:
        if stage is not None:
            self.registry.collection_type(stage)  # raises MissingCollectionError
            return [stage]
        if collections is not None:
            return [collections] if isinstance(collections, str) else list(collections)
        return list(self.collections) if self.collections is not None else None

    def _data_id(
        self,
        dtype: DatasetType,
        data_id: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
        *,
        partial: bool,
    ) -> DataId:
        merged = dict(data_id or {})
        for key, value in kwargs.items():
            if key in merged and merged[key] != value:
                raise DataIdError(
                    f"dimension {key!r} is given twice with different values "
                    f"({merged[key]!r} and {value!r})"
                )
            merged[key] = value
        if set(merged) - set(dtype.dimensions):
            # another process may have added a dimension to this type since we cached it
            dtype = self.registry.get_dataset_type(dtype.name, refresh=True)
        dtype.check_data_id(merged, partial=partial)
        return DataId(merged)

    def _find_reference_target(
        self, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """The dataset a precursor reference (``DatasetReference``) should point at, if any.

        Searched in this Butler's collections and run first, then in every run;
        the writer still checks the dataset holds the same value.
        """
        wanted = dict(data_id)
        search = [*(self.collections or ()), *([self.run] if self.run else [])]
        for collections in ([*dict.fromkeys(search)] if search else None, None):
            try:
                candidates = self.registry.find_datasets_partial(dataset_type, wanted, collections)
            except CompstoreError:
                return None
            for ref in candidates:
                if dict(ref.data_id) == wanted:
                    return str(ref.id), ref.manifest
            if collections is None:
                break
        return None

    def _resolve_dataset(self, dataset_id: str) -> str:
        ref = self.registry.get_dataset(uuid.UUID(dataset_id))
        if ref is None:
            raise DatasetNotFoundError(
                f"a manifest refers to dataset {dataset_id}, which is not in the registry "
                "(removed?); its referrer cannot be read whole"
            )
        return ref.manifest

    def query_datasets(
        self,
        dataset_type: str,
        where: str | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        bind: Mapping[str, Any] | None = None,
    ) -> list[DatasetRef]:
        """Return refs of ``dataset_type`` matching ``where`` in ``collections``.

        ``where`` is an expression over the dataset type's dimensions, e.g.
        ``"visit = 1 AND detector IN (1, 2)"``; values are bound, never pasted
        into SQL.

        Raises
        ------
        QuerySyntaxError
            If ``where`` is malformed (the message points at the column).
        QueryError
            If ``where`` names a dimension the dataset type does not have.
        """
        parsed = parse_dataset_name(dataset_type)
        search = self._search_path(parsed.stage, collections)
        return self.registry.query_datasets(parsed.dataset_type, where=where, collections=search, bind=bind)

    def exists(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Return whether `get` would find a dataset (without reading it)."""
        try:
            self.find_dataset(name, data_id, collections=collections, **kwargs)
        except DatasetNotFoundError:
            return False
        return True
