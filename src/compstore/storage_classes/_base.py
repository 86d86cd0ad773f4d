"""The storage-class protocol: how one Python type splits into components and joins back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ..errors import InvalidParameterError, StorageClassTypeError, UnknownComponentError

__all__ = [
    "ArrayStorageClass",
    "DatasetReference",
    "ComponentReader",
    "CompositeStorageClass",
    "Disassembly",
    "DocumentStorageClass",
    "StorageClass",
]


@dataclass(frozen=True)
class Disassembly:
    """What a composite storage class splits an object into.

    Attributes
    ----------
    components
        Component name -> ``(storage class name, value)``. A value of ``None``
        means the component is absent and is not stored.
    attributes
        Small plain-JSON values kept inline in the manifest (an origin, a band).
    """

    components: Mapping[str, tuple[str, Any]]
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetReference:
    """A component value that may be stored as a reference to another dataset's component.

    A disassembler returns one for a precursor component (a coadd input's
    Wcs): the writer stores a reference to component ``component`` of the
    dataset ``dataset_type`` + ``data_id`` when that dataset exists and holds
    the same value, and ``value`` itself otherwise.
    """

    dataset_type: str
    data_id: Mapping[str, Any]
    component: str
    value: Any


class ComponentReader(Protocol):
    """What :meth:`CompositeStorageClass.assemble` reads components through.

    Only the components asked for are read; full reads go through the identity
    cache, region reads do not.
    """

    @property
    def attributes(self) -> Mapping[str, Any]: ...

    def has(self, name: str) -> bool: ...

    def get(
        self, name: str, parameters: Mapping[str, Any] | None = None, *, cache: bool = True
    ) -> Any:
        """Read component ``name``; ``cache=False`` for values the assembler consumes."""
        ...

    def get_component(self, name: str, component: str) -> Any:
        """Read ``component`` of the nested composite ``name`` (not the whole of it)."""
        ...


class StorageClass(ABC):
    """Base of every storage class: a name, a Python type and its read parameters."""

    name: ClassVar[str]
    python_type: ClassVar[type | tuple[type, ...]]
    #: Read parameters this storage class accepts.
    parameters: ClassVar[frozenset[str]] = frozenset()

    def check_type(self, obj: Any) -> None:
        """Raise `StorageClassTypeError` if ``obj`` is not of this storage class's type."""
        if not isinstance(obj, self.python_type):
            expected = (
                self.python_type.__name__
                if isinstance(self.python_type, type)
                else " or ".join(t.__name__ for t in self.python_type)
            )
            raise StorageClassTypeError(
                f"storage class {self.name!r} stores {expected} objects, "
                f"got {type(obj).__module__}.{type(obj).__qualname__}; "
                "put an object of the dataset type's storage class or register another dataset type"
            )

    def check_parameters(self, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
        """Return ``parameters`` as a dict, raising on names this class does not accept."""
        params = dict(parameters or {})
        unknown = sorted(set(params) - self.parameters)
        if unknown:
            allowed = ", ".join(sorted(self.parameters)) or "none"
            raise InvalidParameterError(
                f"storage class {self.name!r} does not accept read parameter(s) "
                f"{', '.join(unknown)}; it accepts: {allowed}"
            )
        return params


class ArrayStorageClass(StorageClass):
    """A numpy array stored as one zarr array; reads a sub-region with ``region``."""

    name = "Array"
    parameters = frozenset({"region"})

    @property
    def python_type(self) -> type:  # type: ignore[override]
        import numpy as np

        return np.ndarray


class DocumentStorageClass(StorageClass):
    """A leaf value stored as one canonical JSON document (never pickle)."""

    @abstractmethod
    def to_json(self, obj: Any) -> Any:
        """Return the canonical plain-JSON value of ``obj``."""

    @abstractmethod
    def from_json(self, value: Any) -> Any:
        """Rebuild the object from :meth:`to_json`'s value."""

    def to_json_exact(self, obj: Any) -> Any:
        """The value written where JSON numbers do not say int or float (format 3).

        RFC 8785 writes ``30.0`` as ``30`` and ``-0.0`` as ``0``, so a value
        read back may come back as another type. A storage class whose values
        have a fixed schema converts them in :meth:`from_json` and needs nothing
        here; one holding free-form values (`Metadata`) overrides this to mark
        such floats, and its :meth:`from_json` reads both forms.
        """
        return self.to_json(obj)


class CompositeStorageClass(StorageClass):
    """A type stored as a manifest naming its components."""

    #: Component name -> storage class name of that component.
    components: ClassVar[Mapping[str, str]]
    #: Whether assembled objects are shared through the identity cache. Only
    #: types whose instances cannot be changed in place may be shared.
    cacheable: ClassVar[bool] = True

    @abstractmethod
    def disassemble(self, obj: Any) -> Disassembly:
        """Split ``obj`` into components and inline attributes."""

    @abstractmethod
    def assemble(self, reader: ComponentReader, parameters: Mapping[str, Any]) -> Any:
        """Join components read through ``reader`` into the object."""

    def component_storage_class(self, name: str) -> str:
        """Return the storage class name of component ``name``.

        Raises
        ------
        UnknownComponentError
            If this storage class has no such component.
        """
        try:
            return self.components[name]
        except KeyError:
            raise UnknownComponentError(
                f"storage class {self.name!r} has no component {name!r}; "
                f"its components are: {', '.join(self.components)}"
            ) from None

    def size_of(self, obj: Any) -> Any:
        """What an assembled object holds, for the cache's byte bound.

        A number of bytes, or the numpy arrays the object holds (the cache then
        charges each buffer once, however many cached objects share it).
        """
        return 1024

    def read_component(
        self, reader: ComponentReader, name: str, parameters: Mapping[str, Any]
    ) -> Any:
        """Read one component alone; composites with read parameters override this."""
        self.component_storage_class(name)
        if parameters:
            raise InvalidParameterError(
                f"component {name!r} of storage class {self.name!r} takes no read parameters, "
                f"got {', '.join(sorted(parameters))}"
            )
        if not reader.has(name):
            return None
        return reader.get(name)
