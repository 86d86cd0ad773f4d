"""One function per CLI command: each builds the Python it runs, then runs exactly that.

A command's Python is both what ``--python`` prints and what the command
executes, so the two can never drift apart. Every user value enters that code
through ``repr``, so it is always a literal, never code.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from .._s3repo import is_s3_url
from ._options import EXIT_DAMAGE, progress_enabled

__all__ = ["COMMANDS", "Command"]


def _collections_arg(args: argparse.Namespace) -> str:
    return f", collections={args.collections!r}" if args.collections else ""


class Command:
    """A CLI command: its arguments and the Python it stands for."""

    name: str
    help: str

    def __init__(self, name: str, help: str, configure: Callable[[argparse.ArgumentParser], None],
                 code: Callable[[argparse.Namespace], str]) -> None:
        self.name = name
        self.help = help
        self.configure = configure
        self.code = code


def _imports(args: argparse.Namespace, *lines: str) -> str:
    """The import lines of a command's Python (``to_json`` too with ``--json``)."""
    extra = ("from compstore.cli import to_json",) if getattr(args, "json", False) else ()
    return "".join(f"{line}\n" for line in (*lines, *extra))


def _show(args: argparse.Namespace, value: str, text: str | None = None) -> str:
    """The Python that prints a command's result: ``to_json(value)`` with ``--json``.

    Every command that prints a result uses this, so ``--json`` (a global option)
    works on it; ``text`` is the plain printing code (default ``print(value)``).
    """
    if getattr(args, "json", False):
        return f"print(to_json({value}))\n"
    return text if text is not None else f"print({value})\n"


def _butler_line(
    args: argparse.Namespace, run: str | None = None, collections: list[str] | None = None
) -> str:
    options = f", collections={collections!r}" if collections else ""
    options += f", run={run!r}" if run else ""
    return f"butler = Butler({args.repo!r}{options}{local_cache_option(args.repo)})"


def local_cache_option(repo: str | list[str]) -> str:
    """``, local_cache=...`` for a repository on object storage (the CLI's default cache).

    The folder is ``$COMPSTORE_LOCAL_CACHE``, else ``~/.cache/compstore``; its
    bound ``$COMPSTORE_LOCAL_CACHE_BYTES``, else the default (1 GiB). A folder
    repository needs none.
    """
    roots = [repo] if isinstance(repo, str) else repo
    if not any(is_s3_url(r) for r in roots):
        return ""
    option = f", local_cache={os.environ.get('COMPSTORE_LOCAL_CACHE') or '~/.cache/compstore'!r}"
    size = os.environ.get("COMPSTORE_LOCAL_CACHE_BYTES", "")
    if size.isdigit():
        option += f", local_cache_bytes={int(size)}"
    return option


# -- create -------------------------------------------------------------------
def _create_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--exist-ok", action="store_true", help="succeed if the repository exists")
    p.add_argument(
        "--registry", metavar="URL", default=None,
        help="a PostgreSQL database for the registry, postgresql://user@host:port/db "
        "(no password: $PGPASSWORD or ~/.pgpass); default: SQLite inside the repository. "
        "For --repo s3://bucket/prefix, required: a PostgreSQL URL or a SQLite file path",
    )
    p.add_argument(
        "--digest", choices=("xxh3-128", "blake3"), default=None,
        help="the digest algorithm components are named by, recorded in the repository: "
        "xxh3-128 (default; fast, for writers who trust each other) or blake3 "
        "(cryptographic, for a repository shared with writers who are not trusted)",
    )


def _upgrade_args(p: argparse.ArgumentParser) -> None:
    del p  # no options: the repository is --repo


def _upgrade_code(args: argparse.Namespace) -> str:
    return (
        _imports(args, "from compstore import Butler")
        + f"before, after = Butler.upgrade({args.repo!r})\n"
        + _show(
            args, "{'root': " + repr(str(args.repo)) + ", 'before': before, 'after': after}",
            "print(f'format {before} -> {after}' if before != after "
            "else f'already format {after}')\n",
        )
    )


def _create_code(args: argparse.Namespace) -> str:
    exist = ", exist_ok=True" if args.exist_ok else ""
    exist += f", registry={args.registry!r}" if args.registry else ""
    exist += f", digest={args.digest!r}" if args.digest else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"butler = Butler.create({args.repo!r}{exist})\n"
        + _show(args, "{'root': str(butler.root)}", "print(f'created repository {butler.root}')\n")
    )


# -- register-dataset-type ----------------------------------------------------
def _register_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="dataset type name, e.g. calexp")
    p.add_argument("dimensions", help="comma-separated dimensions, e.g. visit,detector")
    p.add_argument("storage_class", help="storage class, e.g. Exposure or SourceCatalog")


