"""The expression language: both evaluators agree (values, nulls, errors), the
types are inferred, and anything outside the language is a SchemaError."""

import math
from typing import NamedTuple, Optional

import pyarrow as pa
import pytest
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridflow.columnar import records_to_table
from hybridflow.errors import SchemaError
from hybridflow.expressions import Expression, ExpressionError
from hybridflow.schemas import MAX_EVENT_MICROS, MIN_EVENT_MICROS, register
from tests.conftest import examples


@register
class Row(NamedTuple):
    i: int
    j: Optional[int]
    x: float
    y: Optional[float]
    s: str
    t: Optional[str]
    b: Optional[bool]
    ts: Timestamp


ROWS = [
    Row(123, None, 150.0, None, "Ab", None, None, Timestamp(micros=1767225600123456)),
    Row(-7, 3, 0.5, 2.0, "x", "y", True, Timestamp(micros=0)),
    Row(7, 0, -2.5, 0.0, "", "Q", False, Timestamp(micros=-1)),
]


def both(text, rows=ROWS):
    """The values of ``text`` per record, checked equal to the Arrow evaluation."""
    expression = Expression(text, Row)
    per_record = [expression.evaluate(r) for r in rows]
    columnar = expression.evaluate_table(records_to_table(rows, Row)).to_pylist()
    assert _same(per_record, columnar), (text, per_record, columnar)
    return per_record


def _same(a, b):
    return len(a) == len(b) and all(
        (isinstance(u, float) and isinstance(v, float) and math.isnan(u) and math.isnan(v))
        or (u == v and type(u) is type(v))
        for u, v in zip(a, b)
    )


@pytest.mark.parametrize(
    "text, values",
    [
        ("i + 1", [124, -6, 8]),
        ("i * 2 - j", [None, -17, 14]),
        ("i / 2", [61.5, -3.5, 3.5]),  # / is always float division
        ("i / j", [None, -7 / 3, None]),  # by zero: null
        ("i % 4", [3, -3, 3]),  # the sign of the dividend, as SQL
        ("i % j", [None, -1, None]),
        ("x + i", [273.0, -6.5, 4.5]),
        ("-x", [-150.0, -0.5, 2.5]),
        ("i > 100 and j is null", [True, False, False]),
        ("j > 1 or i > 100", [True, True, False]),  # true or null is true
        ("j > 1 and i > 100", [None, False, False]),  # null and false is false
        ("not b", [None, False, True]),
        ("j == null", [None, None, None]),  # comparisons with null are null
        ("j is not null", [False, True, True]),
        ("i in (7, 123)", [True, False, True]),
        ("j not in (3)", [None, False, True]),
        ("s in ('Ab', 'x')", [True, True, False]),
        ("1 < i < 200", [True, False, True]),
        ("abs(i)", [123, 7, 7]),
        ("round(x)", [150.0, 0.0, -2.0]),  # half to even
        ("round(x / 3, 2)", [50.0, 0.17, -0.83]),
        ("round(i)", [123, -7, 7]),
        ("lower(s)", ["ab", "x", ""]),
        ("upper(coalesce(t, s))", ["AB", "Y", "Q"]),
        ("coalesce(j, 0)", [0, 3, 0]),
        ("coalesce(y, j, 1)", [1.0, 2.0, 0.0]),
        ("if_else(i > 0, i, 0)", [123, 0, 7]),
        ("if_else(s == 'x', x, 1)", [1.0, 0.5, 1.0]),  # an int meeting a float: float
        ("if_else(b, 'yes', t)", [None, "yes", "Q"]),  # a null condition takes t (null here)
        ("if_else(j > 1, 1, null)", [None, 1, None]),
        ("year(ts)", [2026, 1970, 1969]),
        ("month(ts) * 100 + day(ts)", [101, 101, 1231]),
        ("hour(ts) + minute(ts) + second(ts)", [0, 0, 23 + 59 + 59]),
        ("epoch_seconds(ts)", [1767225600.123456, 0.0, -1e-06]),
        ("if_else(i > 0, x, 0)", [150.0, 0.0, -2.5]),  # an int and a float: float
        ("if_else(j > 1, s, t)", [None, "x", "Q"]),  # a null condition takes the else branch
        ("if_else(b, i, j)", [None, -7, 0]),
        ("if_else(true, 1, 2)", [1, 1, 1]),
        ("(epoch_seconds(ts) - 1767225600) * 1000000 > 123455", [True, False, False]),
        ("s == 'x' or t != 'y'", [None, True, True]),  # false or null is null
        ("null + 1", [None, None, None]),
        ("true", [True, True, True]),
    ],
)
def test_values_per_record_and_columnar(text, values):
    assert both(text) == values


