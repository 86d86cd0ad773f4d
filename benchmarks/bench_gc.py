"""gc of a repository of many small components: time, memory, and against verify as a baseline.

Builds a repository of N components (``--size``: tiny 2,000, small 20,000,
full 100,000): N/2 datasets of storage class ``Array``, each a unique
16-element array (one packed component) and its manifest, put with
``put_many`` in batches. Then removes every other batch (half the
components become garbage, so packs are deleted or kept) and times

- ``verify()`` (the baseline: a walk of every manifest and a check of every
  component's files, in the same run),
- ``gc()``, with its peak Python memory (tracemalloc), and a second ``gc()``
  (nothing to do: the cost of mark + listing alone).

Prints the times, the ratio gc / verify, and the peak memory per live
component. The issue's target: 100,000 components in under 60 s here.

Usage::

    python benchmarks/bench_gc.py                # --size full (100,000 components)
    python benchmarks/bench_gc.py --size tiny    # CI smoke
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from compstore import Butler

SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}
BATCH = 500


def build(root: Path, components: int) -> Butler:
    Butler.create(root)
    butler = Butler(root, run="bench", fsync=False)
    butler.register_dataset_type("vector", ("visit",), "Array")
    rng = np.random.default_rng(14)
    n = components // 2
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        butler.put_many(
            [(rng.standard_normal(16), "vector", {"visit": v}) for v in range(start, stop)]
        )
    # Every other batch becomes garbage: whole packs die, others stay whole.
    dead = [r for r in butler.query_datasets("vector") if (r.data_id["visit"] // BATCH) % 2]
    butler.remove(dead)
    return butler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    args = parser.parse_args()
    components = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        t0 = time.perf_counter()
        build(root, components)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        Butler(root).verify()
        verify = time.perf_counter() - t0
        tracemalloc.start()
        report = Butler(root).gc(progress=True)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t0 = time.perf_counter()
        again = Butler(root).gc()
        second = time.perf_counter() - t0
    print(f"components stored: {components} (built in {built:.1f} s)")
    print(f"verify (baseline): {verify:.2f} s")
    print(f"gc: {report.seconds:.2f} s = {report.seconds / verify:.2f} x verify; {report}")
    print(f"gc again (nothing to delete): {second:.2f} s = {second / verify:.2f} x verify; "
          f"deleted {again.components}")
    print(f"gc peak Python memory: {peak / 2**20:.1f} MiB = {peak / max(report.live, 1):.0f} B "
          f"per live component ({report.live} live)")
    ok = report.components >= components // 4 and again.components == 0
    print("target (100,000 components under 60 s):",
          "met" if args.size != "full" or report.seconds < 60 else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
