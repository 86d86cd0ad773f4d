"""The where language: valid and malformed expressions, injection, and a Hypothesis oracle."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, Union

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compstore.errors import QueryError, QuerySyntaxError
from compstore.registry import Registry, parse_where

from .conftest import ROWS  # type: ignore[import-not-found]

# (visit, detector, band) of every calexp in RUN "sfm" (see conftest.populated).
ALL = set(ROWS)


def _rows(registry: Registry, where: str, bind: dict[str, Any] | None = None) -> set[tuple]:
    refs = registry.query_datasets("calexp", where, collections="sfm", bind=bind)
    return {(r.data_id["visit"], r.data_id["detector"], r.data_id["band"]) for r in refs}


VALID = [
    ("visit = 1", lambda v, d, b: v == 1),
    ("visit=1", lambda v, d, b: v == 1),
    ("1 = visit", lambda v, d, b: v == 1),
    ("visit != 1", lambda v, d, b: v != 1),
    ("visit <> 1", lambda v, d, b: v != 1),
    ("visit < 3", lambda v, d, b: v < 3),
    ("visit <= 3", lambda v, d, b: v <= 3),
    ("visit > 2", lambda v, d, b: v > 2),
    ("visit >= 2", lambda v, d, b: v >= 2),
    ("3 > visit", lambda v, d, b: v < 3),
    ("visit > -1", lambda v, d, b: True),
    ("visit = -5", lambda v, d, b: False),
    ("band = 'r'", lambda v, d, b: b == "r"),
    ('band = "g"', lambda v, d, b: b == "g"),
    ("band > 'h'", lambda v, d, b: b > "h"),
    ("detector IN (0, 2)", lambda v, d, b: d in (0, 2)),
    ("detector in (1)", lambda v, d, b: d == 1),
    ("detector NOT IN (0, 2)", lambda v, d, b: d not in (0, 2)),
    ("band IN ('r', 'i')", lambda v, d, b: b in ("r", "i")),
    ("visit = 1 AND detector = 2", lambda v, d, b: v == 1 and d == 2),
    ("visit = 1 and detector = 2", lambda v, d, b: v == 1 and d == 2),
    ("visit = 1 OR detector = 2", lambda v, d, b: v == 1 or d == 2),
    ("NOT visit = 1", lambda v, d, b: v != 1),
    ("not (visit = 1 or visit = 2)", lambda v, d, b: v not in (1, 2)),
    ("visit = 1 OR visit = 2 AND detector = 0", lambda v, d, b: v == 1 or (v == 2 and d == 0)),
    ("(visit = 1 OR visit = 2) AND detector = 0", lambda v, d, b: v in (1, 2) and d == 0),
    ("NOT NOT visit = 3", lambda v, d, b: v == 3),
    ("visit = detector", lambda v, d, b: v == d),
    ("visit > detector AND band != 'g'", lambda v, d, b: v > d and b != "g"),
    ("  visit\n=\t10  ", lambda v, d, b: v == 10),
    ("", lambda v, d, b: True),
    ("band = 'it''s'", lambda v, d, b: False),
]


@pytest.mark.parametrize(("where", "predicate"), VALID)
def test_valid_expressions(populated, where: str, predicate) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    assert _rows(registry, where) == {row for row in ALL if predicate(*row)}


def test_bind_parameters(populated) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    assert _rows(registry, "visit = :v AND band = :b", {"v": 1, "b": "r"}) == {
        row for row in ALL if row[0] == 1}
    assert _rows(registry, "detector IN (:ds)", {"ds": [0, 1]}) == {
        row for row in ALL if row[1] in (0, 1)}
    assert _rows(registry, "detector IN (:a, 2)", {"a": 0}) == {row for row in ALL if row[1] in (0, 2)}
    with pytest.raises(QueryError, match=":nope but bind has v"):
        _rows(registry, "visit = :nope", {"v": 1})
    with pytest.raises(QueryError, match="'visit' takes an integer, compared to 'x'"):
        _rows(registry, "visit = :v", {"v": "x"})
    with pytest.raises(QueryError, match="neither an integer nor a string"):
        _rows(registry, "visit = :v", {"v": 1.5})


MALFORMED = [
    # (expression, column of the error)
    ("visit = 1; DROP TABLE dataset", 10),
    ("visit =", 8),
    ("visit = 1 AND", 14),
    ("(visit = 1", 11),
    ("visit = 1)", 10),
    ("visit == 1", 8),
    ("visit IN ()", 11),
    ("visit IN (detector)", 11),
    ("visit = 'r", 9),
    ("visit & 1", 7),
    ("= 1", 1),
    ("visit = 1 detector = 2", 11),
    ("visit NOT = 1", 11),
    ("AND visit = 1", 1),
    ("visit = 1 OR OR visit = 2", 14),
    ("visit = - 1", 9),
    ("visit = 1.5", 10),
    ("visit = 1 -- comment", 11),
    ("visit = 1 /* x */", 11),
]


@pytest.mark.parametrize(("where", "column"), MALFORMED)
def test_malformed_expressions(populated, where: str, column: int) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    with pytest.raises(QuerySyntaxError) as info:
        registry.query_datasets("calexp", where)
    error = info.value
    assert error.column == column
    assert error.expression == where
    lines = str(error).splitlines()
    assert f"column {column}" in lines[0]
    # The caret sits under the offending character of the echoed expression.
    echoed, caret = lines[1], lines[2]
    assert echoed.strip() == where.strip() or where.strip() in echoed
    assert caret.index("^") - echoed.index(where.lstrip()[0]) == column - 1 - (
        len(where) - len(where.lstrip()))
    assert "expected" in str(error) or "end of expression" in str(error)


def test_syntax_error_is_a_query_error_and_value_error() -> None:
    with pytest.raises(QueryError):
        parse_where("visit =")
    with pytest.raises(ValueError):
        parse_where("visit =")


@pytest.mark.parametrize(
    ("where", "match"),
    [
        ("tract = 1", r"unknown dimension 'tract'.*'calexp' has dimensions visit, detector, band"),
        ("visit = 'r'", "'visit' takes an integer, compared to 'r'"),
        ("band = 1", "'band' takes a string, compared to 1"),
        ("visit IN (1, 'x')", "'visit' takes an integer"),
        ("visit = band", "cannot compare dimension 'visit' .int. with 'band' .str."),
        ("1 = 1", "needs a dimension"),
        ("visit = 99999999999999999999", "does not fit 64 bits"),
    ],
)
def test_semantic_errors(populated, where: str, match: str) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    with pytest.raises(QueryError, match=match) as info:
        registry.query_datasets("calexp", where)
    assert not isinstance(info.value, QuerySyntaxError)
    assert "^" in str(info.value)


@pytest.mark.parametrize(
    "where",
    [
        "visit = 1; DROP TABLE dataset",
        "visit = 1 OR 1=1; DELETE FROM dataset",
        "band = 'r'; DROP TABLE dataset; --'",
        "visit = (SELECT 1)",
        "visit = 1 UNION SELECT * FROM dataset",
        "band = 'r' || 'x'",
        "dataset_type_id = 1",
    ],
)
def test_injection_attempts_fail_and_leave_db_intact(populated, where: str) -> None:  # type: ignore[no-untyped-def]
    registry, refs = populated
    before = registry.count_datasets()
    with pytest.raises(QueryError):
        registry.query_datasets("calexp", where)
    assert registry.count_datasets() == before
    with registry._engine.connect() as conn:  # SQLite or PostgreSQL alike
        tables = set(sa.inspect(conn).get_table_names())
    assert {"dataset", "dataset_type", "collection"} <= tables


def test_injection_inside_a_string_is_just_a_string(populated) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    before = registry.count_datasets()
    assert _rows(registry, "band = 'r''; DROP TABLE dataset; --'") == set()
    assert _rows(registry, "band = :b", {"b": "r'; DROP TABLE dataset; --"}) == set()
    assert registry.count_datasets() == before


# -- Hypothesis: random expression trees, rendered, parsed, run in SQL vs Python ------------
@dataclass(frozen=True)
class Cmp:
    dim: str
    op: str
    value: Union[int, str]
    flipped: bool


@dataclass(frozen=True)
class Member:
    dim: str
    values: tuple[Union[int, str], ...]
    negated: bool


@dataclass(frozen=True)
class Bool:
    op: str  # AND, OR, NOT
    terms: tuple[Any, ...]


DIMS = {"visit": "int", "detector": "int", "band": "str"}
OPS = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
       ">": operator.gt, ">=": operator.ge}
FLIP = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
ints = st.integers(min_value=-3, max_value=12)
strs = st.sampled_from(["r", "g", "i", "", "it's", 'say "x"', "AND", "r g"])


def value_for(dim: str) -> st.SearchStrategy[Union[int, str]]:
    return ints if DIMS[dim] == "int" else strs


leaf = st.one_of(
    st.sampled_from(sorted(DIMS)).flatmap(
        lambda d: st.builds(Cmp, st.just(d), st.sampled_from(sorted(OPS)), value_for(d),
                            st.booleans())
    ),
    st.sampled_from(sorted(DIMS)).flatmap(
        lambda d: st.builds(Member, st.just(d),
                            st.lists(value_for(d), min_size=1, max_size=4).map(tuple),
                            st.booleans())
    ),
)
trees = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.builds(Bool, st.sampled_from(["AND", "OR"]),
                  st.lists(children, min_size=2, max_size=3).map(tuple)),
        st.builds(Bool, st.just("NOT"), children.map(lambda c: (c,))),
    ),
    max_leaves=8,
)


def literal(value: Union[int, str], quote: str) -> str:
    if isinstance(value, int):
        return str(value)
    return quote + value.replace(quote, quote * 2) + quote


def render(node: Any, quote: str) -> str:
    if isinstance(node, Cmp):
        if node.flipped:
            return f"{literal(node.value, quote)} {FLIP[node.op]} {node.dim}"
        return f"{node.dim} {node.op} {literal(node.value, quote)}"
    if isinstance(node, Member):
        items = ", ".join(literal(v, quote) for v in node.values)
        return f"{node.dim} {'NOT IN' if node.negated else 'IN'} ({items})"
    if node.op == "NOT":
        return f"NOT ({render(node.terms[0], quote)})"
    return f" {node.op} ".join(f"({render(t, quote)})" for t in node.terms)


def evaluate(node: Any, row: dict[str, Any]) -> bool:
    if isinstance(node, Cmp):
        return bool(OPS[node.op](row[node.dim], node.value))
    if isinstance(node, Member):
        return (row[node.dim] in node.values) != node.negated
    if node.op == "NOT":
        return not evaluate(node.terms[0], row)
    results = [evaluate(t, row) for t in node.terms]
    return all(results) if node.op == "AND" else any(results)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, quote=st.sampled_from(["'", '"']))
def test_sql_matches_python(populated, tree: Any, quote: str) -> None:  # type: ignore[no-untyped-def]
    registry, _ = populated
    expression = render(tree, quote)
    expected = {
        row for row in ALL
        if evaluate(tree, {"visit": row[0], "detector": row[1], "band": row[2]})
    }
    assert _rows(registry, expression) == expected, expression


@given(text=st.text(alphabet="visdetor=<>!() 'IN,AND1-:;", max_size=25))
@settings(max_examples=300, deadline=None)
def test_parser_never_crashes(text: str) -> None:
    # Any text either parses or raises a QueryError: never a lark or Python error.
    try:
        parse_where(text)
    except QuerySyntaxError as exc:
        assert exc.column >= 1 and exc.expression == text
    except QueryError:
        pass


def test_a_doubled_quote_is_one_quote_in_the_literal() -> None:
    from compstore.registry.where import Compare, Dimension, Literal

    assert parse_where("band = 'it''s'") == Compare("=", Dimension("band", 1), Literal("it's", 8), 1)
    assert parse_where('band = "a""b"').right == Literal('a"b', 8)


@pytest.mark.parametrize(("where", "predicate"), [w for w in VALID if w[0].strip()])
def test_python_interpreter_agrees_with_sql(where: str, predicate) -> None:  # type: ignore[no-untyped-def]
    """compstore.registry.where's two interpreters give one answer; unparse round-trips."""
    from compstore.registry.where import evaluate, parse_where, unparse

    node = parse_where(where)
    for v, d, b in ALL:
        assert evaluate(node, {"visit": v, "detector": d, "band": b}) == predicate(v, d, b), (v, d, b)
    again = parse_where(unparse(node))
    for v, d, b in ALL:
        assert evaluate(again, {"visit": v, "detector": d, "band": b}) == predicate(v, d, b)
