"""Calib: photometric calibration from instrumental counts to nanojansky and AB magnitudes."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from numpy.typing import ArrayLike

from compstore.errors import ObjectError

__all__ = ["Calib"]

# d(mag)/d(ln flux): the factor that turns a relative flux error into a magnitude error.
_MAG_PER_LN = 2.5 / math.log(10.0)


# Units an instrumental flux may carry; their value is the number of counts.
_COUNT_UNITS = (u.dimensionless_unscaled, u.count, u.adu, u.electron, u.photon)


def _plain(values: ArrayLike) -> Any:
    """Float or float64 array of instrumental counts from a number, array or Quantity.

    Raises
    ------
    ObjectError
        If a Quantity has a unit that is not a count unit.
    """
    if isinstance(values, u.Quantity):
        if values.unit not in _COUNT_UNITS:
            raise ObjectError(f"an instrumental flux must be a count, got unit {values.unit}")
        values = values.value
    arr = np.asarray(values, dtype=float)
    return float(arr) if arr.ndim == 0 else arr


# No slots=True: on Python 3.11 a frozen slotted dataclass raises TypeError, not
# AttributeError, when a new attribute is set (CPython gh-90562). A plain instance
# also keeps __weakref__, which the identity cache needs.
@dataclass(frozen=True)
class Calib:
    """Photometric calibration: ``calibration`` nanojansky per instrumental count.

    Parameters
    ----------
    calibration : float
        nJy per count; must be finite and > 0.
    calibration_err : float
        1-sigma error of ``calibration`` in nJy per count; finite and >= 0.

    Raises
    ------
    ObjectError
        If either value is out of range or not a number.
    """

    calibration: float
    calibration_err: float = 0.0

    def __post_init__(self) -> None:
        try:
            cal, err = float(self.calibration), float(self.calibration_err)
        except (TypeError, ValueError) as exc:
            raise ObjectError(f"Calib values must be numbers: {exc}") from exc
        if not (math.isfinite(cal) and cal > 0):
            raise ObjectError(f"Calib calibration must be finite and > 0, got {cal}")
        if not (math.isfinite(err) and err >= 0):
            raise ObjectError(f"Calib calibration_err must be finite and >= 0, got {err}")
        # Store plain floats (+0.0 folds -0.0) so equal Calibs have equal dicts and hashes.
        object.__setattr__(self, "calibration", cal)
        object.__setattr__(self, "calibration_err", err + 0.0)

    @classmethod
    def from_zero_point(cls, zero_point: float, zero_point_err: float = 0.0) -> Calib:
        """The Calib whose AB magnitude zero point (mag of one count) is ``zero_point``.

        Raises
        ------
        ObjectError
            If the zero point gives a non-finite calibration.
        """
        cal = float((zero_point * u.ABmag).to_value(u.nJy))
        return cls(cal, cal * zero_point_err / _MAG_PER_LN)

    @property
    def zero_point(self) -> float:
        """AB magnitude of one instrumental count."""
        return float((self.calibration * u.nJy).to_value(u.ABmag))

    def instflux_to_nanojansky(
        self, instflux: ArrayLike, instflux_err: ArrayLike | None = None
    ) -> u.Quantity | tuple[u.Quantity, u.Quantity]:
        """Calibrated flux density of instrumental fluxes.

        Parameters
        ----------
        instflux : float or array_like
            Instrumental flux in counts.
        instflux_err : float or array_like, optional
            Its 1-sigma error; when given, the error is returned too, with the
            calibration error added in quadrature.

        Returns
        -------
        flux : astropy.units.Quantity
            In nJy.
        flux_err : astropy.units.Quantity
            In nJy; only when ``instflux_err`` is given.
        """
        counts = _plain(instflux)
        flux = counts * self.calibration * u.nJy
        if instflux_err is None:
            return flux
        err = _plain(instflux_err)
        flux_err = np.hypot(err * self.calibration, counts * self.calibration_err) * u.nJy
        return flux, flux_err

    def instflux_to_magnitude(
        self, instflux: ArrayLike, instflux_err: ArrayLike | None = None
    ) -> u.Quantity | tuple[u.Quantity, u.Quantity]:
        """AB magnitudes of instrumental fluxes (NaN where the flux is <= 0).

        Returns
        -------
        mag : astropy.units.Quantity
            In ``u.ABmag``.
        mag_err : astropy.units.Quantity
            In ``u.mag``; only when ``instflux_err`` is given.
        """
        result = self.instflux_to_nanojansky(instflux, instflux_err)
        flux, flux_err = result if isinstance(result, tuple) else (result, None)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            # log of a negative flux is NaN by design: faint sources scatter below zero.
            warnings.simplefilter("ignore", RuntimeWarning)
            value = flux.to_value(u.nJy)
            mag = np.where(value > 0, value, np.nan) * u.nJy
            mag = mag.to(u.ABmag)
            if flux_err is None:
                return mag
            mag_err = _MAG_PER_LN * flux_err.to_value(u.nJy) / np.abs(value)
        return mag, mag_err * u.mag

    def nanojansky_to_instflux(self, flux: ArrayLike) -> Any:
        """Instrumental counts of a flux density.

        Parameters
        ----------
        flux : astropy.units.Quantity or float or array_like
            Any spectral flux density (plain numbers are taken as nJy).

        Returns
        -------
        float or numpy.ndarray
            Counts.

        Raises
        ------
        ObjectError
            If ``flux`` has units that are not a spectral flux density.
        """
        values: Any = flux
        if isinstance(flux, u.Quantity):
            try:
                values = flux.to_value(u.nJy)
            except u.UnitConversionError:
                raise ObjectError(f"cannot convert {flux.unit} to nJy") from None
        arr = np.asarray(values, dtype=float)
        return (float(arr) if arr.ndim == 0 else arr) / self.calibration

    def magnitude_to_instflux(self, magnitude: ArrayLike) -> Any:
        """Instrumental counts of AB magnitudes.

        Parameters
        ----------
        magnitude : astropy.units.Quantity or float or array_like
            ``u.ABmag`` quantities, or plain numbers taken as AB magnitudes.

        Raises
        ------
        ObjectError
            If ``magnitude`` is a Quantity not convertible to AB magnitudes.
        """
        if isinstance(magnitude, u.Quantity):
            try:
                flux = magnitude.to(u.nJy)
            except u.UnitConversionError:
                raise ObjectError(f"cannot convert {magnitude.unit} to AB magnitudes") from None
        else:
            flux = (np.asarray(magnitude, dtype=float) * u.ABmag).to(u.nJy)
        return self.nanojansky_to_instflux(flux)

    def to_dict(self) -> dict[str, Any]:
        """Canonical plain-JSON form."""
        return {"calibration": self.calibration, "calibration_err": self.calibration_err}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calib:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        ObjectError
            If ``data`` lacks ``calibration`` or has invalid values.
        """
        try:
            return cls(data["calibration"], data.get("calibration_err", 0.0))
        except (KeyError, TypeError) as exc:
            raise ObjectError(f"not a Calib dict: {data!r}") from exc
