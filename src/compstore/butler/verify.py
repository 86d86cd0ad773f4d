"""Checking a repository: every component its datasets need is there, and intact.

`verify_repository` walks the manifest of each dataset it is given (all
of the registry's, from `Butler.verify`), nested manifests too (the one
manifest walk, `datastore.walk_entries`, in its tolerant mode), and asks
the blob store for each component the manifests name, and whether its files
are there (`BlobStore.check_files`: an array's chunk files, a packed
component's pack; a listing and a stat, no data read). With ``deep`` it
also re-reads and re-hashes each one (`BlobStore.verify`), which finds
bytes changed on disk. A reference to another dataset (a coadd's inputs)
must name a dataset the registry holds, and a component it has.
It changes nothing and reports every problem, not only the first.

`Butler.verify` calls it; ``compstore verify [--deep]`` runs that.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._progress import progress_bar
from ..cas import BlobStore
from ..cas._encoding import parse_json
from ..datastore import ObjectIO, walk_entries
from ..errors import BlobNotFoundError, CompstoreError, CorruptBlobError
from ..registry import DatasetRef, Registry

__all__ = ["VerifyProblem", "VerifyReport", "verify_repository"]

MISSING = "missing"
CORRUPT = "corrupt"
UNREADABLE = "unreadable"
DANGLING = "dangling reference"
DUPLICATE = "duplicate dataset"


@dataclass(frozen=True)
class VerifyProblem:
    """One thing wrong in a repository.

    Attributes
    ----------
    digest
        The component at fault (a manifest is a document), or the dataset ID a
        dangling reference names.
    problem
        ``"missing"``; ``"corrupt"`` (its bytes do not hash to its digest or
        do not decode, or a manifest that is not one); ``"unreadable"`` (the
        store could not read it, an I/O error say, or a manifest entry names
        no component or a malformed digest); ``"dangling reference"`` (a
        reference to a dataset the registry does not hold, or to a component
        that dataset lacks); or ``"duplicate dataset"`` (the registry holds
        several datasets of one type and data ID in one run, which its unique
        index forbids: ``digest`` is then the ID of one of the others).
    message
        What the store said.
    dataset
        The first dataset found that needs it (others may too).
    """

    digest: str
    problem: str
    message: str
    dataset: DatasetRef

    def __str__(self) -> str:
        ref = self.dataset
        return (
            f"{self.problem}: {self.digest}, needed by {ref.dataset_type} {dict(ref.data_id)} "
            f"in run {ref.run!r}: {self.message}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The problem as a plain dict (for JSON output)."""
        ref = self.dataset
        return {
            "digest": self.digest,
            "problem": self.problem,
            "message": self.message,
            "dataset": {
                "id": str(ref.id),
                "dataset_type": ref.dataset_type,
                "data_id": dict(ref.data_id),
                "run": ref.run,
            },
        }


