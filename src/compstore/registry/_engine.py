"""SQLAlchemy engines for the registry: URL handling and SQLite durability pragmas."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlalchemy as sa

from compstore.errors import RepositoryFormatError

__all__ = ["damaged_registry_error", "is_sqlite", "make_engine", "make_url", "set_durability"]

_URL_PREFIXES = ("sqlite:", "postgresql:", "postgresql+")


def make_url(target: str | os.PathLike[str] | sa.URL) -> sa.URL:
    """Turn a file path or a ``sqlite:``/``postgresql:`` URL into an SQLAlchemy URL.

    A plain path is always a SQLite file (never parsed as a URL, so a path
    with ``:`` or ``?`` in it stays a path).
    """
    if isinstance(target, str) and target.startswith(_URL_PREFIXES):
        target = sa.make_url(target)
    if isinstance(target, sa.URL):
        # Plain ``postgresql:`` means psycopg 3 here (SQLAlchemy's default is psycopg2).
        return target.set(drivername="postgresql+psycopg") if target.drivername == "postgresql" else target
    return sa.URL.create("sqlite", database=os.fspath(target))


def is_sqlite(url: sa.URL) -> bool:
    """Return whether ``url`` names a SQLite database."""
    return url.get_backend_name() == "sqlite"


_SYNCHRONOUS = "compstore_synchronous"


def set_durability(conn: sa.Connection, durable: bool) -> None:
    """Make the next commits of ``conn`` (not yet begun) durable or not.

    SQLite: ``synchronous=FULL`` fsyncs the write-ahead log at each commit;
    ``NORMAL`` leaves that to the next checkpoint, so a power cut may undo the
    last commits but never corrupts the database. Other databases: no change.
    """
    if conn.dialect.name != "sqlite":
        return
    want = "FULL" if durable else "NORMAL"
    info = conn.connection.info
    if info.get(_SYNCHRONOUS) != want:
        # On the driver itself: a statement through ``conn`` would begin its transaction.
        driver = conn.connection.dbapi_connection
        driver.execute(f"PRAGMA synchronous={want}")  # type: ignore[union-attr]
        info[_SYNCHRONOUS] = want


def make_engine(url: sa.URL) -> sa.Engine:
    """Create an engine; for SQLite, with WAL, foreign keys and ``synchronous=FULL``.

    For SQLite, pysqlite's own transaction handling is switched off and the
    engine emits ``BEGIN`` itself: that makes SAVEPOINT work and lets write
    transactions start with ``BEGIN IMMEDIATE`` (take the write lock at once,
    so two writers never deadlock upgrading a read lock).
    """
    if not is_sqlite(url):
        return sa.create_engine(url)
    # timeout: wait for another process's write transaction instead of failing.
    engine = sa.create_engine(url, connect_args={"timeout": 60.0, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers never block the writer; synchronous=FULL: fsync the WAL at
        # each commit, so a committed row survives a power cut (NORMAL would not).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        record.info[_SYNCHRONOUS] = "FULL"  # what set_durability keeps up to date
        cursor.execute("PRAGMA foreign_keys=ON")
        # 64 MiB page cache: bulk inserts of a million rows touch many index pages.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.close()

    @sa.event.listens_for(engine, "handle_error")
    def _on_error(context: sa.engine.ExceptionContext) -> None:
        # A damaged file shows up at whichever statement first reads the bad page.
        error = damaged_registry_error(url.database, context.original_exception)
        if error is not None:
            raise error from context.original_exception

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("compstore_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


# SQLite's result codes for a damaged database file (sqlite3.h).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


def damaged_registry_error(database: str | None, exc: BaseException) -> RepositoryFormatError | None:
    """The error to raise for ``exc`` if it says the SQLite file is damaged, else None.

    Parameters
    ----------
    database : `str` or `None`
        The registry file, for the message.
    exc : `BaseException`
        What the driver raised.

    Returns
    -------
    error : `RepositoryFormatError` or `None`
        A message naming the file and what to do; None if ``exc`` is another error
        (a locked database, a constraint: those are not damage).
    """
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return None
    return RepositoryFormatError(
        f"the registry file {database} is damaged ({exc}); compstore cannot read it. Restore "
        "it from a backup (the components in blobs/ are not affected), then run "
        "`compstore verify`"
    )
