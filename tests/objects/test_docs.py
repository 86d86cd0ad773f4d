"""Every ```python block of docs/objects.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "objects.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_doc_blocks_run():
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 10
    namespace: dict[str, object] = {"__name__": "docs_objects"}
    for i, code in enumerate(blocks):
        try:
            exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"block {i} of {DOC.name} failed:\n{code}") from exc
