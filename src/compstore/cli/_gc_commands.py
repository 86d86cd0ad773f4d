"""CLI commands removing data: remove (datasets, or a whole RUN) and gc.

Like every command, each builds the Python it stands for and runs exactly
that code (``--python`` prints it). User values enter the code through ``repr``.
"""

from __future__ import annotations

import argparse

from ._commands import Command, _butler_line, _csv, _imports, _report_code, _show
from ._options import progress_enabled

__all__ = ["GC_COMMANDS"]


def _remove_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset_type", nargs="?", help="dataset type whose datasets to remove")
    p.add_argument("--where", default=None, help="restrict the datasets, e.g. 'visit = 1'")
    p.add_argument("--collections", type=_csv, default=None, help="collections to search (comma-separated)")
    p.add_argument("--run", default=None, help="remove this RUN collection and all its datasets")
    p.add_argument("--dry-run", action="store_true", help="print what would be removed; change nothing")
    p.add_argument("--referrers", action="store_true",
                   help="also remove the datasets that refer to those removed")


def _remove_code(args: argparse.Namespace) -> str:
    if (args.run is None) == (args.dataset_type is None):
        raise argparse.ArgumentTypeError("give either DATASET_TYPE or --run NAME (not both)")
    options = (", referrers=True" if args.referrers else "") + (", dry_run=True" if args.dry_run else "")
    verb = "would remove" if args.dry_run else "removed"
    if args.run is not None:
        if args.where or args.collections:
            raise argparse.ArgumentTypeError("--run removes a whole run: no --where or --collections")
        call = f"removed = butler.remove_run({args.run!r}{options})\n"
        lines = f"{_butler_line(args)}\n{call}"
    else:
        where = f", where={args.where!r}" if args.where else ""
        lines = (
            f"{_butler_line(args, collections=args.collections)}\n"
            f"refs = butler.query_datasets({args.dataset_type!r}{where})\n"
            f"removed = butler.remove(refs{options})\n"
        )
    return (
        _imports(args, "from compstore import Butler")
        + lines
        + _show(args, "removed",
                "for ref in removed:\n"
                f"    print(f'{verb} {{ref.dataset_type}} {{dict(ref.data_id)}} in run {{ref.run!r}}')\n"
                f"print(f'{verb} {{len(removed)}} datasets')\n")
    )


def _gc_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", action="store_true", help="report what would be deleted; change nothing")


def _gc_code(args: argparse.Namespace) -> str:
    options = ["dry_run=True"] if args.dry_run else []
    options += ["progress=True"] if progress_enabled(args) else []
    call = f"gc({', '.join(options)})"
    return _report_code(args, "report", call)


GC_COMMANDS: list[Command] = [
    Command("remove", "remove datasets (or a RUN collection with --run); components stay until gc",
            _remove_args, _remove_code),
    Command("gc", "delete the components no dataset needs, repack packs, clean writers' leftovers",
            _gc_args, _gc_code),
]