def _register_code(args: argparse.Namespace) -> str:
    dims = tuple(d.strip() for d in args.dimensions.split(",") if d.strip())
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"dataset_type = butler.register_dataset_type({args.name!r}, {dims!r}, {args.storage_class!r})\n"
        + _show(args, "dataset_type")
    )


# -- register-aggregate / register-join ---------------------------------------
def _aggregate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the aggregate's name, e.g. src_visit")
    p.add_argument("member", help="the member dataset type, e.g. src")
    p.add_argument("--over", required=True, type=_csv, metavar="DIM[,DIM]",
                   help="member dimensions to unite over, e.g. detector")


def _aggregate_code(args: argparse.Namespace) -> str:
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"definition = butler.register_aggregate({args.name!r}, {args.member!r}, "
        f"over={tuple(args.over)!r})\n"
        + _show(args, "definition", "print(definition.describe())\n")
    )


def _join_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the join's name, e.g. objectTable")
    p.add_argument("members", type=_csv, metavar="M1,M2[,...]",
                   help="member catalog dataset types, e.g. deepCoadd_meas,deepCoadd_ref")
    p.add_argument("--on", default="id", help="the key column every member holds (default: id)")


def _join_code(args: argparse.Namespace) -> str:
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"definition = butler.register_join({args.name!r}, {args.members!r}, on={args.on!r})\n"
        + _show(args, "definition", "print(definition.describe())\n")
    )


# -- ingest -------------------------------------------------------------------
def _ingest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset_type", help="registered dataset type (storage class Exposure or SourceCatalog)")
    p.add_argument("files", nargs="+", help="FITS files")
    p.add_argument("--run", required=True, help="RUN collection to write into")
    p.add_argument("--data-id", default="", metavar="K=V,...",
                   help="dimension values shared by every file, e.g. visit=1,detector=2")
    p.add_argument("--header-key", action="append", default=[], metavar="DIM=KEYWORD",
                   help="read a dimension from each file's header, e.g. visit=VISIT")
    p.add_argument("--hdu", action="append", default=[], metavar="HDU",
                   help="image HDU to read from each file: an index, EXTNAME or EXTNAME,EXTVER "
                        "(repeat for several; a file with several images needs it)")


def _hdu_value(text: str) -> int | str | tuple[str, int]:
    text = text.strip()
    if text.isdigit():
        return int(text)
    name, sep, ver = text.rpartition(",")
    if sep and ver.strip().isdigit():
        return (name.strip(), int(ver))
    return text


def _ingest_code(args: argparse.Namespace) -> str:
    data_id = parse_data_id(args.data_id)
    header_keys = dict(_split_pair(item) for item in args.header_key)
    hdus = [_hdu_value(item) for item in args.hdu]
    hdu = "" if not hdus else f", hdu={hdus[0] if len(hdus) == 1 else hdus!r}"
    return (
        _imports(args, "from compstore import Butler", "from compstore.fitsio import ingest_fits")
        + f"{_butler_line(args, args.run)}\n"
        f"refs = ingest_fits(butler, {args.files!r}, {args.dataset_type!r}, {data_id!r},\n"
        f"                   header_keys={header_keys!r}{hdu}, progress={progress_enabled(args)!r})\n"
        + _show(args, "refs", "for ref in refs:\n    print(ref)\n")
    )


# -- get / export --------------------------------------------------------------
def _get_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="TYPE[.COMPONENT][:STAGE], e.g. calexp, calexp.wcs, calexp:jointcal")
    p.add_argument("data_id", nargs="*", metavar="KEY=VALUE", help="data ID, e.g. visit=1 detector=2")
    p.add_argument("--collections", type=_csv, default=None, help="comma-separated collections to search")
    p.add_argument("-o", "--output", default=None, help="write the dataset to this FITS file")


def _get_code(args: argparse.Namespace) -> str:
    data_id = parse_data_id(",".join(args.data_id))
    if args.output:
        return (
            _imports(args, "from compstore import Butler", "from compstore.fitsio import export_fits")
            + f"{_butler_line(args)}\n"
            f"path = export_fits(butler, {args.name!r}, {data_id!r}, {args.output!r}"
            f"{_collections_arg(args)})\n"
            + _show(args, "{'path': str(path)}", "print(f'wrote {path}')\n")
        )
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"obj = butler.get({args.name!r}, {data_id!r}{_collections_arg(args)})\n"
        + _show(args, "obj")
    )


def _export_args(p: argparse.ArgumentParser) -> None:
    _get_args(p)
    for action in p._actions:
        if action.dest == "output":
            action.required = True


# -- zarr-path ------------------------------------------------------------------
def _zarr_path_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="TYPE.COMPONENT of an array component, e.g. calexp.image")
    p.add_argument("data_id", nargs="*", metavar="KEY=VALUE", help="data ID, e.g. visit=1 detector=2")
    p.add_argument("--collections", type=_csv, default=None, help="comma-separated collections to search")


