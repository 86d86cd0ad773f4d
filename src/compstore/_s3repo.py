"""A repository on S3-compatible object storage: ``s3://bucket/prefix``.

Layout (``docs/object-storage.md``)::

    s3://<bucket>/<prefix>/
      compstore.json        config, written last (a conditional PUT: never overwritten)
      blobs/                the blob store (`compstore.cas.S3BlobStore`)

The registry cannot live in a bucket: it is a PostgreSQL database (shared by
every host) or, for one user, a SQLite file on a local disk. The config names
it; a registry records the repository URL it was created for
(``Registry.create(creator=...)``), and a repository whose registry was made
for another one is refused, so a config edited in the bucket cannot point a
reader at another file or database.

Credentials and the endpoint come from the standard environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``...), never from the config: nothing secret is written to the
bucket, and one repository URL works from any host with its own settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any, Final

from .cas import XXH3_128, DigestAlgorithm, S3BlobStore
from .cas._gclock_pg import PgGcLock
from .cas._pack import PackIndex
from .cas._pack_pg import PgPackIndex
from .errors import (
    BlobStoreError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)
from .registry import Registry

__all__ = ["S3_SCHEME", "S3Location", "is_s3_url", "parse_s3_url", "registry_target"]

S3_SCHEME: Final = "s3://"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# A prefix is folder names of safe characters: no "..", no empty part, no control
# characters (a user string becomes an object key, never a path).
_PART = re.compile(r"[A-Za-z0-9_.=+-]{1,200}")
_SQLITE_SUFFIXES: Final = (".sqlite3", ".sqlite", ".db")
_indexes: weakref.WeakValueDictionary[tuple[str, int], PackIndex] = weakref.WeakValueDictionary()
_indexes_lock = threading.Lock()
_pg_locks: weakref.WeakValueDictionary[tuple[str, str], PgGcLock] = weakref.WeakValueDictionary()


def is_s3_url(root: object) -> bool:
    """Whether ``root`` names a repository on object storage (``s3://...``)."""
    return isinstance(root, str) and root.startswith(S3_SCHEME)


class S3Location:
    """A checked ``s3://bucket/prefix`` URL.

    Raises
    ------
    RepositoryError
        If the bucket is not a valid S3 bucket name or the prefix holds an
        empty part, ``.``/``..`` or characters outside ``A-Za-z0-9_.=+-``.
    """

    def __init__(self, url: str) -> None:
        rest = url[len(S3_SCHEME):]
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise RepositoryError(
                f"{url!r}: {bucket!r} is not an S3 bucket name (3-63 characters of a-z, 0-9, "
                "'.' and '-'); a repository on object storage is s3://BUCKET/PREFIX"
            )
        parts = prefix.split("/") if prefix else []
        bad = [p for p in parts if not _PART.fullmatch(p) or p in (".", "..")]
        if bad:
            raise RepositoryError(
                f"{url!r}: the prefix part {bad[0][:50]!r} is not allowed (use A-Za-z0-9_.=+- "
                "and '/' between parts)"
            )
        self.bucket = bucket
        self.prefix = "/".join(parts)

    @property
    def url(self) -> str:
        """The canonical URL: ``s3://bucket/prefix`` (no trailing slash)."""
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}".rstrip("/")

    def store(self, sub: str = "", **options: Any) -> S3BlobStore:
        """An `S3BlobStore` for ``<prefix>/<sub>`` (settings from the environment)."""
        prefix = "/".join(p for p in (self.prefix, sub) if p)
        return S3BlobStore(self.bucket, prefix, **options)


def parse_s3_url(url: str) -> S3Location:
    """Check ``url`` and split it (see `S3Location`)."""
    return S3Location(url)


def registry_target(registry: str | os.PathLike[str] | None, url: str) -> str:
    """The registry to record in the config of the repository ``url``: a URL or an absolute path.

    Raises
    ------
    RepositoryError
        If none is given (a bucket cannot hold one), or it is neither a
        ``postgresql://`` URL nor the path of a SQLite file (``.sqlite3``).
    """
    from ._repository import check_registry_url

    if registry is None:
        raise RepositoryError(
            f"a repository on object storage ({url}) keeps its registry outside the bucket: "
            "give registry='postgresql://user@host:port/db' (shared by many hosts) or "
            "registry='/path/to/registry.sqlite3' (one user, a local disk); "
            "`compstore create --registry ...`"
        )
    text = os.fspath(registry)
    if isinstance(text, str) and text.startswith(("postgresql://", "postgresql+psycopg://")):
        return check_registry_url(text)
    if not isinstance(text, str) or "://" in text or not text.endswith(_SQLITE_SUFFIXES):
        raise RepositoryError(
            f"registry {str(text)[:100]!r} is neither a postgresql://user@host:port/db URL nor "
            f"a SQLite file path ending {', '.join(_SQLITE_SUFFIXES)}"
        )
    return str(Path(text).expanduser().resolve())


