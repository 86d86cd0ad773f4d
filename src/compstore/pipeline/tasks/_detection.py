"""detection: subtract a fitted background from a coadd and set its DETECTED mask plane."""

from __future__ import annotations

from typing import Any

from .._task import Input, Output, Task
from ._algorithms import detect, estimate_background

__all__ = ["DetectionTask"]


class DetectionTask(Task):
    """``deepCoadd`` -> ``deepCoadd_calexp``: background-subtracted, DETECTED plane set.

    The background is subtracted with `Background.subtract_from`, which keeps
    the un-subtracted pixels as the new exposure's ``image_base``: the store
    writes the Background and the changed mask plane, never a second image
    (use case 4).
    """

    dimensions = ("tract", "patch", "band")
    inputs = {"deepCoadd": Input("deepCoadd", ("tract", "patch", "band"), "Exposure")}
    outputs = {"deepCoadd_calexp": Output("deepCoadd_calexp", ("tract", "patch", "band"), "Exposure")}
    config_defaults = {"threshold": 5.0, "background_cell": 128}

    def run(self, deepCoadd: Any) -> dict[str, Any]:  # noqa: N803 - the input is named for its dataset type
        """Fit and subtract the background, then flag pixels above ``threshold`` sigma."""
        background = estimate_background(deepCoadd, cell=int(self.config["background_cell"]))
        subtracted = background.subtract_from(deepCoadd)
        detected = detect(subtracted, threshold=float(self.config["threshold"]))
        return {"deepCoadd_calexp": subtracted.replace(mask=subtracted.mask.with_plane("DETECTED", detected))}
