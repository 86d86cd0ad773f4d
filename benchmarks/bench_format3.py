"""What format 3 costs: blake3 against xxh3-128, and the byte comparison on a digest hit.

In one process, alternating (``_common.alternate``), on repositories made here:

- **new put**: ``Butler.put`` of a new exposure + catalog (every component new)
  into a format 3 repository with ``digest="xxh3-128"``, one with
  ``digest="blake3"``, and a format 2 one (repr-JSON documents, no comparison);
- **duplicate put**: ``Butler.put`` of a *copy* of a stored exposure + catalog
  (equal content, new objects: everything is hashed, every component is a
  hit) under a new data ID: format 3 reads each hit back and compares it,
  format 2 trusts it;
- **get**: ``Butler.get`` with the object cache emptied (every read hashed
  with the repository's algorithm).

Ratios are against format 2 (xxh3-128), the baseline of the same run.

    python benchmarks/bench_format3.py --size small     # 1024² exposures
    python benchmarks/bench_format3.py --size tiny      # 256² (CI smoke)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from _common import (
    alternate,
    fmt_ratio,
    fmt_time,
    machine,
    markdown_table,
    survey_butler,
    write_result,
)

from compstore import Butler
from compstore.testing.sky import make_catalog, make_exposure

SIZES = {"tiny": (256, 3), "small": (1024, 5), "full": (2048, 7)}
KINDS = ("format 2", "xxh3-128", "blake3")


def _repo(tmp: Path, kind: str) -> Butler:
    root = tmp / kind.replace(" ", "")
    Butler.create(root, digest=None if kind == "format 2" else kind, fsync=False)
    if kind == "format 2":
        config = json.loads((root / "compstore.json").read_text())
        config.pop("digest")
        (root / "compstore.json").write_text(json.dumps({**config, "version": "2.0"}))
    return survey_butler(root)


def run(edge: int, repeat: int, tmp: Path) -> str:
    butlers = {kind: _repo(tmp, kind) for kind in KINDS}
    pairs = []
    for k in range(2 * repeat + 1):
        exposure = make_exposure(k, 0, size=edge, seed=k)
        pairs.append((exposure, make_catalog(exposure)))
    # Visit 0 is stored in each repository first: the duplicates copy it.
    for b in butlers.values():
        b.put(pairs[0][0], "calexp", visit=0, detector=0)
        b.put(pairs[0][1], "src", visit=0, detector=0)
    copies = [(make_exposure(0, 0, size=edge, seed=0), make_catalog(make_exposure(0, 0, size=edge, seed=0)))
              for _ in range(repeat)]

    def new_put(kind: str):
        def fn(k: int) -> None:
            b = butlers[kind]
            exposure, catalog = pairs[1 + k]
            b.put(exposure, "calexp", visit=1 + k, detector=0)
            b.put(catalog, "src", visit=1 + k, detector=0)
        return fn

    def duplicate_put(kind: str):
        def fn(k: int) -> None:
            b = butlers[kind]
            exposure, catalog = copies[k]
            b.put(exposure, "calexp", visit=1 + k, detector=1)
            b.put(catalog, "src", visit=1 + k, detector=1)
        return fn

    def get(kind: str):
        def setup(k: int) -> None:
            butlers[kind].cache.clear()

        def fn(k: int) -> None:
            butlers[kind].get("calexp", visit=1 + k, detector=0)
            butlers[kind].get("src", visit=1 + k, detector=0)
        return setup, fn

    new = alternate({kind: (None, new_put(kind)) for kind in KINDS}, repeat)
    dup = alternate({kind: (None, duplicate_put(kind)) for kind in KINDS}, repeat)
    got = alternate({kind: get(kind) for kind in KINDS}, repeat)
    rows = []
    for name, times in (("new put", new), ("duplicate put", dup), ("get, cache empty", got)):
        base = times["format 2"]
        rows.append([name, fmt_time(base), fmt_time(times["xxh3-128"]), fmt_ratio(times["xxh3-128"], base),
                     fmt_time(times["blake3"]), fmt_ratio(times["blake3"], base)])
    return (
        f"bench_format3: {edge}x{edge} exposure + catalog, medians of {repeat}, fsync=False\n"
        f"{machine()}\n\n"
        + markdown_table(
            ["operation", "format 2", "format 3 xxh3-128", "ratio", "format 3 blake3", "ratio"], rows
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    edge, repeat = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        text = run(edge, args.repeat or repeat, Path(tmp))
    print(text)
    if not args.no_write:
        write_result("bench_format3", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
