"""A repository whose registry is a PostgreSQL database (issue 16), on a real server."""

from __future__ import annotations

import json
import os

import numpy as np
import psycopg
import pytest

from compstore import Butler
from compstore.cli import main
from compstore.errors import RepositoryError, RepositoryExistsError
from compstore.registry import CollectionType, Registry


@pytest.fixture
def shared(tmp_path, postgres_url):
    """A repository folder whose registry is a fresh PostgreSQL database."""
    root = tmp_path / "repo"
    Butler.create(root, registry=postgres_url)
    return root, postgres_url


def test_create_records_url_and_round_trips(shared):
    root, url = shared
    config = json.loads((root / "compstore.json").read_text())
    assert config["registry"] == url and config["version"] == "3.0"
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("x", ("visit",), "Array")
    small, large = np.arange(10), np.arange(300_000, dtype="f8")  # packed / own folder
    butler.put(small, "x", visit=1)
    butler.put(large, "x", visit=2)
    butler.blobs.sync()
    reader = Butler(root, collections="sfm")
    np.testing.assert_array_equal(reader.get("x", visit=1), small)
    np.testing.assert_array_equal(reader.get("x", visit=2), large)
    # Nothing shared lives in a local SQLite file: the registry and the pack index
    # are in the database.
    files = {p.name for p in root.rglob("*")}
    assert "registry.sqlite3" not in files and "packs.sqlite3" not in files
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM dataset").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM pack_member").fetchone()[0] >= 1


def test_packed_component_found_by_a_fresh_process_view(shared):
    # Another host sees the pack index through the database, not a local file.
    root, url = shared
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("x", ("visit",), "Array")
    butler.put(np.arange(7), "x", visit=1)
    butler.blobs.sync()
    from compstore.cas import LocalBlobStore
    from compstore.cas._pack_pg import PgPackIndex
    from compstore.registry._postgres import conninfo
    from compstore.registry._engine import make_url

    other = LocalBlobStore(root / "blobs", packs=True, pack_index=PgPackIndex(conninfo(make_url(url))))
    digests = list(other.iter_arrays())
    assert digests and all(other.has_array(d) for d in digests)


@pytest.mark.parametrize("where", ["create", "open"])
def test_url_where_a_folder_is_expected_is_refused(postgres_url, tmp_path, where):
    call = Butler.create if where == "create" else Butler
    with pytest.raises(RepositoryError, match=r"registry='postgresql://") as info:
        call(postgres_url)
    assert "--registry" in str(info.value)
    assert not os.path.exists("postgresql:")  # no folder named after the URL
    with psycopg.connect(postgres_url) as conn:  # and the database stays empty
        assert conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()[0] == 0


def test_cli_create_with_registry_and_refusal(tmp_path, postgres_url, capsys):
    root = str(tmp_path / "cli")
    assert main(["create", "--repo", root, "--registry", postgres_url]) == 0
    assert json.loads((tmp_path / "cli" / "compstore.json").read_text())["registry"] == postgres_url
    assert main(["register-dataset-type", "--repo", root, "calexp", "visit", "Exposure"]) == 0
    assert Registry(postgres_url).get_dataset_type("calexp").dimensions == ("visit",)
    capsys.readouterr()
    assert main(["create", "--repo", postgres_url]) == 1
    err = capsys.readouterr().err
    assert "is a URL, not a repository folder" in err and "--registry" in err
    assert "Traceback" not in err


def test_password_never_reaches_the_config(tmp_path, postgres_url):
    with_password = postgres_url.replace("postgres@", "postgres:secret@")
    with pytest.raises(RepositoryError, match=r"PGPASSWORD"):
        Butler.create(tmp_path / "r", registry=with_password)
    assert not (tmp_path / "r" / "compstore.json").exists()


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "sqlite:///x.db", "postgresql://u@127.0.0.1:5"])
def test_other_urls_are_refused(tmp_path, bad):
    with pytest.raises(RepositoryError, match="postgresql://user@host:port/db|names no database"):
        Butler.create(tmp_path / "r", registry=bad)


