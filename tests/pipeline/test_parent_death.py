"""A killed `execute(..., jobs=2)` leaves no worker process running and nothing more written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from compstore import Butler
from compstore.cas._staging import pid_alive

HERE = Path(__file__).resolve().parent


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return pid_alive(pid)
    return state != "Z"  # a zombie has stopped: only its exit status is left


def _written(root: Path) -> int:
    return len(Butler(root).registry.query_datasets("calexp", collections=["slow"]))


@pytest.mark.slow
def test_workers_die_with_their_parent(calexp_repo: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from compstore import Butler
        from compstore.pipeline import Pipeline, execute
        from pipeline_test_tasks import SlowRecalibrate

        if __name__ == "__main__":
            pipeline = Pipeline().add_task(
                "slow", SlowRecalibrate, {{"delay": 2.0, "pid_dir": {str(pids)!r}}}
            )
            execute(pipeline, Butler({str(calexp_repo)!r}, collections=["sfm"], run="slow"), jobs=2)
        """
    )
    path = tmp_path / "run.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)])
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2:  # both workers are inside a unit
            assert time.monotonic() < deadline, "the workers never started"
            assert parent.poll() is None
            time.sleep(0.05)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    workers = [int(p.name) for p in pids.iterdir()]
    time.sleep(1.0)  # grace: the kernel's SIGKILL, or the watchdog's 0.2 s
    still = [pid for pid in workers if _alive(pid)]
    for pid in still:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert still == []
    written = _written(calexp_repo)
    time.sleep(3.0)  # longer than a unit: a worker left running would have written one
    assert _written(calexp_repo) == written < 6
    assert Butler(calexp_repo).verify().ok
