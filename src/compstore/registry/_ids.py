"""Dataset IDs derived from what made a dataset, so a re-run makes the same ones.

A dataset put by hand gets a random (version 4) UUID. A dataset a pipeline
unit produced gets a version 5 UUID of everything that defines it: its dataset
type, run and data ID (as the registry stores it), its provenance (task class,
configuration and the IDs of its inputs) and its content (the digest of its
manifest). The same pipeline run on the same inputs into a run of the same
name therefore writes the same dataset IDs, whichever executor ran it or in
whatever order its units ran; and a dataset that records its inputs' IDs (a
coadd's inputs) gets the same manifest, byte for byte. (daf_butler's
``DatasetIdGenEnum.DATAID_TYPE_RUN`` is the same idea without the provenance
and the content.)

Two such datasets share an ID only if they share all of these: the same
bytes, made the same way, in the same place. A dataset removed and made
again with other bytes (changed code, same config) gets another ID, so a
provenance record or a reference naming the old one never reads the new one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ._common import _as_uuid, config_json

# The namespace of derived dataset IDs: uuid5(NAMESPACE_URL, "compstore:dataset").
# Changing it changes every derived ID: never do.
DATASET_ID_NAMESPACE = uuid.UUID("174d0953-0086-5b69-8d4f-7be2c8cc4358")


def derived_dataset_id(
    dataset_type: str,
    data_id: Mapping[str, Any],
    run: str,
    task_class: str,
    config: Mapping[str, Any],
    input_ids: Sequence[uuid.UUID | str],
    manifest: str,
) -> uuid.UUID:
    """The version 5 UUID of a dataset a task produced.

    Parameters
    ----------
    dataset_type, data_id, run
        What and where the dataset is. Pass the data ID as the registry stores
        it (`Registry.canonical_data_id`): values of integer dimensions as
        integers, of string dimensions as strings.
    task_class, config, input_ids
        Its provenance: the task's class path, its configuration (JSON-able)
        and the IDs of the datasets it read (order does not matter; UUIDs or
        their strings, in any spelling).
    manifest
        The digest of its manifest: its content.

    Returns
    -------
    id : `uuid.UUID`
        The same for the same arguments, on every host and Python version.

    Raises
    ------
    EncodingError
        If ``config`` is not plain JSON (or holds NaN).
    DataIdError
        If an input ID is not a UUID.
    """
    name = json.dumps(
        {
            "dataset_type": dataset_type,
            "data_id": {str(k): v if isinstance(v, str) else int(v) for k, v in data_id.items()},
            "run": run,
            "task_class": task_class,
            "config": json.loads(config_json(config, task_class)),
            "inputs": sorted(str(_as_uuid(i)) for i in input_ids),
            "manifest": manifest,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return uuid.uuid5(DATASET_ID_NAMESPACE, name)
