"""Damaged repository configs: a RepositoryFormatError naming the file, never a traceback."""

from __future__ import annotations

import pytest

from compstore import Butler
from compstore.errors import RepositoryFormatError


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, b"[1, 2]", b'"2.0"', b"\xff\xfe", b"",
     b'{"format": "compstore", "version": 2.0}', b'{"format": "compstore", "version": "' + b"9" * 5000 + b'.0"}',
     b'{"format": "compstore", "version": "2.0", "pad": "' + b"x" * 200_000 + b'"}',
     b'{"format": ["compstore"], "version": "2.0"}', b'{"version": "2.0.1", "format": "compstore"}'],
)
def test_a_damaged_config_is_a_repository_format_error(repo, content):
    (repo / "compstore.json").write_bytes(content)
    with pytest.raises(RepositoryFormatError, match="compstore.json"):
        Butler(repo)


def test_an_unreadable_config_is_a_repository_format_error(repo):
    config = repo / "compstore.json"
    config.unlink()
    config.mkdir()
    with pytest.raises(Exception) as info:
        Butler(repo)
    assert info.type.__module__ == "compstore.errors"
