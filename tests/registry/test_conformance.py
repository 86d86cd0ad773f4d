"""The registry conformance suite (`compstore.testing.registry.RegistryTests`) on each database."""

from __future__ import annotations

import pytest

from compstore.registry import Registry
from compstore.testing.registry import RegistryTests


class TestSQLiteRegistry(RegistryTests):
    def make_registry(self, request: pytest.FixtureRequest) -> Registry:
        return Registry.create(request.getfixturevalue("tmp_path") / "registry.sqlite3")


class TestPostgresRegistry(RegistryTests):
    def make_registry(self, request: pytest.FixtureRequest) -> Registry:
        return Registry.create(request.getfixturevalue("postgres_url"))
