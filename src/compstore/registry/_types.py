"""Value types of the registry: dataset types, data IDs, dataset refs, collection types.

All of them are immutable and hashable so that the layers above can use them
as dictionary keys and share them freely between threads.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from compstore.errors import CollectionTypeError, DataIdError, InvalidNameError

__all__ = [
    "CollectionType",
    "DataId",
    "DataIdValue",
    "DatasetRef",
    "DatasetType",
    "validate_collection_name",
    "validate_dataset_type_name",
    "validate_dimension_name",
]

DataIdValue = int | str

# Dataset type names become parts of user-facing expressions (``calexp.wcs``,
# ``calexp:jointcal``), so "." and ":" are reserved for the layer above.
_DATASET_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Dimension names become SQL column names (quoted, but kept boring on purpose)
# and identifiers in ``where`` expressions, hence lowercase identifiers only.
_DIMENSION_NAME = re.compile(r"[a-z_][a-z0-9_]*")
# Collection names are path-like (``u/alice/jointcal-v2.1``) but never file paths.
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_./-]+")


def validate_dataset_type_name(name: object) -> str:
    """Return ``name`` if it is a valid dataset type name.

    Raises
    ------
    InvalidNameError
        If ``name`` is not a string matching ``^[A-Za-z_][A-Za-z0-9_]*$``.
    """
    if not isinstance(name, str) or not _DATASET_TYPE_NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid dataset type name {name!r}: use letters, digits and '_', "
            "not starting with a digit (components like '.wcs' and stages like "
            "':jointcal' are not part of the name)"
        )
    return name


def validate_dimension_name(name: object) -> str:
    """Return ``name`` if it is a valid dimension name.

    Raises
    ------
    InvalidNameError
        If ``name`` is not a string matching ``^[a-z_][a-z0-9_]*$``.
    """
    if not isinstance(name, str) or not _DIMENSION_NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid dimension name {name!r}: use lowercase letters, digits and '_', "
            "not starting with a digit"
        )
    return name


def validate_collection_name(name: object) -> str:
    """Return ``name`` if it is a valid collection name.

    Raises
    ------
    InvalidNameError
        If ``name`` is not a non-empty string of letters, digits, '/', '-', '.', '_'.
    """
    if not isinstance(name, str) or not _COLLECTION_NAME.fullmatch(name):
        raise InvalidNameError(
            f"invalid collection name {name!r}: use letters, digits, '/', '-', '.' and '_'"
        )
    return name


class CollectionType(enum.Enum):
    """The kind of a collection.

    RUN holds what one processing stage wrote (every dataset is in exactly one
    RUN); CHAINED is an ordered search path over other collections; TAGGED is
    a hand-picked set of datasets from any runs.
    """

    RUN = 1
    CHAINED = 2
    TAGGED = 3

    @classmethod
    def _missing_(cls, value: object) -> CollectionType:
        """``CollectionType("chained")``: a name, in any case; anything else is refused.

        Raises
        ------
        CollectionTypeError
            If ``value`` names no collection type.
        """
        if isinstance(value, str) and value.upper() in cls.__members__:
            return cls.__members__[value.upper()]
        raise CollectionTypeError(
            f"unknown collection type {str(value)[:100]!r}: use "
            f"{', '.join(cls.__members__)}"
        )


class DataId(Mapping[str, DataIdValue]):
    """An immutable, hashable mapping of dimension name to value.

    Keys are kept sorted so that two data IDs with the same items are equal,
    hash alike and print alike whatever order they were built in. A DataId
    compares equal to a plain ``dict`` with the same items.

    Parameters
    ----------
    values : `~collections.abc.Mapping` or iterable of pairs, optional
        The items; keyword arguments are added to them.
    """

    __slots__ = ("_items", "_hash")

    _items: tuple[tuple[str, DataIdValue], ...]
    _hash: int

    def __init__(
        self,
        values: Mapping[str, DataIdValue] | Any = (),
        /,
        **kwargs: DataIdValue,
    ) -> None:
        merged = dict(values)
        merged.update(kwargs)
        for key in merged:
            if type(key) is not str:
                raise DataIdError(
                    f"data ID key {key!r} ({type(key).__name__}) is not a dimension name (a str)"
                )
        items = tuple(sorted(merged.items()))
        try:
            digest = hash(items)
        except TypeError:
            bad = next(k for k, v in items if not isinstance(v, Hashable))
            raise DataIdError(
                f"data ID value of {bad!r} is {str(merged[bad])[:100]} "
                f"({type(merged[bad]).__name__}); data ID values are integers or strings"
            ) from None
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_hash", digest)

    @classmethod
    def _from_sorted(cls, items: tuple[tuple[str, DataIdValue], ...]) -> DataId:
        # Fast path for rows read back from SQL: items are already validated and sorted.
        self = cls.__new__(cls)
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_hash", hash(items))
        return self

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("DataId is immutable")

    def __getitem__(self, key: str) -> DataIdValue:
        for k, v in self._items:
            if k == key:
                return v
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DataId):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in self._items) + "}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (DataId, (dict(self._items),))

    def to_dict(self) -> dict[str, DataIdValue]:
        """Return the items as a plain, JSON-friendly dict."""
        return dict(self._items)


@dataclass(frozen=True)
class DatasetType:
    """A named kind of dataset: its dimensions and its storage class.

    Parameters
    ----------
    name : `str`
        The dataset type name, e.g. ``calexp``.
    dimensions : `tuple` [`str`, ...]
        The dimensions a data ID of this type has, e.g. ``("visit", "detector")``.
    storage_class : `str`
        The name of the storage class that (dis)assembles its objects.
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str
    #: Dimensions a later processing stage added (``tract`` added by jointcal to
    #: ``calexp``): datasets written before may lack them. A subset of ``dimensions``.
    optional_dimensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Accept lists for convenience but store tuples so the value stays hashable.
        if not isinstance(self.dimensions, tuple):
            object.__setattr__(self, "dimensions", tuple(self.dimensions))
        if not isinstance(self.optional_dimensions, tuple):
            object.__setattr__(self, "optional_dimensions", tuple(self.optional_dimensions))

    @property
    def required_dimensions(self) -> tuple[str, ...]:
        """The dimensions every data ID of this type has."""
        return tuple(d for d in self.dimensions if d not in self.optional_dimensions)

    def check_data_id(self, data_id: Mapping[str, Any], *, partial: bool = False) -> None:
        """Check ``data_id`` has this type's dimensions (all required ones unless ``partial``).

        Raises
        ------
        DataIdError
            If a required dimension is missing (unless ``partial``) or one is extra,
            naming them and the dimensions this type has.
        """
        given = set(data_id)
        missing = [
            d for d in self.dimensions if d not in given and d not in self.optional_dimensions
        ]
        extra = sorted(given - set(self.dimensions), key=str)
        if (missing and not partial) or extra:
            parts = []
            if missing and not partial:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"extra {', '.join(map(str, extra))}")
            raise DataIdError(
                f"data ID {dict(data_id)!r} does not fit dataset type {self.name!r}: "
                f"{'; '.join(parts)} (it expects {', '.join(self.dimensions) or 'no dimensions'})"
            )

    def __str__(self) -> str:
        dims = ", ".join(d + ("?" if d in self.optional_dimensions else "") for d in self.dimensions)
        return f"{self.name}({dims}) -> {self.storage_class}"


@dataclass(frozen=True)
class DatasetRef:
    """A resolved dataset: its UUID, type, data ID, RUN and manifest digest.

    Parameters
    ----------
    id : `uuid.UUID`
        The dataset's unique ID.
    dataset_type : `str`
        The dataset type name.
    data_id : `DataId`
        The dataset's full data ID.
    run : `str`
        The RUN collection that holds the dataset.
    manifest : `str`
        The digest of the dataset's manifest.
    """

    id: uuid.UUID
    dataset_type: str
    data_id: DataId
    run: str
    manifest: str

    def __str__(self) -> str:
        return f"{self.dataset_type}@{self.data_id!r} in {self.run!r} ({self.id})"
