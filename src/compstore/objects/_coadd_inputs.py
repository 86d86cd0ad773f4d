"""CoaddInputs: which datasets a coadd was built from, with their Wcs, Psf and Calib."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import overload

from compstore.errors import ObjectError

from ._calib import Calib
from ._frozen import Immutable, check_optional
from ._psf import Psf
from ._wcs import Wcs

__all__ = ["CoaddInput", "CoaddInputs"]


class CoaddInput(Immutable):
    """One input of a coadd: the dataset it came from, its Wcs, Psf, Calib and weight.

    Parameters
    ----------
    dataset_type : str
        The input's dataset type, e.g. ``"calexp"``.
    data_id : mapping of str to int or str
        The input's data ID, e.g. ``{"visit": 1, "detector": 2}``.
    wcs, psf, calib : optional
        The input's own objects (shared, not copied).
    weight : float
        Its weight in the stack (e.g. the number of pixels it contributed).

    Raises
    ------
    ObjectError
        If a value has the wrong type.
    """

    __slots__ = ("_dataset_type", "_data_id", "_wcs", "_psf", "_calib", "_weight", "__weakref__")
    # Slot types (set once with object.__setattr__ in __init__).
    _dataset_type: str
    _data_id: MappingProxyType[str, int | str]
    _wcs: Wcs | None
    _psf: Psf | None
    _calib: Calib | None
    _weight: float

    def __init__(
        self,
        dataset_type: str,
        data_id: Mapping[str, int | str],
        wcs: Wcs | None = None,
        psf: Psf | None = None,
        calib: Calib | None = None,
        weight: float = 1.0,
    ) -> None:
        if not isinstance(dataset_type, str) or not dataset_type:
            raise ObjectError(f"dataset_type must be a non-empty str, got {dataset_type!r}")
        items = dict(data_id)
        if not all(isinstance(k, str) and isinstance(v, (int, str)) for k, v in items.items()):
            raise ObjectError(f"data_id must map str to int or str, got {items!r}")
        check_optional(wcs, Wcs, "wcs")
        check_optional(psf, Psf, "psf")
        check_optional(calib, Calib, "calib")
        object.__setattr__(self, "_dataset_type", dataset_type)
        object.__setattr__(self, "_data_id", MappingProxyType(dict(sorted(items.items()))))
        object.__setattr__(self, "_wcs", wcs)
        object.__setattr__(self, "_psf", psf)
        object.__setattr__(self, "_calib", calib)
        object.__setattr__(self, "_weight", float(weight))

    dataset_type = property(lambda self: self._dataset_type, doc="The input's dataset type.")
    data_id = property(lambda self: self._data_id, doc="The input's data ID (read-only).")
    wcs = property(lambda self: self._wcs, doc="The input's Wcs.")
    psf = property(lambda self: self._psf, doc="The input's Psf.")
    calib = property(lambda self: self._calib, doc="The input's Calib.")
    weight = property(lambda self: self._weight, doc="The input's weight in the stack.")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoaddInput):
            return NotImplemented
        return (
            self._dataset_type == other._dataset_type
            and dict(self._data_id) == dict(other._data_id)
            and self._wcs == other._wcs
            and self._psf == other._psf
            and self._calib == other._calib
            and self._weight == other._weight
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CoaddInput({self._dataset_type!r}, {dict(self._data_id)!r}, weight={self._weight:g})"



class CoaddInputs(Immutable):
    """The inputs of a coadd, in stacking order (an immutable sequence of `CoaddInput`)."""

    __slots__ = ("_inputs", "__weakref__")
    _inputs: tuple[CoaddInput, ...]  # set once with object.__setattr__ in __init__

    def __init__(self, inputs: Iterable[CoaddInput] = ()) -> None:
        items = tuple(inputs)
        if not all(isinstance(i, CoaddInput) for i in items):
            raise ObjectError("CoaddInputs holds CoaddInput objects only")
        object.__setattr__(self, "_inputs", items)

    def __len__(self) -> int:
        return len(self._inputs)

    def __iter__(self) -> Iterator[CoaddInput]:
        return iter(self._inputs)

    @overload
    def __getitem__(self, index: int) -> CoaddInput: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[CoaddInput, ...]: ...
    def __getitem__(self, index: int | slice) -> CoaddInput | tuple[CoaddInput, ...]:
        return self._inputs[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CoaddInputs):
            return NotImplemented
        return self._inputs == other._inputs

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CoaddInputs({len(self._inputs)} inputs)"

    def __str__(self) -> str:
        """A table of the inputs: dataset type, data ID and weight, one per line."""
        lines = [f"CoaddInputs: {len(self._inputs)} input(s)"]
        if self._inputs:
            rows = [
                (i.dataset_type, " ".join(f"{k}={v}" for k, v in i.data_id.items()), f"{i.weight:g}")
                for i in self._inputs
            ]
            header = ("dataset_type", "data_id", "weight")
            widths = [max(len(r[c]) for r in [header, *rows]) for c in range(3)]
            for row in [header, *rows]:
                lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return "\n".join(lines)

