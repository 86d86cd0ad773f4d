"""A repository folder: its config file, its registry and its blob store.

Layout (``docs/spec/format.md`` is the specification)::

    <root>/
      compstore.json        config: format name and version
      registry.sqlite3      the registry (SQLite)
      blobs/                the blob store (zarr v3 arrays + JSON documents; from
                            format 2, small components in packs: docs/spec/format.md)
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _s3repo
from ._config import (
    _MAX_CONFIG_BYTES,
    CONFIG_NAME,
    FORMAT_NAME,
    KNOWN_MINORS,
    write_config,
)
from ._config import folder_lock as _locked
from ._config import parse_config as _parse_config
from ._format3 import FORMAT3, check_digest_name, config_digest, document_encoder
from ._s3repo import S3Location, is_s3_url
from .cas import BlobStore, LocalBlobStore
from .cas._pack_pg import PgPackIndex
from .errors import (
    BlobStoreError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryFormatError,
    RepositoryNotFoundError,
)
from .registry import Registry
from .registry._engine import make_url
from .registry._postgres import conninfo

__all__ = ["CONFIG_NAME", "FORMAT_NAME", "FORMAT_VERSION", "Repository"]

#: (major, minor): a reader refuses another major version and opens a newer
#: minor version read-only. Format 3 (`compstore._format3`): RFC 8785 documents
#: and a recorded digest algorithm.
FORMAT_VERSION = FORMAT3
#: The first version whose registry may be a PostgreSQL database (format 2
#: writers wrote it for those repositories): 2.1 adds the registry URL in the
#: config and the pack index in that database (docs/spec/format.md); an older reader opens it read-only and finds no
#: registry.sqlite3, rather than silently reading an empty one.
FORMAT_VERSION_SHARED = (2, 1)
#: The version `create` writes on object storage (``s3://``, docs/object-storage.md):
#: format 3 there too (no format 3 reader predates repositories on object storage).
#: Before it, 2.2 added the config in a bucket, a registry named by URL or by
#: absolute path, and a blob store of objects without packs; 2.3 packed small
#: components (``blobs/packs/``), indexed in the registry database
#: (`compstore.cas._s3packs`). `compstore._format3.upgrade` moves 2.2 and 2.3 to 3.0.
FORMAT_VERSION_S3 = FORMAT3
_FIRST_S3 = (2, 2)
_S3_PACKS = (2, 3)
_REGISTRY_NAME = "registry.sqlite3"
# One Registry per repository per process: Butlers of one repository share its
# caches (dataset types, collections), as they share the object cache.
# A SQLite registry is known by its file's identity too (device, inode), not by its
# path alone: a repository deleted and made again at the same path (rm -rf, create)
# has a new file, which a Registry still open on the deleted one must not stand for.
_registries: weakref.WeakValueDictionary[tuple[str, int, int], Registry] = (
    weakref.WeakValueDictionary()
)
_registries_lock = threading.Lock()


def _registry_key(target: Path | str) -> tuple[str, int, int]:
    """What `_registries` knows a registry by: a database URL, or a SQLite file and its identity."""
    if isinstance(target, str) and "://" in target:
        return (target, 0, 0)
    path = Path(target)
    try:
        st = os.stat(path)
    except OSError:
        return (str(path.resolve()), -1, -1)  # Registry(path) says what is wrong
    return (str(path.resolve()), st.st_dev, st.st_ino)


def _shared_registry(path: Path | str) -> Registry:
    key = _registry_key(path)
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None:
            registry = Registry(path)
            _registries[key] = registry
        return registry


def _adopt_registry(path: Path, registry: Registry) -> None:
    """Serve the registry just created at ``path`` to `open` (rather than open it again)."""
    with _registries_lock:
        _registries[_registry_key(path)] = registry


_BLOBS_NAME = "blobs"
# (registry URL, folder) pairs checked by _refuse_a_copy in this process.
_owned: set[tuple[str, str]] = set()
_pack_indexes: weakref.WeakValueDictionary[str, PgPackIndex] = weakref.WeakValueDictionary()


def _shared_pack_index(url: str) -> PgPackIndex:
    """One pack index (one connection) per PostgreSQL registry per process."""
    with _registries_lock:
        index = _pack_indexes.get(url)
        if index is None:
            index = _pack_indexes[url] = PgPackIndex(conninfo(make_url(url)))
        return index


@contextlib.contextmanager
def _reaching(url: str) -> Iterator[None]:
    """Turn a failure to connect to the registry database into a `RepositoryError`."""
    import psycopg  # only here: a repository on PostgreSQL needs the driver anyway
    import sqlalchemy as sa

    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        raise RepositoryError(_unreachable(url, exc.orig)) from None
    except psycopg.OperationalError as exc:  # the pack index's own connection
        raise RepositoryError(_unreachable(url, exc)) from None


def _unreachable(url: str, exc: object) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return (
        f"cannot reach the registry database {url}: {reason}. Check that the server runs "
        "and the database exists, and that the password (if one is needed) is in "
        "$PGPASSWORD or ~/.pgpass"
    )


# What a create killed before writing its config may leave (besides README.md
# and .gitignore, which a user may have put there first).
_HALF_MADE = frozenset(
    {_REGISTRY_NAME, *(f"{_REGISTRY_NAME}-{s}" for s in ("wal", "shm", "journal")),
     _BLOBS_NAME, CONFIG_NAME + ".partial"}
)
# Files a fresh blob store holds: group metadata of the fan-out folders (and their
# .partial files, if killed while writing one), the pack index.
_EMPTY_STORE_FILES = ("zarr.json", "packs.sqlite3")


# A URL where a folder is expected: `scheme://...` (a folder name never has "://"
# in practice, and a URL made into a folder is what issue 16 saw happen).
_URL_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_REGISTRY_SCHEMES = ("postgresql://", "postgresql+psycopg://")


def refuse_url_root(root: str | os.PathLike[str]) -> None:
    """Refuse a database URL given where a repository folder is expected.

    Raises
    ------
    RepositoryError
        If ``root`` looks like a URL (``postgresql://...``); the message says
        how to name a registry database.
    """
    text = os.fspath(root)
    if isinstance(text, str) and _URL_LIKE.match(text) and not is_s3_url(text):
        raise RepositoryError(
            f"{text!r} is a URL, not a repository folder: a repository is a folder (its "
            "blob store) or an s3://bucket/prefix, and a registry database; create one with "
            "Butler.create(FOLDER, registry='postgresql://user@host:port/db') or "
            "`compstore --repo FOLDER create --registry postgresql://user@host:port/db`, "
            "then open it by its folder"
        )


def check_registry_url(registry: str) -> str:
    """The registry URL to record in a repository config (checked, no credentials).

    Raises
    ------
    RepositoryError
        If it is not a ``postgresql://`` URL or holds a password (the config would
        hold it in clear: use ``$PGPASSWORD`` or ``~/.pgpass``).
    """
    if not isinstance(registry, str) or not registry.startswith(_REGISTRY_SCHEMES):
        raise RepositoryError(
            f"registry {str(registry)[:100]!r} is not a postgresql://user@host:port/db URL; "
            "leave registry out for the SQLite registry inside the repository folder"
        )
    try:
        url = make_url(registry)
    except Exception as exc:  # SQLAlchemy's ArgumentError, ValueError for a bad port
        raise RepositoryError(f"registry URL {registry!r} is malformed: {exc}") from None
    if url.password is not None:
        raise RepositoryError(
            "the registry URL holds a password, which the repository config would keep in "
            "clear: leave it out of the URL and put it in $PGPASSWORD or ~/.pgpass "
            "(libpq's own rules; see docs/registry.md)"
        )
    if not url.database:
        raise RepositoryError(f"registry URL {registry!r} names no database (…/DBNAME)")
    return registry


def _clear_half_made(path: Path) -> None:
    """Remove what a create killed half-way left in ``path``, after checking it holds no data.

    Raises
    ------
    RepositoryExistsError
        If the registry has dataset types or collections, or the blob store
        holds any component: a repository that lost its config, not a
        half-made one. Nothing is removed then.
    """
    for folder, _, files in os.walk(path / _BLOBS_NAME):
        data = [f for f in files if not f.startswith(_EMPTY_STORE_FILES)]
        if data:
            raise _lost_config(path, f"{os.path.join(folder, data[0])}")
    registry = path / _REGISTRY_NAME
    if registry.exists():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{registry}?mode=ro", uri=True)) as db:
                rows = db.execute(
                    "SELECT (SELECT count(*) FROM dataset_type) + (SELECT count(*) FROM collection)"
                ).fetchone()[0]
        except sqlite3.Error:
            rows = 0  # half-written: no table, or not a database yet
        if rows:
            raise _lost_config(path, f"the registry's {rows} dataset types and collections")
    for name in sorted(_HALF_MADE):
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()


def _create_registry_database(url: str, creator: str) -> None:
    """Create the registry in database ``url`` (or SQLite file) for the repository ``creator``.

    ``creator`` is the repository's resolved folder, or its ``s3://`` URL; the
    registry records it. A registry found there that this repository created,
    still empty, is what a create killed before writing the config left: it
    is kept and the create goes on (there is no config, or `Repository.create`
    would not get here).

    Raises
    ------
    RepositoryExistsError
        If the database holds another repository's registry, or one with data.
    """
    try:
        Registry.create(url, creator=creator).close()
    except RepositoryExistsError:
        found = Registry.created_by(url)
        if found is None or found[0] != creator or found[1]:
            who = "no recorded repository" if found is None or found[0] is None else found[0]
            raise RepositoryExistsError(
                f"a registry exists already at {url} (created for {who}"
                + (f", holding {found[1]} dataset types, collections and datasets" if found and found[1] else "")
                + "): give each repository a registry of its own"
            ) from None


def _refuse_a_copy(path: Path, url: str) -> None:
    """Refuse a copy of a repository folder whose registry is in PostgreSQL.

    The registry records the folder that created it. A copy of that folder
    names the same database, and writing through it (a put, a gc) would change
    the original's registry and pack index without its files: the original
    would lose data. When the recorded folder exists on this host and is
    another repository folder, this one is a copy (or that one is): refused.
    When it does not exist here (another host's mount, a folder moved away),
    nothing can be told: opened.

    Raises
    ------
    RepositoryError
        If ``path`` is not the folder the registry was created for, and that
        folder holds a repository on this host.
    """
    found = Registry.created_by(url)
    creator = found[0] if found else None
    if creator is None or creator == str(path.resolve()):
        return
    other = Path(creator)
    try:
        if other.samefile(path):  # the same folder by another name (a link, a mount)
            return
    except OSError:
        return  # not on this host: cannot tell
    if (other / CONFIG_NAME).is_file():
        raise RepositoryError(
            f"{path} and {creator} both name the registry database {url}, which was created "
            f"for {creator}: {path} is a copy of that repository folder (or it of this one). "
            "A copy shares the database, and writing through it would break the original. "
            f"Open {creator}; to copy a repository, use `compstore subset` or "
            "`Butler.transfer_from` into a new one"
        )


def _same_digest(found: Repository, digest: str | None) -> Repository:
    """``found`` (a repository ``create(exist_ok=True)`` met), unless it names components by another ``digest``.

    Raises
    ------
    RepositoryExistsError
        If ``digest`` is given and is not the repository's algorithm.
    """
    have = found.blobs.digest_algorithm.name
    if digest is not None and have != digest:
        raise RepositoryExistsError(
            f"{found.location} holds a repository whose digests are {have}, not {digest}: "
            "the algorithm is chosen at create and never changed"
        )
    return found


def _lost_config(path: Path, evidence: str) -> RepositoryExistsError:
    return RepositoryExistsError(
        f"{path} has no {CONFIG_NAME} but holds data ({evidence}): a repository whose "
        f"config was lost, not one a create left half-made. Restore {CONFIG_NAME} (see "
        "docs/spec/format.md) instead of creating a repository here"
    )


@dataclass
class Repository:
    """The open parts of one repository: a folder, or a prefix of a bucket (``s3://``)."""

    root: Path | str
    config: dict[str, Any]
    registry: Registry
    blobs: BlobStore
    read_only: bool
    #: Where it is, canonical: the resolved folder, or ``s3://bucket/prefix``.
    location: str = ""

    @property
    def document_encoding(self) -> Callable[[Any], bytes]:
        """How new documents and manifests are encoded: RFC 8785 from format 3."""
        return document_encoder(int(str(self.config["version"]).split(".")[0]))

    def __post_init__(self) -> None:
        if not self.location:
            root = self.root
            self.location = str(root.resolve()) if isinstance(root, Path) else root

    @functools.cached_property
    def identity(self) -> str:
        """This repository's key in the process-wide caches (the object cache, gc's records).

        Its location, and for a folder the identity of its config file (inode
        and modification time, as it was opened), so that a repository deleted
        and made again at one path (rm -rf, create) is another repository to
        the caches of a process that had the first open: a digest the first
        held is not taken as present in the second.
        """
        if not isinstance(self.root, Path):
            return self.location
        try:
            st = os.stat(self.root / CONFIG_NAME)
        except OSError:
            return self.location
        return f"{self.location}#{st.st_dev}:{st.st_ino}:{st.st_mtime_ns}"

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        *,
        exist_ok: bool = False,
        registry: str | None = None,
        fsync: bool = True,
        local_cache: str | os.PathLike[str] | None = None,
        local_cache_bytes: int | None = None,
        fanout: bool = True,
        digest: str | None = None,
    ) -> Repository:
        """Create a repository in ``root`` (a new or empty folder, or ``s3://bucket/prefix``).

        ``digest`` (``"xxh3-128"``, the default, or ``"blake3"``) is recorded in
        the config (format 3), and names every component.

        ``fsync=False`` skips flushing the 512 fan-out folders and their group
        files to disk one by one (most of a create's time); the config, written
        last, is always flushed. For scratch repositories and tests.

        ``fanout=False`` does not make the fan-out folders now: they are made as
        components land in them. For a repository filled in bulk right away (a
        subset), where making all 512 would cost more than the copy itself.

        ``registry`` names a PostgreSQL database (``postgresql://user@host:port/db``,
        empty, no password) to hold the registry and the pack index instead of
        the SQLite files inside ``root``; the config records the URL.

        The config is written last, so a create killed half-way leaves a folder
        that is no repository; a later create finds it (a registry and empty
        fan-out folders, nothing else) and starts over. Two creates of one folder
        at once are refused (the folder is locked while one runs).

        Raises
        ------
        RepositoryExistsError
            If ``root`` holds a repository already (and ``exist_ok`` is false),
            holds other files, or another process is creating a repository there,
            or the registry database holds a registry already.
        RepositoryError
            If ``root`` is a URL other than ``s3://``, or ``registry`` is not a
            password-less ``postgresql://`` URL (or, for ``s3://``, a SQLite
            file path).
        """
        if not isinstance(root, (str, os.PathLike)):
            raise RepositoryError(
                f"a create makes one repository, not {type(root).__name__} {root!r:.200}: "
                "create each with Butler.create(root), then read them in order with "
                "Butler([first, second, ...]) (writes go to the first)"
            )
        asked = digest
        digest = check_digest_name(digest if digest is not None else "xxh3-128")
        if is_s3_url(root):
            return cls._create_s3(
                str(root), registry, exist_ok=exist_ok, local_cache=local_cache,
                local_cache_bytes=local_cache_bytes, digest=digest, asked=asked is not None,
            )
        refuse_url_root(root)
        if registry is not None:
            registry = check_registry_url(registry)
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise RepositoryExistsError(f"{path} exists and is not a folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RepositoryExistsError(f"cannot create the folder {path}: {exc.strerror}") from None
        created: Registry | None = None
        with _locked(path):
            if (path / CONFIG_NAME).exists():
                if exist_ok:
                    return _same_digest(cls.open(path), digest if asked is not None else None)
                raise RepositoryExistsError(
                    f"{path} holds a compstore repository already; open it with "
                    f"Butler({str(path)!r}) or choose another folder"
                )
            names = {p.name for p in path.iterdir()} - {"README.md", ".gitignore"}
            stray = names - _HALF_MADE
            if stray:
                raise RepositoryExistsError(
                    f"{path} is not empty (it holds {', '.join(sorted(stray)[:5])}); "
                    "a repository is created in a new or empty folder"
                )
            if names:
                _clear_half_made(path)
            version = FORMAT_VERSION
            if registry is None:
                # Held until `open` below takes it (the table holds registries weakly).
                created = Registry.create(path / _REGISTRY_NAME)
                _adopt_registry(path / _REGISTRY_NAME, created)
                store = LocalBlobStore(path / _BLOBS_NAME, fsync=fsync)
            else:
                with _reaching(registry):
                    _create_registry_database(registry, str(path.resolve()))
                    index = _shared_pack_index(registry)  # creates its table
                store = LocalBlobStore(
                    path / _BLOBS_NAME, packs=True, pack_index=index, fsync=fsync
                )
            if fanout:
                store.make_fanout()  # puts into a young repository skip mkdirs
            config = {
                "format": FORMAT_NAME,
                "version": f"{version[0]}.{version[1]}",
                "registry": registry if registry is not None else _REGISTRY_NAME,
                "blobs": _BLOBS_NAME,
                "digest": digest,
            }
            # The config is written last: a folder without it is not a repository,
            # so a create that died half-way is never mistaken for one.
            # A fixed temporary name: _HALF_MADE knows it, so a create killed while
            # writing it can be run again.
            write_config(path, config)
        repository = cls.open(path)
        del created  # (kept alive until here on purpose)
        return repository

    @classmethod
    def open(
        cls,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        local_cache: str | os.PathLike[str] | None = None,
        local_cache_bytes: int | None = None,
    ) -> Repository:
        """Open the repository in ``root`` (a folder, or ``s3://bucket/prefix``).

        ``local_cache`` (a folder) and ``local_cache_bytes`` bound the local
        read-through cache of a repository on object storage; a folder
        repository has no use for one.

        Raises
        ------
        RepositoryNotFoundError
            If ``root`` holds no repository.
        RepositoryFormatError
            If its config is malformed or has an unknown major version.
        """
        if is_s3_url(root):
            return cls._open_s3(str(root), local_cache, local_cache_bytes)
        refuse_url_root(root)
        path = Path(root)
        config_path = path / CONFIG_NAME
        if not config_path.is_file():
            raise RepositoryNotFoundError(
                f"no compstore repository at {path} (no {CONFIG_NAME}); "
                f"create one with Butler.create({str(path)!r}) or `compstore create`"
            )
        try:
            with open(config_path, "rb") as f:
                # A config is a few lines: read no more than the limit, whatever is there.
                raw = f.read(_MAX_CONFIG_BYTES + 1)
        except OSError as err:
            raise RepositoryFormatError(f"cannot read {config_path}: {err.strerror}") from None
        config, major, minor = _parse_config(raw, str(config_path))
        read_only = minor > KNOWN_MINORS[major]
        # Names in the config are fixed by the format, not followed: a config can
        # never point compstore at another path. From format 2.1 the registry may
        # be a PostgreSQL URL instead (a database, never a path).
        url = config.get("registry")
        index: PgPackIndex | None = None
        if (major, minor) >= FORMAT_VERSION_SHARED and isinstance(url, str) and url != _REGISTRY_NAME:
            try:
                url = check_registry_url(url)
            except RepositoryError as err:
                raise RepositoryFormatError(f"{config_path}: {err}") from None
            with _reaching(url):
                folder = (url, str(path.resolve()))
                if folder not in _owned:  # once per process and folder: the registry's own?
                    _refuse_a_copy(path, url)
                    _owned.add(folder)
                registry = _shared_registry(url)
                index = _shared_pack_index(url)
        else:
            registry = _shared_registry(path / _REGISTRY_NAME)
        blobs = LocalBlobStore(
            path / _BLOBS_NAME, fsync=fsync, packs=major >= 2, pack_index=index, read_only=read_only,
            digest_algorithm=config_digest(config, major, str(config_path)),
            compare_on_hit=major >= 3,
        )
        return cls(root=path, config=config, registry=registry, blobs=blobs, read_only=read_only)

    # -- on object storage ------------------------------------------------------------
    @classmethod
    def _create_s3(
        cls,
        root: str,
        registry: str | os.PathLike[str] | None,
        *,
        exist_ok: bool,
        local_cache: str | os.PathLike[str] | None,
        local_cache_bytes: int | None,
        digest: str,
        asked: bool,
    ) -> Repository:
        """`create` for ``s3://bucket/prefix`` (see `compstore._s3repo`); ``asked``: ``digest=`` given."""
        loc = S3Location(root)
        target = _s3repo.registry_target(registry, loc.url)
        top = _s3repo.open_top(loc)
        try:
            if top.read_object(CONFIG_NAME) is not None:
                if exist_ok:
                    found = cls._open_s3(loc.url, local_cache, local_cache_bytes)
                    return _same_digest(found, digest if asked else None)
                raise RepositoryExistsError(
                    f"{loc.url} holds a compstore repository already; open it with "
                    f"Butler({loc.url!r}) or choose another prefix"
                )
            if not top.is_empty():
                # (a create killed before its config writes nothing in the bucket)
                raise RepositoryExistsError(
                    f"{loc.url} is not empty: a repository is created under a new or "
                    "empty prefix"
                )
        except BlobStoreError as exc:
            raise RepositoryError(str(exc)) from None
        pg = target.startswith("postgresql")
        with _reaching(target) if pg else contextlib.nullcontext():
            if not pg and not Path(target).parent.is_dir():
                raise RepositoryError(f"the folder of the registry file {target} does not exist")
            _create_registry_database(target, loc.url)
        version = FORMAT_VERSION_S3
        config = {
            "format": FORMAT_NAME,
            "version": f"{version[0]}.{version[1]}",
            "registry": target,
            "blobs": _BLOBS_NAME,
            "digest": digest,
        }
        # Written last, and only if absent: two creates racing, one wins.
        try:
            created = top.create_object(CONFIG_NAME, _s3repo.config_bytes(config))
        except BlobStoreError as exc:
            raise RepositoryError(str(exc)) from None
        if not created:
            raise RepositoryExistsError(f"another process created a repository at {loc.url} first")
        return cls._open_s3(loc.url, local_cache, local_cache_bytes)

    @classmethod
    def _open_s3(
        cls, root: str, local_cache: str | os.PathLike[str] | None, local_cache_bytes: int | None
    ) -> Repository:
        """`open` for ``s3://bucket/prefix``."""
        loc = S3Location(root)
        top = _s3repo.open_top(loc)
        try:
            raw = _s3repo.read_config(loc, top.read_object(CONFIG_NAME))
        except BlobStoreError as exc:
            raise RepositoryError(str(exc)) from None
        where = f"{loc.url}/{CONFIG_NAME}"
        config, major, minor = _parse_config(raw, where)
        target = config.get("registry")
        if (major, minor) < _FIRST_S3 or not isinstance(target, str):
            raise RepositoryFormatError(
                f"{where} is not the config of a repository on object storage (version "
                f"{major}.{minor}, registry {str(target)[:100]!r})"
            )
        try:
            checked = _s3repo.registry_target(target, loc.url)
        except RepositoryError as err:
            raise RepositoryFormatError(f"{where}: {err}") from None
        if checked != target:  # a relative path: the config was not written by create
            raise RepositoryFormatError(f"{where}: registry {target!r} is not an absolute path")
        pg = target.startswith("postgresql")
        with _reaching(target) if pg else contextlib.nullcontext():
            with _registries_lock:
                known = _registry_key(target) in _registries
            if not known:  # once per process: the registry was made for this repository
                if not pg and not os.path.isfile(target):
                    raise RepositoryFormatError(
                        f"the registry of {loc.url}, {target}, does not exist on this host: "
                        "open the repository where its SQLite registry is, or restore it"
                    )
                _s3repo.check_registry_owner(target, loc.url)
            registry = _shared_registry(target)
            index = None
            if (major, minor) >= _S3_PACKS:  # packs, indexed beside the registry
                index = _shared_pack_index(target) if pg else _s3repo.sqlite_pack_index(target)
        blobs = _s3repo.open_store(loc, local_cache=local_cache, local_cache_bytes=local_cache_bytes,
                                   pack_index=index, gc_lock=_s3repo.gc_lock(target, loc.url),
                                   digest_algorithm=config_digest(config, major, where),
                                   compare_on_hit=major >= 3)  # fmt: skip
        return cls(root=loc.url, config=config, registry=registry, blobs=blobs,
                   read_only=minor > KNOWN_MINORS[major])
