"""The put path: check each item, write its components and manifest, then commit its row."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..datastore import WriteReport
from ..errors import (
    CollectionError,
    ConflictingDatasetError,
    DataIdError,
    DefinitionError,
    InvalidNameError,
    MissingDatasetTypeError,
    PipelineError,
)
from ..objects._astropy import from_astropy
from ..registry import DataId, DatasetRef, DatasetType, derived_dataset_id
from ..registry._common import config_json
from ..storage_classes import get_storage_class
from ._lookup import Lookup
from ._names import parse_dataset_name
from .gc import PutGuard, put_guard

__all__ = ["PutResult", "Puts"]

_log = logging.getLogger("compstore.butler")


@dataclass(frozen=True)
class PutResult:
    """What one put added: the ref and the bytes it cost on disk."""

    ref: DatasetRef
    report: WriteReport


class Puts(Lookup):
    """Writing datasets: `put`, `put_many`, `put_stream` and their checks."""

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
            ``config`` (a JSON-able dict) and ``inputs`` (dataset UUIDs). With
            provenance, each dataset's ID is derived from it (see
            `compstore.registry.derived_dataset_id`) instead of random, so the same
            task on the same inputs into a run of the same name writes the same IDs.
        report
            Accumulates what was written.

        Raises
        ------
        As `put`; when one item fails, no registry row of any item is committed.
        """
        run = self._require_run()
        report = report if report is not None else WriteReport()
        # Checked before anything is written.
        parts = None if provenance is None else _provenance_parts(provenance)
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
        with put_guard(self.blobs, self.cache) as guard:
            return self._commit_many(run, prepared, parts, report, guard)

    def _commit_many(
        self,
        run: str,
        prepared: list[tuple[Any, DatasetType, DataId]],
        provenance: _Provenance | None,
        report: WriteReport,
        guard: PutGuard,
    ) -> list[DatasetRef]:
        manifests = [self._io.write(obj, dtype.storage_class, report) for obj, dtype, _ in prepared]
        # Durability order: components and manifests reach the disk, then the rows.
        self.blobs.sync()
        refs = []
        # Rows as durable as the components: a Butler without fsync skips the WAL's too.
        with self.registry.transaction(durable=self.blobs.durable):
            for (_, dtype, full_id), manifest in zip(prepared, manifests, strict=True):
                if provenance is None:
                    ref = self.registry.insert_dataset(dtype.name, full_id, run, manifest)
                else:
                    label, task_class, config, inputs = provenance
                    # A produced dataset's ID is derived from its provenance and content:
                    # the same pipeline on the same inputs writes the same IDs (registry._ids).
                    dataset_id = derived_dataset_id(
                        dtype.name, self.registry.canonical_data_id(dtype.name, full_id), run,
                        task_class, config, inputs, manifest,
                    )
                    ref = self.registry.insert_dataset(
                        dtype.name, full_id, run, manifest, id=dataset_id
                    )
                    self.registry.record_provenance(ref.id, label, task_class, config, inputs)
                refs.append(ref)
            guard.confirm(self.registry)  # last: the gc lock held throughout
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
        with put_guard(self.blobs, self.cache) as guard:
            return self._put_stream(run, items, skip_same, report, guard)

    def _put_stream(
        self,
        run: str,
        items: Iterable[tuple[Any, str, Mapping[str, Any]]],
        skip_same: bool,
        report: WriteReport,
        guard: PutGuard,
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
            guard.confirm(self.registry)  # last: the gc lock held throughout
        return refs


_Provenance = tuple[str, str, dict[str, Any], list[uuid.UUID]]


def _provenance_parts(provenance: Mapping[str, Any]) -> _Provenance:
    """(task label, task class, config, input IDs) of a ``put_many`` provenance mapping.

    Raises
    ------
    PipelineError
        If the label or class is missing or not a string, the config is not a
        mapping, or an input is not a dataset ID.
    EncodingError
        If the config is not plain JSON.
    """
    label, task_class = provenance.get("task_label"), provenance.get("task_class")
    config = provenance.get("config", {})
    if not isinstance(label, str) or not isinstance(task_class, str):
        raise PipelineError(
            "provenance needs 'task_label' and 'task_class' strings, got "
            f"{label!r:.100} and {task_class!r:.100}"
        )
    if not isinstance(config, Mapping):
        raise PipelineError(f"provenance 'config' of {label!r} is not a mapping: {config!r:.100}")
    inputs = []
    for value in provenance.get("inputs", ()):
        try:
            inputs.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            raise PipelineError(
                f"provenance input {value!r:.100} of {label!r} is not a dataset ID (a UUID)"
            ) from None
    config_json(config, label)  # refused before anything is written
    return label, task_class, dict(config), inputs
