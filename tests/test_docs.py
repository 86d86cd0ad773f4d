"""Every ```python block of the prose docs runs, in order, in a scratch folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
# cli-and-python.md has its own test (it needs FITS files to ingest).
PAGES = ["concepts.md", "pipelines.md", "../README.md"]


@pytest.mark.parametrize("page", PAGES)
def test_doc_blocks_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert blocks, f"{page} has no python blocks"
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(code, f"{page} block {i}", "exec"), namespace)
