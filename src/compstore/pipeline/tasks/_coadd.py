"""coadd: warp calexps onto a patch of a tract and stack them into ``deepCoadd``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ...errors import TaskError
from ...objects import CoaddInput, CoaddInputs
from ...registry import DataId
from .._task import Input, Output, PredictedRef, Quantum, Task, data_id_sort_key
from ..skymap import SkyMap
from ._algorithms import stack_warps
from ._warp import warp_exposure

__all__ = ["CoaddTask"]


class CoaddTask(Task):
    """Inverse-variance weighted stack of the calexps overlapping one (tract, patch, band).

    The coadd's ``coadd_inputs`` names each input dataset; its Wcs, Psf and
    Calib are stored as references to that dataset's components (use case
    7), so they cost nothing and read back as the very objects the inputs hold.
    """

    dimensions = ("tract", "patch", "band")
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True)}
    outputs = {"deepCoadd": Output("deepCoadd", ("tract", "patch", "band"), "Exposure")}
    config_defaults = {"tract_size": 0.5, "patches_per_side": 4, "warp_step": 32}

    def skymap(self) -> SkyMap:
        """The sky map this task's config describes."""
        return SkyMap(self.config["tract_size"], self.config["patches_per_side"])

    def run(self, calexp: Mapping[DataId, Any], data_id: Mapping[str, Any]) -> dict[str, Any]:
        """Stack ``calexp`` onto patch ``data_id["patch"]`` of tract ``data_id["tract"]``.

        Raises
        ------
        TaskError
            If no input overlaps the patch.
        """
        tract = self.skymap().tract(int(data_id["tract"]))
        bbox = tract.patch_bbox(int(data_id["patch"]))
        warps, sigmas, members = [], [], []
        for input_id, exposure in sorted(calexp.items(), key=lambda kv: data_id_sort_key(kv[0])):
            warp = warp_exposure(exposure, tract.wcs, bbox, step=int(self.config["warp_step"]))
            if warp is None or not warp.valid.any():
                continue
            warps.append(warp)
            sigmas.append(exposure.psf.sigma if exposure.psf is not None else 1.5)
            members.append(
                CoaddInput(
                    dataset_type="calexp",
                    data_id=dict(input_id),
                    wcs=exposure.wcs,
                    psf=exposure.psf,
                    calib=exposure.calib,
                    weight=float(warp.valid.sum()),
                )
            )
        if not warps:
            raise TaskError(f"coadd: no input overlaps {dict(data_id)}")
        coadd = stack_warps(warps, wcs=tract.wcs, bbox=bbox, psf_sigmas=sigmas, band=data_id.get("band"))
        return {"deepCoadd": coadd.replace(coadd_inputs=CoaddInputs(members))}

    def build_quanta(self, inputs: dict[str, list[Any]], butler: Any) -> list[Quantum]:
        """One unit per (tract, patch, band) that some calexp's footprint touches."""
        skymap = self.skymap()
        groups: dict[DataId, list[Any]] = defaultdict(list)
        for ref in inputs["calexp"]:
            located = self._locate(ref, butler)
            wcs = butler.get(located, component="wcs")
            bbox = butler.get(located, component="bbox")
            band = butler.get(located, component="band")
            for tract, patches in skymap.overlaps(wcs, bbox).items():
                for patch in patches:
                    groups[DataId(tract=tract, patch=patch, band=band)].append(ref)
        return [
            Quantum(
                task_label=self.label,
                data_id=key,
                inputs={"calexp": refs},
                outputs={"deepCoadd": [key]},
            )
            for key, refs in sorted(groups.items(), key=lambda kv: data_id_sort_key(kv[0]))
        ]

    @staticmethod
    def _locate(ref: Any, butler: Any) -> Any:
        """A stored calexp to read the footprint of ``ref`` from.

        A calexp an earlier task of the same pipeline will write (a
        `PredictedRef`, e.g. jointcal's) does not exist yet: its pixels and
        footprint are those of the input calexp of the same visit and detector.
        """
        if not isinstance(ref, PredictedRef):
            return ref
        base = {k: ref.data_id[k] for k in ("visit", "detector")}
        return butler.find_dataset(ref.dataset_type, base)
