"""The SQL registry: dataset types, dimensions, collections, datasets and provenance."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import (
    AmbiguousDatasetError,
    CollectionError,
    CollectionTypeError,
    ConflictingDatasetError,
    DataIdError,
    DatasetNotFoundError,
    DatasetTypeConflictError,
    EncodingError,
    InvalidNameError,
    MissingCollectionError,
    MissingDatasetTypeError,
    QueryError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)

from ._dimensions import (
    BUILTIN_DIMENSIONS,
    ValueType,
    coerce_value,
    infer_value_type,
)
from ._definitions import DatasetTypeDefinition, definition_table, read_definitions
from ._engine import damaged_registry_error, is_sqlite, make_engine, make_url, set_durability
from ._postgres import PgWatcher, bump_generation, copy_rows
from ._schema import (
    SCHEMA_VERSION,
    add_dimension_column,
    attach_dimension_column,
    build_metadata,
    dimension_column_name,
    refresh_statistics,
)
from ._types import (
    CollectionType,
    DataId,
    DataIdValue,
    DatasetRef,
    DatasetType,
    validate_collection_name,
    validate_dataset_type_name,
    validate_dimension_name,
)
from ._where import check_where, parse_where, where_to_sql

__all__ = ["Registry"]

# Rows per executemany call in bulk inserts: large enough to amortise the
# statement overhead, small enough to keep memory flat for a million rows.
_CHUNK = 20_000
# Values per IN (...) list: SQLite's default limit on bound parameters is 32766.
_IN_CHUNK = 500
# Bulk inserts at least this large may refresh the planner's statistics.
_ANALYZE_AFTER = 10_000
# How many candidates/names an error message lists before "and N more".
_LIST_LIMIT = 20
# The registry_meta key of the catalog version: bumped by every transaction that
# changes dataset types, dimensions or collections, so that every process can
# tell whether the ones it has cached are still what the database holds.
_CATALOG_KEY = "catalog_version"
# Nothing seen yet: differs from every stored value, None (an older repository) included.
_UNSEEN = object()

CollectionArg = str | Sequence[str]


def _listing(names: Iterable[object], separator: str = ", ") -> str:
    items = [str(n) for n in names]
    if not items:
        return "(none)"
    shown = separator.join(items[:_LIST_LIMIT])
    return shown + (f" and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else "")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _first_per_identity(ranked: list[tuple[int, Any]], info: _TypeInfo) -> list[tuple[int, Any]]:
    """The search rule: keep, per identity, the matches of the first collection that has one.

    ``ranked`` holds ``(rank in the search path, row)`` for every dataset that
    matches what the caller asked for; a row is ``id, run_id, manifest,
    data_id_key`` then the values of the sorted dimensions. A dataset's
    *identity* is its values of the dataset type's *required* dimensions:
    sfm's ``calexp(visit=1, detector=2)`` and jointcal's ``calexp(visit=1,
    detector=2, tract=9)`` are two stages of one exposure, so a dimension that
    only a later stage added (``tract``) never makes the earlier stage's
    dataset a second candidate. Every match in the winning collection is kept:
    several (two tracts of one exposure in jointcal) are a genuine ambiguity
    for the caller to resolve. This is the one place the search path shadows
    datasets: `Registry.find_dataset`, `Registry.find_datasets_partial` and
    ``query_datasets(find_first=True)`` (the quantum-graph builder's input
    query) all go through it.
    """
    positions = tuple(4 + i for i in info.key_positions)
    first: dict[tuple[Any, ...], int] = {}
    for r, row in ranked:
        identity = tuple(row[i] for i in positions)
        have = first.get(identity)
        if have is None or r < have:
            first[identity] = r
    return [(r, row) for r, row in ranked if first[tuple(row[i] for i in positions)] == r]


def _choose(
    dataset_type: str,
    data_id: Mapping[str, Any],
    candidates: list[DatasetRef],
    collections: CollectionArg | None,
) -> DatasetRef | None:
    """The one dataset a partial lookup means, or an error that says how to pick one.

    In a search path every candidate of one identity comes from one collection
    (`_first_per_identity`), where a data ID that is exactly a candidate's
    names it: a run holding ``calexp(visit=1, detector=2)`` and, from a
    re-run, ``calexp(visit=1, detector=2, tract=9)`` gives the first for
    ``visit=1, detector=2`` and the second with ``tract=9`` added. Without a
    search path the candidates are in different runs and nothing orders them.

    Raises
    ------
    AmbiguousDatasetError
        If several candidates remain.
    """
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    given = dict(data_id)
    if collections is not None:
        exact = [ref for ref in candidates if len(ref.data_id) == len(given)]
        if len(exact) == 1:
            return exact[0]

    def pick(ref: DatasetRef) -> str:
        extra = [f"{d}={v!r}" for d, v in ref.data_id.items() if d not in given]
        if collections is None:
            extra.append(f"collections=[{ref.run!r}]")
        return f"{' and '.join(extra)} for {ref.data_id} in {ref.run!r}"

    if collections is None:
        where = "the RUN collections (no search path given)"
    else:
        where = f"collections {[collections] if isinstance(collections, str) else list(collections)!r}"
    advice = (
        "give the dimension values" + (" or the collection" if collections is None else "")
        + " that pick one"
    )
    raise AmbiguousDatasetError(
        f"{dataset_type} with data ID {DataId(given)} matches {len(candidates)} datasets in "
        f"{where}; {advice}: " + _listing((pick(ref) for ref in candidates), "; ")
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


class Registry:
    """The SQL registry of a compstore repository.

    Parameters
    ----------
    target : `str`, `os.PathLike` or `sqlalchemy.URL`
        Path of an existing SQLite registry file, or a ``sqlite:`` /
        ``postgresql:`` URL.

    Raises
    ------
    RepositoryNotFoundError
        If there is no registry at ``target``.
    RepositoryFormatError
        If the registry's schema has another major version.

    Notes
    -----
    A Registry may be shared by threads: each thread gets its own connection,
    and :meth:`transaction` is per thread.
    """

    # Set lazily (read through getattr with a default), declared here for typing.
    _watcher: sqlite3.Connection | PgWatcher | None

    def __init__(
        self,
        target: str | os.PathLike[str] | sa.URL,
        *,
        _create: bool = False,
        _creator: str | None = None,
    ) -> None:
        self._url = make_url(target)
        database = self._url.database
        file_backed = is_sqlite(self._url) and database not in (None, "", ":memory:")
        if file_backed and not _create and not os.path.exists(str(database)):
            # Connecting would create an empty file: check first.
            raise RepositoryNotFoundError(f"no registry at {database!r}: create it first")
        self._engine = make_engine(self._url)
        self._local = threading.local()
        self._watcher = None  # data_version's own connection, opened on first use
        # What the caches below were validated against (see _check_catalog).
        self._version_seen: int | None = None
        self._catalog_seen: object = _UNSEEN
        self._fast_paths: dict[tuple[str, ...], tuple[int, list[tuple[int, str]]]] = {}
        self._lock = threading.RLock()
        self._stale = True
        self._dimensions: dict[str, ValueType | None] = {}
        self._md = build_metadata({})
        self._types: dict[str, _TypeInfo] = {}
        self._type_names: dict[int, str] = {}
        self._collections: dict[str, tuple[int, CollectionType]] = {}
        self._collection_names: dict[int, str] = {}
        self._statement_cache: dict[int, tuple[sa.MetaData, _TypeInfo, Any, Any, Any]] = {}
        self._insert_plans: dict[tuple[str, ...], _InsertPlan | None] = {}
        if _create:
            self._create_schema(_creator)
        else:
            self._check_schema()

    # -- opening and closing -----------------------------------------------------
    @classmethod
    def create(
        cls, target: str | os.PathLike[str] | sa.URL, *, creator: str | None = None
    ) -> Registry:
        """Create a new, empty registry and return it open.

        Parameters
        ----------
        target : `str`, `os.PathLike` or `sqlalchemy.URL`
            Path of the SQLite file to create, or a database URL.
        creator : `str`, optional
            Recorded with the schema (``registry_meta`` key ``creator``), in the
            same transaction: the repository folder creating a registry in a
            database, so that a create killed before its config was written
            can be run again there (see `created_by`).

        Returns
        -------
        registry : `Registry`
            The new registry.

        Raises
        ------
        RepositoryExistsError
            If a registry exists already at ``target``.
        """
        return cls(target, _create=True, _creator=creator)

    @staticmethod
    def created_by(target: str | sa.URL) -> tuple[str | None, int] | None:
        """Who created the registry at database ``target``, and how many rows it names.

        Returns
        -------
        `None` if ``target`` holds no registry; else ``(creator, rows)``: the
        ``creator`` given to `create` (None if none was) and the number of
        dataset types, collections and datasets it holds.
        """
        engine = make_engine(make_url(target))
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table("registry_meta"):
                    return None
                creator = conn.exec_driver_sql(
                    "SELECT value FROM registry_meta WHERE key = 'creator'"
                ).scalar()
                rows = conn.exec_driver_sql(
                    "SELECT (SELECT count(*) FROM dataset_type) + (SELECT count(*) FROM collection)"
                    " + (SELECT count(*) FROM dataset)"
                ).scalar()
                return creator, int(rows or 0)
        finally:
            engine.dispose()

    def _create_schema(self, creator: str | None = None) -> None:
        with self._engine.connect() as conn:
            if sa.inspect(conn).has_table("registry_meta"):
                raise RepositoryExistsError(f"a registry exists already at {self._where()}")
        md = build_metadata(dict(BUILTIN_DIMENSIONS))
        with self._engine.connect() as conn:
            conn.execution_options(compstore_write=True)
            with conn.begin():
                md.create_all(conn)
                conn.execute(
                    md.tables["registry_meta"].insert(),
                    [{"key": "schema_version", "value": SCHEMA_VERSION},
                     {"key": _CATALOG_KEY, "value": "0"},
                     *([{"key": "creator", "value": creator}] if creator else [])],
                )
                if conn.dialect.name == "postgresql":
                    bump_generation(conn, md.tables["registry_meta"])  # the change counter's row
                conn.execute(
                    md.tables["dimension"].insert(),
                    [{"name": n, "value_type": t} for n, t in BUILTIN_DIMENSIONS.items()],
                )

    def _check_schema(self) -> None:
        with self._engine.connect() as conn:
            if not sa.inspect(conn).has_table("registry_meta"):
                raise RepositoryNotFoundError(f"no registry at {self._where()}")
            meta = build_metadata({}).tables["registry_meta"]
            version = conn.execute(
                sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
        if version is None or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise RepositoryFormatError(
                f"registry at {self._where()} has schema version {version!r}; "
                f"this compstore reads version {SCHEMA_VERSION.split('.')[0]}.x"
            )

    def _where(self) -> str:
        return repr(self._url.database) if is_sqlite(self._url) else self._url.render_as_string()

    def close(self) -> None:
        """Close every pooled connection; the registry can be reopened by path."""
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()
        self._engine.dispose()

    def data_version(self) -> int | None:
        """A number that changes whenever anyone (any process) commits to the database.

        Layers above use it to validate their own caches of lookups in a few
        microseconds. SQLite's ``PRAGMA data_version`` read on a connection of
        its own; on PostgreSQL the registry's own generation row, which every
        writing transaction bumps (``registry/_postgres.py``); None for an
        in-memory SQLite database (then nothing may be cached).

        It is also where this registry validates its own caches (dataset types,
        collections): when the number has changed since the last call, the
        catalog version is read too, and the caches are dropped if another
        transaction changed the catalog. So a caller that checks this number
        before using its own cache has validated both with one query.
        """
        if self._url.get_backend_name() == "postgresql":
            return self._pg_data_version()
        if not is_sqlite(self._url) or not self._url.database:
            return None
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                # A connection of its own: data_version only changes for commits made
                # on *other* connections, which every registry write is.
                watcher = sqlite3.connect(self._url.database, check_same_thread=False)
                self._watcher = watcher
            try:
                version = int(watcher.execute("PRAGMA data_version").fetchone()[0])  # type: ignore[index]
                row = None
                if version != self._version_seen:
                    # Read after data_version: the catalog seen is at least as new as the
                    # version recorded, so a commit between the two is caught next time.
                    row = watcher.execute(
                        "SELECT value FROM registry_meta WHERE key = ?", (_CATALOG_KEY,)
                    ).fetchone()
            except sqlite3.DatabaseError as exc:
                error = damaged_registry_error(self._url.database, exc)
                if error is None:
                    raise
                raise error from exc
            if version != self._version_seen:
                self._check_catalog(row[0] if row is not None else None)
                self._version_seen = version
            return version

    def _pg_data_version(self) -> int:
        """`data_version` on PostgreSQL: the generation and catalog in one round trip."""
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                watcher = self._watcher = PgWatcher(self._url)
            version, catalog = watcher.state()  # type: ignore[union-attr]
            if version != self._version_seen:
                self._check_catalog(catalog)
                self._version_seen = version
            return version

    def _check_catalog(self, catalog: object) -> None:
        """Drop the cached dataset types and collections unless ``catalog`` is the version they reflect.

        Inserting datasets leaves the catalog version alone, so puts (ours or
        another process's) keep the caches; a dataset type extended by another
        process (jointcal adding ``tract``), a collection created or a chain
        changed there are seen by this registry's next call.
        """
        with self._lock:
            if catalog == self._catalog_seen:
                return
            self._types.clear()
            self._type_names.clear()
            self._collections.clear()
            self._collection_names.clear()
            self._fast_paths.clear()
            self._catalog_seen = catalog

    def _validate(self, conn: sa.Connection) -> None:
        """Make the caches reflect the catalog another process may have changed (one cheap query)."""
        if self.data_version() is None:
            # No data_version to watch (another database): read the catalog version.
            meta = self._t["registry_meta"]
            self._check_catalog(
                conn.execute(sa.select(meta.c.value).where(meta.c.key == _CATALOG_KEY)).scalar()
            )

    def _bump_catalog(self, conn: sa.Connection) -> None:
        """Record, in ``conn``'s transaction, that the catalog changed (for every process's caches)."""
        meta = self._t["registry_meta"]
        changed = conn.execute(
            sa.update(meta)
            .where(meta.c.key == _CATALOG_KEY)
            .values(value=sa.cast(sa.cast(meta.c.value, sa.BigInteger) + 1, sa.Text))
        ).rowcount
        if not changed:  # a repository created before the catalog version existed
            conn.execute(meta.insert().values(key=_CATALOG_KEY, value="1"))

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Registry({self._url.render_as_string()!r})"

    @property
    def url(self) -> str:
        """The database URL (password hidden)."""
        return self._url.render_as_string()

    # -- connections and transactions ------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[None]:
        """Run the enclosed registry calls in one database transaction.

        Commits when the block ends normally, rolls back if it raises. Nested
        blocks are savepoints. The transaction belongs to the calling thread.

        Parameters
        ----------
        durable : `bool`, optional
            Whether the commit reaches the disk before the block returns (SQLite
            ``synchronous=FULL``). With False (a Butler opened with
            ``fsync=False``), a power cut may undo the last commits, never
            corrupt the database (``synchronous=NORMAL`` in WAL mode). A nested
            block keeps the outer one's setting.

        Raises
        ------
        sqlalchemy.exc.OperationalError
            If the database stays locked by another writer for 60 s.
        """
        with self._write(durable=durable) as _conn:
            yield

    @contextlib.contextmanager
    def _write(self, *, durable: bool = True) -> Iterator[sa.Connection]:
        outer: sa.Connection | None = getattr(self._local, "conn", None)
        try:
            if outer is not None:
                self._check_not_broken()
                # A savepoint: a failed call inside the caller's transaction undoes
                # only itself (an executemany that failed half-way, a new column).
                with _savepoint(outer, self._local):
                    yield outer
                return
            with self._engine.connect() as conn:
                conn.execution_options(compstore_write=True)
                set_durability(conn, durable)
                self._local.conn = conn
                self._local.broken = False
                try:
                    with conn.begin():
                        yield conn
                        self._check_not_broken()  # never commit what is left of a lost one
                        if conn.dialect.name == "postgresql":
                            # Last, so writers queue on the row only while committing.
                            bump_generation(conn, self._t["registry_meta"])
                finally:
                    self._local.conn = None
                    self._local.broken = False
        except BaseException:
            # Cached types, collections and dimension columns may describe rows
            # that were just rolled back: reload them on next use.
            self._stale = True
            raise

    def _check_not_broken(self) -> None:
        if getattr(self._local, "broken", False):
            raise RepositoryError(
                "the registry transaction was ended by the database after an earlier error "
                "inside it (see that error); nothing more can be done in it: leave the "
                "`with registry.transaction()` block and start a new one"
            )

    @contextlib.contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        outer: sa.Connection | None = getattr(self._local, "conn", None)
        if outer is not None:
            yield outer
            return
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def _refresh(self, conn: sa.Connection, *, force: bool = False) -> None:
        """Reload dimensions (and drop caches) if stale; with ``force``, learn new ones.

        A forced refresh only adds what another connection has committed: it
        never drops a column, so it cannot pull the rug from under another
        thread's open transaction. After a rollback (stale) the schema
        description is rebuilt from the database.
        """
        self._validate(conn)
        if not (self._stale or force):
            return
        with self._lock:
            dim = self._md.tables["dimension"]
            rows = dict(conn.execute(sa.select(dim.c.name, dim.c.value_type)).all())
            if self._stale:
                self._dimensions = rows
                self._md = build_metadata(rows)
                self._types.clear()
                self._type_names.clear()
                self._collections.clear()
                self._collection_names.clear()
                self._statement_cache.clear()
                self._insert_plans.clear()
                self._stale = False
                return
            for name, value_type in rows.items():
                if value_type is not None and self._dimensions.get(name) is None:
                    attach_dimension_column(self._md, name, value_type)
                self._dimensions[name] = value_type

    @property
    def _t(self) -> Mapping[str, sa.Table]:
        return self._md.tables

    # -- dimensions -----------------------------------------------------------------
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
                new_type = infer_value_type(dim, first[dim])
                dim_table = self._t["dimension"]
                with self._lock:
                    conn.execute(
                        sa.update(dim_table)
                        .where(dim_table.c.name == dim, dim_table.c.value_type.is_(None))
                        .values(value_type=new_type)
                    )
                    add_dimension_column(conn, self._md, dim, new_type)
                    self._dimensions[dim] = new_type
                self._bump_catalog(conn)
                types[dim] = new_type
        return types  # type: ignore[return-value]

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
            dim_table = self._t["dimension"]
            known = {n for (n,) in conn.execute(sa.select(dim_table.c.name))}
            new_dims = [d for d in dims if d not in known]
            if new_dims:
                conn.execute(
                    dim_table.insert(), [{"name": d, "value_type": None} for d in new_dims]
                )
                with self._lock:
                    for d in new_dims:
                        self._dimensions.setdefault(d, None)
            table = self._t["dataset_type"]
            conn.execute(
                table.insert().values(
                    name=name, dimensions=json.dumps(list(dims)), storage_class=storage_class
                )
            )
            self._bump_catalog(conn)
            info = self._lookup_type(conn, name)
            assert info is not None
            return info.dataset_type

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
                conn.execute(table.insert().values(name=definition.name, definition=text))
            elif stored != text:
                have = DatasetTypeDefinition.from_json(definition.name, stored)
                raise DatasetTypeConflictError(
                    f"{definition.name!r} is defined already as {have.describe()}; "
                    f"cannot define it again as {definition.describe()}"
                )
        return definition

    def get_definition(self, name: str) -> DatasetTypeDefinition | None:
        """The definition called ``name``, read afresh (None if there is none)."""
        with self._read() as conn:
            text = read_definitions(conn, definition_table(self._md)).get(name)
        return None if text is None else DatasetTypeDefinition.from_json(name, text)

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
                conn.execute(dim_table.insert().values(name=dim, value_type=value_type))
            if known.get(dim) is None:
                conn.execute(
                    sa.update(dim_table).where(dim_table.c.name == dim).values(value_type=value_type)
                )
                with self._lock:
                    add_dimension_column(conn, self._md, dim, value_type)
                    self._dimensions[dim] = value_type
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

    def dataset_types(self) -> list[DatasetType]:
        """Return every registered dataset type, sorted by name."""
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset_type"]
            names = conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars().all()
            return [self._type(conn, n).dataset_type for n in names]

    # -- collections -----------------------------------------------------------------
    def _lookup_collection(
        self, conn: sa.Connection, name: str
    ) -> tuple[int, CollectionType] | None:
        hit = self._collections.get(name)
        if hit is not None:
            return hit
        table = self._t["collection"]
        row = conn.execute(
            sa.select(table.c.id, table.c.type).where(table.c.name == name)
        ).first()
        if row is None:
            return None
        # A collection's type never changes and collections are never renamed.
        hit = (row.id, CollectionType(row.type))
        with self._lock:
            self._collections[name] = hit
            self._collection_names[row.id] = name
        return hit

    def _collection(self, conn: sa.Connection, name: str) -> tuple[int, CollectionType]:
        if not isinstance(name, str):
            raise InvalidNameError(f"a collection name is a string, got {name!r}")
        self._refresh(conn)
        hit = self._lookup_collection(conn, name)
        if hit is None:
            table = self._t["collection"]
            known = conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars()
            raise MissingCollectionError(
                f"collection {name!r} does not exist; known collections: {_listing(known)}"
            )
        return hit

    def _collection_name(self, conn: sa.Connection, collection_id: int) -> str:
        name = self._collection_names.get(collection_id)
        if name is None:
            table = self._t["collection"]
            name = conn.execute(
                sa.select(table.c.name).where(table.c.id == collection_id)
            ).scalar_one()
            self._lookup_collection(conn, name)
        return name

    def register_collection(self, name: str, collection_type: CollectionType) -> bool:
        """Create a collection of the given type, if it does not exist yet.

        Parameters
        ----------
        name : `str`
            Collection name: letters, digits, ``/``, ``-``, ``.``, ``_``.
        collection_type : `CollectionType`
            RUN, CHAINED or TAGGED.

        Returns
        -------
        created : `bool`
            True if the collection was created, False if it existed already.

        Raises
        ------
        InvalidNameError
            If the name is malformed.
        CollectionTypeError
            If it exists with another type.
        """
        validate_collection_name(name)
        collection_type = CollectionType(collection_type)
        with self._write() as conn:
            self._refresh(conn)
            hit = self._lookup_collection(conn, name)
            if hit is not None:
                if hit[1] is not collection_type:
                    raise CollectionTypeError(
                        f"collection {name!r} exists already as {hit[1].name}, "
                        f"not {collection_type.name}"
                    )
                return False
            conn.execute(
                self._t["collection"].insert().values(name=name, type=collection_type.value)
            )
            self._bump_catalog(conn)
            return True

    def register_run(self, name: str) -> bool:
        """Create a RUN collection if it does not exist yet.

        Returns
        -------
        created : `bool`
            True if the collection was created.

        Raises
        ------
        InvalidNameError
            If the name is malformed.
        CollectionTypeError
            If ``name`` exists as a CHAINED or TAGGED collection.
        """
        return self.register_collection(name, CollectionType.RUN)

    def collection_type(self, name: str) -> CollectionType:
        """Return the type of collection ``name``.

        Raises
        ------
        MissingCollectionError
            If there is no such collection.
        """
        with self._read() as conn:
            return self._collection(conn, name)[1]

    def query_collections(
        self,
        pattern: str | re.Pattern[str] | None = None,
        collection_type: CollectionType | None = None,
    ) -> list[str]:
        """Return the names of collections, sorted.

        Parameters
        ----------
        pattern : `str` or `re.Pattern`, optional
            A glob (``u/alice/*``) or a compiled regular expression that must
            match the whole name; `None` for all.
        collection_type : `CollectionType`, optional
            Only collections of this type.

        Returns
        -------
        names : `list` [`str`]
            Matching collection names.
        """
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["collection"]
            query = sa.select(table.c.name, table.c.type).order_by(table.c.name)
            if collection_type is not None:
                query = query.where(table.c.type == CollectionType(collection_type).value)
            names = [row.name for row in conn.execute(query)]
        if pattern is None:
            return names
        if isinstance(pattern, re.Pattern):
            return [n for n in names if pattern.fullmatch(n)]
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    def _children(self, conn: sa.Connection, parent_id: int) -> list[int]:
        chain = self._t["collection_chain"]
        return list(
            conn.execute(
                sa.select(chain.c.child_id)
                .where(chain.c.parent_id == parent_id)
                .order_by(chain.c.position)
            ).scalars()
        )

    def set_chain(self, name: str, children: Sequence[str]) -> None:
        """Set the ordered search path of CHAINED collection ``name``.

        Parameters
        ----------
        name : `str`
            An existing CHAINED collection.
        children : sequence of `str`
            Existing collections, searched in this order.

        Raises
        ------
        MissingCollectionError
            If ``name`` or a child does not exist.
        CollectionTypeError
            If ``name`` is not CHAINED.
        CollectionError
            If the chain would contain itself (a cycle); the message shows the cycle.
        """
        if isinstance(children, str):
            children = [children]
        with self._write() as conn:
            parent_id, parent_type = self._collection(conn, name)
            if parent_type is not CollectionType.CHAINED:
                raise CollectionTypeError(
                    f"collection {name!r} is {parent_type.name}, not CHAINED: it has no chain"
                )
            child_ids = [self._collection(conn, c)[0] for c in children]
            for child, child_id in zip(children, child_ids):
                path = self._path_to(conn, child_id, parent_id)
                if path is not None:
                    cycle = " -> ".join(
                        [name, child, *(self._collection_name(conn, i) for i in path[1:])]
                    )
                    raise CollectionError(
                        f"cannot chain {child!r} into {name!r}: it would make a cycle "
                        f"({cycle})"
                    )
            chain = self._t["collection_chain"]
            conn.execute(sa.delete(chain).where(chain.c.parent_id == parent_id))
            self._bump_catalog(conn)
            if child_ids:
                conn.execute(
                    chain.insert(),
                    [
                        {"parent_id": parent_id, "position": i, "child_id": c}
                        for i, c in enumerate(child_ids)
                    ],
                )

    def remove_run(self, name: str) -> list[str]:
        """Remove the empty RUN collection ``name``, and take it out of every chain.

        The caller removes the run's datasets first (`compstore.Butler.remove_run`
        does both in one transaction). A chain that contained the run keeps its
        other children, in order.

        Returns
        -------
        chains : `list` of `str`
            The CHAINED collections the run was taken out of, sorted.

        Raises
        ------
        MissingCollectionError
            If ``name`` does not exist.
        CollectionTypeError
            If ``name`` is not a RUN collection.
        CollectionError
            If the run still holds datasets.
        """
        with self._write() as conn:
            run_id, run_type = self._collection(conn, name)
            if run_type is not CollectionType.RUN:
                raise CollectionTypeError(
                    f"collection {name!r} is {run_type.name}, not RUN: remove_run removes "
                    "RUN collections only"
                )
            t = self._t
            left = conn.execute(
                sa.select(sa.func.count()).select_from(t["dataset"]).where(t["dataset"].c.run_id == run_id)
            ).scalar_one()
            if left:
                raise CollectionError(
                    f"RUN collection {name!r} still holds {left} dataset(s); remove them first"
                )
            chain = t["collection_chain"]
            parents = sorted(
                set(conn.execute(sa.select(chain.c.parent_id).where(chain.c.child_id == run_id)).scalars())
            )
            chains = []
            for parent_id in parents:
                kept = [c for c in self._children(conn, parent_id) if c != run_id]
                conn.execute(sa.delete(chain).where(chain.c.parent_id == parent_id))
                if kept:
                    conn.execute(
                        chain.insert(),
                        [{"parent_id": parent_id, "position": i, "child_id": c} for i, c in enumerate(kept)],
                    )
                chains.append(self._collection_name(conn, parent_id))
            conn.execute(sa.delete(t["collection"]).where(t["collection"].c.id == run_id))
            self._bump_catalog(conn)
            with self._lock:  # this process's caches; others see the catalog version change
                self._collections.pop(name, None)
                self._collection_names.pop(run_id, None)
                self._fast_paths.clear()
        return sorted(chains)

    def _path_to(self, conn: sa.Connection, start: int, target: int) -> list[int] | None:
        """Return a chain path of collection IDs from ``start`` to ``target``, if any."""
        stack: list[tuple[int, list[int]]] = [(start, [start])]
        seen: set[int] = set()
        while stack:
            node, path = stack.pop()
            if node == target:
                return path
            if node in seen:
                continue
            seen.add(node)
            for child in self._children(conn, node):
                stack.append((child, [*path, child]))
        return None

    def get_chain(self, name: str) -> tuple[str, ...]:
        """Return the children of CHAINED collection ``name``, in search order.

        Raises
        ------
        MissingCollectionError
            If there is no such collection.
        CollectionTypeError
            If it is not CHAINED.
        """
        with self._read() as conn:
            collection_id, collection_type = self._collection(conn, name)
            if collection_type is not CollectionType.CHAINED:
                raise CollectionTypeError(f"collection {name!r} is {collection_type.name}, not CHAINED")
            return tuple(self._collection_name(conn, c) for c in self._children(conn, collection_id))

    def _flatten(
        self, conn: sa.Connection, collections: CollectionArg
    ) -> list[tuple[int, CollectionType]]:
        if isinstance(collections, str):
            collections = [collections]
        out: list[tuple[int, CollectionType]] = []
        seen: set[int] = set()

        def visit(collection_id: int, collection_type: CollectionType) -> None:
            if collection_id in seen:
                return
            seen.add(collection_id)
            if collection_type is CollectionType.CHAINED:
                for child in self._children(conn, collection_id):
                    visit(*self._collection(conn, self._collection_name(conn, child)))
            else:
                out.append((collection_id, collection_type))

        for name in collections:
            visit(*self._collection(conn, name))
        return out

    def flatten_collections(self, collections: CollectionArg) -> list[str]:
        """Return the RUN and TAGGED collections searched for ``collections``, in order.

        Chains are expanded depth first; a collection reached twice is searched
        at its first place only.

        Raises
        ------
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            return [self._collection_name(conn, i) for i, _ in self._flatten(conn, collections)]

    def _tagged(self, conn: sa.Connection, name: str) -> int:
        collection_id, collection_type = self._collection(conn, name)
        if collection_type is not CollectionType.TAGGED:
            raise CollectionTypeError(
                f"collection {name!r} is {collection_type.name}, not TAGGED: datasets are "
                "associated only with TAGGED collections"
            )
        return collection_id

    def associate(self, tagged: str, refs: Iterable[DatasetRef | uuid.UUID]) -> None:
        """Add datasets to TAGGED collection ``tagged`` (already present ones are kept).

        Raises
        ------
        MissingCollectionError
            If ``tagged`` does not exist.
        CollectionTypeError
            If it is not TAGGED.
        DatasetNotFoundError
            If a dataset does not exist.
        ConflictingDatasetError
            If the collection holds another dataset of the same type and data ID.
        """
        ids = _ids(refs)
        with self._write() as conn:
            tag_id = self._tagged(conn, tagged)
            dataset, tag = self._t["dataset"], self._t["dataset_tag"]
            rows: dict[uuid.UUID, Any] = {}
            for chunk in _chunks(ids, _IN_CHUNK):
                for row in conn.execute(
                    sa.select(dataset.c.id, dataset.c.dataset_type_id, dataset.c.data_id_key)
                    .where(dataset.c.id.in_(chunk))
                ):
                    rows[row.id] = row
            missing = [i for i in ids if i not in rows]
            if missing:
                raise DatasetNotFoundError(f"no dataset with ID {_listing(missing)}")
            # What the collection holds already at these data IDs: one query per chunk,
            # not one per dataset.
            held: dict[tuple[int, str], uuid.UUID] = {}
            for chunk in _chunks(sorted({row.data_id_key for row in rows.values()}), _IN_CHUNK):
                for row in conn.execute(
                    sa.select(tag.c.dataset_type_id, tag.c.data_id_key, tag.c.dataset_id).where(
                        tag.c.collection_id == tag_id, tag.c.data_id_key.in_(chunk)
                    )
                ):
                    held[row.dataset_type_id, row.data_id_key] = row.dataset_id
            new: dict[tuple[int, str], uuid.UUID] = {}
            for dataset_id in ids:
                row = rows[dataset_id]
                key = (row.dataset_type_id, row.data_id_key)
                existing = held.get(key)
                other = existing if existing is not None else new.get(key)
                if other is not None and other != dataset_id:
                    raise ConflictingDatasetError(
                        f"TAGGED collection {tagged!r} already holds dataset "
                        f"{self._describe(conn, other)}; cannot also tag "
                        f"{self._describe(conn, dataset_id)} (same dataset type and data ID)"
                    )
                if existing is None:
                    new[key] = dataset_id
            if new:
                conn.execute(
                    tag.insert(),
                    [
                        {"collection_id": tag_id, "dataset_id": i, "dataset_type_id": t,
                         "data_id_key": k}
                        for (t, k), i in new.items()
                    ],
                )

    def disassociate(self, tagged: str, refs: Iterable[DatasetRef | uuid.UUID]) -> None:
        """Remove datasets from TAGGED collection ``tagged`` (absent ones are ignored).

        Raises
        ------
        MissingCollectionError
            If ``tagged`` does not exist.
        CollectionTypeError
            If it is not TAGGED.
        """
        ids = _ids(refs)
        with self._write() as conn:
            tag_id = self._tagged(conn, tagged)
            tag = self._t["dataset_tag"]
            for chunk in _chunks(ids, _IN_CHUNK):
                conn.execute(
                    sa.delete(tag).where(tag.c.collection_id == tag_id, tag.c.dataset_id.in_(chunk))
                )

    # -- datasets: writing -----------------------------------------------------------
    def insert_dataset(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        run: str,
        manifest: str,
        id: uuid.UUID | None = None,
    ) -> DatasetRef:
        """Record one dataset.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            Exactly the dataset type's dimensions. Integers may be given as numpy
            integers or digit strings.
        run : `str`
            An existing RUN collection.
        manifest : `str`
            The digest of the dataset's manifest.
        id : `uuid.UUID`, optional
            The dataset ID; a random (version 4) UUID by default.

        Returns
        -------
        ref : `DatasetRef`
            The new dataset.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID lacks or adds a dimension or has a wrongly typed value.
        MissingCollectionError
            If ``run`` does not exist.
        CollectionTypeError
            If ``run`` is not a RUN collection.
        ConflictingDatasetError
            If ``run`` holds a dataset of this type and data ID already, or ``id``
            is taken; the message names both datasets.
        """
        return self.insert_datasets(
            dataset_type, [data_id], run, [manifest], None if id is None else [id]
        )[0]

    def insert_datasets(
        self,
        dataset_type: str,
        data_ids: Sequence[Mapping[str, Any]],
        run: str,
        manifests: Sequence[str],
        ids: Sequence[uuid.UUID] | None = None,
    ) -> list[DatasetRef]:
        """Record many datasets of one type in one RUN, in one transaction.

        Rows go to the database with ``executemany`` in chunks, so a million
        rows take seconds, not minutes. Either every dataset is recorded or none.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_ids : sequence of mappings
            One full data ID per dataset.
        run : `str`
            An existing RUN collection.
        manifests : sequence of `str`
            One manifest digest per dataset.
        ids : sequence of `uuid.UUID`, optional
            One dataset ID per dataset; random UUIDs by default.

        Returns
        -------
        refs : `list` [`DatasetRef`]
            The new datasets, in input order.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If a data ID does not fit the dataset type, or the sequences differ
            in length.
        MissingCollectionError
            If ``run`` does not exist.
        CollectionTypeError
            If ``run`` is not a RUN collection.
        ConflictingDatasetError
            If a data ID or ID is in ``run`` already or twice in the input.
        """
        if len(manifests) != len(data_ids) or (ids is not None and len(ids) != len(data_ids)):
            raise DataIdError(
                f"insert_datasets got {len(data_ids)} data IDs, {len(manifests)} manifests"
                + ("" if ids is None else f" and {len(ids)} IDs")
                + ": give one of each per dataset"
            )
        refs: list[DatasetRef] = []
        with self._write() as conn:
            info = self._type(conn, dataset_type)
            run_id, run_type = self._collection(conn, run)
            if run_type is not CollectionType.RUN:
                raise CollectionTypeError(
                    f"collection {run!r} is {run_type.name}: datasets are inserted into "
                    "RUN collections only"
                )
            if not data_ids:
                return refs
            info = self._fresh_type_for(conn, info, data_ids[0])
            dims = info.dataset_type.dimensions
            info.dataset_type.check_data_id(data_ids[0])
            types = self._type_new_dimensions(conn, info, data_ids[0])
            sorted_dims = info.sorted_dims
            dim_set = set(dims)
            table = self._t["dataset"]
            names = ["id", "dataset_type_id", "run_id", "manifest", "data_id_key",
                     *(dimension_column_name(d) for d in sorted_dims)]
            execute_many, bind_id = _bulk_inserter(conn, table, names, self._insert_plans)
            type_id = info.id
            # On PostgreSQL the rows stream into COPY as they are made, so the
            # server inserts (and updates its indexes) while Python builds the next.
            streamed = conn.dialect.name == "postgresql"
            for start in range(0, len(data_ids), _CHUNK):
                keys: list[str] = []
                chunk_start = len(refs)

                def produce(start: int = start, keys: list[str] = keys) -> Iterator[tuple[Any, ...]]:
                    for offset, data_id in enumerate(data_ids[start : start + _CHUNK]):
                        index = start + offset
                        if data_id.keys() != dim_set:
                            info.dataset_type.check_data_id(data_id)
                        values = info.values(types, data_id)
                        manifest = manifests[index]
                        if not isinstance(manifest, str) or not manifest:
                            raise DataIdError(
                                f"manifest digest {manifest!r} is not a non-empty string"
                            )
                        dataset_id = _new_uuid() if ids is None else _as_uuid(ids[index])
                        key = info.key(values)
                        keys.append(key)
                        refs.append(
                            DatasetRef(dataset_id, dataset_type, info.data_id(values), run, manifest)
                        )
                        yield (bind_id(dataset_id), type_id, run_id, manifest, key, *values)

                rows: Iterable[tuple[Any, ...]] = produce() if streamed else list(produce())
                try:
                    if isinstance(rows, list) and len(rows) == 1 and conn.dialect.name == "sqlite":
                        # One statement is atomic in SQLite: a failed INSERT leaves
                        # no row behind, so it needs no savepoint of its own.
                        execute_many(rows)
                    else:
                        with _savepoint(conn, self._local):
                            execute_many(rows)
                except sa.exc.IntegrityError:
                    for _ in rows:  # the rest of a streamed chunk, for the explanation
                        pass
                    raise self._conflict(
                        conn, info, run, run_id, list(zip(refs[chunk_start:], keys))
                    ) from None
            if len(data_ids) >= _ANALYZE_AFTER:
                refresh_statistics(conn, table)
        return refs

    def _conflict(
        self,
        conn: sa.Connection,
        info: _TypeInfo,
        run: str,
        run_id: int,
        rows: list[tuple[DatasetRef, str]],
    ) -> Exception:
        """Explain why inserting ``rows`` (ref, data ID key) violated a unique constraint."""
        table = self._t["dataset"]

        def new(ref: DatasetRef) -> str:
            return f"{ref.id} (manifest {ref.manifest})"

        def what(ref: DatasetRef) -> str:
            return f"{ref.dataset_type}@{ref.data_id!r}"

        by_key: dict[str, DatasetRef] = {}
        by_id: dict[uuid.UUID, DatasetRef] = {}
        for ref, key in rows:
            first = by_key.get(key) or by_id.get(ref.id)
            if first is not None:
                return ConflictingDatasetError(
                    f"the datasets to insert hold {what(first)} twice: "
                    f"{new(first)} and {new(ref)}"
                )
            by_key[key] = by_id[ref.id] = ref
        for chunk in _chunks(list(by_key), _IN_CHUNK):
            hit = conn.execute(
                sa.select(table.c.id, table.c.data_id_key).where(
                    table.c.dataset_type_id == info.id,
                    table.c.run_id == run_id,
                    table.c.data_id_key.in_(chunk),
                )
            ).first()
            if hit is not None:
                return ConflictingDatasetError(
                    f"RUN collection {run!r} already has {self._describe(conn, hit.id)}; "
                    f"cannot insert {new(by_key[hit.data_id_key])} with the same dataset "
                    "type and data ID"
                )
        for chunk in _chunks(list(by_id), _IN_CHUNK):
            taken = conn.execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalar()
            if taken is not None:
                return ConflictingDatasetError(
                    f"dataset ID {taken} is taken by {self._describe(conn, taken)}; cannot "
                    f"insert {what(by_id[taken])} with it"
                )
        return ConflictingDatasetError(f"cannot insert into RUN collection {run!r}: conflict")

    def _describe(self, conn: sa.Connection, dataset_id: uuid.UUID) -> str:
        ref = self._get(conn, dataset_id)
        if ref is None:
            return str(dataset_id)
        return f"{ref.dataset_type}@{ref.data_id!r} {ref.id} in {ref.run!r} (manifest {ref.manifest})"

    def remove_datasets(self, refs: Iterable[DatasetRef | uuid.UUID]) -> int:
        """Forget datasets: their rows, tags and provenance. Absent ones are ignored.

        The manifests and components stay in the blob store; the layer above
        deletes those that :meth:`manifests` no longer lists.

        Returns
        -------
        removed : `int`
            How many datasets were removed.
        """
        ids = _ids(refs)
        removed = 0
        with self._write() as conn:
            self._refresh(conn)
            t = self._t
            for chunk in _chunks(ids, _IN_CHUNK):
                conn.execute(sa.delete(t["dataset_tag"]).where(t["dataset_tag"].c.dataset_id.in_(chunk)))
                conn.execute(
                    sa.delete(t["provenance_input"]).where(t["provenance_input"].c.output_id.in_(chunk))
                )
                conn.execute(sa.delete(t["provenance"]).where(t["provenance"].c.output_id.in_(chunk)))
                result = conn.execute(sa.delete(t["dataset"]).where(t["dataset"].c.id.in_(chunk)))
                removed += result.rowcount
        return removed

    # -- datasets: reading -----------------------------------------------------------
    def _ref_columns(self, info: _TypeInfo) -> list[sa.ColumnElement[Any]]:
        table = self._t["dataset"]
        return [
            table.c.id,
            table.c.run_id,
            table.c.manifest,
            table.c.data_id_key,
            *(table.c[dimension_column_name(d)] for d in info.sorted_dims),
        ]

    def _ref(self, conn: sa.Connection, info: _TypeInfo, row: Sequence[Any]) -> DatasetRef:
        # row: id, run_id, manifest, data_id_key, then sorted dimension values
        return DatasetRef(
            row[0],
            info.dataset_type.name,
            info.data_id(row[4 : 4 + len(info.sorted_dims)]),
            self._collection_name(conn, row[1]),
            row[2],
        )

    def _statements(self, info: _TypeInfo) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any]]:
        """Return the (every run, RUN, TAGGED) select statements of one dataset type, cached.

        Built once with bind parameters (``type_id``, ``runs``/``tags``) so the
        hot path of find_dataset only binds values: building SQLAlchemy
        expressions costs more than SQLite's index lookup.
        """
        md = self._md
        cached = self._statement_cache.get(info.id)
        # Valid while both the schema description and the type are the ones it was
        # built from: a reloaded type (a new dimension) is a new _TypeInfo.
        if cached is not None and cached[0] is md and cached[1] is info:
            return cached[2], cached[3], cached[4]
        table, tag = md.tables["dataset"], md.tables["dataset_tag"]
        columns = self._ref_columns(info)
        in_type = table.c.dataset_type_id == sa.bindparam("type_id")
        by_type = sa.select(*columns).where(in_type)
        by_run = by_type.where(table.c.run_id.in_(sa.bindparam("runs", expanding=True)))
        by_tag = (
            sa.select(*columns, tag.c.collection_id)
            .join(tag, tag.c.dataset_id == table.c.id)
            .where(in_type, tag.c.collection_id.in_(sa.bindparam("tags", expanding=True)))
        )
        self._statement_cache[info.id] = (md, info, by_type, by_run, by_tag)
        return by_type, by_run, by_tag

    def _select(
        self,
        conn: sa.Connection,
        info: _TypeInfo,
        condition: sa.ColumnElement[bool] | None,
        collections: CollectionArg | None,
        *,
        find_first: bool,
        params: Mapping[str, Any] | None = None,
    ) -> list[DatasetRef]:
        """Return the datasets of one type matching ``condition`` in ``collections``.

        With ``collections`` None every RUN is searched and nothing is shadowed.
        Otherwise the flattened search path gives each dataset a rank; a dataset
        reached twice counts once, and with ``find_first`` the search rule
        applies (`_first_per_identity`: per identity, the first collection
        that has a match wins). ``params`` binds parameters of ``condition``.
        """
        by_type, by_run, by_tag = self._statements(info)

        def where(statement: sa.Select[Any]) -> sa.Select[Any]:
            return statement if condition is None else statement.where(condition)

        bound = {"type_id": info.id, **(params or {})}
        ranked: list[tuple[int, Any]] = []
        if collections is None:
            ranked = [(0, row) for row in conn.execute(where(by_type), bound)]
        else:
            flat = self._flatten(conn, collections)
            rank = {cid: i for i, (cid, _) in enumerate(flat)}
            run_ids = [cid for cid, ctype in flat if ctype is CollectionType.RUN]
            tag_ids = [cid for cid, ctype in flat if ctype is CollectionType.TAGGED]
            if run_ids:
                rows = conn.execute(where(by_run), {**bound, "runs": run_ids})
                ranked.extend((rank[row[1]], row) for row in rows)
            if tag_ids:
                rows = conn.execute(where(by_tag), {**bound, "tags": tag_ids})
                ranked.extend((rank[row[-1]], row) for row in rows)
        if len(ranked) == 1:
            return [self._ref(conn, info, ranked[0][1])]
        if find_first and collections is not None:
            ranked = _first_per_identity(ranked, info)
        # A dataset reached twice (through a tag and its run, a chain) counts once,
        # at its best place.
        best: dict[Any, tuple[int, Any]] = {}
        for r, row in ranked:
            have = best.get(row[0])
            if have is None or r < have[0]:
                best[row[0]] = (r, row)
        refs = [self._ref(conn, info, row) for _, row in best.values()]
        order = info.dataset_type.dimensions
        # An absent optional dimension sorts first.
        refs.sort(
            key=lambda ref: (
                tuple((1, ref.data_id[d]) if d in ref.data_id else (0, 0) for d in order),
                ref.run,
                str(ref.id),
            )
        )
        return refs

    def find_dataset(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        collections: CollectionArg | None,
        *,
        partial: bool = False,
    ) -> DatasetRef | None:
        """Find the dataset of a type and data ID, searching collections in order.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            The data ID. Without ``partial`` it is exact: every required
            dimension is given, and an optional dimension left out means the
            dataset has none.
        collections : `str` or sequence of `str`, or `None`
            Collections to search, in order; chains are flattened. Per
            identity (the values of the required dimensions), the first
            collection holding a match wins: a dimension a later stage added
            (``tract``) does not make an earlier stage's dataset a second
            candidate. `None` (only with ``partial``) searches every RUN and
            shadows nothing.
        partial : `bool`, optional
            Allow a data ID that leaves dimensions out: the datasets whose data
            IDs extend it are matches. One match is returned; among several,
            one whose data ID is exactly ``data_id`` (in a search path) is
            returned; otherwise it is an error.

        Returns
        -------
        ref : `DatasetRef` or `None`
            The dataset found, or `None`.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID lacks (unless ``partial``) or adds a dimension, or a
            value has the wrong type.
        MissingCollectionError
            If a collection does not exist.
        AmbiguousDatasetError
            With ``partial``, if several datasets match; the message lists them
            with the dimension values (or collection) that pick each one.
        """
        if partial:
            candidates = self.find_datasets_partial(dataset_type, data_id, collections)
            return _choose(dataset_type, data_id, candidates, collections)
        if collections is None:
            raise CollectionError(
                f"an exact lookup of {dataset_type} {dict(data_id)!r} needs collections to "
                "search, in order (or partial=True to search every RUN)"
            )
        fast = self._find_fast(dataset_type, data_id, collections)
        if fast is not _NO_FAST_PATH:
            return fast  # type: ignore[return-value]
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            info = self._fresh_type_for(conn, info, data_id)
            info.dataset_type.check_data_id(data_id)
            types = self._dimension_types(conn, info)
            if any(types[d] is None for d in data_id):
                return None  # a dimension with no value yet: no dataset of this type exists
            values = info.values(types, data_id)
            table = self._t["dataset"]
            condition = table.c.data_id_key == sa.bindparam("key")
            refs = self._select(
                conn, info, condition, collections, find_first=True,
                params={"key": info.key(values)},
            )
            return refs[0] if refs else None

    def _find_fast(
        self, dataset_type: str, data_id: Mapping[str, Any], collections: CollectionArg
    ) -> DatasetRef | None | object:
        """An exact lookup on a raw SQLite connection, or `_NO_FAST_PATH`.

        A data-ID lookup is one probe of a unique index, which SQLite answers in
        microseconds; building it through SQLAlchemy costs a few hundred. This
        path serves the common case (a known dataset type, a search path of
        RUN collections, outside a transaction) and answers exactly as the
        general path does; anything else falls through to it. The flattened
        search path is remembered while the database's data_version holds.
        """
        if getattr(self._local, "conn", None) is not None or self._stale:
            return _NO_FAST_PATH
        version = self.data_version()  # validates the cached types first
        info = self._types.get(dataset_type)
        if info is None or version is None:
            return _NO_FAST_PATH
        dims = info.dataset_type.dimensions
        if any(d not in dims for d in data_id):
            return _NO_FAST_PATH  # perhaps a dimension added since: the general path reloads
        types = {d: self._dimensions.get(d) for d in dims}
        if any(types[d] is None for d in data_id):
            return _NO_FAST_PATH
        info.dataset_type.check_data_id(data_id)
        key = tuple(collections) if not isinstance(collections, str) else (collections,)
        with self._lock:
            cached = self._fast_paths.get(key)
        if cached is None or cached[0] != version:
            runs = self._plain_runs(key)
            if runs is None:
                with self._read() as conn:
                    flat = self._flatten(conn, list(key))
                    if any(ctype is not CollectionType.RUN for _, ctype in flat):
                        return _NO_FAST_PATH
                    runs = [(cid, self._collection_name(conn, cid)) for cid, _ in flat]
            cached = (version, runs)
            with self._lock:
                if len(self._fast_paths) > 10_000:
                    self._fast_paths.clear()
                self._fast_paths[key] = cached
        runs = cached[1]
        if not runs:
            return None
        values = info.values(types, data_id)
        marks = ",".join("?" * len(runs))
        sql = (
            "SELECT id, run_id, manifest FROM dataset WHERE dataset_type_id = ? "
            f"AND data_id_key = ? AND run_id IN ({marks})"
        )
        with self._lock:
            rows = self._watcher.execute(  # type: ignore[union-attr]
                sql, (info.id, info.key(values), *(cid for cid, _ in runs))
            ).fetchall()
        if not rows:
            return None
        rank = {cid: i for i, (cid, _) in enumerate(runs)}
        dataset_id, run_id, manifest = min(rows, key=lambda row: rank[row[1]])
        return DatasetRef(
            uuid.UUID(hex=dataset_id) if isinstance(dataset_id, str) else _as_uuid(dataset_id),
            dataset_type,
            info.data_id(values),
            dict(runs)[run_id],
            manifest,
        )

    def _plain_runs(self, names: tuple[str, ...]) -> list[tuple[int, str]] | None:
        """``(id, name)`` of each of ``names`` if all are RUN collections, else None.

        Read on the raw connection: every commit (our own puts included) changes
        ``data_version`` and so drops the fast path's search paths, and a search
        path of runs (a put's existence check) is rebuilt here without opening a
        SQLAlchemy transaction. Chains, tagged or missing collections, and names
        that are not strings return None: the general path handles them.
        """
        if not all(isinstance(name, str) for name in names):
            return None  # the general path explains what is wrong with the name
        runs: list[tuple[int, str]] = []
        seen: set[int] = set()
        with self._lock:
            for name in names:
                row = self._watcher.execute(  # type: ignore[union-attr]
                    "SELECT id, type FROM collection WHERE name = ?", (name,)
                ).fetchone()
                if row is None or row[1] != CollectionType.RUN.value:
                    return None
                if row[0] not in seen:  # a run named twice is searched at its first place
                    seen.add(row[0])
                    runs.append((row[0], name))
        return runs

    def find_datasets_partial(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        collections: CollectionArg | None,
    ) -> list[DatasetRef]:
        """Return every dataset whose data ID extends a partial one.

        For each full data ID, the first collection in the search path that has
        it wins, as in :meth:`find_dataset`.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            Some of the dataset type's dimensions (all of them is fine too).
        collections : `str` or sequence of `str`, or `None`
            Collections to search, in order; None searches every RUN
            collection and shadows nothing.

        Returns
        -------
        refs : `list` [`DatasetRef`]
            The candidates, sorted by data ID.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID has a dimension the dataset type lacks or a badly
            typed value.
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            info = self._fresh_type_for(conn, info, data_id)
            info.dataset_type.check_data_id(data_id, partial=True)
            types = self._dimension_types(conn, info)
            if any(t is None for t in types.values()):
                return []
            table = self._t["dataset"]
            condition = sa.and_(
                sa.true(),
                *(
                    table.c[dimension_column_name(d)] == coerce_value(d, types[d], v)  # type: ignore[arg-type]
                    for d, v in data_id.items()
                ),
            )
            return self._select(conn, info, condition, collections, find_first=True)

    def query_datasets(
        self,
        dataset_type: str,
        where: str | None = None,
        collections: CollectionArg | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        find_first: bool = False,
    ) -> list[DatasetRef]:
        """Return the datasets of a type that satisfy a ``where`` expression.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        where : `str`, optional
            An expression over the dataset type's dimensions, e.g.
            ``"visit = 1 AND detector IN (1, 2)"``; see ``docs/registry.md``.
            `None` or blank: every dataset.
        collections : `str` or sequence of `str`, optional
            Collections to search; `None` for every RUN collection.
        bind : mapping, optional
            Values for ``:name`` parameters in ``where``.
        find_first : `bool`, optional
            Keep, per data ID, only the dataset from the first collection in
            the search path (like :meth:`find_dataset`).

        Returns
        -------
        refs : `list` [`DatasetRef`]
            Matching datasets, sorted by data ID (in the dataset type's
            dimension order), then run.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        QuerySyntaxError
            If ``where`` is malformed (the message points at the column).
        QueryError
            If ``where`` names an unknown dimension, compares a dimension with a
            value of the wrong type, or uses a missing bind value.
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            types = self._dimension_types(conn, info)
            condition: sa.ColumnElement[bool] | None = None
            if where is not None and not isinstance(where, str):
                raise QueryError(f"a where expression is a string, got {type(where).__name__}")
            if where is not None and where.strip():
                node = parse_where(where)
                check_where(node, dataset_type, types, bind, where)
                if any(t is None for t in types.values()):
                    return []
                table = self._t["dataset"]
                condition = where_to_sql(
                    node, lambda d: table.c[dimension_column_name(d)], bind
                )
            elif any(t is None for t in types.values()):
                return []
            return self._select(conn, info, condition, collections, find_first=find_first)

    def _get(self, conn: sa.Connection, dataset_id: uuid.UUID) -> DatasetRef | None:
        self._refresh(conn)
        table = self._t["dataset"]
        type_id = conn.execute(
            sa.select(table.c.dataset_type_id).where(table.c.id == dataset_id)
        ).scalar()
        if type_id is None:
            return None
        info = self._type(conn, self._type_name(conn, type_id))
        self._dimension_types(conn, info)
        row = conn.execute(
            sa.select(*self._ref_columns(info)).where(table.c.id == dataset_id)
        ).one()
        return self._ref(conn, info, row)

    def get_dataset(self, id: uuid.UUID) -> DatasetRef | None:
        """Return the dataset with this ID, or `None` if there is none."""
        with self._read() as conn:
            return self._get(conn, _as_uuid(id))

    def duplicate_datasets(self) -> list[list[uuid.UUID]]:
        """Return the IDs of datasets that share a dataset type, data ID and run, per group.

        The schema's unique index forbids them; a registry file edited behind
        compstore's back, or whose index was damaged or dropped, may hold some.
        `compstore.verify` reports each group. Reads the whole dataset table.
        """
        with self._read() as conn:
            table = self._t["dataset"]
            keys = (table.c.dataset_type_id, table.c.data_id_key, table.c.run_id)
            dup = (
                sa.select(*keys).group_by(*keys).having(sa.func.count() > 1).subquery()
            )
            rows = conn.execute(
                sa.select(table.c.id, *keys)
                .join(dup, sa.and_(*(k == dup.c[k.name] for k in keys)))
                .order_by(*keys, table.c.id)
            ).all()
        groups: dict[tuple[Any, ...], list[uuid.UUID]] = {}
        for row in rows:
            groups.setdefault(tuple(row[1:]), []).append(row[0])
        return list(groups.values())

    def manifests(self) -> set[str]:
        """Return every manifest digest some dataset refers to."""
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset"]
            return set(conn.execute(sa.select(table.c.manifest).distinct()).scalars())

    def compact(self) -> None:
        """Give back the space of deleted rows (SQLite: VACUUM if pages are free, WAL truncated).

        Garbage collection calls it after removals; another database does its own.
        Best effort: a registry busy beyond the timeout is left as it is.
        """
        if not is_sqlite(self._url) or not self._url.database:
            return
        conn = sqlite3.connect(self._url.database, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            if conn.execute("PRAGMA freelist_count").fetchone()[0]:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # busy: the space comes back at a later gc
        finally:
            conn.close()

    def count_datasets(self, dataset_type: str | None = None) -> int:
        """Return how many datasets there are (of one type, if given).

        Raises
        ------
        MissingDatasetTypeError
            If ``dataset_type`` is given and not registered.
        """
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset"]
            query = sa.select(sa.func.count()).select_from(table)
            if dataset_type is not None:
                query = query.where(table.c.dataset_type_id == self._type(conn, dataset_type).id)
            return int(conn.execute(query).scalar_one())

    # -- provenance ------------------------------------------------------------------
    def record_provenance(
        self,
        output_id: uuid.UUID,
        task_label: str,
        task_class: str,
        config: Mapping[str, Any],
        input_ids: Sequence[uuid.UUID],
    ) -> None:
        """Record which task, configured how, made a dataset from which inputs.

        Recording the same provenance twice is a no-op.

        Parameters
        ----------
        output_id : `uuid.UUID`
            The dataset produced.
        task_label : `str`
            The task's label in its pipeline.
        task_class : `str`
            The task's class name (recorded, never imported).
        config : mapping
            The task configuration, stored as JSON.
        input_ids : sequence of `uuid.UUID`
            The datasets read, in order.

        Raises
        ------
        DatasetNotFoundError
            If ``output_id`` is not a dataset.
        EncodingError
            If ``config`` is not JSON-serialisable (or holds NaN).
        ConflictingDatasetError
            If different provenance is recorded already for ``output_id``.
        """
        output_id = _as_uuid(output_id)
        inputs = [_as_uuid(i) for i in input_ids]
        try:
            config_json = json.dumps(config, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise EncodingError(f"task config of {task_label!r} is not plain JSON: {exc}") from None
        with self._write() as conn:
            self._refresh(conn)
            existing = self._get_provenance(conn, output_id)
            wanted = {
                "output_id": output_id,
                "task_label": task_label,
                "task_class": task_class,
                "config": json.loads(config_json),
                "input_ids": inputs,
            }
            if existing is not None:
                if existing != wanted:
                    raise ConflictingDatasetError(
                        f"dataset {output_id} has provenance already (task {existing['task_label']!r}, "
                        f"{existing['task_class']}); cannot record task {task_label!r} for it"
                    )
                return
            dataset = self._t["dataset"]
            exists = sa.select(dataset.c.id).where(dataset.c.id == output_id)
            if conn.execute(exists).first() is None:
                raise DatasetNotFoundError(f"no dataset with ID {output_id} to record provenance for")
            conn.execute(
                self._t["provenance"].insert().values(
                    output_id=output_id, task_label=task_label, task_class=task_class,
                    config=config_json,
                )
            )
            if inputs:
                conn.execute(
                    self._t["provenance_input"].insert(),
                    [{"output_id": output_id, "position": i, "input_id": v}
                     for i, v in enumerate(inputs)],
                )

    def _get_provenance(self, conn: sa.Connection, output_id: uuid.UUID) -> dict[str, Any] | None:
        prov, inputs = self._t["provenance"], self._t["provenance_input"]
        row = conn.execute(sa.select(prov).where(prov.c.output_id == output_id)).first()
        if row is None:
            return None
        input_ids = conn.execute(
            sa.select(inputs.c.input_id)
            .where(inputs.c.output_id == output_id)
            .order_by(inputs.c.position)
        ).scalars().all()
        return {
            "output_id": row.output_id,
            "task_label": row.task_label,
            "task_class": row.task_class,
            "config": json.loads(row.config),
            "input_ids": list(input_ids),
        }

    def get_provenance(self, id: uuid.UUID) -> dict[str, Any] | None:
        """Return the provenance of a dataset, or `None` if none was recorded.

        Returns
        -------
        provenance : `dict` or `None`
            Keys ``output_id``, ``task_label``, ``task_class``, ``config``
            (a dict) and ``input_ids`` (a list of UUIDs, in order).
        """
        with self._read() as conn:
            self._refresh(conn)
            return self._get_provenance(conn, _as_uuid(id))


def _bulk_inserter(
    conn: sa.Connection,
    table: sa.Table,
    names: Sequence[str],
    plans: dict[tuple[str, ...], _InsertPlan | None],
) -> tuple[Callable[[Iterable[tuple[Any, ...]]], object], Callable[[uuid.UUID], Any]]:
    """Return ``(execute_many, bind_id)`` for inserting rows given as tuples in ``names`` order.

    On PostgreSQL ``execute_many`` takes any iterable (COPY streams it); elsewhere a list.

    On SQLite the statement is compiled by SQLAlchemy once per column list (kept
    in ``plans``, which the caller empties when ``table`` is rebuilt) and run
    with the driver's executemany on plain tuples: SQLAlchemy's per-row
    parameter processing would otherwise cost more than SQLite's own work.
    ``bind_id`` converts a UUID the way the column type would (SQLAlchemy's own
    bind processor). Elsewhere, plain SQLAlchemy executemany.
    """
    dialect = conn.dialect
    if dialect.name == "postgresql":
        return (lambda rows: copy_rows(conn, table.name, names, rows)), (lambda value: value)
    if dialect.name == "sqlite":
        key = tuple(names)
        if key not in plans:
            plans[key] = _sqlite_insert_plan(table, key, dialect)
        plan = plans[key]
        if plan is not None:
            sql, permutation, bind_id = plan
            if permutation is None:
                return (lambda rows: conn.exec_driver_sql(sql, rows)), bind_id
            return (
                lambda rows: conn.exec_driver_sql(
                    sql, [tuple(row[i] for i in permutation) for row in rows]
                )
            ), bind_id
    insert = table.insert()
    return (
        lambda rows: conn.execute(insert, [dict(zip(names, row)) for row in rows])
    ), (lambda value: value)


@contextlib.contextmanager
def _savepoint(conn: sa.Connection, local: threading.local) -> Iterator[None]:
    """A SAVEPOINT in ``conn``'s open transaction, released or rolled back to.

    Plain SQL on the driver: SQLAlchemy's ``begin_nested`` compiles its SAVEPOINT
    and RELEASE statements on every call, which cost more than the insert they
    guard. The names are numbered per thread, so blocks nest.
    """
    depth = getattr(local, "savepoints", 0) + 1
    name = f"compstore_{depth}"
    conn.exec_driver_sql(f"SAVEPOINT {name}")
    local.savepoints = depth
    try:
        yield
    except BaseException:
        try:
            conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
            conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
        except sa.exc.DBAPIError:
            # The database ended the whole transaction itself (a full disk, an I/O
            # error): the savepoint is gone, and so is everything before it. The
            # caller's error is the one to see; the transaction refuses more work.
            # (sqlite3 says whether a transaction is open; other drivers: assume lost.)
            if not getattr(conn.connection.dbapi_connection, "in_transaction", False):
                local.broken = True
        raise
    else:
        conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
    finally:
        local.savepoints = depth - 1


_InsertPlan = tuple[str, "list[int] | None", "Callable[[uuid.UUID], Any]"]


def _sqlite_insert_plan(
    table: sa.Table, names: tuple[str, ...], dialect: sa.Dialect
) -> _InsertPlan | None:
    """The compiled SQLite INSERT of ``names`` into ``table`` (the caller keeps it).

    Returns ``(sql, permutation, bind_id)``: ``permutation`` reorders a row from
    ``names`` order to the statement's (None when they agree); None when the
    statement's parameters are not exactly ``names``.
    """
    compiled = table.insert().compile(dialect=dialect, column_keys=list(names))
    order = compiled.positiontup
    plan: _InsertPlan | None = None
    if order is not None and sorted(order) == sorted(names):
        id_processor = table.c.id.type.bind_processor(dialect)
        bind_id: Callable[[uuid.UUID], Any] = id_processor or (lambda value: value)
        permutation: list[int] | None = [names.index(n) for n in order]
        if permutation == list(range(len(names))):
            permutation = None
        plan = (compiled.string, permutation, bind_id)
    return plan


_NO_FAST_PATH = object()


def _new_uuid() -> uuid.UUID:
    # uuid4() but without its per-call overhead: the same 122 random bits.
    return uuid.UUID(bytes=os.urandom(16), version=4)


def _as_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise DataIdError(f"{value!r} is not a dataset ID (a UUID)")


def _ids(refs: Iterable[DatasetRef | uuid.UUID]) -> list[uuid.UUID]:
    if isinstance(refs, (DatasetRef, uuid.UUID)):
        refs = [refs]
    return [r.id if isinstance(r, DatasetRef) else _as_uuid(r) for r in refs]