@dataclass(frozen=True)
class VerifyReport:
    """What `verify_repository` found.

    Attributes
    ----------
    datasets
        Datasets whose manifests were walked (`Butler.verify`: all in the
        registry).
    components
        Components checked (arrays, documents and manifests), each digest
        once per kind it was named as.
    unreferenced
        Components in the blob store that none of those datasets needs (left
        by removed datasets or interrupted writes): not a problem, only
        space. None if the store could not be listed (``listing_error``).
    listing_error
        Why the store could not be listed, if it could not.
    deep
        Whether every component was re-read and re-hashed.
    problems
        Everything found wrong, in the order found.
    """

    datasets: int
    components: int
    unreferenced: int | None
    deep: bool
    problems: tuple[VerifyProblem, ...]
    listing_error: str | None = None

    @property
    def ok(self) -> bool:
        """True if no problem was found."""
        return not self.problems

    def __str__(self) -> str:
        how = "re-read and re-hashed" if self.deep else "looked up (use deep=True to re-hash them)"
        counts = f"{self.datasets} datasets, {self.components} components {how}"
        if self.unreferenced is None:
            lines = [f"{counts}; unreferenced components not counted: {self.listing_error}"]
        else:
            lines = [f"{counts}; {self.unreferenced} components unreferenced"]
        if self.ok:
            lines.append("no problems found")
        else:
            lines.append(f"{len(self.problems)} problem(s):")
            lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The report as a plain dict (for JSON output)."""
        return {
            "ok": self.ok,
            "datasets": self.datasets,
            "components": self.components,
            "unreferenced": self.unreferenced,
            "listing_error": self.listing_error,
            "deep": self.deep,
            "problems": [p.as_dict() for p in self.problems],
        }


def verify_repository(
    registry: Registry,
    io: ObjectIO,
    blobs: BlobStore,
    refs: Iterable[DatasetRef],
    *,
    deep: bool = False,
    progress: bool = False,
) -> VerifyReport:
    """Check that the datasets ``refs`` have their components in ``blobs`` (``deep``: intact).

    Parameters
    ----------
    registry, io, blobs
        The repository's registry (to resolve references to other datasets),
        its object reader and its blob store (`Butler.verify` passes its own).
    refs
        The datasets to check (`Butler.verify`: every one in the registry).
        Components none of them needs count as unreferenced.
    deep
        Re-read every component and re-hash it, instead of only asking the
        store whether it holds it. Reads every byte of the repository.
    progress
        Show a progress bar over the datasets (tqdm, on stderr, only on a terminal).

    Returns
    -------
    VerifyReport
        Counts and the problems found; `VerifyReport.ok` says whether there
        were none.
    """
    walk = _Walk(registry, io, blobs, deep)
    refs = list(refs)
    for ref in progress_bar(refs, enabled=progress, desc="verify", unit="dataset"):
        walk.dataset(ref)
    walk.duplicates()
    arrays = {d for kind, d in walk.checked if kind == "array"}
    documents = {d for kind, d in walk.checked if kind == "document"}
    unreferenced: int | None = None
    listing_error = None
    try:  # a damaged folder must not lose the problems found so far
        unreferenced = len(set(blobs.iter_arrays()) - arrays)
        unreferenced += len(set(blobs.iter_documents()) - documents)
    except CompstoreError as exc:
        listing_error = str(exc)
    return VerifyReport(
        datasets=len(refs),
        components=len(walk.checked),
        unreferenced=unreferenced,
        deep=deep,
        problems=tuple(walk.problems),
        listing_error=listing_error,
    )


class _Walk:
    """The state of one verification: components checked, problems found."""

    def __init__(self, registry: Registry, io: ObjectIO, blobs: BlobStore, deep: bool) -> None:
        self.registry = registry
        self.io = io
        self.blobs = blobs
        self.deep = deep
        self.checked: dict[tuple[str, str], bool] = {}  # (kind, digest) -> found intact
        self.walked: set[str] = set()  # manifests whose entries were checked
        # Dataset ID -> the dataset (None: not in the registry), looked up once: a
        # coadd refers to each input three times, and inputs are shared.
        self.targets: dict[str, DatasetRef | None] = {}
        self.problems: list[VerifyProblem] = []

    def problem(self, digest: str, problem: str, message: str, ref: DatasetRef) -> None:
        self.problems.append(VerifyProblem(digest, problem, message, ref))

    def dataset(self, ref: DatasetRef) -> None:
        """Check the manifest of ``ref`` and everything it names, nested manifests too.

        The one manifest walk (`walk_entries`), in its tolerant mode: each
        manifest is walked once (across datasets too), and a damaged one or a
        malformed entry is reported, and the walk goes on.
        """

        def unreadable(digest: str, exc: CompstoreError) -> Mapping[str, Any] | None:
            # Reported already if the document is missing or fails its hash; a
            # manifest that is there and intact but is not one (or not readable), here.
            if self.checked.get(("document", digest)):
                self.checked["document", digest] = False
                self.problem(digest, _classify(exc), str(exc), ref)
            # A manifest that fails its hash but still parses: what it names is
            # checked too, so that none of it counts as unreferenced.
            return self.salvage(digest)

        for kind, target, name, entry in walk_entries(
            self.io.manifest, ref.manifest, seen=self.walked, on_unreadable=unreadable
        ):
            if kind == "manifest":
                self.component(target, "document", ref)
            elif kind == "array" or kind == "document":
                self.component(target, kind, ref)
            elif kind == "dataset":
                self.reference(target, entry.get("component"), ref)
            else:  # "malformed": target is the manifest holding it
                self.problem(target, UNREADABLE, f"component {name!r} has no readable entry", ref)

    def duplicates(self) -> None:
        """Report datasets the registry holds twice (same type, data ID and run).

        A lookup would return either one: which dataset a get reads would
        depend on the database's row order, a silent wrong answer.
        """
        for ids in self.registry.duplicate_datasets():
            first = self.registry.get_dataset(ids[0])
            if first is None:  # removed meanwhile
                continue
            for other in ids[1:]:
                self.problem(
                    str(other), DUPLICATE,
                    f"datasets {', '.join(map(str, ids))} share dataset type, data ID and run; "
                    "remove all but one (Butler.remove), then restore the registry's unique index",
                    first,
                )

    def components(self, digest: str) -> Mapping[str, Any] | None:
        """The components of manifest ``digest``, or None if it does not read."""
        try:
            return self.io.manifest(digest).components
        except CompstoreError:
            return None

    def salvage(self, digest: str) -> Mapping[str, Any] | None:
        """The components a manifest that failed its hash still names, if it parses.

        Reads re-hash every document, so a damaged manifest is never read; the
        walk still checks what it names, so none of it counts as unreferenced.
        """
        try:
            value = parse_json(self.blobs.get_document_unchecked(digest))
        except (CompstoreError, ValueError):
            return None
        components = value.get("components") if isinstance(value, dict) else None
        return components if isinstance(components, Mapping) else None

    def component(self, digest: str, kind: str, ref: DatasetRef) -> bool:
        """Check one array or document (once per kind); return whether it was found intact."""
        known = self.checked.get((kind, digest))
        if known is not None:
            return known
        problem = None
        try:
            has = self.blobs.has_array if kind == "array" else self.blobs.has_document
            if not has(digest):
                problem = (MISSING, f"the blob store has no {kind} {digest}")
            elif self.deep:
                self.blobs.verify(digest)
            else:  # cheap: its files are there (a chunk file, a pack), none read
                self.blobs.check_files(digest)
        except BlobNotFoundError as exc:
            problem = (MISSING, str(exc))
        except CorruptBlobError as exc:
            problem = (CORRUPT, str(exc))
        except CompstoreError as exc:  # an I/O error, a malformed digest in a manifest
            problem = (UNREADABLE, str(exc))
        self.checked[kind, digest] = problem is None
        if problem is not None:
            self.problem(digest, problem[0], problem[1], ref)
        return problem is None

    def reference(self, dataset_id: str, component: Any, ref: DatasetRef) -> None:
        """Check that a reference names a dataset in the registry that has ``component``.

        ``component`` None refers to the whole dataset. The target's own
        components are not walked from here: they are checked if the target
        is among the datasets verified (`Butler.verify` passes them all).
        """
        if component is not None and not isinstance(component, str):
            message = f"the reference names component {component!r}"
            self.problem(dataset_id, UNREADABLE, message, ref)
            return
        if dataset_id not in self.targets:
            try:
                self.targets[dataset_id] = self.registry.get_dataset(uuid.UUID(dataset_id))
            except ValueError:
                self.targets[dataset_id] = None
        target = self.targets[dataset_id]
        if target is None:
            message = "no dataset with this ID is in the registry (removed?)"
            self.problem(dataset_id, DANGLING, message, ref)
            return
        if component is None:  # the whole dataset
            return
        components = self.components(target.manifest)
        if components is not None and component not in components:
            self.problem(
                dataset_id, DANGLING, f"dataset {dataset_id} has no component {component!r}", ref
            )


def _classify(exc: CompstoreError) -> str:
    """The problem a manifest that does not read has."""
    if isinstance(exc, BlobNotFoundError):
        return MISSING
    if isinstance(exc, CorruptBlobError):  # not JSON, not a manifest, or its pack is gone
        return CORRUPT
    return UNREADABLE
