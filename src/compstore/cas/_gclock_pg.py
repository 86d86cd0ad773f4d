"""The gc lock of a repository on object storage whose registry is PostgreSQL: advisory locks.

Hosts sharing such a repository share no file system, so the ``flock`` of
`compstore.cas._gclock` cannot exclude them; they share the registry's
database, whose *session advisory locks* can. The protocol is the same
(``docs/spec/format.md``, "Garbage collection"):

- a writer holds ``pg_advisory_lock_shared(K)`` on a connection of its own
  (one per thread and process) from before its first existence check until
  its registry row is committed; it takes the lock and reads the generation
  in one round trip (two statements, each with its own snapshot, so the
  generation is read after the lock is granted);
- gc's sweep holds ``pg_advisory_lock(K)`` on a new connection. PostgreSQL
  queues a request behind a *waiting* request it conflicts with, so a
  writer arriving while a sweep waits waits behind it: gc is not starved by a
  stream of overlapping puts, and no gate is needed;
- ``K`` is derived from the repository's URL (`lock_key`); the generation is
  row ``K`` of the table ``compstore_gc`` in the same database (created on
  demand, under a transaction advisory lock so that two first users do not
  both create it), which the sweep increments, committed, before it deletes
  anything.

An advisory lock lives as long as its session: a connection the server loses
(a network cut, a restart, ``pg_terminate_backend``) releases it while the
writer goes on, and a sweep may then run. Hence `PgGcLock.confirm`, the last
statement of the put's registry transaction: it reads the generation row
again ``FOR SHARE``.

- If the generation differs from the one read under the lock, a sweep bumped
  it since, and may have deleted what the put reuses or wrote: the put fails
  with `BlobStoreError` (its transaction rolls back; put again).
- If it is the same, no sweep deleted anything since the put's first
  existence check (a sweep commits its bump before deleting), and none can
  bump before this transaction ends (its ``UPDATE`` waits for the row lock):
  the sweep re-reads the datasets after its bump and sees this put's rows.

A sweep that loses its connection is told by the check `PgGcLock.sweep`
yields (``SELECT 1`` on that connection), which the sweep runs before each
batch of deletes: it stops at the next batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

from compstore.cas._gclock import Execute
from compstore.errors import BlobStoreError

__all__ = ["APPLICATION", "PgGcLock", "lock_key"]

#: The ``application_name`` of the lock's sessions (``pg_stat_activity`` shows them).
APPLICATION: Final = "compstore gc lock"

_TABLE: Final = "compstore_gc"
# The (int, int) advisory key space is not the bigint one: no repository's K is this.
_SETUP: Final = (
    "SELECT pg_advisory_xact_lock(1129271632, 1); "
    f"CREATE TABLE IF NOT EXISTS {_TABLE} (lock_key BIGINT PRIMARY KEY, generation BIGINT NOT NULL); "
    f"INSERT INTO {_TABLE} VALUES ({{k}}, 0) ON CONFLICT DO NOTHING"
)
_CONFIRM: Final = f"SELECT generation FROM {_TABLE} WHERE lock_key = %(k)s FOR SHARE"
# Per thread: the generation each writer guard read, by lock key. A put nested in
# a put of the same repository (through any `PgGcLock` of it) takes no second lock:
# a second shared request would queue behind a waiting sweep, which waits for the first.
_held = threading.local()


def lock_key(url: str) -> int:
    """The advisory lock key (a signed 64-bit integer) of the repository ``url``."""
    digest = hashlib.sha256(b"compstore gc lock\0" + url.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Session:
    """One autocommit connection of this process (closed with it: a forked child opens its own)."""

    def __init__(self, conninfo: str) -> None:
        import psycopg

        self.pid = os.getpid()
        # Never prepared: the writer's two statements go in one simple query.
        self.conn: Any = psycopg.connect(
            conninfo, autocommit=True, prepare_threshold=None, application_name=APPLICATION
        )
        self._errors = (psycopg.Error, OSError)  # no import in `close` (run at exit too)

    def run(self, sql: str) -> list[Any]:
        """Run ``sql`` (one or more statements); the first column of each statement's last row."""
        cursor = self.conn.execute(sql)
        values = []
        while True:
            row = cursor.fetchone() if cursor.description else None
            values.append(None if row is None else row[0])
            if not cursor.nextset():
                return values

    def close(self) -> None:
        if self.pid == os.getpid():  # a forked child must not end its parent's session
            with contextlib.suppress(*self._errors):
                self.conn.close()

    def __del__(self) -> None:
        self.close()


