"""The built-in combiners: SourceCatalog (aggregates, joins) and Exposure (VisitExposure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from astropy import units as u
from astropy.table import Column, Table

from .. import objects
from ..errors import CombineError, DefinitionError, InvalidParameterError
from ._combine import Combiner, Member, shared_component

__all__ = ["ExposureCombiner", "SourceCatalogCombiner"]

#: Table metadata keys that every member of a catalog aggregate must agree on:
#: a visit's catalogs share one band; a conflict is an error, never dropped.
SHARED_META_KEYS = ("band", "filter", "physical_filter", "visit", "tract")


def _check_shared_meta(members: Sequence[Member], metas: Sequence[Mapping[str, Any]]) -> None:
    for key in SHARED_META_KEYS:
        seen: list[tuple[Member, Any]] = [(m, meta[key]) for m, meta in zip(members, metas)
                                          if key in meta]
        for m, value in seen[1:]:
            if value != seen[0][1]:
                raise CombineError(
                    f"metadata {key!r} must be the same for every member, but "
                    f"{seen[0][0].describe()} has {seen[0][1]!r} and {m.describe()} has {value!r}"
                )


class SourceCatalogCombiner(Combiner):
    """Catalogs: row-wise aggregates and column-wise joins.

    An aggregate stacks the members' rows in data ID order and adds one column
    per aggregated dimension (``detector``) saying which member each row came
    from (unless the members have such a column already). Each member keeps
    its own Wcs and Calib (`SourceCatalog.members`), so ``calibrated_flux``
    calibrates every row with its own member's Calib. Table metadata that all
    members must share (:data:`SHARED_META_KEYS`) is checked; other keys are
    merged where every member agrees.

    A join puts the members' columns side by side, matching rows by the key
    column: rows come in the first member's order; every member must hold
    each key once. A column name (other than the key) held by several members
    is prefixed by its member's dataset type (``deepCoadd_meas_flux``).
    """

    storage_class = "SourceCatalog"
    parameters = frozenset({"columns"})

    def check_aggregate(self, over: Sequence[str]) -> None:
        return None

    def check_join(self) -> None:
        return None

    # -- aggregates -------------------------------------------------------------
    def aggregate(self, members: Sequence[Member], parameters: Mapping[str, Any]) -> Any:
        params = self.check_parameters(parameters)
        columns = params.get("columns")
        read_params = {"columns": columns} if columns is not None else None
        catalogs = [m.read(parameters=read_params) for m in members]
        _check_shared_meta(members, [c.table.meta for c in catalogs])
        united = objects.SourceCatalog.concatenate(catalogs, keys=[dict(m.key) for m in members])
        table = united.table
        lengths = [len(c) for c in catalogs]
        for name in members[0].key:
            if name not in table.colnames:  # which member each row came from
                values = [m.key[name] for m in members]
                dtype = None if any(isinstance(v, str) for v in values) else np.int64
                table.add_column(Column(np.repeat(np.asarray(values, dtype=dtype), lengths),
                                        name=name))
        return united

    def aggregate_component(
        self, members: Sequence[Member], component: str, parameters: Mapping[str, Any]
    ) -> Any:
        if component == "table":
            return self.aggregate(members, parameters).table
        return shared_component(members, component)

    # -- joins ------------------------------------------------------------------
    def join(self, members: Sequence[Member], on: str, parameters: Mapping[str, Any]) -> Any:
        params = self.check_parameters(parameters)
        names = [tuple(m.read(component="columns")) for m in members]
        for m, cols in zip(members, names):
            if on not in cols:
                raise CombineError(
                    f"{m.describe()} has no key column {on!r} to join on; its columns: "
                    f"{', '.join(cols)}"
                )
        counts: dict[str, int] = {}
        for cols in names:
            for c in cols:
                counts[c] = counts.get(c, 0) + 1
        # (member index, source column, output name), in member order
        plan = [
            (i, c, f"{m.dataset_type}_{c}" if counts[c] > 1 else c)
            for i, (m, cols) in enumerate(zip(members, names))
            for c in cols
            if c != on
        ]
        wanted = params.get("columns")
        if wanted is not None:
            if isinstance(wanted, str) or not isinstance(wanted, Sequence):
                raise InvalidParameterError(
                    f"read parameter 'columns' must be a list of column names, got {wanted!r}"
                )
            by_name = {out: (i, c, out) for i, c, out in plan}
            missing = [w for w in wanted if w != on and w not in by_name]
            if missing:
                raise InvalidParameterError(
                    f"no column(s) {', '.join(map(repr, missing))} in this join; its columns: "
                    f"{on}, {', '.join(by_name)}"
                )
            plan = [by_name[w] for w in wanted if w != on]
        needed = sorted({i for i, _, _ in plan}) or [0]
        read = {
            i: members[i].read(parameters={"columns": [on, *[c for j, c, _ in plan if j == i]]})
            for i in needed
        }
        first = needed[0]
        keys = np.asarray(read[first].table[on])
        order = {i: self._align(members[first], keys, members[i], np.asarray(read[i].table[on]))
                 for i in needed}
        columns = [Column(read[first].table[on], name=on, copy=False)] if wanted is None else []
        for i, c, out in plan:
            source = read[i].table[c]
            taken = source if order[i] is None else source[order[i]]
            columns.append(taken.__class__(taken, name=out, copy=False))
        if wanted is not None and on in wanted:
            position = list(wanted).index(on)
            columns.insert(position, Column(read[first].table[on], name=on, copy=False))
        table = Table(columns, copy=False)
        opened = [read[i] for i in needed]
        wcs = _same([c.wcs for c in opened])
        calib = _same([c.calib for c in opened])
        return objects.SourceCatalog(table, wcs, calib)

    @staticmethod
    def _align(
        first: Member, keys: np.ndarray, member: Member, other: np.ndarray
    ) -> np.ndarray | None:
        """Indices putting ``other``'s rows in ``keys``' order (None: already are).

        Raises
        ------
        CombineError
            Naming the member and the first row whose key the other lacks.
        """
        if len(other) == len(keys) and np.array_equal(other, keys):
            return None
        sorter = np.argsort(other, kind="stable")
        ordered = other[sorter]
        if len(ordered) > 1 and np.any(ordered[1:] == ordered[:-1]):
            dup = ordered[1:][ordered[1:] == ordered[:-1]][0]
            raise CombineError(f"{member.describe()} holds key {dup!r} more than once")
        pos = np.clip(np.searchsorted(ordered, keys), 0, max(len(ordered) - 1, 0))
        found = ordered[pos] == keys if len(ordered) else np.zeros(len(keys), bool)
        if not np.all(found) or len(other) != len(keys):
            if not np.all(found):
                row = int(np.argmin(found))
                raise CombineError(
                    f"the join's rows do not align: row {row} of {first.describe()} has key "
                    f"{keys[row]!r}, which {member.describe()} lacks"
                )
            raise CombineError(
                f"the join's rows do not align: {member.describe()} has {len(other)} rows, "
                f"{first.describe()} has {len(keys)}"
            )
        return sorter[pos]


def _same(values: Sequence[Any]) -> Any:
    first = values[0]
    if first is None or any(v is not first and v != first for v in values[1:]):
        return None
    return first


class ExposureCombiner(Combiner):
    """Exposures over ``detector``: a `VisitExposure` whose pixels load on first access.

    Opening reads each member's VisitInfo and metadata documents (no pixels);
    the VisitInfo must be the same for every detector (the same digest, so the
    very same object). Components: ``visit_info`` (the shared one),
    ``metadata`` (what every detector agrees on), ``summary`` (a per-detector
    table built from small components), and any Exposure component as a dict
    detector -> value. Read parameter ``detectors`` restricts the members.
    """

    storage_class = "Exposure"
    parameters = frozenset({"detectors"})

    def check_aggregate(self, over: Sequence[str]) -> None:
        if tuple(over) != ("detector",):
            raise DefinitionError(
                f"an Exposure aggregate is a VisitExposure, over ('detector',); got {tuple(over)}"
            )

    def _members(self, members: Sequence[Member], params: Mapping[str, Any]) -> list[Member]:
        detectors = params.get("detectors")
        if detectors is None:
            return list(members)
        if isinstance(detectors, (str, bytes)) or not isinstance(detectors, Sequence):
            raise InvalidParameterError(
                f"read parameter 'detectors' must be a list of detector numbers, got {detectors!r}"
            )
        by_detector = {m.key["detector"]: m for m in members}
        missing = [d for d in detectors if d not in by_detector]
        if missing:
            raise InvalidParameterError(
                f"no detector(s) {missing} in this visit; it has {sorted(by_detector)}"
            )
        return [by_detector[d] for d in detectors]

    def aggregate(self, members: Sequence[Member], parameters: Mapping[str, Any]) -> Any:
        chosen = self._members(members, self.check_parameters(parameters))
        return objects.VisitExposure(
            {m.key["detector"]: _loader(m) for m in chosen},
            visit_info=shared_component(chosen, "visit_info"),
            metadata=_agreed_metadata(chosen),
            visit=chosen[0].data_id.get("visit"),
        )

    def aggregate_component(
        self, members: Sequence[Member], component: str, parameters: Mapping[str, Any]
    ) -> Any:
        chosen = self._members(members, self.check_parameters(parameters))
        if component == "visit_info":
            return shared_component(chosen, component)
        if component == "metadata":
            return _agreed_metadata(chosen)
        if component == "summary":
            return _summary(chosen)
        return {m.key["detector"]: m.read(component=component) for m in chosen}


def _loader(member: Member) -> Callable[[], Any]:
    """A function that loads the whole member (late binding would take the last one)."""
    return lambda: member.read()


def _agreed_metadata(members: Sequence[Member]) -> dict[str, Any]:
    metas = [dict(m.read(component="metadata") or {}) for m in members]
    first = metas[0]
    return {k: v for k, v in first.items() if all(k in m and m[k] == v for m in metas[1:])}


def _summary(members: Sequence[Member]) -> Table:
    """Per detector: bbox, corners and centre on the sky, zero point, Psf size; no pixels."""
    n = len(members)
    detector = np.empty(n, np.int64)
    width, height = np.empty(n, np.int64), np.empty(n, np.int64)
    ra_c, dec_c = np.full(n, np.nan), np.full(n, np.nan)
    ra_k, dec_k = np.full((n, 4), np.nan), np.full((n, 4), np.nan)
    zero_point, psf_sigma = np.full(n, np.nan), np.full(n, np.nan)
    for i, m in enumerate(members):
        detector[i] = m.key["detector"]
        box = m.read(component="bbox")
        (x0, y0), (w, h) = box.min, box.dimensions
        width[i], height[i] = w, h
        wcs = m.read(component="wcs")
        if wcs is not None:
            xs = np.array([x0 + (w - 1) / 2, x0 - 0.5, x0 + w - 0.5, x0 + w - 0.5, x0 - 0.5])
            ys = np.array([y0 + (h - 1) / 2, y0 - 0.5, y0 - 0.5, y0 + h - 0.5, y0 + h - 0.5])
            ra, dec = wcs.pixel_to_sky(xs, ys)
            ra_c[i], dec_c[i], ra_k[i], dec_k[i] = ra[0], dec[0], ra[1:], dec[1:]
        calib = m.read(component="calib")
        if calib is not None:
            zero_point[i] = calib.zero_point
        psf = m.read(component="psf")
        if psf is not None:
            psf_sigma[i] = psf.sigma
    return Table(
        {
            "detector": detector,
            "width": width,
            "height": height,
            "ra": ra_c * u.deg,
            "dec": dec_c * u.deg,
            "ra_corners": ra_k * u.deg,
            "dec_corners": dec_k * u.deg,
            "zero_point": zero_point * u.mag,
            "psf_sigma": psf_sigma * u.pix,
        },
        meta={"visit": members[0].data_id.get("visit")} if members else {},
    )
