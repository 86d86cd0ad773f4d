"""Combiners: how the members of a defined dataset type join into one object.

A defined dataset type (``src_visit``, ``objectTable``, ``calexp_visit``)
stores nothing; reading one finds its member datasets and hands them to the
combiner of the members' storage class. A combiner knows objects, not
storage: each member comes as a :class:`Member` whose ``read`` loads it (or
one component of it) on demand, so a combiner reads only what it needs.

Built in: ``SourceCatalog`` (row-wise aggregates with per-member Wcs and
Calib; column-wise joins on a key) and ``Exposure`` (aggregates over
``detector`` into a `VisitExposure` with lazily loaded pixels). A third
party adds one by subclassing :class:`Combiner` and registering it, in
code (:func:`register_combiner`) or through the ``compstore.combiners``
entry-point group (the entry point's name is the member storage class).
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .._plugins import Plugins, instance_check
from ..errors import CombineError, DefinitionError, StorageClassError

__all__ = [
    "COMBINER_ENTRY_POINT_GROUP",
    "Combiner",
    "Member",
    "get_combiner",
    "register_combiner",
]

COMBINER_ENTRY_POINT_GROUP = "compstore.combiners"


@dataclass(frozen=True)
class Member:
    """One member dataset of a defined dataset type, read on demand.

    Attributes
    ----------
    dataset_type : str
        The member's dataset type.
    data_id : mapping
        Its full data ID.
    key : mapping
        Its values over the aggregated dimensions (``{"detector": 3}``); empty
        for a join.
    read : callable
        ``read(component=None, parameters=None)``: the member (through the
        identity cache: the very object ``Butler.get`` returns), or one of
        its components alone.
    """

    dataset_type: str
    data_id: Mapping[str, Any]
    key: Mapping[str, Any]
    read: Callable[..., Any]

    def describe(self) -> str:
        """``src@{visit: 1, detector: 3}``, for messages."""
        items = ", ".join(f"{k}: {v}" for k, v in self.data_id.items())
        return f"{self.dataset_type}@{{{items}}}"


class Combiner(ABC):
    """Combines the members of aggregates and joins whose members have one storage class.

    Subclasses set :attr:`storage_class` and override what they support;
    the defaults refuse with a `DefinitionError` (checked when a definition is
    registered, so an unsupported combination never reaches a read).
    """

    #: The storage class of the members this combiner combines.
    storage_class: ClassVar[str]
    #: Read parameters the combined read takes (besides ``where``, which the
    #: Butler applies to choose members).
    parameters: ClassVar[frozenset[str]] = frozenset()

    def check_aggregate(self, over: Sequence[str]) -> None:
        """Refuse an aggregate over ``over`` this combiner cannot build.

        Raises
        ------
        DefinitionError
            If aggregates are not supported (the default) or not over ``over``.
        """
        raise DefinitionError(
            f"storage class {self.storage_class!r} has no row-wise aggregate; "
            "register a Combiner for it (see docs/concepts.md)"
        )

    def check_join(self) -> None:
        """Refuse a join this combiner cannot build.

        Raises
        ------
        DefinitionError
            If joins are not supported (the default).
        """
        raise DefinitionError(
            f"storage class {self.storage_class!r} has no column-wise join; "
            "register a Combiner for it (see docs/concepts.md)"
        )

    def aggregate(self, members: Sequence[Member], parameters: Mapping[str, Any]) -> Any:
        """The object uniting ``members`` (in data ID order).

        Raises
        ------
        DefinitionError
            If this combiner builds no aggregates (override it with `check_aggregate`).
        """
        raise DefinitionError(f"the {self.storage_class!r} combiner builds no aggregates")

    def aggregate_component(
        self, members: Sequence[Member], component: str, parameters: Mapping[str, Any]
    ) -> Any:
        """One component of the aggregate: by default the members' shared value.

        Raises
        ------
        CombineError
            If the members' values differ (naming two that differ).
        """
        return shared_component(members, component)

    def join(self, members: Sequence[Member], on: str, parameters: Mapping[str, Any]) -> Any:
        """The object joining ``members`` column-wise on key column ``on``.

        Raises
        ------
        DefinitionError
            If this combiner builds no joins (override it with `check_join`).
        """
        raise DefinitionError(f"the {self.storage_class!r} combiner builds no joins")

    def check_parameters(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """``parameters`` as a dict, refusing names this combiner does not take.

        Raises
        ------
        DefinitionError
            Naming the parameters not accepted and those that are.
        """
        unknown = sorted(set(parameters) - set(self.parameters))
        if unknown:
            raise DefinitionError(
                f"read parameter(s) {', '.join(unknown)} are not accepted here; "
                f"accepted: {', '.join(sorted(self.parameters | {'where'})) or 'none'}"
            )
        return dict(parameters)


def shared_component(members: Sequence[Member], component: str) -> Any:
    """The value of ``component`` every member shares (by value).

    Raises
    ------
    CombineError
        Naming the first two members whose values differ.
    """
    first = members[0].read(component=component)
    for m in members[1:]:
        value = m.read(component=component)
        if value is not first and value != first:
            raise CombineError(
                f"{component!r} differs between {members[0].describe()} and {m.describe()}; "
                f"read it per member (get the members' {component!r} one by one)"
            )
    return first


# -- the registry of combiners --------------------------------------------------
def _builtin_combiners() -> dict[str, Combiner]:
    from ._combine_builtin import ExposureCombiner, SourceCatalogCombiner

    return {c.storage_class: c for c in (SourceCatalogCombiner(), ExposureCombiner())}


_combiners: Plugins[Combiner] = Plugins(
    COMBINER_ENTRY_POINT_GROUP,
    "combiner",
    StorageClassError,
    builtins=_builtin_combiners,
    accept=instance_check(
        Combiner, lambda c: c.storage_class, COMBINER_ENTRY_POINT_GROUP, StorageClassError
    ),
    describe=lambda c: type(c).__qualname__,
    same=lambda old, new: type(old) is type(new),
)


def register_combiner(combiner: Combiner, *, replace: bool = False) -> None:
    """Make ``combiner`` the one for its storage class in this process.

    Raises
    ------
    StorageClassError
        If another combiner has that storage class and ``replace`` is false.
    """
    _combiners.register(combiner.storage_class, combiner, replace=replace)


def get_combiner(storage_class: str) -> Combiner:
    """The combiner for members of ``storage_class``.

    Raises
    ------
    DefinitionError
        If none is registered for it.
    """
    combiner = _combiners.get(storage_class)
    if combiner is None:
        raise DefinitionError(
            f"no combiner knows how to combine {storage_class!r} datasets; "
            f"known: {', '.join(_combiners.names())}. Register one (see docs/concepts.md)"
        )
    return combiner
