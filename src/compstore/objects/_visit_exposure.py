"""VisitExposure: every detector of one visit, pixels loaded on first use, one VisitInfo."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from compstore.errors import ObjectError

from ._image import Exposure
from ._visit import VisitInfo

__all__ = ["VisitExposure"]

ExposureSource = Exposure | Callable[[], Exposure]


class VisitExposure(Mapping[int, Exposure]):
    """The Exposures of one visit's detectors, with the VisitInfo they share.

    A read-only mapping detector -> `Exposure`. An entry may be given as an
    Exposure or as a function that loads it: it is then loaded on first access
    (once, even across threads) and kept, so opening a whole-focal-plane visit
    reads no pixels until a detector is asked for.

    Parameters
    ----------
    exposures : mapping of int to Exposure or callable
        Detector number -> its Exposure, or a function returning it.
    visit_info : VisitInfo, optional
        The visit's VisitInfo, shared by every detector (each loaded Exposure's
        own ``visit_info``, if any, must equal it).
    metadata : mapping, optional
        Visit-level metadata (the values every detector agrees on).
    visit : int or str, optional
        The visit's ID, for messages and ``repr``.

    Raises
    ------
    ObjectError
        If a detector is not an int, a value is neither an Exposure nor
        callable, or ``visit_info`` is not a VisitInfo.
    """

    __slots__ = ("_sources", "_loaded", "_lock", "_visit_info", "_metadata", "_visit",
                 "__weakref__")

    def __init__(
        self,
        exposures: Mapping[int, ExposureSource],
        *,
        visit_info: VisitInfo | None = None,
        metadata: Mapping[str, Any] | None = None,
        visit: int | str | None = None,
    ) -> None:
        sources: dict[int, ExposureSource] = {}
        for detector, source in sorted(dict(exposures).items()):
            if not isinstance(detector, int) or isinstance(detector, bool):
                raise ObjectError(f"VisitExposure detectors are ints, got {detector!r}")
            if not (isinstance(source, Exposure) or callable(source)):
                raise ObjectError(
                    f"detector {detector}: expected an Exposure or a function loading one, "
                    f"got {type(source).__name__}"
                )
            sources[detector] = source
        if visit_info is not None and not isinstance(visit_info, VisitInfo):
            raise ObjectError(f"visit_info must be a VisitInfo, got {type(visit_info).__name__}")
        self._sources = sources
        self._loaded: dict[int, Exposure] = {
            d: s for d, s in sources.items() if isinstance(s, Exposure)
        }
        self._lock = threading.Lock()
        self._visit_info = visit_info
        self._metadata = MappingProxyType(dict(metadata or {}))
        self._visit = visit

    # -- the mapping ----------------------------------------------------------
    def __getitem__(self, detector: int) -> Exposure:
        """The Exposure of ``detector``, loaded now if it was not yet.

        Raises
        ------
        KeyError
            If the visit has no such detector.
        ObjectError
            If the loaded object is not an Exposure or its VisitInfo differs
            from the visit's.
        """
        exposure = self._loaded.get(detector)
        if exposure is not None:
            return exposure
        source = self._sources[detector]
        with self._lock:
            exposure = self._loaded.get(detector)
            if exposure is None:
                exposure = source() if callable(source) else source
                self._check(detector, exposure)
                self._loaded[detector] = exposure
        return exposure

    def _check(self, detector: int, exposure: Any) -> None:
        if not isinstance(exposure, Exposure):
            raise ObjectError(f"detector {detector} loaded a {type(exposure).__name__}, not an Exposure")
        own = exposure.visit_info
        if self._visit_info is not None and own is not None and own != self._visit_info:
            raise ObjectError(
                f"detector {detector} has another VisitInfo than visit {self._visit}'s"
            )

    def __iter__(self) -> Iterator[int]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def __contains__(self, detector: object) -> bool:
        return detector in self._sources

    # -- the visit ------------------------------------------------------------
    @property
    def detectors(self) -> tuple[int, ...]:
        """The detectors, in increasing order."""
        return tuple(self._sources)

    @property
    def loaded(self) -> tuple[int, ...]:
        """The detectors whose Exposure has been loaded so far."""
        return tuple(d for d in self._sources if d in self._loaded)

    @property
    def visit(self) -> int | str | None:
        """The visit's ID, if known."""
        return self._visit

    @property
    def visit_info(self) -> VisitInfo | None:
        """The one VisitInfo every detector shares."""
        return self._visit_info

    @property
    def metadata(self) -> Mapping[str, Any]:
        """Visit-level metadata (read-only)."""
        return self._metadata

    def restrict(self, detectors: Iterable[int]) -> VisitExposure:
        """The same visit with only ``detectors`` (loaded ones are shared, not reloaded).

        Raises
        ------
        ObjectError
            If a detector is not part of this visit.
        """
        wanted = list(detectors)
        missing = [d for d in wanted if d not in self._sources]
        if missing:
            raise ObjectError(f"visit {self._visit} has no detector(s) {missing}")
        return VisitExposure(
            {d: self._loaded.get(d) or self._sources[d] for d in wanted},
            visit_info=self._visit_info,
            metadata=self._metadata,
            visit=self._visit,
        )

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return (
            f"VisitExposure(visit={self._visit!r}, {len(self)} detectors, "
            f"{len(self._loaded)} loaded)"
        )