def test_unreachable_database_is_a_clean_error(tmp_path, postgres_server):
    url = postgres_server.url("no_such_database")
    with pytest.raises(RepositoryError, match="cannot reach the registry database"):
        Butler.create(tmp_path / "r", registry=url)


def test_second_repository_in_one_database_is_refused(shared, tmp_path):
    _, url = shared
    with pytest.raises(RepositoryExistsError, match="registry exists already"):
        Butler.create(tmp_path / "second", registry=url)


def test_memo_sees_another_process_commit(shared):
    """The generation row: a commit through another connection drops the data-ID memo.

    Without the bump in each writing transaction the reader would keep answering
    from its memo (the first collection's dataset) after the chain changed.
    """
    root, url = shared
    butler = Butler(root, run="a")
    butler.register_dataset_type("x", ("visit",), "Array")
    butler.put(np.zeros(3), "x", visit=1)
    reader = Butler(root, collections="chain")
    other = Registry(url)  # another registry object: its own connections, as another host
    try:
        other.register_run("b")
        other.register_collection("chain", CollectionType.CHAINED)
        other.set_chain("chain", ["a"])
        first = reader.find_dataset("x", visit=1)
        assert first.run == "a" and reader.find_dataset("x", visit=1) is first  # memo hit
        before = reader.registry.data_version()
        ref = other.insert_dataset("x", {"visit": 1}, "b", first.manifest)
        other.set_chain("chain", ["b", "a"])
        assert reader.registry.data_version() != before
        assert reader.find_dataset("x", visit=1).id == ref.id
    finally:
        other.close()


def test_remove_and_gc_on_a_postgresql_repository(shared):
    """gc works with the pack index in the database: it frees what remove left, keeps the rest."""
    root, url = shared
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("x", ("visit",), "Array")
    kept, dropped = np.arange(10), np.arange(20, 60)  # one pack, mostly dropped: rewritten
    big = np.arange(300_000, dtype="f8")  # its own folder
    butler.put_many([(kept, "x", {"visit": 1}), (dropped, "x", {"visit": 2})])
    butler.put(big, "x", visit=3)
    butler.remove(butler.query_datasets("x", where="visit IN (2, 3)", collections="sfm"))
    report = butler.gc()
    assert report.components >= 2 and report.packs_rewritten == 1, report
    assert not (root / "blobs" / "packs.sqlite3").exists()  # the index is the database's
    reader = Butler(root, collections="sfm")
    np.testing.assert_array_equal(reader.get("x", visit=1), kept)
    assert reader.verify(deep=True).ok
    assert butler.gc().components == 0  # nothing more to free


def test_subset_and_transfer_between_sqlite_and_postgresql(shared, tmp_path, postgres_server):
    """Copies as stored work in both directions, packed members included, and verify clean."""
    from compstore.testing.sky import make_catalog, make_exposure

    root, _ = shared
    writer = Butler(root, run="sfm")
    writer.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    writer.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    exposure = make_exposure(1, 0, size=64)
    writer.put_many([(exposure, "calexp", {"visit": 1, "detector": 0}),
                     (make_catalog(exposure), "src", {"visit": 1, "detector": 0})])
    local = Butler(root).subset(tmp_path / "local", dataset_types=["src"])  # PostgreSQL -> SQLite
    assert local.verify(deep=True).ok
    assert Butler(local.root, collections="sfm").get("src", visit=1, detector=0).wcs == exposure.wcs
    back = Butler.create(tmp_path / "back", registry=postgres_server.new_database())  # SQLite -> PG
    report = back.transfer_from(local, local.query_datasets("src"))
    assert report.datasets == 1 and back.verify(deep=True).ok
    assert back.transfer_from(local, local.query_datasets("src")).bytes_written == 0


