"""How compstore's put, get and memory scale: with image size, repository size, datasets held.

Three sweeps, medians of repeats, page cache warm, fsync off:

1. image size (1k, 2k, 4k square): put and get (object cache emptied) of one
   exposure, beside ``numpy.save``/``numpy.load`` of its three planes; every
   put goes into a fresh repository, so nothing is deduplicated;
2. repository size (1k to 1M datasets, bulk-inserted registry rows): put of
   a new 512x512 exposure and get of a stored one, to show the registry does
   not slow the object path down;
3. datasets loaded together (1 to 16 exposures + catalogs): peak traced memory
   (tracemalloc) against the unique array bytes held.

Writes ``benchmarks/results/scaling_<size>.md`` and, if matplotlib is
installed, ``scaling_<size>_*.png`` beside it.

Usage::

    python benchmarks/bench_scaling.py                # 1k/2k/4k, up to 1M datasets
    python benchmarks/bench_scaling.py --size tiny    # 128/256/512 px, up to 10k datasets (CI)
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path
from typing import Any

from _common import (
    RESULTS,
    ArrayLimits,
    alternate,
    catalog_arrays,
    exposure_arrays,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    machine,
    markdown_table,
    unique_bytes,
    write_result,
    survey_butler,
)
from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure


@dataclasses.dataclass(frozen=True)
class Size:
    edges: tuple[int, ...]
    repo_sizes: tuple[int, ...]
    repo_edge: int
    loaded: tuple[int, ...]
    loaded_edge: int
    repeat: int


SIZES = {
    "tiny": Size((128, 256, 512), (1_000, 10_000), 128, (1, 2, 4), 128, 3),
    "small": Size((512, 1024, 2048), (1_000, 10_000, 100_000), 256, (1, 2, 4, 8), 512, 3),
    "full": Size((1024, 2048, 4096), (1_000, 10_000, 100_000, 1_000_000), 512, (1, 2, 4, 8, 16), 1024, 5),
}


def image_sweep(size: Size, repeat: int, tmp: Path) -> list[dict[str, Any]]:
    out = []
    warm = survey_butler(tmp / "warm")
    warm.put(make_exposure(1, 0, size=64), "calexp", visit=1, detector=0)
    warm.get("calexp", visit=1, detector=0)
    for edge in size.edges:
        print(f"image size {edge}x{edge} ...", flush=True)
        exposure = make_exposure(1, 0, size=edge)
        limits = ArrayLimits(exposure_arrays(exposure), tmp / f"npy{edge}")
        repos: list[Butler] = []

        def put(rep: int) -> None:
            repos[rep].put(exposure, "calexp", visit=1, detector=0)

        def setup_put(rep: int) -> None:
            repos.append(survey_butler(tmp / f"img{edge}_{rep}"))

        def get(rep: int) -> None:
            repos[rep].get("calexp", visit=1, detector=0)

        t_put = alternate({"put": (setup_put, put), "save": (None, limits.save)}, repeat)
        t_get = alternate(
            {"get": (lambda rep: repos[rep].cache.clear(), get), "load": (None, limits.load)}, repeat
        )
        out.append({"edge": edge, "bytes": limits.nbytes, **t_put, **t_get})
        del exposure, limits, repos
        gc.collect()
    return out


def repo_sweep(size: Size, repeat: int, tmp: Path) -> list[dict[str, Any]]:
    out = []
    b = survey_butler(tmp / "repo")
    edge = size.repo_edge
    stored = make_exposure(2_000_000, 0, size=edge)
    b.put(stored, "calexp", visit=2_000_000, detector=0)
    # Warm-up put (untimed), so that the first size does not pay for first calls.
    b.put(make_exposure(2_000_001, 0, size=edge), "calexp", visit=2_000_001, detector=0)
    filled = 0
    next_visit = 3_000_000
    for n in size.repo_sizes:
        print(f"repository of {n:,} datasets ...", flush=True)
        # New exposures at every size: a put of content stored already would be deduplicated.
        fresh = [make_exposure(next_visit + k, 0, size=edge) for k in range(repeat)]
        if n > filled:
            rows = range(filled, n)
            b.registry.insert_datasets(
                "calexp",
                [{"visit": i // 1000, "detector": i % 1000} for i in rows],
                "sfm",
                [f"{i:032x}" for i in rows],
            )
            filled = n

        visits = list(range(next_visit, next_visit + repeat))
        next_visit += repeat

        def put(rep: int) -> None:
            b.put(fresh[rep], "calexp", visit=visits[rep], detector=0)

        t = alternate(
            {
                "put": (None, put),
                "get": (lambda rep: b.cache.clear(), lambda rep: b.get("calexp", visit=2_000_000, detector=0)),
                "find": (None, lambda rep: b.find_dataset("calexp", visit=(rep * 7919 % n) // 1000,
                                                           detector=rep * 7919 % n % 1000)),
            },
            repeat,
        )
        out.append({"datasets": n, **t})
    return out


def memory_sweep(size: Size, tmp: Path) -> list[dict[str, Any]]:
    b = survey_butler(tmp / "mem")
    edge = size.loaded_edge
    n_max = max(size.loaded)
    print(f"putting {n_max} exposures of {edge}x{edge} for the memory sweep ...", flush=True)
    for d in range(n_max):
        e = make_exposure(1, d, size=edge)
        b.put(e, "calexp", visit=1, detector=d)
        b.put(make_catalog(e), "src", visit=1, detector=d)
        del e
    out = []
    for n in size.loaded:
        b.cache.clear()
        gc.collect()
        tracemalloc.start()
        objs = [b.get(k, visit=1, detector=d) for d in range(n) for k in ("calexp", "src")]
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        arrays = []
        for o in objs:
            arrays += exposure_arrays(o) if hasattr(o, "image") else catalog_arrays(o)
        out.append({"datasets": n, "peak": peak, "held": current, "unique": unique_bytes(arrays)})
        del objs, arrays
    return out


def plots(size_name: str, img: list[dict], repo: list[dict], mem: list[dict]) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install matplotlib)")
        return []
    RESULTS.mkdir(exist_ok=True)
    paths = []

    def save(fig: Any, ax: Any, what: str) -> Path:
        ax.legend()
        path = RESULTS / f"scaling_{size_name}_{what}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    fig, ax = plt.subplots(figsize=(6, 4))
    edges = [r["edge"] for r in img]
    for key, label, style in (("put", "compstore put", "o-"), ("get", "compstore get", "s-"),
                              ("save", "numpy.save", "o--"), ("load", "numpy.load", "s--")):
        ax.plot(edges, [r[key] * 1e3 for r in img], style, label=label)
    ax.set(xscale="log", yscale="log", xlabel="image edge (pixels)", ylabel="ms (median)",
           title="put / get vs image size")
    ax.set_xticks(edges, [str(e) for e in edges])
    paths.append(save(fig, ax, "image"))

    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["datasets"] for r in repo]
    for key, label in (("put", "put 512x512 exposure"), ("get", "get exposure (cache empty)"),
                       ("find", "find dataset by data ID")):
        ax.plot(ns, [r[key] * 1e3 for r in repo], "o-", label=label)
    ax.set(xscale="log", yscale="log", xlabel="datasets in the registry", ylabel="ms (median)",
           title="put / get vs repository size")
    paths.append(save(fig, ax, "repository"))

    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["datasets"] for r in mem]
    ax.plot(ns, [r["peak"] / 2**20 for r in mem], "o-", label="peak traced memory")
    ax.plot(ns, [r["unique"] / 2**20 for r in mem], "s--", label="unique array bytes held")
    ax.set(xlabel="exposures + catalogs loaded", ylabel="MiB", title="memory vs datasets loaded")
    paths.append(save(fig, ax, "memory"))
    return paths


def report(size_name: str, repeat: int, img: list[dict], repo: list[dict], mem: list[dict]) -> str:
    parts = [f"bench_scaling --size {size_name}: medians of {repeat}, page cache warm, fsync off\n\n{machine()}\n"]
    parts.append("### put / get vs image size (one exposure, 3 planes)\n")
    parts.append(markdown_table(
        ["edge", "array bytes", "put", "numpy.save", "put / save", "get (cache empty)", "numpy.load", "get / load"],
        [[r["edge"], fmt_bytes(r["bytes"]), fmt_time(r["put"]), fmt_time(r["save"]), fmt_ratio(r["put"], r["save"]),
          fmt_time(r["get"]), fmt_time(r["load"]), fmt_ratio(r["get"], r["load"])] for r in img],
    ))
    parts.append("\n### put / get vs repository size\n")
    parts.append(markdown_table(
        ["datasets", "put exposure", "get exposure (cache empty)", "find dataset by data ID"],
        [[f"{r['datasets']:,}", fmt_time(r["put"]), fmt_time(r["get"]), fmt_time(r["find"])] for r in repo],
    ))
    parts.append("\n### memory vs datasets loaded together (tracemalloc)\n")
    parts.append(markdown_table(
        ["exposures + catalogs", "peak", "held after", "unique array bytes", "peak / unique"],
        [[r["datasets"], fmt_bytes(r["peak"]), fmt_bytes(r["held"]), fmt_bytes(r["unique"]),
          fmt_ratio(r["peak"], r["unique"])] for r in mem],
    ))
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--tmp", help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="no results/ files, no plots")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    repeat = args.repeat or size.repeat
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        img = image_sweep(size, repeat, Path(tmp))
        repo = repo_sweep(size, repeat, Path(tmp))
        mem = memory_sweep(size, Path(tmp))
    text = report(args.size, repeat, img, repo, mem)
    print(text)
    if not args.no_write:
        pngs = plots(args.size, img, repo, mem)
        for p in pngs:
            text += f"\n![{p.stem}]({p.name})\n"
        path = write_result(f"scaling_{args.size}.md", text)
        for p in [path, *pngs]:
            if p:
                print(f"written {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
