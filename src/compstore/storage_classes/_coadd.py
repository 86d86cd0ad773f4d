"""CoaddInputs: a coadd's precursors, stored as references to the input datasets (use case 7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .. import objects
from ._base import ComponentReader, CompositeStorageClass, DatasetReference, Disassembly

__all__ = ["CoaddInputsStorageClass"]

_KINDS = {"wcs": "Wcs", "psf": "Psf", "calib": "Calib"}


class CoaddInputsStorageClass(CompositeStorageClass):
    """Each input's Wcs, Psf and Calib are references to that input dataset's components.

    The manifest names every input by dataset type and data ID; when the input
    dataset is in the repository (and holds the same value), its component is
    stored as a reference to it: it costs no bytes and reads back as the very
    object the input exposure holds. Otherwise the value is stored itself.
    """

    name = "CoaddInputs"
    python_type = objects.CoaddInputs
    components: ClassVar[Mapping[str, str]] = {}

    def component_storage_class(self, name: str) -> str:
        kind, _, index = name.partition(":")
        if kind in _KINDS and index.isdigit():
            return _KINDS[kind]
        return super().component_storage_class(name)

    def disassemble(self, obj: Any) -> Disassembly:
        self.check_type(obj)
        components: dict[str, tuple[str, Any]] = {}
        described = []
        for i, item in enumerate(obj):
            described.append(
                {"dataset_type": item.dataset_type, "data_id": dict(item.data_id), "weight": item.weight}
            )
            for kind, sc in _KINDS.items():
                value = getattr(item, kind)
                if value is not None:
                    components[f"{kind}:{i}"] = (
                        sc,
                        DatasetReference(item.dataset_type, dict(item.data_id), kind, value),
                    )
        return Disassembly(components=components, attributes={"inputs": described})

    def assemble(self, reader: ComponentReader, parameters: Mapping[str, Any]) -> Any:
        self.check_parameters(parameters)
        inputs = []
        for i, item in enumerate(reader.attributes["inputs"]):
            values = {
                kind: reader.get(f"{kind}:{i}") if reader.has(f"{kind}:{i}") else None for kind in _KINDS
            }
            inputs.append(
                objects.CoaddInput(item["dataset_type"], item["data_id"], weight=item["weight"], **values)
            )
        return objects.CoaddInputs(inputs)
