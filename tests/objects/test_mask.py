"""Mask: named planes, in-place edits, with_plane copies, errors naming the known planes."""

from __future__ import annotations

import numpy as np
import pytest

from compstore.errors import ObjectError
from compstore.objects import DEFAULT_MASK_PLANES, Mask


def test_defaults_and_bitmask():
    mask = Mask.zeros((3, 4))
    assert mask.array.dtype == np.int32 and mask.shape == (3, 4)
    assert list(mask.planes) == ["BAD", "SAT", "INTRP", "CR", "EDGE", "DETECTED", "NO_DATA"]
    assert dict(mask.planes) == dict(DEFAULT_MASK_PLANES)
    assert mask.bitmask("BAD") == 1 and mask.bitmask("DETECTED") == 1 << 5


def test_set_get_clear_plane():
    mask = Mask.zeros((3, 4))
    where = np.zeros((3, 4), bool)
    where[1, 2] = True
    mask.set_plane("SAT", where)
    mask.set_plane("CR")
    assert mask.plane("SAT").dtype == bool
    assert np.array_equal(mask.plane("SAT"), where)
    assert mask.plane("CR").all()
    assert mask.array[1, 2] == mask.bitmask("SAT") | mask.bitmask("CR")
    mask.clear_plane("CR")
    assert not mask.plane("CR").any() and np.array_equal(mask.plane("SAT"), where)
    mask.clear_plane("SAT", where)
    assert not mask.array.any()


def test_unknown_plane_names_plane_and_known_ones():
    mask = Mask.zeros((2, 2))
    with pytest.raises(ObjectError, match=r"'NOPE'.*BAD.*DETECTED"):
        mask.plane("NOPE")
    with pytest.raises(ObjectError, match="NOPE"):
        mask.set_plane("NOPE")


def test_add_plane_and_planes_read_only():
    mask = Mask.zeros((2, 2))
    bit = mask.add_plane("STREAK")
    assert bit == 7 and mask.planes["STREAK"] == 7
    assert mask.add_plane("STREAK") == 7  # idempotent
    with pytest.raises(TypeError):
        mask.planes["X"] = 3  # type: ignore[index]
    for i in range(8, 32):
        mask.add_plane(f"P{i}")
    assert mask.bitmask("P31") == np.iinfo(np.int32).min  # the sign bit
    mask.set_plane("P31")
    assert mask.plane("P31").all()
    with pytest.raises(ObjectError, match="all 32 bits"):
        mask.add_plane("ONE_TOO_MANY")


def test_with_plane_returns_new_mask_and_copies():
    mask = Mask.zeros((2, 3))
    mask.set_plane("BAD")
    values = np.array([[True, False, True], [False, False, True]])
    new = mask.with_plane("DETECTED", values)
    assert new is not mask and not np.shares_memory(new.array, mask.array)
    assert np.array_equal(new.plane("DETECTED"), values) and new.plane("BAD").all()
    assert not mask.plane("DETECTED").any()
    added = mask.with_plane("FOOTPRINT", values)
    assert "FOOTPRINT" in added.planes and "FOOTPRINT" not in mask.planes
    # Replacing a plane clears the bits that are now False.
    assert not new.with_plane("DETECTED", ~values).plane("DETECTED")[values].any()
    with pytest.raises(ObjectError, match="shape"):
        mask.with_plane("BAD", np.zeros((3, 3), bool))


def test_copy_and_equality():
    mask = Mask.zeros((2, 2))
    mask.set_plane("EDGE")
    twin = mask.copy()
    assert twin == mask and twin.array is not mask.array
    twin.clear_plane("EDGE")
    assert twin != mask
    other_planes = Mask(mask.array, {"EDGE": 4})
    assert other_planes != mask


def test_conversions_and_errors():
    assert Mask(np.zeros((2, 2), np.uint8)).array.dtype == np.int32
    arr = np.zeros((2, 2), np.int32)
    assert Mask(arr).array is arr  # int32 input is shared, not copied
    assert Mask(np.full((1, 1), 0xFFFFFFFF, np.uint32)).array[0, 0] == -1
    with pytest.raises(ObjectError, match="2-D"):
        Mask(np.zeros(3, np.int32))
    with pytest.raises(ObjectError, match="integers"):
        Mask(np.zeros((2, 2)))
    with pytest.raises(ObjectError, match="int32"):
        Mask(np.full((1, 1), 2**40, np.int64))
    with pytest.raises(ObjectError, match="share a bit"):
        Mask(arr, {"A": 1, "B": 1})
    with pytest.raises(ObjectError, match=r"0\.\.31"):
        Mask(arr, {"A": 32})


def test_read_only_array_refuses_in_place_edit():
    arr = np.zeros((2, 2), np.int32)
    arr.flags.writeable = False
    mask = Mask(arr)
    with pytest.raises(ObjectError, match="read-only"):
        mask.set_plane("BAD")
    assert mask.with_plane("BAD", np.ones((2, 2), bool)).plane("BAD").all()
