"""jointcal: per tract, a new Wcs and Calib for every (visit, detector) that overlaps it."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ...errors import TaskError
from ...registry import DataId
from .._task import Input, Output, Quantum, Task, project
from ..skymap import SkyMap
from ._algorithms import fit_tan_sip, relative_calibration

_EXPOSURE = ("visit", "detector")  # the dimensions of one exposure

__all__ = ["JointcalTask"]


class JointcalTask(Task):
    """Refit each detector's TAN-SIP Wcs and rescale its Calib, tract by tract.

    The astrometric fit is a linear least-squares TAN-SIP of ``order`` from the
    catalog's pixel centroids to its sky positions; the photometric step
    applies a gray per-visit correction pulling each visit's zero point to the
    tract's median. The output ``calexp`` (visit, detector, tract) is the
    input exposure with only ``wcs`` and ``calib`` replaced, so on disk it
    costs a Wcs, a Calib and a manifest.
    """

    dimensions = ("tract",)
    inputs = {
        "calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True),
        "src": Input("src", ("visit", "detector"), "SourceCatalog", multiple=True),
    }
    outputs = {"calexp": Output("calexp", ("visit", "detector", "tract"), "Exposure", multiple=True)}
    config_defaults = {"order": 3, "tract_size": 0.5, "patches_per_side": 4, "min_sources": 20}

    def skymap(self) -> SkyMap:
        """The sky map this task's config describes."""
        return SkyMap(self.config["tract_size"], self.config["patches_per_side"])

    def run(self, calexp: dict[DataId, Any], src: dict[DataId, Any]) -> dict[str, Any]:
        """Fit new Wcs and Calib for every exposure; return the updated exposures by data ID.

        Raises
        ------
        TaskError
            If an exposure has no catalog, or too few sources for the fit.
        """
        order = int(self.config["order"])
        wcs = {}
        calibs = {}
        for data_id, exposure in calexp.items():
            key = project(data_id, _EXPOSURE)
            catalog = src.get(key)
            if catalog is None:
                raise TaskError(f"jointcal: no src catalog for {key}")
            good = np.isfinite(catalog["ra"]) & np.isfinite(catalog["dec"])
            if good.sum() < max(self.config["min_sources"], (order + 1) * (order + 2)):
                raise TaskError(
                    f"jointcal: {key} has {int(good.sum())} usable sources, too few for an order-{order} fit"
                )
            header = exposure.wcs.to_header()
            wcs[data_id] = fit_tan_sip(
                np.asarray(catalog["x"])[good],
                np.asarray(catalog["y"])[good],
                np.asarray(catalog["ra"])[good],
                np.asarray(catalog["dec"])[good],
                crval=(header["CRVAL1"], header["CRVAL2"]),
                crpix=(header["CRPIX1"] - 1.0, header["CRPIX2"] - 1.0),
                order=order,
            )
            calibs[data_id] = exposure.calib
        new_calibs = relative_calibration(calibs, {k: int(k["visit"]) for k in calexp})
        return {
            "calexp": {
                data_id: exposure.replace(wcs=wcs[data_id], calib=new_calibs[data_id])
                for data_id, exposure in calexp.items()
            }
        }

    def build_quanta(self, inputs: dict[str, list[Any]], butler: Any) -> list[Quantum]:
        """One unit per tract, holding every (visit, detector) whose footprint touches it."""
        skymap = self.skymap()
        srcs = {project(r.data_id, _EXPOSURE): r for r in inputs["src"]}
        by_tract: dict[int, list[Any]] = defaultdict(list)
        for ref in inputs["calexp"]:
            key = project(ref.data_id, _EXPOSURE)
            if key not in srcs:
                continue
            wcs = butler.get(ref, component="wcs")
            bbox = butler.get(ref, component="bbox")
            for tract in skymap.overlaps(wcs, bbox):
                by_tract[tract].append((key, ref))
        quanta = []
        for tract, members in sorted(by_tract.items()):
            quanta.append(
                Quantum(
                    task_label=self.label,
                    data_id=DataId(tract=tract),
                    inputs={
                        "calexp": [ref for _, ref in members],
                        "src": [srcs[key] for key, _ in members],
                    },
                    outputs={"calexp": [DataId({**key, "tract": tract}) for key, _ in members]},
                )
            )
        return quanta
