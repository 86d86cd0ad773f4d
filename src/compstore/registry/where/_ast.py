"""The AST of the ``where`` language: immutable nodes, and the walks every interpreter shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union


@dataclass(frozen=True)
class Dimension:
    """A dimension name; ``column`` is its 1-based position in the expression."""

    name: str
    column: int = 0


@dataclass(frozen=True)
class Literal:
    """An integer or string literal."""

    value: int | str
    column: int = 0


@dataclass(frozen=True)
class Bind:
    """A ``:name`` parameter whose value comes from the ``bind`` mapping."""

    name: str
    column: int = 0


Operand = Union[Dimension, Literal, Bind]


@dataclass(frozen=True)
class Compare:
    """``left op right`` with op one of ``= != < <= > >=`` (``<>`` is read as ``!=``)."""

    op: str
    left: Operand
    right: Operand
    column: int = 0


@dataclass(frozen=True)
class In:
    """``operand [NOT] IN (values...)``."""

    operand: Operand
    values: tuple[Literal | Bind, ...]
    negated: bool = False
    column: int = 0


@dataclass(frozen=True)
class Not:
    """``NOT operand``."""

    operand: Node


@dataclass(frozen=True)
class And:
    """Conjunction of two or more terms."""

    terms: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Disjunction of two or more terms."""

    terms: tuple[Node, ...]


Node = Union[Compare, In, Not, And, Or]



def operands(node: Node) -> list[Operand]:
    """Every operand of ``node``, in the order written (dimensions, literals, binds)."""
    if isinstance(node, Compare):
        return [node.left, node.right]
    if isinstance(node, In):
        return [node.operand, *node.values]
    if isinstance(node, Not):
        return operands(node.operand)
    return [op for term in node.terms for op in operands(term)]



# The comparison operators, as Python (and SQLAlchemy) operations.
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def dimensions_of(node: Node) -> set[str]:
    """The dimension names ``node`` uses."""
    return {op.name for op in operands(node) if isinstance(op, Dimension)}


def and_terms(node: Node) -> tuple[Node, ...]:
    """The terms of ``node`` joined by its top-level ``AND`` (``node`` alone if there is none)."""
    return node.terms if isinstance(node, And) else (node,)


def unparse(node: Node) -> str:
    """The expression text of ``node``; `parse_where` reads it back as the same AST (columns aside)."""
    if isinstance(node, And):
        return " AND ".join(f"({unparse(t)})" for t in node.terms)
    if isinstance(node, Or):
        return " OR ".join(f"({unparse(t)})" for t in node.terms)
    if isinstance(node, Not):
        return f"NOT ({unparse(node.operand)})"
    if isinstance(node, In):
        values = ", ".join(_unparse_operand(v) for v in node.values)
        return f"{_unparse_operand(node.operand)} {'NOT ' if node.negated else ''}IN ({values})"
    return f"{_unparse_operand(node.left)} {node.op} {_unparse_operand(node.right)}"


def _unparse_operand(op: Operand) -> str:
    if isinstance(op, Dimension):
        return op.name
    if isinstance(op, Bind):
        return f":{op.name}"
    if isinstance(op.value, str):
        return "'" + op.value.replace("'", "''") + "'"
    return str(op.value)
