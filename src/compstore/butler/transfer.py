"""Copy datasets between repositories as stored: the one engine behind subsets and transfers.

`copy_datasets` copies chosen datasets of one repository into another:

1. the **closure** of the datasets: every manifest (nested ones too), array
   and document their manifests name, and nothing else. A reference to
   another dataset (a coadd's ``coadd_inputs``, use case 7) is *carried as a
   reference*: the entry naming the other dataset's UUID is copied with the
   manifest, the other dataset is not (see `copy_datasets`);
2. each component of the closure the destination lacks, **as stored**: the
   bytes of its files (or pack members) are copied, never decoded, re-encoded
   or re-hashed. Small components go into the destination's next pack (a new
   pack holding only them); big arrays are copied file by file
   (`shutil.copyfile`: ``sendfile`` on Linux) into a staging folder, then
   published as the blob store publishes its own (`LocalBlobStore.sync`);
3. then, in **one registry transaction**, the dataset types, RUN
   collections, dataset rows (same UUIDs), provenance, and the TAGGED and
   CHAINED collections as far as they concern the copied datasets.

So the write order is the put's: components, manifests, then registry rows.
A copy that fails before its transaction commits leaves components no row
names (as a failed put does: unreferenced, never a wrong answer), and no row.

`subset` (a new repository) and `transfer` (an existing one) are its two
front-ends; `compstore.Butler.subset` and `compstore.Butler.transfer_from`
call them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._progress import progress_bar
from .._repository import Repository
from ..cas import BlobStore, LocalBlobStore
from ..cas._pack import KIND_DOCUMENT, PACK_MAX_BYTES, PackedMember
from ..cas._packwrite import Pending
from ..cas._sums import SUMS_NAME
from ..errors import BlobStoreError, ConflictingDatasetError, DatasetNotFoundError, RepositoryError
from ..registry import CollectionType, DatasetRef, DatasetType
from .gc import put_guard

if TYPE_CHECKING:
    from ._butler import Butler

__all__ = ["TransferReport", "copy_datasets", "subset", "transfer"]


@dataclass(frozen=True)
class TransferReport:
    """What one copy did.

    Attributes
    ----------
    refs
        The datasets copied (or found already in the destination), as refs of
        the destination.
    datasets
        Dataset rows the copy added (a dataset the destination had is not counted).
    components
        Components (arrays, documents, manifests) of the closure.
    components_written
        Of those, the ones the destination lacked and the copy wrote.
    bytes_written
        Stored bytes of the components written (each counted as in
        `BlobStore.stored_bytes`: its files' or pack members' bytes).
    closure_bytes
        Stored bytes of the whole closure in the source.
    collections
        The collections the copied datasets are in, in the destination: their
        RUN collections and the TAGGED and CHAINED ones carried.
    """

    refs: tuple[DatasetRef, ...] = ()
    datasets: int = 0
    components: int = 0
    components_written: int = 0
    bytes_written: int = 0
    closure_bytes: int = 0
    collections: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"datasets    {self.datasets:,} added ({len(self.refs):,} chosen)\n"
            f"components  {self.components_written:,} written of {self.components:,} "
            f"in the closure ({self.components - self.components_written:,} already there)\n"
            f"bytes       {self.bytes_written:,} written of {self.closure_bytes:,} in the closure"
        )


# -- closure ------------------------------------------------------------------------
def closure(source: Butler, refs: Sequence[DatasetRef]) -> dict[str, str]:
    """Every component the datasets ``refs`` need: ``{digest: "array" | "document"}``.

    Manifests (nested ones too) are documents. References to other datasets
    are not followed: those are the other datasets' bytes.

    Raises
    ------
    CorruptBlobError
        If a manifest on the way is damaged.
    BlobNotFoundError
        If a manifest on the way is missing.
    """
    found: dict[str, str] = {}
    for manifest in dict.fromkeys(ref.manifest for ref in refs):
        if manifest in found:
            continue
        for kind, digest in source._io.iter_components(manifest):
            found.setdefault(digest, kind)
    return found


# -- components ---------------------------------------------------------------------
def _small(dst: LocalBlobStore, digest: str, kind: str, members: list[tuple[str, bytes]], key: str | None) -> None:
    """Hand a small component's files to ``dst``: into its next pack, else as files."""
    if dst.packs:
        dst._add_pending(digest, Pending(kind, members, key))
        return
    if kind == KIND_DOCUMENT:
        dst.put_document(members[0][1], digest)  # digest given: not hashed again
        return
    _folder(dst, digest, [(name.rsplit("/", 1)[1], data) for name, data in members], [])


