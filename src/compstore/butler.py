"""The Butler: the facade users hold to put and get datasets by type and data ID."""

from __future__ import annotations

import errno
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._defined import read_defined, register_aggregate, register_join
from ._repository import Repository
from .cache import ObjectCache, shared_cache
from .cas import S3BlobStore
from .cas._local import require_local
from .objects._astropy import from_astropy
from .errors import (
    BlobStoreError,
    CompstoreError,
    CollectionError,
    CollectionTypeError,
    ConflictingDatasetError,
    CorruptBlobError,
    DataIdError,
    DatasetInUseError,
    DatasetNotFoundError,
    DefinitionError,
    InvalidNameError,
    MissingDatasetTypeError,
    ReadOnlyRepositoryError,
    RepositoryError,
    UnknownComponentError,
)
from .registry import (
    CollectionType,
    DataId,
    DatasetRef,
    DatasetType,
    DatasetTypeDefinition,
    Registry,
)
from .datastore import ObjectIO, WriteReport, entry_kind, walk
from .storage_classes import CompositeStorageClass, get_storage_class
from .gc import GcReport, collect_garbage, put_guard, remember_generation
from .verify import VerifyReport, verify_repository

if TYPE_CHECKING:
    from .transfer import TransferReport
    from .zarr_view import DatasetZarrStore

# The library logs, never configures logging (the CLI's -v/-q do). Per-call logs
# (put, get) are DEBUG and guarded by isEnabledFor, so they cost a get nothing measurable.
_log = logging.getLogger(__name__)


