"""Format 1 (a file per component) against format 2 (small components in packs), paired.

Two repositories in one process, one of each format, each given the same
synthetic exposures + source catalogs (a new visit/detector each time, so
nothing deduplicates), with ``numpy.save`` of the same arrays in between;
the three operations alternate. Prints the medians of

- put exposure + catalog, and of it the catalog's put, against ``numpy.save``;
- get exposure + catalog with the object cache emptied, against ``numpy.load``;
- the files and folders each repository holds, and its bytes on disk.

Usage::

    python benchmarks/bench_packs.py                 # 24 x 2048 px
    python benchmarks/bench_packs.py --size tiny     # 4 x 256 px (CI)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (
    ArrayLimits,
    StealMeter,
    catalog_arrays,
    dir_bytes,
    exposure_arrays,
    fmt_bytes,
    fmt_time,
    machine,
    markdown_table,
    survey_butler,
    write_result,
)
from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

SIZES = {"tiny": (256, 4), "small": (1024, 12), "full": (2048, 24)}  # edge, exposures
FORMATS = ("1.0", "2.0")


def _repository(root: Path, version: str) -> Butler:
    """A repository of format ``version`` (created as the current one, then marked)."""
    Butler.create(root)
    config = root / "compstore.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "version": version}))
    return survey_butler(root)


def _alternate(ops: dict[str, Callable[[], None]], turn: int) -> None:
    """Run every op once, in an order that gives each op each place and each neighbour.

    The order rotates every turn and reverses every ``len(ops)`` turns: an op
    measured right after another ran slower here (the one listed second was
    slower whichever format it was), so no format may keep one position.
    """
    names = list(ops)
    if (turn // len(names)) % 2:
        names.reverse()
    for name in names[turn % len(names) :] + names[: turn % len(names)]:
        gc.collect()
        ops[name]()


def run(edge: int, count: int, tmp: Path) -> str:
    butlers = {v: _repository(tmp / f"format{v}", v) for v in FORMATS}
    assert not butlers["1.0"].blobs.packs and butlers["2.0"].blobs.packs
    put = {k: [] for k in (*FORMATS, "numpy")}
    catalog_put: dict[str, list[float]] = {v: [] for v in FORMATS}
    get = {k: [] for k in (*FORMATS, "numpy")}
    ids = [divmod(i, 4) for i in range(count)]
    saved: list[ArrayLimits] = []
    steal = StealMeter()
    for turn, (visit, detector) in enumerate(ids):
        exposure = make_exposure(visit, detector, size=edge)
        catalog = make_catalog(exposure)
        limits = ArrayLimits(exposure_arrays(exposure) + catalog_arrays(catalog),
                             tmp / "npy" / f"{visit}_{detector}")  # fmt: skip
        saved.append(limits)

        def put_into(version: str) -> None:
            b = butlers[version]
            t0 = time.perf_counter()
            b.put(exposure, "calexp", visit=visit, detector=detector)
            t1 = time.perf_counter()
            b.put(catalog, "src", visit=visit, detector=detector)
            t2 = time.perf_counter()
            put[version].append(t2 - t0)
            catalog_put[version].append(t2 - t1)

        def save() -> None:
            t0 = time.perf_counter()
            limits.save()
            put["numpy"].append(time.perf_counter() - t0)

        ops = {v: (lambda v=v: put_into(v)) for v in FORMATS}
        _alternate({**ops, "numpy": save}, turn)
    for turn, ((visit, detector), limits) in enumerate(zip(ids, saved, strict=True)):

        def get_from(version: str) -> None:
            b = butlers[version]
            b.cache.clear()
            b.registry._remembered.clear()  # the data-ID memo (Registry.remembered)
            t0 = time.perf_counter()
            b.get("calexp", visit=visit, detector=detector)
            b.get("src", visit=visit, detector=detector)
            get[version].append(time.perf_counter() - t0)

        def load(limits: ArrayLimits = limits) -> None:
            t0 = time.perf_counter()
            limits.load()
            get["numpy"].append(time.perf_counter() - t0)

        ops = {v: (lambda v=v: get_from(v)) for v in FORMATS}
        _alternate({**ops, "numpy": load}, turn)
    med = {k: statistics.median(v) for k, v in put.items()}
    gmed = {k: statistics.median(v) for k, v in get.items()}
    rows = []
    for v in FORMATS:
        root = tmp / f"format{v}"
        rows.append([
            f"format {v}" + (" (packs)" if v == "2.0" else ""),
            fmt_time(med[v]), f"{med[v] / med['numpy']:.2f}x",
            fmt_time(statistics.median(catalog_put[v])),
            fmt_time(gmed[v]), f"{gmed[v] / gmed['numpy']:.2f}x",
            f"{sum(1 for _ in root.rglob('*')):,}", fmt_bytes(dir_bytes(root)),
        ])  # fmt: skip
    table = markdown_table(
        ["repository", "put exposure + catalog", "/ numpy.save", "of which the catalog",
         "get both, cache empty", "/ numpy.load", "files and folders", "bytes"],
        rows,
    )  # fmt: skip
    return (
        f"bench_packs: {count} exposures of {edge}x{edge} + catalogs, one repository of each "
        f"format, numpy.save/load of the same arrays alternating; medians; fsync off\n\n"
        f"{machine()}\n\n{steal.report()}\n\n"
        f"{table}\n\nnumpy.save {fmt_time(med['numpy'])}, numpy.load {fmt_time(gmed['numpy'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--tmp", default=None, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args()
    edge, count = SIZES[args.size]
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        text = run(edge, count, Path(tmp))
    print(text)
    if not args.no_write:
        write_result(f"packs_{args.size}.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
