"""Reading datasets: find (with the search rule), query, get, count."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from compstore.errors import (
    AmbiguousDatasetError,
    CollectionError,
    QueryError,
)

from ._collections import _Collections
from ._common import (
    _IN_CHUNK,
    _NO_FAST_PATH,
    CollectionArg,
    _as_uuid,
    _chunks,
    _listing,
)
from ._connections import reconnecting
from ._dimensions import (
    coerce_value,
    infer_value_type,
)
from ._engine import is_sqlite
from ._schema import (
    dimension_column_name,
)
from ._type_info import _TypeInfo
from ._types import (
    CollectionType,
    DataId,
    DatasetRef,
)
from .where import check_where, parse_where, where_to_sql


def _first_per_identity(ranked: list[tuple[int, Any]], info: _TypeInfo) -> list[tuple[int, Any]]:
    """The search rule: keep, per identity, the matches of the first collection that has one.

    ``ranked`` holds ``(rank in the search path, row)`` for every dataset that
    matches what the caller asked for; a row is ``id, run_id, manifest,
    data_id_key`` then the values of the sorted dimensions. A dataset's
    *identity* is its values of the dataset type's *required* dimensions:
    sfm's ``calexp(visit=1, detector=2)`` and jointcal's ``calexp(visit=1,
    detector=2, tract=9)`` are two stages of one exposure, so a dimension that
    only a later stage added (``tract``) never makes the earlier stage's
    dataset a second candidate. Every match in the winning collection is kept:
    several (two tracts of one exposure in jointcal) are a genuine ambiguity
    for the caller to resolve. This is the one place the search path shadows
    datasets: `Registry.find_dataset`, `Registry.find_datasets_partial` and
    ``query_datasets(find_first=True)`` (the quantum-graph builder's input
    query) all go through it.
    """
    positions = tuple(4 + i for i in info.key_positions)
    first: dict[tuple[Any, ...], int] = {}
    for r, row in ranked:
        identity = tuple(row[i] for i in positions)
        have = first.get(identity)
        if have is None or r < have:
            first[identity] = r
    return [(r, row) for r, row in ranked if first[tuple(row[i] for i in positions)] == r]


def _choose(
    dataset_type: str,
    data_id: Mapping[str, Any],
    candidates: list[DatasetRef],
    collections: CollectionArg | None,
) -> DatasetRef | None:
    """The one dataset a partial lookup means, or an error that says how to pick one.

    In a search path every candidate of one identity comes from one collection
    (`_first_per_identity`), where a data ID that is exactly a candidate's
    names it: a run holding ``calexp(visit=1, detector=2)`` and, from a
    re-run, ``calexp(visit=1, detector=2, tract=9)`` gives the first for
    ``visit=1, detector=2`` and the second with ``tract=9`` added. Without a
    search path the candidates are in different runs and nothing orders them.

    Raises
    ------
    AmbiguousDatasetError
        If several candidates remain.
    """
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    given = dict(data_id)
    if collections is not None:
        exact = [ref for ref in candidates if len(ref.data_id) == len(given)]
        if len(exact) == 1:
            return exact[0]

    def pick(ref: DatasetRef) -> str:
        extra = [f"{d}={v!r}" for d, v in ref.data_id.items() if d not in given]
        if collections is None:
            extra.append(f"collections=[{ref.run!r}]")
        return f"{' and '.join(extra)} for {ref.data_id} in {ref.run!r}"

    if collections is None:
        where = "the RUN collections (no search path given)"
    else:
        where = f"collections {[collections] if isinstance(collections, str) else list(collections)!r}"
    advice = (
        "give the dimension values" + (" or the collection" if collections is None else "")
        + " that pick one"
    )
    raise AmbiguousDatasetError(
        f"{dataset_type} with data ID {DataId(given)} matches {len(candidates)} datasets in "
        f"{where}; {advice}: " + _listing((pick(ref) for ref in candidates), "; ")
    )



class _Queries(_Collections):
    """Registry methods that read datasets."""

    # -- datasets: reading -----------------------------------------------------------
    def _ref_columns(self, info: _TypeInfo) -> list[sa.ColumnElement[Any]]:
        table = self._t["dataset"]
        return [
            table.c.id,
            table.c.run_id,
            table.c.manifest,
            table.c.data_id_key,
            *(table.c[dimension_column_name(d)] for d in info.sorted_dims),
        ]

    def _ref(self, conn: sa.Connection, info: _TypeInfo, row: Sequence[Any]) -> DatasetRef:
        # row: id, run_id, manifest, data_id_key, then sorted dimension values
        return DatasetRef(
            row[0],
            info.dataset_type.name,
            info.data_id(row[4 : 4 + len(info.sorted_dims)]),
            self._collection_name(conn, row[1]),
            row[2],
        )

    def _statements(self, info: _TypeInfo) -> tuple[sa.Select[Any], sa.Select[Any], sa.Select[Any]]:
        """Return the (every run, RUN, TAGGED) select statements of one dataset type, cached.

        Built once with bind parameters (``type_id``, ``runs``/``tags``) so the
        hot path of find_dataset only binds values: building SQLAlchemy
        expressions costs more than SQLite's index lookup.
        """
        md = self._md
        cached = self._statement_cache.get(info.id)
        # Valid while both the schema description and the type are the ones it was
        # built from: a reloaded type (a new dimension) is a new _TypeInfo.
        if cached is not None and cached[0] is md and cached[1] is info:
            return cached[2], cached[3], cached[4]
        table, tag = md.tables["dataset"], md.tables["dataset_tag"]
        columns = self._ref_columns(info)
        in_type = table.c.dataset_type_id == sa.bindparam("type_id")
        by_type = sa.select(*columns).where(in_type)
        by_run = by_type.where(table.c.run_id.in_(sa.bindparam("runs", expanding=True)))
        by_tag = (
            sa.select(*columns, tag.c.collection_id)
            .join(tag, tag.c.dataset_id == table.c.id)
            .where(in_type, tag.c.collection_id.in_(sa.bindparam("tags", expanding=True)))
        )
        self._statement_cache[info.id] = (md, info, by_type, by_run, by_tag)
        return by_type, by_run, by_tag

    def _select(
        self,
        conn: sa.Connection,
        info: _TypeInfo,
        condition: sa.ColumnElement[bool] | None,
        collections: CollectionArg | None,
        *,
        find_first: bool,
        params: Mapping[str, Any] | None = None,
    ) -> list[DatasetRef]:
        """Return the datasets of one type matching ``condition`` in ``collections``.

        With ``collections`` None every RUN is searched and nothing is shadowed.
        Otherwise the flattened search path gives each dataset a rank; a dataset
        reached twice counts once, and with ``find_first`` the search rule
        applies (`_first_per_identity`: per identity, the first collection
        that has a match wins). ``params`` binds parameters of ``condition``.
        """
        by_type, by_run, by_tag = self._statements(info)

        def where(statement: sa.Select[Any]) -> sa.Select[Any]:
            return statement if condition is None else statement.where(condition)

        bound = {"type_id": info.id, **(params or {})}
        ranked: list[tuple[int, Any]] = []
        if collections is None:
            ranked = [(0, row) for row in conn.execute(where(by_type), bound)]
        else:
            flat = self._flatten(conn, collections)
            rank = {cid: i for i, (cid, _) in enumerate(flat)}
            run_ids = [cid for cid, ctype in flat if ctype is CollectionType.RUN]
            tag_ids = [cid for cid, ctype in flat if ctype is CollectionType.TAGGED]
            if run_ids:
                rows = conn.execute(where(by_run), {**bound, "runs": run_ids})
                ranked.extend((rank[row[1]], row) for row in rows)
            if tag_ids:
                rows = conn.execute(where(by_tag), {**bound, "tags": tag_ids})
                ranked.extend((rank[row[-1]], row) for row in rows)
        if len(ranked) == 1:
            return [self._ref(conn, info, ranked[0][1])]
        if find_first and collections is not None:
            ranked = _first_per_identity(ranked, info)
        # A dataset reached twice (through a tag and its run, a chain) counts once,
        # at its best place.
        best: dict[Any, tuple[int, Any]] = {}
        for r, row in ranked:
            have = best.get(row[0])
            if have is None or r < have[0]:
                best[row[0]] = (r, row)
        refs = [self._ref(conn, info, row) for _, row in best.values()]
        order = info.dataset_type.dimensions
        # An absent optional dimension sorts first.
        refs.sort(
            key=lambda ref: (
                tuple((1, ref.data_id[d]) if d in ref.data_id else (0, 0) for d in order),
                ref.run,
                str(ref.id),
            )
        )
        return refs

    @reconnecting
    def find_dataset(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        collections: CollectionArg | None,
        *,
        partial: bool = False,
    ) -> DatasetRef | None:
        """Find the dataset of a type and data ID, searching collections in order.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            The data ID. Without ``partial`` it is exact: every required
            dimension is given, and an optional dimension left out means the
            dataset has none.
        collections : `str` or sequence of `str`, or `None`
            Collections to search, in order; chains are flattened. Per
            identity (the values of the required dimensions), the first
            collection holding a match wins: a dimension a later stage added
            (``tract``) does not make an earlier stage's dataset a second
            candidate. `None` (only with ``partial``) searches every RUN and
            shadows nothing.
        partial : `bool`, optional
            Allow a data ID that leaves dimensions out: the datasets whose data
            IDs extend it are matches. One match is returned; among several,
            one whose data ID is exactly ``data_id`` (in a search path) is
            returned; otherwise it is an error.

        Returns
        -------
        ref : `DatasetRef` or `None`
            The dataset found, or `None`.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID lacks (unless ``partial``) or adds a dimension, or a
            value has the wrong type.
        MissingCollectionError
            If a collection does not exist.
        AmbiguousDatasetError
            With ``partial``, if several datasets match; the message lists them
            with the dimension values (or collection) that pick each one.
        """
        if partial:
            candidates = self.find_datasets_partial(dataset_type, data_id, collections)
            return _choose(dataset_type, data_id, candidates, collections)
        if collections is None:
            raise CollectionError(
                f"an exact lookup of {dataset_type} {dict(data_id)!r} needs collections to "
                "search, in order (or partial=True to search every RUN)"
            )
        fast = self._find_fast(dataset_type, data_id, collections)
        if fast is not _NO_FAST_PATH:
            return fast  # type: ignore[return-value]
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            info = self._fresh_type_for(conn, info, data_id)
            info.dataset_type.check_data_id(data_id)
            types = self._dimension_types(conn, info)
            if any(types[d] is None for d in data_id):
                return None  # a dimension with no value yet: no dataset of this type exists
            values = info.values(types, data_id)
            table = self._t["dataset"]
            condition = table.c.data_id_key == sa.bindparam("key")
            refs = self._select(
                conn, info, condition, collections, find_first=True,
                params={"key": info.key(values)},
            )
            return refs[0] if refs else None

    def _find_fast(
        self, dataset_type: str, data_id: Mapping[str, Any], collections: CollectionArg
    ) -> DatasetRef | None | object:
        """An exact lookup on a raw SQLite connection, or `_NO_FAST_PATH`.

        A data-ID lookup is one probe of a unique index, which SQLite answers in
        microseconds; building it through SQLAlchemy costs a few hundred. This
        path serves the common case (a known dataset type, a search path of
        RUN collections, outside a transaction) and answers exactly as the
        general path does; anything else falls through to it. The flattened
        search path is remembered while the database's data_version holds.
        """
        if getattr(self._local, "conn", None) is not None or self._stale:
            return _NO_FAST_PATH
        version = self.data_version()  # validates the cached types first
        info = self._types.get(dataset_type)
        if info is None or version is None:
            return _NO_FAST_PATH
        dims = info.dataset_type.dimensions
        if any(d not in dims for d in data_id):
            return _NO_FAST_PATH  # perhaps a dimension added since: the general path reloads
        types = {d: self._dimensions.get(d) for d in dims}
        if any(types[d] is None for d in data_id):
            return _NO_FAST_PATH
        info.dataset_type.check_data_id(data_id)
        key = tuple(collections) if not isinstance(collections, str) else (collections,)
        with self._lock:
            cached = self._fast_paths.get(key)
        if cached is None or cached[0] != version:
            runs = self._plain_runs(key)
            if runs is None:
                with self._read() as conn:
                    flat = self._flatten(conn, list(key))
                    if any(ctype is not CollectionType.RUN for _, ctype in flat):
                        return _NO_FAST_PATH
                    runs = [(cid, self._collection_name(conn, cid)) for cid, _ in flat]
            cached = (version, runs)
            with self._lock:
                if len(self._fast_paths) > 10_000:
                    self._fast_paths.clear()
                self._fast_paths[key] = cached
        runs = cached[1]
        if not runs:
            return None
        values = info.values(types, data_id)
        marks = ",".join("?" * len(runs))
        sql = (
            "SELECT id, run_id, manifest FROM dataset WHERE dataset_type_id = ? "
            f"AND data_id_key = ? AND run_id IN ({marks})"
        )
        with self._lock:
            rows = self._watcher.execute(  # type: ignore[union-attr]
                sql, (info.id, info.key(values), *(cid for cid, _ in runs))
            ).fetchall()
        if not rows:
            return None
        rank = {cid: i for i, (cid, _) in enumerate(runs)}
        dataset_id, run_id, manifest = min(rows, key=lambda row: rank[row[1]])
        return DatasetRef(
            uuid.UUID(hex=dataset_id) if isinstance(dataset_id, str) else _as_uuid(dataset_id),
            dataset_type,
            info.data_id(values),
            dict(runs)[run_id],
            manifest,
        )

    def _plain_runs(self, names: tuple[str, ...]) -> list[tuple[int, str]] | None:
        """``(id, name)`` of each of ``names`` if all are RUN collections, else None.

        Read on the raw connection: every commit (our own puts included) changes
        ``data_version`` and so drops the fast path's search paths, and a search
        path of runs (a put's existence check) is rebuilt here without opening a
        SQLAlchemy transaction. Chains, tagged or missing collections, and names
        that are not strings return None: the general path handles them.
        """
        if not all(isinstance(name, str) for name in names):
            return None  # the general path explains what is wrong with the name
        runs: list[tuple[int, str]] = []
        seen: set[int] = set()
        with self._lock:
            for name in names:
                row = self._watcher.execute(  # type: ignore[union-attr]
                    "SELECT id, type FROM collection WHERE name = ?", (name,)
                ).fetchone()
                if row is None or row[1] != CollectionType.RUN.value:
                    return None
                if row[0] not in seen:  # a run named twice is searched at its first place
                    seen.add(row[0])
                    runs.append((row[0], name))
        return runs

    @reconnecting
    def find_datasets_partial(
        self,
        dataset_type: str,
        data_id: Mapping[str, Any],
        collections: CollectionArg | None,
    ) -> list[DatasetRef]:
        """Return every dataset whose data ID extends a partial one.

        For each full data ID, the first collection in the search path that has
        it wins, as in :meth:`find_dataset`.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        data_id : mapping
            Some of the dataset type's dimensions (all of them is fine too).
        collections : `str` or sequence of `str`, or `None`
            Collections to search, in order; None searches every RUN
            collection and shadows nothing.

        Returns
        -------
        refs : `list` [`DatasetRef`]
            The candidates, sorted by data ID.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID has a dimension the dataset type lacks or a badly
            typed value.
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            info = self._fresh_type_for(conn, info, data_id)
            info.dataset_type.check_data_id(data_id, partial=True)
            types = self._dimension_types(conn, info)
            if any(t is None for t in types.values()):
                return []
            table = self._t["dataset"]
            condition = sa.and_(
                sa.true(),
                *(
                    table.c[dimension_column_name(d)] == coerce_value(d, types[d], v)  # type: ignore[arg-type]
                    for d, v in data_id.items()
                ),
            )
            return self._select(conn, info, condition, collections, find_first=True)

    @reconnecting
    def query_datasets(
        self,
        dataset_type: str,
        where: str | None = None,
        collections: CollectionArg | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        find_first: bool = False,
    ) -> list[DatasetRef]:
        """Return the datasets of a type that satisfy a ``where`` expression.

        Parameters
        ----------
        dataset_type : `str`
            A registered dataset type name.
        where : `str`, optional
            An expression over the dataset type's dimensions, e.g.
            ``"visit = 1 AND detector IN (1, 2)"``; see ``docs/registry.md``.
            `None` or blank: every dataset.
        collections : `str` or sequence of `str`, optional
            Collections to search; `None` for every RUN collection.
        bind : mapping, optional
            Values for ``:name`` parameters in ``where``.
        find_first : `bool`, optional
            Keep, per data ID, only the dataset from the first collection in
            the search path (like :meth:`find_dataset`).

        Returns
        -------
        refs : `list` [`DatasetRef`]
            Matching datasets, sorted by data ID (in the dataset type's
            dimension order), then run.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        QuerySyntaxError
            If ``where`` is malformed (the message points at the column).
        QueryError
            If ``where`` names an unknown dimension, compares a dimension with a
            value of the wrong type, or uses a missing bind value.
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            types = self._dimension_types(conn, info)
            condition: sa.ColumnElement[bool] | None = None
            if where is not None and not isinstance(where, str):
                raise QueryError(f"a where expression is a string, got {type(where).__name__}")
            if where is not None and where.strip():
                node = parse_where(where)
                check_where(node, dataset_type, types, bind, where)
                if any(t is None for t in types.values()):
                    return []
                table = self._t["dataset"]
                condition = where_to_sql(
                    node, lambda d: table.c[dimension_column_name(d)], bind
                )
            elif any(t is None for t in types.values()):
                return []
            return self._select(conn, info, condition, collections, find_first=find_first)

    def _get(self, conn: sa.Connection, dataset_id: uuid.UUID) -> DatasetRef | None:
        self._refresh(conn)
        table = self._t["dataset"]
        type_id = conn.execute(
            sa.select(table.c.dataset_type_id).where(table.c.id == dataset_id)
        ).scalar()
        if type_id is None:
            return None
        info = self._type(conn, self._type_name(conn, type_id))
        self._dimension_types(conn, info)
        row = conn.execute(
            sa.select(*self._ref_columns(info)).where(table.c.id == dataset_id)
        ).one()
        return self._ref(conn, info, row)

    @reconnecting
    def canonical_data_id(self, dataset_type: str, data_id: Mapping[str, Any]) -> DataId:
        """Return ``data_id`` as the registry stores it for ``dataset_type``.

        Values are coerced to their dimension's type as an insert would coerce
        them (a numpy integer or a digit string of an integer dimension becomes
        an ``int``); a dimension with no type yet takes the one its value
        implies. Nothing is written.

        Raises
        ------
        MissingDatasetTypeError
            If the dataset type is not registered.
        DataIdError
            If the data ID does not fit the dataset type.
        """
        with self._read() as conn:
            info = self._type(conn, dataset_type)
            info.dataset_type.check_data_id(data_id)
            types = self._dimension_types(conn, info)
        values = [
            coerce_value(d, types[d] or infer_value_type(d, data_id[d]), data_id[d])
            if d in data_id
            else None
            for d in info.sorted_dims
        ]
        return info.data_id(values)

    @reconnecting
    def get_dataset(self, id: uuid.UUID) -> DatasetRef | None:
        """Return the dataset with this ID, or `None` if there is none."""
        with self._read() as conn:
            return self._get(conn, _as_uuid(id))

    @reconnecting
    def get_datasets(self, ids: Sequence[uuid.UUID]) -> list[DatasetRef | None]:
        """Return the datasets with these IDs, in order (`None` where there is none).

        As `get_dataset` for each, in a few queries per dataset type instead of
        two per ID: for transfers and subsets of many datasets.
        """
        wanted = [_as_uuid(i) for i in ids]
        found: dict[uuid.UUID, DatasetRef] = {}
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset"]
            by_type: dict[int, list[uuid.UUID]] = {}
            for chunk in _chunks(sorted(set(wanted)), _IN_CHUNK):
                for dataset_id, type_id in conn.execute(
                    sa.select(table.c.id, table.c.dataset_type_id).where(table.c.id.in_(chunk))
                ):
                    by_type.setdefault(type_id, []).append(dataset_id)
            for type_id, type_ids in by_type.items():
                info = self._type(conn, self._type_name(conn, type_id))
                self._dimension_types(conn, info)
                columns = self._ref_columns(info)
                for chunk in _chunks(type_ids, _IN_CHUNK):
                    for row in conn.execute(sa.select(*columns).where(table.c.id.in_(chunk))):
                        found[row[0]] = self._ref(conn, info, row)
        return [found.get(i) for i in wanted]

    @reconnecting
    def duplicate_datasets(self) -> list[list[uuid.UUID]]:
        """Return the IDs of datasets that share a dataset type, data ID and run, per group.

        The schema's unique index forbids them; a registry file edited behind
        compstore's back, or whose index was damaged or dropped, may hold some.
        `compstore.butler.verify` reports each group. Reads the whole dataset table.
        """
        with self._read() as conn:
            table = self._t["dataset"]
            keys = (table.c.dataset_type_id, table.c.data_id_key, table.c.run_id)
            dup = (
                sa.select(*keys).group_by(*keys).having(sa.func.count() > 1).subquery()
            )
            rows = conn.execute(
                sa.select(table.c.id, *keys)
                .join(dup, sa.and_(*(k == dup.c[k.name] for k in keys)))
                .order_by(*keys, table.c.id)
            ).all()
        groups: dict[tuple[Any, ...], list[uuid.UUID]] = {}
        for row in rows:
            groups.setdefault(tuple(row[1:]), []).append(row[0])
        return list(groups.values())

    @reconnecting
    def manifests(self) -> set[str]:
        """Return every manifest digest some dataset refers to."""
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset"]
            return set(conn.execute(sa.select(table.c.manifest).distinct()).scalars())

    def compact(self) -> None:
        """Give back the space of deleted rows (SQLite: VACUUM if pages are free, WAL truncated).

        Garbage collection calls it after removals; another database does its own.
        Best effort: a registry busy beyond the timeout is left as it is.
        """
        if not is_sqlite(self._url) or not self._url.database:
            return
        conn = sqlite3.connect(self._url.database, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            if conn.execute("PRAGMA freelist_count").fetchone()[0]:
                conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            pass  # busy: the space comes back at a later gc
        finally:
            conn.close()

    @reconnecting
    def count_datasets(self, dataset_type: str | None = None) -> int:
        """Return how many datasets there are (of one type, if given).

        Raises
        ------
        MissingDatasetTypeError
            If ``dataset_type`` is given and not registered.
        """
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["dataset"]
            query = sa.select(sa.func.count()).select_from(table)
            if dataset_type is not None:
                query = query.where(table.c.dataset_type_id == self._type(conn, dataset_type).id)
            return int(conn.execute(query).scalar_one())
