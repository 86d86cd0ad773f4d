"""Measure the blob store's array layout choices: codecs, chunk shapes, I/O paths.

Run ``python benchmarks/bench_cas_layout.py [--size 4096] [--repeat 5]``; it
prints Markdown tables (medians of ``--repeat`` runs, page cache warm) that
``docs/design/array-layout.md`` quotes. Sections:

1. codecs on a sky-like float32 image and an int32 bit mask (ratio, speed);
2. 2-D chunk edge: whole read vs a 100x100 cutout;
3. 1-D chunk length for a catalog column;
4. zarr-python API vs compstore's direct zarr v3 I/O (tiny and big arrays);
5. serial vs threaded chunk coding for a big array;
6. documents and a whole exposure put + sync.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from compstore.cas import LocalBlobStore, canonical_json, digest_array
from compstore.cas import _layout, _zarrio, _zarrwrite
from compstore.cas._zarrfmt import numcodec_of

REPEAT = 5
STAT: Callable[[list[float]], float] = statistics.median


def timed(
    fn: Callable[[], Any], repeat: int | None = None, setup: Callable[[], Any] | None = None
) -> float:
    """Wall time of ``fn`` in seconds: median (or minimum, ``--stat min``) of the repeats."""
    times = []
    for _ in range(repeat or REPEAT):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return STAT(times)


def sky(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.normal(1000.0, 10.0, size=(n, n)).astype(np.float32)
    yy, xx = np.mgrid[0:25, 0:25] - 12
    psf = np.exp(-(xx**2 + yy**2) / (2 * 2.0**2)).astype(np.float32)
    for _ in range(n * n // 20_000):
        y, x = rng.integers(0, n - 25, size=2)
        image[y : y + 25, x : x + 25] += psf * rng.lognormal(7, 1)
    return image


def mask_for(image: np.ndarray) -> np.ndarray:
    mask = np.zeros(image.shape, dtype=np.int32)
    mask[image > 1050] |= 1 << 5  # DETECTED
    mask[image > 60_000] |= 1 << 1  # SAT
    mask[:, 100:102] |= 1  # a BAD column pair
    mask[:8, :] |= 1 << 4  # EDGE
    mask[-8:, :] |= 1 << 4
    return mask


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def gbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:.2f} GB/s"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


# -- 1 -------------------------------------------------------------------------
def bench_codecs(image: np.ndarray, mask: np.ndarray) -> None:
    print("\n### 1. Codecs, one 512x512 chunk at a time, one thread\n")
    row("data", "codec", "ratio", "encode", "decode")
    row(*["---"] * 5)
    codecs = {
        "blosc lz4 shuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE, typesize=4),
        "blosc lz4 bitshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.BITSHUFFLE, typesize=4),
        "blosc zstd-1 bitshuffle": numcodecs.Blosc(
            "zstd", 1, numcodecs.Blosc.BITSHUFFLE, typesize=4
        ),
        "zstd-1": numcodecs.Zstd(level=1),
        "zstd-3": numcodecs.Zstd(level=3),
        "blosc blosclz noshuffle": numcodecs.Blosc("blosclz", 5, numcodecs.Blosc.NOSHUFFLE, typesize=4),
        "blosc blosclz noshuffle, 256 KiB blocks": numcodecs.Blosc(
            "blosclz", 5, numcodecs.Blosc.NOSHUFFLE, blocksize=256 * 1024, typesize=4
        ),
        "blosc lz4 noshuffle": numcodecs.Blosc("lz4", 5, numcodecs.Blosc.NOSHUFFLE, typesize=4),
    }
    # The codec compstore chooses for the mask (an int32 plane), from the layout itself.
    chosen = _layout.choose_layout(mask.dtype, mask.shape).compressor
    assert chosen is not None
    cfg = chosen["configuration"]
    label = f"compstore's mask codec ({chosen['name']} {cfg.get('cname', '')} {cfg.get('shuffle', '')})"
    codecs[label.replace("  ", " ").replace(" )", ")")] = numcodec_of(chosen)
    for label, data in (("sky f32", image), ("mask i32", mask)):
        chunks = [
            np.ascontiguousarray(data[y : y + 512, x : x + 512])
            for y in range(0, data.shape[0], 512)
            for x in range(0, data.shape[1], 512)
        ]
        for name, codec in codecs.items():
            numcodecs.blosc.use_threads = False
            encoded = [codec.encode(c) for c in chunks]
            size = sum(len(e) for e in encoded)
            t_enc = timed(lambda: [codec.encode(c) for c in chunks])
            out = np.empty((512, 512), dtype=data.dtype)  # the reader decodes in place too
            t_dec = timed(lambda: [codec.decode(e, out=out) for e in encoded])
            row(
                label,
                name,
                f"{data.nbytes / size:.2f}x",
                gbps(data.nbytes, t_enc),
                gbps(data.nbytes, t_dec),
            )


# -- 2 -------------------------------------------------------------------------
def bench_chunks_2d(image: np.ndarray, tmp: str) -> None:
    print("\n### 2. 2-D chunk edge (float32 sky, blosc lz4 shuffle, direct reader)\n")
    row("chunks", "files", "write", "whole read", "100x100 cutout", "whole / cutout")
    row(*["---"] * 6)
    n = image.shape[0]
    rng = np.random.default_rng(0)
    for edge in (256, 512, 1024, n):
        _layout.CHUNK_2D_EDGE = edge  # type: ignore[misc]
        root = os.path.join(tmp, f"c{edge}")
        store = LocalBlobStore(root, fsync=False)
        digest = digest_array(image)
        t_write = timed(
            lambda: store.put_array(image, digest=digest),
            setup=lambda: store.delete(digest) if store.has_array(digest) else None,
        )
        store._meta.clear()
        t_whole = timed(lambda: store.get_array(digest))
        corners = rng.integers(0, n - 100, size=(50, 2))

        def cutouts() -> None:
            for y, x in corners:
                store.get_array(digest, (slice(y, y + 100), slice(x, x + 100)))

        t_cut = timed(cutouts) / len(corners)
        files = sum(len(f) for _, _, f in os.walk(os.path.join(root, "arrays"))) - 2
        row(f"{edge}x{edge}", files, ms(t_write), ms(t_whole), ms(t_cut), f"{t_whole / t_cut:.0f}x")
    _layout.CHUNK_2D_EDGE = 512  # type: ignore[misc]


# -- 3 -------------------------------------------------------------------------
def bench_chunks_1d(tmp: str) -> None:
    print("\n### 3. 1-D chunk length (10M float64 column, blosc lz4 shuffle)\n")
    row("chunk", "files", "write", "whole read", "10k-row slice")
    row(*["---"] * 5)
    rng = np.random.default_rng(0)
    column = np.cumsum(rng.normal(size=10_000_000))
    for chunk_bytes in (256 << 10, 1 << 20, 4 << 20, 16 << 20):
        _layout.CHUNK_1D_BYTES = chunk_bytes  # type: ignore[misc]
        store = LocalBlobStore(os.path.join(tmp, f"col{chunk_bytes}"), fsync=False)
        digest = digest_array(column)
        t_write = timed(
            lambda: store.put_array(column, digest=digest),
            setup=lambda: store.delete(digest) if store.has_array(digest) else None,
        )
        t_whole = timed(lambda: store.get_array(digest))
        t_slice = timed(lambda: store.get_array(digest, (slice(5_000_000, 5_010_000),)))
        folder = os.path.join(store.root, store.component_path(digest))
        files = sum(name == "c" or name.startswith(("c.", "c/")) for name in os.listdir(folder))
        row(f"{chunk_bytes >> 10} KiB", files, ms(t_write), ms(t_whole), ms(t_slice))
    _layout.CHUNK_1D_BYTES = 4 << 20  # type: ignore[misc]


# -- 4 -------------------------------------------------------------------------
def _zarr_api_write(path: str, array: np.ndarray) -> None:
    layout = _layout.choose_layout(array.dtype, array.shape)
    cfg = layout.compressor["configuration"]
    comp = BloscCodec(**cfg) if layout.compressor["name"] == "blosc" else ZstdCodec(**cfg)
    z = zarr.create_array(store=path, shape=array.shape, dtype=array.dtype,
                          chunks=layout.chunk_shape, compressors=[comp], fill_value=0,
                          dimension_names=[f"d{i}" for i in range(array.ndim)])  # fmt: skip
    z[...] = array


def _zarr_api_read(path: str) -> np.ndarray:
    from zarr.core.buffer import default_buffer_prototype

    z = zarr.open_array(path, mode="r")
    out = default_buffer_prototype().nd_buffer.from_numpy_array(np.empty(z.shape, dtype=z.dtype))
    z.get_basic_selection(..., out=out)  # zarr's faster read, into a preallocated buffer
    return out.as_numpy_array()


def bench_zarr_vs_direct(image: np.ndarray, tmp: str) -> None:
    print("\n### 4. zarr-python API vs direct zarr v3 I/O (same files, same codecs)\n")
    row("array", "path", "create + write", "open + read", "100x100 cutout")
    row(*["---"] * 5)
    tiny = np.arange(6, dtype=np.float64)
    big = image
    for label, array in (("6 x float64", tiny), (f"{big.shape[0]}^2 float32", big)):
        counter = iter(range(10**6))
        paths: list[str] = []

        def api_write() -> None:
            p = os.path.join(tmp, "api", f"{array.nbytes}-{next(counter)}")
            paths.append(p)
            _zarr_api_write(p, array)

        t_w = timed(api_write)
        t_r = timed(lambda: _zarr_api_read(paths[0]))
        sl = (slice(1000, 1100), slice(2000, 2100)) if array.ndim == 2 else (slice(1, 3),)
        t_c = timed(lambda: zarr.open_array(paths[0], mode="r")[sl], repeat=20)
        row(label, "zarr API", ms(t_w), ms(t_r), ms(t_c))

        store = LocalBlobStore(os.path.join(tmp, "direct-" + label.split()[0]), fsync=False)
        digest = digest_array(array)
        t_w = timed(
            lambda: store.put_array(array, digest=digest),
            setup=lambda: store.delete(digest) if store.has_array(digest) else None,
        )

        def cold_read() -> np.ndarray:
            store._meta.clear()  # include parsing zarr.json, as a first read does
            return store.get_array(digest)

        t_r = timed(cold_read)
        t_c = timed(lambda: store.get_array(digest, sl), repeat=20)
        row(label, "direct", ms(t_w), ms(t_r), ms(t_c))


# -- 5 -------------------------------------------------------------------------
def bench_threads(image: np.ndarray, mask: np.ndarray, tmp: str) -> None:
    print("\n### 5. Serial vs threaded chunk coding (direct path)\n")
    row("array", "threads", "write", "read")
    row(*["---"] * 4)
    for label, array in (("sky f32", image), ("mask i32", mask)):
        for threaded in (False, True):
            _zarrio.PARALLEL_MIN_BYTES = (4 << 20) if threaded else (1 << 62)  # type: ignore[misc]
            _zarrwrite.PARALLEL_MIN_BYTES = _zarrio.PARALLEL_MIN_BYTES  # type: ignore[misc]
            store = LocalBlobStore(os.path.join(tmp, f"thr-{label[:3]}-{threaded}"), fsync=False)
            digest = digest_array(array)
            t_w = timed(
                lambda: store.put_array(array, digest=digest),
                setup=lambda: store.delete(digest) if store.has_array(digest) else None,
            )
            t_r = timed(lambda: store.get_array(digest))
            row(
                label,
                f"pool of {min(8, os.cpu_count() or 1)}" if threaded else "1",
                ms(t_w),
                ms(t_r),
            )
    _zarrio.PARALLEL_MIN_BYTES = _zarrwrite.PARALLEL_MIN_BYTES = 4 << 20  # type: ignore[misc]


# -- 6 -------------------------------------------------------------------------
def bench_documents_and_exposure(tmp: str, n: int) -> None:
    print("\n### 6. Documents, and one exposure (image + mask + variance) put + sync\n")
    row("operation", "fsync=True", "fsync=False")
    row(*["---"] * 3)
    docs = [
        canonical_json({"crval": [10.0 + i, -5.0], "cd": [[1e-5, 0], [0, 1e-5]], "i": i})
        for i in range(200)
    ]
    results: dict[str, list[str]] = {}
    for fsync in (True, False):
        store = LocalBlobStore(os.path.join(tmp, f"docs-{fsync}"), fsync=fsync)
        t0 = time.perf_counter()
        digests = [store.put_document(d) for d in docs]
        t_put = (time.perf_counter() - t0) / len(docs)
        t0 = time.perf_counter()
        store.sync()
        t_sync = (time.perf_counter() - t0) / len(docs)
        t_get = timed(lambda: [store.get_document(d) for d in digests]) / len(docs)
        image = sky(n, seed=5)
        parts = [image, mask_for(image), np.abs(image) / 4 + 1]

        def put_exposure() -> None:
            for p in parts:
                store.put_array(p)
            store.sync()

        def clear() -> None:
            for p in parts:
                d = digest_array(p)
                if store.has_array(d):
                    store.delete(d)
            store.sync()

        t_exp = timed(put_exposure, setup=clear)
        t_get_exp = timed(lambda: [store.get_array(digest_array(p)) for p in parts])
        results.setdefault("document put (per doc)", []).append(f"{t_put * 1e3:.3f} ms")
        results.setdefault("sync of 200 documents (per doc)", []).append(f"{t_sync * 1e3:.3f} ms")
        results.setdefault("document get", []).append(f"{t_get * 1e3:.3f} ms")
        results.setdefault(f"exposure {n}^2 put + sync (hashing included)", []).append(ms(t_exp))
        results.setdefault(f"exposure {n}^2 get (3 arrays, hashing included)", []).append(
            ms(t_get_exp)
        )
    for name, cells in results.items():
        row(name, *cells)


def bench_layout_decisions(n: int, tmp: str) -> None:
    """The choices docs/spec/format.md ("Array layout") states, measured on synthetic exposures of compstore's sky."""
    from compstore.testing.sky import make_exposure

    print(f"\n### 7. Layout decisions on synthetic exposures ({n}x{n}; 3 detectors read in turn)\n")
    exposures = [make_exposure(1, d, size=n) for d in (6, 7, 12)]
    planes = {
        "image": [e.image for e in exposures],
        "variance": [e.variance for e in exposures],
        "mask": [e.mask.array for e in exposures],
    }
    # a 100x100 box straddling the chunk corner at the centre: the worst case
    half = n // 2
    box = (slice(max(0, half - 49), half + 51), slice(max(0, half - 49), half + 51))
    float_variants = [("blosc lz4 shuffle", 0.0), ("none (stored raw)", 1.0)]
    mask_variants = [
        ("zstd-1, one shard of 256x256 chunks", ("zstd", 256)),
        ("blosc blosclz, one shard of 512x512 chunks", ("blosc", 512)),
        ("blosc blosclz, one shard of 256x256 chunks", ("blosc", 256)),
    ]
    row("plane", "codec / chunks", "compression", "whole read", "100x100 read")
    row(*["---"] * 5)
    saved = (_zarrwrite.MIN_SAVING, _layout.CHUNK_2D_EDGE_INT)
    chosen = _zarrwrite.choose_layout  # type: ignore[attr-defined]
    try:
        for name, arrays in planes.items():
            variants = mask_variants if name == "mask" else float_variants
            for i, (label, knob) in enumerate(variants):
                if name == "mask":
                    codec, edge = knob
                    _layout.CHUNK_2D_EDGE_INT = edge  # type: ignore[misc]
                    _zarrwrite.choose_layout = _layout.choose_layout if codec == "blosc" else _zstd_layout  # type: ignore[attr-defined]
                else:
                    _zarrwrite.MIN_SAVING = float(knob)  # type: ignore[misc]
                store = LocalBlobStore(os.path.join(tmp, f"decide-{name}-{i}"), fsync=False)
                digests = [store.put_array(a) for a in arrays]
                ratio = sum(a.nbytes for a in arrays) / sum(store.stored_bytes(d) for d in digests)
                whole = timed(lambda: [store.get_array(d) for d in digests]) / len(digests)
                cut = timed(lambda: [store.get_array(d, box) for d in digests]) / len(digests)
                row(name, label, f"{ratio:.2f}x", ms(whole), ms(cut))
    finally:
        _zarrwrite.MIN_SAVING, _layout.CHUNK_2D_EDGE_INT = saved  # type: ignore[misc]
        _zarrwrite.choose_layout = chosen  # type: ignore[attr-defined]


