"""Derived dataset IDs: stable, indifferent to spellings, and sensitive to everything else."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from compstore import Butler
from compstore.errors import EncodingError, PipelineError
from compstore.registry import derived_dataset_id

INPUTS = [uuid.UUID(int=1), uuid.UUID(int=2)]
ARGS = ("calexp", {"visit": 1, "detector": 2}, "out", "pkg.Task", {"factor": 1.5}, INPUTS, "abc123")


def test_the_id_is_a_fixed_version_5_uuid():
    got = derived_dataset_id(*ARGS)
    assert got.version == 5
    # Pinned: the namespace and the name's spelling are part of the format.
    assert got == uuid.UUID("48c79604-c671-52bc-9f32-1a7d0d5c6058")


def test_input_order_and_value_spellings_do_not_matter():
    reordered = (*ARGS[:5], list(reversed(INPUTS)), ARGS[6])
    assert derived_dataset_id(*reordered) == derived_dataset_id(*ARGS)
    numpy_ids = (ARGS[0], {"detector": np.int64(2), "visit": np.int32(1)}, *ARGS[2:])
    assert derived_dataset_id(*numpy_ids) == derived_dataset_id(*ARGS)
    for spelling in (str, lambda u: str(u).upper(), lambda u: u.hex):
        as_strings = (*ARGS[:5], [spelling(i) for i in INPUTS], ARGS[6])
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
        (6, "def456"),
    ],
)
def test_every_part_changes_the_id(index, value):
    changed = list(ARGS)
    changed[index] = value
    assert derived_dataset_id(*changed) != derived_dataset_id(*ARGS)


def test_a_config_that_is_not_json_is_an_encoding_error():
    with pytest.raises(EncodingError, match="'pkg.Task' is not plain JSON"):
        derived_dataset_id(*ARGS[:4], {"x": {1, 2}}, INPUTS, "m")
    with pytest.raises(EncodingError):
        derived_dataset_id(*ARGS[:4], {"x": float("nan")}, INPUTS, "m")


PROVENANCE = {"task_label": "t", "task_class": "pkg.T", "config": {"k": 1}, "inputs": []}


@pytest.fixture
def butler(tmp_path):
    Butler.create(tmp_path / "repo", fsync=False)
    butler = Butler(tmp_path / "repo", run="out", fsync=False)
    butler.register_dataset_type("x", ("visit",), "Array")
    return butler


@pytest.mark.parametrize(
    "provenance, error",
    [
        ({**PROVENANCE, "config": {"k": {1, 2}}}, EncodingError),
        ({**PROVENANCE, "config": {"k": float("nan")}}, EncodingError),
        ({k: v for k, v in PROVENANCE.items() if k != "task_class"}, PipelineError),
        ({**PROVENANCE, "inputs": ["not-a-uuid"]}, PipelineError),
        ({**PROVENANCE, "config": [1, 2]}, PipelineError),
    ],
)
def test_bad_provenance_is_refused_before_anything_is_written(butler, provenance, error):
    before = butler.stats().components
    with pytest.raises(error):
        butler.put_many([(np.arange(5), "x", {"visit": 1})], provenance=provenance)
    assert butler.registry.count_datasets() == 0
    assert butler.stats().components == before


def test_a_data_id_spelled_another_way_gets_the_same_id(tmp_path):
    ids = []
    for n, visit in enumerate((7, "7", np.int64(7))):
        Butler.create(tmp_path / f"r{n}", fsync=False)
        butler = Butler(tmp_path / f"r{n}", run="out", fsync=False)
        butler.register_dataset_type("x", ("visit",), "Array")
        (ref,) = butler.put_many([(np.arange(5), "x", {"visit": visit})], provenance=PROVENANCE)
        ids.append(ref.id)
    assert ids[0] == ids[1] == ids[2]


def test_remade_with_other_content_is_another_dataset(butler):
    """Removed, then made again by changed code with the same config: a new ID.

    What recorded the first one as an input (a coadd's provenance) must not
    read the second.
    """
    (first,) = butler.put_many([(np.arange(5), "x", {"visit": 1})], provenance=PROVENANCE)
    (again,) = butler.put_many([(np.arange(5), "x", {"visit": 2})], provenance=PROVENANCE)
    butler.remove(first)
    (remade,) = butler.put_many([(np.arange(5) * 2, "x", {"visit": 1})], provenance=PROVENANCE)
    assert remade.id != first.id
    assert butler.registry.get_dataset(first.id) is None
    # The same bytes made the same way again: the same ID as before its removal.
    butler.remove(again)
    (same,) = butler.put_many([(np.arange(5), "x", {"visit": 2})], provenance=PROVENANCE)
    assert same.id == again.id
