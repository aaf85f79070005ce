"""The expression language of :class:`~hybridflow.transforms.Filter`,
:class:`~hybridflow.transforms.Select` and :class:`~hybridflow.transforms.Derive`.

An expression is parsed once (by Python's ``ast`` module, keeping only a
whitelist of node types: nothing is ever evaluated with ``eval``), checked
against a record type, and compiled into two evaluators that give the same
values, nulls and errors:

- :meth:`Expression.evaluate` of one record (the per-element path), and
- :meth:`Expression.evaluate_table` of a ``pyarrow.Table`` (``pyarrow.compute``
  kernels, the columnar path).

Syntax::

    price                       a field of the record
    42  -1.5  'text'  "text"    int, float and string literals
    true  false  null           (also True, False, None)
    + - * / %  -x               arithmetic on numbers (% on integers only)
    == != < <= > >=             comparisons (a < b < c means a < b and b < c)
    and  or  not                boolean logic
    x in (1, 2, 3)  x not in ('a', 'b')
    x is null  x is not null
    abs(x)  round(x)  round(x, 2)  lower(s)  upper(s)  coalesce(a, b, ...)
    year(t) month(t) day(t) hour(t) minute(t) second(t)   parts of a timestamp (UTC)
    epoch_seconds(t)            a timestamp as float seconds since 1970-01-01 UTC
    if_else(c, a, b)            a when the condition c is true, else b (also when c is null)

Types and nulls (SQL's rules):

- ``int op int`` is an ``int`` for ``+ - * %``; ``/`` always gives a
  ``float`` (``7 / 2 == 3.5``). An ``int`` meeting a ``float`` is converted to
  ``float`` first. ``%`` takes the sign of the dividend (``-7 % 3 == -1``).
- Division or ``%`` by zero gives ``null``.
- Any arithmetic, comparison or function with a ``null`` operand gives
  ``null`` (except ``coalesce`` and ``is [not] null``). ``and``/``or``/``not``
  use three-valued logic: ``false and null`` is ``false``, ``true or null`` is
  ``true``, otherwise a ``null`` operand makes the result ``null``.
  :class:`~hybridflow.transforms.Filter` keeps a record only when its
  predicate is ``true`` (as SQL's ``WHERE``).
- ``if_else(c, a, b)`` is ``a`` where ``c`` is true, ``b`` where it is
  false or ``null`` (SQL's ``CASE WHEN c THEN a ELSE b END``;
  ``if_else(event_type == 'order', quantity, 0)`` counts the units of orders
  when summed).
- ``round`` rounds half to even; on an ``int`` it returns the value itself.
- A value that cannot be computed (an ``int`` result outside 64 bits, a
  ``round`` that overflows) is an error of that record: the transforms make
  it a dead letter (reason ``expression_error``), never a silent null.

Anything else (an unknown field or function, ``string + int``, attribute
access, subscripts, ``__import__('os')``) is a
:class:`~hybridflow.errors.SchemaError` at construction naming the
expression, the problem and the fields available.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime
import math
import operator
from typing import Any, Callable, Mapping, Optional, Sequence

from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import RecordError, SchemaError
from hybridflow.schemas import FieldInfo, fields_of

__all__ = ["Expression", "ExpressionError", "FUNCTIONS", "compile_expression"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_NULL = type(None)  # the type of the literal null
_NUMBERS = (int, float)
_MAX_LENGTH = 10_000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

#: The functions of the language: name -> what it takes.
FUNCTIONS: Mapping[str, str] = {
    "abs": "a number",
    "round": "a number and optionally a number of digits (an int literal 0-15)",
    "lower": "a string",
    "upper": "a string",
    "coalesce": "two or more values of one type",
    "year": "a timestamp",
    "month": "a timestamp",
    "day": "a timestamp",
    "hour": "a timestamp",
    "minute": "a timestamp",
    "second": "a timestamp",
    "epoch_seconds": "a timestamp",
    "if_else": "a condition and two values of one type",
}
_DATE_PARTS = ("year", "month", "day", "hour", "minute", "second")


class ExpressionError(RecordError):
    """A record's value cannot be computed (64-bit overflow, rounding overflow)."""

    def __init__(self, message: str):
        super().__init__("expression_error", message)


def _type_name(tp: Any) -> str:
    return "null" if tp is _NULL else ("timestamp" if tp is Timestamp else tp.__name__)


# --------------------------------------------------------------------------
# Compiled nodes: a type, whether the value can be null, and two evaluators


