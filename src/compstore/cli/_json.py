"""``--json``: one function turning what a command computed into JSON text.

Every command's ``--json`` output goes through `to_json`, so a new command gets
JSON for free as long as its result is made of the kinds below; the schema of
each command is in docs/cli-and-python.md ("JSON output").
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import EncodingError
from ..pipeline import ExecutionReport

__all__ = ["to_json", "to_jsonable"]


def to_json(value: Any) -> str:
    """Return ``value`` as indented JSON text, the form ``--json`` prints.

    Parameters
    ----------
    value
        A command's result: dataset refs, dataset types, reports (anything with
        ``as_dict()``), small objects with ``to_dict()`` (Wcs, Calib, VisitInfo,
        Psf, Box2I, data IDs), dataclasses, mappings and sequences of those,
        strings, finite numbers, booleans and None.

    Returns
    -------
    str
        JSON, two-space indented, keys in the order the value gives them.

    Raises
    ------
    EncodingError
        If ``value`` holds something with no JSON form here (pixel arrays,
        whole exposures or catalogs: write those to FITS with ``export``).
    """
    try:
        plain = to_jsonable(value)
    except EncodingError as exc:
        raise EncodingError(
            f"cannot print a {type(value).__name__} as JSON: {exc}; --json prints listings, "
            "reports and small components (e.g. calexp.wcs, calexp.calib); write whole "
            "datasets and pixel arrays to FITS with `compstore export ... -o FILE`"
        ) from None
    return json.dumps(plain, indent=2, allow_nan=False)


def to_jsonable(value: Any) -> Any:
    """Return ``value`` as plain JSON data (dicts, lists, str, finite numbers, bool, None).

    Raises
    ------
    EncodingError
        If some part of ``value`` has no JSON form (see `to_json`).
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, np.generic) and not isinstance(value, np.void):
        item = value.item()
        return _finite(item) if isinstance(item, float) else to_jsonable(item)
    if isinstance(value, np.ndarray):
        raise EncodingError(f"a {value.shape} pixel or column array is not printed as JSON")
    if isinstance(value, ExecutionReport):
        return _execution_report(value)
    for method in ("as_dict", "to_dict"):
        convert = getattr(value, method, None)
        if callable(convert):
            return to_jsonable(convert())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_jsonable(v) for v in items]
    raise EncodingError(f"a {type(value).__name__} has no JSON form")


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity; null says "no value" without breaking parsers.
    return value if math.isfinite(value) else None


def _execution_report(report: ExecutionReport) -> dict[str, Any]:
    return {
        "run": report.graph.output_run,
        "dry_run": report.dry_run,
        "exit_status": report.exit_status,
        "succeeded": [to_jsonable(r) for r in report.succeeded],
        "failed": [to_jsonable(r) for r in report.failed],
        "skipped": [to_jsonable(r) for r in report.skipped],
        "pending": [to_jsonable(r) for r in report.pending],
        "task_seconds": dict(report.task_seconds),
    }