def _zstd_layout(dtype: np.dtype, shape: tuple[int, ...]) -> _layout.ArrayLayout:
    """The layout compstore chose before masks moved to blosc: zstd-1 for every integer array."""
    chosen = _layout.choose_layout(dtype, shape)
    if dtype.kind in "fc":
        return chosen
    return replace(chosen, compressor={"name": "zstd", "configuration": dict(_layout.ZSTD_CONFIG)})


def bench_files(tmp: str) -> None:
    """Why every array is one file: what file creation costs against writing bytes."""
    print("\n### 8. Files: one per array or one per chunk (2048x2048 float32, 16 MiB)\n")
    rng = np.random.default_rng(8)
    plane = rng.normal(1000.0, 30.0, (2048, 2048)).astype(np.float32)
    tiles = [np.ascontiguousarray(plane[y : y + 512, x : x + 512])
             for y in range(0, 2048, 512) for x in range(0, 2048, 512)]  # fmt: skip
    folder = os.path.join(tmp, "files")
    os.mkdir(folder)
    count = iter(range(10**9))

    def small_files() -> None:  # 100 new 300-byte files
        for _ in range(100):
            with open(os.path.join(folder, f"s{next(count)}"), "xb") as f:
                f.write(b"x" * 300)

    def one_file() -> None:
        with open(os.path.join(folder, f"one{next(count)}"), "xb") as f:
            f.write(plane)  # type: ignore[arg-type]

    def sixteen_files() -> None:
        d = os.path.join(folder, f"tiles{next(count)}")
        os.mkdir(d)
        for i, t in enumerate(tiles):
            with open(os.path.join(d, f"c.{i}"), "xb") as f:
                f.write(t)  # type: ignore[arg-type]

    row("write", "time")
    row("---", "---")
    row("create a small file (mean of 100)", f"{timed(small_files) / 100 * 1e6:.0f} us")
    row("the plane as one file", ms(timed(one_file)))
    row("the plane as 16 chunk files of 512x512", ms(timed(sixteen_files)))


