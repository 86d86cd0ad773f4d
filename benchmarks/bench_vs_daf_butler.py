"""compstore against lsst-daf-butler (configured at its best) on one synthetic survey.

Puts the same survey (visits x detectors of exposures with catalogs) into a
compstore repository and into a daf_butler repository (FileDatastore with
composite disassembly, ``.npy`` arrays, JSON Wcs/Calib/..., Parquet tables:
see ``_daf_peer.py``), then times the same operations on both in one process,
alternating, medians of repeats (page cache warm), and prints a Markdown table
of times, the ratio compstore / daf_butler, the distance to the plain-numpy
limits (``numpy.save``/``numpy.load`` and ``np.copyto`` of the same arrays),
the target and PASS/MISS. A miss is printed, never hidden; the exit status
does not depend on timings.

Operations: put of exposure + catalog; full get by data ID (object cache
emptied first); ``calexp.wcs``; catalog get; 256x256 bbox get; cache-hit get
(compstore only); the jointcal stage (read, new Wcs + Calib, put into a second
run: time and bytes added); one visit loaded together (time, peak memory vs
unique bytes, distinct Wcs objects); a 100x100 cut-out of a 4096x4096 exposure
vs its full get; registry lookup among 1,000,000 datasets vs 1,000 and a
``where`` query returning 1,000 refs (compstore's registry).

Usage::

    python benchmarks/bench_vs_daf_butler.py                # 4 visits x 4 detectors x 2048 px
    python benchmarks/bench_vs_daf_butler.py --size tiny    # 1 x 2 x 256 px, 10,000 rows (CI)
    python benchmarks/bench_vs_daf_butler.py --size small   # 2 x 2 x 1024 px, 100,000 rows
    python benchmarks/bench_vs_daf_butler.py --repeat 3 --visits 2 --detectors 4
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from _common import (
    ArrayLimits,
    StealMeter,
    alternate,
    catalog_arrays,
    dir_bytes,
    dump_json,
    exposure_arrays,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    machine,
    markdown_table,
    median_time,
    per_call,
    unique_bytes,
    verdict,
    write_result,
    survey_butler,
)
from compstore import Box2I, Butler, Calib, Wcs
from compstore.testing.sky import make_catalog, make_exposure


@dataclasses.dataclass(frozen=True)
class Size:
    visits: int
    detectors: int
    edge: int
    cutout_edge: int
    registry_rows: int
    repeat: int


SIZES = {
    "tiny": Size(visits=1, detectors=2, edge=256, cutout_edge=512, registry_rows=10_000, repeat=3),
    "small": Size(visits=2, detectors=2, edge=1024, cutout_edge=2048, registry_rows=100_000, repeat=5),
    "full": Size(visits=4, detectors=4, edge=2048, cutout_edge=4096, registry_rows=1_000_000, repeat=5),
}
SMALL_REGISTRY = 1_000
BBOX_EDGE = 256
CUTOUT_EDGE = 100
CACHE_HIT_TARGET = 50e-6
QUERY_TARGET = 0.1
LOOKUP_RATIO_TARGET = 1.5
CUTOUT_SPEEDUP_TARGET = 50.0
JOINTCAL_BYTES_TARGET = 0.01  # the issue: jointcal adds at most 1% of the calexps' bytes
PEAK_MEMORY_TARGET = 1.1  # the issue: peak memory of a visit load <= 1.1x the unique bytes
WCS_SPEEDUP_TARGET = 10.0  # the issue: calexp.wcs by data ID at least 10x faster than daf_butler
NUMPY_GET_TARGET = 2.0  # the issue: a full get within 2x of numpy.load of the same arrays
NUMPY_PUT_THROUGHPUT_TARGET = 0.7  # the issue: put throughput >= 0.7x numpy.save's


@dataclasses.dataclass
class Row:
    """One line of the results table."""

    operation: str
    cs: float | None
    daf: float | None = None
    numpy: float | None = None
    memcpy: float | None = None
    target: str = ""
    ok: bool | None = None
    numpy_label: str = "numpy"
    fmt: Callable[[float | None], str] = fmt_time

    def cells(self) -> list[str]:
        limit = "n/a"
        if self.numpy is not None:
            limit = f"{self.numpy_label} {fmt_time(self.numpy)} ({fmt_ratio(self.cs, self.numpy)})"
        return [
            self.operation,
            self.fmt(self.cs),
            self.fmt(self.daf),
            fmt_ratio(self.cs, self.daf),
            limit,
            fmt_time(self.memcpy) if self.memcpy is not None else "n/a",
            self.target,
            verdict(self.ok),
        ]


HEADERS = [
    "operation",
    "compstore",
    "daf_butler",
    "compstore / daf_butler",
    "numpy limit (compstore / limit)",
    "memcpy",
    "target",
    "result",
]


def _ratio_ok(cs: float | None, daf: float | None, at_most: float = 1.0) -> bool | None:
    if cs is None or daf is None:
        return None
    return cs <= daf * at_most


class Bench:
    def __init__(self, size: Size, repeat: int, tmp: Path) -> None:
        import _daf_peer as peer

        self.peer = peer
        self.size = size
        self.repeat = repeat
        self.tmp = tmp
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}
        self.visits = list(range(1, size.visits + 1))
        self.detectors = list(range(size.detectors))
        self.warm_visit = size.visits + 1  # warm-up puts, untimed
        self.cutout_visit = size.visits + 2  # the big exposure of the cut-out test
        self.pairs = [(v, d) for v in self.visits for d in self.detectors]

        # compstore: one repository, fsync off (daf_butler never fsyncs); a second with
        # fsync on, only for the put row.
        self.cs_root = tmp / "compstore"
        self.cs = survey_butler(self.cs_root)
        self.cs_sync = survey_butler(tmp / "compstore_fsync", fsync=True)

        self.daf_root = str(tmp / "daf_butler")
        peer.create(self.daf_root, self.visits + [self.warm_visit, self.cutout_visit], self.detectors)
        self.daf = peer.open_butler(self.daf_root, run="sfm")

    # -- helpers ---------------------------------------------------------------------
    def did(self, v: int, d: int) -> dict[str, Any]:
        return self.peer.data_id(v, d)

    def pair(self, rep: int) -> tuple[int, int]:
        return self.pairs[rep % len(self.pairs)]

    def clear(self, _rep: int = 0) -> None:
        # "Cache empty": no object in the identity cache, and no remembered data
        # ID -> ref lookup either, so the registry is queried as daf_butler's is.
        self.cs.cache.clear()
        self.cs.registry._remembered.clear()  # the data-ID memo (Registry.remembered)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(" | ".join(row.cells()), flush=True)

    # -- put ---------------------------------------------------------------------------
    def warm_up(self) -> None:
        e = make_exposure(self.warm_visit, 0, size=64)
        c = make_catalog(e)
        for b in (self.cs, self.cs_sync):
            b.put(e, "calexp", visit=self.warm_visit, detector=0)
            b.put(c, "src", visit=self.warm_visit, detector=0)
            b.get("calexp", visit=self.warm_visit, detector=0)
            b.get("calexp.wcs", visit=self.warm_visit, detector=0)
            b.get("src", visit=self.warm_visit, detector=0)
        self.daf.put(e, "calexp", self.did(self.warm_visit, 0))
        self.daf.put(c, "src", self.did(self.warm_visit, 0))
        self.daf.get("calexp", self.did(self.warm_visit, 0))
        self.daf.get("calexp.wcs", self.did(self.warm_visit, 0))
        self.daf.get("src", self.did(self.warm_visit, 0))
        self.daf.get("calexp", self.did(self.warm_visit, 0), parameters={"bbox": Box2I((0, 0), (8, 8))})

    def put_survey(self) -> None:
        """Put every (visit, detector) into both stores, alternating; time each put."""
        s = self.size
        print(f"putting {len(self.pairs)} exposures of {s.edge}x{s.edge} + catalogs ...", flush=True)
        samples: dict[str, list[float]] = {"cs": [], "cs_sync": [], "daf": [], "save": [], "save_new": []}
        self.limits: ArrayLimits | None = None
        for i, (v, d) in enumerate(self.pairs):
            e = make_exposure(v, d, size=s.edge)
            c = make_catalog(e)
            limits = ArrayLimits(exposure_arrays(e) + catalog_arrays(c), self.tmp / "npy" / f"{v}_{d}")

            def cs_put(b: Butler = self.cs) -> None:
                b.put(e, "calexp", visit=v, detector=d)
                b.put(c, "src", visit=v, detector=d)

            ops = {
                "cs": lambda: cs_put(self.cs),
                "daf": lambda: (self.daf.put(e, "calexp", self.did(v, d)), self.daf.put(c, "src", self.did(v, d))),
                "save": limits.save,
                "save_new": limits.save_new,
                "cs_sync": lambda: cs_put(self.cs_sync),
            }
            names = list(ops)
            k = i % len(names)
            for name in names[k:] + names[:k]:
                gc.collect()
                t0 = time.perf_counter()
                ops[name]()
                samples[name].append(time.perf_counter() - t0)
            if self.limits is None:
                self.limits = limits  # keep the first pair's files for the get limits
            del e, c
        med = {k: statistics.median(v) for k, v in samples.items()}
        self.raw["put"] = samples
        assert self.limits is not None
        memcpy = median_time(self.limits.memcpy, self.repeat)
        self.add(Row("put exposure + catalog (fsync off)", med["cs"], med["daf"], med["save"], memcpy,
                     f"<= daf_butler and <= numpy.save / {NUMPY_PUT_THROUGHPUT_TARGET}",
                     bool(_ratio_ok(med["cs"], med["daf"]))
                     and med["cs"] <= med["save"] / NUMPY_PUT_THROUGHPUT_TARGET, "numpy.save"))
        self.add(Row("put exposure + catalog, compstore fsync on", med["cs_sync"], med["daf"], med["save"],
                     memcpy, "(informative)", None, "numpy.save"))
        self.add(Row("  the same put against numpy.save to new files", med["cs"], None, med["save_new"],
                     memcpy, "(informative: a put creates new files too)", None, "numpy.save, new files"))

    # -- gets ----------------------------------------------------------------------------
    def gets(self) -> None:
        r = self.repeat
        assert self.limits is not None
        v0, d0 = self.pairs[0]
        exp_limits = ArrayLimits(self.limits.arrays[:3], self.tmp / "npy_exp")
        cat_limits = ArrayLimits(self.limits.arrays[3:], self.tmp / "npy_cat")

        def cs_get(name: str, **kw: Any) -> Callable[[int], Any]:
            return lambda rep: self.cs.get(name, visit=self.pair(rep)[0], detector=self.pair(rep)[1], **kw)

        def daf_get(name: str, **kw: Any) -> Callable[[int], Any]:
            return lambda rep: self.daf.get(name, self.did(*self.pair(rep)), **kw)

        t = alternate(
            {
                "cs": (self.clear, cs_get("calexp")),
                "daf": (None, daf_get("calexp")),
                "load": (None, exp_limits.load),
                "memcpy": (None, exp_limits.memcpy),
            },
            r,
        )
        self.add(Row("get exposure by data ID (cache empty)", t["cs"], t["daf"], t["load"], t["memcpy"],
                     f"<= daf_butler and <= {NUMPY_GET_TARGET:g}x numpy.load",
                     bool(_ratio_ok(t["cs"], t["daf"])) and t["cs"] <= NUMPY_GET_TARGET * t["load"],
                     "numpy.load"))

        # calexp.wcs: the limit is reading the same JSON document and building the Wcs.
        wcs_doc = self.tmp / "wcs.json"
        import json

        wcs_doc.write_text(json.dumps(make_exposure(v0, d0, size=64).wcs.to_dict()))
        t = alternate(
            {
                "cs": (self.clear, cs_get("calexp.wcs")),
                "daf": (None, daf_get("calexp.wcs")),
                "json": (None, lambda rep: Wcs.from_dict(json.loads(wcs_doc.read_bytes()))),
            },
            r * 3,
        )
        self.add(Row("get calexp.wcs by data ID (cache empty)", t["cs"], t["daf"], t["json"], None,
                     f">= {WCS_SPEEDUP_TARGET:g}x faster than daf_butler",
                     _ratio_ok(t["cs"], t["daf"], 1 / WCS_SPEEDUP_TARGET), "json + Wcs.from_dict"))

        t = alternate(
            {
                "cs": (self.clear, cs_get("src")),
                "daf": (None, daf_get("src")),
                "load": (None, cat_limits.load),
                "memcpy": (None, cat_limits.memcpy),
            },
            r,
        )
        self.add(Row("get catalog (cache empty)", t["cs"], t["daf"], t["load"], t["memcpy"],
                     "<= daf_butler", _ratio_ok(t["cs"], t["daf"]), "numpy.load"))

        edge = min(BBOX_EDGE, self.size.edge // 2)
        x0 = y0 = self.size.edge // 2 - edge // 2 + 3  # not aligned to any chunk grid
        bbox = Box2I((x0, y0), (edge, edge))
        small = [a[y0 : y0 + edge, x0 : x0 + edge].copy() for a in exp_limits.arrays]
        small_out = [np.empty_like(a) for a in small]
        t = alternate(
            {
                "cs": (self.clear, cs_get("calexp", parameters={"bbox": bbox})),
                "daf": (None, daf_get("calexp", parameters={"bbox": bbox})),
                "load": (None, lambda rep: exp_limits.load_region(y0, y0 + edge, x0, x0 + edge)),
                "memcpy": (None, lambda rep: [np.copyto(o, a) for o, a in zip(small_out, small)]),
            },
            r * 2,
        )
        self.add(Row(f"get {edge}x{edge} bbox (cache empty)", t["cs"], t["daf"], t["load"], t["memcpy"],
                     "<= daf_butler", _ratio_ok(t["cs"], t["daf"]), "mmap numpy.load + slice"))

        # Cache hit: the exposure is held (as a user holding it would), get it again.
        self.cs.cache.clear()
        held = self.cs.get("calexp", visit=v0, detector=d0)
        hit = per_call(lambda: self.cs.get("calexp", visit=v0, detector=d0), 200)
        assert self.cs.get("calexp", visit=v0, detector=d0) is held
        self.add(Row("get exposure, cache hit", hit, None, None, None,
                     f"< {fmt_time(CACHE_HIT_TARGET)}", hit < CACHE_HIT_TARGET))
        ref = self.cs.find_dataset("calexp", visit=v0, detector=d0)
        hit_ref = per_call(lambda: self.cs.get(ref), 200)
        self.notes.append(f"cache-hit get by a resolved DatasetRef (no registry lookup): {fmt_time(hit_ref)}")
        del held

        # Lookup alone, same small repositories.
        t = alternate(
            {
                "cs": (None, lambda rep: self.cs.find_dataset("calexp", visit=self.pair(rep)[0],
                                                              detector=self.pair(rep)[1])),
                "daf": (None, lambda rep: self.daf.find_dataset("calexp", self.did(*self.pair(rep)))),
            },
            r * 20,
        )
        self.add(Row("find dataset by data ID (survey repository)", t["cs"], t["daf"], None, None,
                     "<= daf_butler", _ratio_ok(t["cs"], t["daf"])))

    # -- jointcal ------------------------------------------------------------------------
    def jointcal(self) -> None:
        """Read each calexp, give it a new Wcs and Calib, put it into run 'jointcal'."""
        cs_j = Butler(self.cs_root, run="jointcal", collections=["sfm"], fsync=False)
        daf_j = self.peer.open_butler(self.daf_root, run="jointcal", collections=["sfm"])
        before = {"cs": dir_bytes(self.cs_root), "daf": dir_bytes(self.daf_root)}
        self.cs.cache.clear()

        def new_wcs_calib(exp: Any) -> tuple[Wcs, Calib]:
            header = exp.wcs.to_header()
            header["CRVAL1"] = header["CRVAL1"] + 1e-5
            header["CRVAL2"] = header["CRVAL2"] - 1e-5
            return Wcs.from_header(header), Calib(exp.calib.calibration * 1.01, exp.calib.calibration_err)

        def cs_stage(v: int, d: int) -> None:
            exp = cs_j.get("calexp", visit=v, detector=d)
            wcs, calib = new_wcs_calib(exp)
            cs_j.put(exp.replace(wcs=wcs, calib=calib), "calexp", visit=v, detector=d)

        def daf_stage(v: int, d: int) -> None:
            exp = daf_j.get("calexp", self.did(v, d))
            wcs, calib = new_wcs_calib(exp)
            daf_j.put(exp.replace(wcs=wcs, calib=calib), "calexp", self.did(v, d))

        samples: dict[str, list[float]] = {"cs": [], "daf": []}
        for i, (v, d) in enumerate(self.pairs):
            order = [("cs", cs_stage), ("daf", daf_stage)]
            for name, fn in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn(v, d)
                samples[name].append(time.perf_counter() - t0)
        added = {"cs": dir_bytes(self.cs_root) - before["cs"], "daf": dir_bytes(self.daf_root) - before["daf"]}
        n = len(self.pairs)
        total = {k: sum(v) for k, v in samples.items()}
        self.raw["jointcal"] = {"samples": samples, "bytes_added": added}
        self.add(Row(f"jointcal stage, {n} exposures: total time", total["cs"], total["daf"], None, None,
                     "<= daf_butler", _ratio_ok(total["cs"], total["daf"])))
        ratio = added["cs"] / added["daf"] if added["daf"] else float("nan")
        calexp_bytes = self.cs.logical_bytes(collections=[self.cs.run], dataset_types=["calexp"])[0]
        self.add(Row(f"jointcal stage, {n} exposures: bytes added", added["cs"], added["daf"], None, None,
                     f"<= {JOINTCAL_BYTES_TARGET:.0%} of the calexps' bytes ({fmt_bytes(calexp_bytes)})",
                     added["cs"] <= JOINTCAL_BYTES_TARGET * calexp_bytes, fmt=fmt_bytes))
        self.notes.append(
            f"jointcal bytes added per exposure: compstore {fmt_bytes(added['cs'] / n)}, "
            f"daf_butler {fmt_bytes(added['daf'] / n)} ({ratio:.2%})"
        )

    # -- one visit loaded together ----------------------------------------------------------
    def visit_load(self) -> None:
        v = self.visits[0]

        def cs_load() -> list[Any]:
            return [self.cs.get(k, visit=v, detector=d) for d in self.detectors for k in ("calexp", "src")]

        def daf_load() -> list[Any]:
            return [self.daf.get(k, self.did(v, d)) for d in self.detectors for k in ("calexp", "src")]

        t = alternate({"cs": (self.clear, lambda rep: cs_load()), "daf": (None, lambda rep: daf_load())},
                      max(3, self.repeat // 2))
        # The visit's catalogs alone read no pixel bytes (use case 3).
        self.clear()
        pixel_bytes = 0
        get_array = self.cs.blobs.get_array
        pixel_digests = set()
        for d in self.detectors:
            manifest = self.cs._io.manifest(self.cs.find_dataset("calexp", visit=v, detector=d).manifest)
            pixel_digests |= {e["array"] for e in manifest["components"].values() if "array" in e}

        def spy(digest: str, region: Any = None) -> Any:
            nonlocal pixel_bytes
            out = get_array(digest, region)
            if digest in pixel_digests:
                pixel_bytes += out.nbytes
            return out

        self.cs.blobs.get_array = spy  # type: ignore[method-assign]
        try:
            [self.cs.get("src", visit=v, detector=d) for d in self.detectors]
        finally:
            del self.cs.blobs.get_array
        self.add(Row("  pixel bytes read loading the visit's catalogs", pixel_bytes, None, None, None,
                     "== 0", pixel_bytes == 0, fmt=lambda x: "n/a" if x is None else f"{x:,} B"))
        memory = {}
        for name, load in (("cs", cs_load), ("daf", daf_load)):
            self.clear()
            gc.collect()
            tracemalloc.start()
            objs = load()
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            arrays = []
            wcs_ids, calib_ids = set(), set()
            for o in objs:
                if hasattr(o, "image"):
                    arrays += exposure_arrays(o)
                else:
                    arrays += catalog_arrays(o)
                wcs_ids.add(id(o.wcs))
                calib_ids.add(id(o.calib))
            memory[name] = {
                "peak": peak,
                "held": current,
                "unique": unique_bytes(arrays),
                "wcs": len(wcs_ids),
                "calib": len(calib_ids),
            }
            del objs, arrays
        self.raw["visit_load"] = memory
        n = len(self.detectors)
        self.add(Row(f"load one visit ({n} exposures + {n} catalogs), cache empty", t["cs"], t["daf"], None,
                     None, "<= daf_butler", _ratio_ok(t["cs"], t["daf"])))
        cs_m, daf_m = memory["cs"], memory["daf"]
        self.add(Row("  peak traced memory during that load", cs_m["peak"], daf_m["peak"], None, None,
                     f"<= {PEAK_MEMORY_TARGET}x unique bytes ({fmt_bytes(cs_m['unique'])})",
                     cs_m["peak"] <= PEAK_MEMORY_TARGET * cs_m["unique"], fmt=fmt_bytes))
        self.add(Row("  distinct Wcs objects in that visit", cs_m["wcs"], daf_m["wcs"], None, None,
                     f"== {n} (shared by exposure and catalog)", cs_m["wcs"] == n, fmt=lambda x: f"{x}"))
        self.notes.append(
            "visit load memory: unique array bytes held compstore "
            f"{fmt_bytes(cs_m['unique'])}, daf_butler {fmt_bytes(daf_m['unique'])}; peak / unique: "
            f"compstore {cs_m['peak'] / cs_m['unique']:.2f}, daf_butler {daf_m['peak'] / daf_m['unique']:.2f}; "
            f"distinct Calib objects: compstore {cs_m['calib']}, daf_butler {daf_m['calib']} "
            "(tracemalloc: numpy and Python allocations; C-library scratch buffers are not traced)"
        )

    # -- cut-out of a big exposure -----------------------------------------------------------
    def cutout(self) -> None:
        s = self.size
        v, d = self.cutout_visit, 0
        print(f"making a {s.cutout_edge}x{s.cutout_edge} exposure ...", flush=True)
        e = make_exposure(v, d, size=s.cutout_edge)
        self.cs.put(e, "calexp", visit=v, detector=d)
        self.daf.put(e, "calexp", self.did(v, d))
        limits = ArrayLimits(exposure_arrays(e), self.tmp / "npy_big")
        del e
        x0 = y0 = s.cutout_edge // 3 + 7
        bbox = Box2I((x0, y0), (CUTOUT_EDGE, CUTOUT_EDGE))
        t = alternate(
            {
                "cs_full": (self.clear, lambda rep: self.cs.get("calexp", visit=v, detector=d)),
                "cs_cut": (self.clear, lambda rep: self.cs.get("calexp", visit=v, detector=d,
                                                               parameters={"bbox": bbox})),
                "daf_full": (None, lambda rep: self.daf.get("calexp", self.did(v, d))),
                "daf_cut": (None, lambda rep: self.daf.get("calexp", self.did(v, d), parameters={"bbox": bbox})),
                "load": (None, limits.load),
                "load_cut": (None, lambda rep: limits.load_region(y0, y0 + CUTOUT_EDGE, x0, x0 + CUTOUT_EDGE)),
            },
            self.repeat,
        )
        self.raw["cutout"] = t
        self.add(Row(f"get {s.cutout_edge}x{s.cutout_edge} exposure whole (cache empty)", t["cs_full"],
                     t["daf_full"], t["load"], None, "<= daf_butler", _ratio_ok(t["cs_full"], t["daf_full"]),
                     "numpy.load"))
        self.add(Row(f"get {CUTOUT_EDGE}x{CUTOUT_EDGE} cut-out of it", t["cs_cut"], t["daf_cut"], t["load_cut"],
                     None, "<= daf_butler", _ratio_ok(t["cs_cut"], t["daf_cut"]), "mmap numpy.load + slice"))
        speed_cs = t["cs_full"] / t["cs_cut"]
        speed_daf = t["daf_full"] / t["daf_cut"]
        self.add(Row("  whole / cut-out time", speed_cs, speed_daf, None, None,
                     f">= {CUTOUT_SPEEDUP_TARGET:.0f}x", speed_cs >= CUTOUT_SPEEDUP_TARGET,
                     fmt=lambda x: f"{x:.1f}x" if x is not None else "n/a"))

    # -- registry --------------------------------------------------------------------------
    def registry(self) -> None:
        """compstore's registry: lookups among N vs 1,000 datasets; a 1,000-ref where query."""
        big = self.size.registry_rows
        print(f"filling registries of {SMALL_REGISTRY:,} and {big:,} datasets ...", flush=True)
        butlers = {}
        insert_s = {}
        for n in (SMALL_REGISTRY, big):
            root = self.tmp / f"registry_{n}"
            Butler.create(root)
            b = Butler(root, run="sfm", fsync=False)
            b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
            per_visit = min(n, 1000)
            data_ids = [{"visit": i // per_visit, "detector": i % per_visit} for i in range(n)]
            manifests = [f"{i:032x}" for i in range(n)]
            t0 = time.perf_counter()
            b.registry.insert_datasets("calexp", data_ids, "sfm", manifests)
            insert_s[n] = time.perf_counter() - t0
            butlers[n] = b
            del data_ids, manifests

        def lookup(n: int) -> Callable[[int], Any]:
            per_visit = min(n, 1000)

            def fn(rep: int) -> Any:
                i = (rep * 7919) % n  # a prime stride: pages all over the index
                return butlers[n].find_dataset("calexp", visit=i // per_visit, detector=i % per_visit)

            return fn

        t = alternate({"small": (None, lookup(SMALL_REGISTRY)), "big": (None, lookup(big))}, 400)
        ratio = t["big"] / t["small"]
        self.add(Row(f"find dataset by data ID among {big:,} (vs {SMALL_REGISTRY:,})", t["big"], None, None,
                     None, f"<= {LOOKUP_RATIO_TARGET}x the {SMALL_REGISTRY:,} case ({fmt_time(t['small'])})",
                     ratio <= LOOKUP_RATIO_TARGET))
        self.notes.append(f"registry lookup ratio {big:,} / {SMALL_REGISTRY:,}: {ratio:.2f}x; bulk insert of "
                          f"{big:,} rows: {insert_s[big]:.2f} s ({big / insert_s[big]:,.0f} rows/s)")
        visits = big // 1000
        q = alternate(
            {"q": (None, lambda rep: butlers[big].query_datasets("calexp", where=f"visit = {(rep * 37) % visits}"))},
            7,
        )["q"]
        refs = butlers[big].query_datasets("calexp", where="visit = 1")
        self.add(Row(f"where query returning {len(refs):,} refs of {big:,}", q, None, None, None,
                     f"< {fmt_time(QUERY_TARGET)}", q < QUERY_TARGET))


def run(size_name: str, size: Size, repeat: int, tmp: Path) -> tuple[str, dict[str, Any]]:
    """Run every comparison; return the Markdown report and the raw samples."""
    started = time.perf_counter()
    steal = StealMeter()
    bench = Bench(size, repeat, tmp)
    print("| " + " | ".join(HEADERS) + " |", flush=True)
    bench.warm_up()
    bench.put_survey()
    bench.gets()
    bench.jointcal()
    bench.visit_load()
    bench.cutout()
    bench.registry()
    elapsed = time.perf_counter() - started
    misses = [r.operation.strip() for r in bench.rows if r.ok is False]
    head = (
        f"bench_vs_daf_butler --size {size_name}: {size.visits} visits x {size.detectors} detectors of "
        f"{size.edge}x{size.edge} exposures + catalogs; medians of {repeat} repeats (lookups: 400, "
        f"wcs: {repeat * 3}, bbox: {repeat * 2}), operations alternating, page cache warm; "
        f"compstore fsync off unless said; run took {elapsed:.0f} s\n\n{machine()}\n"
    )
    if stolen := steal.report():
        head += f"\n{stolen}\n"
    text = head + "\n" + markdown_table(HEADERS, [r.cells() for r in bench.rows]) + "\n\n"
    text += "\n".join(f"- {n}" for n in bench.notes) + "\n"
    text += f"\nMISS: {len(misses)} ({'; '.join(misses) or 'none'})\n"
    bench.raw["rows"] = [dataclasses.asdict(r) | {"fmt": None} for r in bench.rows]
    return text, bench.raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=list(SIZES), default="full")
    parser.add_argument("--repeat", type=int, help="repeats per operation (default by --size)")
    parser.add_argument("--visits", type=int)
    parser.add_argument("--detectors", type=int)
    parser.add_argument("--tmp", help="scratch folder (default: a new temporary folder)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    try:
        import lsst.daf.butler  # noqa: F401
    except ImportError:
        print("lsst-daf-butler is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    size = SIZES[args.size]
    size = dataclasses.replace(size, visits=args.visits or size.visits, detectors=args.detectors or size.detectors)
    repeat = args.repeat or size.repeat
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        text, raw = run(args.size, size, repeat, Path(tmp))
    print()
    print(text)
    if not args.no_write:
        dump_json(f"vs_daf_butler_{args.size}.json", raw)
        path = write_result(f"vs_daf_butler_{args.size}.md", text)
        if path:
            print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
