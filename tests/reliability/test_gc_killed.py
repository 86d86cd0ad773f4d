"""gc killed with SIGKILL at random moments: the repository opens, verifies clean, the next gc finishes.

Each round makes garbage (a scratch run of unique exposures and catalogs put
in one pack, so that the sweep deletes folders, documents and pack members
and repacks), removes the run, starts ``Butler.gc`` in a subprocess and kills
it after a random delay. After each kill the repository must open and
`verify` clean; at the end one gc must leave no unreferenced component, no
leftover staging folder, and every kept dataset reads back equal.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np

from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

_GC = "import sys; from compstore import Butler; Butler(sys.argv[1]).gc()"


def test_gc_killed_at_random_points(tmp_path, reliability_scale, reliability_counts):
    repo = tmp_path / "repo"
    Butler.create(repo)
    keep = Butler(repo, run="keep", fsync=False)
    keep.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    keep.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    kept = {}
    for d in range(3):
        e = make_exposure(1, d, size=64, seed=7)
        kept[d] = (e, make_catalog(e))
        keep.put_many([(e, "calexp", {"visit": 1, "detector": d}),
                       (kept[d][1], "src", {"visit": 1, "detector": d})])
    rng = random.Random(14)
    rounds, killed, finished, bad_opens = 12 * reliability_scale, 0, 0, 0
    whole = None  # how long an unkilled gc subprocess takes (measured in round 0)
    for r in range(rounds + 1):
        scratch = Butler(repo, run=f"scratch{r}", fsync=False)
        items = []
        for d in range(4):
            e = make_exposure(100 + r, d, size=64, seed=7)
            items += [(e, "calexp", {"visit": 2, "detector": d}),
                      (make_catalog(e), "src", {"visit": 2, "detector": d})]
        scratch.put_many(items)
        scratch.remove_run(f"scratch{r}")
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _GC, str(repo)])
        if whole is None:
            proc.wait()
            whole = time.perf_counter() - started
            continue
        # Most of a subprocess's time is importing: kills land in its last 40%.
        time.sleep(rng.uniform(0.6 * whole, 1.0 * whole))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        else:
            finished += 1
        proc.wait()
        try:
            report = Butler(repo).verify()
        except Exception:  # counted, then failed below with the figures printed
            bad_opens += 1
            continue
        if not report.ok:
            bad_opens += 1
    final = Butler(repo).gc()
    verify = Butler(repo).verify(deep=True)
    # (this process's own Butlers are live writers: their folders stay)
    leftovers = [e for e in os.listdir(repo / "blobs" / "staging") if not e.startswith(f"{os.getpid()}-")]
    reader = Butler(repo, collections="keep")
    for d, (e, c) in kept.items():
        got = reader.get("calexp", visit=1, detector=d)
        np.testing.assert_array_equal(got.image, e.image)
        assert got.wcs == e.wcs
        cat = reader.get("src", visit=1, detector=d)
        for name in c.columns:
            np.testing.assert_array_equal(cat.table[name], c.table[name])
    reliability_counts(
        "gc killed", rounds=rounds, killed=killed, finished=finished,
        bad_after_kill=bad_opens, final_components_freed=final.components,
        unreferenced_after=verify.unreferenced, staging_leftovers=len(leftovers),
    )
    assert bad_opens == 0
    assert killed >= rounds // 3
    assert verify.ok and verify.unreferenced == 0, str(verify)[:2000]
    assert leftovers == []
