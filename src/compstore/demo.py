"""The demo: a synthetic survey through four stages, showing what sharing buys.

``compstore demo`` calls `run_demo`. It can be run again on the same
repository: datasets already present are not put twice, and stages whose
outputs exist are skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .butler import Butler
from .pipeline import Pipeline, execute
from .testing.repository import blob_bytes
from .testing.sky import OBJECT_TABLE_MEMBERS, make_catalog, make_exposure, make_object_tables

__all__ = ["StageFigures", "run_demo"]

# Detectors of the 5x5 focal plane around its centre (12), in demo order.
_DETECTORS = (12, 7, 11, 13, 17, 6, 8, 16, 18)
# jointcal groups by large tracts; coadds use patches of a finer sky map.
_JOINTCAL = {"tract_size": 0.5, "order": 2, "min_sources": 10}
_COADD = {"tract_size": 0.2, "patches_per_side": 4}


@dataclass(frozen=True)
class StageFigures:
    """What one stage cost: datasets, logical bytes of its outputs, bytes added, wall time."""

    stage: str
    datasets: int
    logical_bytes: int
    added_bytes: int
    seconds: float


def run_demo(
    root: str | os.PathLike[str] = "store",
    *,
    visits: int = 3,
    detectors: int = 4,
    size: int = 1024,
    out: Callable[[str], None] = print,
) -> list[StageFigures]:
    """Run single-frame -> jointcal -> coadd -> detection on a synthetic deep survey.

    Parameters
    ----------
    root
        The repository (created if missing).
    visits, detectors, size
        Survey shape: ``visits x detectors`` exposures of ``size x size`` pixels
        (at most 9 detectors, around the focal plane's centre).
    out
        Where to print (``print`` by default).

    Returns
    -------
    list of StageFigures
        One per stage, as printed.
    """
    root = Path(root)
    Butler.create(root, exist_ok=True)
    figures = [_single_frame(root, visits, detectors, size)]
    out(f"repository {root.resolve()}")
    stages = [
        ("jointcal", "jointcal", ["sfm"], {"jointcal": {"class": "jointcal", "config": _JOINTCAL}}),
        ("coadd", "coadd", ["jointcal"], {"coadd": {"class": "coadd", "config": _COADD}}),
        ("detection", "detection", ["coadd"], {"detection": {"class": "detection"}}),
    ]
    for stage, run, inputs, tasks in stages:
        before, start = blob_bytes(root), time.perf_counter()
        butler = Butler(root, collections=inputs, run=run)
        report = execute(Pipeline.from_dict({"tasks": tasks}), butler)
        if report.failed:
            out(str(report))
        figures.append(
            _figures(butler, stage, run, blob_bytes(root) - before, time.perf_counter() - start)
        )
    _show_sharing(root, out)
    _show_definitions(root, out)
    out("")
    out(f"{'stage':<10} {'datasets':>8} {'logical':>12} {'added on disk':>14} {'added/logical':>13} {'time':>8}")
    for f in figures:
        ratio = f.added_bytes / f.logical_bytes if f.logical_bytes else 0.0
        out(f"{f.stage:<10} {f.datasets:>8} {_mib(f.logical_bytes):>12} {_mib(f.added_bytes):>14} "
            f"{ratio:>12.1%} {f.seconds:>7.2f}s")
    out("")
    out(str(Butler(root).stats()))
    _show_subset(root, out)
    return figures


def _show_subset(root: Path, out: Callable[[str], None]) -> None:
    """Use case 8: a catalogs-only subset beside the repository (made once, reused after)."""
    full = Butler(root)
    dest = root.parent / f"{root.name}-catalogs"
    types = [t.name for t in full.registry.dataset_types() if t.storage_class == "SourceCatalog"]
    if not (dest / "compstore.json").exists():
        full.subset(dest, dataset_types=types)
    cats = Butler(dest)
    exposures = [
        r for t in full.registry.dataset_types() if t.storage_class == "Exposure"
        for r in full.query_datasets(t.name)
    ]
    pixels = {d for r in exposures for k, d in full._io.iter_components(r.manifest) if k == "array"}
    pixel_bytes = sum(cats.blobs.stored_bytes(d) for d in set(cats.blobs.iter_arrays()) & pixels)
    out("")
    out(f"catalogs-only subset {dest.resolve()} ({', '.join(types)}): "
        f"{cats.registry.count_datasets()} datasets")
    out(f"subset size on disk:          {_mib(blob_bytes(dest))}, pixel bytes {pixel_bytes}")
    out(f"full repository size on disk: {_mib(blob_bytes(root))}")


def _mib(n: int) -> str:
    return f"{n / 1024**2:.2f} MiB"


def _single_frame(root: Path, visits: int, detectors: int, size: int) -> StageFigures:
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    before, start = blob_bytes(root), time.perf_counter()
    for visit in range(1, visits + 1):
        for detector in _DETECTORS[: max(1, min(detectors, len(_DETECTORS)))]:
            if butler.exists("calexp", visit=visit, detector=detector):
                continue
            exposure = make_exposure(visit, detector, size=size, survey="deep")
            butler.put_many(
                [
                    (exposure, "calexp", {"visit": visit, "detector": detector}),
                    (make_catalog(exposure), "src", {"visit": visit, "detector": detector}),
                ]
            )
    return _figures(butler, "sfm", "sfm", blob_bytes(root) - before, time.perf_counter() - start)


def _figures(butler: Butler, stage: str, run: str, added: int, seconds: float) -> StageFigures:
    logical, datasets = butler.logical_bytes(collections=[run])
    return StageFigures(stage, datasets, logical, added, seconds)


def _show_sharing(root: Path, out: Callable[[str], None]) -> None:
    reader = Butler(root, collections=["sfm"])
    refs = reader.query_datasets("calexp", where="visit = 1")
    exposures = [reader.get(ref) for ref in refs]
    catalogs = [reader.get("src", ref.data_id) for ref in refs]
    shared = all(c.wcs is e.wcs and c.calib is e.calib for e, c in zip(exposures, catalogs, strict=True))
    out(
        f"visit 1: {len(exposures)} exposures + {len(catalogs)} catalogs loaded; catalogs share the "
        f"exposures' Wcs and Calib objects: {shared}; distinct Wcs objects: "
        f"{len({id(x.wcs) for x in exposures + catalogs})}; distinct VisitInfo objects: "
        f"{len({id(e.visit_info) for e in exposures})}"
    )
    psf = reader.get("calexp.psf", refs[0].data_id)
    out(f"calexp.psf alone (no pixels read): {psf!r}")
    if Butler(root).exists("calexp:jointcal", refs[0].data_id):
        jointcal = Butler(root).get("calexp:jointcal", refs[0].data_id)
        out(f"calexp:jointcal {dict(refs[0].data_id)}: new Wcs and Calib, the same pixel arrays "
            f"as calexp:sfm: {jointcal.image is exposures[0].image}")


def _show_definitions(root: Path, out: Callable[[str], None]) -> None:
    """Aggregates and an Object table: defined dataset types, costing no rows or pixels."""
    writer = Butler(root, run="objects")
    for name in OBJECT_TABLE_MEMBERS:
        writer.register_dataset_type(name, ("tract", "patch", "band"), "SourceCatalog")
    coadds = Butler(root, collections=["detection"]).query_datasets("deepCoadd_calexp")
    start = blob_bytes(root)
    for ref in coadds:
        if not writer.exists(OBJECT_TABLE_MEMBERS[0], ref.data_id):
            data_id = ref.data_id
            tables = make_object_tables(int(data_id["tract"]), int(data_id["patch"]),
                                        str(data_id["band"]), rows=300)
            writer.put_many([(tables[n], n, dict(ref.data_id)) for n in OBJECT_TABLE_MEMBERS])
    before = blob_bytes(root)
    members_added = before - start
    writer.register_aggregate("src_visit", "src", over=("detector",))
    writer.register_aggregate("calexp_visit", "calexp", over=("detector",))
    writer.register_join("objectTable", list(OBJECT_TABLE_MEMBERS), on="id")
    reader = Butler(root, collections=["sfm", "objects"])
    src_visit = reader.get("src_visit", visit=1)
    visit = reader.get("calexp_visit", visit=1)
    summary = reader.get("calexp_visit.summary", visit=1)
    out(f"src_visit visit=1: {len(src_visit)} rows of {len(src_visit.members)} detectors, each "
        f"calibrated with its own detector's Calib; calexp_visit visit=1: {len(visit)} "
        f"detectors, {len(visit.loaded)} loaded, summary of {len(summary)} rows read no pixels")
    if coadds:
        obj = reader.get("objectTable", coadds[0].data_id)
        out(f"objectTable {dict(coadds[0].data_id)}: {len(obj)} rows x {len(obj.columns)} columns "
            f"joined on id from {len(OBJECT_TABLE_MEMBERS)} catalogs (the {len(coadds)} patches' "
            f"member catalogs added {_mib(members_added)} this run)")
    out(f"declaring and reading src_visit, calexp_visit, objectTable added "
        f"{blob_bytes(root) - before} bytes on disk (registry rows only)")