def bench_creates_under_writes(tmp: str, n: int, rounds: int) -> None:
    """What a new file costs while a put's worth of bytes is written between creations.

    Each round writes three new files of an ``n`` x ``n`` float32 plane (an
    exposure's planes), then times 30 creations of a 3 KiB file (a catalog's
    worth) one by one. A file's creation is cheap while the disk is idle and
    dearer once the kernel writes the earlier rounds' pages to disk (ext4
    here; mount options and disk decide).
    """
    mib = 3 * n * n * 4 / (1 << 20)
    print(f"\n### 9. Creating a file between {mib:.0f} MiB writes ({rounds} rounds)\n")
    plane = np.random.default_rng(9).normal(1000.0, 30.0, (n, n)).astype(np.float32)
    folder = os.path.join(tmp, "creates")
    os.mkdir(folder)
    row("round", "median create", "slowest create", "30 creates")
    row("---", "---", "---", "---")
    for r in range(rounds):
        for i in range(3):
            with open(os.path.join(folder, f"plane{r}.{i}"), "xb") as f:
                f.write(plane)  # type: ignore[arg-type]
        times = []
        for i in range(30):
            t0 = time.perf_counter()
            with open(os.path.join(folder, f"small{r}.{i}"), "xb") as f:
                f.write(b"x" * 3000)
            times.append(time.perf_counter() - t0)
        row(str(r + 1), f"{statistics.median(times) * 1e6:.0f} us",
            f"{max(times) * 1e6:.0f} us", ms(sum(times)))  # fmt: skip