@dataclasses.dataclass(frozen=True)
class _Node:
    type: Any  # int, float, str, bool, bytes, Timestamp or _NULL
    nullable: bool
    row: Callable[[Any], Any]  # record -> value (None for null)
    arrow: Callable[[Any], Any]  # pyarrow.Table -> Array/ChunkedArray/Scalar
    can_fail: bool = False
    literal: bool = False


def _int64(value: int) -> int:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ExpressionError(f"the integer {value} does not fit in 64 bits")
    return value


def _pa():
    import pyarrow as pa
    import pyarrow.compute as pc

    return pa, pc


def _arrow_type(tp: Any):
    pa, _ = _pa()
    return {
        int: pa.int64(),
        float: pa.float64(),
        str: pa.string(),
        bool: pa.bool_(),
        bytes: pa.binary(),
        Timestamp: pa.timestamp("us", tz="UTC"),
        _NULL: pa.null(),
    }[tp]


def _as_float(node: _Node) -> _Node:
    """``node`` converted to float (an int widened as C and Arrow do)."""
    if node.type is not int:
        return node
    row = node.row

    def row_float(record):
        v = row(record)
        return None if v is None else float(v)

    def arrow_float(table):
        pa, pc = _pa()
        return pc.cast(node.arrow(table), pa.float64(), safe=False)

    return dataclasses.replace(node, type=float, row=row_float, arrow=arrow_float)


def _binary(left: _Node, right: _Node, tp, fn, kernel, nullable=None, can_fail=False) -> _Node:
    """``fn(a, b)`` of two non-null values; null when either is null (the right
    side is not evaluated when the left is null)."""
    lrow, rrow = left.row, right.row

    def row(record):
        a = lrow(record)
        if a is None:
            return None
        b = rrow(record)
        return None if b is None else fn(a, b)

    def arrow(table):
        return kernel(left.arrow(table), right.arrow(table))

    return _Node(
        tp,
        left.nullable or right.nullable if nullable is None else nullable,
        row,
        arrow,
        can_fail or left.can_fail or right.can_fail,
    )


def _unary(arg: _Node, tp, fn, kernel, nullable=None, can_fail=False) -> _Node:
    inner = arg.row

    def row(record):
        v = inner(record)
        return None if v is None else fn(v)

    return _Node(
        tp,
        arg.nullable if nullable is None else nullable,
        row,
        lambda table: kernel(arg.arrow(table)),
        can_fail or arg.can_fail,
    )


def _zero_to_null(values):
    """Arrow: the divisor with zeros replaced by null (division by zero is null)."""
    pa, pc = _pa()
    if isinstance(values, pa.Scalar):
        return pa.scalar(None, values.type) if values.is_valid and values.as_py() == 0 else values
    return pc.if_else(pc.equal(values, 0), pa.scalar(None, values.type), values)


def _maybe_zero(left: _Node, right: _Node) -> bool:
    """Whether ``left / right`` can be null: a null operand or a divisor that may be zero."""
    return left.nullable or right.nullable or not (right.literal and right.row(None) != 0)


def _truncated_mod(a: int, b: int) -> Optional[int]:
    if b == 0:
        return None
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def _arrow_mod(a, b):
    _, pc = _pa()
    b = _zero_to_null(b)
    return pc.subtract_checked(a, pc.multiply_checked(pc.divide_checked(a, b), b))


def _round_float(x: float, digits: int) -> float:
    """Rounds half to even at ``digits`` decimals, as Arrow's ``round`` kernel
    does (scale by 10**digits, round, scale back)."""
    if not math.isfinite(x):
        return x
    scale = 10.0**digits
    scaled = x * scale if digits > 0 else x
    if not math.isfinite(scaled):
        raise ExpressionError(f"round({x!r}, {digits}) overflows")
    if scaled - math.floor(scaled) == 0:
        return x
    rounded = float(round(scaled))
    out = rounded / scale if digits > 0 else rounded
    if not math.isfinite(out):
        raise ExpressionError(f"round({x!r}, {digits}) overflows")
    return out


def _date_part(part: str):
    def of(ts: Timestamp) -> int:
        moment = _EPOCH + datetime.timedelta(microseconds=ts.micros)
        return getattr(moment, part)

    return of


