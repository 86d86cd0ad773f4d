"""Subsets (use case 8): bytes written and time against the closure and a plain file copy.

Usage: ``python benchmarks/bench_subset.py [--size tiny|full] [--repeat N] [--no-write]``.

A synthetic survey (``compstore.testing.sky``: visits x detectors, a
``calexp`` and its ``src`` each) is subset twice, each in one run:

1. **catalogs only** (``src``): the closure is the catalogs' columns, their
   Wcs and Calib documents and the manifests; no pixels.
2. **exposures** (``calexp``): the closure is mostly big pixel planes (array
   folders, copied file by file).

For each, measured:

- bytes written: what the new repository's blob store holds beyond an empty
  repository's (files on disk, pack zip headers included; the SQLite
  databases left out, as `compstore.testing.repository.blob_bytes` does),
  against (a) the closure's stored bytes (`BlobStore.stored_bytes` summed:
  component payloads) and (b) the closure's footprint in the source (the same,
  plus the zip headers its packed members carry there: 30 + 46 bytes and the
  member name twice, per member). Goal <= 1.05x;
- time of ``Butler.subset`` (registry rows included), against a plain file
  copy of the same bytes: each component of the closure read from the source
  and written to its own file (array folders' files with ``shutil.copyfile``,
  packed components and documents read and written whole), no fsync on either
  side. Goal <= 2x. Medians of ``--repeat`` runs, alternating. Creating the
  new, empty repository (its registry; a subset makes no fan-out folders up
  front; not fsynced, as the source is opened with ``fsync=False``) is a
  fixed cost of some 20 milliseconds, timed on its own in the same rotation
  and shown apart (the last column leaves it out).

A third row subsets the catalogs of a second source of many small exposures
(``MANY``: 20 visits x 10 detectors of 64x64 px at full size): 200 catalogs,
where that fixed cost no longer dominates.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alternate, fmt_bytes, fmt_ratio, fmt_time, machine, markdown_table, write_result  # noqa: E402

from compstore import Butler  # noqa: E402
from compstore._repository import Repository  # noqa: E402
from compstore.testing.repository import blob_bytes  # noqa: E402
from compstore.testing.sky import make_catalog, make_exposure  # noqa: E402
from compstore.transfer import closure  # noqa: E402

SIZES = {"tiny": (1, 2, 128), "full": (3, 4, 1024)}  # visits, detectors, pixels
# The many-catalogs source: many small exposures, so its catalogs subset is large
# enough for the fixed cost of a new repository not to dominate.
MANY = {"tiny": (2, 3, 32), "full": (20, 10, 64)}
_ZIP_MEMBER = 30 + 46  # local header + central directory entry, before the name (twice)


def _fill(root: Path, visits: int, detectors: int, size: int) -> Butler:
    Butler.create(root)
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    for visit in range(1, visits + 1):
        for detector in range(detectors):
            exposure = make_exposure(visit, detector, size=size)
            butler.put_many([
                (exposure, "calexp", {"visit": visit, "detector": detector}),
                (make_catalog(exposure), "src", {"visit": visit, "detector": detector}),
            ])
    return Butler(root, fsync=False)


def _empty_as_subset_makes_it(root: Path, durable: bool) -> None:
    # An empty repository made as Butler.subset makes its destination (no fan-out folders).
    made = Repository.create(root, fsync=durable, fanout=False)
    Butler(root, fsync=durable)  # served the registry `made` holds, as subset's Butler is
    del made


def _footprint(butler: Butler, digest: str) -> int:
    """Bytes ``digest`` takes in ``butler``'s blob store, zip headers of its pack members included."""
    blobs = butler.blobs
    member = blobs._packed(digest, None)
    stored = blobs.stored_bytes(digest)
    if member is None:
        return stored
    if member.kind == "document":
        names = [f"documents/{digest}.json"]
    else:
        names = [f"arrays/{digest}/zarr.json"] + ([f"arrays/{digest}/{member.key}"] if member.key else [])
    return stored + sum(_ZIP_MEMBER + 2 * len(n) for n in names)


