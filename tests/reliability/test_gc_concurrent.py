"""gc in a loop while writer processes put overlapping data and remove some: nothing referenced goes.

Each writer process puts exposures and catalogs whose components (Wcs, Calib,
pixels) are the same across writers (four contents, round robin), removes some
of its own datasets, and re-puts objects it read back (their digests come from
the identity cache, the path a sweep could break). The test process runs
`Butler.gc` back to back meanwhile. Afterwards every registered dataset reads
back equal to what was put and `verify(deep=True)` is clean.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

_CONTENTS = 4

_WRITER = textwrap.dedent(
    """
    import sys
    from compstore import Butler
    from compstore.testing.sky import make_catalog, make_exposure
    repo, run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    butler = Butler(repo, run=run, fsync=False)
    made = {}
    def content(k):
        if k % %(contents)d not in made:
            e = make_exposure(k % %(contents)d, 0, size=48, seed=7)
            made[k % %(contents)d] = (e, make_catalog(e))
        return made[k % %(contents)d]
    puts = 0
    for k in range(n):
        exposure, catalog = content(k)
        if k %% 5 == 3:  # removed below: content of its own, garbage once removed
            exposure = make_exposure(1000 + k, int(run[1:]), size=48, seed=7)
            catalog = make_catalog(exposure)
        if k %% 5 == 4:  # re-put what was read back: digests remembered by the cache
            exposure = butler.get("calexp", visit=k - 4, detector=0)
            catalog = butler.get("src", visit=k - 4, detector=0)
        butler.put_many([(exposure, "calexp", {"visit": k, "detector": 0}),
                         (catalog, "src", {"visit": k, "detector": 0})])
        puts += 1
        if k %% 5 == 3:  # removes mixed in (never those re-read above, k - 4 for k %% 5 == 4)
            butler.remove([butler.find_dataset(t, visit=k, detector=0) for t in ("calexp", "src")])
    print(puts)
    """
).replace("%(contents)d", str(_CONTENTS)).replace("%%", "%")


def test_gc_loop_beside_writer_processes(tmp_path, reliability_scale, reliability_counts):
    repo = tmp_path / "repo"
    Butler.create(repo)
    setup = Butler(repo)
    setup.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    setup.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    writers, per_writer = 4, 60 * reliability_scale
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(repo), f"w{i}", str(per_writer)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(writers)
    ]
    gcs = freed = 0
    gc_butler = Butler(repo)
    while any(p.poll() is None for p in procs):
        report = gc_butler.gc()
        gcs += 1
        freed += report.components
    outputs = [p.communicate() for p in procs]
    failed = [err for p, (_, err) in zip(procs, outputs) if p.returncode != 0]
    puts = sum(int(out.strip() or 0) for out, _ in outputs)
    final = gc_butler.gc()
    freed += final.components

    fresh = Butler(repo)
    verify = fresh.verify(deep=True)
    expected = {}
    for c in range(_CONTENTS):
        e = make_exposure(c, 0, size=48, seed=7)
        expected[c] = (e, make_catalog(e))
    datasets = 0
    for i in range(writers):
        reader = Butler(repo, collections=f"w{i}")
        for ref in reader.query_datasets("calexp"):
            k = ref.data_id["visit"]
            want = expected[k % _CONTENTS][0]
            got = reader.get("calexp", visit=k, detector=0)
            np.testing.assert_array_equal(got.image, want.image)
            np.testing.assert_array_equal(got.mask.array if hasattr(got.mask, "array") else got.mask,
                                          want.mask.array if hasattr(want.mask, "array") else want.mask)
            assert got.wcs == want.wcs
            cat = reader.get("src", visit=k, detector=0)
            for name in want_cols(expected[k % _CONTENTS][1]):
                np.testing.assert_array_equal(cat.table[name], expected[k % _CONTENTS][1].table[name])
            datasets += 2
    missing = [p for p in verify.problems]
    reliability_counts(
        "gc beside writers",
        puts=puts, puts_failed=len(failed), gc_runs=gcs, components_freed=freed,
        referenced_deleted=len(missing), datasets_read_back=datasets,
    )
    assert not failed, failed[0][-3000:]
    assert puts == writers * per_writer >= 200
    assert verify.ok, str(verify)[:3000]
    assert verify.unreferenced == 0
    assert gcs >= 3 and freed > 0


def want_cols(catalog):
    return list(catalog.columns)
