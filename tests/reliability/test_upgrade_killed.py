"""kill -9 at every write step of `Butler.upgrade` (and of the first put after it).

The repository a killed upgrade leaves MUST open as format 2.0 or 3.0, never
neither: `verify` finds no problem, the dataset it held reads back, and a
format 3 config names its digest algorithm. (The child is `kill_child.py`'s
``upgrade`` scenario: every open for writing, mkdir, rename, replace, unlink
and fsync is a step.)
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from compstore import Butler
from compstore.testing.repository import copy_repository
from compstore.testing.sky import make_exposure

HERE = Path(__file__).resolve().parent


def _format_2_template(root: Path) -> Path:
    butler = Butler.create(root)
    config = {k: v for k, v in json.loads((root / "compstore.json").read_text()).items() if k != "digest"}
    (root / "compstore.json").write_text(json.dumps({**config, "version": "2.0"}))
    butler = Butler(root, run="r")
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.put(make_exposure(1, 0, size=64, seed=7), "calexp", visit=1, detector=0)
    butler.registry.close()
    return root


def test_a_killed_upgrade_leaves_format_2_or_format_3(tmp_path: Path, reliability_counts) -> None:
    template = _format_2_template(tmp_path / "template")
    zygote = subprocess.Popen(
        [sys.executable, str(HERE / "kill_child.py")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert zygote.stdin is not None and zygote.stdout is not None

    def run(kill_at: int) -> tuple[int, list[dict], Path]:
        root = tmp_path / f"trial-{kill_at}"
        copy_repository(template, root)
        acks = tmp_path / f"trial-{kill_at}.acks"
        acks.touch()
        zygote.stdin.write(f"upgrade {root} {kill_at} {acks}\n")  # type: ignore[union-attr]
        zygote.stdin.flush()  # type: ignore[union-attr]
        status = int(zygote.stdout.readline())  # type: ignore[union-attr]
        return status, [json.loads(x) for x in acks.read_text().splitlines()], root

    versions: dict[str, int] = {}
    kills = 0
    try:
        status, lines, _ = run(0)
        assert status == 0 and "steps" in lines[-1], lines
        steps = lines[-1]["steps"]
        for k in range(1, steps + 1):
            status, lines, root = run(k)
            assert status == signal.SIGKILL, f"step {k}: status {status}"
            kills += 1
            config = json.loads((root / "compstore.json").read_text())
            version = config["version"]
            versions[version] = versions.get(version, 0) + 1
            assert version in ("2.0", "3.0"), (k, config)
            assert version == "2.0" or config["digest"] == "xxh3-128"
            butler = Butler(root)
            assert butler.verify(deep=True).ok, (k, butler.verify(deep=True).problems)
            got = butler.get("calexp", visit=1, detector=0, collections="r")
            np.testing.assert_array_equal(got.image, make_exposure(1, 0, size=64, seed=7).image)
            if any("run" in x for x in lines):  # the put after the upgrade returned
                assert butler.get("calexp", visit=1, detector=2, collections="r").image.shape == (64, 64)
            butler.registry.close()
            shutil.rmtree(root, ignore_errors=True)
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    reliability_counts("upgrade-kill", kills=kills, **{f"opened_as_{v}": n for v, n in versions.items()})
    # Killed before the config's rename: 2.0; after: 3.0. Both happen.
    assert versions.get("2.0", 0) > 0 and versions.get("3.0", 0) > 0