class _RegistryResolver:
    """The `compstore.datastore.DatasetResolver` of a Butler: its registry, through it."""

    __slots__ = ("_butler",)

    def __init__(self, butler: Butler) -> None:
        self._butler = butler

    def manifest_of(self, dataset_id: str) -> str:
        return self._butler._resolve_dataset(dataset_id)

    def find_target(
        self, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        return self._butler._find_reference_target(dataset_type, data_id)

__all__ = ["Butler", "DatasetName", "PutResult", "RepositoryStats", "parse_dataset_name"]

DEFAULT_CACHE_BYTES = 512 * 1024**2

_NAME_RE = re.compile(
    r"(?P<type>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\.(?P<component>[A-Za-z_][A-Za-z0-9_]*))?"
    r"(?::(?P<stage>[A-Za-z0-9_./-]+))?"
)


@dataclass(frozen=True)
class DatasetName:
    """A parsed ``TYPE[.COMPONENT][:STAGE]`` name (``calexp.wcs:jointcal``)."""

    dataset_type: str
    component: str | None = None
    stage: str | None = None


def parse_dataset_name(name: str) -> DatasetName:
    """Split ``TYPE[.COMPONENT][:STAGE]`` into its parts.

    Raises
    ------
    InvalidNameError
        If ``name`` does not have that shape.
    """
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise InvalidNameError(
            f"invalid dataset name {name!r}: expected TYPE, TYPE.COMPONENT, TYPE:STAGE or "
            "TYPE.COMPONENT:STAGE, e.g. 'calexp', 'calexp.wcs', 'calexp.wcs:jointcal'"
        )
    return DatasetName(match["type"], match["component"], match["stage"])


@dataclass(frozen=True)
class PutResult:
    """What one put added: the ref and the bytes it cost on disk."""

    ref: DatasetRef
    report: WriteReport


@dataclass(frozen=True)
class RepositoryStats:
    """How much deduplication saves in a repository.

    ``logical_bytes`` counts, for every dataset, the stored bytes of every
    component it uses, as if each dataset had its own copy; ``stored_bytes``
    counts each component once, as it is on disk.
    """

    datasets: int
    dataset_types: int
    collections: int
    arrays: int
    documents: int
    logical_bytes: int
    stored_bytes: int

    @property
    def components(self) -> int:
        """Unique components (arrays and documents) in the blob store."""
        return self.arrays + self.documents

    @property
    def dedup_ratio(self) -> float:
        """``logical_bytes / stored_bytes`` (1.0 for an empty repository)."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (for JSON output)."""
        return {
            "datasets": self.datasets,
            "dataset_types": self.dataset_types,
            "collections": self.collections,
            "unique_components": self.components,
            "arrays": self.arrays,
            "documents": self.documents,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "dedup_ratio": round(self.dedup_ratio, 3),
        }

    def __str__(self) -> str:
        rows = [
            ("datasets", f"{self.datasets:,}"),
            ("dataset types", f"{self.dataset_types:,}"),
            ("collections", f"{self.collections:,}"),
            ("unique components", f"{self.components:,} ({self.arrays:,} arrays, {self.documents:,} documents)"),
            ("logical bytes", _human(self.logical_bytes)),
            ("stored bytes", _human(self.stored_bytes)),
            ("dedup ratio", f"{self.dedup_ratio:.2f}x"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit} ({n:,} B)"
        value /= 1024
    raise AssertionError("unreachable")


class Butler:
    """Read and write datasets of one repository, or of several in order.

    Parameters
    ----------
    root
        The repository folder (see `Butler.create`), a repository on object
        storage (``s3://bucket/prefix``, ``docs/object-storage.md``), or a list
        of them: ``Butler(["catalogs", "archive"])`` reads each in order and
        writes to the first (a `compstore._chain.ChainedButler`;
        ``docs/concepts.md``, "Several repositories").
    run
        The RUN collection that `put` writes into (created if missing).
    collections
        The collections `get` and `query_datasets` search, in order. Defaults to
        ``[run]`` when a run is given, else every RUN collection.
    cache_bytes
        Bytes of recently used objects the identity cache keeps alive. The cache
        is shared by every Butler of this repository in the process.
    fsync
        Make every put durable before it returns: components, manifests and the
        registry row are on the disk (switch off only for scratch repositories
        and benchmarks: then a power cut may lose the last puts, in part or
        whole).
    local_cache
        For a repository on object storage: a local folder keeping what is
        read (``"~/.cache/compstore"``), so a second get of a component costs
        no request. Bounded by ``local_cache_bytes`` (default 1 GiB), least
        recently used first; safe for several processes; what is read from it
        is checked against its digest. None (default): no local cache. A
        folder repository ignores both.
    local_cache_bytes
        The most bytes the local cache holds.

    Raises
    ------
    RepositoryNotFoundError
        If ``root`` holds no repository.
    RepositoryError
        If ``root`` is an empty list, or names a folder twice.
    """

    def __new__(cls, root: Any = "store", *args: Any, **kwargs: Any) -> Butler:
        # A list of several roots opens a chain; its logic lives in _chain.py,
        # so a Butler of one repository runs exactly the code it always did.
        if cls is Butler and isinstance(root, (list, tuple)) and len(root) != 1:
            from ._chain import ChainedButler

            return super().__new__(ChainedButler)
        return super().__new__(cls)

    def __init__(
        self,
        root: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = "store",
        *,
        run: str | None = None,
        collections: str | Sequence[str] | None = None,
        cache_bytes: int | None = None,
        fsync: bool = True,
        local_cache: str | os.PathLike[str] | None = None,
        local_cache_bytes: int | None = None,
    ) -> None:
        if not isinstance(root, (str, os.PathLike)):
            from ._chain import check_roots

            (root,) = check_roots(root)  # a list of one root
        self._repo = Repository.open(
            root, fsync=fsync, local_cache=local_cache, local_cache_bytes=local_cache_bytes
        )
        self._local_cache = (local_cache, local_cache_bytes)  # pipeline workers open the same
        self.root = self._repo.root
        self.registry: Registry = self._repo.registry
        self.blobs = self._repo.blobs
        self.cache: ObjectCache = shared_cache(
            self._repo.location, cache_bytes if cache_bytes is not None else DEFAULT_CACHE_BYTES
        )
        self._io = ObjectIO(
            self.blobs, self.cache, _RegistryResolver(self), self._repo.document_encoding
        )
        remember_generation(self.blobs, self.cache)  # before anything is cached (see gc.py)
        self.run = run
        if run is not None:
            self._check_writeable()
            self.registry.register_run(run)
        if isinstance(collections, str):
            collections = [collections]
        self.collections: tuple[str, ...] | None = (
            tuple(collections) if collections is not None else ((run,) if run else None)
        )
        self._names: dict[str, DatasetName] = {}
        _log.info("opened repository %s (run=%r, collections=%r)", self.root, run, self.collections)

    # -- creation -------------------------------------------------------------
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
        digest: str | None = None,
    ) -> Butler:
        """Create a new, empty repository in ``root`` and return a Butler on it.

        Parameters
        ----------
        root : `str` or `os.PathLike`
            The repository folder (its blob store, and its registry by default),
            or ``s3://bucket/prefix`` on object storage (a new or empty prefix;
            ``registry`` is then required: ``docs/object-storage.md``).
        exist_ok : `bool`, optional
            Open the repository if ``root`` holds one already.
        registry : `str`, optional
            A PostgreSQL database for the registry, shared by every host that
            opens the repository: ``postgresql://user@host:port/db``, without a
            password (libpq reads ``$PGPASSWORD`` or ``~/.pgpass``). Default: the
            SQLite file inside ``root``. See ``docs/registry.md``. For a
            repository on object storage, a PostgreSQL URL or the path of a new
            SQLite file on a local disk (``/data/registry.sqlite3``, one user).
        fsync : `bool`, optional
            Flush what is created (and, on the returned Butler, what is written)
            to disk file by file. ``False`` makes a create about twice as fast
            (the 512 fan-out folders are most of its time) at the price of
            durability across a power cut: for scratch repositories and tests.
        local_cache, local_cache_bytes
            As for `Butler` (object storage only).
        digest : `str`, optional
            The digest algorithm components are named by, recorded in the
            repository: ``"xxh3-128"`` (the default: fast; for writers who trust
            each other) or ``"blake3"`` (cryptographic: for a repository shared
            with writers who are not trusted). See ``docs/spec/format.md``,
            "Threat model".

        Raises
        ------
        RepositoryExistsError
            If ``root`` holds a repository (and ``exist_ok`` is false) or other
            files, or the database holds a registry already.
        RepositoryError
            If ``root`` is a list (repositories are created one at a time, then
            opened together with ``Butler([first, second])``), or a URL, or
            ``registry`` is not a password-less ``postgresql://`` URL, or its
            database cannot be reached, or ``digest`` names no algorithm.
        """
        if not isinstance(root, (str, os.PathLike)):
            raise RepositoryError(
                f"Butler.create makes one repository, not {type(root).__name__} "
                f"{root!r:.200}: create each with Butler.create(root), then read them in "
                "order with Butler([first, second, ...]) (writes go to the first)"
            )
        Repository.create(root, exist_ok=exist_ok, registry=registry, fsync=fsync,
                          local_cache=local_cache, local_cache_bytes=local_cache_bytes,
                          digest=digest)
        return cls(root, fsync=fsync, local_cache=local_cache, local_cache_bytes=local_cache_bytes)

    @staticmethod
    def upgrade(root: str | os.PathLike[str]) -> tuple[str, str]:
        """Move the format 2 repository in ``root`` to format 3 in place; see
        `compstore._format3.upgrade` (crash-safe: one atomic config replacement).

        Returns the format version before and after, e.g. ``("2.0", "3.0")``.
        """
        from ._format3 import upgrade

        return upgrade(root)

    def __repr__(self) -> str:
        return f"Butler({str(self.root)!r}, run={self.run!r}, collections={self.collections!r})"

    def _check_writeable(self) -> None:
        if self._repo.read_only:
            raise ReadOnlyRepositoryError(
                f"{self.root} has a newer format version ({self._repo.config['version']}) "
                "and is open read-only; upgrade compstore to write to it"
            )

    # -- dataset types --------------------------------------------------------
    def register_dataset_type(
        self, name: str, dimensions: Iterable[str], storage_class: str
    ) -> DatasetType:
        """Define dataset type ``name`` (idempotent when the definition is the same).

        Raises
        ------
        UnknownStorageClassError
            If ``storage_class`` is not known.
        DatasetTypeConflictError
            If ``name`` exists with other dimensions or storage class.
        """
        self._check_writeable()
        get_storage_class(storage_class)
        return self.registry.register_dataset_type(name, tuple(dimensions), storage_class)

    # -- put ------------------------------------------------------------------
    def put(
        self,
        obj: Any,
        dataset_type: str,
        data_id: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Store ``obj`` as a dataset of ``dataset_type`` in this Butler's run.

        Components already in the repository (same digest) cost nothing; the
        registry row is committed last, after every component and the
        manifest are durable.

        Raises
        ------
        CollectionError
            If the Butler has no run.
        MissingDatasetTypeError
            If ``dataset_type`` is not registered.
        DataIdError
            If the data ID lacks a dimension or has an extra one.
        StorageClassTypeError
            If ``obj`` is not of the dataset type's storage class.
        ConflictingDatasetError
            If the run has this dataset type and data ID already.
        """
        (ref,) = self.put_many([(obj, dataset_type, {**(data_id or {}), **kwargs})])
        return ref

    def put_with_report(
        self,
        obj: Any,
        dataset_type: str,
        data_id: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> PutResult:
        """As `put`, and also report the bytes written (see `WriteReport`)."""
        report = WriteReport()
        (ref,) = self.put_many([(obj, dataset_type, {**(data_id or {}), **kwargs})], report=report)
        return PutResult(ref, self._io.measure(report))

    def put_many(
        self,
        items: Iterable[tuple[Any, str, Mapping[str, Any]]],
        *,
        provenance: Mapping[str, Any] | None = None,
        report: WriteReport | None = None,
    ) -> list[DatasetRef]:
        """Put several datasets atomically: all their registry rows commit together, or none.

        Parameters
        ----------
        items
            ``(object, dataset_type, data_id)`` triples.
        provenance
            Recorded for every new dataset: ``task_label``, ``task_class``,
            ``config`` (a JSON-able dict) and ``inputs`` (dataset UUIDs).
        report
            Accumulates what was written.

        Raises
        ------
        As `put`; when one item fails, no registry row of any item is committed.
        """
        run = self._require_run()
        report = report if report is not None else WriteReport()
        prepared = []
        for obj, dataset_type, data_id in items:
            obj, dtype, full_id = self._put_target(obj, dataset_type, data_id)
            existing = self.registry.find_dataset(dtype.name, full_id, [run])
            if existing is not None:
                raise ConflictingDatasetError(
                    f"run {self.run!r} has a {dtype.name} with data ID {full_id} already "
                    f"(dataset {existing.id}); put into another run or remove it first"
                )
            prepared.append((obj, dtype, full_id))
        # The gc lock, shared, from the first existence check to the commit: no sweep
        # deletes a component this put reuses or wrote before its row names it.
        with put_guard(self.blobs, self.cache):
            return self._commit_many(run, prepared, provenance, report)

    def _commit_many(
        self,
        run: str,
        prepared: list[tuple[Any, DatasetType, DataId]],
        provenance: Mapping[str, Any] | None,
        report: WriteReport,
    ) -> list[DatasetRef]:
        manifests = [self._io.write(obj, dtype.storage_class, report) for obj, dtype, _ in prepared]
        # Durability order: components and manifests reach the disk, then the rows.
        self.blobs.sync()
        refs = []
        # Rows as durable as the components: a Butler without fsync skips the WAL's too.
        with self.registry.transaction(durable=self.blobs.durable):
            for (_, dtype, full_id), manifest in zip(prepared, manifests, strict=True):
                ref = self.registry.insert_dataset(dtype.name, full_id, run, manifest)
                if provenance is not None:
                    self.registry.record_provenance(
                        ref.id,
                        provenance["task_label"],
                        provenance["task_class"],
                        dict(provenance.get("config", {})),
                        [uuid.UUID(str(i)) for i in provenance.get("inputs", ())],
                    )
                refs.append(ref)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("put %d dataset(s) into run %r: %s", len(refs), run,
                       ", ".join(f"{r.dataset_type} {dict(r.data_id)}" for r in refs[:5])
                       + (", ..." if len(refs) > 5 else ""))
        return refs

    def _require_run(self) -> str:
        """The run puts go into; raises if there is none or the repository is read-only."""
        self._check_writeable()
        if self.run is None:
            raise CollectionError(
                "this Butler has no run to put into: open it with Butler(root, run='NAME')"
            )
        return self.run

    def _put_target(
        self, obj: Any, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[Any, DatasetType, DataId]:
        """The object, dataset type and full data ID of one put item, ``obj`` checked.

        An astropy object (WCS, CCDData, HDUList) is converted to the storage class's
        compstore type first (``objects/_astropy.py``), so the object returned is the
        one to store.
        """
        name = parse_dataset_name(dataset_type)
        if name.component or name.stage:
            raise InvalidNameError(
                f"put takes a plain dataset type name, not {dataset_type!r}; components are "
                "stored by putting the whole object, and the stage is the Butler's run"
            )
        dtype = self._put_type(name.dataset_type)
        full_id = self._data_id(dtype, data_id, {}, partial=False)
        storage_class = get_storage_class(dtype.storage_class)
        obj = from_astropy(obj, storage_class.python_type)
        storage_class.check_type(obj)
        return obj, dtype, full_id

    def _put_type(self, name: str) -> DatasetType:
        try:
            return self.registry.get_dataset_type(name)
        except MissingDatasetTypeError:
            definition = self.registry.get_definition(name)
            if definition is None:
                raise
            raise DefinitionError(
                f"{name!r} is a defined dataset type ({definition.describe()}) and stores "
                f"nothing of its own; put its members ({', '.join(definition.members)}) instead"
            ) from None

    def put_stream(
        self,
        items: Iterable[tuple[Any, str, Mapping[str, Any]]],
        *,
        skip_same: bool = False,
        report: WriteReport | None = None,
    ) -> list[DatasetRef]:
        """Put datasets one at a time, then register all of them in one transaction.

        Unlike `put_many`, ``items`` is consumed lazily: each object's components and
        manifest are written and the object is let go, so a long stream of large
        objects (an ingest of many files) is never in memory at once. No registry row
        is committed before every item is written; when one item fails (reading it,
        checking it, writing it), no row of any item is committed (the components
        already written are unreferenced blobs).

        Parameters
        ----------
        items
            ``(object, dataset_type, data_id)`` triples, read one at a time.
        skip_same
            A dataset this run has already, with the same dataset type, data ID and
            content (manifest), is no conflict: its existing ref is returned and no row
            is added, so re-running an ingest is idempotent.
        report
            Accumulates what was written.

        Returns
        -------
        list of DatasetRef
            One per item, in order.

        Raises
        ------
        DataIdError
            If two items have the same dataset type and data ID; as `put` otherwise
            (ConflictingDatasetError also when ``skip_same`` finds other content).
        """
        run = self._require_run()
        report = report if report is not None else WriteReport()
        # The gc lock, shared, for the whole stream (see put_many): a gc waits for it.
        with put_guard(self.blobs, self.cache):
            return self._put_stream(run, items, skip_same, report)

    def _put_stream(
        self,
        run: str,
        items: Iterable[tuple[Any, str, Mapping[str, Any]]],
        skip_same: bool,
        report: WriteReport,
    ) -> list[DatasetRef]:
        pending: list[tuple[DatasetType, DataId, str, DatasetRef | None]] = []
        seen: set[tuple[str, DataId]] = set()
        for obj, dataset_type, data_id in items:
            obj, dtype, full_id = self._put_target(obj, dataset_type, data_id)
            if (dtype.name, full_id) in seen:
                raise DataIdError(
                    f"two datasets of {dtype.name} with data ID {full_id} in one call; "
                    "give each its own data ID"
                )
            seen.add((dtype.name, full_id))
            existing = self.registry.find_dataset(dtype.name, full_id, [run])
            if existing is not None and not skip_same:
                raise ConflictingDatasetError(
                    f"run {self.run!r} has a {dtype.name} with data ID {full_id} already "
                    f"(dataset {existing.id}); put into another run or remove it first"
                )
            manifest = self._io.write(obj, dtype.storage_class, report)
            if existing is not None and existing.manifest != manifest:
                raise ConflictingDatasetError(
                    f"run {self.run!r} has a {dtype.name} with data ID {full_id} already "
                    f"(dataset {existing.id}) with other content (manifest "
                    f"{existing.manifest}, not {manifest}); put into another run or remove it first"
                )
            pending.append((dtype, full_id, manifest, existing))
        # Durability order: components and manifests reach the disk, then the rows.
        self.blobs.sync()
        refs = []
        with self.registry.transaction(durable=self.blobs.durable):
            for dtype, full_id, manifest, existing in pending:
                if existing is None:
                    existing = self.registry.insert_dataset(dtype.name, full_id, run, manifest)
                refs.append(existing)
        return refs

    def provenance(self, ref: DatasetRef) -> dict[str, Any] | None:
        """Return how ``ref`` was made (task label and class, config, input UUIDs), or None."""
        return self.registry.get_provenance(ref.id)

    # -- collections ----------------------------------------------------------
    def register_collection(self, name: str, collection_type: CollectionType | str) -> None:
        """Create a collection (``"RUN"``, ``"CHAINED"`` or ``"TAGGED"``) if it does not exist."""
        self._check_writeable()
        if isinstance(collection_type, str):
            collection_type = CollectionType(collection_type)  # "run", "Chained"; else refused
        self.registry.register_collection(name, collection_type)

    def collection_chain(self, name: str, children: Sequence[str]) -> None:
        """Make ``name`` a CHAINED collection searching ``children`` in order."""
        self.register_collection(name, CollectionType.CHAINED)
        self.registry.set_chain(name, list(children))

    def tag(self, tagged: str, refs: Iterable[DatasetRef]) -> None:
        """Add datasets to the TAGGED collection ``tagged`` (created if missing)."""
        self.register_collection(tagged, CollectionType.TAGGED)
        self.registry.associate(tagged, list(refs))

    def query_collections(self, pattern: str | None = None) -> list[tuple[str, str]]:
        """Return ``(name, type)`` of collections matching a glob ``pattern`` (all if None)."""
        # One query per collection type, not one lookup per collection.
        types = {
            name: ctype.name
            for ctype in CollectionType
            for name in self.registry.query_collections(pattern, ctype)
        }
        return sorted(types.items())

    # -- get ------------------------------------------------------------------
    def get(
        self,
        name_or_ref: str | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        parameters: Mapping[str, Any] | None = None,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset, or one component of it.

        ``name_or_ref`` is a `DatasetRef` or ``TYPE[.COMPONENT][:STAGE]``:
        ``calexp``, ``calexp.wcs`` (the component alone),
        ``calexp:jointcal`` (strictly what stage ``jointcal`` wrote).

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DatasetNotFoundError
            If no dataset matches in the searched collections (the message
            names the data ID and the collections).
        AmbiguousDatasetError
            If a partial data ID matches several datasets.
        InvalidParameterError
            If ``parameters`` are not accepted by the storage class.
        UnknownComponentError
            If the storage class has no such component.
        CorruptBlobError
            If a component it needs is damaged (missing chunk, bytes that fail
            their digest or checksum): the message names the digest and the
            dataset; ``compstore verify`` lists everything the damage breaks.
        """
        if isinstance(name_or_ref, DatasetRef):
            component = kwargs.pop("component", None)
            if data_id or kwargs:
                raise DataIdError("get with a DatasetRef takes no data ID")
            return self._read(name_or_ref, parameters, component)
        try:
            name = self._checked_name(name_or_ref)
            ref = self.find_dataset(name_or_ref, data_id, collections=collections, **kwargs)
        except MissingDatasetTypeError:
            # Not a dataset type: maybe a defined one (looked up only now, so plain
            # gets pay nothing for definitions).
            parsed = parse_dataset_name(name_or_ref)
            definition = self._definition(parsed.dataset_type)
            if definition is None:
                raise
            given = {**(data_id or {}), **kwargs}
            return read_defined(self, definition, parsed, given, parameters, collections)
        return self._read(ref, parameters, name.component)

    def _definition(self, name: str) -> DatasetTypeDefinition | None:
        """The definition of the defined dataset type ``name``, if there is one.

        (`ChainedButler` looks in each of its repositories.)
        """
        return self.registry.get_definition(name)

    def _read(
        self, ref: DatasetRef, parameters: Mapping[str, Any] | None, component: str | None
    ) -> Any:
        """Read ``ref``; a damaged component's error names the dataset it breaks.

        Raises
        ------
        CorruptBlobError
            If a component is damaged: the blob store's message (digest, what
            is wrong) and the dataset.
        """
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("get %s%s %s from run %r", ref.dataset_type,
                       f".{component}" if component else "", dict(ref.data_id), ref.run)
        try:
            return self._io.read(ref.manifest, parameters, component)
        except CorruptBlobError as exc:
            raise CorruptBlobError(
                f"dataset {ref.dataset_type} {dict(ref.data_id)} in run {ref.run!r} "
                f"(id {ref.id}) cannot be read: {exc}"
            ) from exc

    def register_aggregate(
        self, name: str, member: str, over: str | Iterable[str]
    ) -> DatasetTypeDefinition:
        """Define ``name`` as the row-wise union of ``member`` datasets over ``over``.

        ``register_aggregate("src_visit", "src", over=("detector",))``: a
        ``src_visit`` of ``visit=1`` is every ``src`` of visit 1, one catalog
        (each row keeps its own detector's Wcs and Calib). An aggregate of
        Exposures over ``detector`` is a `VisitExposure`. Nothing is stored but
        the definition; members are found at read time through the collections
        searched. Re-declaring the same definition does nothing.

        Raises
        ------
        DefinitionError
            If ``member`` is unknown, lacks a dimension of ``over``, or its
            storage class cannot be aggregated (so over).
        DatasetTypeConflictError
            If ``name`` is a dataset type, or defined otherwise.
        InvalidNameError
            If ``name`` is not a valid dataset type name.
        """
        self._check_writeable()
        return register_aggregate(self, name, member, over)

    def register_join(
        self, name: str, members: Sequence[str], on: str = "id"
    ) -> DatasetTypeDefinition:
        """Define ``name`` as the column-wise join of catalogs ``members`` on column ``on``.

        ``register_join("objectTable", ["deepCoadd_meas", "deepCoadd_forced_src",
        "deepCoadd_ref"], on="id")``. Members must have the same dimensions; rows
        are matched by key, in the first member's order; a column several
        members hold is prefixed by its member's name.

        Raises
        ------
        DefinitionError
            If a member is unknown, the members' dimensions or storage classes
            differ, or the storage class has no join.
        DatasetTypeConflictError
            If ``name`` is a dataset type, or defined otherwise.
        """
        self._check_writeable()
        return register_join(self, name, members, on)

    def _checked_name(self, text: str) -> DatasetName:
        """``parse_dataset_name`` plus a check that the component exists, remembered per name."""
        name = self._names.get(text) if isinstance(text, str) else None
        if name is None:
            name = parse_dataset_name(text)  # refuses a non-string (InvalidNameError)
            if name.component is not None:
                dtype = self.registry.get_dataset_type(name.dataset_type)
                sc = get_storage_class(dtype.storage_class)
                if isinstance(sc, CompositeStorageClass):
                    sc.component_storage_class(name.component)
            self._names[text] = name
        return name

    def find_dataset(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Return the ref `get` would read for ``name`` and the data ID.

        Raises
        ------
        DatasetNotFoundError, AmbiguousDatasetError, MissingDatasetTypeError, DataIdError
            As `get`.
        """
        key = self._memo_key(name, data_id, collections, kwargs)
        if key is None:
            return self._find_dataset(name, data_id, collections, kwargs)
        # Remembered by the registry while its data_version holds (one reading of
        # the counter per call): a get the identity cache answers costs no SQL.
        return self.registry.remembered(
            key, self._find_dataset, name, data_id, collections, kwargs
        )

    def _memo_key(
        self,
        name: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> tuple[Any, ...] | None:
        items = [*(data_id or {}).items(), *kwargs.items()]
        if not all(type(k) is str and type(v) in (int, str) for k, v in items):
            return None  # numpy ints and the like: normalised by the slow path only
        search = (collections,) if isinstance(collections, str) else (
            tuple(collections) if collections is not None else None
        )
        return ("find_dataset", name, tuple(sorted(items)), search, self.collections)

    def _find_dataset(
        self,
        name: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> DatasetRef:
        parsed = parse_dataset_name(name)
        dtype = self.registry.get_dataset_type(parsed.dataset_type)
        given = self._data_id(dtype, data_id, kwargs, partial=True)
        search = self._search_path(parsed.stage, collections)
        # The registry applies the search rule (per identity, the first collection
        # that has a match wins) and says how to pick among several matches. A data
        # ID leaving out a dimension, even one a later stage added (tract), is a
        # partial lookup; so is any lookup without a search path, where a data ID
        # found in several runs is ambiguous rather than silently resolved.
        ref = self.registry.find_dataset(
            dtype.name, given, search,
            partial=search is None or len(given) < len(dtype.dimensions),
        )
        if ref is None:
            raise DatasetNotFoundError(self._not_found_message(parsed, dtype, given, search))
        return ref

    def _not_found_message(
        self, parsed: DatasetName, dtype: DatasetType, data_id: DataId, search: Sequence[str] | None
    ) -> str:
        where = f"collections {list(search)}" if search is not None else "any RUN collection"
        message = f"no {dtype.name} dataset with data ID {data_id} in {where}"
        if parsed.stage is not None:
            elsewhere = self.registry.find_datasets_partial(dtype.name, data_id, None)
            if elsewhere:
                runs = sorted({ref.run for ref in elsewhere})
                message += (
                    f"; run(s) {', '.join(map(repr, runs))} have one, but stage-qualified lookups "
                    f"('{dtype.name}:{parsed.stage}') never fall back to another stage: "
                    f"has stage {parsed.stage!r} processed this data ID yet?"
                )
        return message

    def _search_path(
        self, stage: str | None, collections: str | Sequence[str] | None
    ) -> list[str] | None:
        if stage is not None:
            self.registry.collection_type(stage)  # raises MissingCollectionError
            return [stage]
        if collections is not None:
            return [collections] if isinstance(collections, str) else list(collections)
        return list(self.collections) if self.collections is not None else None

    def _data_id(
        self,
        dtype: DatasetType,
        data_id: Mapping[str, Any] | None,
        kwargs: Mapping[str, Any],
        *,
        partial: bool,
    ) -> DataId:
        merged = dict(data_id or {})
        for key, value in kwargs.items():
            if key in merged and merged[key] != value:
                raise DataIdError(
                    f"dimension {key!r} is given twice with different values "
                    f"({merged[key]!r} and {value!r})"
                )
            merged[key] = value
        if set(merged) - set(dtype.dimensions):
            # another process may have added a dimension to this type since we cached it
            dtype = self.registry.get_dataset_type(dtype.name, refresh=True)
        dtype.check_data_id(merged, partial=partial)
        return DataId(merged)

    def _find_reference_target(
        self, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """The dataset a precursor reference (``DatasetReference``) should point at, if any.

        Searched in this Butler's collections and run first, then in every run;
        the writer still checks the dataset holds the same value.
        """
        wanted = dict(data_id)
        search = [*(self.collections or ()), *([self.run] if self.run else [])]
        for collections in ([*dict.fromkeys(search)] if search else None, None):
            try:
                candidates = self.registry.find_datasets_partial(dataset_type, wanted, collections)
            except CompstoreError:
                return None
            for ref in candidates:
                if dict(ref.data_id) == wanted:
                    return str(ref.id), ref.manifest
            if collections is None:
                break
        return None

    def _resolve_dataset(self, dataset_id: str) -> str:
        ref = self.registry.get_dataset(uuid.UUID(dataset_id))
        if ref is None:
            raise DatasetNotFoundError(
                f"a manifest refers to dataset {dataset_id}, which is not in the registry "
                "(removed?); its referrer cannot be read whole"
            )
        return ref.manifest

    # -- queries --------------------------------------------------------------
    def query_datasets(
        self,
        dataset_type: str,
        where: str | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        bind: Mapping[str, Any] | None = None,
    ) -> list[DatasetRef]:
        """Return refs of ``dataset_type`` matching ``where`` in ``collections``.

        ``where`` is an expression over the dataset type's dimensions, e.g.
        ``"visit = 1 AND detector IN (1, 2)"``; values are bound, never pasted
        into SQL.

        Raises
        ------
        QuerySyntaxError
            If ``where`` is malformed (the message points at the column).
        QueryError
            If ``where`` names a dimension the dataset type does not have.
        """
        parsed = parse_dataset_name(dataset_type)
        search = self._search_path(parsed.stage, collections)
        return self.registry.query_datasets(parsed.dataset_type, where=where, collections=search, bind=bind)

    def exists(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> bool:
        """Return whether `get` would find a dataset (without reading it)."""
        try:
            self.find_dataset(name, data_id, collections=collections, **kwargs)
        except DatasetNotFoundError:
            return False
        return True

    def remove(
        self,
        refs: DatasetRef | Iterable[DatasetRef],
        *,
        referrers: bool = False,
        dry_run: bool = False,
    ) -> list[DatasetRef]:
        """Remove datasets from the registry; refuse if other datasets refer to them.

        A dataset can refer to components of another (a coadd's ``coadd_inputs``
        name its calexps' Wcs, Psf and Calib, use case 7): removing the
        referred-to dataset alone would leave the referrer unreadable. So
        `remove` refuses, naming the referrers, unless ``referrers`` is true:
        then the datasets that refer to ``refs`` (and to those, and so on)
        are removed with them, in the same transaction.

        The check reads the manifest of every dataset in the repository while
        holding the registry's write lock (no dataset that refers to these can
        be put meanwhile): a remove costs a walk of all manifests. Components
        stay on disk (other datasets may share them) until `gc` deletes those
        no dataset needs any more; `verify` counts them (``report.unreferenced``).

        Parameters
        ----------
        refs
            The datasets to remove.
        referrers
            Also remove every dataset that refers to one being removed.
        dry_run
            Only tell what would be removed (refusing as a remove would).

        Returns
        -------
        list of DatasetRef
            The datasets removed (or, dry, that would be): ``refs`` and, with
            ``referrers``, theirs.

        Raises
        ------
        DatasetInUseError
            If other datasets refer to ``refs`` and ``referrers`` is false
            (``err.referrers`` lists them); nothing is removed.
        ReadOnlyRepositoryError
            If the repository is open read-only.
        """
        if not dry_run:
            self._check_writeable()
        wanted = [refs] if isinstance(refs, DatasetRef) else list(refs)
        with self.registry.transaction(durable=self.blobs.durable):
            removed = self._removal(wanted, referrers)
            if not dry_run:
                self.registry.remove_datasets(removed)
        return removed

    def remove_run(
        self, name: str, *, referrers: bool = False, dry_run: bool = False
    ) -> list[DatasetRef]:
        """Remove RUN collection ``name`` and all its datasets, in one transaction.

        Refused, as `remove` is, if datasets in other runs refer to the run's
        datasets, unless ``referrers`` (then those are removed too). A CHAINED
        collection that contains the run loses it and keeps its other
        children (as ``butler remove-runs`` of daf_butler does); TAGGED
        collections lose the run's datasets. Components stay until `gc`.

        Parameters
        ----------
        name
            The RUN collection.
        referrers
            Also remove the datasets of other runs that refer to this run's.
        dry_run
            Only tell what would be removed; change nothing.

        Returns
        -------
        list of DatasetRef
            The datasets removed (or, dry, that would be).

        Raises
        ------
        MissingCollectionError
            If ``name`` does not exist.
        CollectionTypeError
            If ``name`` is not a RUN collection.
        DatasetInUseError
            If other datasets refer to the run's and ``referrers`` is false;
            nothing is removed.
        ReadOnlyRepositoryError
            If the repository is open read-only.
        """
        if not dry_run:
            self._check_writeable()
        if self.registry.collection_type(name) is not CollectionType.RUN:
            raise CollectionTypeError(
                f"collection {name!r} is {self.registry.collection_type(name).name}, not RUN: "
                "remove_run removes RUN collections only"
            )
        with self.registry.transaction(durable=self.blobs.durable):
            wanted = self._all_refs([name])
            removed = self._removal(wanted, referrers)
            if not dry_run:
                self.registry.remove_datasets(removed)
                self.registry.remove_run(name)
        if not dry_run and self.run == name:
            self.run = None  # puts into it would fail on a missing collection
        return removed

    def gc(self, dry_run: bool = False, progress: bool = False) -> GcReport:
        """Delete the components, manifests and pack members no dataset needs.

        Marks what every registered dataset's manifests need, then sweeps the
        blob store under the gc lock (puts in flight finish first, new ones
        wait for the sweep), rewrites packs mostly dead (`compstore.gc.REPACK_BELOW`)
        and removes writers' leftovers. Safe beside concurrent puts and against
        being killed at any point (``docs/format.md``, "Garbage collection").

        Parameters
        ----------
        dry_run
            Only report what would be deleted.
        progress
            Draw progress bars on stderr.

        Returns
        -------
        GcReport
            Components and bytes freed, packs rewritten, leftovers removed.

        Raises
        ------
        CorruptBlobError
            If a registered dataset's manifest cannot be read: nothing is deleted.
        ReadOnlyRepositoryError
            If the repository is open read-only (and not ``dry_run``).
        """
        if not dry_run:
            self._check_writeable()
        return collect_garbage(self.registry, self.blobs, dry_run=dry_run, progress=progress)

    def _removal(self, wanted: list[DatasetRef], referrers: bool) -> list[DatasetRef]:
        """``wanted`` and, if ``referrers``, the datasets referring to them (registry lock held)."""
        removing = {ref.id: ref for ref in wanted}
        referred_by = self._references()
        extra: dict[uuid.UUID, DatasetRef] = {}
        frontier = set(removing)
        while frontier:  # referrers of referrers: all would be unreadable
            found = {
                ref.id: ref
                for target in frontier
                for ref in referred_by.get(target, ())
                if ref.id not in removing and ref.id not in extra
            }
            extra.update(found)
            frontier = set(found)
        if extra and not referrers:
            listing = "; ".join(
                f"{r.dataset_type} {dict(r.data_id)} in run {r.run!r}"
                for r in sorted(extra.values(), key=lambda r: (r.dataset_type, str(r.id)))
            )
            names = ", ".join(
                f"{r.dataset_type} {dict(r.data_id)} in run {r.run!r}" for r in wanted
            )
            raise DatasetInUseError(
                f"cannot remove {names}: {len(extra)} other dataset(s) refer to its "
                "components (directly or through one another) and would become "
                f"unreadable: {listing}; remove them too "
                "with remove(refs, referrers=True), or remove them first",
                list(extra.values()),
            )
        return [*removing.values(), *extra.values()]

    def _references(self) -> dict[uuid.UUID, list[DatasetRef]]:
        """For each dataset some manifest refers to, the datasets whose manifests do."""
        per_manifest: dict[str, set[str]] = {}
        referred_by: dict[uuid.UUID, list[DatasetRef]] = {}
        for ref in self._all_refs():
            try:
                targets = self._referenced(ref.manifest, per_manifest)
            except CompstoreError as exc:
                raise CompstoreError(
                    f"cannot tell which datasets {ref.dataset_type} {dict(ref.data_id)} in run "
                    f"{ref.run!r} refers to: {exc}; nothing was removed (run `compstore verify`)"
                ) from exc
            for target in targets:
                try:
                    referred_by.setdefault(uuid.UUID(target), []).append(ref)
                except ValueError:
                    continue  # not a dataset ID: refers to nothing a remove could break
        return referred_by

    def _referenced(self, manifest: str, memo: dict[str, set[str]]) -> set[str]:
        """The dataset UUIDs manifest ``manifest`` (and those nested in it) refer to."""
        found = memo.get(manifest)
        if found is None:
            found = {
                target
                for kind, target in walk(self._io.manifest, manifest, datasets=True)
                if kind == "dataset"
            }
            memo[manifest] = found
        return found

    # -- inspection -------------------------------------------------------------
    def component_path(
        self, name: str, data_id: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Path:
        """Return the folder of the zarr array behind an array component.

        ``name`` is ``TYPE.COMPONENT`` (``calexp.image``); stock
        ``zarr.open_array(path)`` reads it. A small array kept in a pack
        (format 2) is first written out as that folder, from the pack's bytes;
        in a repository that cannot be written (read-only format, files or
        mount), it is written under a per-user cache folder instead
        (``compstore.zarr_view._paths``), never into the repository.

        Raises
        ------
        UnknownComponentError
            If the component is not stored as an array.
        BlobStoreError
            If the array is packed, the repository read-only and the cache
            folder not writable either; or the repository is on object
            storage (the message gives the array's URL).
        """
        parsed = parse_dataset_name(name)
        ref = self.find_dataset(name, data_id, **kwargs)
        components = self._io.manifest(ref.manifest).components
        entry = components.get(parsed.component or "")
        if entry is None or "array" not in entry:
            arrays = [k for k, v in components.items() if entry_kind(v) == "array"]
            raise UnknownComponentError(
                f"{name!r} is not an array component of {parsed.dataset_type}; "
                f"its array components are: {', '.join(arrays) or 'none'}"
            )
        digest = entry["array"]
        if isinstance(self.blobs, S3BlobStore):
            raise BlobStoreError(
                f"{name} is the zarr array {self.blobs.url}/arrays/{digest[:2]}/{digest} on "
                "object storage, not a local folder: open it there with zarr (an "
                f"ObjectStore), or as a group with butler.zarr_store({parsed.dataset_type!r}, ...)"
            )
        blobs = require_local(self.blobs, "component_path")
        from .zarr_view._paths import outside_folder

        if self._repo.read_only:
            return outside_folder(blobs, digest)
        try:
            return blobs.root / blobs.component_path(digest)
        except (OSError, BlobStoreError) as exc:
            cause = exc if isinstance(exc, OSError) else exc.__cause__
            if getattr(cause, "errno", None) not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # Read-only files or mount: written outside the repository instead.
            return outside_folder(blobs, digest)

    def zarr_store(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetZarrStore:
        """A read-only zarr v3 store presenting one dataset as a zarr group.

        Same lookup as `get` (any dataset, component or defined type):
        ``xarray.open_zarr(butler.zarr_store("calexp", visit=1, detector=2))``.
        Array components are child arrays holding the values `get` returns;
        small components are group attributes (layout: ``compstore.zarr_view``).

        Raises
        ------
        DatasetNotFoundError, MissingDatasetTypeError, UnknownComponentError, CorruptBlobError
            As `get`.
        EncodingError
            If a column or component name cannot name a zarr node.
        """
        from .zarr_view import DatasetZarrStore
        from .zarr_view._dataset import dataset_view

        view, description = dataset_view(self, name, data_id, collections, kwargs)
        return DatasetZarrStore(view, description=description)

    def stats(self) -> RepositoryStats:
        """Count datasets and components, and the bytes deduplication saves."""
        logical, datasets = self.logical_bytes()
        arrays = list(self.blobs.iter_arrays())
        documents = list(self.blobs.iter_documents())
        stored = sum(self.blobs.stored_bytes(d) for d in arrays) + sum(
            self.blobs.stored_bytes(d) for d in documents
        )
        return RepositoryStats(
            datasets=datasets,
            dataset_types=len(self.registry.dataset_types()),
            collections=len(self.registry.query_collections()),
            arrays=len(arrays),
            documents=len(documents),
            logical_bytes=logical,
            stored_bytes=stored,
        )

    def verify(self, *, deep: bool = False, progress: bool = False) -> VerifyReport:
        """Check that every dataset's components are stored (and, with ``deep``, intact).

        Walks every dataset's manifests; ``deep`` also re-reads and re-hashes
        every component (every byte of the repository). Changes nothing. See
        `compstore.verify.verify_repository`.

        Returns
        -------
        VerifyReport
            ``report.ok`` is True if nothing is wrong; ``report.problems`` lists
            each missing, corrupt or unreadable component and dangling
            reference, with a dataset that needs it.

        ``progress`` shows a progress bar (tqdm, on stderr, only on a terminal).
        """
        return verify_repository(
            self.registry, self._io, self.blobs, self._all_refs(), deep=deep, progress=progress
        )

    def logical_bytes(
        self, collections: Sequence[str] | None = None, dataset_types: Sequence[str] | None = None
    ) -> tuple[int, int]:
        """Bytes the datasets of ``collections`` (all if None) would take with their own copies.

        ``dataset_types`` restricts the count to those types (all if None).

        Returns
        -------
        tuple of int
            ``(logical bytes, number of datasets)``: for each dataset, the stored
            bytes of every component it uses (its manifests included).
        """
        sizes: dict[str, int] = {}
        per_manifest: dict[str, int] = {}
        logical = 0
        refs = self._all_refs(collections)
        if dataset_types is not None:
            refs = [ref for ref in refs if ref.dataset_type in dataset_types]
        for ref in refs:
            if ref.manifest not in per_manifest:
                total = 0
                for _, digest in set(self._io.iter_components(ref.manifest)):
                    if digest not in sizes:
                        sizes[digest] = self.blobs.stored_bytes(digest)
                    total += sizes[digest]
                per_manifest[ref.manifest] = total
            logical += per_manifest[ref.manifest]
        return logical, len(refs)

    # -- subsets and transfers (compstore.transfer) -----------------------------
    def subset(
        self,
        dest: str | os.PathLike[str],
        dataset_types: str | Sequence[str] = ("src",),
        where: str | None = None,
        collections: str | Sequence[str] | None = None,
        progress: bool = False,
    ) -> Butler:
        """Make a new repository at ``dest`` holding the chosen datasets and what they need.

        The datasets of ``dataset_types`` matching ``where`` in ``collections``
        (this Butler's collections if None) keep their UUIDs, runs, provenance
        and dataset types; the TAGGED and CHAINED collections that hold them
        are carried (a chain with only its carried children). Their closure is
        copied as stored (no decoding, no re-hashing): every manifest, array
        and document they name (a catalog's Wcs and Calib) and nothing else,
        so a catalogs-only subset holds no pixels. References to other
        datasets (a coadd's inputs) are carried as references: reading them in
        the subset raises `DatasetNotFoundError` naming the missing dataset.
        See `compstore.transfer`.

        Returns
        -------
        Butler
            A Butler on the new repository.

        Raises
        ------
        RepositoryExistsError
            If ``dest`` exists and is not an empty folder.
        MissingDatasetTypeError, QueryError
            If a dataset type or ``where`` is bad (nothing is created).
        """
        from .transfer import subset

        return subset(self, dest, dataset_types, where, collections, progress=progress)[0]

    def transfer_from(
        self, other: Butler, refs: Iterable[DatasetRef], *, progress: bool = False
    ) -> TransferReport:
        """Copy the datasets ``refs`` of ``other`` into this repository, as stored.

        Components this repository has are skipped (a second transfer of the
        same datasets writes no bytes); UUIDs and provenance are kept; the
        registry rows are written in one transaction after the bytes (all or
        nothing). See `compstore.transfer.copy_datasets`.

        Returns
        -------
        TransferReport
            The refs, and the datasets, components and bytes written.

        Raises
        ------
        DatasetNotFoundError
            If a ref is not a dataset of ``other``.
        ConflictingDatasetError
            If this repository holds a UUID or a data ID of ``refs`` for another dataset.
        """
        from .transfer import copy_datasets

        return copy_datasets(other, self, refs, progress=progress)

    # -- what the pipeline's graph builder asks (a chain of repositories answers for all) --
    def _input_dataset_type(self, name: str) -> DatasetType:
        """The registered dataset type ``name`` (raises `MissingDatasetTypeError`)."""
        return self.registry.get_dataset_type(name)

    def _query_inputs(
        self, dataset_type: str, where: str | None, collections: list[str]
    ) -> list[DatasetRef]:
        """The datasets a pipeline takes as inputs: the first in ``collections`` per data ID."""
        return self.registry.query_datasets(
            dataset_type, where=where, collections=collections, find_first=True
        )

    def _all_refs(self, collections: Sequence[str] | None = None) -> list[DatasetRef]:
        refs: list[DatasetRef] = []
        for dtype in self.registry.dataset_types():
            refs.extend(self.registry.query_datasets(dtype.name, collections=collections))
        return refs
