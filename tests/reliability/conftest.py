"""Reliability tests: kill, race, flip and fuzz, and the counts they print.

Every test here is marked ``reliability`` (and ``slow``) and runs in CI at a small
size. ``--reliability-scale N`` (or ``COMPSTORE_RELIABILITY_SCALE=N``) multiplies the
number of trials: kills, writers' puts, flipped bytes, generated inputs.

A test records its figures with the ``reliability_counts`` fixture::

    def test_flips(reliability_counts):
        reliability_counts("flips", flipped=525, silent_wrong=0, tracebacks=0)

and the session's summary prints every recorded line under "reliability counts",
so CI's log carries the figures the closing note quotes.
"""

from __future__ import annotations

import os

import pytest

_COUNTS: list[tuple[str, dict[str, object]]] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.reliability)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def reliability_scale(pytestconfig: pytest.Config) -> int:
    """How many times the default number of trials to run (>= 1)."""
    value = pytestconfig.getoption("--reliability-scale")
    if value is None:
        value = int(os.environ.get("COMPSTORE_RELIABILITY_SCALE", "1"))
    return max(1, int(value))


@pytest.fixture
def reliability_counts(request: pytest.FixtureRequest):
    """Record one line of figures for the session summary."""

    def record(what: str, **counts: object) -> None:
        _COUNTS.append((f"{request.node.name}: {what}", counts))

    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not _COUNTS:
        return
    terminalreporter.section("reliability counts")
    for what, counts in _COUNTS:
        figures = ", ".join(f"{key}={value}" for key, value in counts.items())
        terminalreporter.write_line(f"{what}: {figures}")
