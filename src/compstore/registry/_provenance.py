"""Provenance: which inputs (and task) produced a dataset."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import (
    ConflictingDatasetError,
    DatasetNotFoundError,
)

from ._common import (
    _IN_CHUNK,
    _as_uuid,
    _chunks,
    config_json,
)
from ._connections import reconnecting
from ._datasets import _Datasets


class _Provenance(_Datasets):
    """Registry methods for provenance."""

    # -- provenance ------------------------------------------------------------------
    def record_provenance(
        self,
        output_id: uuid.UUID,
        task_label: str,
        task_class: str,
        config: Mapping[str, Any],
        input_ids: Sequence[uuid.UUID],
    ) -> None:
        """Record which task, configured how, made a dataset from which inputs.

        Recording the same provenance twice is a no-op.

        Parameters
        ----------
        output_id : `uuid.UUID`
            The dataset produced.
        task_label : `str`
            The task's label in its pipeline.
        task_class : `str`
            The task's class name (recorded, never imported).
        config : mapping
            The task configuration, stored as JSON.
        input_ids : sequence of `uuid.UUID`
            The datasets read, in order.

        Raises
        ------
        DatasetNotFoundError
            If ``output_id`` is not a dataset.
        EncodingError
            If ``config`` is not JSON-serialisable (or holds NaN).
        ConflictingDatasetError
            If different provenance is recorded already for ``output_id``.
        """
        output_id = _as_uuid(output_id)
        inputs = [_as_uuid(i) for i in input_ids]
        config_text = config_json(config, task_label)
        with self._write() as conn:
            self._refresh(conn)
            existing = self._get_provenance(conn, output_id)
            wanted = {
                "output_id": output_id,
                "task_label": task_label,
                "task_class": task_class,
                "config": json.loads(config_text),
                "input_ids": inputs,
            }
            if existing is not None:
                if existing != wanted:
                    raise ConflictingDatasetError(
                        f"dataset {output_id} has provenance already (task {existing['task_label']!r}, "
                        f"{existing['task_class']}); cannot record task {task_label!r} for it"
                    )
                return
            dataset = self._t["dataset"]
            exists = sa.select(dataset.c.id).where(dataset.c.id == output_id)
            if conn.execute(exists).first() is None:
                raise DatasetNotFoundError(f"no dataset with ID {output_id} to record provenance for")
            conn.execute(
                self._t["provenance"].insert().values(
                    output_id=output_id, task_label=task_label, task_class=task_class,
                    config=config_text,
                )
            )
            if inputs:
                conn.execute(
                    self._t["provenance_input"].insert(),
                    [{"output_id": output_id, "position": i, "input_id": v}
                     for i, v in enumerate(inputs)],
                )

    @reconnecting
    def get_provenances(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
        """Return the provenance of each of these datasets that has some, by dataset ID.

        As `get_provenance` for each, in two queries per 500 IDs.
        """
        wanted = sorted({_as_uuid(i) for i in ids})
        with self._read() as conn:
            self._refresh(conn)
            return self._provenances(conn, wanted)

    def _provenances(
        self, conn: sa.Connection, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, dict[str, Any]]:
        """The provenance of each of ``ids`` that has some (two queries per 500 IDs)."""
        prov, inputs = self._t["provenance"], self._t["provenance_input"]
        out: dict[uuid.UUID, dict[str, Any]] = {}
        for chunk in _chunks(ids, _IN_CHUNK):
            for row in conn.execute(sa.select(prov).where(prov.c.output_id.in_(chunk))):
                out[row.output_id] = {
                    "output_id": row.output_id,
                    "task_label": row.task_label,
                    "task_class": row.task_class,
                    "config": json.loads(row.config),
                    "input_ids": [],
                }
            found = [i for i in chunk if i in out]
            if not found:
                continue
            for output_id, input_id in conn.execute(
                sa.select(inputs.c.output_id, inputs.c.input_id)
                .where(inputs.c.output_id.in_(found))
                .order_by(inputs.c.output_id, inputs.c.position)
            ):
                out[output_id]["input_ids"].append(input_id)
        return out

    def _get_provenance(self, conn: sa.Connection, output_id: uuid.UUID) -> dict[str, Any] | None:
        return self._provenances(conn, [output_id]).get(output_id)

    @reconnecting
    def get_provenance(self, id: uuid.UUID) -> dict[str, Any] | None:
        """Return the provenance of a dataset, or `None` if none was recorded.

        Returns
        -------
        provenance : `dict` or `None`
            Keys ``output_id``, ``task_label``, ``task_class``, ``config``
            (a dict) and ``input_ids`` (a list of UUIDs, in order).
        """
        with self._read() as conn:
            self._refresh(conn)
            return self._get_provenance(conn, _as_uuid(id))
