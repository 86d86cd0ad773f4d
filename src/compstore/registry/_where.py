"""The ``where`` expression language: a lark parser, its AST, and the AST -> SQL step.

An expression such as ``visit = 1 AND detector IN (1, 2) AND band != :b`` is
parsed into a small immutable AST (:func:`parse_where`), checked against the
dataset type's dimensions (:func:`check_where`), and compiled to a SQLAlchemy
expression (:func:`where_to_sql`) in which every literal is a bound parameter.
No text of the expression ever reaches the SQL string: only validated
dimension names, mapped to column objects, do.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import lark
import sqlalchemy as sa

from compstore.errors import QueryError, QuerySyntaxError

from ._dimensions import INT64_MAX, INT64_MIN, ValueType, _is_int

__all__ = [
    "MAX_WHERE_DEPTH",
    "MAX_WHERE_LENGTH",
    "And",
    "Bind",
    "Compare",
    "Dimension",
    "In",
    "Literal",
    "Node",
    "Not",
    "Or",
    "check_where",
    "parse_where",
    "where_to_sql",
]

# Keywords are case-insensitive and outrank dimension names (priority 2), and
# "\b" keeps a dimension like ``notes`` from lexing as NOT + ``es``. AND and OR
# are lists, not left-recursive pairs: 1,000 ORed terms make a tree one level
# deep, and only NOT and parentheses nest (bounded by MAX_WHERE_DEPTH).
_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | and_expr (_OR and_expr)+      -> or_
?and_expr: not_expr
         | not_expr (_AND not_expr)+    -> and_
?not_expr: atom
         | NOT not_expr                 -> not_
?atom: comparison
     | membership
     | "(" or_expr ")"

comparison: operand COMP_OP operand
membership: operand [NOT] _IN "(" item ("," item)* ")"

?operand: NAME                          -> dimension
        | item
?item: INT                              -> int_literal
     | STRING                           -> str_literal
     | BIND                             -> bind

COMP_OP: "<=" | ">=" | "!=" | "<>" | "=" | "<" | ">"
_OR.2: /OR\b/i
_AND.2: /AND\b/i
NOT.2: /NOT\b/i
_IN.2: /IN\b/i
// Keywords are reserved: otherwise the contextual lexer would read a misplaced
// "AND" as a dimension name and report the error one token too late.
NAME: /(?!(?i:and|or|not|in)\b)[A-Za-z_][A-Za-z0-9_]*/
INT: /-?[0-9]+/
STRING: /'(?:[^']|'')*'/ | /"(?:[^"]|"")*"/
BIND: /:[A-Za-z_][A-Za-z0-9_]*/

%ignore /\s+/
"""

#: Limits on a where expression (docs/registry.md, "Grammar"): its length in
#: characters, how deep NOT and parentheses nest, and the digits of an integer
#: (a 64-bit integer has at most 19). They bound the parser's memory and the
#: recursion of the steps after it.
MAX_WHERE_LENGTH = 100_000
MAX_WHERE_DEPTH = 100
_MAX_INT_DIGITS = 20

# What to call lark's terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "_OR": "OR",
    "_AND": "AND",
    "NOT": "NOT",
    "_IN": "IN",
    "NAME": "a dimension name",
    "INT": "an integer",
    "STRING": "a string",
    "BIND": "a :bind parameter",
    "COMP_OP": "a comparison operator",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "$END": "the end of the expression",
}


# -- the AST ------------------------------------------------------------------
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


# -- parsing ------------------------------------------------------------------
class _ToAst(lark.Transformer[lark.Token, Any]):
    def dimension(self, children: list[lark.Token]) -> Dimension:
        (tok,) = children
        return Dimension(str(tok), tok.column or 0)

    def int_literal(self, children: list[lark.Token]) -> Literal:
        (tok,) = children
        if len(tok.lstrip("-")) > _MAX_INT_DIGITS:
            # int() of thousands of digits is slow (and refused past 4,300): any
            # integer this long is out of range, so say that without converting.
            raise _OutOfRange(tok, tok.column or 0)
        return Literal(int(tok), tok.column or 0)

    def str_literal(self, children: list[lark.Token]) -> Literal:
        (tok,) = children
        quote = tok[0]
        return Literal(tok[1:-1].replace(quote * 2, quote), tok.column or 0)

    def bind(self, children: list[lark.Token]) -> Bind:
        (tok,) = children
        return Bind(tok[1:], tok.column or 0)

    def comparison(self, children: list[Any]) -> Compare:
        left, op, right = children
        return Compare("!=" if op == "<>" else str(op), left, right, _column_of(left))

    def membership(self, children: list[Any]) -> In:
        operand, negated, *values = children
        return In(operand, tuple(values), negated is not None, _column_of(operand))

    def not_(self, children: list[Any]) -> Not:
        return Not(children[-1])

    def and_(self, children: list[Any]) -> And:
        return And(_flatten(And, children))

    def or_(self, children: list[Any]) -> Or:
        return Or(_flatten(Or, children))


class _OutOfRange(Exception):
    """An integer literal too long to fit 64 bits (raised inside lark's transformer)."""

    def __init__(self, text: str, column: int) -> None:
        super().__init__(text)
        self.text = text
        self.column = column


def _flatten(kind: type[And] | type[Or], children: list[Any]) -> tuple[Node, ...]:
    # ``(a OR b) OR c`` is one n-ary node, easier to compile and print.
    terms: list[Node] = []
    for child in children:
        terms.extend(child.terms if isinstance(child, kind) else (child,))
    return tuple(terms)


