"""The Butler: the facade users hold to put and get datasets by type and data ID.

`Butler` combines the groups of methods of this package (`Lookup`, `Puts`,
`Removal`, `Inspection`, each one idea in its own module) with what is its
own here: opening and creating a repository, collections, get, defined
dataset types, the zarr views, subsets and transfers.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._defined import read_defined, register_aggregate, register_join
from .._repository import Repository
from ..cache import ObjectCache, shared_cache
from ..cas import S3BlobStore
from ..cas._local import require_local
from ..datastore import ObjectIO, entry_kind
from ..errors import (
    BlobStoreError,
    CorruptBlobError,
    DataIdError,
    MissingDatasetTypeError,
    UnknownComponentError,
)
from ..registry import (
    CollectionType,
    DatasetRef,
    DatasetType,
    DatasetTypeDefinition,
    Registry,
)
from ..storage_classes import get_storage_class
from ._lookup import RegistryResolver
from ._names import DatasetName, parse_dataset_name
from ._put import Puts
from ._remove import Removal
from ._stats import Inspection
from .gc import remember_generation

if TYPE_CHECKING:
    from ..zarr_view import DatasetZarrStore
    from .transfer import TransferReport

# The library logs, never configures logging (the CLI's -v/-q do). Per-call logs
# (put, get) are DEBUG and guarded by isEnabledFor, so they cost a get nothing measurable.
# The logger keeps the module's old name, compstore.butler, which users configure.
_log = logging.getLogger("compstore.butler")

__all__ = ["DEFAULT_CACHE_BYTES", "Butler"]

DEFAULT_CACHE_BYTES = 512 * 1024**2


class Butler(Puts, Removal, Inspection):
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
            from .._chain import ChainedButler

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
            from .._chain import check_roots

            (root,) = check_roots(root)  # a list of one root
        self._repo = Repository.open(
            root, fsync=fsync, local_cache=local_cache, local_cache_bytes=local_cache_bytes
        )
        self._local_cache = (local_cache, local_cache_bytes)  # pipeline workers open the same
        self.root = self._repo.root
        self.registry: Registry = self._repo.registry
        self.blobs = self._repo.blobs
        self.cache: ObjectCache = shared_cache(
            self._repo.identity, cache_bytes if cache_bytes is not None else DEFAULT_CACHE_BYTES
        )
        self._io = ObjectIO(
            self.blobs, self.cache, RegistryResolver(self), self._repo.document_encoding
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
        # Kept while the Butler opens it: its registry, held weakly by the process-wide
        # table, is then served to the Butler rather than opened a second time.
        made = Repository.create(root, exist_ok=exist_ok, registry=registry, fsync=fsync,
                                 local_cache=local_cache, local_cache_bytes=local_cache_bytes,
                                 digest=digest)
        butler = cls(root, fsync=fsync, local_cache=local_cache, local_cache_bytes=local_cache_bytes)
        del made
        return butler

    @staticmethod
    def upgrade(root: str | os.PathLike[str]) -> tuple[str, str]:
        """Move the format 2 repository ``root`` (a folder, or ``s3://bucket/prefix``) to
        format 3 in place; see `compstore._format3.upgrade` (crash-safe: one atomic
        config replacement).

        Returns the format version before and after, e.g. ``("2.0", "3.0")``.
        """
        from .._format3 import upgrade

        return upgrade(root)

    def __repr__(self) -> str:
        return f"Butler({str(self.root)!r}, run={self.run!r}, collections={self.collections!r})"

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

    # -- provenance (the put path itself: _put.py) -----------------------------
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

    # -- get (finding the dataset: _lookup.py) ----------------------------------
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
        from ..zarr_view._paths import outside_folder

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
        from ..zarr_view import DatasetZarrStore
        from ..zarr_view._dataset import dataset_view

        view, description = dataset_view(self, name, data_id, collections, kwargs)
        return DatasetZarrStore(view, description=description)

    # -- subsets and transfers (compstore.butler.transfer) ----------------------
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
        See `compstore.butler.transfer`.

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
        nothing). See `compstore.butler.transfer.copy_datasets`.

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

