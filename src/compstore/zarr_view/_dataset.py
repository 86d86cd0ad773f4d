"""How a dataset becomes a zarr group: which values are child arrays, which are attributes.

Layout (``docs/concepts.md``, "Opening datasets with zarr, xarray and Dask"):

- An Exposure: arrays ``image``, ``mask`` (int32 bits; attribute ``planes``),
  ``variance`` with dimensions ``(y, x)``, and 1-D ``y`` and ``x`` holding parent
  pixel coordinates (``xy0`` added), so xarray shows them as coordinates. Every
  other component (``wcs``, ``calib``, ``psf``, ``visit_info``, ``background``,
  ``metadata``, ``coadd_inputs``) and ``xy0``, ``bbox``, ``band``, ``detector``
  are group attributes, each the value's canonical JSON (``to_dict()``).
- A SourceCatalog or Table: one array per column, dimension ``row``; attributes
  ``wcs``, ``calib``, ``meta`` and ``columns`` (the column order). A masked column
  ``c`` adds a boolean ``c.mask``; a Time column is its MJD (float64, attributes
  ``time_scale``); a Quantity its values (attribute ``unit``); strings are zarr
  ``string`` arrays.
- A VisitExposure (an aggregate of Exposures): one subgroup ``detector_<n>``
  per detector, laid out as an Exposure.
- Any other value: a numpy array is the one child array; a Mask the ``mask``
  array; anything else the attribute named after the component (or ``value``).

Every group's attribute ``compstore`` names what it presents. Values are those
`Butler.get` returns, read through the same checked path (a derived image is
``image_base - background``, a derived mask its base with the replaced
planes): the arrays of stored datasets are loaded on the first chunk asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from astropy.table import MaskedColumn, Table
from astropy.time import Time
from astropy.units import Quantity

from .. import objects
from ..errors import MissingCollectionError, MissingDatasetTypeError
from ._view import ZarrView, check_node_name

if TYPE_CHECKING:
    from ..butler import Butler
    from ..registry import DatasetRef

__all__ = ["dataset_view"]

_PIXELS = ("image", "mask", "variance")


def dataset_view(
    butler: Butler,
    name: str,
    data_id: Mapping[str, Any] | None,
    collections: Any,
    kwargs: Mapping[str, Any],
) -> tuple[ZarrView, str]:
    """The zarr view of one dataset (or component, or defined dataset type) and a description.

    Raises
    ------
    CompstoreError
        As `Butler.get` (not found, unknown component, damage, ...).
    """
    from ..butler import parse_dataset_name

    parsed = parse_dataset_name(name)
    view = ZarrView()
    try:
        ref = butler.find_dataset(name, data_id, collections=collections, **kwargs)
    except (MissingDatasetTypeError, MissingCollectionError):
        # (through several repositories, a type defined in one of them may come
        # back as a missing collection of another: see ChainedButler.get)
        if butler._definition(parsed.dataset_type) is None:
            raise
        # A defined type is assembled from its members at read time: there is no
        # manifest to plan from, so the value is read now and presented from memory.
        value = butler.get(name, data_id, collections=collections, **kwargs)
        info = {"dataset_type": parsed.dataset_type, "component": parsed.component,
                "data_id": {**(data_id or {}), **kwargs}, "defined": True}
        _present_value(view, "", value, info, parsed.component)
        view.consolidate()
        return view, f"{name} {info['data_id']}"
    manifest = butler._io.manifest(ref.manifest)
    info = {
        "dataset_type": ref.dataset_type, "component": parsed.component,
        "data_id": dict(ref.data_id), "run": ref.run, "id": str(ref.id),
        "storage_class": manifest.get("storage_class"),
    }
    planned = False
    if manifest.get("storage_class") == "Exposure" and parsed.component in (None, *_PIXELS):
        planned = _plan_exposure(view, butler, ref, manifest, info, parsed.component)
    elif manifest.get("storage_class") in ("SourceCatalog", "Table") and parsed.component in (
        None, "table",
    ):
        planned = _plan_catalog(view, butler, ref, manifest, info)
    if not planned:
        value = butler.get(ref, component=parsed.component)
        _present_value(view, "", value, info, parsed.component)
    view.consolidate()
    return view, f"{name} {dict(ref.data_id)} in run {ref.run!r}"


# -- stored datasets: planned from the manifest, arrays loaded on first use -------
def _plan_exposure(
    view: ZarrView, butler: Butler, ref: DatasetRef, manifest: Mapping[str, Any],
    info: dict[str, Any], component: str | None,
) -> bool:
    components = manifest["components"]
    attributes = manifest["attributes"]
    width, height = attributes["dimensions"]
    arrays: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in (component,) if component else _PIXELS:
        entry = components.get(name)
        if name == "image" and entry is None:
            entry = components.get("image_base")  # a derived image: same dtype, final values
        if entry is None:
            continue
        if name == "mask":
            nested = butler._io.manifest(entry["manifest"]) if "manifest" in entry else None
            if nested is None:
                return False  # a mask stored some other way: presented from its value
            arrays[name] = (np.int32, {"planes": nested["attributes"]["planes"]})
        elif "dtype" in entry:
            arrays[name] = (entry["dtype"], {})
        else:
            return False
    group: dict[str, Any] = {"compstore": info}
    if component is None:
        for name in components:
            if name not in (*_PIXELS, "image_base"):
                group[name] = _jsonable(butler.get(ref, component=name))
        x0, y0 = attributes["xy0"]
        group.update(
            xy0=[x0, y0], bbox={"x0": x0, "y0": y0, "width": width, "height": height},
            band=attributes.get("band"), detector=attributes.get("detector"),
        )
    view.add_group("", group)
    for name, (dtype, extra) in arrays.items():
        view.add_array(
            name, (height, width), dtype, _component_loader(butler, ref, name),
            dimensions=("y", "x"), attributes=extra,
        )
    if component is None:
        _add_pixel_coordinates(view, "", attributes["xy0"], (height, width))
    return True


def _component_loader(butler: Butler, ref: DatasetRef, name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        value = butler.get(ref, component=name)
        return value.array if isinstance(value, objects.Mask) else np.asarray(value)

    return load


def _plan_catalog(
    view: ZarrView, butler: Butler, ref: DatasetRef, manifest: Mapping[str, Any],
    info: dict[str, Any],
) -> bool:
    if manifest.get("storage_class") == "Table":
        table_manifest = manifest
        group: dict[str, Any] = {"compstore": info}
    else:
        entry = manifest["components"].get("table", {})
        if "manifest" not in entry:
            return False
        table_manifest = butler._io.manifest(entry["manifest"])
        group = {"compstore": info}
        if info["component"] is None:
            for name in ("wcs", "calib"):
                if name in manifest["components"]:
                    group[name] = _jsonable(butler.get(ref, component=name))
    described = table_manifest["attributes"]["columns"]
    length = table_manifest["attributes"]["length"]
    group["meta"] = table_manifest["attributes"].get("meta", {})
    group["columns"] = [c["name"] for c in described]
    view.add_group("", group)
    encoded = []
    for index, column in enumerate(described):
        check_node_name(column["name"])
        entry = table_manifest["components"].get(f"col:{index}", {})
        if column.get("encoding") or column.get("masked") or "dtype" not in entry:
            encoded.append(column["name"])
            continue
        shape = (length, *entry["shape"][1:])
        view.add_array(
            column["name"], shape, entry["dtype"], _column_loader(butler, ref, column["name"]),
            dimensions=_column_dimensions(column["name"], len(shape)),
            attributes=_column_attributes(column),
        )
    if encoded:
        # Strings, times, masked columns: their presented dtype is known once decoded,
        # so they are read now (together, one read), the numeric columns on first use.
        table = _as_table(butler.get(ref, parameters={"columns": encoded}))
        for name in encoded:
            _add_column(view, "", name, table[name])
    return True


def _column_loader(butler: Butler, ref: DatasetRef, name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        return np.asarray(_as_table(butler.get(ref, parameters={"columns": [name]}))[name])

    return load


# -- values in memory ---------------------------------------------------------------
def _present_value(
    view: ZarrView, path: str, value: Any, info: Mapping[str, Any] | None, component: str | None
) -> None:
    group: dict[str, Any] = {"compstore": info} if info is not None else {}
    if isinstance(value, objects.Exposure):
        _present_exposure(view, path, value, group)
    elif isinstance(value, objects.VisitExposure):
        group.update(visit_info=_jsonable(value.visit_info), metadata=_jsonable(value.metadata))
        view.add_group(path, group)
        for detector in value:
            _present_value(view, _join(path, f"detector_{detector}"), value[detector], None, None)
    elif isinstance(value, (objects.SourceCatalog, Table)):
        table = _as_table(value)
        if isinstance(value, objects.SourceCatalog):
            group.update(wcs=_jsonable(value.wcs), calib=_jsonable(value.calib))
        group.update(meta=_jsonable(dict(table.meta)), columns=list(table.colnames))
        view.add_group(path, group)
        for name in table.colnames:
            _add_column(view, path, name, table[name])
    elif isinstance(value, objects.Mask):
        view.add_group(path, group)
        _add_constant(view, _join(path, component or "mask"), value.array, ("y", "x"),
                      {"planes": dict(value.planes)})
    elif isinstance(value, np.ndarray):
        view.add_group(path, group)
        dims = ("y", "x") if value.ndim == 2 else tuple(f"dim_{i}" for i in range(value.ndim))
        _add_constant(view, _join(path, component or "data"), value, dims, {})
    else:
        group[component or "value"] = _jsonable(value)
        view.add_group(path, group)


def _present_exposure(view: ZarrView, path: str, exposure: Any, group: dict[str, Any]) -> None:
    for name in ("wcs", "calib", "psf", "visit_info", "background", "metadata", "coadd_inputs"):
        value = getattr(exposure, name, None)
        if value is not None and (name != "metadata" or value):
            group[name] = _jsonable(value)
    bbox = exposure.bbox
    group.update(
        xy0=list(exposure.xy0), bbox={"x0": bbox.x0, "y0": bbox.y0, "width": bbox.width,
                                      "height": bbox.height},
        band=exposure.band, detector=exposure.detector,
    )
    view.add_group(path, group)
    _add_constant(view, _join(path, "image"), exposure.image, ("y", "x"), {})
    if exposure.mask is not None:
        _add_constant(view, _join(path, "mask"), exposure.mask.array, ("y", "x"),
                      {"planes": dict(exposure.mask.planes)})
    if exposure.variance is not None:
        _add_constant(view, _join(path, "variance"), exposure.variance, ("y", "x"), {})
    _add_pixel_coordinates(view, path, exposure.xy0, exposure.image.shape)


def _add_pixel_coordinates(view: ZarrView, path: str, xy0: Any, shape: tuple[int, int]) -> None:
    x0, y0 = (int(v) for v in xy0)
    height, width = shape
    _add_constant(view, _join(path, "y"), np.arange(y0, y0 + height, dtype=np.int64), ("y",),
                  {"description": "parent pixel row (array row + xy0's y)"})
    _add_constant(view, _join(path, "x"), np.arange(x0, x0 + width, dtype=np.int64), ("x",),
                  {"description": "parent pixel column (array column + xy0's x)"})


def _add_column(view: ZarrView, path: str, name: str, column: Any) -> None:
    check_node_name(name)
    attributes: dict[str, Any] = {}
    values: np.ndarray[Any, Any]
    if isinstance(column, Time):
        values = np.asarray(column.mjd, dtype=np.float64)
        attributes.update(time_format="mjd", time_scale=column.scale)
    elif isinstance(column, Quantity):
        values = np.asarray(column.value)
        attributes["unit"] = column.unit.to_string()
    else:
        info = column.info
        attributes.update(unit=None if info.unit is None else str(info.unit),
                          description=info.description or None)
        values = np.asarray(np.ma.getdata(column))  # a plain array: Column decodes bytes
    mask = np.ma.getmaskarray(column) if isinstance(column, MaskedColumn) else None
    if values.dtype.kind == "S":
        # Bytes as text, one character per byte (latin-1 undoes exactly).
        text = [bytes(v).decode("latin-1") for v in values.reshape(-1)]
        values = np.array(text, dtype=object).reshape(values.shape)
    elif values.dtype.kind == "U":
        values = values.astype(object)
    dims = _column_dimensions(name, values.ndim)
    _add_constant(view, _join(path, name), values, dims, attributes)
    if mask is not None:
        _add_constant(view, _join(path, f"{name}.mask"), mask, dims,
                      {"description": f"true where {name} is masked"})


def _add_constant(
    view: ZarrView, path: str, value: np.ndarray, dims: tuple[str, ...], attributes: dict[str, Any]
) -> None:
    view.add_array(path, value.shape, value.dtype, lambda: value, dimensions=dims,
                   attributes=attributes)


def _column_dimensions(name: str, ndim: int) -> tuple[str, ...]:
    return ("row", *(f"{name}_dim_{i}" for i in range(1, ndim)))


def _column_attributes(column: Mapping[str, Any]) -> dict[str, Any]:
    return {"unit": column.get("unit"), "description": column.get("description")}


def _as_table(value: Any) -> Any:
    return value.table if isinstance(value, objects.SourceCatalog) else value


def _jsonable(value: Any) -> Any:
    """A small component's attribute value: its canonical JSON form."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, objects.CoaddInputs):
        return [
            {"dataset_type": item.dataset_type, "data_id": dict(item.data_id),
             "weight": item.weight,
             **{k: _jsonable(getattr(item, k)) for k in ("wcs", "psf", "calib")}}
            for item in value
        ]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _join(path: str, name: str) -> str:
    return f"{path}/{name}" if path else name
