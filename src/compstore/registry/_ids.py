"""Dataset IDs derived from what made a dataset, so a re-run makes the same ones.

A dataset put by hand gets a random (version 4) UUID. A dataset a pipeline
unit produced gets a version 5 UUID of everything that defines it: its dataset
type, run and data ID, and its provenance (task class, configuration and the
IDs of its inputs). The same pipeline run on the same inputs into a run of the
same name therefore writes the same dataset IDs, whichever executor ran it or
in whatever order its units ran; and a dataset that records its inputs' IDs
(a coadd's ``coadd_inputs``) gets the same manifest, byte for byte.
(daf_butler's ``DatasetIdGenEnum.DATAID_TYPE_RUN`` is the same idea without
the provenance.)

Two such datasets share an ID only if they share all of these, so they are
the same dataset made by the same code from the same inputs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

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
) -> uuid.UUID:
    """The version 5 UUID of a dataset a task produced.

    Parameters
    ----------
    dataset_type, data_id, run
        What and where the dataset is. Data ID values are integers or strings.
    task_class, config, input_ids
        Its provenance: the task's class path, its configuration (JSON-able)
        and the IDs of the datasets it read (order does not matter).

    Returns
    -------
    id : `uuid.UUID`
        The same for the same arguments, on every host and Python version.
    """
    name = json.dumps(
        {
            "dataset_type": dataset_type,
            "data_id": {str(k): _plain(v) for k, v in data_id.items()},
            "run": run,
            "task_class": task_class,
            "config": config,
            "inputs": sorted(str(i) for i in input_ids),
        },
        sort_keys=True,
        separators=(",", ":"),
        allow_nan=False,
    )
    return uuid.uuid5(DATASET_ID_NAMESPACE, name)


def _plain(value: Any) -> int | str:
    # Data ID values are int (numpy integers included) or str: one spelling each.
    if isinstance(value, str):
        return value
    return int(value)
