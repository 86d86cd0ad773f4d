"""The built-in pipeline (jointcal -> coadd -> detection) on the demo survey: serial, process pool, Dask.

One run measures, on one repository of single-frame calexps, the wall time of
the whole pipeline (one `execute`, each run into its own output RUN) serially
(``jobs=1``), with the process pool (``jobs=2``) and with Dask (a
``LocalCluster`` of 2 worker processes started by `execute`, start-up
included), and prints each against serial. Both parallel executors start a
unit as soon as its inputs exist (no barrier between tasks).

Usage::

    python benchmarks/bench_pipeline_dask.py               # demo survey: 3 visits x 4 detectors x 1024 px
    python benchmarks/bench_pipeline_dask.py --size tiny   # CI: 2 x 2 x 256 px
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from compstore import Butler
from compstore.demo import _COADD, _JOINTCAL, _single_frame
from compstore.pipeline import Pipeline, execute

SIZES = {"tiny": (2, 2, 256), "demo": (3, 4, 1024)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="demo")
    args = parser.parse_args(argv)
    visits, detectors, size = SIZES[args.size]
    pipeline = Pipeline.from_dict({"tasks": {
        "jointcal": {"class": "jointcal", "config": _JOINTCAL},
        "coadd": {"class": "coadd", "config": _COADD},
        "detection": {"class": "detection"},
    }})
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        Butler.create(root)
        _single_frame(root, visits, detectors, size)
        runs = {
            "serial (jobs=1)": {"jobs": 1},
            "process pool (jobs=2)": {"jobs": 2},
            "dask LocalCluster (2 workers)": {"jobs": 2, "executor": "dask"},
        }
        seconds: dict[str, float] = {}
        for i, (name, options) in enumerate(runs.items()):
            butler = Butler(root, collections=["sfm"], run=f"run{i}")
            start = time.perf_counter()
            report = execute(pipeline, butler, **options)  # type: ignore[arg-type]
            seconds[name] = time.perf_counter() - start
            if report.failed:
                print(report)
                return 1
            units = len(report.succeeded)
    print(f"survey: {visits} visits x {detectors} detectors x {size} px; {units} units of work")
    base = seconds["serial (jobs=1)"]
    print(f"{'executor':<32} {'wall time':>10} {'vs serial':>10}")
    for name, value in seconds.items():
        print(f"{name:<32} {value:>9.2f}s {value / base:>9.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
