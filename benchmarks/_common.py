"""Shared helpers of the benchmark scripts: timing, the numpy/memcpy limits, tables.

Not a benchmark itself. Scripts in this folder import it by name (their folder
is ``sys.path[0]`` when run as ``python benchmarks/SCRIPT.py``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


# -- timing ------------------------------------------------------------------------
def median_time(fn: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs (``setup`` untimed)."""
    samples = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def alternate(
    ops: dict[str, tuple[Callable[[int], Any] | None, Callable[[int], Any]]], repeats: int
) -> dict[str, float]:
    """Run every op once per repeat, rotating their order; return median seconds per op.

    ``ops`` maps a name to ``(setup, fn)``; both take the repeat index, ``setup``
    (may be None) is not timed. Rotating the order spreads any drift (page cache,
    CPU frequency, the other process on the machine) over all ops alike.
    """
    names = list(ops)
    samples: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(repeats):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            setup, fn = ops[name]
            if setup is not None:
                setup(rep)
            t0 = time.perf_counter()
            fn(rep)
            samples[name].append(time.perf_counter() - t0)
    return {n: statistics.median(s) for n, s in samples.items()}


def per_call(fn: Callable[[], Any], calls: int, batches: int = 5) -> float:
    """Median over ``batches`` of the mean seconds per call of ``calls`` back-to-back calls."""
    means = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        means.append((time.perf_counter() - t0) / calls)
    return statistics.median(means)


# -- the repositories --------------------------------------------------------------------
def survey_butler(root: Path, *, fsync: bool = False, run: str = "sfm", **kwargs: Any) -> Any:
    """A Butler on ``root`` (created if missing) with ``calexp`` and ``src`` registered."""
    from compstore import Butler

    if not (root / "compstore.json").exists():
        Butler.create(root)
    b = Butler(root, run=run, fsync=fsync, **kwargs)
    b.register_dataset_type("calexp", ("visit", "detector"), "Exposure")
    b.register_dataset_type("src", ("visit", "detector"), "SourceCatalog")
    return b


# -- the limits: numpy.save / numpy.load / memcpy of the same arrays --------------------
class ArrayLimits:
    """Write, read and copy a fixed set of arrays the plainest way numpy can.

    ``save`` writes each array to its own ``.npy`` file (no fsync, like the
    stores compared); ``load`` reads them back; ``memcpy`` copies them into
    preallocated buffers (``np.copyto``): the speed of memory itself.
    """

    def __init__(self, arrays: Sequence[np.ndarray], folder: Path) -> None:
        self.arrays = [np.ascontiguousarray(a) for a in arrays]
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths = [self.folder / f"a{i}.npy" for i in range(len(self.arrays))]
        self.out = [np.empty_like(a) for a in self.arrays]
        self.save()

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def save(self, _rep: int = 0) -> None:
        for a, p in zip(self.arrays, self.paths, strict=True):
            np.save(p, a, allow_pickle=False)

    def save_new(self, _rep: int = 0) -> None:
        """``save`` into a new folder each time: new files, as a put of new data makes.

        ``save`` rewrites files that exist already (no file is created); this is
        the same write to files that do not, an informative second limit.
        """
        self._new = getattr(self, "_new", 0) + 1
        folder = self.folder / f"new{self._new}"
        folder.mkdir()
        for i, a in enumerate(self.arrays):
            np.save(folder / f"a{i}.npy", a, allow_pickle=False)

    def load(self, _rep: int = 0) -> list[np.ndarray]:
        return [np.load(p) for p in self.paths]

    def load_region(self, y0: int, y1: int, x0: int, x1: int) -> list[np.ndarray]:
        """A cut-out read: memory-map each file, copy the window (2-D arrays only)."""
        return [np.array(np.load(p, mmap_mode="r")[y0:y1, x0:x1]) for p in self.paths]

    def memcpy(self, _rep: int = 0) -> None:
        for a, o in zip(self.arrays, self.out, strict=True):
            np.copyto(o, a)


