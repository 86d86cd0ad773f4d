"""A PostgreSQL server that drops the registry's connections (a restart, pg_terminate_backend)."""

from __future__ import annotations

import uuid

import pytest

from compstore.errors import RegistryError
from compstore.registry import Registry


def _terminate_others(url: str) -> int:
    """End every other session on ``url``'s database, as a server restart would; return how many."""
    import psycopg

    from compstore.registry._engine import make_url
    from compstore.registry._postgres import conninfo

    with psycopg.connect(conninfo(make_url(url)), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return len(rows)


@pytest.fixture
def pg_registry(postgres_url: str):  # type: ignore[no-untyped-def]
    with Registry.create(postgres_url) as registry:
        registry.register_run("sfm")
        registry.register_dataset_type("calexp", ("visit",), "Exposure")
        yield registry


def test_reads_reconnect_after_the_server_dropped_the_connections(
    pg_registry: Registry, postgres_url: str
) -> None:
    ref = pg_registry.insert_dataset("calexp", {"visit": 1}, "sfm", "m" * 32)
    # Open the pooled connection and the watcher's: both are then terminated.
    assert pg_registry.find_dataset("calexp", {"visit": 1}, ["sfm"]) == ref
    assert pg_registry.query_datasets("calexp", collections=["sfm"]) == [ref]
    assert _terminate_others(postgres_url) >= 1
    assert pg_registry.find_dataset("calexp", {"visit": 1}, ["sfm"]) == ref  # the watcher
    assert _terminate_others(postgres_url) >= 1
    assert pg_registry.query_datasets("calexp", collections=["sfm"]) == [ref]  # the pool
    assert _terminate_others(postgres_url) >= 1
    assert pg_registry.get_dataset(ref.id) == ref
    assert pg_registry.data_version() is not None
    # The change counter's own fast path (one prepared statement on libpq),
    # prepared by now: a dropped connection is found and replaced there too.
    version = pg_registry.data_version()
    assert pg_registry.data_version() == version
    assert _terminate_others(postgres_url) >= 1
    assert pg_registry.data_version() == version
    assert pg_registry.data_version() == version  # prepared again on the new connection
    pg_registry.query_datasets("calexp", collections=["sfm"])  # the pool reconnects
    pg_registry.insert_dataset("calexp", {"visit": 3}, "sfm", "k" * 32)
    assert pg_registry.data_version() != version


def test_a_write_after_a_lost_connection_works_or_says_so(
    pg_registry: Registry, postgres_url: str
) -> None:
    pg_registry.query_datasets("calexp", collections=["sfm"])
    pg_registry.data_version()
    assert _terminate_others(postgres_url) >= 1
    try:
        ref = pg_registry.insert_dataset("calexp", {"visit": 2}, "sfm", "n" * 32)
    except RegistryError as exc:
        assert "connection" in str(exc)
    else:
        assert pg_registry.get_dataset(ref.id) == ref
    # A transaction whose connection is lost half-way: rolled back, and said so.
    with pytest.raises(RegistryError, match="connection"):
        with pg_registry.transaction():
            pg_registry.insert_dataset("calexp", {"visit": 3}, "sfm", "o" * 32)
            _terminate_others(postgres_url)
            pg_registry.insert_dataset("calexp", {"visit": 4}, "sfm", "p" * 32)
    assert pg_registry.find_dataset("calexp", {"visit": 3}, ["sfm"]) is None
    assert pg_registry.get_dataset(uuid.uuid4()) is None


def test_the_change_counter_keeps_its_fast_path_after_a_failed_run(pg_registry: Registry) -> None:
    """A failed run of the prepared statement on a live connection drops the fast path;
    the next reading prepares it again, finding it prepared already, and keeps it."""
    version = pg_registry.data_version()
    pg_registry.data_version()
    watcher = pg_registry._watcher
    assert watcher is not None and watcher._state_conn is not None  # the fast path is on
    watcher._state_conn = None  # as after a failed run: the statement is still prepared
    assert pg_registry.data_version() == version
    assert watcher._state_conn is not None  # and the fast path is back
