"""CLI commands for pipelines and collections: run, provenance, collection-chain, tag, query-collections.

Like every command, each builds the Python it stands for and runs exactly
that code, so ``--python`` shows a user the Python API call by call. User
values enter the code through ``repr`` only.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import yaml

from ._commands import Command, _butler_line, _csv, _imports, _show, parse_data_id
from ._options import progress_enabled

__all__ = ["PIPELINE_COMMANDS", "parse_config_override"]


def parse_config_override(text: str) -> tuple[str, str, Any]:
    """Parse ``LABEL:KEY=VALUE`` (VALUE read as a YAML scalar: ``3``, ``0.5``, ``true``, ``abc``).

    Raises
    ------
    argparse.ArgumentTypeError
        If ``text`` does not have that shape or VALUE is not valid YAML.
    """
    label, colon, rest = text.partition(":")
    key, equals, value = rest.partition("=")
    if not (colon and equals and label.strip() and key.strip()):
        raise argparse.ArgumentTypeError(
            f"expected -c LABEL:KEY=VALUE (e.g. -c jointcal:order=3), got {text!r}"
        )
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: an integer of more than 4,300 digits; RecursionError: deep nesting.
        raise argparse.ArgumentTypeError(
            f"cannot read the value of -c {text[:200]!r} as YAML: {str(exc)[:200]}"
        ) from None
    problem = _not_plain(parsed)
    if problem:
        raise argparse.ArgumentTypeError(
            f"the value of -c {text[:200]!r} is {problem}; a config value is a string, a finite "
            "number, true/false, null, or a list or mapping of those (quote a date or a "
            "word YAML reads otherwise: -c LABEL:KEY=\"'2020-01-01'\")"
        )
    return label.strip(), key.strip(), parsed


def _not_plain(value: Any) -> str:
    """What makes ``value`` no plain JSON value ('' if it is one).

    The CLI writes the override into the Python it runs as ``repr(value)``: a
    YAML date, NaN or infinity would print as code that does not run
    (``datetime.date(...)``, ``nan``), and provenance records config as JSON.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if item.bit_length() > 64:
                return "an integer too large to record"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{item!r}, which cannot be recorded as provenance"
            continue
        if isinstance(item, list):
            stack.extend(item)
            continue
        if isinstance(item, dict) and all(isinstance(k, str) for k in item):
            stack.extend(item.values())
            continue
        return f"a {type(item).__name__} in YAML"
    return ""


# -- run ----------------------------------------------------------------------------
def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--pipeline", required=True, help="pipeline YAML file")
    p.add_argument(
        "-i",
        "--input",
        required=True,
        type=_csv,
        metavar="COLLECTION[,...]",
        help="comma-separated collections to find inputs in, searched in order",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="RUN", help="RUN collection to write outputs into"
    )
    p.add_argument(
        "-d", "--where", default=None, help='data query, e.g. "visit = 1 AND detector IN (1, 2)"'
    )
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="LABEL:KEY=VALUE",
        help="override a task's config (repeatable; VALUE is a YAML scalar)",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="worker processes (default 1: serial); with --executor dask and no --scheduler, "
        "the workers of the local Dask cluster",
    )
    p.add_argument(
        "--executor",
        choices=["process", "dask"],
        default="process",
        help="process: this process or a local process pool (default); dask: a Dask cluster "
        "(needs the distributed package)",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDR",
        help="with --executor dask: a running Dask scheduler, e.g. tcp://host:8786 "
        "(default: start a local cluster of --jobs workers)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print the units of work (the quantum graph) and what would run; write nothing",
    )
    p.add_argument(
        "--no-skip-existing",
        action="store_true",
        help="run units even when their outputs exist in the output run",
    )


def _run_code(args: argparse.Namespace) -> str:
    overrides = [parse_config_override(text) for text in args.config]
    lines = [
        _imports(args, "import sys", "from compstore import Butler",
                 "from compstore.pipeline import Pipeline, execute").rstrip("\n"),
        _butler_line(args, run=args.output, collections=args.input),
        f"pipeline = Pipeline.from_file({args.pipeline!r})",
    ]
    lines += [
        f"pipeline.add_config_override({label!r}, {key!r}, {value!r})"
        for label, key, value in overrides
    ]
    options = ""
    if args.no_skip_existing:
        options += ", skip_existing=False"
    if args.dry_run:
        options += ", dry_run=True"
    if args.executor != "process":
        options += f", executor={args.executor!r}"
    if args.scheduler is not None:
        options += f", scheduler={args.scheduler!r}"
    if progress_enabled(args):
        options += ", progress=True"
    lines += [
        f"report = execute(pipeline, butler, where={args.where!r}, jobs={args.jobs!r}{options})",
        _show(args, "report").rstrip("\n"),
        # The printed Python exits as the command does: 1 if a unit failed.
        "exit_status = report.exit_status",
        "if exit_status:",
        "    sys.exit(exit_status)",
    ]
    return "\n".join(lines) + "\n"