class PgGcLock:
    """The gc lock of the repository ``url``, held in its registry's database ``conninfo``.

    Parameters
    ----------
    conninfo : `str`
        The libpq URI of the registry's database (no password: libpq reads
        ``$PGPASSWORD`` or ``~/.pgpass``).
    url : `str`
        The repository's URL, from which the lock key is derived (`lock_key`).

    Notes
    -----
    Writers of one thread share one connection, kept open; writers of other
    threads or processes have their own (a shared request made on the session
    holding a lock counts it again, and a waiting request would block the
    connection the holder needs to let go). Nothing connects before the first
    use. Every failure to reach the database raises `BlobStoreError`.
    """

    def __init__(self, conninfo: str, url: str) -> None:
        self._conninfo = conninfo
        self._url = url
        self._k = lock_key(url)
        # Where, for messages: the URI without a password.
        self._where = re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", conninfo)
        self._local = threading.local()
        self._setup_lock = threading.Lock()
        self._ready = -1  # the pid whose setup ran (the table and the row exist)

    @property
    def key(self) -> str:
        return f"pg:{self._k}:{self._conninfo}"

    def __repr__(self) -> str:
        return f"PgGcLock({self._url!r})"

    # -- connections -------------------------------------------------------------
    def _session(self) -> _Session:
        """This thread's writer session (a new one after a fork or a lost connection)."""
        session: _Session | None = getattr(self._local, "session", None)
        if session is None or session.pid != os.getpid() or session.conn.closed:
            session = self._local.session = self._connect()
        return session

    def _connect(self) -> _Session:
        import psycopg

        try:
            session = _Session(self._conninfo)
        except psycopg.Error as exc:
            raise self._error("cannot reach", exc) from exc
        try:
            if self._ready != os.getpid():
                with self._setup_lock:
                    session.run(_SETUP.format(k=self._k))
                    self._ready = os.getpid()
        except psycopg.Error as exc:
            session.close()  # not left to the garbage collector
            raise self._error("cannot reach", exc) from exc
        return session

    def _error(self, what: str, exc: BaseException) -> BlobStoreError:
        reason = " ".join(str(exc).split())[:300]
        return BlobStoreError(
            f"{what} the gc lock of {self._url} (advisory lock {self._k} and table {_TABLE} in "
            f"the registry database {self._where}): {reason}; check that the database server "
            "is up and reachable and that this user may create a table there, then try again"
        )

    def _drop(self) -> None:
        session: _Session | None = getattr(self._local, "session", None)
        self._local.session = None
        if session is not None:
            session.close()

    # -- the writers' side -------------------------------------------------------
    @contextlib.contextmanager
    def writer(self) -> Iterator[bytes]:
        """Hold the lock shared for the block (reentrant per thread); yield the generation.

        Raises
        ------
        BlobStoreError
            If the database cannot be reached or the lock taken.
        """
        import psycopg

        # By process too: a child forked inside a put does not hold its parent's session.
        mine = (os.getpid(), self.key)
        held: dict[tuple[int, str], bytes] | None = getattr(_held, "keys", None)
        if held is None:
            held = _held.keys = {}
        if mine in held:  # the outer guard of this thread holds the lock until it exits
            yield held[mine]
            return
        take = (
            f"SELECT pg_advisory_lock_shared({self._k}); "
            f"SELECT generation FROM {_TABLE} WHERE lock_key = {self._k}"
        )
        for attempt in range(2):
            session = self._session()
            try:
                _, generation = session.run(take)
                break
            except psycopg.Error as exc:
                self._drop()  # a lock granted before the failure goes with the session
                # A session the server ended while idle (a restart, a timeout): once more.
                if attempt or not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
                    raise self._error("cannot take", exc) from exc
            except BaseException:
                self._drop()  # interrupted: a lock granted meanwhile is not kept by the thread
                raise
        held[mine] = str(generation).encode()
        try:
            yield held[mine]
        finally:
            del held[mine]
            try:
                session.run(f"SELECT pg_advisory_unlock_shared({self._k})")
            except psycopg.Error:
                # The session is gone, and its lock with it; what ran under it was
                # checked by `confirm` (a put that got this far has committed or not).
                self._drop()

    def confirm(self, generation: bytes, execute: Execute) -> None:
        """Check, last in the put's registry transaction, that no sweep ran since ``generation``.

        Raises
        ------
        BlobStoreError
            If a sweep bumped the generation since the writer took the lock (its
            lock was lost with its connection): nothing of the put is registered.
        """
        rows = execute(_CONFIRM, {"k": self._k})
        now = str(rows[0][0]).encode() if rows else b"missing"
        if now != generation:
            raise BlobStoreError(
                f"the gc lock of {self._url} was lost during this put (its connection to the "
                f"registry database closed) and a garbage collection ran meanwhile (generation "
                f"{generation.decode()} -> {now.decode()}): it may have deleted components "
                "this put reuses, so nothing was registered; put again"
            )

    # -- the sweep's side --------------------------------------------------------
    @contextlib.contextmanager
    def sweep(self, *, bump: bool) -> Iterator[Callable[[], None]]:
        """Hold the lock exclusive for the block (puts in flight finish first, new ones wait).

        With ``bump``, the generation is incremented and committed on entry. The
        block gets a check raising `BlobStoreError` if the lock is no longer held.

        Raises
        ------
        BlobStoreError
            If the database cannot be reached or the lock taken.
        """
        import psycopg

        session = self._connect()
        try:
            try:
                session.run(f"SELECT pg_advisory_lock({self._k})")
                if bump:
                    session.run(
                        f"UPDATE {_TABLE} SET generation = generation + 1 WHERE lock_key = {self._k}"
                    )
            except psycopg.Error as exc:
                raise self._error("cannot take", exc) from exc

            def held() -> None:
                try:
                    session.run("SELECT 1")
                except psycopg.Error as exc:
                    raise self._error("lost", exc) from exc

            yield held
        finally:
            session.close()  # lets the lock go

    def read_generation(self) -> bytes:
        """The generation, read without the lock.

        Raises
        ------
        BlobStoreError
            If the database cannot be reached.
        """
        import psycopg

        try:
            (value,) = self._session().run(
                f"SELECT generation FROM {_TABLE} WHERE lock_key = {self._k}"
            )
        except psycopg.Error as exc:
            self._drop()
            raise self._error("cannot read", exc) from exc
        return str(value).encode()
