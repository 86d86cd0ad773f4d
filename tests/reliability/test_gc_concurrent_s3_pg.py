"""gc in a loop beside writer processes on object storage with a PostgreSQL registry.

As `test_gc_concurrent` (same writer script: overlapping contents, removes,
re-puts of objects read back), on a repository in a bucket (moto's S3 server)
whose registry is PostgreSQL, so the gc lock is advisory locks in that
database (`compstore.cas._gclock_pg`). Afterwards every registered dataset
reads back equal to what was put and `verify(deep=True)` is clean.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

from .test_gc_concurrent import _CONTENTS, _WRITER


def test_gc_loop_beside_writer_processes_on_s3_with_postgresql(
    s3_server, s3_bucket, postgres_url, monkeypatch, reliability_scale, reliability_counts
):
    for key, value in s3_server.environment().items():
        monkeypatch.setenv(key, value)  # the writer processes inherit them
    repo = f"s3://{s3_bucket}/gc/loop"
    Butler.create(repo, registry=postgres_url)
    setup = Butler(repo)
    setup.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    setup.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    writers, per_writer = 3, 20 * reliability_scale
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, repo, f"w{i}", str(per_writer)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(writers)
    ]
    gcs = freed = 0
    gc_butler = Butler(repo)
    while any(p.poll() is None for p in procs):
        freed += gc_butler.gc().components
        gcs += 1
    outputs = [p.communicate() for p in procs]
    failed = [err for p, (_, err) in zip(procs, outputs) if p.returncode != 0]
    puts = sum(int(out.strip() or 0) for out, _ in outputs)
    freed += gc_butler.gc().components

    verify = Butler(repo).verify(deep=True)
    expected = {}
    for c in range(_CONTENTS):
        e = make_exposure(c, 0, size=48, seed=7)
        expected[c] = (e, make_catalog(e))
    datasets = corrupt = 0
    for i in range(writers):
        reader = Butler(repo, collections=f"w{i}")
        for ref in reader.query_datasets("calexp"):
            k = ref.data_id["visit"]
            want, want_cat = expected[k % _CONTENTS]
            got = reader.get("calexp", visit=k, detector=0)
            cat = reader.get("src", visit=k, detector=0)
            same = np.array_equal(got.image, want.image) and got.wcs == want.wcs and all(
                np.array_equal(cat.table[n], want_cat.table[n]) for n in want_cat.columns
            )
            corrupt += not same
            datasets += 2
    reliability_counts(
        "gc beside writers on S3 + PostgreSQL",
        puts=puts, puts_failed=len(failed), gc_runs=gcs, components_freed=freed,
        referenced_lost=len(verify.problems), corrupt=corrupt, datasets_read_back=datasets,
    )
    assert not failed, failed[0][-3000:]
    assert puts == writers * per_writer
    assert verify.ok, str(verify)[:3000]
    assert corrupt == 0 and datasets == 2 * (puts - puts // 5)
    assert verify.unreferenced == 0
    assert gcs >= 3 and freed > 0
