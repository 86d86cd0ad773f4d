"""Format 3: what a repository's config version decides, and the upgrade from format 2.

Format 3 (``docs/spec/format.md``, "Version table") changes two things:

- documents and manifests are encoded by RFC 8785 (`compstore.cas.jcs`)
  instead of Python-``repr`` canonical JSON, so that any language recomputes
  their digests;
- the config records the digest algorithm (``"digest": "xxh3-128"`` or
  ``"blake3"``), and a writer compares bytes on a digest hit before reusing
  a component (`compstore.cas._hits`).

Everything else (layout, packs, array files, the registry) is format 2's, so
a format 2 repository becomes format 3 by one atomic replacement of its
config (`upgrade`): documents already stored stay valid under their digests
(a digest names bytes, whatever encoding produced them), and readers of
format 3 read both encodings. A folder's config is replaced by a rename; one
on object storage (``s3://``, format 2.2 or 2.3 before) by one conditional PUT.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._config import CONFIG_NAME, KNOWN_MINORS, folder_lock, parse_config, write_config
from .cas import XXH3_128, DigestAlgorithm, canonical_json, digest_algorithm, jcs
from .errors import (
    BlobStoreError,
    EncodingError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)

__all__ = [
    "DEFAULT_DIGEST",
    "FORMAT3",
    "check_digest_name",
    "config_digest",
    "document_encoder",
    "upgrade",
]

#: The version `Repository.create` writes, for a folder (SQLite or PostgreSQL
#: registry) and on object storage alike: no format 3 reader predates either.
FORMAT3 = (3, 0)
#: The digest algorithm of a repository created without ``digest=``.
DEFAULT_DIGEST = XXH3_128.name


def check_digest_name(name: object) -> str:
    """``name`` if it names a digest algorithm a repository may record.

    Raises
    ------
    RepositoryError
        If it does not, listing the ones that exist.
    """
    try:
        return digest_algorithm(name).name
    except EncodingError as exc:
        raise RepositoryError(str(exc)) from None


def config_digest(config: Mapping[str, Any], major: int, where: str) -> DigestAlgorithm:
    """The digest algorithm of a repository with this config (xxh3-128 before format 3).

    Raises
    ------
    RepositoryFormatError
        If a format 3 config names no algorithm, or one this compstore lacks.
    """
    if major < 3:
        return XXH3_128
    name = config.get("digest")
    try:
        return digest_algorithm(name)
    except EncodingError as exc:
        raise RepositoryFormatError(
            f"{where}: {exc}; a format 3 config names its digest algorithm "
            '("digest": "xxh3-128" or "blake3")'
        ) from None


def document_encoder(major: int) -> Callable[[Any], bytes]:
    """How a repository of format ``major`` encodes new documents and manifests."""
    return jcs if major >= 3 else canonical_json


def _upgrade_lock(path: Path) -> contextlib.AbstractContextManager[None]:
    """The create lock of the folder, held while the config is replaced."""
    return folder_lock(path, RepositoryError(
        f"another process is creating or upgrading the repository at {path}; "
        "wait for it, then run the upgrade again"
    ))


def upgrade(root: str | os.PathLike[str]) -> tuple[str, str]:
    """Move the format 2 repository ``root`` (a folder, or ``s3://bucket/prefix``) to format 3.

    In place. The only change is the config: version ``3.0`` and ``"digest":
    "xxh3-128"`` (a repository keeps the algorithm its components are named by;
    moving to blake3 is a transfer into a new repository created with
    ``digest="blake3"``). It is written aside, flushed, and put in place by one
    rename (on object storage: one PUT, conditional on the config's ETag, so
    that a config changed since it was read is not overwritten), so a process
    killed at any point leaves the repository at format 2 or format 3, never
    neither. Stored documents keep their (format 2) bytes and digests; a value
    put again after the upgrade is encoded by RFC 8785, so it may be stored a
    second time under a new digest rather than shared with its format 2 copy.
    Writers that opened the repository as format 2 go on writing valid format 2
    documents.

    Returns
    -------
    (str, str)
        The version before and after (equal if it was format 3 already).

    Raises
    ------
    RepositoryNotFoundError
        If ``root`` holds no repository.
    RepositoryError
        If it is of format 1, or of a format 2 minor version this compstore does
        not write (it opens those read-only), or a folder's minor version of
        object storage (2.2, 2.3) or the reverse, or another process is creating
        or upgrading it (a folder), or changed its config meanwhile (object
        storage), or the new config cannot be written.
    RepositoryFormatError
        If its config is malformed or of an unknown major version.
    """
    from ._s3repo import is_s3_url

    if is_s3_url(root):
        return _upgrade_s3(str(root))
    path = Path(root)
    config_path = path / CONFIG_NAME
    if not config_path.is_file():
        raise RepositoryNotFoundError(f"no compstore repository at {path} (no {CONFIG_NAME})")
    try:
        return _upgrade_locked(path, config_path)
    except OSError as exc:  # an unwritable folder or config, a full disk
        raise RepositoryError(
            f"cannot upgrade {path}: {exc.strerror or exc}; it still opens (as format 2, or "
            "as 3 if the failure came after the new config was in place): fix the permissions "
            "or free space, then run the upgrade again"
        ) from None


def _upgrade_locked(path: Path, config_path: Path) -> tuple[str, str]:

    with _upgrade_lock(path):
        config, major, minor = parse_config(config_path.read_bytes(), str(config_path))
        before = f"{major}.{minor}"
        if major == FORMAT3[0]:
            return before, before
        if major != 2 or minor > KNOWN_MINORS[2] or minor >= 2:
            raise _refuse(str(path), before, "2.0 and 2.1 folder repositories")
        new = {**config, "version": f"{FORMAT3[0]}.{FORMAT3[1]}", "digest": DEFAULT_DIGEST}
        write_config(path, new)
    return before, new["version"]


def _refuse(where: str, before: str, which: str) -> RepositoryError:
    return RepositoryError(
        f"{where} is format {before}: only format {which} upgrade in place; move the "
        "datasets of another into a new repository with `compstore transfer`"
    )


def _upgrade_s3(url: str) -> tuple[str, str]:
    """`upgrade` of ``s3://bucket/prefix``: format 2.2 or 2.3 to 3.0 by one conditional PUT."""
    from ._s3repo import S3Location, config_bytes, open_top, read_config

    loc = S3Location(url)
    top = open_top(loc)
    where = f"{loc.url}/{CONFIG_NAME}"
    before = "2"
    try:
        found = top.read_tagged_object(CONFIG_NAME)
        raw = read_config(loc, None if found is None else found[0])
        config, major, minor = parse_config(raw, where)
        before = f"{major}.{minor}"
        if major == FORMAT3[0]:
            return before, before
        if (major, minor) not in ((2, 2), (2, 3)):
            raise _refuse(loc.url, before, "2.2 and 2.3 repositories on object storage")
        assert found is not None
        if found[1] is None:
            raise RepositoryError(
                f"the server holding {loc.url} sent no ETag for its config, so it cannot be "
                "replaced only if unchanged: upgrade on a server that sends ETags (AWS S3, "
                "MinIO, Ceph do)"
            )
        new = {**config, "version": f"{FORMAT3[0]}.{FORMAT3[1]}", "digest": DEFAULT_DIGEST}
        if not top.replace_object(CONFIG_NAME, config_bytes(new), found[1]):
            raise RepositoryError(
                f"the config of {loc.url} changed while it was being upgraded (another "
                "upgrade?); nothing was written: run the upgrade again"
            )
    except BlobStoreError as exc:
        raise RepositoryError(
            f"cannot upgrade {loc.url}: {exc}. The config was replaced whole or not at all: "
            f"the repository opens as format {before} (or 3.0): run the upgrade again"
        ) from None
    return before, new["version"]
