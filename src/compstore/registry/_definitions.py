"""Dataset types defined from other dataset types: aggregates and joins.

A *defined* dataset type stores nothing of its own: it names member dataset
types and how their datasets combine, and is resolved when read. Two kinds:

- ``aggregate``: the datasets of one member type over some of its dimensions
  (``src_visit`` = ``src`` over ``detector``); its dimensions are the member's
  minus ``over``;
- ``join``: catalogs of several member types with the same dimensions,
  joined column-wise on a key column (``objectTable`` on ``id``).

Definitions live in the registry's ``dataset_type_definition`` table (one row a
name, the definition as canonical JSON). A name is either a dataset type or a
definition, never both. Repositories made before the table existed get it with
their first definition; readers treat a missing table as "no definitions".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from ..errors import CorruptBlobError

__all__ = ["DatasetTypeDefinition", "definition_table"]

Kind = Literal["aggregate", "join"]


@dataclass(frozen=True)
class DatasetTypeDefinition:
    """What a defined dataset type is made of.

    Attributes
    ----------
    name : str
        The defined dataset type's name (``src_visit``).
    kind : {"aggregate", "join"}
        Row-wise union over ``over``, or column-wise join on ``on``.
    members : tuple of str
        The member dataset types (one for an aggregate).
    dimensions : tuple of str
        The defined type's dimensions: a data ID of it selects the members.
    storage_class : str
        The member storage class (every member has it).
    over : tuple of str
        For an aggregate, the member dimensions it unites over.
    on : str or None
        For a join, the key column every member holds.
    """

    name: str
    kind: Kind
    members: tuple[str, ...]
    dimensions: tuple[str, ...]
    storage_class: str
    over: tuple[str, ...] = ()
    on: str | None = None

    def to_json(self) -> str:
        """The canonical JSON stored in the registry (equal definitions, equal text)."""
        return json.dumps(
            {
                "kind": self.kind,
                "members": list(self.members),
                "dimensions": list(self.dimensions),
                "storage_class": self.storage_class,
                "over": list(self.over),
                "on": self.on,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, name: str, text: str) -> DatasetTypeDefinition:
        """Parse a stored definition.

        Raises
        ------
        CorruptBlobError
            If the stored text is not a definition (a damaged registry).
        """
        try:
            value = json.loads(text)
            kind = value["kind"]
            if kind not in ("aggregate", "join"):
                raise ValueError(f"unknown kind {kind!r}")
            return cls(
                name=name,
                kind=kind,
                members=_names(value["members"]),
                dimensions=_names(value["dimensions"]),
                storage_class=str(value["storage_class"]),
                over=_names(value["over"]),
                on=value["on"] if isinstance(value["on"], str) else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptBlobError(
                f"the registry's definition of {name!r} is damaged ({exc}); "
                "register it again or run `compstore verify`"
            ) from None

    def describe(self) -> str:
        """One line for messages and listings."""
        if self.kind == "aggregate":
            return f"{self.name}: {self.members[0]} over {', '.join(self.over)}"
        return f"{self.name}: join of {', '.join(self.members)} on {self.on!r}"


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError("expected a list of names")
    if not all(isinstance(v, str) for v in values):
        raise TypeError("expected a list of names")
    return tuple(values)


def definition_table(md: sa.MetaData) -> sa.Table:
    """The ``dataset_type_definition`` table, described in ``md`` (no DDL)."""
    if "dataset_type_definition" in md.tables:
        return md.tables["dataset_type_definition"]
    return sa.Table(
        "dataset_type_definition",
        md,
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
    )


def read_definitions(conn: sa.Connection, table: sa.Table) -> Mapping[str, str]:
    """Every stored definition's text by name; empty when the table does not exist."""
    if not sa.inspect(conn).has_table(table.name):
        return {}
    return {name: text for name, text in conn.execute(sa.select(table.c.name, table.c.definition))}
