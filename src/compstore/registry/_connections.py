"""The registry's engine, connections, transactions and schema check (the base of `Registry`)."""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from compstore.errors import (
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)

from ._bulk import _InsertPlan, _savepoint
from ._common import (
    _CATALOG_KEY,
    _UNSEEN,
)
from ._dimensions import (
    BUILTIN_DIMENSIONS,
    ValueType,
)
from ._engine import is_sqlite, make_engine, make_url, set_durability
from ._postgres import PgWatcher, bump_generation, connection_lost, lost_connection_error
from ._schema import (
    SCHEMA_VERSION,
    build_metadata,
    meta_tables,
    schema_ddl,
)
from ._type_info import _TypeInfo
from ._types import (
    CollectionType,
)

_F = TypeVar("_F", bound=Callable[..., Any])


def reconnecting(method: _F) -> _F:
    """Make a read-only `Registry` method run again, once, after the database dropped the connection.

    On PostgreSQL a pooled connection the server has terminated (a restart,
    ``pg_terminate_backend``) fails at its first statement; SQLAlchemy then
    drops the pool's connections, and the second run opens a new one. A read
    inside a transaction is not retried (the transaction is gone: `_write`
    says so). If the second run fails too, a `RegistryError` says what to do.
    """

    @functools.wraps(method)
    def run(self: _Connections, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if (
                self._counter != "postgresql"
                or getattr(self._local, "conn", None) is not None
                or not connection_lost(exc)
            ):
                raise
        try:
            return method(self, *args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if connection_lost(exc):
                raise lost_connection_error(self._where(), exc, writing=False) from exc
            raise

    return cast(_F, run)


class _Connections:
    """Engine, per-thread connections and transactions, schema creation and checks; holds all state."""

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
        # data_version's backend, decided once: "postgresql", "sqlite" (a file) or None.
        self._counter: str | None = (
            "postgresql" if self._url.get_backend_name() == "postgresql"
            else "sqlite" if is_sqlite(self._url) and database else None
        )
        # Threads inside `remembered` (whose data_version is pinned), so that
        # data_version looks for a pin only while there may be one.
        self._pins = 0
        self._local = threading.local()
        self._watcher = None  # data_version's own connection, opened on first use
        # What the caches below were validated against (see _check_catalog).
        self._version_seen: int | None = None
        self._catalog_seen: object = _UNSEEN
        self._fast_paths: dict[tuple[str, ...], tuple[int, list[tuple[int, str]]]] = {}
        # `remembered`'s lookups: key -> value, valid at data_version _remembered_version.
        self._remembered: dict[Hashable, Any] = {}
        self._remembered_version: int | None = None
        self._lock = threading.RLock()
        self._stale = True
        self._dimensions: dict[str, ValueType | None] = {}
        self._md: sa.MetaData
        self._types: dict[str, _TypeInfo] = {}
        self._type_names: dict[int, str] = {}
        self._collections: dict[str, tuple[int, CollectionType]] = {}
        self._collection_names: dict[int, str] = {}
        self._statement_cache: dict[int, tuple[sa.MetaData, _TypeInfo, Any, Any, Any]] = {}
        self._insert_plans: dict[tuple[str, ...], _InsertPlan | None] = {}
        # The schema description is built once here, from what the database holds
        # (SQLAlchemy's tables cost milliseconds to build): the first call finds it
        # current, as `_refresh` would have made it.
        if _create:
            self._create_schema(_creator)
        else:
            self._check_schema()

    def _described(self, md: sa.MetaData, dimensions: Mapping[str, ValueType | None]) -> None:
        """Take ``md`` (built for ``dimensions``, as the database holds them) as the schema."""
        self._md = md
        self._dimensions = dict(dimensions)
        self._stale = False

    def _create_schema(self, creator: str | None = None) -> None:
        with self._engine.connect() as conn:
            if sa.inspect(conn).has_table("registry_meta"):
                raise RepositoryExistsError(f"a registry exists already at {self._where()}")
        md = build_metadata(dict(BUILTIN_DIMENSIONS))
        with self._engine.connect() as conn:
            conn.execution_options(compstore_write=True)
            with conn.begin():
                for statement in schema_ddl(conn.dialect, BUILTIN_DIMENSIONS):
                    conn.exec_driver_sql(statement)
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
        self._described(md, BUILTIN_DIMENSIONS)

    def _check_schema(self) -> None:
        with self._engine.connect() as conn:
            if not sa.inspect(conn).has_table("registry_meta"):
                raise RepositoryNotFoundError(f"no registry at {self._where()}")
            bare = meta_tables()
            meta, dim = bare["registry_meta"], bare["dimension"]
            version = conn.execute(
                sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).scalar()
            if version is None or version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
                raise RepositoryFormatError(
                    f"registry at {self._where()} has schema version {version!r}; "
                    f"this compstore reads version {SCHEMA_VERSION.split('.')[0]}.x"
                )
            rows = dict(conn.execute(sa.select(dim.c.name, dim.c.value_type)).all())
        self._described(build_metadata(rows), rows)

    def _where(self) -> str:
        return repr(self._url.database) if is_sqlite(self._url) else self._url.render_as_string()

    def close(self) -> None:
        """Close every pooled connection; the registry can be reopened by path."""
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()
        self._engine.dispose()

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
        except BaseException as exc:
            # Cached types, collections and dimension columns may describe rows
            # that were just rolled back: reload them on next use.
            self._stale = True
            if outer is None and self._counter == "postgresql" and connection_lost(exc):
                # The server dropped the connection (SQLAlchemy has dropped the pool's
                # connections, so the next call opens a new one).
                raise lost_connection_error(self._where(), exc, writing=True) from exc
            raise

    def execute_in_transaction(
        self, sql: str, params: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Run one statement inside the calling thread's open `transaction`; return its rows.

        For a check that must commit or roll back with the transaction's rows
        (the PostgreSQL gc lock's: `compstore.cas._gclock_pg`). ``sql`` uses the
        driver's placeholders (``%(name)s`` for PostgreSQL, ``:name`` for SQLite).

        Raises
        ------
        RepositoryError
            If the thread has no transaction open.
        """
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            raise RepositoryError(
                "execute_in_transaction runs inside `with registry.transaction():` only"
            )
        self._check_not_broken()
        result = conn.exec_driver_sql(sql, dict(params))
        return [tuple(row) for row in result] if result.returns_rows else []

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

    @property
    def _t(self) -> Mapping[str, sa.Table]:
        return self._md.tables
