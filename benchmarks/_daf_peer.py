"""lsst-daf-butler configured at its best for compstore's objects: the benchmark's peer.

A FileDatastore with composite disassembly switched on for two custom storage
classes, ``CsExposure`` and ``CsSourceCatalog``, whose delegates split
compstore's plain-numpy objects into one file per component:

- pixel planes (image, int32 mask, variance): ``.npy`` files written with
  ``numpy.save`` and read with ``numpy.load`` (a ``bbox`` read memory-maps the
  file and copies only the requested rows/columns);
- Wcs, Calib, Psf, VisitInfo, Background and the remaining small fields
  (xy0, band, detector, metadata, mask plane names): JSON from each object's
  ``to_dict()``;
- the catalog table: Parquet through daf_butler's own ``ParquetFormatter``
  (storage class ``ArrowAstropy``, with its ``columns`` read parameter).

Checksums are off (the FileDatastore default), the registry is SQLite, the
datastore cache is left at its default (it only serves remote stores).
daf_butler never calls fsync, so it is compared with ``Butler(fsync=False)``.

Limitation: the ``.npy`` formatter treats ``bbox`` as array coordinates, which
equal parent coordinates for the synthetic exposures (``xy0 == (0, 0)``); the
delegate puts the cut-out at ``bbox.min``.

This module is imported by name from the repository config
(``_daf_peer.NpyFormatter`` etc.), so the benchmarks folder must be on
``sys.path``, as it is when a script in it runs.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from compstore.objects import (
    Background,
    Box2I,
    Calib,
    Exposure,
    Mask,
    Psf,
    SourceCatalog,
    VisitInfo,
    Wcs,
)

from lsst.daf.butler import Butler, Config, DatasetType, FormatterV2, StorageClassDelegate
from lsst.resources import ResourcePath

INSTRUMENT = "SynCam"
DIMENSIONS = ("instrument", "visit", "detector")

_MOD = __name__

STORAGE_CLASSES = {
    "CsArray": {"pytype": "numpy.ndarray", "parameters": ["bbox"]},
    "CsWcs": {"pytype": "compstore.objects.Wcs"},
    "CsCalib": {"pytype": "compstore.objects.Calib"},
    "CsPsf": {"pytype": "compstore.objects.Psf"},
    "CsVisitInfo": {"pytype": "compstore.objects.VisitInfo"},
    "CsBackground": {"pytype": "compstore.objects.Background"},
    "CsInfo": {"pytype": "dict"},
    "CsExposure": {
        "pytype": "compstore.objects.Exposure",
        "delegate": f"{_MOD}.ExposureDelegate",
        "parameters": ["bbox"],
        "components": {
            "image": "CsArray",
            "mask": "CsArray",
            "variance": "CsArray",
            "wcs": "CsWcs",
            "calib": "CsCalib",
            "psf": "CsPsf",
            "visitInfo": "CsVisitInfo",
            "background": "CsBackground",
            "info": "CsInfo",
        },
    },
    "CsSourceCatalog": {
        "pytype": "compstore.objects.SourceCatalog",
        "delegate": f"{_MOD}.CatalogDelegate",
        "parameters": ["columns"],
        "components": {"table": "ArrowAstropy", "wcs": "CsWcs", "calib": "CsCalib"},
    },
}

FORMATTERS = {
    "CsArray": f"{_MOD}.NpyFormatter",
    "CsWcs": f"{_MOD}.DictJsonFormatter",
    "CsCalib": f"{_MOD}.DictJsonFormatter",
    "CsPsf": f"{_MOD}.DictJsonFormatter",
    "CsVisitInfo": f"{_MOD}.DictJsonFormatter",
    "CsBackground": f"{_MOD}.DictJsonFormatter",
    "CsInfo": "lsst.daf.butler.formatters.json.JsonFormatter",
    "ArrowAstropy": "lsst.daf.butler.formatters.parquet.ParquetFormatter",
}


class _Cutout(np.ndarray):
    """An ndarray that remembers where a bbox read started (for the delegate)."""

    origin: tuple[int, int] = (0, 0)


class NpyFormatter(FormatterV2):
    """``numpy.save`` / ``numpy.load`` of one array; ``bbox`` reads a memory-mapped slice."""

    default_extension = ".npy"
    unsupported_parameters = frozenset()  # i.e. bbox is handled here
    can_read_from_local_file = True

    def read_from_local_file(self, path: str, component: str | None = None, expected_size: int = -1) -> Any:
        bbox = (self.file_descriptor.parameters or {}).get("bbox")
        if bbox is None:
            return np.load(path)
        mapped = np.load(path, mmap_mode="r")
        out = np.array(mapped[bbox.y0 : bbox.end_y, bbox.x0 : bbox.end_x]).view(_Cutout)
        out.origin = (bbox.x0, bbox.y0)
        return out

    def write_local_file(self, in_memory_dataset: Any, uri: ResourcePath) -> None:
        with open(uri.ospath, "wb") as f:
            np.save(f, np.ascontiguousarray(in_memory_dataset), allow_pickle=False)


class DictJsonFormatter(FormatterV2):
    """JSON of ``obj.to_dict()``; read back with ``pytype.from_dict``."""

    default_extension = ".json"
    unsupported_parameters = None
    can_read_from_uri = True

    def read_from_uri(self, uri: ResourcePath, component: str | None = None, expected_size: int = -1) -> Any:
        pytype = self.file_descriptor.storageClass.pytype
        return pytype.from_dict(json.loads(uri.read()))

    def to_bytes(self, in_memory_dataset: Any) -> bytes:
        return json.dumps(in_memory_dataset.to_dict()).encode()


class ExposureDelegate(StorageClassDelegate):
    """Split an Exposure into pixel planes, Wcs, Calib, Psf, VisitInfo, Background, info."""

    def getComponent(self, composite: Exposure, componentName: str) -> Any:
        if componentName == "image":
            return composite.image
        if componentName == "mask":
            return composite.mask.array
        if componentName == "variance":
            return composite.variance
        if componentName == "visitInfo":
            return composite.visit_info
        if componentName == "info":
            return {
                "xy0": list(composite.xy0),
                "band": composite.band,
                "detector": composite.detector,
                "metadata": dict(composite.metadata),
                "mask_planes": dict(composite.mask.planes),
            }
        return getattr(composite, componentName)

    def assemble(self, components: dict[str, Any], pytype: type | None = None) -> Exposure:
        info = components["info"]
        image = components["image"]
        xy0 = tuple(info["xy0"])
        if isinstance(image, _Cutout):
            xy0 = (xy0[0] + image.origin[0], xy0[1] + image.origin[1])
        plain = {k: np.asarray(components[k]) for k in ("image", "mask", "variance")}
        return Exposure(
            plain["image"],
            Mask(plain["mask"], info["mask_planes"]),
            plain["variance"],
            xy0=xy0,
            wcs=components.get("wcs"),
            calib=components.get("calib"),
            psf=components.get("psf"),
            visit_info=components.get("visitInfo"),
            background=components.get("background"),
            metadata=info["metadata"],
            band=info["band"],
            detector=info["detector"],
        )

    def handleParameters(self, inMemoryDataset: Any, parameters: Any = None) -> Any:
        bbox = (parameters or {}).get("bbox")
        return inMemoryDataset.subset(bbox) if bbox is not None else inMemoryDataset


class CatalogDelegate(StorageClassDelegate):
    """Split a SourceCatalog into its table (Parquet), Wcs and Calib."""

    def getComponent(self, composite: SourceCatalog, componentName: str) -> Any:
        return getattr(composite, componentName)

    def assemble(self, components: dict[str, Any], pytype: type | None = None) -> SourceCatalog:
        return SourceCatalog(components["table"], wcs=components.get("wcs"), calib=components.get("calib"))

    def handleParameters(self, inMemoryDataset: Any, parameters: Any = None) -> Any:
        columns = (parameters or {}).get("columns")
        return inMemoryDataset.select_columns(columns) if columns else inMemoryDataset


def repo_config() -> Config:
    """The repository config: FileDatastore, disassembly on, our formatters and classes."""
    config = Config()
    config["datastore", "cls"] = "lsst.daf.butler.datastores.fileDatastore.FileDatastore"
    config["datastore", "checksum"] = False
    config["datastore", "composites", "disassembled", "CsExposure"] = True
    config["datastore", "composites", "disassembled", "CsSourceCatalog"] = True
    for name, formatter in FORMATTERS.items():
        config["datastore", "formatters", name] = formatter
    config["storageClasses"] = STORAGE_CLASSES
    return config


def create(root: str, visits: list[int], detectors: list[int]) -> Butler:
    """Create a repository at ``root`` with dimension records and the two dataset types."""
    from lsst.daf.butler.tests import addDataIdValue

    Butler.makeRepo(root, config=repo_config())
    butler = Butler.from_config(root, writeable=True)
    addDataIdValue(butler, "instrument", INSTRUMENT)
    for d in detectors:
        addDataIdValue(butler, "detector", d, instrument=INSTRUMENT)
    for v in visits:
        addDataIdValue(butler, "visit", v, instrument=INSTRUMENT)
    for name, sc in (("calexp", "CsExposure"), ("src", "CsSourceCatalog")):
        butler.registry.registerDatasetType(DatasetType(name, DIMENSIONS, sc, universe=butler.dimensions))
    return butler


def open_butler(root: str, run: str | None = None, collections: list[str] | None = None) -> Butler:
    """A Butler on an existing peer repository writing into ``run``."""
    if run is not None:
        return Butler.from_config(root, run=run, collections=collections or [run], writeable=True)
    return Butler.from_config(root, collections=collections)


def data_id(visit: int, detector: int) -> dict[str, Any]:
    return {"instrument": INSTRUMENT, "visit": visit, "detector": detector}


def bbox(x0: int, y0: int, w: int, h: int) -> Box2I:
    return Box2I((x0, y0), (w, h))


__all__ = [
    "Background",
    "Calib",
    "CatalogDelegate",
    "DictJsonFormatter",
    "ExposureDelegate",
    "NpyFormatter",
    "Psf",
    "VisitInfo",
    "Wcs",
    "create",
    "data_id",
    "open_butler",
    "repo_config",
]
