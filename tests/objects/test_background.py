"""Background: bilinear interpolation, sub-box consistency, subtract/add, dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compstore.errors import ObjectError
from compstore.objects import Background, Box2I, Exposure

BBOX = Box2I((10, 20), (64, 48))


def _background(ny=3, nx=4, seed=0):
    rng = np.random.default_rng(seed)
    return Background(rng.uniform(50, 150, (ny, nx)), BBOX)


def test_constant_grid_gives_constant_image():
    bg = Background(np.full((2, 3), 7.5), BBOX)
    image = bg.evaluate()
    assert image.dtype == np.float32 and image.shape == BBOX.shape
    assert np.all(image == np.float32(7.5))


def test_values_at_cell_centres_and_linear_between():
    # 2 x 2 cells over 64 x 48: cell centres at x = 10 + 15.5, 10 + 47.5; y = 20 + 11.5, 20 + 35.5.
    grid = np.array([[0.0, 32.0], [24.0, 56.0]])
    bg = Background(grid, BBOX)
    image = bg.evaluate().astype(np.float64)
    # A plane a*x + b*y is reproduced exactly between the centres ...
    ys, xs = np.mgrid[0:48, 0:64]
    inner = (xs >= 15.5) & (xs <= 47.5) & (ys >= 11.5) & (ys <= 35.5)
    expected = (xs - 15.5) * 1.0 + (ys - 11.5) * 1.0
    np.testing.assert_allclose(image[inner], expected[inner], atol=1e-5)
    # ... and held constant beyond them.
    assert image[0, 0] == 0.0 and image[-1, -1] == 56.0


@given(
    st.integers(0, 63), st.integers(0, 47), st.integers(1, 64), st.integers(1, 48),
    st.integers(1, 6), st.integers(1, 6),
)
@settings(max_examples=60)
def test_sub_box_matches_full_evaluation(x, y, w, h, ny, nx):
    bg = _background(ny, nx, seed=ny * 10 + nx)
    full = bg.evaluate()
    box = Box2I((BBOX.x0 + x, BBOX.y0 + y), (w, h)).intersection(BBOX)
    if box.is_empty:
        return
    part = bg.evaluate(box)
    assert np.array_equal(part, full[box.slices(origin=BBOX.min)])


def test_evaluate_outside_raises():
    with pytest.raises(ObjectError, match="not inside"):
        _background().evaluate(Box2I((0, 0), (5, 5)))


def test_subtract_and_add():
    image = np.full(BBOX.shape, 100.0, np.float32)
    exp = Exposure(image, xy0=BBOX.min, band="g")
    bg = _background()
    sub = bg.subtract_from(exp)
    assert sub is not exp and sub.background is bg
    assert sub.mask is exp.mask and sub.variance is exp.variance and sub.band == "g"
    np.testing.assert_allclose(sub.image, 100.0 - bg.evaluate(), rtol=1e-6)
    assert np.all(exp.image == 100.0)  # the input is untouched
    back = bg.add_to(sub)
    assert back.background is None
    np.testing.assert_allclose(back.image, 100.0, rtol=1e-6)
    # A cutout subtracts the matching part of the model.
    box = Box2I((20, 30), (10, 5))
    cut = bg.subtract_from(exp[box])
    np.testing.assert_allclose(cut.image, sub[box].image)


def test_validation():
    with pytest.raises(ObjectError):
        Background(np.ones(3), BBOX)
    with pytest.raises(ObjectError):
        Background(np.full((2, 2), np.inf), BBOX)
    with pytest.raises(ObjectError):
        Background(np.ones((2, 2)), Box2I((0, 0), (0, 4)))
    with pytest.raises(ObjectError, match="more cells"):
        Background(np.ones((2, 2)), Box2I((0, 0), (1, 4)))


def test_dict_and_value_semantics():
    bg = _background()
    d = bg.to_dict()
    assert json.loads(json.dumps(d)) == d
    back = Background.from_dict(json.loads(json.dumps(d)))
    assert back == bg and hash(back) == hash(bg) and back.to_dict() == d
    assert np.array_equal(back.grid, bg.grid)  # exact floats
    assert bg != _background(seed=1)
    negative_zero = Background(-np.zeros((1, 1)), BBOX)
    assert negative_zero.to_dict() == Background(np.zeros((1, 1)), BBOX).to_dict()
    assert not bg.grid.flags.writeable
