"""A folder repository's config (``compstore.json``): its names, versions, parsing, writing, lock.

Below `compstore._repository` (which opens and creates repositories) and
`compstore._format3` (which upgrades them): both read, write and lock the
config through here.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ._atomic import write_atomic
from .cas import parse_json
from .errors import CompstoreError, RepositoryExistsError, RepositoryFormatError

__all__ = ["CONFIG_NAME", "FORMAT_NAME", "KNOWN_MINORS", "folder_lock", "parse_config", "write_config"]

CONFIG_NAME = "compstore.json"
FORMAT_NAME = "compstore"
#: The newest minor version this compstore knows of each major version it opens.
#: Format 2 adds packs of small components (docs/spec/format.md, "Packs"); a format 1
#: repository is written without them, so that older readers still read it.
KNOWN_MINORS = {1: 0, 2: 3, 3: 0}
_MAX_CONFIG_BYTES = 1 << 16
_VERSION = re.compile(r"[0-9]{1,6}\.[0-9]{1,6}")


def write_config(path: Path, config: Mapping[str, Any]) -> None:
    """Write the config of the folder repository ``path`` atomically, durably.

    Through the fixed temporary name ``compstore.json.partial`` (which a
    re-run create recognises), fsynced, renamed into place, the folder fsynced:
    killed at any point, the folder holds the old config or the new one.
    """
    config_path = path / CONFIG_NAME
    write_atomic(
        config_path,
        (json.dumps(config, indent=2) + "\n").encode(),
        fsync=True,
        sync_dir=True,
        partial=str(config_path) + ".partial",
    )


@contextlib.contextmanager
def folder_lock(path: Path, busy: CompstoreError | None = None) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``path`` (released if the process dies).

    The lock of `Repository.create` and of an upgrade (`compstore._format3`):
    if another process holds it, ``busy`` is raised (by default a
    `RepositoryExistsError` saying a create is under way).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy or RepositoryExistsError(
                f"another process is creating a repository in {path}; wait for it"
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def parse_config(raw: bytes, where: str) -> tuple[dict[str, Any], int, int]:
    """The config in ``raw`` (read from ``where``), and its major and minor version.

    Raises
    ------
    RepositoryFormatError
        If it is malformed, or of a major version this compstore does not read.
    """
    try:
        if len(raw) > _MAX_CONFIG_BYTES:
            raise ValueError(f"it is over {_MAX_CONFIG_BYTES:,} bytes")
        config = parse_json(raw)  # bounded nesting (ValueError)
        if not isinstance(config, dict):
            raise TypeError(f"it holds a JSON {type(config).__name__}, not an object")
        version = config["version"]
        if not isinstance(version, str) or not _VERSION.fullmatch(version):
            raise ValueError(f"version {str(version)[:50]!r} is not MAJOR.MINOR")
        major, minor = (int(p) for p in version.split("."))
        if config["format"] != FORMAT_NAME:
            raise ValueError(f"format is {str(config['format'])[:50]!r}")
    except (ValueError, KeyError, TypeError) as err:
        raise RepositoryFormatError(
            f"{where} is not a valid compstore config: {err}; restore it "
            "(docs/spec/format.md shows one)"
        ) from None
    if major not in KNOWN_MINORS:
        raise RepositoryFormatError(
            f"{where} has format version {major}.{minor}; this compstore reads versions "
            f"{', '.join(f'{m}.x' for m in KNOWN_MINORS)} only: use a compstore "
            "release that supports it"
        )
    return config, major, minor
