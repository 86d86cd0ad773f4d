"""The registry on SQLite and on PostgreSQL (loopback), in one run (issue 16's goals).

Measures, on each database: a cache-hit ``Butler.get`` (the data-ID memo
validated by ``data_version``), ``Registry.find_dataset``, a ``where`` query
returning 1,000 refs, and a bulk insert (rows/s). PostgreSQL is a throw-away
server started here (``compstore.testing.postgres``, durable settings).
Goals on PostgreSQL: get < 50 us, find < 0.5 ms, 1,000-ref where < 0.1 s,
bulk insert >= 50,000 rows/s. Prints each figure and the PostgreSQL/SQLite ratio.

    python benchmarks/bench_registry_pg.py --size small|medium|large
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from compstore import Butler
from compstore.testing.postgres import PostgresServer

SIZES = {"tiny": 2_000, "small": 20_000, "medium": 200_000, "large": 1_000_000}


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) if repeat < 5 else statistics.median(times)


def measure(root: Path, registry: str | None, rows: int) -> dict[str, float]:
    Butler.create(root, registry=registry)
    butler = Butler(root, run="sfm")
    butler.register_dataset_type("x", ("visit", "detector"), "Array")
    butler.put(np.arange(8), "x", visit=0, detector=0)
    reader = Butler(root, collections="sfm")
    reader.get("x", visit=0, detector=0)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        reader.get("x", visit=0, detector=0)
    get_us = (time.perf_counter() - start) / n * 1e6
    registry_ = butler.registry
    start = time.perf_counter()
    for _ in range(n):
        registry_.find_dataset("x", {"visit": 0, "detector": 0}, "sfm")
    find_ms = (time.perf_counter() - start) / n * 1e3
    registry_.register_run("bulk")
    data_ids = [{"visit": 1 + i // 100, "detector": i % 100} for i in range(rows)]
    manifests = ["m"] * rows
    start = time.perf_counter()
    registry_.insert_datasets("x", data_ids, "bulk", manifests)
    rate = rows / (time.perf_counter() - start)
    where_s = _best(lambda: registry_.query_datasets("x", "visit <= 10", "bulk"), 5)
    assert len(registry_.query_datasets("x", "visit <= 10", "bulk")) == min(rows, 1000)
    return {"get_us": get_us, "find_ms": find_ms, "where_s": where_s, "insert_rows_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=SIZES, default="small")
    args = parser.parse_args()
    rows = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as server:
        sqlite = measure(Path(tmp) / "sqlite", None, rows)
        pg = measure(Path(tmp) / "pg", server.new_database(), rows)
    goals = {"get_us": 50, "find_ms": 0.5, "where_s": 0.1, "insert_rows_s": 50_000}
    print(f"rows inserted: {rows:,}")
    print(f"{'figure':<16}{'SQLite':>14}{'PostgreSQL':>14}{'PG/SQLite':>11}{'PG goal':>12}")
    for key, goal in goals.items():
        ok = pg[key] >= goal if key == "insert_rows_s" else pg[key] < goal
        print(f"{key:<16}{sqlite[key]:>14.4g}{pg[key]:>14.4g}{pg[key] / sqlite[key]:>11.2f}"
              f"{goal:>10.4g} {'ok' if ok else 'MISS'}")


if __name__ == "__main__":
    main()
