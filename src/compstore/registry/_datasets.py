"""Writing datasets: insert, conflicts, remove, (dis)associate with TAGGED collections."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import (
    CollectionTypeError,
    ConflictingDatasetError,
    DataIdError,
    DatasetNotFoundError,
)

from ._bulk import _bulk_inserter, _savepoint
from ._common import (
    _ANALYZE_AFTER,
    _CHUNK,
    _IN_CHUNK,
    _as_uuid,
    _chunks,
    _ids,
    _listing,
    _new_uuid,
)
from ._queries import _Queries
from ._schema import (
    dimension_column_name,
    refresh_statistics,
)
from ._type_info import _TypeInfo
from ._types import (
    CollectionType,
    DatasetRef,
)


class _Datasets(_Queries):
    """Registry methods that write datasets."""

    # -- datasets: writing -----------------------------------------------------------
    def insert_dataset(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        run: str,
        manifest: str,
        id: uuid.UUID | None = None,
    ) -> DatasetRef:
        """Record one dataset.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            Exactly the dataset type's dimensions. Integers may be given as numpy
            integers or digit strings.
        run : `str`
            An existing RUN collection.
        manifest : `str`
            The digest of the dataset's manifest.
        id : `uuid.UUID`, optional
            The dataset ID; a random (version 4) UUID by default.

        Returns
        -------
        ref : `DatasetRef`
            The new dataset.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID lacks or adds a dimension or has a wrongly typed value.
        MissingCollectionError
            If ``run`` does not exist.
        CollectionTypeError
            If ``run`` is not a RUN collection.
        ConflictingDatasetError
            If ``run`` holds a dataset of this type and data ID already, or ``id``
            is taken; the message names both datasets.
        """
        return self.insert_datasets(
            dataset_type, [data_id], run, [manifest], None if id is None else [id]
        )[0]

    def insert_datasets(
        self,
        dataset_type: str,
        data_ids: Sequence[Mapping[str, Any]],
        run: str,
        manifests: Sequence[str],
        ids: Sequence[uuid.UUID] | None = None,
    ) -> list[DatasetRef]:
        """Record many datasets of one type in one RUN, in one transaction.

        Rows go to the database with ``executemany`` in chunks, so a million
        rows take seconds, not minutes. Either every dataset is recorded or none.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_ids : sequence of mappings
            One full data ID per dataset.
        run : `str`
            An existing RUN collection.
        manifests : sequence of `str`
            One manifest digest per dataset.
        ids : sequence of `uuid.UUID`, optional
            One dataset ID per dataset; random UUIDs by default.

        Returns
        -------
        refs : `list` [`DatasetRef`]
            The new datasets, in input order.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If a data ID does not fit the dataset type, or the sequences differ
            in length.
        MissingCollectionError
            If ``run`` does not exist.
        CollectionTypeError
            If ``run`` is not a RUN collection.
        ConflictingDatasetError
            If a data ID or ID is in ``run`` already or twice in the input.
        """
        if len(manifests) != len(data_ids) or (ids is not None and len(ids) != len(data_ids)):
            raise DataIdError(
                f"insert_datasets got {len(data_ids)} data IDs, {len(manifests)} manifests"
                + ("" if ids is None else f" and {len(ids)} IDs")
                + ": give one of each per dataset"
            )
        refs: list[DatasetRef] = []
        with self._write() as conn:
            info = self._type(conn, dataset_type)
            run_id, run_type = self._collection(conn, run)
            if run_type is not CollectionType.RUN:
                raise CollectionTypeError(
                    f"collection {run!r} is {run_type.name}: datasets are inserted into "
                    "RUN collections only"
                )
            if not data_ids:
                return refs
            info = self._fresh_type_for(conn, info, data_ids[0])
            dims = info.dataset_type.dimensions
            info.dataset_type.check_data_id(data_ids[0])
            types = self._type_new_dimensions(conn, info, data_ids[0])
            sorted_dims = info.sorted_dims
            dim_set = set(dims)
            table = self._t["dataset"]
            names = ["id", "dataset_type_id", "run_id", "manifest", "data_id_key",
                     *(dimension_column_name(d) for d in sorted_dims)]
            execute_many, bind_id = _bulk_inserter(conn, table, names, self._insert_plans)
            type_id = info.id
            # On PostgreSQL the rows stream into COPY as they are made, so the
            # server inserts (and updates its indexes) while Python builds the next.
            streamed = conn.dialect.name == "postgresql"
            for start in range(0, len(data_ids), _CHUNK):
                keys: list[str] = []
                chunk_start = len(refs)

                def produce(start: int = start, keys: list[str] = keys) -> Iterator[tuple[Any, ...]]:
                    for offset, data_id in enumerate(data_ids[start : start + _CHUNK]):
                        index = start + offset
                        if data_id.keys() != dim_set:
                            info.dataset_type.check_data_id(data_id)
                        values = info.values(types, data_id)
                        manifest = manifests[index]
                        if not isinstance(manifest, str) or not 0 < len(manifest) <= 128:
                            raise DataIdError(
                                f"manifest digest {manifest!r:.200} is not a string of 1 to 128 "
                                "characters"
                            )
                        dataset_id = _new_uuid() if ids is None else _as_uuid(ids[index])
                        key = info.key(values)
                        keys.append(key)
                        refs.append(
                            DatasetRef(dataset_id, dataset_type, info.data_id(values), run, manifest)
                        )
                        yield (bind_id(dataset_id), type_id, run_id, manifest, key, *values)

                rows: Iterable[tuple[Any, ...]] = produce() if streamed else list(produce())
                try:
                    if isinstance(rows, list) and len(rows) == 1 and conn.dialect.name == "sqlite":
                        # One statement is atomic in SQLite: a failed INSERT leaves
                        # no row behind, so it needs no savepoint of its own.
                        execute_many(rows)
                    else:
                        with _savepoint(conn, self._local):
                            execute_many(rows)
                except sa.exc.IntegrityError:
                    for _ in rows:  # the rest of a streamed chunk, for the explanation
                        pass
                    raise self._conflict(
                        conn, info, run, run_id, list(zip(refs[chunk_start:], keys))
                    ) from None
            if len(data_ids) >= _ANALYZE_AFTER:
                refresh_statistics(conn, table)
        return refs

    def _conflict(
        self,
        conn: sa.Connection,
        info: _TypeInfo,
        run: str,
        run_id: int,
        rows: list[tuple[DatasetRef, str]],
    ) -> Exception:
        """Explain why inserting ``rows`` (ref, data ID key) violated a unique constraint."""
        table = self._t["dataset"]

        def new(ref: DatasetRef) -> str:
            return f"{ref.id} (manifest {ref.manifest})"

        def what(ref: DatasetRef) -> str:
            return f"{ref.dataset_type}@{ref.data_id!r}"

        by_key: dict[str, DatasetRef] = {}
        by_id: dict[uuid.UUID, DatasetRef] = {}
        for ref, key in rows:
            first = by_key.get(key) or by_id.get(ref.id)
            if first is not None:
                return ConflictingDatasetError(
                    f"the datasets to insert hold {what(first)} twice: "
                    f"{new(first)} and {new(ref)}"
                )
            by_key[key] = by_id[ref.id] = ref
        for chunk in _chunks(list(by_key), _IN_CHUNK):
            hit = conn.execute(
                sa.select(table.c.id, table.c.data_id_key).where(
                    table.c.dataset_type_id == info.id,
                    table.c.run_id == run_id,
                    table.c.data_id_key.in_(chunk),
                )
            ).first()
            if hit is not None:
                return ConflictingDatasetError(
                    f"RUN collection {run!r} already has {self._describe(conn, hit.id)}; "
                    f"cannot insert {new(by_key[hit.data_id_key])} with the same dataset "
                    "type and data ID"
                )
        for chunk in _chunks(list(by_id), _IN_CHUNK):
            taken = conn.execute(sa.select(table.c.id).where(table.c.id.in_(chunk))).scalar()
            if taken is not None:
                return ConflictingDatasetError(
                    f"dataset ID {taken} is taken by {self._describe(conn, taken)}; cannot "
                    f"insert {what(by_id[taken])} with it"
                )
        return ConflictingDatasetError(f"cannot insert into RUN collection {run!r}: conflict")

    def _describe(self, conn: sa.Connection, dataset_id: uuid.UUID) -> str:
        ref = self._get(conn, dataset_id)
        if ref is None:
            return str(dataset_id)
        return f"{ref.dataset_type}@{ref.data_id!r} {ref.id} in {ref.run!r} (manifest {ref.manifest})"

    def remove_datasets(self, refs: Iterable[DatasetRef | uuid.UUID]) -> int:
        """Forget datasets: their rows, tags and provenance. Absent ones are ignored.

        The manifests and components stay in the blob store; the layer above
        deletes those that :meth:`manifests` no longer lists.

        Returns
        -------
        removed : `int`
            How many datasets were removed.
        """
        ids = _ids(refs)
        removed = 0
        with self._write() as conn:
            self._refresh(conn)
            t = self._t
            for chunk in _chunks(ids, _IN_CHUNK):
                conn.execute(sa.delete(t["dataset_tag"]).where(t["dataset_tag"].c.dataset_id.in_(chunk)))
                conn.execute(
                    sa.delete(t["provenance_input"]).where(t["provenance_input"].c.output_id.in_(chunk))
                )
                conn.execute(sa.delete(t["provenance"]).where(t["provenance"].c.output_id.in_(chunk)))
                result = conn.execute(sa.delete(t["dataset"]).where(t["dataset"].c.id.in_(chunk)))
                removed += result.rowcount
        return removed

    def associate(self, tagged: str, refs: Iterable[DatasetRef | uuid.UUID]) -> None:
        """Add datasets to TAGGED collection ``tagged`` (already present ones are kept).

        Raises
        ------
        MissingCollectionError
            If ``tagged`` does not exist.
        CollectionTypeError
            If it is not TAGGED.
        DatasetNotFoundError
            If a dataset does not exist.
        ConflictingDatasetError
            If the collection holds another dataset of the same type and data ID.
        """
        ids = _ids(refs)
        with self._write() as conn:
            tag_id = self._tagged(conn, tagged)
            dataset, tag = self._t["dataset"], self._t["dataset_tag"]
            rows: dict[uuid.UUID, Any] = {}
            for chunk in _chunks(ids, _IN_CHUNK):
                for row in conn.execute(
                    sa.select(dataset.c.id, dataset.c.dataset_type_id, dataset.c.data_id_key)
                    .where(dataset.c.id.in_(chunk))
                ):
                    rows[row.id] = row
            missing = [i for i in ids if i not in rows]
            if missing:
                raise DatasetNotFoundError(f"no dataset with ID {_listing(missing)}")
            # What the collection holds already at these data IDs: one query per chunk,
            # not one per dataset.
            held: dict[tuple[int, str], uuid.UUID] = {}
            for chunk in _chunks(sorted({row.data_id_key for row in rows.values()}), _IN_CHUNK):
                for row in conn.execute(
                    sa.select(tag.c.dataset_type_id, tag.c.data_id_key, tag.c.dataset_id).where(
                        tag.c.collection_id == tag_id, tag.c.data_id_key.in_(chunk)
                    )
                ):
                    held[row.dataset_type_id, row.data_id_key] = row.dataset_id
            new: dict[tuple[int, str], uuid.UUID] = {}
            for dataset_id in ids:
                row = rows[dataset_id]
                key = (row.dataset_type_id, row.data_id_key)
                existing = held.get(key)
                other = existing if existing is not None else new.get(key)
                if other is not None and other != dataset_id:
                    raise ConflictingDatasetError(
                        f"TAGGED collection {tagged!r} already holds dataset "
                        f"{self._describe(conn, other)}; cannot also tag "
                        f"{self._describe(conn, dataset_id)} (same dataset type and data ID)"
                    )
                if existing is None:
                    new[key] = dataset_id
            if new:
                conn.execute(
                    tag.insert(),
                    [
                        {"collection_id": tag_id, "dataset_id": i, "dataset_type_id": t,
                         "data_id_key": k}
                        for (t, k), i in new.items()
                    ],
                )

    def disassociate(self, tagged: str, refs: Iterable[DatasetRef | uuid.UUID]) -> None:
        """Remove datasets from TAGGED collection ``tagged`` (absent ones are ignored).

        Raises
        ------
        MissingCollectionError
            If ``tagged`` does not exist.
        CollectionTypeError
            If it is not TAGGED.
        """
        ids = _ids(refs)
        with self._write() as conn:
            tag_id = self._tagged(conn, tagged)
            tag = self._t["dataset_tag"]
            for chunk in _chunks(ids, _IN_CHUNK):
                conn.execute(
                    sa.delete(tag).where(tag.c.collection_id == tag_id, tag.c.dataset_id.in_(chunk))
                )
