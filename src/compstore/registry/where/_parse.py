"""Parsing ``where`` expressions (lark) into the AST, with messages that point at the error."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import lark

from compstore.errors import QueryError, QuerySyntaxError

from .._dimensions import INT64_MAX, INT64_MIN
from ._ast import And, Bind, Compare, Dimension, In, Literal, Node, Not, Operand, Or, operands

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
        node: Node = _ToAst().transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, _OutOfRange):
            raise QueryError(
                f"integer {exc.orig_exc.text[:30]}... ({len(exc.orig_exc.text)} characters) "
                "does not fit 64 bits\n" + _caret(expression, 1, exc.orig_exc.column)
            ) from None
        raise
    _check_literals(node, expression)
    return node


def _check_literals(node: Node, expression: str) -> None:
    for op in operands(node):
        if isinstance(op, Literal) and isinstance(op.value, int):
            if not INT64_MIN <= op.value <= INT64_MAX:
                raise QueryError(
                    f"integer {op.value} does not fit 64 bits\n" + _caret(expression, 1, op.column)
                )
