"""The README: its set-up lines, examples that run twice, and figures the demo prints."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from compstore.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def _run_blocks() -> None:
    namespace: dict = {}
    for i, code in enumerate(BLOCKS):
        exec(compile(code, f"README block {i}", "exec"), namespace)


def test_setup_lines_and_python_version():
    # The two set-up commands stay exactly as they are: users copy them.
    assert "\npip install -e . && compstore demo\n" in README
    assert '\npip install -e ".[test]" && python -m pytest\n' in README
    needs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert needs == ">=3.11" and "Python 3.11 or newer" in README
    assert "python3 -m venv .venv" in README


def test_examples_run_twice(tmp_path, monkeypatch):
    """A newcomer runs the examples again: no traceback the second time."""
    monkeypatch.chdir(tmp_path)
    _run_blocks()
    _run_blocks()


def _demo_figures(lines: list[str]) -> dict[str, str]:
    """The labelled figures of `compstore demo`'s output (extra lines are ignored)."""
    figures: dict[str, str] = {}
    for line in lines:
        row = re.match(r"(sfm|jointcal|coadd|detection)\s+(\d+)\s+([\d.]+) MiB\s+([\d.]+) MiB", line)
        if row:
            figures[f"{row[1]} logical"] = row[3]
            figures[f"{row[1]} added"] = row[4]
        total = re.match(r"(logical|stored) bytes\s+([\d.]+) MiB", line)
        if total:
            figures[f"total {total[1]}"] = total[2]
    return figures


@pytest.mark.slow
def test_readme_figures_are_the_demos_and_examples_run_after_it(tmp_path, monkeypatch):
    """Every MiB figure of the README is one `compstore demo` (default survey) prints."""
    monkeypatch.chdir(tmp_path)
    lines: list[str] = []
    run_demo("store", out=lines.append)  # what `pip install -e . && compstore demo` runs
    figures = _demo_figures("\n".join(lines).splitlines())  # the stats come as one block
    assert len(figures) == 10, lines
    expected = [
        (f"({figures['jointcal added']} MiB added on\ndisk beside {figures['sfm logical']} MiB "
         "of single-frame data)"),
        f"({figures['detection added']} MiB beside {figures['coadd logical']} MiB of coadds)",
        f"holds {figures['total logical']} MiB of datasets in {figures['total stored']} MiB",
    ]
    for phrase in expected:
        assert phrase in README, f"the README should say {phrase!r}, as `compstore demo` prints"
    printed = set(figures.values())
    for figure in re.findall(r"([\d.]+) MiB", README):
        assert figure in printed, f"README figure {figure} MiB is not one the demo prints"
    # The examples also run on the demo's repository (the README's order), twice.
    _run_blocks()
    _run_blocks()
