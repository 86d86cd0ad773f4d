"""The Python interpreter of the ``where`` language: a parsed AST evaluated on a data ID.

The quantum-graph builder applies a ``where`` to the data IDs of units of work
(which are not rows in the database); it takes no bind values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from compstore.errors import QueryError

from ._ast import (
    OPERATORS,
    And,
    Bind,
    Dimension,
    In,
    Node,
    Not,
    Operand,
    Or,
    and_terms,
    dimensions_of,
)

__all__ = ["evaluate", "matches"]


def _value(op: Operand, data_id: Mapping[str, Any]) -> Any:
    if isinstance(op, Dimension):
        return data_id[op.name]
    if isinstance(op, Bind):
        raise QueryError(f"where expression uses :{op.name}, but pipelines take no bind values")
    return op.value


def evaluate(node: Node, data_id: Mapping[str, Any]) -> bool:
    """Whether ``data_id`` (which has every dimension ``node`` uses) satisfies ``node``.

    An integer compared with a string is never equal to it and never ordered
    against it (as in SQL on a typed column, where such a term is refused before).

    Raises
    ------
    QueryError
        If ``node`` uses a ``:bind`` parameter.
    """
    if isinstance(node, And):
        return all(evaluate(t, data_id) for t in node.terms)
    if isinstance(node, Or):
        return any(evaluate(t, data_id) for t in node.terms)
    if isinstance(node, Not):
        return not evaluate(node.operand, data_id)
    if isinstance(node, In):
        found = _value(node.operand, data_id) in [_value(v, data_id) for v in node.values]
        return found != node.negated
    try:
        return bool(OPERATORS[node.op](_value(node.left, data_id), _value(node.right, data_id)))
    except TypeError:  # int against str: never equal, never ordered
        return node.op == "!="


def matches(node: Node, data_id: Mapping[str, Any]) -> bool:
    """Evaluate the ``AND`` terms of ``node`` that ``data_id`` has every dimension of."""
    for term in and_terms(node):
        if dimensions_of(term) <= set(data_id) and not evaluate(term, data_id):
            return False
    return True
