"""Every ```python block of the prose docs runs, in order, in a scratch folder."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# cli-and-python.md has its own test (it needs FITS files to ingest).
PAGES = ["concepts.md", "pipelines.md", "object-storage.md", "../README.md"]


@pytest.mark.parametrize("page", PAGES)
def test_doc_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, f"{page} has no python blocks"
    namespace: dict = {}
    saved = dict(os.environ)  # (object-storage.md sets the AWS_* variables of its server)
    try:
        for i, code in enumerate(blocks):
            exec(compile(code, f"{page} block {i}", "exec"), namespace)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_no_merge_conflict_markers_in_docs_or_code():
    """A merge left markers in concepts.md once: the prose ran, so nothing else caught it."""
    root = DOCS.parent
    texts = [*root.glob("*.md"), *DOCS.glob("*.md"), *(root / "benchmarks").glob("*.md"),
             *(root / "src").rglob("*.py"), *(root / "tests").rglob("*.py"), root / "pyproject.toml"]
    marker = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)
    bad = [str(p.relative_to(root)) for p in texts if marker.search(p.read_text(errors="replace"))]
    assert not bad, f"merge conflict markers in: {bad}"
