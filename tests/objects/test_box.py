"""Box2I: construction, containment, intersection algebra, slices, canonical dict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from compstore.errors import ObjectError
from compstore.objects import Box2I

coords = st.integers(-50, 50)
sizes = st.integers(0, 40)
boxes = st.builds(lambda x, y, w, h: Box2I((x, y), (w, h)), coords, coords, sizes, sizes)


def test_properties():
    box = Box2I((3, 4), (10, 5))
    assert (box.x0, box.y0, box.width, box.height) == (3, 4, 10, 5)
    assert box.min == (3, 4) and box.dimensions == (10, 5)
    assert (box.end_x, box.end_y) == (13, 9)
    assert box.area == 50 and not box.is_empty
    assert box.shape == (5, 10)
    assert Box2I((0, 0), (0, 3)).is_empty


@pytest.mark.parametrize(
    "bad", [((0, 0), (-1, 2)), ((0.5, 0), (1, 1)), ((0,), (1, 1)), ("ab", (1, 1))]
)
def test_invalid(bad):
    with pytest.raises(ObjectError):
        Box2I(*bad)


def test_contains_points_and_boxes():
    box = Box2I((0, 0), (4, 3))
    assert box.contains((0, 0)) and box.contains((3, 2))
    assert not box.contains((4, 0)) and not box.contains((0, 3)) and not box.contains((-1, 0))
    assert box.contains(Box2I((1, 1), (3, 2)))
    assert not box.contains(Box2I((1, 1), (4, 2)))
    assert (2, 2) in box


@given(boxes, boxes)
def test_intersection_is_contained_in_both(a, b):
    c = a.intersection(b)
    assert a.contains(c) and b.contains(c)
    assert c == b.intersection(a) or (c.is_empty and b.intersection(a).is_empty)
    # Every pixel of a that is also in b is in c, counted by area.
    mask_a = np.zeros((200, 200), bool)
    mask_b = np.zeros((200, 200), bool)
    mask_a[a.slices(origin=(-100, -100))] = True
    mask_b[b.slices(origin=(-100, -100))] = True
    assert int((mask_a & mask_b).sum()) == c.area
    assert a.overlaps(b) == (c.area > 0)


@given(boxes, st.integers(-5, 5), st.integers(-5, 5))
def test_slices_shape(box, ox, oy):
    origin = (box.x0 - abs(ox), box.y0 - abs(oy))
    arr = np.zeros((box.height + 20, box.width + 20))
    sy, sx = box.slices(origin=origin)
    assert arr[sy, sx].shape == box.shape
    assert (sy.start, sx.start) == (abs(oy), abs(ox))


def test_slices_refuses_box_before_origin():
    with pytest.raises(ObjectError, match="origin"):
        Box2I((0, 0), (2, 2)).slices(origin=(1, 0))


@given(boxes, st.integers(-10, 10), st.integers(-10, 10))
def test_shifted_and_dict_round_trip(box, dx, dy):
    moved = box.shifted(dx, dy)
    assert moved.min == (box.x0 + dx, box.y0 + dy) and moved.dimensions == box.dimensions
    d = box.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert Box2I.from_dict(d) == box


def test_from_dict_rejects_garbage():
    with pytest.raises(ObjectError):
        Box2I.from_dict({"min": [0, 0]})


def test_from_corners():
    assert Box2I.from_corners((1, 2), (4, 6)) == Box2I((1, 2), (3, 4))
