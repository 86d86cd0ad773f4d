"""Constants and small helpers the registry's modules share."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from compstore.errors import (
    DataIdError,
    EncodingError,
)

from ._types import (
    DatasetRef,
)

# Rows per executemany call in bulk inserts: large enough to amortise the
# statement overhead, small enough to keep memory flat for a million rows.
_CHUNK = 20_000
# Values per IN (...) list: SQLite's default limit on bound parameters is 32766.
_IN_CHUNK = 500
# Bulk inserts at least this large may refresh the planner's statistics.
_ANALYZE_AFTER = 10_000
# How many candidates/names an error message lists before "and N more".
_LIST_LIMIT = 20
# The registry_meta key of the catalog version: bumped by every transaction that
# changes dataset types, dimensions or collections, so that every process can
# tell whether the ones it has cached are still what the database holds.
_CATALOG_KEY = "catalog_version"
# Nothing seen yet: differs from every stored value, None (an older repository) included.
_UNSEEN = object()

CollectionArg = str | Sequence[str]


def _listing(names: Iterable[object], separator: str = ", ") -> str:
    items = [str(n) for n in names]
    if not items:
        return "(none)"
    shown = separator.join(items[:_LIST_LIMIT])
    return shown + (f" and {len(items) - _LIST_LIMIT} more" if len(items) > _LIST_LIMIT else "")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]



_NO_FAST_PATH = object()


def _new_uuid() -> uuid.UUID:
    # uuid4() but without its per-call overhead: the same 122 random bits.
    return uuid.UUID(bytes=os.urandom(16), version=4)


def config_json(config: Any, task: str) -> str:
    """A task configuration as canonical JSON text (sorted keys), as provenance stores it.

    Raises
    ------
    EncodingError
        If ``config`` is not plain JSON (or holds NaN), naming ``task``.
    """
    try:
        return json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EncodingError(f"task config of {task!r} is not plain JSON: {exc}") from None


def _as_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise DataIdError(f"{value!r} is not a dataset ID (a UUID)")


def _ids(refs: Iterable[DatasetRef | uuid.UUID]) -> list[uuid.UUID]:
    if isinstance(refs, (DatasetRef, uuid.UUID)):
        refs = [refs]
    return [r.id if isinstance(r, DatasetRef) else _as_uuid(r) for r in refs]
