"""Shared fixtures: a fresh repository per test and small sky-like exposures."""

from __future__ import annotations

import pytest

from compstore import Butler


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-scale",
        type=int,
        default=None,
        help="multiply the trials of tests/reliability (default 1, or "
        "$COMPSTORE_RELIABILITY_SCALE)",
    )


@pytest.fixture
def repo(tmp_path):
    """A new, empty repository; returns its path."""
    root = tmp_path / "repo"
    Butler.create(root)
    return root


@pytest.fixture
def butler(repo):
    """A Butler writing into run ``sfm`` with calexp and src registered."""
    b = Butler(repo, run="sfm")
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    return b


@pytest.fixture(scope="session")
def sky():
    """Factory of small synthetic exposures and their catalogs (cached per data ID)."""
    from compstore.testing.sky import make_catalog, make_exposure

    made = {}

    def make(visit=1, detector=0, size=256):
        key = (visit, detector, size)
        if key not in made:
            exposure = make_exposure(visit, detector, size=size, seed=7)
            made[key] = (exposure, make_catalog(exposure))
        return made[key]

    return make


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server of the test session's own, on loopback (compstore.testing.postgres).

    Skipped where no PostgreSQL is installed, except in CI (``$CI``), where that fails:
    ``.ci/run`` installs one (the ``pgserver`` wheel of the ``test`` extra).
    """
    import os

    from compstore.testing.postgres import PostgresServer, find_postgres_bin

    if find_postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("no PostgreSQL installed: pip install pgserver")
        pytest.skip("no PostgreSQL installed (pip install pgserver)")
    # A folder of its own (not tmp_path_factory's, which only root may enter): the
    # server runs as `nobody` when the tests run as root.
    server = PostgresServer(durable=False).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The URL of a new, empty PostgreSQL database on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server of the test session's own, on loopback (compstore.testing.s3).

    Skipped where ``moto[server]`` or obstore is not installed, except in CI
    (``$CI``), where that fails: both are in the ``test`` extra.
    """
    import importlib.util
    import os

    from compstore.testing.s3 import S3Server

    for module, package in (("moto", "moto[server]"), ("obstore", "obstore")):
        if importlib.util.find_spec(module) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{package} is not installed: pip install '{package}'")
            pytest.skip(f"{package} is not installed")
    server = S3Server().start()
    yield server
    server.stop()


@pytest.fixture
def s3_bucket(s3_server):
    """The name of a new, empty bucket on the session's S3 server."""
    return s3_server.new_bucket()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The server's endpoint and credentials in the ``AWS_*`` variables (nowhere else)."""
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def s3_url(s3_env, s3_bucket):
    """The URL of a repository not created yet, in a new bucket (``s3://<bucket>/survey/main``)."""
    return f"s3://{s3_bucket}/survey/main"
