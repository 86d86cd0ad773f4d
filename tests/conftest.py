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