def _folder(
    dst: LocalBlobStore, digest: str, contents: list[tuple[str, bytes]], copies: list[str]
) -> None:
    """Write array ``digest`` as a folder: files from bytes (``contents``) and copies of files."""
    with dst._new_folder(digest, f"array component {digest}") as tmp:
        os.mkdir(tmp)
        written = []
        for name, data in contents:
            path = os.path.join(tmp, name)
            with open(path, "xb") as f:
                f.write(data)
            written.append(path)
        for source in copies:
            path = os.path.join(tmp, os.path.basename(source))
            shutil.copyfile(source, path)
            written.append(path)
        written.append(tmp)  # directories after the files they hold (sync's order)
    # With fsync, sync() fsyncs these files and the folder, then publishes it.
    dst._commit_array(digest, tmp, written)


def copy_through(src: BlobStore, dst: BlobStore, digest: str, kind: str) -> int:
    """Copy component ``digest`` through the blob-store contract; its stored bytes (0 if present).

    For stores that are not both folders (object storage on either side): the
    component is read (checked against its digest) and put again, encoded by
    ``dst`` (its digest given, not recomputed).

    Raises
    ------
    BlobNotFoundError, CorruptBlobError
        If ``src`` lacks it, or holds it damaged; or ``dst`` compares on a hit
        and holds other content under ``digest``.
    BlobStoreError
        If it cannot be read or written.
    """
    if _held(src, dst, digest, kind):
        return 0
    if kind == KIND_DOCUMENT:
        dst.put_document(src.get_document(digest), digest)
    else:
        dst.put_array(src.get_array(digest), digest)
    return dst.stored_bytes(digest)


def _held(src: BlobStore, dst: BlobStore, digest: str, kind: str) -> bool:
    """Whether ``dst`` holds component ``digest`` already, and so is not written to.

    A destination that compares on a hit (`BlobStore.check_hit`: format 3)
    first checks that it holds ``src``'s component, not other bytes under its
    digest: the cost of reading both is paid on hits only.

    Raises
    ------
    CorruptBlobError
        If ``dst`` holds other content under ``digest`` (nothing is written).
    """
    if kind == KIND_DOCUMENT:
        if not dst.has_document(digest):
            return False
        if dst.compare_on_hit:
            dst.check_hit(digest, src.get_document(digest))
        return True
    if not dst.has_array(digest):
        return False
    if dst.compare_on_hit:
        dst.check_hit(digest, src.get_array(digest))
    return True


def copy_component(src: LocalBlobStore, dst: LocalBlobStore, digest: str, kind: str) -> int:
    """Copy component ``digest`` from ``src`` to ``dst`` as stored; its stored bytes (0 if present).

    Raises
    ------
    BlobNotFoundError
        If ``src`` lacks it.
    CorruptBlobError
        If ``dst`` compares on a hit and holds other content under ``digest``.
    BlobStoreError
        If a file cannot be read or written.
    """
    if _held(src, dst, digest, kind):
        return 0
    found = src._packed(digest, kind) if src.packs else None
    if found is not None:
        files = src._packed_files(digest, kind)
        assert files is not None
        first, data = files
        if kind == KIND_DOCUMENT:
            _small(dst, digest, kind, [(f"documents/{digest}.json", first)], None)
            return len(first)
        key = found.key if isinstance(found, (PackedMember, Pending)) else None
        members = [(f"arrays/{digest}/zarr.json", first)]
        if key is not None and data is not None:
            members.append((f"arrays/{digest}/{key}", data))
        _small(dst, digest, kind, members, key)
        return sum(len(m) for _, m in members)
    if kind == KIND_DOCUMENT:
        raw = src.get_document_unchecked(digest)
        if len(raw) < PACK_MAX_BYTES:
            _small(dst, digest, kind, [(f"documents/{digest}.json", raw)], None)
        else:
            dst.put_document(raw, digest)
        return len(raw)
    folder = src._locate_array(digest)
    try:
        paths = sorted(
            os.path.join(folder, e.name) for e in os.scandir(folder) if e.is_file()
        )
        size = sum(os.path.getsize(p) for p in paths)
        if dst.packs and size < PACK_MAX_BYTES:
            # A small folder array (format 1 source, or written out by component_path):
            # its zarr.json and data file become pack members.
            meta, key, data = b"", None, None
            for path in paths:
                name = os.path.basename(path)
                with open(path, "rb") as f:
                    if name == "zarr.json":
                        meta = f.read()
                    elif name != SUMS_NAME:
                        key, data = name, f.read()
            members = [(f"arrays/{digest}/zarr.json", meta)]
            if key is not None and data is not None:
                members.append((f"arrays/{digest}/{key}", data))
            _small(dst, digest, kind, members, key)
            return sum(len(m) for _, m in members)
        _folder(dst, digest, [], paths)
    except OSError as exc:
        raise BlobStoreError(f"cannot copy array component {digest}: {exc}") from exc
    return size


