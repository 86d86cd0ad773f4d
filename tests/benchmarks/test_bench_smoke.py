"""The benchmark scripts still run, at their tiny size (no timing is checked: never time in tests)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


CASES = [
    pytest.param("bench_put_get.py", ["--size", "tiny", "--no-write", "--repeat", "2"], id="put_get"),
    pytest.param("bench_scaling.py", ["--size", "tiny", "--no-write", "--repeat", "2"], id="scaling"),
    pytest.param("bench_cache.py", ["--size", "small"], id="cache"),
    pytest.param("bench_registry.py", ["--size", "small"], id="registry"),
    pytest.param(
        "bench_vs_daf_butler.py",
        ["--size", "tiny", "--no-write", "--repeat", "2"],
        id="vs_daf_butler",
        marks=pytest.mark.skipif(not _installed("lsst.daf.butler"), reason="lsst-daf-butler not installed"),
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("script", "args"), CASES)
def test_benchmark_runs(script: str, args: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        cwd=BENCHMARKS.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"{script} crashed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script} printed nothing"
