"""Put and get of one exposure + catalog against numpy.save / numpy.load of the same arrays.

For a synthetic 2048x2048 exposure (image f32, mask i32, variance f32, Wcs,
Calib, Psf, ...) and its source catalog, prints the median time of

- ``Butler(fsync=False).put`` of both vs ``numpy.save`` of their arrays
  (one ``.npy`` file per plane and per column, no fsync either);
- ``Butler(fsync=True).put`` vs ``numpy.save`` + ``os.fsync`` of each file;
- ``Butler.get`` of both with the object cache emptied first vs ``numpy.load``
  of the same files, and ``np.copyto`` of the arrays (memcpy, the floor);

and their ratios, all measured in one run with the operations alternating
(page cache warm). Every put stores a different exposure (visit k), so no put
is shortened by deduplication.

Usage::

    python benchmarks/bench_put_get.py                 # 2048 px, 7 repeats
    python benchmarks/bench_put_get.py --size tiny     # 256 px, 3 repeats (CI)
    python benchmarks/bench_put_get.py --edge 4096 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from _common import (
    ArrayLimits,
    alternate,
    catalog_arrays,
    exposure_arrays,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    machine,
    markdown_table,
    write_result,
    survey_butler,
)
from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

SIZES = {"tiny": (256, 3), "small": (1024, 5), "full": (2048, 7)}  # edge, repeats


def _save_fsync(limits: ArrayLimits) -> None:
    for a, p in zip(limits.arrays, limits.paths, strict=True):
        with open(p, "wb") as f:
            np.save(f, a, allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())


def run(edge: int, repeat: int, tmp: Path) -> str:
    print(f"making {repeat} exposures of {edge}x{edge} + catalogs ...", flush=True)
    items = []
    for k in range(repeat):
        exposure = make_exposure(visit=k + 1, detector=3, size=edge)
        items.append((exposure, make_catalog(exposure)))
    nbytes = sum(a.nbytes for a in exposure_arrays(items[0][0]) + catalog_arrays(items[0][1]))

    butlers = {}
    for name, fsync in (("nofsync", False), ("fsync", True)):
        b = survey_butler(tmp / f"cs_{name}", fsync=fsync)
        # Warm-up put and get (imports, codec set-up, SQL statement caches), untimed.
        warm = make_exposure(visit=999, detector=0, size=64)
        b.put(warm, "calexp", visit=999, detector=0)
        b.put(make_catalog(warm), "src", visit=999, detector=0)
        b.get("calexp", visit=999, detector=0)
        b.get("src", visit=999, detector=0)
        butlers[name] = b
    limits = [
        ArrayLimits(exposure_arrays(e) + catalog_arrays(c), tmp / f"npy{k}") for k, (e, c) in enumerate(items)
    ]

    def put(name: str):
        def fn(k: int) -> None:
            e, c = items[k]
            butlers[name].put(e, "calexp", visit=k + 1, detector=3)
            butlers[name].put(c, "src", visit=k + 1, detector=3)

        return fn

    put_t = alternate(
        {
            "put": (None, put("nofsync")),
            "save": (None, lambda k: limits[k].save()),
            "put_fsync": (None, put("fsync")),
            "save_fsync": (None, lambda k: _save_fsync(limits[k])),
        },
        repeat,
    )

    b = butlers["nofsync"]

    def get(k: int) -> None:
        b.get("calexp", visit=k + 1, detector=3)
        b.get("src", visit=k + 1, detector=3)

    get_t = alternate(
        {
            "get": (lambda k: b.cache.clear(), get),
            "load": (None, lambda k: limits[k].load()),
            "memcpy": (None, lambda k: limits[k].memcpy()),
        },
        repeat,
    )
    b.cache.clear()
    get(0)
    hit = alternate({"hit": (None, lambda k: get(0))}, max(repeat, 5))["hit"]

    rows = [
        ["put, fsync=False", fmt_time(put_t["put"]), "numpy.save", fmt_time(put_t["save"]),
         fmt_ratio(put_t["put"], put_t["save"]), fmt_time(get_t["memcpy"])],
        ["put, fsync=True", fmt_time(put_t["put_fsync"]), "numpy.save + fsync", fmt_time(put_t["save_fsync"]),
         fmt_ratio(put_t["put_fsync"], put_t["save_fsync"]), fmt_time(get_t["memcpy"])],
        ["get, cache empty", fmt_time(get_t["get"]), "numpy.load", fmt_time(get_t["load"]),
         fmt_ratio(get_t["get"], get_t["load"]), fmt_time(get_t["memcpy"])],
        ["get, cache hit", fmt_time(hit), "numpy.load", fmt_time(get_t["load"]),
         fmt_ratio(hit, get_t["load"]), fmt_time(get_t["memcpy"])],
    ]
    table = markdown_table(
        ["operation (exposure + catalog)", "compstore", "numpy op", "numpy", "compstore / numpy", "memcpy"], rows
    )
    head = (
        f"bench_put_get: {edge}x{edge} exposure + catalog ({fmt_bytes(nbytes)} of arrays), "
        f"medians of {repeat}, page cache warm\n{machine()}\n"
    )
    return head + "\n" + table + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--edge", type=int, help="image edge in pixels (overrides --size)")
    parser.add_argument("--repeat", type=int, help="repeats (default by --size)")
    parser.add_argument("--tmp", help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    edge, repeat = SIZES[args.size]
    edge = args.edge or edge
    repeat = args.repeat or repeat
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        text = run(edge, repeat, Path(tmp))
    print(text)
    if not args.no_write:
        path = write_result(f"put_get_{edge}.md", text)
        if path:
            print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