def _zarr_path_code(args: argparse.Namespace) -> str:
    data_id = parse_data_id(",".join(args.data_id))
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"path = butler.component_path({args.name!r}, {data_id!r}{_collections_arg(args)})\n"
        + _show(args, "str(path)")
    )


# -- query ----------------------------------------------------------------------
def _query_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset_type", help="dataset type, optionally :STAGE")
    p.add_argument("--where", default=None, help='e.g. "visit = 1 AND detector IN (1, 2)"')
    p.add_argument("--collections", type=_csv, default=None, help="comma-separated collections to search")


def _query_code(args: argparse.Namespace) -> str:
    where = f", where={args.where!r}" if args.where else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"refs = butler.query_datasets({args.dataset_type!r}{where}{_collections_arg(args)})\n"
        + _show(args, "refs", "for ref in refs:\n    print(ref.run, dict(ref.data_id), ref.id)\n"
                "print(f'{len(refs)} datasets')\n")
    )


# -- stats ----------------------------------------------------------------------
def _stats_args(p: argparse.ArgumentParser) -> None:
    pass  # --json is a global option


def _stats_code(args: argparse.Namespace) -> str:
    return _report_code(args, "stats", "stats()")


def _report_code(args: argparse.Namespace, name: str, call: str, after: str = "",
                 imports: tuple[str, ...] = ()) -> str:
    """The Python of a command that prints one report (with ``--json``, as JSON)."""
    return (
        _imports(args, *imports, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"{name} = butler.{call}\n"
        + _show(args, name)
        + after
    )


# -- verify ---------------------------------------------------------------------
def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--deep", action="store_true",
                   help="re-read and re-hash every component (reads every byte of the repository)")


def _verify_code(args: argparse.Namespace) -> str:
    options = ["deep=True"] if args.deep else []
    options += ["progress=True"] if progress_enabled(args) else []
    # Exit status 4 (EXIT_DAMAGE), in the printed Python as in the command.
    after = f"if not report.ok:\n    sys.exit({EXIT_DAMAGE})  # damage found\n"
    return _report_code(args, "report", f"verify({', '.join(options)})", after, ("import sys",))


# -- demo -------------------------------------------------------------------------
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--visits", type=int, default=3)
    p.add_argument("--detectors", type=int, default=4)
    p.add_argument("--size", type=int, default=1024, help="exposure width and height in pixels")


def _demo_code(args: argparse.Namespace) -> str:
    call = f"run_demo({args.repo!r}, visits={args.visits}, detectors={args.detectors}, size={args.size}"
    if args.json:  # the figures alone, as JSON
        return (_imports(args, "from compstore.demo import run_demo")
                + f"figures = {call}, out=lambda line: None)\n" + _show(args, "figures"))
    return "from compstore.demo import run_demo\n" f"{call})\n"


# -- helpers ----------------------------------------------------------------------
def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def parse_data_id(text: str) -> dict[str, Any]:
    """Parse ``visit=1,detector=2,band=r``: digits become ints, the rest strings."""
    data_id: dict[str, Any] = {}
    for item in _csv(text):
        key, value = _split_pair(item)
        data_id[key] = int(value) if value.lstrip("-").isdigit() else value
    return data_id


COMMANDS: list[Command] = [
    Command("create", "create a new, empty repository", _create_args, _create_code),
    Command("upgrade", "move a format 2 repository to format 3 in place (crash-safe)",
            _upgrade_args, _upgrade_code),
    Command("register-dataset-type", "define a dataset type", _register_args, _register_code),
    Command("register-aggregate", "define a dataset type as the union of another's datasets",
            _aggregate_args, _aggregate_code),
    Command("register-join", "define a catalog dataset type joining others column-wise",
            _join_args, _join_code),
    Command("ingest", "put FITS files as datasets", _ingest_args, _ingest_code),
    Command("get", "read a dataset (print it, or write it to FITS with -o)", _get_args, _get_code),
    Command("export", "write a dataset to a FITS file", _export_args, _get_code),
    Command("zarr-path", "print the folder of an array component that stock zarr opens",
            _zarr_path_args, _zarr_path_code),
    Command("query", "list datasets matching a where expression", _query_args, _query_code),
    Command("stats", "datasets, unique components, logical vs stored bytes", _stats_args, _stats_code),
    Command("verify", "check that every dataset's components are stored (--deep: and intact)",
            _verify_args, _verify_code),
    Command("demo", "fill the repository with a synthetic survey and show the sharing", _demo_args, _demo_code),
]

# Pipeline and collection commands live in their own module (they build on Command above).
from ._pipeline_commands import PIPELINE_COMMANDS  # noqa: E402

COMMANDS.extend(PIPELINE_COMMANDS)

from ._transfer_commands import TRANSFER_COMMANDS  # noqa: E402

COMMANDS.extend(TRANSFER_COMMANDS)

from ._gc_commands import GC_COMMANDS  # noqa: E402

COMMANDS.extend(GC_COMMANDS)
