"""Run every benchmark script once at its smallest size: does each still run to the end?

Each script runs in its own process (``sys.executable``) with the arguments that
make it small (``--size tiny``/``small``, or a small image and one repeat).
Exits non-zero only if a script crashes (non-zero exit status or a hang past
``--timeout``) -- never because of a timing: the figures printed at this size
mean nothing. The daf_butler comparison is skipped when ``lsst.daf.butler``
is not importable, the profiler run when ``pyinstrument`` is not.

Usage::

    python benchmarks/smoke.py
    python benchmarks/smoke.py --only bench_put_get.py --only bench_scaling.py
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# script -> (arguments at the smallest size, module it needs beyond compstore)
SCRIPTS: dict[str, tuple[list[str], str | None]] = {
    "bench_cas_layout.py": (["--size", "256", "--repeat", "1"], None),
    "bench_registry.py": (["--size", "small"], None),
    "bench_registry_pg.py": (["--size", "tiny"], "psycopg"),
    "bench_cache.py": (["--size", "small"], None),
    "bench_packs.py": (["--size", "tiny", "--no-write"], None),
    "bench_gc.py": (["--size", "tiny"], None),
    "bench_put_get.py": (["--size", "tiny", "--no-write"], None),
    "bench_scaling.py": (["--size", "tiny", "--no-write"], None),
    "bench_vs_daf_butler.py": (["--size", "tiny", "--no-write"], "lsst.daf.butler"),
    "bench_defined.py": (["--size", "tiny", "--no-write", "--repeat", "1"], "pyarrow"),
    "bench_subset.py": (["--size", "tiny", "--no-write", "--repeat", "1"], None),
    "bench_format3.py": (["--size", "tiny", "--no-write"], None),
    "bench_pipeline_dask.py": (["--size", "tiny"], "distributed"),
    "bench_zarr_view.py": (["--size", "tiny", "--no-write", "--repeat", "1"], "xarray"),
    "bench_checksums.py": (["--size", "tiny", "--no-write", "--repeat", "3"], None),
    "bench_s3.py": (["--size", "tiny", "--no-write", "--repeat", "1"], "moto"),
    "profile_misses.py": (["--size", "tiny", "--tree-lines", "5", "--flat-lines", "3"], "pyinstrument"),
}


def available(module: str | None) -> bool:
    if module is None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def run_one(script: str, args: list[str], timeout: float) -> tuple[str, float, str]:
    """Run one script; return (status, seconds, tail of its output)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args],
            cwd=HERE.parent,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return "HUNG", time.perf_counter() - start, f"no exit within {timeout:.0f} s"
    seconds = time.perf_counter() - start
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return ("ok" if proc.returncode == 0 else f"CRASHED (exit {proc.returncode})"), seconds, tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCRIPTS), help="run only these scripts")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a script counts as hung")
    args = parser.parse_args(argv)
    failed = []
    for script, (script_args, needs) in SCRIPTS.items():
        if args.only and script not in args.only:
            continue
        if not available(needs):
            print(f"skip  {script}: {needs} is not installed")
            continue
        status, seconds, tail = run_one(script, script_args, args.timeout)
        print(f"{status:<5} {script} {' '.join(script_args)}  ({seconds:.1f} s)", flush=True)
        if status != "ok":
            failed.append(script)
            print("      " + tail.replace("\n", "\n      "))
    if failed:
        print(f"{len(failed)} benchmark script(s) crashed: {', '.join(failed)}")
        return 1
    print("every benchmark script ran (timings at this size are not checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
