"""Removing datasets (refused while others refer to them) and collecting garbage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from ..datastore import walk
from ..errors import CollectionTypeError, CompstoreError, DatasetInUseError
from ..registry import CollectionType, DatasetRef
from ._base import ButlerBase
from .gc import GcReport, collect_garbage

__all__ = ["Removal"]


class Removal(ButlerBase):
    """`remove`, `remove_run` and `gc`, and the referrer check they share."""

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
        wait for the sweep), rewrites packs mostly dead (`compstore.butler.gc.REPACK_BELOW`)
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
                if self.registry.get_dataset(ref.id) is None:
                    # Removed by another process since the listing, and its manifest
                    # collected by a gc since: it refers to nothing any more.
                    continue
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