@pytest.mark.parametrize(
    "text, tp",
    [
        ("i + 1", int),
        ("i + j", Optional[int]),
        ("i / 2", float),  # a non-zero literal divisor: never null
        ("i / j", Optional[float]),
        ("i % 123 == 0", bool),
        ("x * 0.89", float),
        ("j is null", bool),
        ("coalesce(j, 0)", int),
        ("if_else(i > 0, i, 0)", int),
        ("if_else(b, 1, 0)", int),  # a null condition takes the else branch
        ("year(ts)", int),
        ("epoch_seconds(ts)", float),
        ("if_else(i > 0, i, 0)", int),
        ("if_else(i > 0, i, j)", Optional[int]),
        ("upper(s)", str),
        ("ts", Timestamp),
    ],
)
def test_types_are_inferred(text, tp):
    assert Expression(text, Row).field_type == tp


def test_integer_overflow_is_an_error_of_the_record_on_both_paths():
    big = Row(2**62, None, 0.0, None, "", None, None, Timestamp(micros=0))
    expression = Expression("i * 2", Row)
    with pytest.raises(ExpressionError, match="does not fit in 64 bits") as caught:
        expression.evaluate(big)
    assert caught.value.reason == "expression_error"
    with pytest.raises(pa.ArrowInvalid):
        expression.evaluate_table(records_to_table([big], Row))


@pytest.mark.parametrize(
    "text, says",
    [
        ("price > 1", "unknown field 'price'"),
        ("s + 1", "str + int in 's + 1': + needs numbers"),
        ("x % 2", "% needs integers"),
        ("s < 1", "cannot compare str with int"),
        ("b < true", "< does not order bool values"),
        ("not i", "not needs bool, got int"),
        ("i and b", "and needs bool, got int"),
        ("upper(i)", "upper() needs str, got int"),
        ("year(s)", "year() needs timestamp, got str"),
        ("epoch_seconds(x)", "epoch_seconds() needs timestamp, got float"),
        ("if_else(i, 1, 2)", "if_else()'s condition needs bool, got int"),
        ("if_else(b, s, i)", "if_else() of different types: int, str"),
        ("if_else(b, 1)", "if_else() takes a condition and two values of one type"),
        ("coalesce(s, i)", "coalesce() of different types: int, str"),
        ("if_else(i, 1, 0)", "if_else()'s condition needs bool, got int"),
        ("if_else(b, s, 1)", "if_else() of different types: int, str"),
        ("round(x, i)", "round()'s digits must be an int literal 0-15"),
        ("i in (1, 'a')", "compares different types"),
        ("i in (j)", "takes a list of non-null literals"),
        ("i is 1", "'is' compares with null only"),
        ("i = 1", "compare with =="),
        ("i ** 2", "is not part of the language"),
        ("9223372036854775808", "does not fit in 64 bits"),
        ("", "non-empty text"),
        # no eval: names, attributes, calls, subscripts, comprehensions are not the language
        ("__import__('os')", "'__import__' is not a function of the language"),
        ("__import__", "the name '__import__' is not allowed"),
        ("s.upper()", "'s.upper' is not a function of the language"),
        ("s.__class__", "Attribute"),
        ("s[0]", "Subscript"),
        ("(lambda: 1)()", "is not a function of the language"),
        ("[c for c in s]", "ListComp"),
        ("open('/etc/passwd')", "'open' is not a function of the language"),
        ("f'{s}'", "JoinedStr"),
        ("b'x'", "is not a number, string, true, false or null"),
        ("i if b else 0", "IfExp"),
    ],
)
def test_errors_name_the_expression_the_problem_and_the_fields(text, says):
    with pytest.raises(SchemaError) as caught:
        Expression(text, Row)
    message = str(caught.value)
    assert says in message
    if text:
        assert repr(text) in message and "fields available: i, j, x, y, s, t, b, ts" in message


