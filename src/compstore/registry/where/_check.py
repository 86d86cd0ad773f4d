"""Checking a ``where`` AST against a dataset type's dimensions and the bind values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from compstore.errors import QueryError

from .._dimensions import INT64_MAX, INT64_MIN, ValueType, _is_int
from ._ast import And, Bind, Dimension, In, Literal, Node, Not, Or
from ._parse import _caret


def _value_type_of(value: object) -> ValueType | None:
    if _is_int(value):
        return "int"
    if isinstance(value, str):
        return "str"
    return None


def _resolve_bind(
    bind_node: Bind, bind: Mapping[str, Any], expression: str, *, in_list: bool
) -> list[int | str]:
    if bind_node.name not in bind:
        raise QueryError(
            f"where expression uses :{bind_node.name} but bind has "
            f"{', '.join(sorted(bind)) or 'no values'}\n"
            + _caret(expression, 1, bind_node.column)
        )
    value = bind[bind_node.name]
    values = list(value) if in_list and isinstance(value, (list, tuple, set, frozenset)) else [value]
    out: list[int | str] = []
    for v in values:
        kind = _value_type_of(v)
        if kind is None:
            raise QueryError(
                f"bind value :{bind_node.name} = {str(v)[:100]} ({type(v).__name__}) is neither "
                "an integer nor a string"
            )
        if kind == "int":
            number = int(v)
            # As for a literal: SQL integers are 64-bit; the driver would overflow.
            if not INT64_MIN <= number <= INT64_MAX:
                raise QueryError(
                    f"bind value :{bind_node.name} = {_short_int(number)} does not fit 64 bits"
                )
            out.append(number)
        else:
            out.append(str(v))
    return out


def _short_int(number: int) -> str:
    # str() of an integer of thousands of digits is slow, and refused past 4,300.
    return str(number) if number.bit_length() <= 128 else f"(an integer of {number.bit_length()} bits)"


@dataclass(frozen=True)
class _Context:
    dataset_type: str
    dimensions: Mapping[str, ValueType | None]  # in the dataset type's order
    bind: Mapping[str, Any]
    expression: str


def _dimension_type(dim: Dimension, ctx: _Context) -> ValueType | None:
    if dim.name not in ctx.dimensions:
        raise QueryError(
            f"unknown dimension {dim.name!r} in where expression: dataset type "
            f"{ctx.dataset_type!r} has dimensions {', '.join(ctx.dimensions) or '(none)'}\n"
            + _caret(ctx.expression, 1, dim.column)
        )
    return ctx.dimensions[dim.name]


def _values_of(op: Literal | Bind, ctx: _Context, *, in_list: bool) -> list[int | str]:
    if isinstance(op, Literal):
        return [op.value]
    return _resolve_bind(op, ctx.bind, ctx.expression, in_list=in_list)


def _check_type(
    dim: Dimension, dim_type: ValueType | None, value: int | str, column: int, ctx: _Context
) -> None:
    if dim_type is None:  # a dimension with no value inserted yet accepts anything
        return
    if _value_type_of(value) != dim_type:
        wanted = "an integer" if dim_type == "int" else "a string"
        raise QueryError(
            f"dimension {dim.name!r} takes {wanted}, compared to {value!r}\n"
            + _caret(ctx.expression, 1, column)
        )


def _check(node: Node, ctx: _Context) -> None:
    if isinstance(node, (And, Or)):
        for term in node.terms:
            _check(term, ctx)
    elif isinstance(node, Not):
        _check(node.operand, ctx)
    elif isinstance(node, In):
        if not isinstance(node.operand, Dimension):
            raise QueryError(
                "the left side of IN must be a dimension\n"
                + _caret(ctx.expression, 1, node.column)
            )
        dim_type = _dimension_type(node.operand, ctx)
        for item in node.values:
            for value in _values_of(item, ctx, in_list=True):
                _check_type(node.operand, dim_type, value, item.column, ctx)
    else:
        left, right = node.left, node.right
        dims = [op for op in (left, right) if isinstance(op, Dimension)]
        if not dims:
            raise QueryError(
                "a comparison needs a dimension on at least one side\n"
                + _caret(ctx.expression, 1, node.column)
            )
        types = [_dimension_type(d, ctx) for d in dims]
        if len(dims) == 2:
            if None not in types and types[0] != types[1]:
                raise QueryError(
                    f"cannot compare dimension {dims[0].name!r} ({types[0]}) with "
                    f"{dims[1].name!r} ({types[1]})\n" + _caret(ctx.expression, 1, node.column)
                )
            return
        other = right if isinstance(left, Dimension) else left
        assert not isinstance(other, Dimension)
        for value in _values_of(other, ctx, in_list=False):
            _check_type(dims[0], types[0], value, other.column, ctx)


def check_where(
    node: Node,
    dataset_type: str,
    dimensions: Mapping[str, ValueType | None],
    bind: Mapping[str, Any] | None,
    expression: str,
) -> None:
    """Check an AST against a dataset type's dimensions and the bind values.

    Parameters
    ----------
    node : `Node`
        The parsed expression.
    dataset_type : `str`
        The dataset type name, for messages.
    dimensions : mapping of `str` to ``"int"``, ``"str"`` or `None`
        The dataset type's dimensions (in its order) and their value types.
    bind : mapping, optional
        Values of ``:name`` parameters.
    expression : `str`
        The original text, for messages.

    Raises
    ------
    QueryError
        If a dimension is unknown, a value has the wrong type, a bind value is
        missing, or a comparison has no dimension.
    """
    _check(node, _Context(dataset_type, dimensions, bind or {}, expression))
