"""Reading several repositories in order: the Butler that ``Butler([first, second, ...])`` opens.

A chain of repositories reads as one, with writes going to the first:

* datasets: a lookup (`find_dataset`, `get`, `exists`) asks each repository
  in order, with the same collections; the first repository that has the
  dataset type and data ID wins. `query_datasets` is the union of every
  repository's answer, in repository order, where a data ID found in an
  earlier repository hides the same dataset type and data ID in later ones.
* components: content-addressed, so a manifest, array or document is read
  from the first repository that holds its digest, whichever repository the
  dataset came from (a catalog from a catalogs-only subset, the Wcs it shares
  with its calexp from the archive). References to other datasets (a coadd's
  inputs) are resolved by UUID in each repository in order.
* identity: one identity cache, keyed by digest, serves the whole chain, so
  ``cat.wcs is exp.wcs`` holds whichever repositories they came from.
* writes go to the first repository, which stays self-contained: a put that
  needs a component held only by a later repository (an object read through
  the chain and put back, whose digest the cache knows) copies that
  component into the first repository, components before manifests, before
  the registry row is committed. A component that refers to another dataset
  is stored as a reference only when the first repository holds that
  dataset; otherwise its value is stored. So the first repository always
  verifies clean on its own.

The chain's blob store is `compstore._chain_blobs.ChainedBlobStore`; the
copying into the first repository is `compstore._chain_io.ChainIO`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._chain_blobs import ChainedBlobStore
from ._chain_io import ChainIO
from ._defined import read_defined
from ._s3repo import is_s3_url
from .butler import Butler, DatasetName, parse_dataset_name
from .butler._butler import DEFAULT_CACHE_BYTES
from .butler._lookup import RegistryResolver
from .butler.gc import remember_generation
from .butler.verify import VerifyReport
from .cache import shared_cache
from .errors import (
    CompstoreError,
    DatasetNotFoundError,
    DefinitionError,
    MissingCollectionError,
    MissingDatasetTypeError,
    RepositoryError,
)
from .registry import DatasetRef, DatasetType, DatasetTypeDefinition

__all__ = ["ChainedBlobStore", "ChainedButler", "check_roots"]

# What one repository of the chain answers when it does not have a dataset:
# the next repository is asked.
_NOT_HERE = (DatasetNotFoundError, MissingDatasetTypeError, MissingCollectionError)


def check_roots(roots: Sequence[Any]) -> list[str | os.PathLike[str]]:
    """Check a list of repository roots given to ``Butler``.

    Raises
    ------
    RepositoryError
        If the list is empty, holds something other than a path, or names one
        folder twice.
    """
    if not roots:
        raise RepositoryError(
            "Butler was given an empty list of repositories: give one root, or several in "
            "the order to search them, e.g. Butler(['catalogs', 'archive'])"
        )
    seen: dict[Path | str, Any] = {}
    for root in roots:
        if not isinstance(root, (str, os.PathLike)):
            raise RepositoryError(
                f"a repository root is a folder path (str or os.PathLike) or an s3:// URL, "
                f"not {type(root).__name__} ({str(root)[:100]!r})"
            )
        resolved: Path | str = (
            str(root).rstrip("/") if is_s3_url(root) else Path(root).resolve()
        )
        if resolved in seen:
            raise RepositoryError(
                f"repository {str(root)!r} is given twice in {[str(r) for r in roots]}; "
                "give each repository once, in the order to search them"
            )
        seen[resolved] = root
    return list(roots)


class ChainedButler(Butler):
    """A Butler over several repositories, read in order and written to the first.

    Opened by ``Butler([first, second, ...], run=..., collections=...)``;
    the module docstring (and ``docs/concepts.md``, "Several repositories")
    give the rules. ``root``, ``registry`` and ``blobs`` are the first
    repository's; ``roots`` lists all of them in search order.

    `verify`, `stats`, `remove` and the registration methods act on the first
    repository alone (the one this Butler changes); open a later repository
    with ``Butler(root)`` to work on it.

    Raises
    ------
    RepositoryError
        If ``root`` is empty, holds a non-path, or names a folder twice.
    RepositoryNotFoundError
        If a root holds no repository.
    """

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
        roots = check_roots([root] if isinstance(root, (str, os.PathLike)) else list(root))
        super().__init__(
            roots[0], run=run, collections=collections, cache_bytes=cache_bytes, fsync=fsync,
            local_cache=local_cache, local_cache_bytes=local_cache_bytes,
        )
        # Plain Butlers, one per repository, answer the lookups of each; they
        # never read objects (the chain's cache and stores do).
        self._members = [
            Butler(r, collections=self.collections, fsync=fsync, local_cache=local_cache,
                   local_cache_bytes=local_cache_bytes)
            for r in roots
        ]
        self.roots: tuple[Path | str, ...] = tuple(m.root for m in self._members)
        self._path_memo: dict[tuple[int, tuple[str, ...]], tuple[int | None, Any]] = {}
        # A cache of the chain, not the first repository's: a plain Butler of the
        # first repository must never take a digest known here (maybe held only by
        # a later repository) for one its own store holds.
        key = "chain:" + "\n".join(m._repo.identity for m in self._members)
        self.cache = shared_cache(
            key, cache_bytes if cache_bytes is not None else DEFAULT_CACHE_BYTES
        )
        # The gc generation of the first repository, for this cache too, before it
        # caches anything: else the first put would forget every digest it knows.
        remember_generation(self.blobs, self.cache)
        self._io = ChainIO(
            ChainedBlobStore([self.blobs, *(m.blobs for m in self._members[1:])]),
            self.cache,
            RegistryResolver(self),
            in_first=self._in_first,
            encode=self._repo.document_encoding,  # the first repository's: written there
        )

    def __repr__(self) -> str:
        roots = [str(r) for r in self.roots]
        return f"Butler({roots!r}, run={self.run!r}, collections={self.collections!r})"

    # -- lookups: each repository in order ----------------------------------------
    def find_dataset(
        self,
        name: str,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Return the ref `get` would read: from the first repository that has one.

        Raises
        ------
        DatasetNotFoundError
            If no repository has it (the message names each repository and
            what it lacks).
        MissingDatasetTypeError
            If no repository has the dataset type.
        AmbiguousDatasetError, DataIdError
            As `Butler.find_dataset`, from the first repository that has the type.
        """
        return self._locate(name, data_id, collections, kwargs)[1]

    def _locate(
        self,
        text: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> tuple[DatasetName, DatasetRef]:
        failures: list[CompstoreError] = []
        for member, search in zip(self._members, self._paths_for(text, collections), strict=True):
            try:
                if isinstance(search, CompstoreError):
                    raise search
                name = member._checked_name(text)
                return name, member.find_dataset(text, data_id, collections=search, **kwargs)
            except _NOT_HERE as exc:
                failures.append(exc)
        raise self._nowhere(f"{text} {dict({**(data_id or {}), **kwargs})}", failures)

    def _paths_for(
        self, text: str, collections: str | Sequence[str] | None
    ) -> list[list[str] | None | MissingCollectionError]:
        """`_paths`, unless ``text`` names a stage: then each repository looks in that stage alone."""
        if parse_dataset_name(text).stage is not None:
            return [None] * len(self._members)  # the stage overrides collections
        return self._paths(collections)

    def _paths(
        self, collections: str | Sequence[str] | None
    ) -> list[list[str] | None | MissingCollectionError]:
        """Each repository's search path: the collections of ``collections`` it has, in order.

        Repositories hold different collections (a subset may lack a run the
        archive has), so each searches those it has; one that has none of
        them is skipped (its entry is the error to report). None searches
        every RUN collection of each. Remembered per repository while its
        registry is unchanged.

        Raises
        ------
        MissingCollectionError
            If no repository has any of the collections.
        """
        if collections is None:
            collections = self.collections
        if collections is None:
            return [None] * len(self._members)
        wanted = (collections,) if isinstance(collections, str) else tuple(collections)
        paths: list[list[str] | None | MissingCollectionError] = []
        for i, member in enumerate(self._members):
            version = member.registry.data_version()
            memo = self._path_memo.get((i, wanted))
            if memo is not None and version is not None and memo[0] == version:
                paths.append(memo[1])
                continue
            have = []
            for name in wanted:
                try:
                    member.registry.collection_type(name)
                except MissingCollectionError:
                    continue
                have.append(name)
            path = have or MissingCollectionError(
                f"none of the collections {list(wanted)} exists in {member.root}"
            )
            if len(self._path_memo) > 10_000:
                self._path_memo.clear()
            self._path_memo[(i, wanted)] = (version, path)
            paths.append(path)
        if all(isinstance(p, MissingCollectionError) for p in paths):
            raise MissingCollectionError(
                f"none of the collections {list(wanted)} exists in any of the repositories "
                f"{[str(r) for r in self.roots]}; `compstore query-collections` lists each "
                "repository's"
            )
        return paths

    def _nowhere(self, what: str, failures: Sequence[CompstoreError]) -> CompstoreError:
        """The error for ``what`` found in no repository, naming each and its answer."""
        listing = "; ".join(f"{root}: {exc}" for root, exc in zip(self.roots, failures))
        message = (
            f"{what} is in none of the {len(self.roots)} repositories searched, in order "
            f"({listing})"
        )
        if all(isinstance(exc, MissingDatasetTypeError) for exc in failures):
            return MissingDatasetTypeError(message)
        if not any(isinstance(exc, DatasetNotFoundError) for exc in failures):
            # where the dataset type exists, the collection does not
            return MissingCollectionError(message)
        return DatasetNotFoundError(message)

    def get(
        self,
        name_or_ref: str | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        parameters: Mapping[str, Any] | None = None,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset, or a component, from the first repository that has it.

        Its components are read from whichever repository holds them; see
        `Butler.get`.

        Raises
        ------
        As `Butler.get` and `find_dataset`.
        """
        if isinstance(name_or_ref, DatasetRef):
            return super().get(
                name_or_ref, data_id, parameters=parameters, collections=collections, **kwargs
            )
        try:
            name, ref = self._locate(name_or_ref, data_id, collections, kwargs)
        except (MissingDatasetTypeError, MissingCollectionError):
            # A defined type is registered in one repository and unknown to the
            # others, whose collections may not even exist: either error may say so.
            parsed = parse_dataset_name(name_or_ref)
            definition = self._definition(parsed.dataset_type)
            if definition is None:
                raise
            given = {**(data_id or {}), **kwargs}
            return read_defined(self, definition, parsed, given, parameters, collections)
        return self._read(ref, parameters, name.component)

    def _definition(self, name: str) -> DatasetTypeDefinition | None:
        """The definition of ``name`` in the first repository that has one, if it can be read here.

        Raises
        ------
        DefinitionError
            If it is an aggregate: its members are looked up in the first
            repository's registry only, which would miss those of later ones.
        """
        for member in self._members:
            definition = member.registry.get_definition(name)
            if definition is not None:
                if definition.kind != "join":
                    raise DefinitionError(
                        f"{name!r} is an aggregate ({definition.describe()}); reading "
                        "aggregates through several repositories is not supported yet, "
                        "as its members could be missed: open the repository that holds "
                        "them with Butler(root)"
                    )
                return definition
        return None

    def query_datasets(
        self,
        dataset_type: str,
        where: str | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        bind: Mapping[str, Any] | None = None,
    ) -> list[DatasetRef]:
        """Return matching refs of every repository; an earlier repository's data ID wins.

        Each repository is queried in order with the same ``where`` and
        collections; a dataset whose dataset type and data ID an earlier
        repository answered already is left out. Refs come in repository
        order, each repository's in its own order (by data ID, then run).

        Raises
        ------
        MissingDatasetTypeError
            If no repository has the dataset type.
        MissingCollectionError
            If no repository has the collections.
        QuerySyntaxError, QueryError
            As `Butler.query_datasets`.
        """
        refs: list[DatasetRef] = []
        claimed: set[tuple[str, Any]] = set()
        failures: list[CompstoreError] = []
        paths = self._paths_for(dataset_type, collections)
        for member, search in zip(self._members, paths, strict=True):
            try:
                if isinstance(search, CompstoreError):
                    raise search
                found = member.query_datasets(dataset_type, where, collections=search, bind=bind)
            except _NOT_HERE as exc:
                failures.append(exc)
                continue
            mine = [ref for ref in found if (ref.dataset_type, ref.data_id) not in claimed]
            claimed.update((ref.dataset_type, ref.data_id) for ref in mine)
            refs.extend(mine)
        if len(failures) == len(self._members):
            raise self._nowhere(f"dataset type {dataset_type!r}", failures)
        return refs

    def _input_dataset_type(self, name: str) -> DatasetType:
        """The dataset type ``name`` of the first repository that registers it."""
        failures: list[CompstoreError] = []
        for member in self._members:
            try:
                return member.registry.get_dataset_type(name)
            except MissingDatasetTypeError as exc:
                failures.append(exc)
        raise self._nowhere(f"dataset type {name!r}", failures)

    def _query_inputs(
        self, dataset_type: str, where: str | None, collections: list[str]
    ) -> list[DatasetRef]:
        """A pipeline's inputs from every repository; an earlier repository's data ID wins.

        Each repository searches the collections of ``collections`` it has
        (first one wins per data ID, as in one repository); a data ID an
        earlier repository answered is not taken again from a later one.
        """
        refs: list[DatasetRef] = []
        claimed: set[Any] = set()
        for member, search in zip(self._members, self._paths(collections), strict=True):
            if isinstance(search, CompstoreError):
                continue
            try:
                found = member.registry.query_datasets(
                    dataset_type, where=where, collections=search, find_first=True
                )
            except MissingDatasetTypeError:
                continue
            mine = [ref for ref in found if ref.data_id not in claimed]
            claimed.update(ref.data_id for ref in mine)
            refs.extend(mine)
        return refs

    def _resolve_dataset(self, dataset_id: str) -> str:
        key = uuid.UUID(dataset_id)
        for member in self._members:
            ref = member.registry.get_dataset(key)
            if ref is not None:
                return ref.manifest
        raise DatasetNotFoundError(
            f"a manifest refers to dataset {dataset_id}, which is in none of the repositories "
            f"{[str(r) for r in self.roots]} (removed, or left out of a subset?); its referrer "
            "cannot be read whole: read its other components, or add the repository that "
            "holds the dataset to the chain"
        )

    def split_by_repository(self, refs: Iterable[DatasetRef]) -> list[tuple[Butler, list[DatasetRef]]]:
        """Group ``refs`` by the first repository holding each (same UUID and manifest).

        What `Butler.transfer_from` and `Butler.subset` copy from a chain: each
        repository copies the datasets it holds, with their closure (the first
        repository is self-contained; so is every plain repository).

        Raises
        ------
        DatasetNotFoundError
            If a ref is in none of the repositories.
        """
        groups: dict[int, list[DatasetRef]] = {}
        left = list(refs)
        for i, member in enumerate(self._members):
            if not left:
                break
            haves = member.registry.get_datasets([ref.id for ref in left])  # one batch each
            held = [
                have is not None and have.manifest == ref.manifest
                for ref, have in zip(left, haves, strict=True)
            ]
            groups[i] = [ref for ref, ok in zip(left, held, strict=True) if ok]
            left = [ref for ref, ok in zip(left, held, strict=True) if not ok]
        if left:
            ref = left[0]
            raise DatasetNotFoundError(
                f"{ref.dataset_type} {dict(ref.data_id)} (ID {ref.id}) is in none of the "
                f"repositories {[str(r) for r in self.roots]}; pass refs found through this Butler"
            )
        return [(self._members[i], groups[i]) for i in sorted(groups) if groups[i]]

    def _located(
        self,
        name: str,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: Mapping[str, Any],
    ) -> tuple[Butler, list[str] | None]:
        """The repository `find_dataset` answers from, and its search path there."""
        failures: list[CompstoreError] = []
        for member, search in zip(self._members, self._paths_for(name, collections), strict=True):
            try:
                if isinstance(search, CompstoreError):
                    raise search
                member.find_dataset(name, data_id, collections=search, **kwargs)
                return member, search
            except _NOT_HERE as exc:
                failures.append(exc)
        raise self._nowhere(f"{name} {dict({**(data_id or {}), **kwargs})}", failures)

    def component_path(
        self, name: str, data_id: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Path:
        """The zarr folder of an array component, in the repository that holds the dataset.

        See `Butler.component_path`.
        """
        collections = kwargs.pop("collections", None)
        member, search = self._located(name, data_id, collections, kwargs)
        return member.component_path(name, data_id, collections=search, **kwargs)

    def _in_first(self, dataset_id: str) -> bool:
        try:
            return self.registry.get_dataset(uuid.UUID(dataset_id)) is not None
        except ValueError:
            return False

    def provenance(self, ref: DatasetRef) -> dict[str, Any] | None:
        """Return how ``ref`` was made, from the repository that holds it (or None)."""
        for member in self._members:
            found = member.provenance(ref)
            if found is not None:
                return found
        return None

    def query_collections(self, pattern: str | None = None) -> list[tuple[str, str]]:
        """Return ``(name, type)`` of collections of every repository (the first's type wins)."""
        found: dict[str, str] = {}
        for member in self._members:
            for name, ctype in member.query_collections(pattern):
                found.setdefault(name, ctype)
        return sorted(found.items())

    # -- writes: the first repository ----------------------------------------------
    def _put_type(self, name: str) -> DatasetType:
        """The dataset type a put goes to; registered in the first repository if only later ones have it."""
        try:
            return super()._put_type(name)
        except MissingDatasetTypeError:
            for member in self._members[1:]:
                try:
                    dtype = member.registry.get_dataset_type(name)
                except MissingDatasetTypeError:
                    continue
                return self.register_dataset_type(name, dtype.dimensions, dtype.storage_class)
            raise

    def remove(self, refs: DatasetRef | Iterable[DatasetRef], *args: Any, **kwargs: Any) -> list[DatasetRef]:
        """Remove datasets of the first repository (see `Butler.remove`).

        Raises
        ------
        DatasetNotFoundError
            If a ref is not in the first repository (a later one is never
            changed through a chain); nothing is removed.
        As `Butler.remove` otherwise.
        """
        wanted = [refs] if isinstance(refs, DatasetRef) else list(refs)
        for ref in wanted:
            if self.registry.get_dataset(ref.id) is None:
                raise DatasetNotFoundError(
                    f"dataset {ref.dataset_type} {dict(ref.data_id)} in run {ref.run!r} "
                    f"(id {ref.id}) is not in {self.root}, the first repository, which is the "
                    "only one a Butler over several repositories changes: remove it with "
                    "Butler(root) of the repository that holds it"
                )
        result: list[DatasetRef] = super().remove(wanted, *args, **kwargs)
        return result

    def verify(self, *, deep: bool = False, progress: bool = False) -> VerifyReport:
        """Check the first repository on its own (see `Butler.verify`).

        It must verify clean without the later repositories: nothing in it
        may need a component or dataset only they hold.
        """
        return self._members[0].verify(deep=deep, progress=progress)
