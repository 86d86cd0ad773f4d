"""The benchmark scripts still run, at their tiny size (no timing is checked: never time in tests).

The scripts and their arguments are `benchmarks/smoke.py`'s own list, so the
pytest form and the CI step run the same things.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _smoke() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_smoke", BENCHMARKS / "smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SMOKE = _smoke()


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMOKE.SCRIPTS), ids=lambda s: s.removesuffix(".py"))
def test_benchmark_runs(script: str) -> None:
    args, needs = SMOKE.SCRIPTS[script]
    if not SMOKE.available(needs):
        pytest.skip(f"{needs} is not installed")
    status, _seconds, tail = SMOKE.run_one(script, args, timeout=300)
    assert status == "ok", f"{script} {status}:\n{tail}"
    assert tail.strip(), f"{script} printed nothing"
