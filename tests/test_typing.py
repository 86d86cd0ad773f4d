"""The package type-checks: ``mypy src/compstore`` (config in pyproject.toml) reports no errors."""

from __future__ import annotations

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mypy_reports_no_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    # Run from the project root so mypy picks up [tool.mypy] in pyproject.toml.
    monkeypatch.chdir(ROOT)
    stdout, stderr, status = api.run(["--no-error-summary", "src/compstore"])
    assert status == 0, f"mypy found errors:\n{stdout}{stderr}"
    assert stdout.strip() == "", stdout
