"""The registry's SQL schema (SQLAlchemy Core), and the DDL that grows it.

The ``dataset`` table has one typed, nullable column per dimension, named
``dim_<dimension>``; the prefix keeps dimension names (``id``, ``manifest``...)
from ever colliding with the fixed columns. A new dimension adds a column
with ``ALTER TABLE ... ADD COLUMN`` and an index on
``(dataset_type_id, dim_<dimension>)``. See ``docs/registry.md`` for why.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.schema import CreateColumn

from ._dimensions import ValueType

__all__ = [
    "SCHEMA_VERSION",
    "refresh_statistics",
    "add_dimension_column",
    "attach_dimension_column",
    "build_metadata",
    "dimension_column_name",
    "meta_tables",
    "schema_ddl",
]

#: major.minor of the registry schema; a different major cannot be opened.
SCHEMA_VERSION = "1.0"

_DIMENSION_PREFIX = "dim_"


def dimension_column_name(dimension: str) -> str:
    """Return the ``dataset`` column that holds ``dimension`` (a validated name)."""
    return _DIMENSION_PREFIX + dimension


def _dimension_column(dimension: str, value_type: ValueType) -> sa.Column[object]:
    sql_type: sa.types.TypeEngine[object] = (
        sa.BigInteger() if value_type == "int" else sa.Text()  # type: ignore[assignment]
    )
    return sa.Column(dimension_column_name(dimension), sql_type, nullable=True)


def _dimension_index(table: sa.Table, dimension: str) -> sa.Index:
    # dataset_type_id first: every query is for one dataset type, and an index that
    # covers both constraints beats the unique index in SQLite's planner even
    # without ANALYZE statistics. Partial (IS NOT NULL): rows of dataset types
    # without this dimension cost no index entry, so unused dimensions are free;
    # any comparison on the column implies NOT NULL, so queries still use it.
    column = table.c[dimension_column_name(dimension)]
    return sa.Index(
        f"ix_dataset_{dimension_column_name(dimension)}",
        table.c.dataset_type_id,
        column,
        sqlite_where=column.is_not(None),
        postgresql_where=column.is_not(None),
    )


def build_metadata(dimensions: Mapping[str, ValueType | None]) -> sa.MetaData:
    """Build the schema for a registry whose typed dimensions are ``dimensions``.

    Dimensions whose type is still unknown (``None``: registered, no value
    inserted yet) have no column.
    """
    md = sa.MetaData()
    sa.Table(
        "registry_meta",
        md,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    sa.Table(
        "dimension",
        md,
        sa.Column("name", sa.String(128), primary_key=True),
        # "int" or "str"; NULL until the first value of a new dimension is inserted.
        sa.Column("value_type", sa.String(8), nullable=True),
    )
    sa.Table(
        "dataset_type",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        # JSON list, in the order the dataset type was registered with.
        sa.Column("dimensions", sa.Text, nullable=False),
        sa.Column("storage_class", sa.String(128), nullable=False),
        # JSON list of the dimensions later stages added (NULL: none).
        sa.Column("optional_dimensions", sa.Text, nullable=True),
    )
    sa.Table(
        "collection",
        md,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("type", sa.SmallInteger, nullable=False),
    )
    sa.Table(
        "collection_chain",
        md,
        sa.Column("parent_id", sa.ForeignKey("collection.id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("child_id", sa.ForeignKey("collection.id"), nullable=False),
    )
    dataset = sa.Table(
        "dataset",
        md,
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("dataset_type_id", sa.ForeignKey("dataset_type.id"), nullable=False),
        sa.Column("run_id", sa.ForeignKey("collection.id"), nullable=False),
        sa.Column("manifest", sa.String(128), nullable=False),
        # Canonical text of the data ID values, in sorted-dimension order: the
        # one column a unique index over any dataset type's data IDs can use.
        sa.Column("data_id_key", sa.Text, nullable=False),
        # dataset_type_id, data_id_key first: find_dataset knows both and looks
        # in several runs at once; run_id last keeps the index unique per run.
        sa.Index("ux_dataset_type_key_run", "dataset_type_id", "data_id_key", "run_id",
                 unique=True),
        # Listing or removing a run, or querying one dataset type in a few runs.
        sa.Index("ix_dataset_run_type", "run_id", "dataset_type_id"),
    )
    for name, value_type in sorted(dimensions.items()):
        if value_type is not None:
            dataset.append_column(_dimension_column(name, value_type))
            _dimension_index(dataset, name)
    sa.Table(
        "dataset_tag",
        md,
        sa.Column("collection_id", sa.ForeignKey("collection.id"), primary_key=True),
        sa.Column("dataset_id", sa.ForeignKey("dataset.id"), primary_key=True),
        # Copied from the dataset so a TAGGED collection holds one dataset per
        # type and data ID, enforced by the database.
        sa.Column("dataset_type_id", sa.ForeignKey("dataset_type.id"), nullable=False),
        sa.Column("data_id_key", sa.Text, nullable=False),
        sa.Index("ux_dataset_tag_key", "collection_id", "dataset_type_id", "data_id_key",
                 unique=True),
        sa.Index("ix_dataset_tag_dataset", "dataset_id"),
    )
    sa.Table(
        "provenance",
        md,
        sa.Column("output_id", sa.ForeignKey("dataset.id"), primary_key=True),
        sa.Column("task_label", sa.String(256), nullable=False),
        sa.Column("task_class", sa.String(512), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
    )
    sa.Table(
        "provenance_input",
        md,
        sa.Column("output_id", sa.ForeignKey("provenance.output_id"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        # No foreign key: provenance outlives the removal of an input dataset.
        sa.Column("input_id", sa.Uuid, nullable=False),
    )
    return md


def schema_ddl(dialect: sa.Dialect, dimensions: Mapping[str, ValueType | None]) -> tuple[str, ...]:
    """The statements that create the schema of `build_metadata` (``dimensions``) in ``dialect``.

    What ``MetaData.create_all`` runs (tables in dependency order, then their
    indexes), compiled once per dialect and dimension set in a process:
    compiling is most of a new registry's time.
    """
    key = (dialect.name, dialect.driver, tuple(sorted(dimensions.items())))
    with _ddl_lock:
        statements = _ddl.get(key)
        if statements is None:
            md = build_metadata(dimensions)
            made: list[str] = []
            for table in md.sorted_tables:
                made.append(str(sa.schema.CreateTable(table).compile(dialect=dialect)).strip())
                made.extend(
                    str(sa.schema.CreateIndex(index).compile(dialect=dialect)).strip()
                    for index in sorted(table.indexes, key=lambda i: str(i.name))
                )
            statements = _ddl[key] = tuple(made)
        return statements


_ddl: dict[tuple[str, str, tuple[tuple[str, ValueType | None], ...]], tuple[str, ...]] = {}
_ddl_lock = threading.Lock()


@functools.cache
def meta_tables() -> Mapping[str, sa.Table]:
    """The schema's tables without dimension columns, built once: to read ``registry_meta``
    and ``dimension`` before a registry has described its own schema. Never to be
    changed (`attach_dimension_column`, `definition_table` take a registry's own)."""
    return build_metadata({}).tables


def attach_dimension_column(md: sa.MetaData, dimension: str, value_type: ValueType) -> sa.Column[object]:
    """Describe in ``md`` a dimension column that exists in the database (no DDL)."""
    dataset = md.tables["dataset"]
    column = _dimension_column(dimension, value_type)
    dataset.append_column(column)
    _dimension_index(dataset, dimension)
    return column


def add_dimension_column(
    conn: sa.Connection, md: sa.MetaData, dimension: str, value_type: ValueType
) -> None:
    """Add the column and index of a newly typed dimension, in ``conn``'s transaction.

    ``dimension`` has been validated as ``^[a-z_][a-z0-9_]*$`` and SQLAlchemy
    quotes the identifiers anyway: no user text reaches the DDL unchecked.
    """
    dataset = md.tables["dataset"]
    column = attach_dimension_column(md, dimension, value_type)
    preparer = conn.dialect.identifier_preparer
    column_ddl = CreateColumn(column).compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(dataset)} ADD COLUMN {column_ddl}")
    index_name = f"ix_dataset_{dimension_column_name(dimension)}"
    next(i for i in dataset.indexes if i.name == index_name).create(conn)


def refresh_statistics(conn: sa.Connection, table: sa.Table) -> None:
    """Re-run ``ANALYZE`` on ``table`` once it has doubled since the last run (SQLite).

    Without statistics SQLite guesses that every index is equally selective and
    may scan half the table through ``detector < 500`` instead of looking up
    ``visit IN (1, 2)``. Doubling keeps the cost (it grows with the table)
    amortised over the inserts. PostgreSQL's autovacuum does this by itself.
    """
    if conn.dialect.name != "sqlite":
        return
    has_stats = conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).scalar()
    analysed = 0
    if has_stats:
        stat = conn.execute(
            sa.text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t AND idx = :i"),
            {"t": table.name, "i": "ux_dataset_type_key_run"},
        ).scalar()
        analysed = int(str(stat).split()[0]) if stat else 0
    rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
    if rows >= 2 * analysed:
        conn.exec_driver_sql(f"ANALYZE {conn.dialect.identifier_preparer.format_table(table)}")
