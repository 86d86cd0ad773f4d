"""The built-in processing stages: ``jointcal``, ``coadd`` and ``detection``.

Each is a `compstore.pipeline.Task`: its ``run`` works on in-memory objects
(call it directly, no repository needed), and its ``build_quanta`` groups
datasets on the sky with a `SkyMap` (jointcal per tract, coadd and detection
per tract, patch and band).
"""

from __future__ import annotations

from ._coadd import CoaddTask
from ._detection import DetectionTask
from ._jointcal import JointcalTask

__all__ = ["CoaddTask", "DetectionTask", "JointcalTask"]
