"""Database specifics of writing: bulk inserts (COPY on PostgreSQL, precompiled executemany on SQLite) and savepoints."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ._postgres import copy_rows


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
        return (lambda rows: copy_rows(conn, table, names, rows)), (lambda value: value)
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


def insert_unless_raced(conn: sa.Connection, local: threading.local, statement: Any) -> bool:
    """Run the INSERT ``statement`` in a savepoint; False if a unique key refused it.

    For registrations that look first and insert what is missing: on
    PostgreSQL two transactions may both look before either commits, and the
    second's INSERT then waits for the first and fails on the unique key.
    False means "another writer made it meanwhile": the caller looks again
    (the row is visible now) and answers as if it had been there.
    """
    try:
        with _savepoint(conn, local):
            conn.execute(statement)
    except sa.exc.IntegrityError:
        return False
    return True