def bench_zarr_pipelines(n: int, tmp: str) -> None:
    """compstore's direct reader against zarr-python's codec pipelines on compstore's arrays.

    The same two stored arrays (a raw float plane and a sharded int32 mask of
    a synthetic exposure), read whole and as a 100x100 box: by
    `LocalBlobStore.get_array`, by stock zarr-python (`zarr.open_array` then
    index, its default pipeline) and by zarr-python with the ``zarrs`` Rust
    codec pipeline (``codec_pipeline.path``), when installed.
    """
    from compstore.testing.sky import make_exposure

    print(f"\n### 10. Readers: compstore's own against zarr-python's pipelines ({n}x{n})\n")
    exposure = make_exposure(1, 0, size=n)
    store = LocalBlobStore(os.path.join(tmp, "pipelines"), fsync=False)
    half = n // 2
    box = (slice(max(0, half - 49), half + 51), slice(max(0, half - 49), half + 51))
    pipelines = {"zarr-python (default pipeline)": "zarr.core.codec_pipeline.BatchedCodecPipeline"}
    try:
        import zarrs  # noqa: F401

        pipelines["zarr-python + zarrs"] = "zarrs.ZarrsCodecPipeline"
    except ImportError:
        print("(zarrs is not installed: `pip install zarrs`, or the bench extra)\n")
    row("plane", "reader", "whole", "100x100")
    row(*["---"] * 4)
    for name, array in (("image, raw", exposure.image), ("mask, blosc shard", exposure.mask.array)):
        digest = store.put_array(array)
        path = str(store.root / store.component_path(digest))
        row(name, "compstore `get_array`", ms(timed(lambda: store.get_array(digest))),
            ms(timed(lambda: store.get_array(digest, box))))  # fmt: skip
        for label, pipeline in pipelines.items():
            with zarr.config.set({"codec_pipeline.path": pipeline}):
                if not np.array_equal(zarr.open_array(path, mode="r")[...], array):
                    raise AssertionError(f"{label} read {name} wrong")
                whole = timed(lambda: zarr.open_array(path, mode="r")[...])
                cut = timed(lambda: zarr.open_array(path, mode="r")[box])
            row(name, f"{label}, open + read", ms(whole), ms(cut))


