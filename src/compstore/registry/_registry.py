"""The SQL registry: dataset types, dimensions, collections, datasets and provenance."""

from __future__ import annotations

import os

import sqlalchemy as sa

from ._engine import make_engine, make_url
from ._provenance import _Provenance

__all__ = ["Registry"]


class Registry(_Provenance):
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