def _broadcast(value, n: int, tp: Any):
    """An Arrow array of ``n`` values from a kernel result (a constant is a Scalar)."""
    pa, pc = _pa()
    target = _arrow_type(tp)
    if isinstance(value, pa.Scalar):
        return pa.repeat(pa.scalar(value.as_py(), target) if value.is_valid else pa.scalar(None, target), n)
    if value.type != target:
        value = pc.cast(value, target)
    return value


# --------------------------------------------------------------------------
# The compiler: ast -> _Node


_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_KEYWORDS = {"true": True, "false": False, "null": None}


class _Compiler:
    def __init__(self, text: str, fields: Mapping[str, FieldInfo]):
        self.text = text
        self.fields = fields

    def fail(self, problem: str) -> SchemaError:
        available = ", ".join(self.fields) or "none"
        shown = self.text if len(self.text) <= 200 else self.text[:200] + "..."
        return SchemaError(f"expression {shown!r}: {problem} (fields available: {available})")

    # literals and fields

    def literal(self, value: Any) -> _Node:
        if isinstance(value, bool) or value is None:
            tp = bool if isinstance(value, bool) else _NULL
        elif isinstance(value, int):
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise self.fail(f"the integer {value} does not fit in 64 bits")
            tp = int
        elif isinstance(value, (float, str)):
            tp = type(value)
        else:
            raise self.fail(f"the literal {value!r} is not a number, string, true, false or null")

        def arrow(table):
            pa, _ = _pa()
            return pa.scalar(value, _arrow_type(tp))

        return _Node(tp, value is None, lambda record: value, arrow, literal=True)

    def field(self, name: str) -> _Node:
        info = self.fields.get(name)
        if info is None:
            raise self.fail(f"unknown field {name!r}")
        if info.is_list:
            raise self.fail(f"field {name!r} is a list; expressions work on single values")
        return _Node(
            info.type,
            info.optional,
            operator.attrgetter(name),
            lambda table: table.column(name),
        )

    # dispatch

    def compile(self, node: ast.AST) -> _Node:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:
            raise self.fail(f"{type(node).__name__} ({ast.unparse(node)!r}) is not part of the language")
        return method(node)

    def visit_Expression(self, node: ast.Expression) -> _Node:
        return self.compile(node.body)

    def visit_Constant(self, node: ast.Constant) -> _Node:
        return self.literal(node.value)

    def visit_Name(self, node: ast.Name) -> _Node:
        if node.id.startswith("__"):
            raise self.fail(f"the name {node.id!r} is not allowed")
        if node.id in _KEYWORDS:
            return self.literal(_KEYWORDS[node.id])
        return self.field(node.id)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> _Node:
        arg = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            self.need(arg, (bool,), "not")
            return self.logical_not(arg)
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            self.need(arg, _NUMBERS, "unary " + ("-" if isinstance(node.op, ast.USub) else "+"))
            if isinstance(node.op, ast.UAdd):
                return arg
            if arg.literal and arg.type is not _NULL:
                return self.literal(-arg.row(None))
            if arg.type is int:
                return _unary(arg, int, lambda v: _int64(-v), lambda a: _pa()[1].negate_checked(a), can_fail=True)
            return _unary(arg, arg.type, operator.neg, lambda a: _pa()[1].negate(a))
        raise self.fail(f"the operator {ast.unparse(node)!r} is not part of the language")

    def need(self, node: _Node, types: Sequence[Any], what: str) -> None:
        if node.type is not _NULL and node.type not in types:
            wanted = " or ".join(_type_name(t) for t in types)
            raise self.fail(f"{what} needs {wanted}, got {_type_name(node.type)}")

    def visit_BinOp(self, node: ast.BinOp) -> _Node:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise self.fail(f"the operator in {ast.unparse(node)!r} is not part of the language (use + - * / %)")
        left, right = self.compile(node.left), self.compile(node.right)
        for side in (left, right):
            if side.type is not _NULL and side.type not in _NUMBERS:
                raise self.fail(
                    f"{_type_name(left.type)} {op} {_type_name(right.type)} in {ast.unparse(node)!r}: "
                    f"{op} needs numbers"
                )
        _, pc = _pa()
        if op == "%":
            if int not in (left.type, right.type) or {left.type, right.type} - {int, _NULL}:
                raise self.fail(f"% needs integers, got {_type_name(left.type)} % {_type_name(right.type)}")
            return _binary(left, right, int, _truncated_mod, _arrow_mod, nullable=_maybe_zero(left, right))
        if op == "/":
            left, right = _as_float(left), _as_float(right)
            return _binary(
                left, right, float,
                lambda a, b: None if b == 0 else a / b,
                lambda a, b: pc.divide(a, _zero_to_null(b)),
                nullable=_maybe_zero(left, right),
            )
        integers = {left.type, right.type} <= {int, _NULL}
        if not integers:
            left, right = _as_float(left), _as_float(right)
        python = {"+": operator.add, "-": operator.sub, "*": operator.mul}[op]
        if integers:
            kernel = {"+": pc.add_checked, "-": pc.subtract_checked, "*": pc.multiply_checked}[op]
            return _binary(left, right, int, lambda a, b: _int64(python(a, b)), kernel, can_fail=True)
        kernel = {"+": pc.add, "-": pc.subtract, "*": pc.multiply}[op]
        return _binary(left, right, float, python, kernel)

    # comparisons

    def comparable(self, left: _Node, right: _Node, op: str, where: ast.AST) -> tuple[_Node, _Node]:
        lt, rt = left.type, right.type
        if _NULL in (lt, rt):
            return left, right
        if lt in _NUMBERS and rt in _NUMBERS:
            return (_as_float(left), _as_float(right)) if lt is not rt else (left, right)
        if lt is not rt:
            raise self.fail(f"cannot compare {_type_name(lt)} with {_type_name(rt)} in {ast.unparse(where)!r}")
        if op not in ("==", "!=") and lt in (bool, bytes):
            raise self.fail(f"{op} does not order {_type_name(lt)} values in {ast.unparse(where)!r}")
        return left, right

    def visit_Compare(self, node: ast.Compare) -> _Node:
        if len(node.ops) > 1 and any(isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)) for op in node.ops):
            raise self.fail(f"{ast.unparse(node)!r}: chain only == != < <= > >=; join the rest with and")
        parts = []
        left = self.compile(node.left)
        for op, comparator in zip(node.ops, node.comparators):
            if isinstance(op, (ast.Is, ast.IsNot)):
                right = self.compile(comparator)
                if right.type is not _NULL:
                    raise self.fail("write 'x is null' or 'x is not null'; 'is' compares with null only")
                parts.append(self.null_check(left, negate=isinstance(op, ast.IsNot)))
            elif isinstance(op, (ast.In, ast.NotIn)):
                parts.append(self.membership(left, comparator, negate=isinstance(op, ast.NotIn)))
                right = left  # not chained (refused above)
            else:
                symbol = _COMPARISONS[type(op)]
                right = self.compile(comparator)
                a, b = self.comparable(left, right, symbol, node)
                parts.append(self.comparison(a, b, symbol))
            left = right
        result = parts[0]
        for part in parts[1:]:
            result = self.logical(result, part, "and")
        return result

    def comparison(self, left: _Node, right: _Node, op: str) -> _Node:
        _, pc = _pa()
        python = {
            "==": operator.eq, "!=": operator.ne, "<": operator.lt,
            "<=": operator.le, ">": operator.gt, ">=": operator.ge,
        }[op]
        kernel = {
            "==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal,
            ">": pc.greater, ">=": pc.greater_equal,
        }[op]
        return _binary(left, right, bool, python, kernel)

    def null_check(self, arg: _Node, negate: bool) -> _Node:
        inner = arg.row
        _, pc = _pa()
        if negate:
            return _Node(bool, False, lambda record: inner(record) is not None, lambda t: pc.is_valid(arg.arrow(t)),
                         arg.can_fail)
        return _Node(bool, False, lambda record: inner(record) is None, lambda t: pc.is_null(arg.arrow(t)),
                     arg.can_fail)

    def membership(self, left: _Node, values_node: ast.AST, negate: bool) -> _Node:
        items = values_node.elts if isinstance(values_node, (ast.Tuple, ast.List)) else [values_node]
        values = []
        for item in items:
            value = self.compile(item)
            if not value.literal or value.type is _NULL:
                raise self.fail(f"'in (...)' takes a list of non-null literals, got {ast.unparse(item)!r}")
            values.append(value)
        types = {v.type for v in values}
        if left.type is not _NULL and not types <= {left.type} and not (types | {left.type}) <= set(_NUMBERS):
            raise self.fail(
                f"{_type_name(left.type)} in ({', '.join(_type_name(t) for t in sorted(types, key=_type_name))}) "
                f"compares different types"
            )
        if float in types and left.type is int:
            left = _as_float(left)
        if left.type is float:
            literals = [float(v.row(None)) for v in values]
        else:
            literals = [v.row(None) for v in values]
        members = frozenset(literals)
        inner = left.row
        pa, pc = _pa()

        def row(record):
            v = inner(record)
            if v is None:
                return None
            return (v in members) != negate

        def arrow(table):
            column = left.arrow(table)
            if isinstance(column, pa.Scalar):
                return pa.scalar(None if not column.is_valid else (column.as_py() in members) != negate, pa.bool_())
            found = pc.is_in(column, value_set=pa.array(literals, type=column.type))
            found = pc.invert(found) if negate else found
            return pc.if_else(pc.is_valid(column), found, pa.scalar(None, pa.bool_()))

        return _Node(bool, left.nullable, row, arrow, left.can_fail)

    # boolean logic

    def logical_not(self, arg: _Node) -> _Node:
        return _unary(arg, bool, operator.not_, lambda a: _pa()[1].invert(a))

    def logical(self, left: _Node, right: _Node, op: str) -> _Node:
        lrow, rrow = left.row, right.row
        _, pc = _pa()
        decides = op == "or"  # the value that decides alone: false for and, true for or

        def row(record):
            a, b = lrow(record), rrow(record)
            if a is decides or b is decides:
                return decides
            return None if a is None or b is None else not decides

        kernel = pc.or_kleene if decides else pc.and_kleene
        return _Node(
            bool, left.nullable or right.nullable, row,
            lambda table: kernel(left.arrow(table), right.arrow(table)),
            left.can_fail or right.can_fail,
        )

    def visit_BoolOp(self, node: ast.BoolOp) -> _Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        operands = [self.compile(v) for v in node.values]
        for operand in operands:
            self.need(operand, (bool,), op)
        result = operands[0]
        for operand in operands[1:]:
            result = self.logical(result, operand, op)
        return result

    # functions

    def visit_Call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(
                f"{ast.unparse(node.func)!r} is not a function of the language; use one of {', '.join(FUNCTIONS)}"
            )
        name = node.func.id
        if node.keywords:
            raise self.fail(f"{name}() takes positional arguments only")
        args = [self.compile(a) for a in node.args]
        _, pc = _pa()
        if name == "coalesce":
            return self.coalesce(args)
        if name == "round":
            return self.round(args, node)
        if name == "if_else":
            return self.if_else(args)
        if len(args) != 1:
            raise self.fail(f"{name}() takes one argument: {FUNCTIONS[name]}")
        (arg,) = args
        if name == "abs":
            self.need(arg, _NUMBERS, "abs()")
            if arg.type is int:
                return _unary(arg, int, lambda v: _int64(abs(v)), pc.abs_checked, can_fail=True)
            return _unary(arg, arg.type, abs, pc.abs)
        if name in ("lower", "upper"):
            self.need(arg, (str,), f"{name}()")
            return _unary(arg, str, getattr(str, name), getattr(pc, f"utf8_{name}"))
        self.need(arg, (Timestamp,), f"{name}()")
        if name == "epoch_seconds":
            # microseconds / 1e6 on both paths: one IEEE division of the same integer, the same bits
            return _unary(arg, float, lambda ts: ts.micros / 1e6,
                          lambda a: pc.divide(pc.cast(pc.cast(a, "int64"), "float64"), 1e6))
        return _unary(arg, int, _date_part(name), getattr(pc, name))

    def round(self, args: list, node: ast.Call) -> _Node:
        if not 1 <= len(args) <= 2:
            raise self.fail(f"round() takes {FUNCTIONS['round']}")
        arg = args[0]
        self.need(arg, _NUMBERS, "round()")
        digits = 0
        if len(args) == 2:
            d = args[1]
            if not d.literal or d.type is not int or not 0 <= d.row(None) <= 15:
                raise self.fail(f"round()'s digits must be an int literal 0-15, got {ast.unparse(node.args[1])!r}")
            digits = d.row(None)
        if arg.type is int:
            return arg
        _, pc = _pa()
        return _unary(
            arg, arg.type, lambda v: _round_float(v, digits),
            lambda a: pc.round(a, ndigits=digits, round_mode="half_to_even"),
            can_fail=True,
        )

    def if_else(self, args: list) -> _Node:
        if len(args) != 3:
            raise self.fail(f"if_else() takes {FUNCTIONS['if_else']}")
        cond, a, b = args
        self.need(cond, (bool,), "if_else()'s condition")
        types = {a.type, b.type} - {_NULL}
        if types and not (len(types) == 1 or types <= set(_NUMBERS)):
            raise self.fail(f"if_else() of different types: {', '.join(sorted(_type_name(t) for t in types))}")
        if types == {int, float}:
            a, b = _as_float(a), _as_float(b)
        tp = types.pop() if len(types) == 1 else (float if types else _NULL)
        pa, pc = _pa()
        when, then, other = cond.row, a.row, b.row

        def row(record):
            return then(record) if when(record) is True else other(record)

        def arrow(table):
            target = _arrow_type(tp)
            c = cond.arrow(table)
            if isinstance(c, pa.Scalar):  # a constant condition: broadcast it to the table's length
                c = pa.repeat(c if c.type == pa.bool_() else pa.scalar(None, pa.bool_()), table.num_rows)
            values = [v.cast(target) if isinstance(v, pa.Scalar) else pc.cast(v, target)
                      for v in (a.arrow(table), b.arrow(table))]
            return pc.if_else(pc.fill_null(c, False), *values)

        return _Node(tp, a.nullable or b.nullable, row, arrow, any(x.can_fail for x in args))

    def coalesce(self, args: list) -> _Node:
        if len(args) < 2:
            raise self.fail("coalesce() takes two or more values")
        types = {a.type for a in args} - {_NULL}
        if types and not (len(types) == 1 or types <= set(_NUMBERS)):
            raise self.fail(f"coalesce() of different types: {', '.join(sorted(_type_name(t) for t in types))}")
        if types == {int, float}:
            args = [_as_float(a) for a in args]
        tp = types.pop() if len(types) == 1 else (float if types else _NULL)
        rows = [a.row for a in args]
        pa, pc = _pa()

        def row(record):
            for r in rows:
                v = r(record)
                if v is not None:
                    return v
            return None

        def arrow(table):
            target = _arrow_type(tp)
            values = []
            for a in args:
                v = a.arrow(table)
                values.append(v.cast(target) if isinstance(v, pa.Scalar) else pc.cast(v, target))
            return pc.coalesce(*values)

        return _Node(tp, all(a.nullable for a in args), row, arrow, any(a.can_fail for a in args))


