"""VisitInfo: a frozen dataclass with validated fields and Rubin defaults."""

from __future__ import annotations

import json

import pytest

from compstore.errors import ObjectError
from compstore.objects import VisitInfo


def _visit(**changes):
    values = dict(exposure_time=30.0, date_mjd=60310.25, boresight_ra=150.0, boresight_dec=-2.0,
                  rotation_angle=12.0, airmass=1.2)
    values.update(changes)
    return VisitInfo(**values)


def test_defaults_and_date():
    v = _visit()
    assert v.observatory == "Rubin"
    assert v.observatory_latitude == pytest.approx(-30.2446, abs=1e-3)
    assert v.observatory_elevation == pytest.approx(2663.0)
    assert v.date.mjd == 60310.25 and v.date.scale == "tai"


def test_dict_round_trip():
    v = _visit(exposure_time=15)
    d = v.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert isinstance(d["exposure_time"], float)
    assert VisitInfo.from_dict(d) == v and hash(VisitInfo.from_dict(d)) == hash(v)
    with pytest.raises(ObjectError, match="unknown"):
        VisitInfo.from_dict({**d, "visit": 3})
    d.pop("date_mjd")
    with pytest.raises(ObjectError):
        VisitInfo.from_dict(d)


@pytest.mark.parametrize(
    "changes",
    [
        {"exposure_time": -1.0},
        {"boresight_dec": 91.0},
        {"boresight_ra": 360.0},
        {"airmass": 0.0},
        {"date_mjd": float("nan")},
        {"observatory": 3},
        {"rotation_angle": "a"},
        {"exposure_time": True},
    ],
)
def test_validation(changes):
    with pytest.raises(ObjectError):
        _visit(**changes)


def test_keyword_only():
    with pytest.raises(TypeError):
        VisitInfo(30.0, 60000.0, 1.0, 2.0)  # type: ignore[misc]
