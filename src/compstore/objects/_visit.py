"""VisitInfo: what the telescope did during one visit, shared by all its detectors."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from astropy.time import Time

from compstore.errors import ObjectError

__all__ = ["VisitInfo"]

# Rubin Observatory on Cerro Pachón (astropy's EarthLocation.of_site("Rubin Observatory")).
RUBIN_LONGITUDE = -70.749417
RUBIN_LATITUDE = -30.244639
RUBIN_ELEVATION = 2663.0


# No slots=True: on Python 3.11 a frozen slotted dataclass raises TypeError, not
# AttributeError, when a new attribute is set (CPython gh-90562). A plain instance
# also keeps __weakref__, which the identity cache needs.
@dataclass(frozen=True, kw_only=True)
class VisitInfo:
    """Observation metadata of one visit.

    Parameters
    ----------
    exposure_time : float
        Open-shutter time in seconds, >= 0.
    date_mjd : float
        Mid-exposure time as a TAI Modified Julian Date.
    boresight_ra, boresight_dec : float
        Telescope pointing in degrees (ICRS); RA in [0, 360), Dec in [-90, 90].
    rotation_angle : float
        Sky position angle of the focal plane, degrees.
    airmass : float
        Airmass at mid-exposure, > 0 (1.0, the zenith, by default).
    observatory : str
        Observatory name.
    observatory_longitude, observatory_latitude : float
        Degrees (east positive); Rubin's by default.
    observatory_elevation : float
        Metres above sea level.

    Raises
    ------
    ObjectError
        If a value is not a finite number or is out of range.
    """

    exposure_time: float
    date_mjd: float
    boresight_ra: float
    boresight_dec: float
    rotation_angle: float = 0.0
    airmass: float = 1.0
    observatory: str = "Rubin"
    observatory_longitude: float = RUBIN_LONGITUDE
    observatory_latitude: float = RUBIN_LATITUDE
    observatory_elevation: float = RUBIN_ELEVATION

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.name == "observatory":
                if not isinstance(value, str):
                    raise ObjectError(f"VisitInfo observatory must be a str, got {value!r}")
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ObjectError(
                    f"VisitInfo {field.name} must be a number, got {value!r}"
                ) from None
            if not math.isfinite(number) or isinstance(value, bool):
                raise ObjectError(f"VisitInfo {field.name} must be a finite number, got {value!r}")
            # Plain floats (-0.0 folded) so equal VisitInfos have equal dicts.
            object.__setattr__(self, field.name, number + 0.0)
        checks = (
            (self.exposure_time >= 0, "exposure_time must be >= 0"),
            (0.0 <= self.boresight_ra < 360.0, "boresight_ra must be in [0, 360)"),
            (-90.0 <= self.boresight_dec <= 90.0, "boresight_dec must be in [-90, 90]"),
            (self.airmass > 0, "airmass must be > 0"),
            (-90.0 <= self.observatory_latitude <= 90.0, "observatory_latitude out of range"),
        )
        for ok, message in checks:
            if not ok:
                raise ObjectError(f"VisitInfo {message}: {self!r}")

    @property
    def date(self) -> Time:
        """Mid-exposure time as an astropy Time (TAI)."""
        return Time(self.date_mjd, format="mjd", scale="tai")

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form: every field by name."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VisitInfo:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ObjectError
            If a required field is missing, a key is unknown or a value is invalid.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ObjectError(f"unknown VisitInfo field(s) {unknown}; known: {sorted(names)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ObjectError(f"not a VisitInfo dict: {exc}") from exc