# -- registry -----------------------------------------------------------------------
def _register_type(dest: Butler, dataset_type: DatasetType) -> None:
    required = tuple(d for d in dataset_type.dimensions if d not in dataset_type.optional_dimensions)
    dest.registry.register_dataset_type(dataset_type.name, required, dataset_type.storage_class)
    if dataset_type.optional_dimensions:
        # A later stage's extra dimensions are optional in the source: registered
        # second, they are optional here too.
        dest.registry.register_dataset_type(
            dataset_type.name, dataset_type.dimensions, dataset_type.storage_class
        )


def _present(dest: Butler, ref: DatasetRef, have: DatasetRef | None) -> bool:
    """Whether ``dest`` has ``ref`` already (``have``: its dataset of the same UUID, if any)."""
    if have is None:
        return False
    if (have.dataset_type, have.run, have.manifest) != (ref.dataset_type, ref.run, ref.manifest):
        raise ConflictingDatasetError(
            f"dataset ID {ref.id} ({ref.dataset_type} {dict(ref.data_id)} in run {ref.run!r}) "
            f"is already in {dest.root} as {have.dataset_type} {dict(have.data_id)} in run "
            f"{have.run!r} with manifest {have.manifest}; nothing was transferred"
        )
    return True


def _collections(source: Butler, dest: Butler, refs: Sequence[DatasetRef]) -> list[str]:
    """Carry the TAGGED and CHAINED collections that concern ``refs`` (in the transaction).

    A TAGGED collection is carried with the copied datasets it holds, if it
    holds any. A CHAINED collection is carried if one of its children is
    carried (or exists in the destination), keeping the carried children in
    their order; a chain whose children are all left out is left out.
    """
    src, dst = source.registry, dest.registry
    ids = {ref.id for ref in refs}
    types = sorted({ref.dataset_type for ref in refs})
    carried = {ref.run for ref in refs}
    for tagged in src.query_collections(collection_type=CollectionType.TAGGED):
        members = [
            r for t in types for r in src.query_datasets(t, collections=[tagged]) if r.id in ids
        ]
        if members:
            dst.register_collection(tagged, CollectionType.TAGGED)
            dst.associate(tagged, [r.id for r in members])
            carried.add(tagged)
    chains = src.query_collections(collection_type=CollectionType.CHAINED)
    existing = set(dst.query_collections())
    children = {c: src.get_chain(c) for c in chains}
    kept: dict[str, list[str]] = {}
    changed = True
    while changed:  # a chain of chains: carried once a child chain is
        changed = False
        for chain, kids in children.items():
            keep = [k for k in kids if k in carried or k in kept or k in existing]
            if keep and kept.get(chain) != keep:
                kept[chain] = keep
                changed = True
    for chain in kept:
        dst.register_collection(chain, CollectionType.CHAINED)
    for chain, keep in kept.items():
        dst.set_chain(chain, keep)
    return sorted(carried | set(kept))


