"""`_TypeInfo`: one dataset type's column layout and data-ID key, precomputed once."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._dimensions import (
    ValueType,
    coerce_value,
)
from ._types import (
    DataId,
    DataIdValue,
    DatasetType,
)


def _data_id_key(values: Sequence[DataIdValue]) -> str:
    # Compact JSON of the values in sorted-dimension order: injective for a given
    # dataset type (its dimensions and their types are fixed) and portable.
    # Built by hand because json.dumps of a small list is the bulk insert's hot spot;
    # the result is byte-identical to json.dumps(values, separators=(",", ":")).
    return "[" + ",".join(str(v) if type(v) is int else json.dumps(v) for v in values) + "]"


class _TypeInfo:
    """What the registry needs to know about one dataset type, precomputed once."""

    __slots__ = ("id", "dataset_type", "sorted_dims", "key_positions", "optional_positions")

    def __init__(self, id: int, dataset_type: DatasetType) -> None:
        self.id = id
        self.dataset_type = dataset_type
        self.sorted_dims = tuple(sorted(dataset_type.dimensions))
        optional = set(dataset_type.optional_dimensions)
        self.key_positions = tuple(i for i, d in enumerate(self.sorted_dims) if d not in optional)
        self.optional_positions = tuple(i for i, d in enumerate(self.sorted_dims) if d in optional)

    def values(
        self, types: Mapping[str, ValueType | None], data_id: Mapping[str, Any]
    ) -> list[DataIdValue | None]:
        """A data ID's values in sorted-dimension order, as column types (None: absent)."""
        return [
            coerce_value(d, types[d], data_id[d])  # type: ignore[arg-type]
            if d in data_id
            else None
            for d in self.sorted_dims
        ]

    def data_id(self, values: Sequence[DataIdValue | None]) -> DataId:
        """The `DataId` of values in sorted-dimension order (None values left out)."""
        pairs = zip(self.sorted_dims, values)
        return DataId._from_sorted(tuple((d, v) for d, v in pairs if v is not None))

    def key(self, values: Sequence[DataIdValue | None]) -> str:
        """The data-ID key of values in sorted-dimension order (None: an absent optional one).

        Optional dimensions (added by a later stage) enter the key only when
        present, by name, so the keys of datasets written before a dimension
        was added never change.
        """
        if not self.optional_positions:
            return _data_id_key(values)  # type: ignore[arg-type]
        key = _data_id_key([values[i] for i in self.key_positions])  # type: ignore[misc]
        extra = {self.sorted_dims[i]: values[i] for i in self.optional_positions if values[i] is not None}
        if not extra:
            return key
        sep = "," if self.key_positions else ""
        return key[:-1] + sep + json.dumps(extra, sort_keys=True, separators=(",", ":")) + "]"
