"""A create killed at any moment leaves a folder that either opens or can be created again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from compstore import Butler
from compstore._repository import CONFIG_NAME

_CHILD = """
import sys, time
from compstore._repository import Repository
print("ready", flush=True)
sys.stdin.readline()
start = time.perf_counter()
Repository.create(sys.argv[1])
print(f"done {time.perf_counter() - start:.3f}", flush=True)
"""


def _start(root: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def test_a_killed_create_leaves_a_folder_that_opens_or_is_created_again(
    tmp_path, reliability_scale, reliability_counts
):
    # How long one create takes here: kills are spread over that time (and a bit past).
    child = _start(tmp_path / "timed")
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    duration = float(child.stdout.readline().split()[1])
    child.wait()
    rng = random.Random(12)
    trials = 16 * reliability_scale
    outcomes = {"no_folder": 0, "recreated": 0, "opened": 0}
    for trial in range(trials):
        root = tmp_path / f"r{trial}"
        child = _start(root)
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
        time.sleep(rng.uniform(0, duration * 1.1))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if not root.exists():
            outcomes["no_folder"] += 1
            Butler.create(root)
        elif (root / CONFIG_NAME).exists():
            outcomes["opened"] += 1
        else:
            outcomes["recreated"] += 1
            Butler.create(root)  # starts over: the half-made parts are removed
        butler = Butler(root, run="r")
        butler.register_dataset_type("thing", ("visit",), "Wcs")
        assert butler.query_datasets("thing") == []
        butler.registry.close()
    reliability_counts("killed creates", kills=trials, **outcomes, unusable=0)
    # The kills did land inside the create, not only before or after it.
    assert outcomes["recreated"] >= trials // 4, outcomes


def test_a_folder_with_data_but_no_config_is_never_cleared(tmp_path):
    import pytest

    from compstore.errors import RepositoryExistsError

    root = tmp_path / "repo"
    butler = Butler.create(root)
    butler.register_dataset_type("thing", ("visit",), "Wcs")
    butler.registry.close()
    (root / CONFIG_NAME).unlink()  # a repository that lost its config
    with pytest.raises(RepositoryExistsError, match="holds data"):
        Butler.create(root)
    assert (root / "registry.sqlite3").exists()
