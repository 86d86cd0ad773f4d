"""What every part of the `Butler` holds: its repository, registry, blobs and caches.

The Butler's methods are grouped by idea in the modules of this package
(`_lookup`, `_put`, `_remove`, `_stats`); each group is a class deriving from
`ButlerBase`, and `Butler` (``_butler.py``) combines them, so a method is
called and overridden (`compstore._chain.ChainedButler`) as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .._repository import Repository
from ..cache import ObjectCache
from ..cas import BlobStore
from ..datastore import ObjectIO
from ..errors import ReadOnlyRepositoryError
from ..registry import DatasetRef, Registry
from ._names import DatasetName

__all__ = ["ButlerBase"]


class ButlerBase:
    """The state `Butler.__init__` sets, and the helpers every group uses."""

    root: Path | str
    registry: Registry
    blobs: BlobStore
    cache: ObjectCache
    run: str | None
    collections: tuple[str, ...] | None
    _repo: Repository
    _io: ObjectIO
    _names: dict[str, DatasetName]

    def _check_writeable(self) -> None:
        if self._repo.read_only:
            raise ReadOnlyRepositoryError(
                f"{self.root} has a newer format version ({self._repo.config['version']}) "
                "and is open read-only; upgrade compstore to write to it"
            )

    def _all_refs(self, collections: Sequence[str] | None = None) -> list[DatasetRef]:
        refs: list[DatasetRef] = []
        for dtype in self.registry.dataset_types():
            refs.extend(self.registry.query_datasets(dtype.name, collections=collections))
        return refs
