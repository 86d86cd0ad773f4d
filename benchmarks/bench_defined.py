"""Defined dataset types (aggregates, joins, whole visits) against pyarrow and against goals.

Usage: ``python benchmarks/bench_defined.py [--size tiny|full] [--repeat N] [--no-write]``.

Measured, in one run (ratios against a baseline timed in the same process,
alternating so drift falls on both alike):

1. ``src_visit`` of 16 detectors x 10,000 rows, 4 of 40 columns, against
   pyarrow reading the same 4 columns from one Parquet file per detector (the
   layout Rubin uses). Goal <= 1.0x. Bytes read (``rchar`` of
   ``/proc/self/io``: every byte through read/pread) beside the stored bytes of
   the 4 columns.
2. ``objectTable`` from 3 members x 100,000 rows, 5 columns drawn from 2
   members, against pyarrow reading those columns from the 2 Parquet files that
   hold them. Goal <= 1.0x; the member holding none is not opened.
3. ``calexp_visit`` of 189 detectors (64x64 pixels): open + ``summary``, with
   the pixel arrays read counted (goal 0), the time (goal < 0.5 s) and the
   memory the opened visit holds (tracemalloc, goal < 50 MiB).
4. Disk: bytes the blob store gained from declaring and reading all of the
   above (goal 0).

Each compstore read starts from an empty identity cache (``cache.clear()``),
so it decodes its columns as pyarrow does; both read from the page cache.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from astropy.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import alternate, fmt_bytes, fmt_ratio, fmt_time, machine, source_state, write_result  # noqa: E402

from compstore import Butler, SourceCatalog  # noqa: E402
from compstore.testing.repository import blob_bytes  # noqa: E402
from compstore.testing.sky import make_exposure  # noqa: E402

SIZES = {
    # detectors, rows, columns; object rows; visit detectors, visit pixels
    "tiny": (4, 500, 12, 2_000, 12, 32),
    "full": (16, 10_000, 40, 100_000, 189, 64),
}
READ_COLUMNS = ["id", "ra", "dec", "psfFlux"]


def _rchar() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _catalog(rows: int, columns: int, seed: int) -> Table:
    rng = np.random.default_rng(seed)
    data = {"id": np.arange(rows, dtype=np.int64) + seed * 10**7,
            "ra": rng.uniform(0, 1, rows), "dec": rng.uniform(0, 1, rows),
            "psfFlux": rng.lognormal(7, 1, rows)}
    for i in range(columns - len(data)):
        data[f"col_{i:02d}"] = rng.normal(size=rows)
    return Table(data)


def bench_src_visit(root: Path, work: Path, size: tuple[int, ...], repeat: int) -> dict:
    import pyarrow.parquet as pq

    detectors, rows, columns = size[:3]
    butler = Butler(root, run="sfm", fsync=False)
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    files = []
    for d in range(detectors):
        table = _catalog(rows, columns, seed=d)
        butler.put(SourceCatalog(table), "src", visit=1, detector=d)
        path = work / f"src-{d}.parquet"
        pq.write_table(table.to_pandas().pipe(__import__("pyarrow").Table.from_pandas), path)
        files.append(path)
    butler.register_aggregate("src_visit", "src", over=("detector",))
    reader = Butler(root, collections=["sfm"])

    def compstore_read(_: int) -> None:
        reader.get("src_visit", visit=1, parameters={"columns": READ_COLUMNS})

    def arrow_read(_: int) -> None:
        tables = [pq.read_table(f, columns=READ_COLUMNS) for f in files]
        __import__("pyarrow").concat_tables(tables)

    clear = lambda _: reader.cache.clear()  # noqa: E731
    times = alternate({"compstore": (clear, compstore_read), "pyarrow": (None, arrow_read)}, repeat)
    reader.cache.clear()
    before = _rchar()
    compstore_read(0)
    read_bytes = _rchar() - before
    before = _rchar()
    arrow_read(0)
    arrow_bytes = _rchar() - before
    stored = _stored_column_bytes(reader, detectors)
    return {"times": times, "read": read_bytes, "arrow_read": arrow_bytes, **stored}


def _stored_column_bytes(reader: Butler, detectors: int) -> dict:
    """Stored bytes of the 4 read columns and of all columns, over every detector."""
    wanted = total = 0
    for d in range(detectors):
        ref = reader.find_dataset("src", visit=1, detector=d)
        table_manifest = reader._io.manifest(ref.manifest)["components"]["table"]["manifest"]
        manifest = reader._io.manifest(table_manifest)
        names = [c["name"] for c in manifest["attributes"]["columns"]]
        for key, entry in manifest["components"].items():
            if "array" not in entry:
                continue
            nbytes = reader.blobs.stored_bytes(entry["array"]) if hasattr(
                reader.blobs, "stored_bytes") else 0
            total += nbytes
            if names[int(key.split(":")[1])] in READ_COLUMNS:
                wanted += nbytes
    return {"stored_wanted": wanted, "stored_total": total}


def bench_object_table(root: Path, work: Path, size: tuple[int, ...], repeat: int) -> dict:
    import pyarrow.parquet as pq

    rows = size[3]
    butler = Butler(root, run="coadd", fsync=False)
    rng = np.random.default_rng(5)
    ids = np.arange(rows, dtype=np.int64)
    members = {
        "deepCoadd_ref": Table({"id": ids, "coord_ra": rng.uniform(size=rows),
                                "coord_dec": rng.uniform(size=rows)}),
        "deepCoadd_meas": Table({"id": ids, "psfFlux": rng.lognormal(size=rows),
                                 "psfFlux_err": rng.uniform(size=rows),
                                 "shape_xx": rng.uniform(size=rows)}),
        "deepCoadd_forced_src": Table({"id": ids, "forced_psfFlux": rng.lognormal(size=rows)}),
    }
    paths = {}
    for name, table in members.items():
        butler.register_dataset_type(name, ("tract", "patch", "band"), "SourceCatalog")
        butler.put(SourceCatalog(table), name, tract=1, patch=1, band="r")
        paths[name] = work / f"{name}.parquet"
        pq.write_table(__import__("pyarrow").Table.from_pandas(table.to_pandas()), paths[name])
    butler.register_join("objectTable", list(members), on="id")
    reader = Butler(root, collections=["coadd"])
    wanted = ["id", "coord_ra", "coord_dec", "psfFlux", "psfFlux_err"]

    def compstore_read(_: int) -> None:
        reader.get("objectTable", tract=1, patch=1, band="r", parameters={"columns": wanted})

    def arrow_read(_: int) -> None:
        ref = pq.read_table(paths["deepCoadd_ref"], columns=["id", "coord_ra", "coord_dec"])
        meas = pq.read_table(paths["deepCoadd_meas"], columns=["id", "psfFlux", "psfFlux_err"])
        ref.join(meas, "id")

    clear = lambda _: reader.cache.clear()  # noqa: E731
    times = alternate({"compstore": (clear, compstore_read), "pyarrow": (None, arrow_read)}, repeat)
    return {"times": times}


def bench_visit(root: Path, size: tuple[int, ...]) -> dict:
    detectors, pixels = size[4], size[5]
    butler = Butler(root, run="visits", fsync=False)
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    template = make_exposure(1, 0, size=pixels)
    for d in range(detectors):
        butler.put(template.replace(detector=d), "calexp", visit=7, detector=d)
    butler.register_aggregate("calexp_visit", "calexp", over=("detector",))
    reader = Butler(root, collections=["visits"])
    reader.cache.clear()
    arrays_read = 0
    real = reader.blobs.get_array

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal arrays_read
        arrays_read += 1
        return real(*args, **kwargs)

    reader.blobs.get_array = counting  # type: ignore[method-assign]
    tracemalloc.start()
    start = time.perf_counter()
    visit = reader.get("calexp_visit", visit=7)
    summary = reader.get("calexp_visit.summary", visit=7)
    seconds = time.perf_counter() - start
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(visit) == detectors and len(summary) == detectors
    return {"seconds": seconds, "arrays_read": arrays_read, "held": held, "detectors": detectors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root = work / "repo"
        Butler.create(root)
        src = bench_src_visit(root, work, size, args.repeat)
        obj = bench_object_table(root, work, size, args.repeat)
        before_visit = blob_bytes(root)
        visit = bench_visit(root, size)
        # declaring and reading definitions adds nothing: re-read all three
        before = blob_bytes(root)
        Butler(root, run="sfm").register_aggregate("src_visit", "src", over=("detector",))
        Butler(root, collections=["sfm"]).get("src_visit", visit=1)
        Butler(root, collections=["visits"]).get("calexp_visit.summary", visit=7)
        added = blob_bytes(root) - before
        del before_visit
    lines = [
        f"# bench_defined ({args.size}), {machine()}, {source_state()}",
        "",
        f"src_visit: {size[0]} detectors x {size[1]} rows, 4 of {size[2]} columns",
        f"  compstore {fmt_time(src['times']['compstore'])}, pyarrow (Parquet per detector) "
        f"{fmt_time(src['times']['pyarrow'])}: "
        f"{fmt_ratio(src['times']['compstore'], src['times']['pyarrow'])} (goal <= 1.0x)",
        f"  bytes read: compstore {fmt_bytes(src['read'])}, pyarrow {fmt_bytes(src['arrow_read'])}; "
        f"stored bytes of the 4 columns {fmt_bytes(src['stored_wanted'])} of "
        f"{fmt_bytes(src['stored_total'])} for all {size[2]}",
        f"objectTable: 3 members x {size[3]} rows, 5 columns from 2 members",
        f"  compstore {fmt_time(obj['times']['compstore'])}, pyarrow {fmt_time(obj['times']['pyarrow'])}: "
        f"{fmt_ratio(obj['times']['compstore'], obj['times']['pyarrow'])} (goal <= 1.0x)",
        f"calexp_visit: {visit['detectors']} detectors, open + summary "
        f"{fmt_time(visit['seconds'])} (goal < 0.5 s), pixel arrays read {visit['arrays_read']} "
        f"(goal 0), memory held {fmt_bytes(visit['held'])} (goal < 50 MiB)",
        f"disk: declaring and reading the defined types added {added} bytes (goal 0)",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_result(f"bench_defined_{args.size}.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