def _plain_copy(butler: Butler, components: dict[str, str], target: Path) -> None:
    """Copy each component's bytes into its own file(s) under ``target`` (the baseline)."""
    blobs = butler.blobs
    target.mkdir()
    for digest, kind in components.items():
        packed = blobs._packed_files(digest, kind) if blobs.packs else None
        if packed is not None:
            (target / digest).write_bytes(packed[0] + (packed[1] or b""))
        elif kind == "document":
            (target / digest).write_bytes(blobs.get_document_unchecked(digest))
        else:
            folder = blobs._locate_array(digest)
            out = target / digest
            out.mkdir()
            for entry in os.scandir(folder):
                shutil.copyfile(entry.path, out / entry.name)


def bench_one(source: Butler, work: Path, dataset_type: str, repeat: int, empty: int) -> dict:
    refs = source.query_datasets(dataset_type)
    components = closure(source, refs)
    stored = sum(source.blobs.stored_bytes(d) for d in components)
    footprint = sum(_footprint(source, d) for d in components)
    made: dict[str, int] = {}

    def clear(_rep: int) -> None:
        for name in ("subset", "copy", "create"):
            shutil.rmtree(work / name, ignore_errors=True)

    def subset(_rep: int) -> None:
        made["bytes"] = blob_bytes(source.subset(work / "subset", [dataset_type]).root) - empty

    def copy(_rep: int) -> None:
        _plain_copy(source, components, work / "copy")

    def create(_rep: int) -> None:  # the fixed cost of a new repository, for the last column
        _empty_as_subset_makes_it(work / "create", source.blobs.durable)

    times = alternate(
        {"subset": (clear, subset), "copy": (clear, copy), "create": (clear, create)}, repeat
    )
    clear(0)
    return {"type": dataset_type, "datasets": len(refs), "components": len(components),
            "stored": stored, "footprint": footprint, "written": made["bytes"], "times": times}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    visits, detectors, pixels = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _empty_as_subset_makes_it(work / "empty", True)
        empty = blob_bytes(work / "empty")
        source = _fill(work / "source", visits, detectors, pixels)
        total = blob_bytes(source.root)
        results = [bench_one(source, work, t, args.repeat, empty) for t in ("src", "calexp")]
        many_v, many_d, many_px = MANY[args.size]
        many = _fill(work / "many", many_v, many_d, many_px)
        results.append(bench_one(many, work, "src", args.repeat, empty))
        results[-1]["type"] = f"src ({many_v} x {many_d} catalogs)"
    rows = []
    for r in results:
        rows.append([
            r["type"], r["datasets"], r["components"], fmt_bytes(r["stored"]), fmt_bytes(r["written"]),
            fmt_ratio(r["written"], r["stored"]), fmt_ratio(r["written"], r["footprint"]),
            fmt_time(r["times"]["subset"]), fmt_time(r["times"]["copy"]),
            fmt_ratio(r["times"]["subset"], r["times"]["copy"]),
            fmt_time(r["times"]["create"]),
            fmt_ratio(r["times"]["subset"] - r["times"]["create"], r["times"]["copy"]),
        ])
    text = "\n".join([
        f"# bench_subset ({args.size}), {machine()}",
        "",
        f"source: {visits} visits x {detectors} detectors of {pixels}x{pixels} px, calexp + src; "
        f"blob store {fmt_bytes(total)}; median of {args.repeat}, subset and plain copy alternating",
        "",
        markdown_table(
            ["subset of", "datasets", "closure components", "closure stored", "written",
             "written / stored", "written / footprint in source (goal <= 1.05x)",
             "subset time", "plain copy", "time ratio (goal <= 2x)",
             "of which creating the repository", "time ratio without it"],
            rows,
        ),
    ])
    print(text)
    if not args.no_write:
        write_result(f"bench_subset_{args.size}.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
