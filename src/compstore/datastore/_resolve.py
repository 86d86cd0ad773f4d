"""Dataset resolution: what the datastore asks of the registry above it, as a named Protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["DatasetResolver"]


class DatasetResolver(Protocol):
    """Finds other datasets for the datastore: precursor references and their targets.

    The Butler implements it over its registry; the datastore never imports
    the registry or the Butler.
    """

    def manifest_of(self, dataset_id: str) -> str:
        """The manifest digest of dataset ``dataset_id`` (a UUID string).

        Raises
        ------
        DatasetNotFoundError
            If no dataset has this ID.
        """
        ...

    def find_target(
        self, dataset_type: str, data_id: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """``(UUID, manifest digest)`` of the dataset a `DatasetReference` names, or None."""
        ...