def exposure_arrays(exposure: Any) -> list[np.ndarray]:
    """The pixel planes of an Exposure (image, int32 mask, variance)."""
    return [exposure.image, exposure.mask.array, exposure.variance]


def catalog_arrays(catalog: Any) -> list[np.ndarray]:
    """The columns of a SourceCatalog as plain arrays."""
    return [np.asarray(catalog.table[name]) for name in catalog.columns]


def unique_bytes(arrays: Iterable[np.ndarray]) -> int:
    """Bytes of the distinct memory buffers behind ``arrays`` (shared buffers count once)."""
    seen: dict[int, int] = {}
    for a in arrays:
        base = a
        while isinstance(base, np.ndarray) and base.base is not None and isinstance(base.base, np.ndarray):
            base = base.base
        key = base.__array_interface__["data"][0] if isinstance(base, np.ndarray) else id(base)
        seen[key] = max(seen.get(key, 0), base.nbytes if isinstance(base, np.ndarray) else a.nbytes)
    return sum(seen.values())


# -- disk -------------------------------------------------------------------------------
def dir_bytes(path: str | os.PathLike[str]) -> int:
    """Sum of the sizes of every regular file under ``path``."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                pass
    return total


# -- formatting -------------------------------------------------------------------------
def fmt_time(seconds: float | None) -> str:
    if seconds is None or (isinstance(seconds, float) and np.isnan(seconds)):
        return "n/a"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}x"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool | None) -> str:
    """PASS, MISS, or '-' when an operation has no target."""
    if ok is None:
        return "-"
    return "PASS" if ok else "**MISS**"


# -- the machine --------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class StealMeter:
    """CPU time the hypervisor took from this virtual machine while a run lasted.

    Linux counts it in ``/proc/stat`` ("steal"): time a virtual CPU was ready
    to run but the host ran something else. A run that lost much of it timed a
    slower machine than a quiet one; its ratios are still same-run ratios.
    """

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        if len(fields) < 8:
            return None
        busy = fields[0] + fields[1] + fields[2]  # user, nice, system
        return busy, fields[7]

    def report(self) -> str:
        """``"CPU steal during the run: X% ..."``, or "" where not measurable.

        X is steal / (user + nice + system + steal) over the run, both virtual CPUs.
        """
        end = self._read()
        if self.start is None or end is None:
            return ""
        busy, steal = end[0] - self.start[0], end[1] - self.start[1]
        if busy + steal <= 0:
            return ""
        share = 100 * steal / (busy + steal)
        return f"CPU steal during the run: {share:.0f}% (steal / (user + system + steal), /proc/stat)"


def machine() -> str:
    """One line naming the machine, the Python and the library versions that matter."""
    versions = []
    for mod in ("numpy", "zarr", "numcodecs", "astropy"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except Exception:
            pass
    try:
        from importlib.metadata import version

        versions.append(f"lsst-daf-butler {version('lsst-daf-butler')}")
    except Exception:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 1024**3:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        pass
    return (
        f"{platform.platform()}; {cpu_model()}, {os.cpu_count()} cores{mem}; "
        f"Python {platform.python_version()}; " + ", ".join(versions) + f"; {source_state()}"
    )


def source_state() -> str:
    """The compstore commit measured, and whether src/ had uncommitted changes."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "compstore source: unknown"
    return f"compstore {head or 'unknown'}" + (" + uncommitted changes in src/" if dirty else "")


def write_result(name: str, text: str) -> Path | None:
    """Write ``text`` to ``benchmarks/results/NAME`` (git-ignored); return the path."""
    try:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / name
        path.write_text(text)
        return path
    except OSError as exc:  # a read-only checkout must not fail a benchmark
        print(f"(could not write {name}: {exc})", file=sys.stderr)
        return None


def dump_json(name: str, data: Any) -> None:
    write_result(name, json.dumps(data, indent=2, default=str) + "\n")
