"""A repository on object storage against the same bytes put and got by hand, and against a folder.

Against a real S3-compatible server on loopback (moto's, in this process:
``compstore.testing.s3.S3Server``), in one run:

- put and full get of an exposure (image, mask, variance, Wcs, Calib, Psf...)
  through ``Butler('s3://...')`` against plain ``obstore.put``/``obstore.get``
  of its three planes' raw bytes (goal: <= 1.3x);
- requests per operation, counted by the server: put, full get, a component
  get, a 100x100 cut-out, a catalog get (from a new Butler, and again);
- a get served by the local read-through cache against the same get from a
  repository folder (goal: within 1.5x).

moto answers from memory in this process's Python, so absolute times are
moto's more than the network's: the ratios compare like with like (both
sides pay the same server), the request counts are exact.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import alternate, fmt_ratio, fmt_time, machine, markdown_table, verdict, write_result

from compstore import Box2I, Butler
from compstore.testing.s3 import S3Server
from compstore.testing.sky import make_catalog, make_exposure

SIZES = {"tiny": 512, "full": 2048}
PUT_GOAL = 1.3
CACHE_GOAL = 1.5


def _register(butler: Butler) -> None:
    butler.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    butler.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")


def measure(server: S3Server, tmp: Path, size: int, repeat: int) -> tuple[dict[str, float], list[Any]]:
    import obstore
    from obstore.store import S3Store

    bucket = server.new_bucket()
    url = f"s3://{bucket}/bench"
    Butler.create(url, registry=str(tmp / "registry.sqlite3"))
    writer = Butler(url, run="sfm")
    _register(writer)
    folder = tmp / "folder"
    Butler.create(folder, fsync=False)
    local = Butler(folder, run="sfm", fsync=False)
    _register(local)
    raw = S3Store(bucket, prefix="plain", config={"endpoint": server.endpoint, "region": "us-east-1",
                                                    "access_key_id": "testing",
                                                    "secret_access_key": "testing"},
                  client_options={"allow_http": True})
    # One new exposure per put (new content: nothing deduplicated), detectors 100+.
    exposures = [make_exposure(1, 100 + i, size=size, seed=i) for i in range(repeat)]

    def planes(e: Any) -> list[np.ndarray]:
        return [np.asarray(e.image), np.asarray(e.mask), np.asarray(e.variance)]

    def put_s3(i: int) -> None:
        writer.put(exposures[i], "calexp", visit=1, detector=100 + i)

    def put_plain(i: int) -> None:
        for k, p in enumerate(planes(exposures[i])):
            obstore.put(raw, f"e{i}/{k}", np.ascontiguousarray(p).tobytes())

    plane_meta = [[(p.dtype, p.shape) for p in planes(e)] for e in exposures]

    put = alternate({"s3": (None, put_s3), "plain": (None, put_plain)}, repeat)

    reader = Butler(url, collections=["sfm"])
    reader.get("calexp", visit=1, detector=100)  # its zarr.json etc. now in memory

    def clear(_i: int) -> None:
        reader.cache.clear()

    def get_s3(i: int) -> None:
        reader.get("calexp", visit=1, detector=100 + i)

    def get_plain(i: int) -> None:
        for k, (dtype, shape) in enumerate(plane_meta[i]):
            data = obstore.get(raw, f"e{i}/{k}").bytes()
            np.frombuffer(data, dtype=dtype).reshape(shape)

    get = alternate({"s3": (clear, get_s3), "plain": (None, get_plain)}, repeat)

    # The local cache against a folder repository.
    local.put(exposures[0], "calexp", visit=1, detector=100)
    cached = Butler(url, collections=["sfm"], local_cache=tmp / "cache", local_cache_bytes=4 << 30)
    folder_reader = Butler(folder, collections=["sfm"])
    cached.cache.clear()
    cached.get("calexp", visit=1, detector=100)  # fills the local cache

    def clear_both(_i: int) -> None:
        cached.cache.clear()
        folder_reader.cache.clear()

    server.clear_requests()
    warm = alternate({
        "cache": (clear_both, lambda _i: cached.get("calexp", visit=1, detector=100)),
        "folder": (clear_both, lambda _i: folder_reader.get("calexp", visit=1, detector=100)),
    }, repeat)
    cache_requests = len(server.requests)

    # Requests per operation, from a new Butler (nothing in memory), then again.
    catalog = make_catalog(exposures[0])
    writer.put(catalog, "src", visit=1, detector=100)
    rows = []

    def count(label: str, op: Any, fresh: bool = True) -> None:
        target = Butler(url, collections=["sfm"]) if fresh else count.butler  # type: ignore[attr-defined]
        count.butler = target  # type: ignore[attr-defined]
        target.cache.clear()
        server.clear_requests()
        op(target)
        got = server.requests
        kinds: dict[str, int] = {}
        for r in got:
            kinds[r.method] = kinds.get(r.method, 0) + 1
        rows.append((label + ("" if fresh else ", again"), len(got),
                     ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())),
                     f"{sum(r.sent for r in got) + sum(r.received for r in got):,}"))

    new = make_exposure(2, 7, size=size, seed=99)
    count("put of a new exposure", lambda b: Butler(url, run="sfm").put(new, "calexp", visit=2, detector=7))
    # The same content again under another data ID: every component a digest hit (a
    # format 3 writer compares it with what is stored, docs/spec/format.md "Threat model").
    same = make_exposure(2, 7, size=size, seed=99)
    count("put of an exposure stored already (another data ID)",
          lambda b: Butler(url, run="sfm").put(same, "calexp", visit=2, detector=8))
    box = Box2I((size // 3, size // 3), (100, 100))
    for label, op in [
        ("full get of an exposure", lambda b: b.get("calexp", visit=1, detector=100)),
        ("component get (calexp.image)", lambda b: b.get("calexp.image", visit=1, detector=100)),
        ("component get (calexp.wcs)", lambda b: b.get("calexp.wcs", visit=1, detector=100)),
        ("100x100 cut-out", lambda b: b.get("calexp", visit=1, detector=100, parameters={"bbox": box})),
        ("catalog get (src)", lambda b: b.get("src", visit=1, detector=100)),
    ]:
        count(label, op)
        count(label, op, fresh=False)
    rows.append(("get served by the local cache (per get)", cache_requests / max(1, 2 * repeat), "", ""))
    return {"put s3": put["s3"], "put plain": put["plain"], "get s3": get["s3"],
            "get plain": get["plain"], "cache": warm["cache"], "folder": warm["folder"]}, rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    server = S3Server().start()
    saved = dict(os.environ)
    os.environ.update(server.environment())
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t, rows = measure(server, Path(tmp), size, args.repeat)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()
    what = f"{size}x{size} exposure"
    timing = [
        (f"put, {what}", fmt_time(t["put plain"]), fmt_time(t["put s3"]),
         fmt_ratio(t["put s3"], t["put plain"]), f"<= {PUT_GOAL}x",
         verdict(t["put s3"] <= PUT_GOAL * t["put plain"])),
        (f"full get, {what}", fmt_time(t["get plain"]), fmt_time(t["get s3"]),
         fmt_ratio(t["get s3"], t["get plain"]), f"<= {PUT_GOAL}x",
         verdict(t["get s3"] <= PUT_GOAL * t["get plain"])),
        (f"get from the local cache vs a folder repository, {what}", fmt_time(t["folder"]),
         fmt_time(t["cache"]), fmt_ratio(t["cache"], t["folder"]), f"<= {CACHE_GOAL}x",
         verdict(t["cache"] <= CACHE_GOAL * t["folder"])),
    ]
    text = "\n".join([
        "## A repository on object storage (moto's S3 server on loopback, in process)",
        "",
        machine(),
        "",
        markdown_table(["operation", "baseline", "compstore", "ratio", "goal", ""], timing),
        "",
        "Baselines: plain obstore put/get of the three planes' raw bytes; a folder repository.",
        "",
        markdown_table(["operation (new Butler unless 'again')", "requests", "by method", "bytes"],
                       rows),
        "",
    ])
    print(text)
    if not args.no_write:
        write_result("s3", text)


if __name__ == "__main__":
    main()