def _depth(tree: lark.Tree[Any]) -> int:
    """How deep ``tree`` nests (iteratively: the tree may be deeper than the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, lark.Tree))
    return deepest


def _column_of(operand: Operand) -> int:
    return operand.column


@functools.cache
def _parser() -> lark.Lark:
    # LALR: linear time, and its errors know exactly which token was unexpected.
    return lark.Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)


def _caret(expression: str, line: int, column: int) -> str:
    lines = expression.split("\n") or [""]
    text = lines[min(max(line, 1), len(lines)) - 1]
    return f"    {text}\n    {' ' * (column - 1)}^"


def _describe_expected(expected: Sequence[str] | set[str]) -> str:
    names = sorted({_TERMINAL_NAMES.get(t, repr(t)) for t in expected})
    return ", ".join(names)


def _expected_at(expression: str, pos: int) -> set[str]:
    # Re-parse the text before the error and ask the parser what it would accept
    # next: exact, unlike the lexer's candidate set or the post-reduction state.
    try:
        interactive = _parser().parse_interactive(expression[:pos])
        interactive.exhaust_lexer()
        return set(interactive.accepts())
    except lark.exceptions.LarkError:
        return set()


def _syntax_error(expression: str, exc: lark.exceptions.UnexpectedInput) -> QuerySyntaxError:
    line = exc.line if isinstance(exc.line, int) and exc.line > 0 else 1
    column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0  # always an int for UnexpectedCharacters
        char = expression[pos]
        what = (
            "unterminated string" if char in "'\"" else f"unexpected character {char!r}"
        )
        expected = _describe_expected(_expected_at(expression, pos))
    elif isinstance(exc, lark.exceptions.UnexpectedToken):
        if exc.token.type == "$END":
            expected = _describe_expected(_expected_at(expression, len(expression)))
            # lark places $END on the last token; the caret belongs after the text.
            last = expression.rstrip().split("\n")
            line, column = len(last), len(last[-1]) + 1
            what = "unexpected end of expression"
        else:
            what = f"unexpected {str(exc.token)!r}"
            expected = _describe_expected(_expected_at(expression, exc.token.start_pos or 0))
    else:  # UnexpectedEOF: not raised by LALR, kept for safety
        what, expected = "unexpected end of expression", ""
    where = f"line {line}, column {column}" if "\n" in expression.strip() else f"column {column}"
    message = f"malformed where expression at {where}: {what}\n" + _caret(
        expression, line, column
    )
    if expected:
        message += f"\n  expected {expected}"
    return QuerySyntaxError(message, expression=expression, column=column)


def parse_where(expression: str) -> Node:
    """Parse a ``where`` expression into its AST.

    Parameters
    ----------
    expression : `str`
        The expression, e.g. ``"visit = 1 AND detector IN (1, 2)"``.

    Returns
    -------
    node : `Node`
        The root of the AST.

    Raises
    ------
    QuerySyntaxError
        If the expression is malformed; the message shows the expression with
        a caret under the offending column, and ``.column`` is that column.
    QueryError
        If an integer literal does not fit 64 bits, or the expression is longer
        than `MAX_WHERE_LENGTH` characters or nests NOT and parentheses deeper
        than `MAX_WHERE_DEPTH`.
    """
    if not isinstance(expression, str):
        raise QueryError(f"a where expression is a string, got {type(expression).__name__}")
    if len(expression) > MAX_WHERE_LENGTH:
        raise QueryError(
            f"where expression of {len(expression):,} characters is longer than the "
            f"{MAX_WHERE_LENGTH:,} allowed; use a :bind parameter for long IN lists"
        )
    try:
        tree = _parser().parse(expression)
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(expression, exc) from None
    # The AST steps below recurse: refuse what would exhaust the stack first.
    if _depth(tree) > MAX_WHERE_DEPTH:
        raise QueryError(
            f"where expression nests NOT and parentheses more than {MAX_WHERE_DEPTH} deep; "
            "simplify it"
        )
    try:
        node = _ToAst().transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, _OutOfRange):
            raise QueryError(
                f"integer {exc.orig_exc.text[:30]}... ({len(exc.orig_exc.text)} characters) "
                "does not fit 64 bits\n" + _caret(expression, 1, exc.orig_exc.column)
            ) from None
        raise
    _check_literals(node, expression)
    return node


def _operands(node: Node) -> list[Operand]:
    if isinstance(node, Compare):
        return [node.left, node.right]
    if isinstance(node, In):
        return [node.operand, *node.values]
    if isinstance(node, Not):
        return _operands(node.operand)
    return [op for term in node.terms for op in _operands(term)]


def _check_literals(node: Node, expression: str) -> None:
    for op in _operands(node):
        if isinstance(op, Literal) and isinstance(op.value, int):
            if not INT64_MIN <= op.value <= INT64_MAX:
                raise QueryError(
                    f"integer {op.value} does not fit 64 bits\n" + _caret(expression, 1, op.column)
                )


# -- checking against a dataset type -------------------------------------------
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


# -- compiling to SQL -----------------------------------------------------------
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


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

    def operand(op: Operand) -> Any:
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
        return _OPERATORS[op](operand(left), operand(right))  # type: ignore[no-any-return]

    return compile_(node)
