"""CLI commands that copy datasets between repositories: subset, transfer.

Like every command, each builds the Python it stands for and runs exactly
that code (``--python`` prints it). User values enter the code through
``repr`` only.
"""

from __future__ import annotations

import argparse

from ._commands import Command, _butler_line, _csv, _imports, _show, local_cache_option
from ._options import progress_enabled

__all__ = ["TRANSFER_COMMANDS"]


def _choice_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset-type", dest="dataset_types", action="append", required=True,
                   metavar="TYPE", help="a dataset type to copy (repeat for more), e.g. src")
    p.add_argument("--where", default=None, help='e.g. "visit = 1 AND detector IN (1, 2)"')
    p.add_argument("--collections", type=_csv, default=None,
                   help="comma-separated collections to choose datasets from")


# -- subset -----------------------------------------------------------------------
def _subset_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dest", help="the new repository's folder (must not exist, or be empty)")
    _choice_args(p)


def _subset_code(args: argparse.Namespace) -> str:
    options = f", where={args.where!r}" if args.where else ""
    options += f", collections={args.collections!r}" if args.collections else ""
    options += ", progress=True" if progress_enabled(args) else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"subset = butler.subset({args.dest!r}, dataset_types={args.dataset_types!r}{options})\n"
        + _show(args, "subset.stats()",
                "print(f'subset {subset.root} of {butler.root}:')\nprint(subset.stats())\n")
    )


# -- transfer ---------------------------------------------------------------------
def _transfer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, metavar="SRC",
                   help="the repository to copy datasets from (--repo is the destination)")
    _choice_args(p)


def _transfer_code(args: argparse.Namespace) -> str:
    where = f", where={args.where!r}" if args.where else ""
    collections = f", collections={args.collections!r}" if args.collections else ""
    progress = ", progress=True" if progress_enabled(args) else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"source = Butler({args.source!r}{local_cache_option(args.source)})\n"
        f"refs = [ref for name in {args.dataset_types!r}\n"
        f"        for ref in source.query_datasets(name{where}{collections})]\n"
        f"report = butler.transfer_from(source, refs{progress})\n"
        + _show(args, "report")
    )


TRANSFER_COMMANDS: list[Command] = [
    Command("subset", "make a new repository of chosen datasets and what they need (no other pixels)",
            _subset_args, _subset_code),
    Command("transfer", "copy datasets from another repository as stored (--from SRC)",
            _transfer_args, _transfer_code),
]
