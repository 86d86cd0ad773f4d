"""gc of a repository on object storage whose registry is PostgreSQL (issue 17): advisory locks.

A real S3-compatible server (moto's, ``s3_server``) and a real PostgreSQL
(``postgres_server``). The gc lock is `compstore.cas._gclock_pg.PgGcLock`:
puts hold ``pg_advisory_lock_shared`` on a connection of their own, the sweep
``pg_advisory_lock``; a put whose lock was lost with its connection fails if
a sweep ran meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import psycopg
import pytest

from compstore import Butler
from compstore.errors import BlobStoreError, DatasetNotFoundError
from compstore.testing.sky import make_catalog, make_exposure


@pytest.fixture
def repo(s3_env, s3_bucket, postgres_url):
    """An S3 repository with a PostgreSQL registry and the types calexp and src."""
    url = f"s3://{s3_bucket}/survey/pg"
    Butler.create(url, registry=postgres_url)
    setup = Butler(url)
    setup.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    setup.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    return url, postgres_url


def _wait_until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _advisory(postgres_url):
    """(mode, granted, pid) of every advisory lock of the database."""
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT mode, granted, pid FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()


def test_gc_frees_what_remove_left_and_keeps_what_is_live(repo):
    url, _ = repo
    butler = Butler(url, run="sfm")
    # 600x600: image, mask and variance over 1 MiB each (their own objects, not packed).
    keep, gone = make_exposure(1, 0, size=600, seed=1), make_exposure(2, 0, size=600, seed=2)
    butler.put(keep, "calexp", visit=1, detector=0)
    butler.put(make_catalog(keep), "src", visit=1, detector=0)
    refs = [butler.put(gone, "calexp", visit=2, detector=0),
            butler.put(make_catalog(gone), "src", visit=2, detector=0)]  # fmt: skip
    butler.remove(refs)
    dry = Butler(url).gc(dry_run=True)
    assert dry.arrays == 3 and dry.pack_members > 0
    report = Butler(url).gc()
    assert (report.arrays, report.pack_members) == (dry.arrays, dry.pack_members)
    assert report.bytes_freed > 1 << 20
    reader = Butler(url, collections=["sfm"])
    np.testing.assert_array_equal(reader.get("calexp", visit=1, detector=0).image, keep.image)
    assert len(reader.get("src", visit=1, detector=0)) == len(make_catalog(keep))
    assert reader.verify(deep=True).ok
    assert Butler(url).gc().components == 0
    # The writer's identity cache forgot what gc deleted (a new generation): put again, read back.
    butler.put(gone, "calexp", visit=2, detector=0)
    np.testing.assert_array_equal(
        Butler(url, collections=["sfm"]).get("calexp", visit=2, detector=0).image, gone.image
    )
    assert Butler(url).verify(deep=True).ok


def test_a_sweep_waits_for_a_put_in_flight_in_another_thread(repo):
    from compstore.gc import put_guard

    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    done = []
    with put_guard(butler.blobs, butler.cache):
        worker = threading.Thread(target=lambda: done.append(Butler(url).gc()))
        worker.start()
        _wait_until(lambda: ("ExclusiveLock", False) in {m[:2] for m in _advisory(postgres_url)})
        time.sleep(0.3)
        assert not done  # blocked behind the put
    worker.join(30)
    assert done and done[0].components == 0


_HOLDER = textwrap.dedent(
    """
    import sys
    from compstore import Butler
    from compstore.gc import put_guard
    butler = Butler(sys.argv[1], run="sfm")
    with put_guard(butler.blobs, butler.cache):
        print("held", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def test_a_sweep_waits_for_a_put_in_flight_in_another_process(repo):
    url, postgres_url = repo
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, url], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        done = []
        worker = threading.Thread(target=lambda: done.append(Butler(url).gc()))
        worker.start()
        _wait_until(lambda: ("ExclusiveLock", False) in {m[:2] for m in _advisory(postgres_url)})
        time.sleep(0.3)
        assert not done
        holder.stdin.write("\n")
        holder.stdin.flush()
        worker.join(30)
        assert done and done[0].components == 0
    finally:
        holder.kill()
        holder.wait()


