"""Regenerate the CLI/Python pairs in docs/cli-and-python.md from the CLI itself.

Run ``python tools/gen_cli_doc.py`` after changing a command; the test
``tests/cli/test_cli_doc.py`` fails when the doc and the CLI disagree.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from compstore.cli import python_for

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli-and-python.md"
PAIR = re.compile(r"(```sh\n\$ compstore (?P<argv>[^\n]+)\n```\n\n```python\n)(?P<code>.*?)(```)", re.S)


def render(text: str) -> str:
    """Return ``text`` with every Python block under a CLI block regenerated."""

    def replace(match: re.Match[str]) -> str:
        return match.group(1) + python_for(shlex.split(match["argv"])) + match.group(4)

    return PAIR.sub(replace, text)


def main() -> int:
    text = DOC.read_text()
    DOC.write_text(render(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