def _insert(
    source: Butler, dest: Butler, refs: Sequence[DatasetRef], dataset_types: Iterable[str]
) -> tuple[list[DatasetRef], int, list[str]]:
    """Write the registry rows of ``refs`` into ``dest`` in one transaction."""
    src, dst = source.registry, dest.registry
    out: list[DatasetRef] = []
    added = 0
    with dst.transaction(durable=dest.blobs.durable):
        types = {ref.dataset_type for ref in refs} | set(dataset_types)
        for name in sorted(types):
            _register_type(dest, src.get_dataset_type(name))
        for definition in src.definitions():
            if set(definition.members) <= types:
                dst.register_definition(definition)
        groups: dict[tuple[str, str, tuple[str, ...]], list[DatasetRef]] = {}
        # A new subset has no row to look up; otherwise one batched lookup of every ID.
        haves: list[DatasetRef | None] = (
            [None] * len(refs) if dst.count_datasets() == 0 else dst.get_datasets([r.id for r in refs])
        )
        for ref, have in zip(refs, haves, strict=True):
            if _present(dest, ref, have):
                out.append(ref)
                continue
            key = (ref.dataset_type, ref.run, tuple(sorted(ref.data_id)))
            groups.setdefault(key, []).append(ref)
        for (name, run, _dims), group in groups.items():
            dst.register_run(run)
            out.extend(
                dst.insert_datasets(
                    name,
                    [dict(r.data_id) for r in group],
                    run,
                    [r.manifest for r in group],
                    ids=[r.id for r in group],
                )
            )
            added += len(group)
        for run in sorted({ref.run for ref in refs}):
            dst.register_run(run)
        provenances = src.get_provenances([ref.id for ref in refs])
        for ref in refs:
            prov = provenances.get(ref.id)
            if prov is not None:
                dst.record_provenance(
                    ref.id, prov["task_label"], prov["task_class"], prov["config"], prov["input_ids"]
                )
        collections = _collections(source, dest, refs)
    return out, added, collections


# -- the engine ----------------------------------------------------------------------
def copy_datasets(
    source: Butler,
    dest: Butler,
    refs: Iterable[DatasetRef],
    *,
    dataset_types: Iterable[str] = (),
    progress: bool = False,
) -> TransferReport:
    """Copy the datasets ``refs`` of ``source`` into ``dest`` as stored, keeping their UUIDs.

    Components the destination has are skipped; the rest of the closure is
    copied byte for byte, then synced; then every registry row is written in
    one transaction (all or nothing). A dataset ``dest`` has already (same
    UUID and manifest) is kept, not copied again. The dataset types of
    ``refs``, and those named in ``dataset_types`` (even with no dataset
    chosen), are registered in ``dest``; so are the defined dataset types
    (aggregates, joins) whose members all are.

    References to other datasets (a coadd's inputs) are **carried as
    references**: the target dataset is not copied. If it is absent from
    ``dest``, reading the referring component there raises
    `DatasetNotFoundError` naming the missing dataset (never other data);
    transfer the target too, or read through a Butler that sees it.

    Raises
    ------
    DatasetNotFoundError
        If a ref is not a dataset of ``source``.
    ConflictingDatasetError
        If ``dest`` has one of the UUIDs for another dataset, or another
        dataset of the same type and data ID in the same run; no row is written.
    ReadOnlyRepositoryError
        If ``dest`` is open read-only.
    BlobStoreError, CorruptBlobError, BlobNotFoundError
        If a component cannot be read or written; no row is written.
    RepositoryError
        If the repositories name components by different digest algorithms
        (xxh3-128 and blake3): components are copied under their names.
    """
    dest._check_writeable()
    _same_digests(source, dest)
    chosen = list({ref.id: ref for ref in refs}.values())
    names = list(dataset_types)
    split = getattr(source, "split_by_repository", None)
    # A chain of repositories: each copies the components of what it holds, and
    # every row of every part is written in one transaction (all or nothing).
    parts: list[tuple[Butler, list[DatasetRef], list[str]]] = []
    if split is None:
        parts.append((source, chosen, names))
    else:
        for member, part in split(chosen):
            known = {t.name for t in member.registry.dataset_types()}
            parts.append((member, list(part), [n for n in names if n in known]))
    for member, part, _types in parts:
        _check_refs(member, part)
    dst = dest.blobs
    # The destination's gc lock, shared, from the first existence check to the rows:
    # no sweep deletes a component this copy skipped (the destination had it) or wrote.
    with put_guard(dst, dest.cache) as guard:
        copied = [_copy_closure(member, dst, part, progress) for member, part, _ in parts]
        dst.sync()  # every component durable before any row names it
        out: list[DatasetRef] = []
        added = 0
        collections: dict[str, None] = {}
        with dest.registry.transaction(durable=dst.durable):
            for member, part, types in parts:
                rows, n, named = _insert(member, dest, part, types)
                out.extend(rows)
                added += n
                collections.update(dict.fromkeys(named))
            guard.confirm(dest.registry)  # last: the gc lock held throughout
    return TransferReport(
        refs=tuple(out),
        datasets=added,
        components=sum(c[0] for c in copied),
        components_written=sum(c[1] for c in copied),
        bytes_written=sum(c[2] for c in copied),
        closure_bytes=sum(c[3] for c in copied),
        collections=tuple(collections),
    )


