"""The one walk over a manifest tree: every component a dataset's manifest needs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._manifest import Manifest, check_entry

__all__ = ["walk"]


def walk(
    load: Callable[[str], Manifest], digest: str, *, datasets: bool = False
) -> Iterator[tuple[str, str]]:
    """Yield ``(kind, target)`` for manifest ``digest`` and everything it names.

    ``kind`` is ``"manifest"`` (``digest`` itself first, then each nested
    manifest, once), ``"array"`` or ``"document"`` (a digest; repeated if
    named twice), or, with ``datasets``, ``"dataset"`` (the UUID of another
    dataset a precursor entry refers to; its own components are not walked:
    they are that dataset's). Iterative: however deep manifests nest, the
    walk ends without exhausting the stack.

    Parameters
    ----------
    load
        Returns the parsed manifest of a digest (e.g. `ObjectIO.manifest`).
    digest
        The manifest to start from.
    datasets
        Also yield references to other datasets.

    Raises
    ------
    CorruptBlobError
        If a manifest on the way is damaged, or an entry malformed.
    BlobNotFoundError
        If a manifest on the way is missing.
    """
    stack, seen = [digest], {digest}
    while stack:
        manifest = stack.pop()
        yield "manifest", manifest
        entries: Iterable[Mapping[str, Any]] = load(manifest).components.values()
        for entry in entries:
            check_entry(entry)
            if "array" in entry:
                yield "array", entry["array"]
            elif "document" in entry:
                yield "document", entry["document"]
            elif "manifest" in entry:
                if entry["manifest"] not in seen:
                    seen.add(entry["manifest"])
                    stack.append(entry["manifest"])
            elif datasets:
                yield "dataset", entry["dataset"]
