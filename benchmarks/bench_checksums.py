"""What checking every read costs (issue 12): gets with checks on against the same gets with them off.

Reads check what they read (``docs/spec/format.md``, "Checksums"): a whole array is
hashed as it is read and compared with its digest; a cut-out checks the
``compstore.sums`` tiles it touches. Here one process reads the same
exposures both ways, alternating, with the identity cache emptied before each
read; "off" replaces the three checks (the whole-array hasher, the tile sums,
reading a small array whole to check it) by nothing, in this process only.
Goals: full get <= 1.1x, 100x100 cut-out <= 1.1x of the unchecked read.

    python benchmarks/bench_checksums.py            # 2048² and 4096² exposures
    python benchmarks/bench_checksums.py --size tiny
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from _common import alternate, fmt_ratio, fmt_time, machine, markdown_table, survey_butler, verdict, write_result
from compstore import Box2I
from compstore.cas import _folderread, _local
from compstore.testing.sky import make_exposure

SIZES = {"tiny": (512,), "full": (2048, 4096)}
GOAL = 1.1
EDGE = 100


@contextmanager
def checks_off() -> Iterator[None]:
    """The reads of this process skip their checks (for measuring only)."""
    saved = (_folderread.hasher_for, _local.LocalBlobStore._sums_of, _folderread.checked_whole)
    _folderread.hasher_for = lambda meta, region, algorithm=None: None  # type: ignore[assignment]
    _local.LocalBlobStore._sums_of = lambda self, digest, path: None  # type: ignore[assignment,method-assign]
    _folderread.checked_whole = lambda meta: False  # type: ignore[assignment]
    try:
        yield
    finally:
        _folderread.hasher_for, _local.LocalBlobStore._sums_of, _folderread.checked_whole = saved  # type: ignore[method-assign]


def measure(root: Path, size: int, repeat: int) -> dict[str, float]:
    writer = survey_butler(root)
    writer.put(make_exposure(1, size, size=size), "calexp", visit=1, detector=size)
    reader = survey_butler(root, collections=["sfm"])
    data_id = {"visit": 1, "detector": size}
    bbox = Box2I((size // 3, size // 3), (EDGE, EDGE))

    def clear(_rep: int) -> None:
        reader.cache.clear()

    def full(_rep: int) -> object:
        return reader.get("calexp", **data_id)

    def cut(_rep: int) -> object:
        return reader.get("calexp", **data_id, parameters={"bbox": bbox})

    def unchecked(fn):  # type: ignore[no-untyped-def]
        def run(rep: int) -> object:
            with checks_off():
                return fn(rep)
        return run

    with checks_off():
        expected = full(0)
    assert np.array_equal(full(0).image, expected.image)  # same values both ways
    return alternate(
        {
            "full on": (clear, full),
            "full off": (clear, unchecked(full)),
            "cut on": (clear, cut),
            "cut off": (clear, unchecked(cut)),
        },
        repeat,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES[args.size]:
            t = measure(Path(tmp) / f"r{size}", size, args.repeat)
            for what, key in (("full get", "full"), (f"{EDGE}x{EDGE} cut-out", "cut")):
                on, off = t[f"{key} on"], t[f"{key} off"]
                rows.append((f"{size}² exposure, {what}", fmt_time(off), fmt_time(on),
                             fmt_ratio(on, off), f"<= {GOAL}x", verdict(on <= GOAL * off)))
    text = "\n".join([
        "## Reads with their checks against the same reads without (medians, alternating)",
        "",
        machine(),
        "",
        markdown_table(["read", "checks off", "checks on", "ratio", "goal", ""], rows),
        "",
    ])
    print(text)
    if not args.no_write:
        write_result("checksums", text)


if __name__ == "__main__":
    main()