def test_puts_wait_for_the_sweep_and_forget_what_it_may_have_deleted(repo):
    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    exposure = make_exposure(3, 0, size=64, seed=3)
    butler.put(exposure, "calexp", visit=3, detector=0)
    lock = butler.blobs.gc_lock
    done = []
    with lock.sweep(bump=True) as held:
        held()
        worker = threading.Thread(
            target=lambda: done.append(butler.put(exposure, "calexp", visit=4, detector=0))
        )
        worker.start()
        _wait_until(lambda: ("ShareLock", False) in {m[:2] for m in _advisory(postgres_url)})
        time.sleep(0.3)
        assert not done  # the put waits for the sweep
    worker.join(30)
    assert done
    np.testing.assert_array_equal(
        Butler(url, collections=["sfm"]).get("calexp", visit=4, detector=0).image, exposure.image
    )


def test_a_put_arriving_while_a_sweep_waits_queues_behind_it(repo):
    """PostgreSQL grants a shared request after a waiting exclusive one: gc is not starved."""
    url, postgres_url = repo
    lock = Butler(url).blobs.gc_lock
    order = []
    first = threading.Event()
    release_first = threading.Event()

    def writer(name, hold):
        with lock.writer():
            order.append(name)
            if hold is not None:
                first.set()
                hold.wait(30)

    def sweeper():
        with lock.sweep(bump=False):
            order.append("sweep")
            time.sleep(0.3)  # the second writer is waiting meanwhile

    a = threading.Thread(target=writer, args=("a", release_first))
    a.start()
    first.wait(30)
    s = threading.Thread(target=sweeper)
    s.start()
    _wait_until(lambda: ("ExclusiveLock", False) in {m[:2] for m in _advisory(postgres_url)})
    b = threading.Thread(target=writer, args=("b", None))
    b.start()
    _wait_until(lambda: ("ShareLock", False) in {m[:2] for m in _advisory(postgres_url)})
    assert order == ["a"]  # b waits, though only a shared lock is held: behind the sweep
    release_first.set()
    for t in (a, s, b):
        t.join(30)
    assert order == ["a", "sweep", "b"]


def _terminate_writer_locks(postgres_url):
    """End the sessions holding the gc lock shared (as a network cut or a restart would)."""
    pids = {pid for mode, granted, pid in _advisory(postgres_url) if mode == "ShareLock" and granted}
    assert pids
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
    _wait_until(lambda: not _advisory(postgres_url))


def test_a_put_whose_lock_was_lost_while_gc_ran_fails_cleanly(repo, monkeypatch):
    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    exposure = make_exposure(5, 0, size=600, seed=5)  # new content: its components are written
    sync = butler.blobs.sync
    reports = []

    def sync_then_lose_the_lock_and_gc():
        sync()  # the put's components are stored, not yet named by any row
        _terminate_writer_locks(postgres_url)
        reports.append(Butler(url).gc())

    monkeypatch.setattr(butler.blobs, "sync", sync_then_lose_the_lock_and_gc)
    with pytest.raises(BlobStoreError, match=r"gc lock of s3://.* was lost during this put .*put again"):
        butler.put(exposure, "calexp", visit=5, detector=0)
    assert reports[0].arrays == 3  # gc deleted the put's arrays: the put must not register them
    with pytest.raises(DatasetNotFoundError):
        Butler(url, collections=["sfm"]).find_dataset("calexp", visit=5, detector=0)
    assert Butler(url).verify(deep=True).ok
    monkeypatch.setattr(butler.blobs, "sync", sync)
    butler.put(exposure, "calexp", visit=5, detector=0)  # put again: a new connection, all written
    np.testing.assert_array_equal(
        Butler(url, collections=["sfm"]).get("calexp", visit=5, detector=0).image, exposure.image
    )
    assert Butler(url).verify(deep=True).ok


