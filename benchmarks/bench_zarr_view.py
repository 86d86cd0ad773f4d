"""Reading a dataset through ``xarray.open_zarr(butler.zarr_store(...))`` against ``butler.get``.

Usage: ``python benchmarks/bench_zarr_view.py [--size tiny|full] [--repeat N] [--no-write]``.

Two rows, each a ratio against a baseline measured in the same run, the
operations alternating (``_common.alternate``) with the identity cache cleared
before each (so both decode from the page cache, neither answers from memory):

- a 2048 x 2048 calexp's image: ``xr.open_zarr(store)["image"].values`` against
  ``butler.get("calexp.image", ...)`` (goal: at most 1.5x), the store made for
  the component ``calexp.image`` and for the whole ``calexp`` (five variables,
  the ``x``/``y`` coordinates xarray loads at open); and ``xr.open_zarr`` alone,
  reading no pixels: xarray's fixed cost;
- 4 columns of a 1,000,000-row catalog: ``xr.open_zarr(store)[c].values`` for
  each against ``butler.get("src", ..., parameters={"columns": [...]})``.

Opening the store (the lookup, the manifest, the group's attributes) is part
of the timed xarray path.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
from astropy.table import Table

from _common import alternate, fmt_ratio, fmt_time, machine, markdown_table, survey_butler, verdict, write_result

SIZES = {"tiny": (256, 10_000), "full": (2048, 1_000_000)}
COLUMNS = ["ra", "dec", "flux", "flag"]
DATA_ID = {"visit": 1, "detector": 0}


def _catalog(rows: int) -> Table:
    rng = np.random.default_rng(0)
    table = Table()
    table["id"] = np.arange(rows, dtype=np.int64)
    for name in ("ra", "dec", "x", "y", "flux", "flux_err", "shape_xx", "shape_yy"):
        table[name] = rng.normal(size=rows)
    table["flag"] = rng.random(rows) < 0.1
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # xarray's notices about the store's chunking are not figures
    import xarray as xr

    from compstore.testing.sky import make_exposure

    size, rows = SIZES[args.size]
    with tempfile.TemporaryDirectory() as tmp:
        b = survey_butler(Path(tmp) / "repo")
        b.put(make_exposure(1, 0, size=size, seed=1), "calexp", **DATA_ID)
        b.put(_catalog(rows), "src", **DATA_ID)

        def clear(_k: int) -> None:
            b.cache.clear()

        def xr_image(_k: int) -> np.ndarray:
            return xr.open_zarr(b.zarr_store("calexp", **DATA_ID))["image"].values

        def xr_component(_k: int) -> np.ndarray:
            return xr.open_zarr(b.zarr_store("calexp.image", **DATA_ID))["image"].values

        def xr_open(_k: int) -> object:
            return xr.open_zarr(b.zarr_store("calexp", **DATA_ID))

        def xr_columns(_k: int) -> list[np.ndarray]:
            ds = xr.open_zarr(b.zarr_store("src", **DATA_ID))
            return [ds[c].values for c in COLUMNS]

        expected = b.get("calexp.image", **DATA_ID)
        assert np.array_equal(xr_image(0), expected)  # the same values, or the timing means nothing
        got = b.get("src", **DATA_ID, parameters={"columns": COLUMNS})
        assert all(np.array_equal(a, np.asarray(got[c])) for a, c in zip(xr_columns(0), COLUMNS))
        times = alternate(
            {
                "get image": (clear, lambda k: b.get("calexp.image", **DATA_ID)),
                "xarray image": (clear, xr_image),
                "xarray component": (clear, xr_component),
                "xarray open": (clear, xr_open),
                "get columns": (clear, lambda k: b.get("src", **DATA_ID, parameters={"columns": COLUMNS})),
                "xarray columns": (clear, xr_columns),
            },
            args.repeat,
        )
    get = times["get image"]
    rows_table = [
        (f"{size}x{size} image, store of `calexp.image`", fmt_time(get),
         fmt_time(times["xarray component"]), fmt_ratio(times["xarray component"], get),
         "<= 1.5x", verdict(times["xarray component"] <= 1.5 * get)),
        (f"{size}x{size} image, store of `calexp`", fmt_time(get), fmt_time(times["xarray image"]),
         fmt_ratio(times["xarray image"], get), "<= 1.5x", verdict(times["xarray image"] <= 1.5 * get)),
        ("`xr.open_zarr` of the `calexp` store alone (no pixels)", fmt_time(get),
         fmt_time(times["xarray open"]), fmt_ratio(times["xarray open"], get), "(measured)", ""),
        (f"4 of 10 columns, {rows:,} rows", fmt_time(times["get columns"]),
         fmt_time(times["xarray columns"]), fmt_ratio(times["xarray columns"], times["get columns"]),
         "(measured)", ""),
    ]
    text = "\n".join([
        "## xarray.open_zarr(butler.zarr_store(...)) against butler.get",
        "",
        machine(),
        "",
        markdown_table(["read", "butler.get", "xarray via zarr_store", "ratio", "goal", ""], rows_table),
        "",
    ])
    print(text)
    if not args.no_write:
        write_result("zarr_view", text)


if __name__ == "__main__":
    main()
