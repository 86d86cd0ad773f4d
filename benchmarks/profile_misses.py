"""Profile compstore's operations that miss their targets, with pyinstrument.

Builds the same kind of repository as ``bench_vs_daf_butler.py`` (a few
exposures + catalogs, fsync off), then runs each chosen operation several
times under pyinstrument and prints, per operation, the functions with the
most *self* time (what the time is spent doing) and the top of the call tree
(where it is spent). ``benchmarks/README.md`` ("Gaps and profiles") quotes it.

Usage::

    python benchmarks/profile_misses.py                      # every operation, 2048 px
    python benchmarks/profile_misses.py --op get --op hit    # some of them
    python benchmarks/profile_misses.py --size tiny          # 256 px (CI)

Operations: put, get, wcs, catalog, bbox, hit, jointcal, cutout, visit.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import survey_butler

from compstore import Box2I, Butler, Calib, Wcs
from compstore.testing.sky import make_catalog, make_exposure

SIZES = {"tiny": (256, 512, 3), "small": (1024, 2048, 4), "full": (2048, 4096, 5)}  # edge, cutout edge, runs
OPS = ("put", "get", "wcs", "catalog", "bbox", "hit", "jointcal", "cutout", "visit")


def _butler(root: Path, run: str = "sfm") -> Butler:
    return survey_butler(root, run=run, collections=["sfm"])  # type: ignore[no-any-return]


def profile(label: str, fn: Callable[[int], Any], runs: int, setup: Callable[[int], Any] | None,
            tree_lines: int, flat_lines: int) -> str:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    for i in range(runs):
        if setup is not None:
            setup(i)
        profiler.start()
        fn(i)
        profiler.stop()
    session = profiler.last_session
    total = session.duration if session else 0.0
    flat = profiler.output_text(flat=True, time="percent_of_total", show_all=False)
    tree = profiler.output_text(time="percent_of_total", show_all=False, short_mode=False)
    out = [f"=== {label}: {runs} run(s), {total / runs * 1e3:.2f} ms per run under the profiler ==="]
    out.append("-- self time (flat), top --")
    out += _body(flat)[:flat_lines]
    out.append("-- call tree, top --")
    out += _body(tree)[:tree_lines]
    return "\n".join(out) + "\n"


def _body(text: str) -> list[str]:
    """Drop pyinstrument's banner (everything up to its "Profile at"/"Program:" line)."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    start = 0
    for i, ln in enumerate(lines):
        if ln.lstrip().startswith(("Profile at", "Program:")):
            start = i + 1
            break
    return [ln for ln in lines[start:] if ln.strip() and not set(ln.strip()) <= set("_ -")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--op", action="append", choices=OPS, help="operation(s) to profile (default: all)")
    parser.add_argument("--tree-lines", type=int, default=30)
    parser.add_argument("--flat-lines", type=int, default=12)
    parser.add_argument("--tmp")
    args = parser.parse_args(argv)
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        print("pyinstrument is not installed: pip install pyinstrument", file=sys.stderr)
        return 2
    edge, cutout_edge, runs = SIZES[args.size]
    ops = args.op or list(OPS)
    detectors = list(range(runs))
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        root = Path(tmp) / "repo"
        b = _butler(root)
        print(f"making {runs} exposures of {edge}x{edge} ...", flush=True)
        items = []
        for d in detectors:
            e = make_exposure(1, d, size=edge)
            items.append((e, make_catalog(e)))
        # Warm-up (imports, statement caches), as the benchmark does.
        warm = make_exposure(99, 0, size=64)
        b.put(warm, "calexp", visit=99, detector=0)
        b.put(make_catalog(warm), "src", visit=99, detector=0)
        b.get("calexp", visit=99, detector=0)
        b.get("src", visit=99, detector=0)

        def put(i: int) -> None:
            e, c = items[i]
            b.put(e, "calexp", visit=1, detector=i)
            b.put(c, "src", visit=1, detector=i)

        done_put = False
        if "put" in ops:
            print(profile("put exposure + catalog (fsync off)", put, runs, None, args.tree_lines, args.flat_lines))
            done_put = True
        if not done_put:
            for i in detectors:
                put(i)
        del items

        def clear(_i: int) -> None:
            b.cache.clear()

        def get(name: str, **kw: Any) -> Callable[[int], Any]:
            return lambda i: b.get(name, visit=1, detector=i % runs, **kw)

        if "get" in ops:
            print(profile("get exposure (cache empty)", get("calexp"), runs, clear, args.tree_lines, args.flat_lines))
        if "wcs" in ops:
            print(profile("get calexp.wcs (cache empty)", get("calexp.wcs"), runs * 4, clear,
                          args.tree_lines, args.flat_lines))
        if "catalog" in ops:
            print(profile("get catalog (cache empty)", get("src"), runs * 2, clear, args.tree_lines, args.flat_lines))
        if "bbox" in ops:
            half = min(256, edge // 2)
            bbox = Box2I((edge // 2 - half // 2 + 3,) * 2, (half, half))
            print(profile(f"get {half}x{half} bbox (cache empty)", get("calexp", parameters={"bbox": bbox}),
                          runs * 2, clear, args.tree_lines, args.flat_lines))
        if "hit" in ops:
            held = b.get("calexp", visit=1, detector=0)

            def hits(_i: int) -> None:
                for _ in range(500):
                    b.get("calexp", visit=1, detector=0)

            print(profile("get exposure, cache hit (x500 per run)", hits, 3, None, args.tree_lines, args.flat_lines))
            del held
        if "jointcal" in ops:
            bj = _butler(root, run="jointcal")
            b.cache.clear()

            def jointcal(i: int) -> None:
                exp = bj.get("calexp", visit=1, detector=i)
                header = exp.wcs.to_header()
                header["CRVAL1"] = header["CRVAL1"] + 1e-5
                wcs = Wcs.from_header(header)
                calib = Calib(exp.calib.calibration * 1.01, exp.calib.calibration_err)
                bj.put(exp.replace(wcs=wcs, calib=calib), "calexp", visit=1, detector=i)

            print(profile("jointcal step (read, new Wcs + Calib, put)", jointcal, runs, None,
                          args.tree_lines, args.flat_lines))
        if "visit" in ops:
            def visit(_i: int) -> None:
                [b.get(k, visit=1, detector=d) for d in detectors for k in ("calexp", "src")]

            print(profile(f"load one visit ({runs} exposures + catalogs, cache empty)", visit, 2, clear,
                          args.tree_lines, args.flat_lines))
        if "cutout" in ops:
            print(f"making a {cutout_edge}x{cutout_edge} exposure ...", flush=True)
            big = make_exposure(7, 0, size=cutout_edge)
            b.put(big, "calexp", visit=7, detector=0)
            del big
            bbox = Box2I((cutout_edge // 3 + 7,) * 2, (100, 100))
            print(profile(f"get 100x100 cut-out of {cutout_edge}x{cutout_edge} (cache empty)",
                          lambda i: b.get("calexp", visit=7, detector=0, parameters={"bbox": bbox}),
                          runs * 2, clear, args.tree_lines, args.flat_lines))
            print(profile(f"get {cutout_edge}x{cutout_edge} whole (cache empty)",
                          lambda i: b.get("calexp", visit=7, detector=0), runs, clear,
                          args.tree_lines, args.flat_lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
