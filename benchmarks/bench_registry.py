"""Check that registry lookups stay O(log n): 1,000 vs 1,000,000 datasets.

Prints the time of a data-ID lookup among a small and a large registry, their
ratio (target: at most ~1.5), the bulk-insert rate, the time of a one-row put
transaction with and without the commit's fsync, and the time of a ``where``
query returning 1,000 refs out of the large one (target: < 0.1 s).

Usage::

    python benchmarks/bench_registry.py              # 1,000 vs 1,000,000
    python benchmarks/bench_registry.py --size small # 1,000 vs 20,000 (CI)
    python benchmarks/bench_registry.py --large 200000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from compstore.registry import Registry

SIZES = {"full": 1_000_000, "medium": 200_000, "small": 20_000}
SMALL = 1_000


def build(path: Path, n: int) -> tuple[Registry, float]:
    """Create a registry holding ``n`` calexp datasets (1,000 detectors per visit)."""
    registry = Registry.create(path)
    registry.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    registry.register_run("sfm")
    detectors = min(n, 1000)
    data_ids = [{"visit": i // detectors, "detector": i % detectors} for i in range(n)]
    manifests = [f"{i:032x}" for i in range(n)]
    start = time.perf_counter()
    registry.insert_datasets("calexp", data_ids, "sfm", manifests)
    return registry, time.perf_counter() - start


def time_lookups(registry: Registry, n: int, repeats: int = 2000) -> float:
    """Median seconds of one find_dataset over spread-out data IDs."""
    detectors = min(n, 1000)
    samples = []
    for k in range(repeats):
        i = (k * 7919) % n  # a prime stride touches pages all over the index
        data_id = {"visit": i // detectors, "detector": i % detectors}
        start = time.perf_counter()
        ref = registry.find_dataset("calexp", data_id, "sfm")
        samples.append(time.perf_counter() - start)
        assert ref is not None
    return statistics.median(samples)


def time_query(registry: Registry, where: str, bind: dict[str, object] | None = None) -> tuple[float, int]:
    """Best-of-5 seconds of a query_datasets call and its result size."""
    best, count = float("inf"), 0
    for _ in range(5):
        start = time.perf_counter()
        refs = registry.query_datasets("calexp", where, bind=bind)
        best = min(best, time.perf_counter() - start)
        count = len(refs)
    return best, count


def time_one_row_puts(registry: Registry, durable: bool, repeats: int = 500) -> float:
    """Median seconds of one transaction inserting one dataset (what a put commits)."""
    samples = []
    base = 10**9 + (0 if durable else 10**6)  # visits no other call uses
    for k in range(repeats):
        start = time.perf_counter()
        with registry.transaction(durable=durable):
            registry.insert_dataset("calexp", {"visit": base + k, "detector": 0}, "sfm", f"{k:032x}")
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--large", type=int, help="number of datasets in the large registry")
    args = parser.parse_args()
    large = args.large or SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        small_reg, _ = build(Path(tmp) / "small.sqlite3", SMALL)
        large_reg, insert_seconds = build(Path(tmp) / "large.sqlite3", large)
        t_small = time_lookups(small_reg, SMALL)
        t_large = time_lookups(large_reg, large)
        print(f"bulk insert: {large:,} rows in {insert_seconds:.2f} s "
              f"({large / insert_seconds:,.0f} rows/s)")
        print(f"find_dataset among {SMALL:,}: {t_small * 1e6:.1f} us (median)")
        print(f"find_dataset among {large:,}: {t_large * 1e6:.1f} us (median)")
        print(f"ratio: {t_large / t_small:.2f} (target <= 1.5)")
        full = time_one_row_puts(small_reg, durable=True)
        normal = time_one_row_puts(small_reg, durable=False)
        print(f"one-row put transaction: {full * 1e3:.2f} ms durable (synchronous=FULL), "
              f"{normal * 1e3:.2f} ms with durable=False (NORMAL, a Butler with fsync=False)")
        visit = (large // 1000) // 2
        for where, bind in [
            (f"visit = {visit}", None),
            ("visit = :v", {"v": visit}),
            (f"visit IN ({visit}, {visit + 1}) AND detector < 500", None),
            (f"visit >= {visit} AND visit < {visit + 1}", None),
            (f"detector = 7 AND visit < {min(1000, large // 1000)}", None),
        ]:
            seconds, count = time_query(large_reg, where, bind)
            print(f"query {where!r}: {count:,} refs in {seconds * 1e3:.1f} ms (target < 100 ms)")
        small_reg.close()
        large_reg.close()


if __name__ == "__main__":
    main()