def _same_digests(source: Butler, dest: Butler) -> None:
    members = getattr(source, "_members", None) or [source]
    for member in members:
        have, want = member.blobs.digest_algorithm.name, dest.blobs.digest_algorithm.name
        if have != want:
            raise RepositoryError(
                f"{member.root} names components by {have} and {dest.root} by {want}: a "
                "transfer copies components under their names, so both must use one digest "
                "algorithm. Copy the datasets by value instead (Butler.get from one, "
                "Butler.put into the other)"
            )


def _check_refs(source: Butler, refs: Sequence[DatasetRef]) -> None:
    """Refuse a ref that is not (with its manifest) a dataset of ``source``."""
    for ref, have in zip(refs, source.registry.get_datasets([r.id for r in refs]), strict=True):
        if have is None or have.manifest != ref.manifest:
            raise DatasetNotFoundError(
                f"{ref.dataset_type} {dict(ref.data_id)} (ID {ref.id}) is not a dataset of "
                f"{source.root}; pass refs found in the repository transferred from"
            )


def _copy_closure(
    source: Butler, dst: BlobStore, refs: Sequence[DatasetRef], progress: bool
) -> tuple[int, int, int, int]:
    """Copy the components ``refs`` reference that ``dst`` lacks.

    Returns (components in the closure, components written, bytes written,
    the closure's stored bytes).
    """
    src = source.blobs
    needed = closure(source, refs)
    written = nbytes = total = 0
    # Documents first, arrays after, in digest order: each kind's reads walk its
    # fan-out folders in order; manifests before nothing (no row names them yet).
    order = sorted(needed.items(), key=lambda item: (item[1], item[0]))
    for digest, kind in progress_bar(
        order, enabled=progress, desc="copy components", unit="component", total=len(order)
    ):
        total += src.stored_bytes(digest)
        if isinstance(src, LocalBlobStore) and isinstance(dst, LocalBlobStore):
            n = copy_component(src, dst, digest, kind)
        else:
            n = copy_through(src, dst, digest, kind)
        if n:
            written += 1
            nbytes += n
    return len(needed), written, nbytes, total


def _chosen(
    source: Butler,
    dataset_types: str | Sequence[str],
    where: str | None,
    collections: str | Sequence[str] | None,
) -> tuple[list[DatasetRef], list[str]]:
    """The refs chosen, and the dataset type names (a ``TYPE:STAGE`` name's type)."""
    from ._names import parse_dataset_name

    names = [dataset_types] if isinstance(dataset_types, str) else list(dataset_types)
    refs: list[DatasetRef] = []
    for name in names:
        refs.extend(source.query_datasets(name, where, collections=collections))
    return refs, [parse_dataset_name(n).dataset_type for n in names]


def subset(
    source: Butler,
    dest: str | os.PathLike[str],
    dataset_types: str | Sequence[str] = ("src",),
    where: str | None = None,
    collections: str | Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> tuple[Butler, TransferReport]:
    """Create the repository ``dest`` holding the chosen datasets of ``source`` and their closure.

    See `compstore.Butler.subset`.

    Raises
    ------
    RepositoryExistsError
        If ``dest`` exists and is not an empty folder.
    """
    from ._butler import Butler

    refs, names = _chosen(source, dataset_types, where, collections)  # bad input: before creating
    durable = source.blobs.durable
    # No fan-out folders up front: the copy makes those it writes into (most of an
    # empty create's time otherwise, for a catalogs-only subset more than the copy).
    # The same digest algorithm: components are copied under their names.
    made = Repository.create(  # kept: the Butler is then served its registry, not a reopen
        dest, fsync=durable, fanout=False, digest=source.blobs.digest_algorithm.name
    )
    target = Butler(dest, fsync=durable)
    del made
    return target, copy_datasets(source, target, refs, dataset_types=names, progress=progress)


def transfer(
    dest: Butler,
    source: Butler,
    dataset_types: str | Sequence[str],
    where: str | None = None,
    collections: str | Sequence[str] | None = None,
    *,
    progress: bool = False,
) -> TransferReport:
    """Copy the chosen datasets of ``source`` into ``dest`` (the CLI's ``transfer``).

    Raises
    ------
    As `copy_datasets`.
    """
    refs, names = _chosen(source, dataset_types, where, collections)
    return copy_datasets(source, dest, refs, dataset_types=names, progress=progress)