def test_a_create_killed_before_its_config_can_be_run_again(tmp_path, postgres_url, monkeypatch):
    """The registry records the folder creating it: the same folder may finish the job;
    another folder, or a registry holding data, is refused."""
    import compstore._config as repository  # where the config is written

    real = repository.write_atomic

    def killed(path, data, **kwargs):
        raise KeyboardInterrupt  # the process dies before the config is written

    monkeypatch.setattr(repository, "write_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        Butler.create(tmp_path / "repo", registry=postgres_url)
    monkeypatch.setattr(repository, "write_atomic", real)
    assert not (tmp_path / "repo" / "compstore.json").exists()
    with pytest.raises(RepositoryExistsError, match="created for"):
        Butler.create(tmp_path / "other", registry=postgres_url)  # not its registry
    butler = Butler.create(tmp_path / "repo", registry=postgres_url)  # runs again, finishes
    writer = Butler(butler.root, run="sfm")
    writer.register_dataset_type("x", ("visit",), "Array")
    writer.put(np.arange(3), "x", visit=1)
    assert Butler(butler.root).verify(deep=True).ok
    (tmp_path / "repo" / "compstore.json").unlink()  # a repository that lost its config...
    with pytest.raises(RepositoryExistsError):
        Butler.create(tmp_path / "repo", registry=postgres_url)  # ...is never cleared
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM dataset").fetchone()[0] == 1


def test_a_copied_folder_is_refused_and_the_original_keeps_its_data(shared, tmp_path):
    """cp -r of a PostgreSQL-backed folder shares the database: writing through it would
    break the original (a gc in the copy repacked the original's pack index away)."""
    import shutil

    from compstore.testing.repository import copy_repository

    root, url = shared
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("x", ("visit",), "Array")
    butler.put(np.arange(10), "x", visit=1)
    with pytest.raises(ValueError, match="PostgreSQL"):
        copy_repository(root, tmp_path / "copy-by-helper")
    shutil.copytree(root, tmp_path / "copy")
    with pytest.raises(RepositoryError, match="is a copy of that repository folder"):
        Butler(tmp_path / "copy")  # (in the process that has the original open, too)
    np.testing.assert_array_equal(Butler(root, collections="sfm").get("x", visit=1), np.arange(10))
    # The same folder by another name (a symbolic link) is the repository itself.
    (tmp_path / "link").symlink_to(root)
    assert Butler(tmp_path / "link", collections="sfm").get("x", visit=1)[3] == 3


def _terminate_other_backends(url):
    """What a server restart or an administrator does to every other connection."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_dropped_pack_index_connection_is_opened_again_or_a_clean_error(postgres_url, tmp_path):
    from compstore.cas import LocalBlobStore
    from compstore.cas._pack_pg import PgPackIndex
    from compstore.errors import BlobStoreError
    from compstore.registry._engine import make_url
    from compstore.registry._postgres import conninfo

    index = PgPackIndex(conninfo(make_url(postgres_url)))
    store = LocalBlobStore(tmp_path / "blobs", packs=True, pack_index=index, fsync=False)
    first = store.put_document(b'{"a":1}')
    store.sync()
    _terminate_other_backends(postgres_url)
    # Reads (and the idempotent add) reconnect once and go on.
    fresh = LocalBlobStore(tmp_path / "blobs", packs=True, pack_index=index, fsync=False)
    assert fresh.get_document(first) == b'{"a":1}'
    _terminate_other_backends(postgres_url)
    second = fresh.put_document(b'{"b":2}')
    fresh.sync()
    assert list(fresh.iter_documents()) == sorted([first, second])
    # A delete is not run twice (its first run may have committed): a clean error.
    _terminate_other_backends(postgres_url)
    with pytest.raises(BlobStoreError, match="pack index .*pack_member.* try again") as caught:
        fresh.delete(second)
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    fresh.delete(second)  # the next call has a new connection
    assert not fresh.has_document(second)
    index.close()
