"""Fixtures for the registry tests: an empty registry and a small populated one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from compstore.registry import CollectionType, DatasetRef, Registry


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """An empty registry: in a SQLite file, and in a PostgreSQL database."""
    if request.param == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("SQLite-only: tests SQLite's own pragmas or files")
        target: object = request.getfixturevalue("postgres_url")
    else:
        target = tmp_path / "registry.sqlite3"
    with Registry.create(target) as reg:  # type: ignore[arg-type]
        yield reg


# visit, detector, band of the small dataset the where tests query.
ROWS = [
    (visit, detector, band)
    for visit in (1, 2, 3, 10)
    for detector in (0, 1, 2)
    for band in (("r",) if visit % 2 else ("g",))
]


@pytest.fixture
def sfm_calexp(registry: Registry) -> Registry:
    """The ``registry`` fixture with RUN ``sfm`` and dataset type ``calexp(visit)``."""
    registry.register_run("sfm")
    registry.register_dataset_type("calexp", ("visit",), "Exposure")
    return registry


@pytest.fixture
def populated(registry: Registry) -> tuple[Registry, dict[tuple[int, int, str], DatasetRef]]:
    """A registry with ``calexp(visit, detector, band)`` rows ROWS in RUN ``sfm``.

    Also: RUN ``jointcal`` holding visit 1's datasets again, CHAINED ``all``
    = [jointcal, sfm], TAGGED ``best`` with two sfm datasets.
    """
    registry.register_dataset_type("calexp", ("visit", "detector", "band"), "Exposure")
    registry.register_run("sfm")
    registry.register_run("jointcal")
    registry.register_collection("all", CollectionType.CHAINED)
    registry.set_chain("all", ["jointcal", "sfm"])
    registry.register_collection("best", CollectionType.TAGGED)
    refs = registry.insert_datasets(
        "calexp",
        [{"visit": v, "detector": d, "band": b} for v, d, b in ROWS],
        "sfm",
        [f"m-{v}-{d}-{b}" for v, d, b in ROWS],
    )
    by_key = {(r.data_id["visit"], r.data_id["detector"], r.data_id["band"]): r for r in refs}
    for v, d, b in ROWS:
        if v == 1:
            registry.insert_dataset("calexp", {"visit": v, "detector": d, "band": b},
                                    "jointcal", f"j-{v}-{d}")
    registry.associate("best", [by_key[(2, 0, "g")], by_key[(3, 1, "r")]])
    return registry, by_key
