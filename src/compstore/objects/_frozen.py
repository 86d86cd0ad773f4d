"""The one immutability guard of compstore's value objects."""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

__all__ = ["Immutable"]


class Immutable:
    """Base of values whose attributes are set once, in ``__init__``, with ``object.__setattr__``.

    Setting or deleting an attribute afterwards raises ``AttributeError``,
    which names the class and ``_how_to_change`` says how to get a changed value.
    """

    __slots__ = ()
    _how_to_change: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable{self._how_to_change}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable{self._how_to_change}")
