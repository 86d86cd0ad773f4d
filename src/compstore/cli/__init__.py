"""The ``compstore`` command line: one command per public Python call.

Every command builds the Python code it stands for and runs that very code;
``--python`` prints it instead. So the CLI has no logic of its own and a user
can always see how to do the same from Python.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ..errors import CompstoreError
from ._commands import COMMANDS, parse_data_id

__all__ = ["COMMANDS_DOCUMENTED", "build_parser", "main", "parse_data_id", "python_for"]

#: Commands whose CLI/Python pairs docs/cli-and-python.md must show.
COMMANDS_DOCUMENTED = tuple(c.name for c in COMMANDS)


def _default_repo() -> list[str]:
    # $COMPSTORE_REPO may list several repositories, searched in order: "catalogs:archive"
    value = os.environ.get("COMPSTORE_REPO", "")
    return [part for part in value.split(":") if part] or ["store"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``compstore``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo",
        action="append",
        default=None,
        help="repository folder; give it several times to read several repositories in "
        "order, writing to the first (default: $COMPSTORE_REPO, ':'-separated, or ./store)",
    )
    common.add_argument(
        "--python",
        action="store_true",
        help="print the equivalent Python instead of running it",
    )
    parser = argparse.ArgumentParser(
        prog="compstore",
        description="A caching, content-addressed store for astronomical composite datasets.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help, parents=[common])
        command.configure(p)
        p.set_defaults(_command=command)
    return parser


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(None if argv is None else list(argv))
    # One root prints as Butler('store'); several as Butler(['catalogs', 'archive']).
    roots = args.repo if args.repo else _default_repo()
    args.repo = roots[0] if len(roots) == 1 else roots
    return args


def python_for(argv: Sequence[str]) -> str:
    """Return the Python that ``compstore ARGV`` runs."""
    args = _parse(build_parser(), argv)
    return args._command.code(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``compstore`` with ``argv``; return the exit status."""
    parser = build_parser()
    args = _parse(parser, argv)
    try:
        code = args._command.code(args)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.python:
        sys.stdout.write(code)
        return 0
    namespace: dict[str, object] = {"__name__": "__compstore_cli__"}
    try:
        exec(compile(code, f"<compstore {args.command}>", "exec"), namespace)
    except CompstoreError as err:
        print(f"compstore {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"compstore {args.command}: interrupted", file=sys.stderr)
        return 130
    # A command's code may set ``exit_status`` (e.g. `run` when a unit failed).
    status = namespace.get("exit_status", 0)
    return status if isinstance(status, int) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
