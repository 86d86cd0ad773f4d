"""What every ``compstore`` command shares: global options, exit codes, logging set-up.

Global options are accepted before the command (``compstore --repo R stats``,
what users type first) as well as after it (``compstore stats --repo R``). A new
command gets all of them, ``--json`` and the progress switch included, without
declaring anything: `build_parser` adds them to every sub-parser.
"""

from __future__ import annotations

import argparse
import copy
import logging
import sys

from ..errors import (
    CompstoreError,
    DatasetNotFoundError,
    MissingCollectionError,
    MissingDatasetTypeError,
    RepositoryNotFoundError,
    UnknownComponentError,
)

__all__ = [
    "EXIT_DAMAGE",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "add_global_options",
    "after_command",
    "configure_logging",
    "error_message",
    "exit_status_for",
    "progress_enabled",
    "restore_logging",
]

#: The command did what was asked.
EXIT_OK = 0
#: A compstore error (bad input, a conflict, a failed pipeline unit, ...), or an I/O error.
EXIT_ERROR = 1
#: The command line itself is wrong (argparse's own status).
EXIT_USAGE = 2
#: What the command names does not exist: repository, dataset, dataset type, collection,
#: component, or an input file.
EXIT_NOT_FOUND = 3
#: ``verify`` found damage (missing or corrupt components, dangling references).
EXIT_DAMAGE = 4
#: Interrupted by Ctrl-C (the shell's convention, 128 + SIGINT).
EXIT_INTERRUPTED = 130

_NOT_FOUND = (
    DatasetNotFoundError,
    MissingCollectionError,
    MissingDatasetTypeError,
    RepositoryNotFoundError,
    UnknownComponentError,
    FileNotFoundError,
)


def exit_status_for(error: BaseException) -> int:
    """The exit status ``compstore`` uses for ``error`` (see the module's ``EXIT_*``)."""
    if isinstance(error, _NOT_FOUND):
        return EXIT_NOT_FOUND
    return EXIT_ERROR


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """Add the options every command has (besides ``--repo`` and ``--python``) to ``parser``."""
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON (schemas: docs/cli-and-python.md)"
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0,
        help="log what compstore does on stderr (-v: info, -vv: debug)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="log errors only, and no progress bars"
    )
    parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress bars (they show only when stderr is a terminal)",
    )


def after_command(common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A copy of ``common`` whose options do not overwrite values given before the command.

    argparse copies everything a sub-parser sets, defaults included, over the
    main parser's values; so the copy's defaults are suppressed and
    ``compstore --repo R stats`` keeps ``R``.
    """
    after = argparse.ArgumentParser(add_help=False)
    for action in common._actions:
        twin = copy.copy(action)
        twin.default = argparse.SUPPRESS
        after._add_action(twin)
    return after


def progress_enabled(args: argparse.Namespace) -> bool:
    """Whether a command should ask its library call for a progress bar."""
    return not (getattr(args, "no_progress", False) or getattr(args, "quiet", False))


class _StderrHandler(logging.Handler):
    """Writes to the current ``sys.stderr`` (which tests and callers may swap)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover - logging must never break a command
            self.handleError(record)


_handler = _StderrHandler()
_handler.setFormatter(logging.Formatter("compstore: %(levelname)s: %(name)s: %(message)s"))


def configure_logging(verbose: int, quiet: bool) -> logging.Logger:
    """Send the ``compstore`` logger to stderr at the level ``-v``/``-q`` ask for.

    The library itself never configures logging; only the command line does.

    Returns
    -------
    logging.Logger
        The ``compstore`` logger (`restore_logging` undoes this).
    """
    logger = logging.getLogger("compstore")
    if quiet:
        level = logging.ERROR
    elif verbose >= 2:
        level = logging.DEBUG
    elif verbose == 1:
        level = logging.INFO
    else:
        level = logging.WARNING
    logger.setLevel(level)
    if _handler not in logger.handlers:
        logger.addHandler(_handler)
    return logger


def restore_logging() -> None:
    """Undo `configure_logging` (``main`` may run several times in one process)."""
    logger = logging.getLogger("compstore")
    logger.removeHandler(_handler)
    logger.setLevel(logging.NOTSET)


def error_message(command: str, error: BaseException) -> str:
    """The one line ``compstore`` prints for ``error``."""
    if isinstance(error, CompstoreError):
        return f"compstore {command}: error: {error}"
    # An OSError from the system (a file not found, a permission): its own words suffice.
    return f"compstore {command}: error: {type(error).__name__}: {error}"
