"""The pack index in a PostgreSQL database: what hosts sharing one repository share.

A repository whose registry is PostgreSQL keeps its pack index (digest ->
pack and byte ranges, as `compstore.cas._pack.PackIndex`) in the same database,
table ``pack_member``, instead of ``blobs/packs.sqlite3``: an SQLite file on a
shared filesystem cannot be written safely from several hosts, a database can.
Same methods and semantics as `PackIndex`; rows are checked the same way.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from compstore.cas._pack import PackedMember, _checked, _checked_rows
from compstore.errors import BlobStoreError

__all__ = ["PgPackIndex"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pack_member (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    pack TEXT NOT NULL,
    data_offset BIGINT NOT NULL,
    data_size BIGINT NOT NULL,
    meta_offset BIGINT,
    meta_size BIGINT,
    key TEXT
)
"""


class PgPackIndex:
    """The index of packed components in the table ``pack_member`` of a PostgreSQL database.

    Parameters
    ----------
    conninfo : `str`
        A libpq connection URI (no password: libpq reads ``$PGPASSWORD`` or
        ``~/.pgpass``).

    Notes
    -----
    One autocommit connection per process, used under a lock; each call is one
    statement (so one transaction). A forked process opens its own. A
    connection the server dropped (a restart, an administrator's
    ``pg_terminate_backend``, a network cut) is opened again and the
    statement run once more, except `remove`, whose first run may have
    committed; what still fails raises `BlobStoreError`, never a psycopg error.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: Any = None
        self._pid = -1
        self._lock = threading.Lock()
        with self._lock:
            self._connection().execute(_SCHEMA)

    @property
    def conninfo(self) -> str:
        """The libpq connection URI of the database (no password)."""
        return self._conninfo

    def _connection(self) -> Any:
        if self._conn is None or self._pid != os.getpid() or self._conn.closed:
            import psycopg

            self._conn = psycopg.connect(self._conninfo, autocommit=True, prepare_threshold=0)
            self._pid = os.getpid()
        return self._conn

    def _rows(self, sql: str, params: Any = (), *, retry: bool = True) -> list[tuple[Any, ...]]:
        """Run one statement; ``retry``: once more on a new connection if the server dropped it.

        Raises
        ------
        BlobStoreError
            If the statement fails, naming the pack index and what to do.
        """
        import psycopg

        with self._lock:
            for attempt in range(2):
                try:
                    cursor = self._connection().execute(sql, params)
                    return cursor.fetchall() if cursor.description else []
                except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                    # The connection is gone (or never came): a new one next time.
                    self._discard()
                    if retry and not attempt:
                        continue
                    raise BlobStoreError(
                        f"lost the connection to the pack index (table pack_member) in "
                        f"{self._conninfo}: {_first_line(exc)}; check that the database "
                        "server is up and reachable, then try again"
                    ) from exc
                except psycopg.Error as exc:
                    raise BlobStoreError(
                        f"the pack index (table pack_member) in {self._conninfo} failed: "
                        f"{_first_line(exc)}"
                    ) from exc
            raise AssertionError("unreachable")  # pragma: no cover

    def _discard(self) -> None:
        """Forget this process's connection (lock held), closing it if it still can be."""
        import psycopg

        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            # A broken connection may fail to close: it is dropped anyway.
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()

    def lookup(self, digest: str) -> PackedMember | None:
        """Where ``digest`` is packed, or None.

        Raises
        ------
        ValueError
            If its row is damaged (wrong types, negative sizes, a bad pack name).
        """
        rows = self._rows(
            "SELECT kind, pack, data_offset, data_size, meta_offset, meta_size, key "
            "FROM pack_member WHERE digest = %s",
            (digest,),
        )
        return _checked(PackedMember(*rows[0])) if rows else None

    def lookup_many(self, digests: Iterable[str]) -> dict[str, PackedMember]:
        """Where each of ``digests`` that is packed is (one query); damaged rows are left out.

        (A damaged row is reported by `lookup`, which the read of that component makes.)
        """
        wanted = list(digests)
        if not wanted:
            return {}
        rows = self._rows(
            "SELECT digest, kind, pack, data_offset, data_size, meta_offset, meta_size, key "
            "FROM pack_member WHERE digest = ANY(%s)",
            (wanted,),
        )
        return _checked_rows(rows)

    def add(self, members: dict[str, PackedMember]) -> None:
        """Record ``members`` (digest -> place) in one statement; existing rows win."""
        if not members:
            return
        rows = [
            (d, m.kind, m.pack, m.data_offset, m.data_size, m.meta_offset, m.meta_size, m.key)
            for d, m in members.items()
        ]
        columns = list(zip(*rows))
        # One statement (unnest of arrays): atomic, and one round trip for a whole pack.
        self._rows(
            "INSERT INTO pack_member SELECT * FROM unnest("
            "%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], "
            "%s::bigint[], %s::bigint[], %s::text[]) ON CONFLICT (digest) DO NOTHING",
            [list(c) for c in columns],
        )

    def existing(self, digests: Iterable[str]) -> dict[str, str]:
        """Which of ``digests`` are indexed: digest -> the pack holding it."""
        wanted = list(digests)
        if not wanted:
            return {}
        return dict(
            self._rows("SELECT digest, pack FROM pack_member WHERE digest = ANY(%s)", (wanted,))
        )

    def pack_names(self) -> set[str]:
        """The packs some row names (a full scan: for sweeping orphan packs)."""
        return {r[0] for r in self._rows("SELECT DISTINCT pack FROM pack_member")}

    def remove(self, digest: str) -> bool:
        """Forget ``digest``; whether it was there (its bytes stay in the pack)."""
        # Not retried: if the connection broke after the commit, a second run would
        # find nothing and answer "was not there".
        return bool(
            self._rows("DELETE FROM pack_member WHERE digest = %s RETURNING 1", (digest,), retry=False)
        )

    def digests(self, kind: str) -> Iterator[str]:
        """The digests of one kind, sorted."""
        rows = self._rows(
            "SELECT digest FROM pack_member WHERE kind = %s ORDER BY digest", (kind,)
        )
        return (r[0] for r in rows)

    def close(self) -> None:
        """Close this process's connection."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
