"""One progress bar for every long-running operation (ingest, subset, transfer, gc, ...).

Library functions take ``progress: bool = False``; the CLI turns it on. The bar goes to
stderr and stays silent when stderr is not a terminal, so pipes and logs stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["progress_bar", "progress_counter"]

T = TypeVar("T")


def progress_bar(
    items: Iterable[T],
    *,
    enabled: bool,
    desc: str,
    unit: str = "it",
    total: int | None = None,
) -> Iterator[T]:
    """Iterate over ``items``, drawing a tqdm bar on stderr when ``enabled``.

    Parameters
    ----------
    items
        What to iterate over.
    enabled
        Whether a bar is wanted at all (the caller's ``progress=`` argument).
    desc
        The bar's label, e.g. ``"gc: sweep"``.
    unit
        What one item is (``"file"``, ``"dataset"``, ``"component"``).
    total
        The number of items, when ``items`` has no length.

    Returns
    -------
    iterator
        The items, in order.
    """
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, unit=unit, total=total, file=sys.stderr)


@contextmanager
def progress_counter(
    total: int, *, enabled: bool, desc: str, unit: str = "it"
) -> Iterator[Callable[[int], None]]:
    """A bar for work that finishes out of order: yields ``advance(n)`` to call as items end.

    Same rules as `progress_bar` (stderr, only when ``enabled`` and a terminal);
    when no bar is drawn, ``advance`` does nothing.
    """
    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
        yield bar.update