def test_an_always_null_expression_has_no_field_type():
    with pytest.raises(SchemaError, match="always null"):
        Expression("null", Row).field_type


def test_deep_nesting_is_a_schema_error_not_a_crash():
    with pytest.raises(SchemaError, match="longer than 10000 characters") as caught:
        Expression("-" * 100000 + "1", Row)
    assert len(str(caught.value)) < 400  # the message shows the start of the text
    with pytest.raises(SchemaError, match="syntax error|cannot be parsed|nested too deeply"):
        Expression("(" * 2000 + "1" + ")" * 2000, Row)
    with pytest.raises(SchemaError, match="cannot be parsed|nested too deeply"):
        Expression("-" * 9000 + "1", Row)


# --------------------------------------------------------------------------
# Property: random expressions over random records, both evaluators agree

INT64 = st.integers(-(2**63), 2**63 - 1)
SMALL = st.integers(-1000, 1000)
ints = st.one_of(SMALL, INT64)
floats = st.floats(allow_nan=False, width=64)
texts = st.text(alphabet="aBc Zz", max_size=4)  # case mapping of ASCII (see docs/transforms.md)
rows = st.builds(
    Row,
    ints,
    st.none() | ints,
    floats,
    st.none() | floats,
    texts,
    st.none() | texts,
    st.none() | st.booleans(),
    st.integers(MIN_EVENT_MICROS, MAX_EVENT_MICROS).map(lambda m: Timestamp(micros=m)),
)


def _literal_int():
    return SMALL.map(str)


int_expr = st.recursive(
    st.sampled_from(["i", "j", "year(ts)", "hour(ts)", "second(ts)"]) | _literal_int(),
    lambda e: st.one_of(
        st.tuples(e, st.sampled_from(["+", "-", "*", "%"]), e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        e.map(lambda a: f"-({a})"),
        e.map(lambda a: f"abs({a})"),
        st.tuples(e, e).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    ),
    max_leaves=5,
)
num_expr = st.recursive(
    int_expr | st.sampled_from(["x", "y", "0.5", "-2.25", "0.0"]) | floats.map(repr).filter(lambda s: "inf" not in s),
    lambda e: st.one_of(
        st.tuples(e, st.sampled_from(["+", "-", "*", "/"]), e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(e, st.integers(0, 4)).map(lambda t: f"round({t[0]}, {t[1]})"),
        e.map(lambda a: f"abs({a})"),
        st.tuples(e, e).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    ),
    max_leaves=5,
)
str_expr = st.sampled_from(["s", "t", "'aB'", "lower(s)", "upper(t)", "coalesce(t, s)"])
bool_expr = st.recursive(
    st.one_of(
        st.tuples(num_expr, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), num_expr).map(" ".join),
        st.tuples(str_expr, st.sampled_from(["==", "<", ">="]), str_expr).map(" ".join),
        st.tuples(num_expr, st.sampled_from(["is null", "is not null"])).map(" ".join),
        st.tuples(int_expr, st.sampled_from(["in (1, 0, -7)", "not in (3)"])).map(" ".join),
        st.just("b"),
    ),
    lambda e: st.one_of(
        st.tuples(e, st.sampled_from(["and", "or"]), e).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        e.map(lambda a: f"not ({a})"),
    ),
    max_leaves=4,
)


@settings(max_examples=examples(150), deadline=None)
@given(text=st.one_of(num_expr, bool_expr, str_expr), records=st.lists(rows, min_size=1, max_size=6))
def test_property_per_record_and_columnar_agree(text, records):
    expression = Expression(text, Row)
    per_record, failed = [], False
    for r in records:
        try:
            per_record.append(expression.evaluate(r))
        except ExpressionError:
            failed = True
    try:
        columnar = expression.evaluate_table(records_to_table(records, Row)).to_pylist()
    except pa.ArrowInvalid:
        # the table is then evaluated record by record: the per-record values are the result
        return
    assert not failed, f"{text}: a record failed per record, but not in Arrow"
    assert _same(per_record, columnar), (text, per_record, columnar)


def test_chains_with_in_or_is_are_refused():
    with pytest.raises(SchemaError, match="chain only"):
        Expression("i in (1, 2) == b", Row)