# --------------------------------------------------------------------------
# The public object


class Expression:
    """One expression, checked against a record type and compiled once.

    ``type`` is its value type (int, float, str, bool, bytes or Timestamp),
    ``nullable`` whether it can be null, :attr:`field_type` the annotation of
    a record field holding it (``Optional[...]`` when nullable).
    ``can_fail`` says whether some record can make it raise
    :class:`ExpressionError` (integer arithmetic, ``round``).
    """

    def __init__(self, text: str, record_type: Any):
        if not isinstance(text, str) or not text.strip():
            raise SchemaError(f"expression {text!r}: give the expression as non-empty text")
        fields = {f.name: f for f in fields_of(record_type)}
        compiler = _Compiler(text, fields)
        if len(text) > _MAX_LENGTH:
            raise compiler.fail(f"longer than {_MAX_LENGTH} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            hint = "; compare with ==" if "=" in text and "==" not in text else ""
            raise compiler.fail(f"syntax error at column {exc.offset}: {exc.msg}{hint}") from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise compiler.fail(f"cannot be parsed ({type(exc).__name__})") from None
        try:
            node = compiler.compile(tree)
        except RecursionError:
            raise compiler.fail("nested too deeply") from None
        self.text = text
        self.type = node.type
        self.nullable = node.nullable
        self.can_fail = node.can_fail
        self._node = node
        self._fail = compiler.fail

    @property
    def field_type(self) -> Any:
        """The annotation of a record field holding this expression's value."""
        if self.type is _NULL:
            raise self._fail("its value is always null, so it has no type; use coalesce(...) or a typed field")
        return Optional[self.type] if self.nullable else self.type

    def evaluate(self, record: Any) -> Any:
        """The value for one record (None for null); raises :class:`ExpressionError`."""
        return self._node.row(record)

    def evaluate_table(self, table) -> Any:
        """The values for every row of a ``pyarrow.Table``, as one Arrow array.

        Raises ``pyarrow.ArrowInvalid`` where :meth:`evaluate` would raise
        :class:`ExpressionError` for some row (the caller evaluates that
        table record by record to find the rows)."""
        return _broadcast(self._node.arrow(table), table.num_rows, self.type)

    def __repr__(self):
        return f"Expression({self.text!r})"


def compile_expression(text: str, record_type: Any) -> Expression:
    """Parses and checks ``text`` against ``record_type`` (raises SchemaError)."""
    return Expression(text, record_type)
