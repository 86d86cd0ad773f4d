"""The ``compstore`` command line: one command per public Python call.

Every command builds the Python code it stands for and runs that very code;
``--python`` prints it instead. So the CLI has no logic of its own and a user
can always see how to do the same from Python.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import CompstoreError
from . import _options
from ._commands import COMMANDS, parse_data_id
from ._help import DESCRIPTION, EPILOG, epilog_for
from ._json import to_json

__all__ = ["COMMANDS_DOCUMENTED", "build_parser", "main", "parse_data_id", "python_for", "to_json"]

#: Commands whose CLI/Python pairs docs/cli-and-python.md must show.
COMMANDS_DOCUMENTED = tuple(c.name for c in COMMANDS)


def _default_repo() -> list[str]:
    # $COMPSTORE_REPO may list several repositories, searched in order: "catalogs:archive"
    # (a ':' that starts "://" is part of a URL: "s3://bucket/survey:archive")
    value = os.environ.get("COMPSTORE_REPO", "")
    return [part for part in re.split(r":(?!//)", value) if part] or ["store"]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``compstore``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--repo",
        action="append",
        default=None,
        help="repository folder or s3://bucket/prefix; give it several times to read several repositories in "
        "order, writing to the first (default: $COMPSTORE_REPO, ':'-separated, or ./store)",
    )
    common.add_argument(
        "--python",
        action="store_true",
        help="print the equivalent Python instead of running it",
    )
    _options.add_global_options(common)
    # Global options go before the command (with their defaults) or after it.
    parser = argparse.ArgumentParser(
        prog="compstore", description=DESCRIPTION, epilog=EPILOG, parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"compstore {__version__}")
    after = _options.after_command(common)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help, parents=[after],
                           epilog=epilog_for(command.name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
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
    code: str = args._command.code(args)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``compstore`` with ``argv``; return the exit status.

    The status says what kind of outcome it was (`compstore.cli._options`):
    0 success, 1 a compstore error, 2 usage, 3 not found, 4 damage found by
    ``verify``, 130 interrupted. A command's Python ends with ``sys.exit(N)``
    when its result calls for a non-zero status, so the printed Python exits
    the same way.
    """
    parser = build_parser()
    _enable_completion(parser)
    args = _parse(parser, argv)
    try:
        code = args._command.code(args)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    if args.python:
        sys.stdout.write(code)
        return 0
    namespace: dict[str, object] = {"__name__": "__compstore_cli__"}
    _options.configure_logging(args.verbose, args.quiet)
    try:
        exec(compile(code, f"<compstore {args.command}>", "exec"), namespace)
    except SystemExit as stop:  # the command's own `sys.exit(status)`
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or _options.EXIT_OK
        return _options.EXIT_ERROR
    except (CompstoreError, OSError) as err:
        print(_options.error_message(args.command, err), file=sys.stderr)
        return _options.exit_status_for(err)
    except KeyboardInterrupt:
        print(f"compstore {args.command}: interrupted", file=sys.stderr)
        return _options.EXIT_INTERRUPTED
    finally:
        _options.restore_logging()
    return _options.EXIT_OK


def _enable_completion(parser: argparse.ArgumentParser) -> None:
    """Tab completion through argcomplete, if installed (a no-op unless a shell asks)."""
    try:
        import argcomplete
    except ImportError:
        return
    argcomplete.autocomplete(parser)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
