"""The ``where`` expression language: its AST, its parser, and its two interpreters.

An expression such as ``visit = 1 AND detector IN (1, 2) AND band != :b`` is
parsed into a small immutable AST (:func:`parse_where`, ``_parse.py``; the
nodes and the walks every interpreter shares are in ``_ast.py``), checked
against a dataset type's dimensions (:func:`check_where`, ``_check.py``), and
then either compiled to a SQLAlchemy expression in which every literal is a
bound parameter (:func:`where_to_sql`, ``_sql.py``: the registry's queries) or
evaluated on a data ID in Python (:func:`evaluate`, :func:`matches`,
``_python.py``: the quantum-graph builder). No text of the expression ever
reaches the SQL string: only validated dimension names, mapped to column
objects, do. The grammar is documented in ``docs/registry.md``.
"""

from __future__ import annotations

from ._ast import (
    OPERATORS,
    And,
    Bind,
    Compare,
    Dimension,
    In,
    Literal,
    Node,
    Not,
    Operand,
    Or,
    and_terms,
    dimensions_of,
    operands,
    unparse,
)
from ._check import check_where
from ._parse import MAX_WHERE_DEPTH, MAX_WHERE_LENGTH, parse_where
from ._python import evaluate, matches
from ._sql import where_to_sql

__all__ = [
    "MAX_WHERE_DEPTH",
    "MAX_WHERE_LENGTH",
    "OPERATORS",
    "And",
    "Bind",
    "Compare",
    "Dimension",
    "In",
    "Literal",
    "Node",
    "Not",
    "Operand",
    "Or",
    "and_terms",
    "check_where",
    "dimensions_of",
    "evaluate",
    "matches",
    "operands",
    "parse_where",
    "unparse",
    "where_to_sql",
]
