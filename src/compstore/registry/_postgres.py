"""What the registry does differently on PostgreSQL: its change counter, raw lookups, COPY.

SQLite tells every connection when any other one committed (``PRAGMA
data_version``); PostgreSQL has no such number. The registry keeps its own:
the ``generation`` row of ``registry_meta``, bumped by every writing
transaction just before it commits (:func:`bump_generation`), so a reader that
sees the same generation twice knows nothing was committed in between. The
row is updated last so that writers hold its row lock only while committing.

:class:`PgWatcher` is the registry's own autocommit connection (psycopg 3,
statements prepared by the server): it reads the generation and the catalog
version in one round trip, and serves the registry's fast exact lookups
without SQLAlchemy's per-statement cost.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import DataIdError, RegistryError

__all__ = [
    "GENERATION_KEY",
    "PgWatcher",
    "bump_generation",
    "connection_lost",
    "conninfo",
    "copy_rows",
    "lost_connection_error",
]

GENERATION_KEY = "generation"
_STATE_SQL = "SELECT key, value FROM registry_meta WHERE key IN (?, ?)"
_STATE_NAME = b"compstore_state"
_GENERATION_BYTES = GENERATION_KEY.encode()
_CATALOG_BYTES = b"catalog_version"
_TUPLES_OK = 2  # libpq's PGRES_TUPLES_OK (psycopg.pq.ExecStatus), without importing psycopg
_COMMAND_OK = 1  # PGRES_COMMAND_OK
_SQLSTATE = 67  # libpq's PG_DIAG_SQLSTATE; 42P05: duplicate_prepared_statement


def conninfo(url: sa.URL) -> str:
    """The libpq URI of ``url`` (any ``+driver`` dropped; libpq finds the password itself)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def bump_generation(conn: sa.Connection, meta: sa.Table) -> None:
    """Count one more committed write transaction (run last in the transaction)."""
    changed = conn.execute(
        sa.update(meta)
        .where(meta.c.key == GENERATION_KEY)
        .values(value=sa.cast(sa.cast(meta.c.value, sa.BigInteger) + 1, sa.Text))
    ).rowcount
    if not changed:
        # A registry created before the row existed; two first writers at once: one
        # inserts, the other's insert conflicts and does nothing (counted next time).
        conn.exec_driver_sql(
            "INSERT INTO registry_meta (key, value) VALUES (%(k)s, '1') ON CONFLICT DO NOTHING",
            {"k": GENERATION_KEY},
        )


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to the PostgreSQL server is gone or cannot be made.

    True for what SQLAlchemy recognised as a disconnect (it then drops the
    pool's connections), and for psycopg's connection failures: a server that
    terminated the session (``pg_terminate_backend``, a restart: SQLSTATE class
    57P), a connection exception (class 08) or a failed connect (no SQLSTATE).
    """
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig  # type: ignore[assignment]
    if not type(exc).__module__.startswith("psycopg"):
        return False
    import psycopg

    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


def lost_connection_error(where: str, exc: BaseException, *, writing: bool) -> RegistryError:
    """The `RegistryError` for a lost connection to the database at ``where``."""
    done = (
        "the transaction was rolled back (unless the connection was lost while it committed: "
        "then check whether its rows are there); run it again"
        if writing
        else "a new connection was tried and failed too; check that the server is up and "
        "reachable, then try again"
    )
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    reason = " ".join(str(cause).split())
    return RegistryError(
        f"the connection to the registry database at {where} was lost ({reason}): {done}"
    )


class _Rows:
    """What a `PgWatcher.execute` returns: the rows, read at once."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None


class PgWatcher:
    """An autocommit psycopg connection for the generation and the fast lookups.

    Callers serialise their calls (the registry's lock). A process that forked
    opens a connection of its own instead of sharing its parent's socket.
    """

    def __init__(self, url: sa.URL) -> None:
        self._conninfo = conninfo(url)
        self._conn: Any = None
        self._pid = -1
        self._sql: dict[str, str] = {}
        self._lock = threading.Lock()
        self._state_conn: Any = None  # the libpq connection `state` runs on, once prepared

    def _connection(self) -> Any:
        if self._conn is None or self._pid != os.getpid() or self._conn.closed:
            import psycopg

            # prepare_threshold=0: every statement is prepared on first use; the
            # fast path runs a handful of statements over and over.
            self._conn = psycopg.connect(self._conninfo, autocommit=True, prepare_threshold=0)
            self._pid = os.getpid()
            self._state_conn = None
        return self._conn

    def state(self) -> tuple[int, object]:
        """``(generation, catalog version)``, read in one statement.

        Every cache-hit get asks this once, so it goes straight to libpq (one
        prepared statement, no cursor): a round trip and little else. Anything
        unusual (no connection yet, a forked process, an error) takes the
        general path, which reconnects and reports a lost connection.
        """
        with self._lock:
            pgconn = self._state_conn
            if pgconn is not None and self._pid == os.getpid():
                result = pgconn.exec_prepared(_STATE_NAME, None)
                if result.status == _TUPLES_OK:
                    values = {
                        result.get_value(i, 0): result.get_value(i, 1)
                        for i in range(result.ntuples)
                    }
                    generation = values.get(_GENERATION_BYTES)
                    catalog = values.get(_CATALOG_BYTES)
                    return (
                        int(generation) if generation else 0,
                        None if catalog is None else catalog.decode(),
                    )
            self._state_conn = None
        rows = self.execute(_STATE_SQL, (GENERATION_KEY, "catalog_version")).fetchall()
        values = dict(rows)
        with self._lock:
            self._prepare_state()
        return int(values.get(GENERATION_KEY) or 0), values.get("catalog_version")

    def _prepare_state(self) -> None:
        """Prepare `state`'s statement on the connection the general path just used."""
        conn = self._conn
        if conn is None or conn.closed or self._pid != os.getpid():
            return
        pgconn = conn.pgconn
        sql = _STATE_SQL.replace("?", "'{}'").format(GENERATION_KEY, "catalog_version")
        result = pgconn.prepare(_STATE_NAME, sql.encode())
        # Prepared now, or still from before on this connection (a failed run of it
        # that left the connection alive): either way it runs on this connection.
        if result.status == _COMMAND_OK or result.error_field(_SQLSTATE) == b"42P05":
            self._state_conn = pgconn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Rows:
        """Run ``sql`` (``?`` placeholders, as sqlite3) and return its rows."""
        translated = self._sql.get(sql)
        if translated is None:
            translated = self._sql[sql] = sql.replace("%", "%%").replace("?", "%s")
        with self._lock:
            for attempt in (1, 2):
                try:
                    conn = self._connection()
                    return _Rows(conn.execute(translated, tuple(params)).fetchall())
                except Exception as exc:
                    if self._conn is not None and (self._conn.closed or self._conn.broken):
                        self._conn = None  # the server dropped it: reconnect
                    if not connection_lost(exc):
                        raise
                    if attempt == 2 or self._conn is not None:
                        # Every statement here is a read: it was retried once already.
                        where = sa.make_url(self._conninfo).render_as_string()
                        raise lost_connection_error(where, exc, writing=False) from exc
            raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection (if this process opened it)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
            self._state_conn = None


def copy_rows(
    conn: sa.Connection, table: sa.Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert ``rows`` into ``table`` with COPY, in ``conn``'s transaction.

    COPY streams the rows in PostgreSQL's binary format in one statement:
    several times faster than a multi-row INSERT for the large batches of
    ingest, and the server parses no text (psycopg dumps each value by the
    column type given, in C).

    Raises
    ------
    sqlalchemy.exc.IntegrityError
        If a row breaks a constraint (a duplicate data ID): the caller's
        savepoint is then rolled back, as after a failed INSERT.
    """
    import psycopg

    driver = conn.connection.dbapi_connection
    columns = ", ".join(f'"{n}"' for n in names)
    types = [_pg_type(table.c[n].type) for n in names]
    try:
        with driver.cursor() as cursor:  # type: ignore[union-attr]
            with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN (FORMAT BINARY)') as copy:
                copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
    except psycopg.errors.DataError as exc:  # a value that does not fit its column
        raise DataIdError(
            f"a value does not fit its column of table {table.name!r}: "
            f"{str(exc).strip().splitlines()[0]}"
        ) from None
    except psycopg.errors.IntegrityError as exc:
        raise sa.exc.IntegrityError(f"COPY {table}", None, exc) from exc


def _pg_type(column_type: sa.types.TypeEngine[Any]) -> str:
    """The PostgreSQL type name binary COPY dumps a value of ``column_type`` as."""
    if isinstance(column_type, sa.Uuid):
        return "uuid"
    if isinstance(column_type, sa.BigInteger):
        return "int8"
    if isinstance(column_type, sa.Integer):
        return "int4"
    if isinstance(column_type, (sa.String, sa.Text)):
        return "text"
    raise TypeError(f"no binary COPY type for a {column_type!r} column")