def test_a_put_whose_lock_was_lost_without_a_gc_commits(repo, monkeypatch):
    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    exposure = make_exposure(6, 0, size=64, seed=6)
    sync = butler.blobs.sync

    def sync_then_lose_the_lock():
        sync()
        _terminate_writer_locks(postgres_url)

    monkeypatch.setattr(butler.blobs, "sync", sync_then_lose_the_lock)
    butler.put(exposure, "calexp", visit=6, detector=0)  # no sweep ran: the put is safe
    monkeypatch.setattr(butler.blobs, "sync", sync)
    butler.put(exposure, "calexp", visit=7, detector=0)  # the next put opens a new connection
    reader = Butler(url, collections=["sfm"])
    for visit in (6, 7):
        np.testing.assert_array_equal(reader.get("calexp", visit=visit, detector=0).image,
                                      exposure.image)  # fmt: skip


def test_a_sweep_whose_lock_was_lost_stops_before_deleting(repo, monkeypatch):
    from compstore.butler import gc as gc_module

    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    ref = butler.put(make_exposure(8, 0, size=600, seed=8), "calexp", visit=8, detector=0)
    butler.remove([ref])
    mark = gc_module._mark

    def mark_then_lose_the_lock(*args):
        mark(*args)
        pids = {pid for mode, granted, pid in _advisory(postgres_url) if mode == "ExclusiveLock"}
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            for pid in pids:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))

    monkeypatch.setattr(gc_module, "_mark", mark_then_lose_the_lock)
    with pytest.raises(BlobStoreError, match="lost the gc lock of s3://"):
        Butler(url).gc()
    monkeypatch.setattr(gc_module, "_mark", mark)
    assert Butler(url).gc().arrays == 3  # nothing was deleted: the next gc does it


def test_a_lock_session_ended_while_idle_is_opened_again_by_the_next_put(repo):
    from compstore.cas._gclock_pg import APPLICATION

    url, postgres_url = repo
    butler = Butler(url, run="sfm")
    exposure = make_exposure(9, 0, size=64, seed=9)
    butler.put(exposure, "calexp", visit=9, detector=0)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        ended = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (APPLICATION,),
        ).fetchall()
    assert ended  # the writer's idle session (a restart or a timeout would end it too)
    butler.put(exposure, "calexp", visit=10, detector=0)
    np.testing.assert_array_equal(
        Butler(url, collections=["sfm"]).get("calexp", visit=10, detector=0).image, exposure.image
    )


def test_a_session_whose_setup_fails_is_closed(postgres_url, monkeypatch):
    """A connection made for the lock is closed when creating its table fails (no leak)."""
    from compstore.cas import _gclock_pg

    made = []
    real_run = _gclock_pg._Session.run

    def failing_run(self, sql):
        made.append(self)
        if "CREATE TABLE" in sql:
            raise psycopg.errors.InsufficientPrivilege("permission denied for schema public")
        return real_run(self, sql)

    monkeypatch.setattr(_gclock_pg._Session, "run", failing_run)
    lock = _gclock_pg.PgGcLock(postgres_url, "s3://nowhere/setup-fails")
    with pytest.raises(BlobStoreError, match="may create a table"):
        lock.read_generation()
    assert made and all(session.conn.closed for session in made)


def test_a_writer_interrupted_while_taking_the_lock_keeps_none(postgres_url, monkeypatch):
    """An interrupt after the shared lock is granted drops the session: no lock left held."""
    from compstore.cas import _gclock_pg

    lock = _gclock_pg.PgGcLock(postgres_url, "s3://nowhere/interrupted")
    lock.read_generation()  # the table and the row exist
    real_run = _gclock_pg._Session.run

    def interrupted(self, sql):
        values = real_run(self, sql)
        if "pg_advisory_lock_shared" in sql:
            raise KeyboardInterrupt
        return values

    monkeypatch.setattr(_gclock_pg._Session, "run", interrupted)
    with pytest.raises(KeyboardInterrupt), lock.writer():
        pass
    _wait_until(lambda: not _advisory(postgres_url))
