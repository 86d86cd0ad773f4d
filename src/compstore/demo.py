"""The demo: fill a repository with a synthetic survey and show what sharing buys.

``compstore demo`` calls `run_demo`; it can be run again on the same
repository (datasets already present are not put twice).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .butler import Butler
from .testing.sky import make_catalog, make_exposure

__all__ = ["run_demo"]


def run_demo(
    root: str | os.PathLike[str] = "store",
    *,
    visits: int = 3,
    detectors: int = 4,
    size: int = 1024,
    out: Callable[[str], None] = print,
) -> Butler:
    """Put a synthetic survey (``calexp`` + ``src`` per visit and detector) and load a visit.

    Parameters
    ----------
    root
        The repository (created if missing).
    visits, detectors, size
        Survey shape: ``visits x detectors`` exposures of ``size x size`` pixels.
    out
        Where to print (``print`` by default).

    Returns
    -------
    Butler
        A Butler on the filled repository, writing to run ``sfm``.
    """
    start = time.perf_counter()
    Butler.create(root, exist_ok=True)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    out(f"repository {Path(root).resolve()}")
    written = 0
    for visit in range(1, visits + 1):
        for detector in range(detectors):
            if butler.exists("calexp", visit=visit, detector=detector):
                continue
            exposure = make_exposure(visit, detector, size=size)
            catalog = make_catalog(exposure)
            for obj, dataset_type in ((exposure, "calexp"), (catalog, "src")):
                result = butler.put_with_report(obj, dataset_type, visit=visit, detector=detector)
                written += result.report.bytes_written
    out(f"put {visits} visits x {detectors} detectors ({size}x{size}): "
        f"{written / 1024**2:.1f} MiB written")

    # Load one visit: catalogs and exposures share their Wcs and Calib objects.
    loader = Butler(root, collections=["sfm"])
    refs = loader.query_datasets("calexp", where="visit = 1")
    exposures = [loader.get(ref) for ref in refs]
    catalogs = [loader.get("src", ref.data_id) for ref in refs]
    shared = all(
        cat.wcs is exp.wcs and cat.calib is exp.calib
        for exp, cat in zip(exposures, catalogs, strict=True)
    )
    out(f"visit 1: {len(exposures)} exposures + {len(catalogs)} catalogs loaded; "
        f"catalogs share the exposures' Wcs and Calib objects: {shared}; "
        f"distinct Wcs objects: {len({id(e.wcs) for e in exposures + catalogs})}, "
        f"distinct VisitInfo objects: {len({id(e.visit_info) for e in exposures})}")
    psf = loader.get("calexp.psf", visit=1, detector=0)
    out(f"calexp.psf alone (no pixels read): {psf!r}")
    out("")
    out(str(butler.stats()))
    out(f"\ndemo finished in {time.perf_counter() - start:.1f} s")
    return butler
