"""The per-process caches of dataset types and collections, validated by the change counter."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import sqlalchemy as sa

from ._common import (
    _CATALOG_KEY,
)
from ._connections import _Connections
from ._engine import damaged_registry_error
from ._postgres import PgWatcher
from ._schema import (
    attach_dimension_column,
    build_metadata,
)

_T = TypeVar("_T")

# Entries `remembered` keeps at most (all are dropped when the bound is reached).
_REMEMBERED_LIMIT = 100_000


class _Caches(_Connections):
    """`data_version` and the catalog version: when the caches are still valid."""

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

        Inside `remembered`'s computation the number read when it started is
        answered again, without a query (this thread only).
        """
        if self._pins:
            pinned = getattr(self._local, "pinned", None)
            if pinned is not None:
                return pinned  # type: ignore[no-any-return]
        counter = self._counter
        if counter is None:
            return None
        if counter == "postgresql":
            return self._pg_data_version()
        with self._lock:
            watcher = self._watcher
            if watcher is None:
                # A connection of its own: data_version only changes for commits made
                # on *other* connections, which every registry write is.
                watcher = sqlite3.connect(str(self._url.database), check_same_thread=False)
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

    def remembered(self, key: Hashable, compute: Callable[..., _T], *args: Any) -> _T:
        """``compute(*args)``, remembered until anyone commits: the one memo validated by `data_version`.

        The change counter is read once: the caches of dataset types and
        collections that ``compute`` uses through this registry are validated
        by that same reading (`data_version` answers it again, on this thread,
        until ``compute`` returns). A Butler's lookup of a dataset by data ID
        is remembered here, so a get that repeats one costs no SQL but that
        reading, and one that misses reads the counter once.

        Parameters
        ----------
        key : hashable
            What ``compute`` answers, including everything its result depends
            on besides the database (e.g. the caller's default collections).
        compute : callable
            A read-only lookup through this registry, called with ``args``.
            What it raises is raised and not remembered; neither is `None`.
        *args
            Its arguments.

        Returns
        -------
        value
            The remembered or computed value. With no change counter (an
            in-memory SQLite database) nothing is remembered.
        """
        version = self.data_version()
        if version is None:
            return compute(*args)
        if version == self._remembered_version:
            hit = self._remembered.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        if getattr(self._local, "pinned", None) is not None:
            return compute(*args)  # nested: the outer call pinned the version already
        self._local.pinned = version
        with self._lock:
            self._pins += 1
        try:
            value = compute(*args)
        finally:
            self._local.pinned = None
            with self._lock:
                self._pins -= 1
        with self._lock:
            if version != self._remembered_version:
                # A commit since the values held (or, from a slower thread, before):
                # drop them; a hit needs the version read to be this one.
                self._remembered.clear()
                self._remembered_version = version
            elif len(self._remembered) >= _REMEMBERED_LIMIT:
                self._remembered.clear()
            if value is not None:
                self._remembered[key] = value
        return value

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
