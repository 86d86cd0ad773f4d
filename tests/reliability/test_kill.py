"""kill -9 at every write step of a put, of the first put into a new repository, of a pipeline run,
of a transfer, of a subset, of verify.

(``verify`` writes nothing: it is killed at its file opens instead, and the
repository it leaves must be byte for byte the one it was given.)

After each kill: the repository opens, `verify` finds no problem (unreferenced
components are not problems), every acknowledged dataset reads back equal,
and no dataset is half-visible (a registry row whose manifest or components
are missing would be a `verify` problem). A transfer or subset of two datasets
is all or nothing: a killed one leaves none of them or both (counted as
half-visible otherwise).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from compstore import Butler
from compstore.testing.repository import copy_repository, make_calexp_repository
from compstore.testing.sky import make_exposure

HERE = Path(__file__).resolve().parent


def _template(tmp: Path, scenario: str) -> Path | None:
    root = tmp / f"template-{scenario}"
    if scenario == "first":
        return None
    if scenario == "subset":
        return None
    if scenario == "put" or scenario == "transfer":
        butler = Butler.create(root)
        butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        Butler(root, run="r").put(make_exposure(1, 0, size=64, seed=7), "calexp", visit=1, detector=0)
        butler.registry.close()
        return root
    exposures = {(1, d): make_exposure(1, d, size=64, seed=7) for d in range(2)}
    return make_calexp_repository(root, exposures)


def _snapshot(root: Path) -> dict[str, str]:
    """Every file of ``root`` (but SQLite's -wal/-shm, which any reader may make) and its hash."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(("-wal", "-shm")):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _check(root: Path, acks: list[dict[str, int]], scenario: str) -> tuple[bool, int, int]:
    """(opened, lost, half_visible) for the repository a killed child left."""
    if not (root / "compstore.json").exists():
        return True, len(acks), 0  # create died before the config: not a repository (by design)
    try:
        butler = Butler(root)
    except Exception:  # noqa: BLE001 - counted
        return False, len(acks), 0
    report = butler.verify(deep=True)
    half = len(report.problems)
    if scenario in ("transfer", "subset"):
        moved = len(butler.query_datasets("calexp", collections="t")) if "t" in {
            c for c in butler.registry.query_collections()
        } else 0
        half += moved not in (0, 2)  # all or nothing
    lost = 0
    for ack in acks:
        try:
            got = butler.get("calexp", visit=ack["visit"], detector=ack["detector"], collections=ack["run"])
        except Exception:  # noqa: BLE001 - counted
            lost += 1
            continue
        want = make_exposure(1, ack["detector"], size=64, seed=7)
        factor = 2.0 if scenario == "pipeline" else 1.0
        if not (np.array_equal(got.image, want.image) and got.calib.calibration == factor * want.calib.calibration):
            lost += 1
    return True, lost, half


def test_kill_at_every_write_step(tmp_path: Path, reliability_scale: int, reliability_counts) -> None:
    # The source of the transfer and subset scenarios: two datasets in run "t".
    source = tmp_path / "source"
    Butler.create(source)
    writer = Butler(source, run="t")
    writer.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    for detector in (1, 2):
        writer.put(make_exposure(1, detector, size=64, seed=7), "calexp", visit=1, detector=detector)
    writer.registry.close()
    zygote = subprocess.Popen(
        [sys.executable, str(HERE / "kill_child.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "KILL_SOURCE": str(source)},
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    kills = lost = half = failed_open = changed = 0
    per_scenario = {}
    try:
        for scenario in ("put", "first", "pipeline", "transfer", "subset", "verify"):
            template = _template(tmp_path, scenario)
            trial = 0

            pristine: dict[str, str] = {}

            def run(kill_at: int) -> tuple[int, list[dict[str, int]], Path]:
                nonlocal trial, pristine
                trial += 1
                root = tmp_path / f"{scenario}-{trial}"
                if template is not None:
                    copy_repository(template, root)
                    pristine = _snapshot(root) if scenario == "verify" else {}
                acks_file = tmp_path / f"{scenario}-{trial}.acks"
                acks_file.touch()
                zygote.stdin.write(f"{scenario} {root} {kill_at} {acks_file}\n")  # type: ignore[union-attr]
                zygote.stdin.flush()  # type: ignore[union-attr]
                status = int(zygote.stdout.readline())  # type: ignore[union-attr]
                lines = [json.loads(x) for x in acks_file.read_text().splitlines()]
                return status, lines, root

            status, lines, root = run(0)
            assert status == 0 and "steps" in lines[-1], lines
            if scenario == "verify":
                changed += _snapshot(root) != pristine  # and when it ran to the end
            steps = lines[-1]["steps"]
            per_scenario[scenario] = steps
            # Every step of a put; creating a repository makes ~1,500 (the fan-out folders):
            # its last 25 (the config, then the first put) and an even sample of the rest.
            tail = 25 * reliability_scale
            stride = max(1, (steps - tail) // (10 * reliability_scale))
            chosen = sorted({*range(1, max(1, steps - tail), stride), *range(max(1, steps - tail), steps + 1)})
            for k in chosen:
                status, lines, root = run(k)
                assert status == signal.SIGKILL, f"{scenario} step {k}: status {status}"
                kills += 1
                if scenario == "verify":
                    changed += _snapshot(root) != pristine  # verify must write nothing
                opened, lost_here, half_here = _check(root, [x for x in lines if "run" in x], scenario)
                failed_open += not opened
                lost += lost_here
                half += half_here
                shutil.rmtree(root, ignore_errors=True)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    reliability_counts("kill", kills=kills, lost=lost, half_visible=half, failed_open=failed_open,
                       verify_changed=changed, **{f"steps_{k}": v for k, v in per_scenario.items()})
    assert (lost, half, failed_open, changed) == (0, 0, 0, 0)
    assert kills > 0 and per_scenario["verify"] > 0


def test_kill_at_every_put_to_object_storage(s3_server, tmp_path: Path, reliability_scale: int,
                                             reliability_counts) -> None:  # fmt: skip
    """A writer killed at each PUT of two puts into an s3:// repository: nothing lost or half-visible.

    Each trial is a new repository (prefix) holding one dataset; the child puts
    two more and is killed before its K-th PUT. After it, the repository
    opens, ``verify(deep=True)`` finds no problem, and every acknowledged put
    reads back.
    """
    env = {**os.environ, **s3_server.environment()}
    os.environ.update(s3_server.environment())  # (restored below) for this process's reads
    zygote = subprocess.Popen(
        [sys.executable, str(HERE / "kill_child.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )
    assert zygote.stdin is not None and zygote.stdout is not None
    bucket = s3_server.new_bucket()
    kills = lost = half = failed_open = 0
    trial = 0

    def run(kill_at: int) -> tuple[int, list[dict[str, int]], str]:
        nonlocal trial
        trial += 1
        url = f"s3://{bucket}/kill-{trial}"
        Butler.create(url, registry=str(tmp_path / f"registry-{trial}.sqlite3"))
        first = Butler(url, run="r")
        first.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
        first.put(make_exposure(1, 0, size=64, seed=7), "calexp", visit=1, detector=0)
        acks_file = tmp_path / f"s3-{trial}.acks"
        acks_file.touch()
        zygote.stdin.write(f"s3 {url} {kill_at} {acks_file}\n")  # type: ignore[union-attr]
        zygote.stdin.flush()  # type: ignore[union-attr]
        status = int(zygote.stdout.readline())  # type: ignore[union-attr]
        return status, [json.loads(x) for x in acks_file.read_text().splitlines()], url

    saved = dict(os.environ)
    try:
        status, lines, _ = run(0)
        assert status == 0 and "steps" in lines[-1], lines
        steps = lines[-1]["steps"]
        for k in range(1, steps + 1):
            for _ in range(reliability_scale):
                status, lines, url = run(k)
                assert status == signal.SIGKILL, f"s3 step {k}: status {status}"
                kills += 1
                try:
                    butler = Butler(url)
                except Exception:  # noqa: BLE001 - counted
                    failed_open += 1
                    continue
                half += len(butler.verify(deep=True).problems)
                for ack in [x for x in lines if "run" in x] + [{"run": "r", "visit": 1, "detector": 0}]:
                    try:
                        got = butler.get("calexp", visit=ack["visit"], detector=ack["detector"],
                                         collections=ack["run"])
                    except Exception:  # noqa: BLE001 - counted
                        lost += 1
                        continue
                    want = make_exposure(1, ack["detector"], size=64, seed=7)
                    lost += not np.array_equal(got.image, want.image)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
        os.environ.clear()
        os.environ.update(saved)
    reliability_counts("s3 kill", kills=kills, lost=lost, half_visible=half,
                       failed_open=failed_open, steps=steps)
    assert (lost, half, failed_open) == (0, 0, 0)
    assert kills >= steps > 0