# -- provenance -------------------------------------------------------------------------
def _provenance_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="TYPE[:STAGE], e.g. calexp:jointcal")
    p.add_argument(
        "data_id", nargs="*", metavar="KEY=VALUE", help="data ID, e.g. visit=1 detector=2"
    )
    p.add_argument(
        "--collections", type=_csv, default=None, help="comma-separated collections to search"
    )


def _provenance_code(args: argparse.Namespace) -> str:
    data_id = parse_data_id(",".join(args.data_id))
    collections = f", collections={args.collections!r}" if args.collections else ""
    find = (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"ref = butler.find_dataset({args.name!r}, {data_id!r}{collections})\n"
        "provenance = butler.provenance(ref)\n"
    )
    if args.json:
        return find + _show(args, "{'dataset': ref, 'provenance': provenance}")
    return (
        find
        + "print(ref)\n"
        "if provenance is None:\n"
        "    print('no provenance recorded: not written by a pipeline task')\n"
        "else:\n"
        "    print(f\"task: {provenance['task_label']} ({provenance['task_class']})\")\n"
        "    print(f\"config: {provenance['config']}\")\n"
        "    for input_id in provenance['input_ids']:\n"
        "        print(f'input: {butler.registry.get_dataset(input_id) or input_id}')\n"
    )


# -- collections -------------------------------------------------------------------------
def _chain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the CHAINED collection (created if missing)")
    p.add_argument(
        "children", type=_csv, metavar="CHILD[,CHILD...]", help="collections to search, in order"
    )


def _chain_code(args: argparse.Namespace) -> str:
    summary = f"{args.name} -> {', '.join(args.children)}"
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"butler.collection_chain({args.name!r}, {args.children!r})\n"
        + _show(args, repr({"name": args.name, "children": args.children}), f"print({summary!r})\n")
    )


def _tag_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("tagged", help="the TAGGED collection (created if missing)")
    p.add_argument("dataset_type", help="dataset type to tag, optionally TYPE:STAGE")
    p.add_argument("--where", default=None, help='e.g. "visit = 1 AND detector IN (1, 2)"')
    p.add_argument(
        "--collections", type=_csv, default=None, help="comma-separated collections to search"
    )


def _tag_code(args: argparse.Namespace) -> str:
    where = f", where={args.where!r}" if args.where else ""
    collections = f", collections={args.collections!r}" if args.collections else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"refs = butler.query_datasets({args.dataset_type!r}{where}{collections})\n"
        f"tagged = {args.tagged!r}\n"
        "butler.tag(tagged, refs)\n"
        + _show(args, "{'tagged': tagged, 'datasets': refs}",
                "print(f'tagged {len(refs)} datasets into {tagged}')\n")
    )


def _query_collections_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("pattern", nargs="?", default=None, help="glob, e.g. 'u/alice/*' (default: all)")


def _query_collections_code(args: argparse.Namespace) -> str:
    pattern = repr(args.pattern) if args.pattern is not None else ""
    return (
        _imports(args, "from compstore import Butler")
        + f"{_butler_line(args)}\n"
        f"collections = butler.query_collections({pattern})\n"
        + _show(args, "[{'name': name, 'type': kind} for name, kind in collections]",
                "for name, collection_type in collections:\n    print(f'{collection_type:8} {name}')\n")
    )


PIPELINE_COMMANDS: list[Command] = [
    Command(
        "run",
        "run a pipeline: find inputs, run every unit of work, write outputs with provenance",
        _run_args,
        _run_code,
    ),
    Command(
        "provenance",
        "show which task, config and inputs made a dataset",
        _provenance_args,
        _provenance_code,
    ),
    Command(
        "collection-chain",
        "make a CHAINED collection: an ordered search path",
        _chain_args,
        _chain_code,
    ),
    Command("tag", "add the datasets a query finds to a TAGGED collection", _tag_args, _tag_code),
    Command(
        "query-collections",
        "list collections and their types",
        _query_collections_args,
        _query_collections_code,
    ),
]
