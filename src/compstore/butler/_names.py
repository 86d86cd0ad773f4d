"""Dataset names: ``TYPE[.COMPONENT][:STAGE]`` parsed into their parts."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidNameError

__all__ = ["DatasetName", "parse_dataset_name"]

_NAME_RE = re.compile(
    r"(?P<type>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:\.(?P<component>[A-Za-z_][A-Za-z0-9_]*))?"
    r"(?::(?P<stage>[A-Za-z0-9_./-]+))?"
)


@dataclass(frozen=True)
class DatasetName:
    """A parsed ``TYPE[.COMPONENT][:STAGE]`` name (``calexp.wcs:jointcal``)."""

    dataset_type: str
    component: str | None = None
    stage: str | None = None


def parse_dataset_name(name: str) -> DatasetName:
    """Split ``TYPE[.COMPONENT][:STAGE]`` into its parts.

    Raises
    ------
    InvalidNameError
        If ``name`` does not have that shape.
    """
    match = _NAME_RE.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise InvalidNameError(
            f"invalid dataset name {name!r}: expected TYPE, TYPE.COMPONENT, TYPE:STAGE or "
            "TYPE.COMPONENT:STAGE, e.g. 'calexp', 'calexp.wcs', 'calexp.wcs:jointcal'"
        )
    return DatasetName(match["type"], match["component"], match["stage"])