def main() -> None:
    global REPEAT, STAT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="image edge (default 4096)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tmp", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument(
        "--stat",
        choices=["median", "min"],
        default="median",
        help="min estimates the uncontended cost on a busy machine",
    )
    parser.add_argument("--only", default="123456789A", help="sections to run, e.g. 125 (A: 10)")
    args = parser.parse_args()
    REPEAT = args.repeat
    STAT = min if args.stat == "min" else statistics.median
    tmp = tempfile.mkdtemp(dir=args.tmp, prefix="bench-cas-")
    try:
        versions = f"numpy {np.__version__}, zarr {zarr.__version__}"
        print(f"{versions}, numcodecs {numcodecs.__version__}, "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, image {args.size}^2, "
              f"{args.stat} of {REPEAT}")  # fmt: skip
        image = sky(args.size)
        mask = mask_for(image)
        sections: dict[str, Callable[[], None]] = {
            "1": lambda: bench_codecs(image, mask),
            "2": lambda: bench_chunks_2d(image, tmp),
            "3": lambda: bench_chunks_1d(tmp),
            "4": lambda: bench_zarr_vs_direct(image, tmp),
            "5": lambda: bench_threads(image, mask, tmp),
            "6": lambda: bench_documents_and_exposure(tmp, 2048),
            "7": lambda: bench_layout_decisions(args.size, tmp),
            "8": lambda: bench_files(tmp),
            # an exposure's planes (2048x2048 at most) per round; 2 rounds per repeat
            "9": lambda: bench_creates_under_writes(tmp, min(args.size, 2048), 2 * REPEAT),
            "A": lambda: bench_zarr_pipelines(args.size, tmp),
        }
        for key in args.only:
            sections[key]()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