def check_registry_owner(target: str, url: str) -> None:
    """Refuse a registry that was not created for the repository ``url``.

    Raises
    ------
    RepositoryFormatError
        If ``target`` holds no registry, or one created for another repository.
    """
    found = Registry.created_by(target)
    if found is None:
        raise RepositoryFormatError(
            f"the registry of {url}, {target}, holds no compstore registry: restore it, or "
            "run on the host whose disk holds it"
        )
    if found[0] != url:
        raise RepositoryFormatError(
            f"the registry {target} named by {url}'s config was created for "
            f"{found[0] or 'another repository'}, not {url}: the config is wrong, or was edited"
        )


def read_config(loc: S3Location, raw: bytes | None) -> bytes:
    """The config's bytes, or the error for a URL holding no repository."""
    if raw is None:
        raise RepositoryNotFoundError(
            f"no compstore repository at {loc.url} (no compstore.json); create one with "
            f"Butler.create({loc.url!r}, registry=...) or `compstore --repo {loc.url} create "
            "--registry ...`"
        )
    return raw


def config_bytes(config: dict[str, Any]) -> bytes:
    return (json.dumps(config, indent=2) + "\n").encode()


def open_top(loc: S3Location) -> S3BlobStore:
    """A store of the repository's prefix itself, to read and write its config (no cache)."""
    try:
        return loc.store()
    except BlobStoreError as exc:
        raise RepositoryError(str(exc)) from None


def sqlite_pack_index(path: str) -> PackIndex:
    """The pack index of a repository whose registry is the SQLite file ``path``: in that file.

    Table ``member`` of the registry database (`compstore.cas._pack.PackIndex`),
    one connection per file per process (a forked process opens its own).

    Raises
    ------
    RepositoryError
        If the file cannot be opened as an SQLite database.
    """
    key = (path, os.getpid())
    with _indexes_lock:
        index = _indexes.get(key)
        if index is None:
            try:
                index = _indexes[key] = PackIndex(path, fsync=True)
            except sqlite3.Error as exc:
                raise RepositoryError(
                    f"cannot open the pack index in the registry {path}: {exc}; restore the "
                    "registry file from a backup"
                ) from None
        return index


def gc_lock_folder(target: str) -> str | None:
    """The folder of the gc lock of a repository whose registry is the SQLite file ``target``.

    ``<registry>.gc`` beside the file (created): every writer of the
    repository uses that file, so they share this host and an ``flock`` there
    excludes them all. A folder that cannot be created (a read-only disk):
    None (no gc). A PostgreSQL registry: None (see `gc_lock`).
    """
    if target.startswith("postgresql"):
        return None
    folder = target + ".gc"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return folder


def gc_lock(target: str, url: str) -> str | PgGcLock | None:
    """The gc lock of the repository ``url`` whose registry is ``target``; None: no gc.

    A SQLite registry: the folder `gc_lock_folder`. A PostgreSQL registry,
    shared by hosts no ``flock`` reaches: advisory locks in that database
    (`compstore.cas._gclock_pg.PgGcLock`), one object per repository per
    process (its writers' connections are per thread).
    """
    if not target.startswith("postgresql"):
        return gc_lock_folder(target)
    from .registry._engine import make_url
    from .registry._postgres import conninfo

    key = (target, url)
    with _indexes_lock:
        lock = _pg_locks.get(key)
        if lock is None:
            lock = _pg_locks[key] = PgGcLock(conninfo(make_url(target)), url)
        return lock


def open_store(loc: S3Location, *, local_cache: str | os.PathLike[str] | None,
               local_cache_bytes: int | None,
               pack_index: PackIndex | PgPackIndex | None = None,
               gc_lock: str | PgGcLock | None = None, digest_algorithm: DigestAlgorithm = XXH3_128,
               compare_on_hit: bool = False) -> S3BlobStore:  # fmt: skip
    """The repository's blob store (``<prefix>/blobs``), with the local cache if given.

    Each repository caches in a folder of its own inside ``local_cache``, named
    by a hash of its URL (never by the URL itself). With ``pack_index``, small
    components are written into packs (format 2.3 and 3); with ``gc_lock`` (a local
    folder or advisory locks in a PostgreSQL registry: `gc_lock`), the store
    can be garbage-collected. Format 3: components named by the repository's
    ``digest_algorithm``, compared on a hit (``compare_on_hit``).
    """
    options: dict[str, Any] = {"pack_index": pack_index, "gc_lock": gc_lock,
                               "digest_algorithm": digest_algorithm,
                               "compare_on_hit": compare_on_hit}  # fmt: skip
    if local_cache is not None:
        name = hashlib.sha256(loc.url.encode()).hexdigest()[:24]
        options["cache"] = Path(local_cache).expanduser() / name
        if local_cache_bytes is not None:
            options["cache_bytes"] = local_cache_bytes
    try:
        return loc.store("blobs", **options)
    except BlobStoreError as exc:
        raise RepositoryError(str(exc)) from None
