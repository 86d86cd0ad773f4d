"""The SQL interpreter of the ``where`` language: a checked AST to a SQLAlchemy expression."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from ._ast import OPERATORS, And, Dimension, In, Node, Not, Operand, Or
from ._check import _Context, _values_of

_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


# SQLite parses ``a OR b OR ...`` into a tree as deep as its terms are many, and
# refuses one deeper than 1,000; SQLAlchemy drops parentheses around a nested OR
# of an OR. So a long list is cut into chunks, each written by De Morgan's law
# as ``NOT (NOT a AND NOT b ...)`` (the same in SQL's three-valued logic), which
# SQLAlchemy keeps whole.
_CHUNK = 64


def _balanced(
    join: Callable[..., sa.ColumnElement[bool]],
    dual: Callable[..., sa.ColumnElement[bool]],
    terms: list[sa.ColumnElement[bool]],
) -> sa.ColumnElement[bool]:
    while len(terms) > _CHUNK:
        terms = [
            sa.not_(dual(*(sa.not_(t) for t in terms[i : i + _CHUNK])))
            for i in range(0, len(terms), _CHUNK)
        ]
    return join(*terms)


def where_to_sql(
    node: Node,
    column: Callable[[str], sa.ColumnElement[Any]],
    bind: Mapping[str, Any] | None = None,
) -> sa.ColumnElement[bool]:
    """Compile a checked AST to a SQLAlchemy boolean expression.

    Every literal and bind value becomes a bound parameter; dimension names
    are mapped to column objects by ``column``.

    Parameters
    ----------
    node : `Node`
        An AST that passed :func:`check_where`.
    column : callable
        Maps a dimension name to its SQLAlchemy column.
    bind : mapping, optional
        Values of ``:name`` parameters.

    Returns
    -------
    clause : `sqlalchemy.ColumnElement`
        The compiled condition.
    """
    binds = bind or {}
    ctx = _Context("", {}, binds, "")

    def operand(op: Operand) -> sa.ColumnElement[Any]:
        if isinstance(op, Dimension):
            return column(op.name)
        value = _values_of(op, ctx, in_list=False)[0]
        return sa.literal(value, sa.BigInteger() if isinstance(value, int) else sa.Text())

    def compile_(n: Node) -> sa.ColumnElement[bool]:
        if isinstance(n, And):
            return _balanced(sa.and_, sa.or_, [compile_(t) for t in n.terms])
        if isinstance(n, Or):
            return _balanced(sa.or_, sa.and_, [compile_(t) for t in n.terms])
        if isinstance(n, Not):
            return sa.not_(compile_(n.operand))
        if isinstance(n, In):
            values = [v for item in n.values for v in _values_of(item, ctx, in_list=True)]
            col = operand(n.operand)
            return col.not_in(values) if n.negated else col.in_(values)
        op, left, right = n.op, n.left, n.right
        if not isinstance(left, Dimension):
            # Keep the column on the left so SQLite can use its index.
            op, left, right = _FLIPPED[op], right, left
        return OPERATORS[op](operand(left), operand(right))  # type: ignore[no-any-return]

    return compile_(node)
