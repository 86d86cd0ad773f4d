"""What a repository holds: counts, deduplication figures and verification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._base import ButlerBase
from .verify import VerifyReport, verify_repository

__all__ = ["Inspection", "RepositoryStats"]


@dataclass(frozen=True)
class RepositoryStats:
    """How much deduplication saves in a repository.

    ``logical_bytes`` counts, for every dataset, the stored bytes of every
    component it uses, as if each dataset had its own copy; ``stored_bytes``
    counts each component once, as it is on disk.
    """

    datasets: int
    dataset_types: int
    collections: int
    arrays: int
    documents: int
    logical_bytes: int
    stored_bytes: int

    @property
    def components(self) -> int:
        """Unique components (arrays and documents) in the blob store."""
        return self.arrays + self.documents

    @property
    def dedup_ratio(self) -> float:
        """``logical_bytes / stored_bytes`` (1.0 for an empty repository)."""
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else 1.0

    def as_dict(self) -> dict[str, Any]:
        """The figures as a plain dict (for JSON output)."""
        return {
            "datasets": self.datasets,
            "dataset_types": self.dataset_types,
            "collections": self.collections,
            "unique_components": self.components,
            "arrays": self.arrays,
            "documents": self.documents,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "dedup_ratio": round(self.dedup_ratio, 3),
        }

    def __str__(self) -> str:
        rows = [
            ("datasets", f"{self.datasets:,}"),
            ("dataset types", f"{self.dataset_types:,}"),
            ("collections", f"{self.collections:,}"),
            ("unique components", f"{self.components:,} ({self.arrays:,} arrays, {self.documents:,} documents)"),
            ("logical bytes", _human(self.logical_bytes)),
            ("stored bytes", _human(self.stored_bytes)),
            ("dedup ratio", f"{self.dedup_ratio:.2f}x"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{n:,} B" if unit == "B" else f"{value:.1f} {unit} ({n:,} B)"
        value /= 1024
    raise AssertionError("unreachable")


class Inspection(ButlerBase):
    """`stats`, `logical_bytes` and `verify`."""

    def stats(self) -> RepositoryStats:
        """Count datasets and components, and the bytes deduplication saves."""
        logical, datasets = self.logical_bytes()
        arrays = list(self.blobs.iter_arrays())
        documents = list(self.blobs.iter_documents())
        stored = sum(self.blobs.stored_bytes(d) for d in arrays) + sum(
            self.blobs.stored_bytes(d) for d in documents
        )
        return RepositoryStats(
            datasets=datasets,
            dataset_types=len(self.registry.dataset_types()),
            collections=len(self.registry.query_collections()),
            arrays=len(arrays),
            documents=len(documents),
            logical_bytes=logical,
            stored_bytes=stored,
        )

    def verify(self, *, deep: bool = False, progress: bool = False) -> VerifyReport:
        """Check that every dataset's components are stored (and, with ``deep``, intact).

        Walks every dataset's manifests; ``deep`` also re-reads and re-hashes
        every component (every byte of the repository). Changes nothing. See
        `compstore.butler.verify.verify_repository`.

        Returns
        -------
        VerifyReport
            ``report.ok`` is True if nothing is wrong; ``report.problems`` lists
            each missing, corrupt or unreadable component and dangling
            reference, with a dataset that needs it.

        ``progress`` shows a progress bar (tqdm, on stderr, only on a terminal).
        """
        return verify_repository(
            self.registry, self._io, self.blobs, self._all_refs(), deep=deep, progress=progress
        )

    def logical_bytes(
        self, collections: Sequence[str] | None = None, dataset_types: Sequence[str] | None = None
    ) -> tuple[int, int]:
        """Bytes the datasets of ``collections`` (all if None) would take with their own copies.

        ``dataset_types`` restricts the count to those types (all if None).

        Returns
        -------
        tuple of int
            ``(logical bytes, number of datasets)``: for each dataset, the stored
            bytes of every component it uses (its manifests included).
        """
        sizes: dict[str, int] = {}
        per_manifest: dict[str, int] = {}
        logical = 0
        refs = self._all_refs(collections)
        if dataset_types is not None:
            refs = [ref for ref in refs if ref.dataset_type in dataset_types]
        for ref in refs:
            if ref.manifest not in per_manifest:
                total = 0
                for _, digest in set(self._io.iter_components(ref.manifest)):
                    if digest not in sizes:
                        sizes[digest] = self.blobs.stored_bytes(digest)
                    total += sizes[digest]
                per_manifest[ref.manifest] = total
            logical += per_manifest[ref.manifest]
        return logical, len(refs)
