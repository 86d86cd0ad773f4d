"""The package type-checks (``mypy --strict``) and lints (ruff), as configured in pyproject.toml."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tomllib

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


def test_mypy_runs_in_strict_mode() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config.get("strict") is True, "[tool.mypy] must keep strict = true (issue 15)"


def _ruff() -> list[str]:
    """The command running ruff: the executable beside this Python's, or on PATH."""
    beside = pathlib.Path(sys.executable).with_name("ruff")
    found = str(beside) if beside.is_file() else shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return [found]


def test_ruff_reports_no_problems() -> None:
    # Rules and exceptions: [tool.ruff.lint] in pyproject.toml.
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--output-format", "concise", "src", "tests"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, f"ruff found problems:\n{result.stdout}{result.stderr}"


def test_every_source_module_is_under_700_lines() -> None:
    """One idea per module: the largest source file stays under 700 lines (issue 15)."""
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for path in (ROOT / "src" / "compstore").rglob("*.py")
    }
    too_long = {name: n for name, n in sizes.items() if n >= 700}
    assert not too_long, f"split these modules along their ideas: {too_long}"
