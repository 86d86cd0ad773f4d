"""The forking helper of `test_kill.py`, run as its own process (not collected by pytest).

It imports compstore once, then for each line ``SCENARIO ROOT K ACKS`` read on
stdin forks a child that runs the scenario and SIGKILLs itself just before
its K-th write step (K = 0: no kill; the child records how many steps there
were). Write steps are the calls that change the disk: ``open`` for writing,
``os.mkdir``, ``os.rename``, ``os.replace``, ``os.unlink``, ``os.fsync``; for
``verify``, which writes nothing, every ``open`` and ``os.open`` is a step. A
dataset is acknowledged (a line in ACKS) once its put returned. The parent
answers each line with the child's wait status.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import sys
import threading

import compstore  # noqa: F401 - imported once, before any fork
from compstore import Butler
from compstore.testing.sky import make_exposure

_lock = threading.Lock()
_steps = [0]


def _arm_s3(kill_at: int) -> None:
    """Steps of a put into a repository on object storage: each PUT (obstore.put), and
    right after each commit of pack index rows (packed, indexed, no registry row yet)."""
    import obstore

    from compstore.cas._pack import PackIndex

    put = obstore.put
    add = PackIndex.add

    def count() -> None:
        with _lock:
            _steps[0] += 1
            if _steps[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    def step(*args, **kwargs):  # type: ignore[no-untyped-def]
        count()
        return put(*args, **kwargs)

    def indexed(*args, **kwargs):  # type: ignore[no-untyped-def]
        add(*args, **kwargs)
        count()

    obstore.put = step
    PackIndex.add = indexed  # type: ignore[method-assign]


def _arm(kill_at: int, *, reads: bool = False) -> None:
    def wrap(fn, is_write=lambda *a, **k: True):  # type: ignore[no-untyped-def]
        def step(*args, **kwargs):  # type: ignore[no-untyped-def]
            if is_write(*args, **kwargs):
                with _lock:
                    _steps[0] += 1
                    if _steps[0] == kill_at:
                        os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)

        return step

    for name in ("mkdir", "rename", "replace", "unlink", "fsync", *(("open",) if reads else ())):
        setattr(os, name, wrap(getattr(os, name)))
    builtins.open = wrap(
        builtins.open,
        (lambda *a, **k: True) if reads else (lambda file, mode="r", *a, **k: any(c in mode for c in "wxa+")),
    )


def _ack(acks: str, **what: object) -> None:
    with builtins.open(acks, "a") as f:
        f.write(json.dumps(what) + "\n")


def _run(scenario: str, root: str, acks: str) -> None:
    if scenario == "first":  # the first put into a new repository
        butler = Butler.create(root)
        butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        butler = Butler(root, run="r")
        butler.put(make_exposure(1, 1, size=64, seed=7), "calexp", visit=1, detector=1)
        _ack(acks, run="r", visit=1, detector=1)
    elif scenario == "put":  # two puts into a repository holding a dataset already
        butler = Butler(root, run="r")
        for detector in (1, 2):
            butler.put(make_exposure(1, detector, size=64, seed=7), "calexp", visit=1, detector=detector)
            _ack(acks, run="r", visit=1, detector=detector)
    elif scenario == "pipeline":
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "pipeline"))
        from pipeline_test_tasks import Recalibrate

        from compstore.pipeline import Pipeline, execute

        butler = Butler(root, collections=["sfm"], run="recal")
        report = execute(Pipeline().add_task("recal", Recalibrate, {"factor": 2.0}), butler)
        for result in report.succeeded:
            _ack(acks, run="recal", visit=result.data_id["visit"], detector=result.data_id["detector"])
    elif scenario == "s3":  # two puts into a repository on object storage (root: its URL)
        butler = Butler(root, run="r")
        for detector in (1, 2):
            butler.put(make_exposure(1, detector, size=64, seed=7), "calexp", visit=1, detector=detector)
            _ack(acks, run="r", visit=1, detector=detector)
    elif scenario in ("transfer", "subset"):  # two datasets of the source of KILL_SOURCE
        source = Butler(os.environ["KILL_SOURCE"])
        refs = source.query_datasets("calexp", collections="t")
        if scenario == "transfer":  # into a repository holding a dataset already
            Butler(root).transfer_from(source, refs)
        else:  # into a new repository
            source.subset(root, ["calexp"], collections="t")
        for ref in refs:
            _ack(acks, run="t", visit=ref.data_id["visit"], detector=ref.data_id["detector"])
    elif scenario == "upgrade":  # a format 2 repository to format 3, then a put into it
        Butler.upgrade(root)
        butler = Butler(root, run="r")
        butler.put(make_exposure(1, 2, size=64, seed=7), "calexp", visit=1, detector=2)
        _ack(acks, run="r", visit=1, detector=2)
    elif scenario == "verify":
        Butler(root).verify(deep=True)
    else:
        raise ValueError(scenario)


def main() -> None:
    for line in sys.stdin:
        scenario, root, kill_at, acks = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                if scenario == "s3":
                    _arm_s3(int(kill_at))
                else:
                    _arm(int(kill_at), reads=scenario == "verify")
                _run(scenario, root, acks)
                _ack(acks, steps=_steps[0])
                os._exit(0)
            except BaseException:
                import traceback

                traceback.print_exc()
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        print(status, flush=True)


if __name__ == "__main__":
    main()
