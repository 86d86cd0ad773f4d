"""Time a cache hit of compstore.cache.ObjectCache, in microseconds.

Usage: ``python benchmarks/bench_cache.py [--size small|large]``. Prints the
mean time per ``get_or_load`` hit for an object held in the LRU and for one
found only through the weak map (alive elsewhere, evicted from the LRU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from compstore.cache import ObjectCache

# entries in the cache, hits timed
SIZES = {"small": (1_000, 100_000), "large": (100_000, 1_000_000)}


def _time_hits(cache: ObjectCache, digests: list[str], hits: int) -> float:
    def loader() -> np.ndarray:
        raise AssertionError("a hit must not load")

    n = len(digests)
    start = time.perf_counter()
    for i in range(hits):
        cache.get_or_load(digests[i % n], loader)
    return (time.perf_counter() - start) / hits * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args(argv)
    entries, hits = SIZES[args.size]
    digests = [f"{i:032x}" for i in range(entries)]

    cache = ObjectCache()
    for digest in digests:
        array = np.zeros(16)
        array.flags.writeable = False
        cache.get_or_load(digest, lambda array=array: array)
    strong = _time_hits(cache, digests, hits)

    # Weak-map hits: the LRU cannot hold anything, the objects live in `held`.
    weak_cache = ObjectCache(max_bytes=0)
    held = [weak_cache.get_or_load(d, lambda: np.zeros(16)) for d in digests]
    weak = _time_hits(weak_cache, digests, hits)
    del held

    print(f"entries={entries} hits={hits}")
    print(f"cache hit (LRU):      {strong:.2f} us")
    print(f"cache hit (weak map): {weak:.2f} us")


if __name__ == "__main__":
    main()
