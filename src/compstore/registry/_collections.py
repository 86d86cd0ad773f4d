"""Collections: RUN, TAGGED and CHAINED, chains and search paths."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import sqlalchemy as sa

from compstore.errors import (
    CollectionError,
    CollectionTypeError,
    InvalidNameError,
    MissingCollectionError,
    RegistryError,
)

from ._bulk import insert_unless_raced
from ._common import (
    CollectionArg,
    _listing,
)
from ._connections import reconnecting
from ._dataset_types import _DatasetTypes
from ._types import (
    CollectionType,
    validate_collection_name,
)


class _Collections(_DatasetTypes):
    """Registry methods for collections."""

    # -- collections -----------------------------------------------------------------
    def _lookup_collection(
        self, conn: sa.Connection, name: str
    ) -> tuple[int, CollectionType] | None:
        hit = self._collections.get(name)
        if hit is not None:
            return hit
        table = self._t["collection"]
        row = conn.execute(
            sa.select(table.c.id, table.c.type).where(table.c.name == name)
        ).first()
        if row is None:
            return None
        # A collection's type never changes and collections are never renamed.
        hit = (row.id, CollectionType(row.type))
        with self._lock:
            self._collections[name] = hit
            self._collection_names[row.id] = name
        return hit

    def _collection(self, conn: sa.Connection, name: str) -> tuple[int, CollectionType]:
        if not isinstance(name, str):
            raise InvalidNameError(f"a collection name is a string, got {name!r}")
        self._refresh(conn)
        hit = self._lookup_collection(conn, name)
        if hit is None:
            table = self._t["collection"]
            known = conn.execute(sa.select(table.c.name).order_by(table.c.name)).scalars()
            raise MissingCollectionError(
                f"collection {name!r} does not exist; known collections: {_listing(known)}"
            )
        return hit

    def _collection_name(self, conn: sa.Connection, collection_id: int) -> str:
        name = self._collection_names.get(collection_id)
        if name is None:
            table = self._t["collection"]
            name = conn.execute(
                sa.select(table.c.name).where(table.c.id == collection_id)
            ).scalar_one()
            self._lookup_collection(conn, name)
        return name

    def register_collection(self, name: str, collection_type: CollectionType) -> bool:
        """Create a collection of the given type, if it does not exist yet.

        Parameters
        ----------
        name : `str`
            Collection name: letters, digits, ``/``, ``-``, ``.``, ``_``.
        collection_type : `CollectionType`
            RUN, CHAINED or TAGGED.

        Returns
        -------
        created : `bool`
            True if the collection was created, False if it existed already.

        Raises
        ------
        InvalidNameError
            If the name is malformed.
        CollectionTypeError
            If it exists with another type.
        """
        validate_collection_name(name)
        collection_type = CollectionType(collection_type)
        with self._write() as conn:
            self._refresh(conn)
            for _attempt in range(2):
                hit = self._lookup_collection(conn, name)
                if hit is not None:
                    if hit[1] is not collection_type:
                        raise CollectionTypeError(
                            f"collection {name!r} exists already as {hit[1].name}, "
                            f"not {collection_type.name}"
                        )
                    return False
                insert = self._t["collection"].insert().values(
                    name=name, type=collection_type.value
                )
                if insert_unless_raced(conn, self._local, insert):
                    self._bump_catalog(conn)
                    return True
                # Another writer made it since the lookup: answer as if it had been there.
            raise RegistryError(f"collection {name!r} could not be registered nor found")

    def register_run(self, name: str) -> bool:
        """Create a RUN collection if it does not exist yet.

        Returns
        -------
        created : `bool`
            True if the collection was created.

        Raises
        ------
        InvalidNameError
            If the name is malformed.
        CollectionTypeError
            If ``name`` exists as a CHAINED or TAGGED collection.
        """
        return self.register_collection(name, CollectionType.RUN)

    @reconnecting
    def collection_type(self, name: str) -> CollectionType:
        """Return the type of collection ``name``.

        Raises
        ------
        MissingCollectionError
            If there is no such collection.
        """
        with self._read() as conn:
            return self._collection(conn, name)[1]

    @reconnecting
    def query_collections(
        self,
        pattern: str | re.Pattern[str] | None = None,
        collection_type: CollectionType | None = None,
    ) -> list[str]:
        """Return the names of collections, sorted.

        Parameters
        ----------
        pattern : `str` or `re.Pattern`, optional
            A glob (``u/alice/*``) or a compiled regular expression that must
            match the whole name; `None` for all.
        collection_type : `CollectionType`, optional
            Only collections of this type.

        Returns
        -------
        names : `list` [`str`]
            Matching collection names.
        """
        with self._read() as conn:
            self._refresh(conn)
            table = self._t["collection"]
            query = sa.select(table.c.name, table.c.type).order_by(table.c.name)
            if collection_type is not None:
                query = query.where(table.c.type == CollectionType(collection_type).value)
            names = [row.name for row in conn.execute(query)]
        if pattern is None:
            return names
        if isinstance(pattern, re.Pattern):
            return [n for n in names if pattern.fullmatch(n)]
        return [n for n in names if fnmatch.fnmatchcase(n, pattern)]

    def _children(self, conn: sa.Connection, parent_id: int) -> list[int]:
        chain = self._t["collection_chain"]
        return list(
            conn.execute(
                sa.select(chain.c.child_id)
                .where(chain.c.parent_id == parent_id)
                .order_by(chain.c.position)
            ).scalars()
        )

    def set_chain(self, name: str, children: Sequence[str]) -> None:
        """Set the ordered search path of CHAINED collection ``name``.

        Parameters
        ----------
        name : `str`
            An existing CHAINED collection.
        children : sequence of `str`
            Existing collections, searched in this order.

        Raises
        ------
        MissingCollectionError
            If ``name`` or a child does not exist.
        CollectionTypeError
            If ``name`` is not CHAINED.
        CollectionError
            If the chain would contain itself (a cycle); the message shows the cycle.
        """
        if isinstance(children, str):
            children = [children]
        with self._write() as conn:
            parent_id, parent_type = self._collection(conn, name)
            if parent_type is not CollectionType.CHAINED:
                raise CollectionTypeError(
                    f"collection {name!r} is {parent_type.name}, not CHAINED: it has no chain"
                )
            child_ids = [self._collection(conn, c)[0] for c in children]
            for child, child_id in zip(children, child_ids):
                path = self._path_to(conn, child_id, parent_id)
                if path is not None:
                    cycle = " -> ".join(
                        [name, child, *(self._collection_name(conn, i) for i in path[1:])]
                    )
                    raise CollectionError(
                        f"cannot chain {child!r} into {name!r}: it would make a cycle "
                        f"({cycle})"
                    )
            chain = self._t["collection_chain"]
            conn.execute(sa.delete(chain).where(chain.c.parent_id == parent_id))
            self._bump_catalog(conn)
            if child_ids:
                conn.execute(
                    chain.insert(),
                    [
                        {"parent_id": parent_id, "position": i, "child_id": c}
                        for i, c in enumerate(child_ids)
                    ],
                )

    def remove_run(self, name: str) -> list[str]:
        """Remove the empty RUN collection ``name``, and take it out of every chain.

        The caller removes the run's datasets first (`compstore.Butler.remove_run`
        does both in one transaction). A chain that contained the run keeps its
        other children, in order.

        Returns
        -------
        chains : `list` of `str`
            The CHAINED collections the run was taken out of, sorted.

        Raises
        ------
        MissingCollectionError
            If ``name`` does not exist.
        CollectionTypeError
            If ``name`` is not a RUN collection.
        CollectionError
            If the run still holds datasets.
        """
        with self._write() as conn:
            run_id, run_type = self._collection(conn, name)
            if run_type is not CollectionType.RUN:
                raise CollectionTypeError(
                    f"collection {name!r} is {run_type.name}, not RUN: remove_run removes "
                    "RUN collections only"
                )
            t = self._t
            left = conn.execute(
                sa.select(sa.func.count()).select_from(t["dataset"]).where(t["dataset"].c.run_id == run_id)
            ).scalar_one()
            if left:
                raise CollectionError(
                    f"RUN collection {name!r} still holds {left} dataset(s); remove them first"
                )
            chain = t["collection_chain"]
            parents = sorted(
                set(conn.execute(sa.select(chain.c.parent_id).where(chain.c.child_id == run_id)).scalars())
            )
            chains = []
            for parent_id in parents:
                kept = [c for c in self._children(conn, parent_id) if c != run_id]
                conn.execute(sa.delete(chain).where(chain.c.parent_id == parent_id))
                if kept:
                    conn.execute(
                        chain.insert(),
                        [{"parent_id": parent_id, "position": i, "child_id": c} for i, c in enumerate(kept)],
                    )
                chains.append(self._collection_name(conn, parent_id))
            conn.execute(sa.delete(t["collection"]).where(t["collection"].c.id == run_id))
            self._bump_catalog(conn)
            with self._lock:  # this process's caches; others see the catalog version change
                self._collections.pop(name, None)
                self._collection_names.pop(run_id, None)
                self._fast_paths.clear()
        return sorted(chains)

    def _path_to(self, conn: sa.Connection, start: int, target: int) -> list[int] | None:
        """Return a chain path of collection IDs from ``start`` to ``target``, if any."""
        stack: list[tuple[int, list[int]]] = [(start, [start])]
        seen: set[int] = set()
        while stack:
            node, path = stack.pop()
            if node == target:
                return path
            if node in seen:
                continue
            seen.add(node)
            for child in self._children(conn, node):
                stack.append((child, [*path, child]))
        return None

    @reconnecting
    def get_chain(self, name: str) -> tuple[str, ...]:
        """Return the children of CHAINED collection ``name``, in search order.

        Raises
        ------
        MissingCollectionError
            If there is no such collection.
        CollectionTypeError
            If it is not CHAINED.
        """
        with self._read() as conn:
            collection_id, collection_type = self._collection(conn, name)
            if collection_type is not CollectionType.CHAINED:
                raise CollectionTypeError(f"collection {name!r} is {collection_type.name}, not CHAINED")
            return tuple(self._collection_name(conn, c) for c in self._children(conn, collection_id))

    def _flatten(
        self, conn: sa.Connection, collections: CollectionArg
    ) -> list[tuple[int, CollectionType]]:
        if isinstance(collections, str):
            collections = [collections]
        out: list[tuple[int, CollectionType]] = []
        seen: set[int] = set()

        def visit(collection_id: int, collection_type: CollectionType) -> None:
            if collection_id in seen:
                return
            seen.add(collection_id)
            if collection_type is CollectionType.CHAINED:
                for child in self._children(conn, collection_id):
                    visit(*self._collection(conn, self._collection_name(conn, child)))
            else:
                out.append((collection_id, collection_type))

        for name in collections:
            visit(*self._collection(conn, name))
        return out

    @reconnecting
    def flatten_collections(self, collections: CollectionArg) -> list[str]:
        """Return the RUN and TAGGED collections searched for ``collections``, in order.

        Chains are expanded depth first; a collection reached twice is searched
        at its first place only.

        Raises
        ------
        MissingCollectionError
            If a collection does not exist.
        """
        with self._read() as conn:
            return [self._collection_name(conn, i) for i, _ in self._flatten(conn, collections)]

    def _tagged(self, conn: sa.Connection, name: str) -> int:
        collection_id, collection_type = self._collection(conn, name)
        if collection_type is not CollectionType.TAGGED:
            raise CollectionTypeError(
                f"collection {name!r} is {collection_type.name}, not TAGGED: datasets are "
                "associated only with TAGGED collections"
            )
        return collection_id
