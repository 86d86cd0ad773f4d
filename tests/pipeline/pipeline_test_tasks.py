"""Small tasks for the pipeline tests, importable by module path (worker processes need that).

The tests put this folder on ``sys.path`` (see ``conftest.py``), so these
classes are ``pipeline_test_tasks:Recalibrate`` and so on, in this process and
in spawned workers alike.
"""

from __future__ import annotations

from typing import Any

from compstore import Calib, Exposure
from compstore.pipeline import Input, Output, Task
from compstore.registry import DataId


class Recalibrate(Task):
    """Per (visit, detector): scale a calexp's Calib by ``factor``; fail on ``fail_detector``."""

    dimensions = ("visit", "detector")
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
    outputs = {"calexp": Output("calexp", ("visit", "detector"), "Exposure")}
    config_defaults = {"factor": 1.0, "fail_detector": -1}

    def run(self, calexp: Exposure) -> dict[str, Any]:
        if calexp.detector == self.config["fail_detector"]:
            raise RuntimeError(f"detector {calexp.detector} is cursed")
        calib = Calib(
            calexp.calib.calibration * self.config["factor"], calexp.calib.calibration_err
        )
        return {"calexp": calexp.replace(calib=calib)}


class VisitSummary(Task):
    """Per visit: gather every detector's calexp into one Metadata summary."""

    dimensions = ("visit",)
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True)}
    outputs = {"summary": Output("visitSummary", ("visit",), "Metadata")}

    def run(self, calexp: dict[DataId, Exposure]) -> dict[str, Any]:
        detectors = sorted(data_id["detector"] for data_id in calexp)
        total = sum(exp.calib.calibration for exp in calexp.values())
        # Metadata holds scalars only.
        return {"summary": {"detectors": ",".join(map(str, detectors)), "calibration_sum": total}}


class SplitCalibs(Task):
    """Per visit: one Calib dataset per detector (a ``multiple`` output)."""

    dimensions = ("visit",)
    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure", multiple=True)}
    outputs = {"calib": Output("calibOnly", ("visit", "detector"), "Calib", multiple=True)}

    def run(self, calexp: dict[DataId, Exposure]) -> dict[str, Any]:
        return {"calib": {data_id: exp.calib for data_id, exp in calexp.items()}}


class BadOutputs(Task):
    """Returns whatever ``mode`` says: a wrong type, a missing output, an extra one."""

    inputs = {"calexp": Input("calexp", ("visit", "detector"), "Exposure")}
    outputs = {"calexp": Output("calexp", ("visit", "detector"), "Exposure")}
    config_defaults = {"mode": "wrong-type"}

    def run(self, calexp: Exposure) -> Any:
        mode = self.config["mode"]
        if mode == "wrong-type":
            return {"calexp": 42}
        if mode == "missing":
            return {}
        if mode == "extra":
            return {"calexp": calexp, "other": calexp}
        return [calexp]


class SlowRecalibrate(Recalibrate):
    """Recalibrate that first records its process id in ``pid_dir`` and sleeps ``delay`` seconds."""

    config_defaults = {**Recalibrate.config_defaults, "delay": 1.0, "pid_dir": ""}

    def run(self, calexp: Exposure) -> dict[str, Any]:
        import os
        import time

        if self.config["pid_dir"]:
            with open(os.path.join(self.config["pid_dir"], str(os.getpid())), "w"):
                pass
        time.sleep(self.config["delay"])
        return super().run(calexp)


class SlowOne(Recalibrate):
    """Recalibrate that sleeps ``delay`` seconds on one (``slow_visit``, ``slow_detector``) only.

    Records its process id in ``pid_dir`` (if set), to show which processes ran units.
    """

    config_defaults = {
        **Recalibrate.config_defaults,
        "slow_visit": -1,
        "slow_detector": -1,
        "delay": 0.0,
        "pid_dir": "",
    }

    def run(self, calexp: Exposure, data_id: DataId) -> dict[str, Any]:  # type: ignore[override]
        import os
        import time

        if self.config["pid_dir"]:
            with open(os.path.join(self.config["pid_dir"], str(os.getpid())), "w"):
                pass
        if (data_id["visit"], data_id["detector"]) == (self.config["slow_visit"], self.config["slow_detector"]):
            time.sleep(self.config["delay"])
        return super().run(calexp)
