"""Derived dataset IDs: stable, order-free in the inputs, and sensitive to everything else."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from compstore.registry import derived_dataset_id

INPUTS = [uuid.UUID(int=1), uuid.UUID(int=2)]
ARGS = ("calexp", {"visit": 1, "detector": 2}, "out", "pkg.Task", {"factor": 1.5}, INPUTS)


def test_the_id_is_a_fixed_version_5_uuid():
    got = derived_dataset_id(*ARGS)
    assert got.version == 5
    # Pinned: the namespace and the name's spelling are part of the format.
    assert got == uuid.UUID("a29517d8-4cd9-5133-815a-59a8e8b2a206")


def test_input_order_and_value_spellings_do_not_matter():
    reordered = (*ARGS[:5], list(reversed(INPUTS)))
    assert derived_dataset_id(*reordered) == derived_dataset_id(*ARGS)
    numpy_ids = (ARGS[0], {"detector": np.int64(2), "visit": np.int32(1)}, *ARGS[2:])
    assert derived_dataset_id(*numpy_ids) == derived_dataset_id(*ARGS)
    as_strings = (*ARGS[:5], [str(i) for i in INPUTS])
    assert derived_dataset_id(*as_strings) == derived_dataset_id(*ARGS)


@pytest.mark.parametrize(
    "index, value",
    [
        (0, "src"),
        (1, {"visit": 1, "detector": 3}),
        (2, "other"),
        (3, "pkg.Other"),
        (4, {"factor": 2.0}),
        (5, INPUTS[:1]),
    ],
)
def test_every_part_changes_the_id(index, value):
    changed = list(ARGS)
    changed[index] = value
    assert derived_dataset_id(*changed) != derived_dataset_id(*ARGS)
