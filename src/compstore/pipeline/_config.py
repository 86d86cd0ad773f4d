"""Task configuration: defaults declared by the task class, checked overrides, a read-only view.

A config is deliberately a flat mapping of plain JSON values: it is recorded
verbatim as provenance next to every output, and it crosses process
boundaries as data, never as pickled objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import PipelineDefinitionError

__all__ = ["TaskConfig", "check_config_value", "validate_config"]

_JSON_SCALARS = (str, int, float, bool, type(None))


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_json(owner: str, key: str, value: Any) -> None:
    # Provenance stores the config as JSON, so refuse early what JSON cannot hold
    # (NaN, numpy scalars, objects) rather than fail after the task has run.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PipelineDefinitionError(
            f"config {key!r} of {owner} is {value!r} ({_type_name(value)}), which is not plain "
            f"JSON ({exc}); use str, int, float, bool, None, lists and dicts of those"
        ) from None


def check_config_value(owner: str, key: str, default: Any, value: Any) -> Any:
    """Return ``value`` as the config value of ``key``, checked against its default.

    The override must have the default's type; an int is accepted (and turned
    into a float) where the default is a float, a tuple where it is a list.
    A default of `None` accepts any JSON value.

    Parameters
    ----------
    owner : `str`
        What the config belongs to, for messages (``task 'jointcal' (JointcalTask)``).
    key : `str`
        The config key.
    default : `object`
        The declared default.
    value : `object`
        The override.

    Returns
    -------
    value : `object`
        The checked (possibly converted) value.

    Raises
    ------
    PipelineDefinitionError
        If the type does not match the default's, or the value is not plain JSON.
    """
    if default is None:
        pass
    elif isinstance(default, bool) or isinstance(value, bool):
        # bool is an int subclass; True for a detector count is always a mistake.
        if not (isinstance(default, bool) and isinstance(value, bool)):
            raise _type_error(owner, key, default, value)
    elif isinstance(default, float) and isinstance(value, int):
        value = float(value)
    elif isinstance(default, list) and isinstance(value, tuple):
        value = list(value)
    elif not isinstance(value, type(default)):
        raise _type_error(owner, key, default, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise PipelineDefinitionError(
            f"config {key!r} of {owner} is {value!r}: NaN and infinities cannot be recorded as "
            "provenance; use a finite number or None"
        )
    _check_json(owner, key, value)
    return value


def _type_error(owner: str, key: str, default: Any, value: Any) -> PipelineDefinitionError:
    return PipelineDefinitionError(
        f"config {key!r} of {owner} takes {_type_name(default)} values (default {default!r}), "
        f"got {value!r} ({_type_name(value)})"
    )


def validate_config(
    owner: str, defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Merge ``overrides`` into ``defaults`` after checking every key and type.

    Raises
    ------
    PipelineDefinitionError
        If an override names an unknown key (the message lists the valid
        keys) or has the wrong type.
    """
    merged = dict(defaults)
    if overrides is None:
        return merged
    if not isinstance(overrides, Mapping):
        raise PipelineDefinitionError(
            f"config of {owner} must be a mapping of key to value, got {_type_name(overrides)}"
        )
    for key, value in overrides.items():
        if key not in defaults:
            raise PipelineDefinitionError(
                f"unknown config key {key!r} for {owner}; valid keys: "
                f"{', '.join(sorted(defaults)) or '(none: this task takes no config)'}"
            )
        merged[key] = check_config_value(owner, key, defaults[key], value)
    return merged


class TaskConfig(Mapping[str, Any]):
    """A read-only mapping of config key to value; keys are also attributes.

    ``task.config["order"]`` and ``task.config.order`` are the same value.
    Nested lists and dicts are copied in, so mutating the caller's objects later
    cannot change a task's config (or its recorded provenance).
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", json.loads(json.dumps(dict(values))))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(
                f"config has no key {key!r}; keys: {', '.join(sorted(self._values))}"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("a task config is read-only; pass overrides to the task instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"TaskConfig({self._values!r})"

    def to_dict(self) -> dict[str, Any]:
        """Return a plain, JSON-able copy (what provenance records)."""
        copy: dict[str, Any] = json.loads(json.dumps(self._values))
        return copy
