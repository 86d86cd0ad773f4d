"""A read-only zarr v3 hierarchy held as keys: metadata documents and chunks made on demand.

A `ZarrView` knows, for every key of the hierarchy it presents, how to make
that key's bytes: a group's or an array's ``zarr.json`` is made when the node
is added; an array's chunks are cut from the array's value, which is loaded
(once, by the function given) on the first chunk asked for. Chunks use the
plain ``bytes`` codec (no compression): the values are already decoded in
memory, and compressing them only for zarr to decompress them again would
cost time for nothing. A chunk that covers whole rows of a C-ordered array is
served as a view of its memory, without a copy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from ..errors import EncodingError

__all__ = ["CHUNK_BYTES", "ZarrView"]

#: Target bytes of one chunk. Large, because a whole read through xarray or
#: Dask costs a task per chunk; a 2048 x 2048 float32 image is one chunk.
CHUNK_BYTES = 16 * 1024**2

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-:")


def _check_name(path: str) -> None:
    """Node paths are made by compstore from component and column names; refuse odd ones.

    Raises
    ------
    EncodingError
        If a path segment is empty, ``.``/``..``, starts with ``__`` or holds a
        character outside letters, digits and ``_.-:``.
    """
    for part in path.split("/"):
        if part in ("", ".", "..") or part.startswith("__") or not set(part) <= _NAME_CHARS:
            raise EncodingError(
                f"{path!r} cannot name a zarr node (a segment is empty, '.', '..', starts with "
                "'__' or holds characters other than letters, digits and '_.-:'); "
                "rename the column or component to read it through zarr"
            )


def check_node_name(name: str) -> None:
    """Refuse a column or component name that cannot be one zarr node's name.

    Raises
    ------
    EncodingError
        If ``name`` holds ``/`` or is otherwise refused by the path check.
    """
    if "/" in name:
        raise EncodingError(
            f"{name!r} cannot name a zarr node: it holds '/', which zarr reads as a subgroup; "
            "rename the column or component to read it through zarr"
        )
    _check_name(name)


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON (numpy scalars and arrays to numbers and lists).

    Non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"`` (zarr v3's own spelling for fill values), since JSON has none.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _data_type(dtype: np.dtype[Any]) -> tuple[str, Any]:
    """zarr v3 data type name and fill value of a numpy dtype.

    Raises
    ------
    EncodingError
        For a dtype zarr v3's core types do not hold.
    """
    if dtype.kind == "b":
        return "bool", False
    if dtype.kind in "iuf":
        return dtype.name, 0
    if dtype.kind == "c":
        return dtype.name, [0.0, 0.0]
    if dtype.kind in "OUT":
        return "string", ""
    raise EncodingError(f"an array of dtype {dtype} cannot be presented through zarr")


class _ArrayNode:
    """One array of the view: its metadata, and its value loaded on first use."""

    def __init__(
        self,
        shape: tuple[int, ...],
        dtype: np.dtype[Any],
        load: Callable[[], np.ndarray],
    ) -> None:
        self.shape = shape
        self.dtype = dtype
        self.is_string = dtype.kind in "OUT"
        row = int(np.prod(shape[1:], dtype=np.int64)) * (dtype.itemsize if not self.is_string else 64)
        rows = max(1, CHUNK_BYTES // max(1, row))
        self.chunks = (min(rows, shape[0]) or 1, *[max(1, n) for n in shape[1:]]) if shape else ()
        self._load = load
        self._value: np.ndarray | None = None
        self._lock = threading.Lock()

    def value(self) -> np.ndarray:
        with self._lock:  # loaded once, even when zarr asks for several chunks at once
            if self._value is None:
                value = np.asarray(self._load())
                if value.shape != self.shape:
                    raise EncodingError(
                        f"an array presented with shape {self.shape} loaded with shape {value.shape}"
                    )
                if not self.is_string:
                    value = np.ascontiguousarray(value, dtype=self.dtype.newbyteorder("<"))
                self._value = value
            return self._value

    def chunk_keys(self, prefix: str) -> Iterator[str]:
        if not self.shape:
            yield f"{prefix}c"
            return
        counts = [math.ceil(n / c) for n, c in zip(self.shape, self.chunks, strict=True)]
        for index in np.ndindex(*counts):
            yield prefix + "c/" + "/".join(map(str, index))

    def chunk(self, index: tuple[int, ...]) -> bytes | memoryview | None:
        if len(index) != len(self.shape) or any(
            i < 0 or i * c >= n for i, c, n in zip(index, self.chunks, self.shape, strict=True)
        ):
            return None
        value = self.value()
        if not self.shape:
            part = value.reshape(1)
        else:
            start = index[0] * self.chunks[0]
            part = value[start : start + self.chunks[0]]
        if self.is_string:
            return _vlen_utf8(part, self.chunks)
        if part.shape != self.chunks:
            # An edge chunk: zarr's regular grid stores it padded to the full chunk shape.
            padded = np.zeros(self.chunks, dtype=part.dtype)
            padded[tuple(slice(0, n) for n in part.shape)] = part
            part = padded
        # Whole rows of a C-ordered array are one run of memory: served without a copy.
        return memoryview(part.reshape(-1).view(np.uint8))  # type: ignore[arg-type]

    def metadata(self, attributes: Mapping[str, Any], dimensions: Sequence[str]) -> dict[str, Any]:
        name, fill = _data_type(self.dtype)
        codec: dict[str, Any] = (
            {"name": "vlen-utf8"} if self.is_string
            else {"name": "bytes", "configuration": {"endian": "little"}}
        )
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": list(self.shape),
            "data_type": name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(self.chunks)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill,
            "codecs": [codec],
            "attributes": {**json_safe(attributes), "_ARRAY_DIMENSIONS": list(dimensions)},
            "dimension_names": list(dimensions),
        }


def _vlen_utf8(part: np.ndarray, chunks: tuple[int, ...]) -> bytes:
    """zarr's ``vlen-utf8`` encoding of a chunk: a count, then each value's length and bytes."""
    values = [str(v) for v in part.reshape(-1)]
    values += [""] * (int(np.prod(chunks)) - len(values))  # an edge chunk, padded
    out = [len(values).to_bytes(4, "little")]
    for v in values:
        data = v.encode("utf-8")
        out.append(len(data).to_bytes(4, "little"))
        out.append(data)
    return b"".join(out)


class ZarrView:
    """The keys and values of a read-only zarr v3 hierarchy.

    Build it with `add_group` and `add_array` (the root group first, at path
    ``""``); `add_bytes` places arbitrary bytes under a key, as writing a file
    under a folder would (zarr's conformance tests populate stores that way).
    `get` and `keys` then answer what `DatasetZarrStore` serves.
    """

    def __init__(self) -> None:
        self._documents: dict[str, bytes] = {}
        self._arrays: dict[str, _ArrayNode] = {}
        self._nodes: dict[str, dict[str, Any]] = {}  # path -> metadata (for consolidation)

    def add_group(self, path: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Add a group at ``path`` (``""`` is the root).

        Raises
        ------
        EncodingError
            If ``path`` cannot name a zarr node.
        """
        if path:
            _check_name(path)
        meta = {"zarr_format": 3, "node_type": "group", "attributes": json_safe(attributes or {})}
        self._nodes[path] = meta
        self._documents[_key(path, "zarr.json")] = orjson.dumps(meta)

    def add_array(
        self,
        path: str,
        shape: Sequence[int],
        dtype: Any,
        load: Callable[[], np.ndarray],
        *,
        dimensions: Sequence[str],
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """Add an array at ``path`` whose value ``load()`` returns (called at most once).

        Raises
        ------
        EncodingError
            If ``path`` cannot name a zarr node, or zarr v3 cannot hold ``dtype``.
        """
        _check_name(path)
        node = _ArrayNode(tuple(int(n) for n in shape), np.dtype(dtype), load)
        meta = node.metadata(attributes or {}, dimensions)
        self._arrays[path] = node
        self._nodes[path] = meta
        self._documents[_key(path, "zarr.json")] = orjson.dumps(meta)

    def add_bytes(self, key: str, data: bytes) -> None:
        """Serve ``data`` under ``key``, as a file under a folder would be."""
        self._documents[key] = bytes(data)

    def consolidate(self) -> None:
        """Inline every node's metadata in the root ``zarr.json`` (zarr-python's consolidated form).

        xarray then opens the group with one read and without a warning.
        """
        root = dict(self._nodes[""])
        root["consolidated_metadata"] = {
            "kind": "inline",
            "must_understand": False,
            "metadata": {path: meta for path, meta in self._nodes.items() if path},
        }
        self._documents["zarr.json"] = orjson.dumps(root)

    def keys(self) -> Iterator[str]:
        """Every key, metadata documents and chunks alike."""
        yield from self._documents
        for path, node in self._arrays.items():
            yield from node.chunk_keys(path + "/")

    def get(self, key: str) -> bytes | memoryview | None:
        """The bytes under ``key``, or None if there is no such key.

        Raises
        ------
        CompstoreError
            If loading the array a chunk belongs to fails (a damaged component:
            `CorruptBlobError`).
        """
        found = self._documents.get(key)
        if found is not None:
            return found
        node, index = self._chunk_of(key)
        return None if node is None else node.chunk(index)

    def is_chunk(self, key: str) -> bool:
        """Whether ``key`` names a chunk (whose bytes may need loading an array)."""
        return key not in self._documents and self._chunk_of(key)[0] is not None

    def _chunk_of(self, key: str) -> tuple[_ArrayNode | None, tuple[int, ...]]:
        path, sep, rest = key.rpartition("/c/")
        if not sep:
            path, sep, rest = key.rpartition("/")
            if rest != "c":
                return None, ()
            rest = ""
        node = self._arrays.get(path)
        if node is None:
            return None, ()
        parts = rest.split("/") if rest else []
        if not all(p.isdigit() and (p == "0" or not p.startswith("0")) for p in parts):
            return None, ()
        return node, tuple(int(p) for p in parts)


def _key(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name
