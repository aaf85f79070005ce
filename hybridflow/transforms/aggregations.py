"""Aggregation specs and the exact, order-independent accumulator behind them.

Sums, means and standard deviations are computed *exactly* (floats are
accumulated as scaled integers) and rounded once at the end, so the result
does not depend on the order in which a runner delivers records. That is what
lets a batch run and a streaming run of the same data agree to the last bit.

Functions: ``count``, ``sum``, ``min``, ``max``, ``mean``, ``stddev`` (sample),
``count_distinct`` (exact), and the approximate ``approx_distinct`` (HyperLogLog,
exact up to 1024 distinct values, then about 1.6 % standard error) and
``percentile`` (DDSketch, 1 % relative error). The approximate ones are
deterministic and mergeable too (:mod:`hybridflow.transforms.sketches`), so
they also agree bit for bit between batch and streaming.

Spec syntax (text, as in YAML)::

    count                      records
    count(field)               non-null values
    sum(amount) min(amount) max(amount) mean(amount) stddev(amount)
    count_distinct(card_id)    exact distinct values
    approx_distinct(card_id)   approximate distinct values
    percentile(amount, 0.99)   the 0.99 quantile (q between 0 and 1)
    p50(amount) p95(amount) p99.9(amount)   the same, as a percentage
    p95:nearest(amount)        the same by another rank definition: lower (the
                               default), nearest or linear (see sketches.py)

or a dict ``{"fn": "percentile", "field": "amount", "q": 0.99, "method": "nearest"}``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

from hybridflow.errors import SchemaError
from hybridflow.transforms.sketches import QUANTILE_METHODS, DistinctSketch, QuantileSketch

__all__ = ["Aggregation", "parse_aggregations", "Accumulator", "AGGREGATE_FUNCTIONS"]

_SCALE = 1074  # 2**-1074 is the smallest positive double: every float is an integer multiple
_ONE = 1 << _SCALE

# name -> (needs a field, output type)
AGGREGATE_FUNCTIONS: Mapping[str, tuple[bool, Any]] = {
    "count": (False, int),
    "sum": (True, float),
    "min": (True, Optional[float]),
    "max": (True, Optional[float]),
    "mean": (True, Optional[float]),
    "stddev": (True, Optional[float]),
    "count_distinct": (True, int),
    "approx_distinct": (True, int),
    "percentile": (True, Optional[float]),
}

# functions whose result has the field's type when the field is an int
_KEEPS_INT = ("sum", "min", "max")

_CALL = re.compile(
    r"^\s*((?:[a-z_]+|p\d+(?:\.\d+)?)(?::[a-z_]+)?)\s*"
    r"(?:\(\s*([A-Za-z_][A-Za-z0-9_]*)?\s*(?:,\s*([0-9.eE+-]+)\s*)?\))?\s*$"
)
_PERCENT = re.compile(r"^p(\d+(?:\.\d+)?)$")


@dataclasses.dataclass(frozen=True)
class Aggregation:
    """One output column: ``name = fn(field)``.

    ``count`` without a field counts records; with a field, non-null values.
    ``q`` is the quantile of ``percentile`` (0..1) and ``method`` its rank
    definition (``lower``, ``nearest`` or ``linear``; also written
    ``p95:nearest``).
    """

    name: str
    fn: str
    field: Optional[str] = None
    q: Optional[float] = None
    method: Optional[str] = None

    def __post_init__(self):
        fn, colon, method = (self.fn or "").partition(":")
        if colon:  # p95:nearest -> p95 with method nearest
            if self.method is not None and self.method != method:
                raise SchemaError(f"aggregation {self.name!r}: {self.fn} already names its method; drop method")
            object.__setattr__(self, "fn", fn)
            object.__setattr__(self, "method", method)
        percent = _PERCENT.match(self.fn or "")
        if percent:  # p95 -> percentile with q = 0.95
            if self.q is not None:
                raise SchemaError(f"aggregation {self.name!r}: {self.fn} already names its quantile; drop q")
            object.__setattr__(self, "q", float(percent.group(1)) / 100)
            object.__setattr__(self, "fn", "percentile")
        if self.fn not in AGGREGATE_FUNCTIONS:
            raise SchemaError(
                f"aggregation {self.name!r}: unknown function {self.fn!r}; "
                f"use one of {', '.join(AGGREGATE_FUNCTIONS)}"
            )
        needs_field, _ = AGGREGATE_FUNCTIONS[self.fn]
        if needs_field and not self.field:
            raise SchemaError(f"aggregation {self.name!r}: {self.fn} needs a field, e.g. {self.fn}(amount)")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise SchemaError(f"aggregation name {self.name!r} is not a valid field name")
        if self.fn == "percentile":
            if self.q is None:
                raise SchemaError(
                    f"aggregation {self.name!r}: percentile needs a quantile, e.g. "
                    "percentile(amount, 0.95) or p95(amount)"
                )
            q = float(self.q)
            if not 0.0 <= q <= 1.0:
                raise SchemaError(f"aggregation {self.name!r}: quantile {self.q!r} must be between 0 and 1 (p0..p100)")
            object.__setattr__(self, "q", q)
            method = self.method or QUANTILE_METHODS[0]
            if method not in QUANTILE_METHODS:
                raise SchemaError(
                    f"aggregation {self.name!r}: percentile method {method!r}; use one of "
                    f"{', '.join(QUANTILE_METHODS)} (e.g. p95:nearest(amount))"
                )
            object.__setattr__(self, "method", method)
        elif self.q is not None or self.method is not None:
            raise SchemaError(f"aggregation {self.name!r}: q and method only apply to percentile, not {self.fn}")

    @property
    def output_type(self):
        return AGGREGATE_FUNCTIONS[self.fn][1]

    def output_type_for(self, field_type: Any):
        """The output type when the aggregated field has ``field_type``:
        ``sum``, ``min`` and ``max`` of an ``int`` field are ``int`` (exact),
        of a ``float`` field ``float``; the other functions do not depend on it."""
        if field_type is int and self.fn in _KEEPS_INT:
            return int if self.fn == "sum" else Optional[int]
        return self.output_type


AggregationsLike = Union[Mapping[str, Any], Sequence[Any]]


def _one(name: str, spec: Any) -> Aggregation:
    if isinstance(spec, Aggregation):
        return spec
    if isinstance(spec, str):
        match = _CALL.match(spec)
        if not match:
            raise SchemaError(
                f"aggregation {name!r}: cannot read {spec!r}; write e.g. 'sum(amount)', 'count' "
                "or 'percentile(amount, 0.95)'"
            )
        q = match.group(3)
        if q is not None:
            try:
                q = float(q)
            except ValueError:
                raise SchemaError(f"aggregation {name!r}: {match.group(3)!r} in {spec!r} is not a number") from None
        return Aggregation(name, match.group(1), match.group(2), q)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"name", "fn", "field", "q", "method"}
        if unknown:
            raise SchemaError(f"aggregation {name!r}: unknown keys {sorted(unknown)}; use fn, field, q and method")
        return Aggregation(
            spec.get("name", name), spec.get("fn", ""), spec.get("field"), spec.get("q"), spec.get("method")
        )
    raise SchemaError(f"aggregation {name!r}: {spec!r} is not an aggregation spec")


def parse_aggregations(aggregations: AggregationsLike) -> tuple[Aggregation, ...]:
    """Reads ``{"total": "sum(amount)", "n": "count"}``, a list of
    :class:`Aggregation` or a list of dicts ``{name, fn, field}``."""
    if isinstance(aggregations, Mapping):
        result = tuple(_one(name, spec) for name, spec in aggregations.items())
    else:
        result = tuple(_one(getattr(s, "name", None) or (s.get("name") if isinstance(s, Mapping) else str(s)), s)
                       for s in aggregations)
    if not result:
        raise SchemaError("at least one aggregation is needed, e.g. {'n': 'count'}")
    names = [a.name for a in result]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SchemaError(f"aggregation names must be unique; repeated: {sorted(duplicates)}")
    return result


def _quotient(numerator: int, denominator: int) -> float:
    """``numerator / denominator`` correctly rounded; +-inf where that is
    beyond the largest float (an exact sum of floats can be), as IEEE rounds."""
    try:
        return numerator / denominator
    except OverflowError:
        return math.inf if (numerator > 0) == (denominator > 0) else -math.inf


def _sqrt_quotient(numerator: int, denominator: int) -> float:
    """``sqrt(numerator / denominator)`` for a non-negative ratio, even when
    the ratio itself is beyond the float range (a variance of values near
    1e308); +inf only when the root is too."""
    if numerator <= 0:
        return 0.0
    try:
        return math.sqrt(numerator / denominator)
    except OverflowError:
        half = (numerator.bit_length() - denominator.bit_length()) // 2 - 500  # scale the ratio by 4**-half into range
        try:
            return math.ldexp(math.sqrt(numerator / (denominator << (2 * half))), half)
        except OverflowError:
            return math.inf


def _exact(x: Any) -> int:
    """``x`` as an integer multiple of 2**-1074 (exact for every finite float)."""
    n, d = x.as_integer_ratio()
    return n << (_SCALE - d.bit_length() + 1)


class Accumulator:
    """Create/add/merge/extract for a tuple of aggregations.

    The accumulator is a plain list (picklable, cheap); slots per function:
    count -> [n]; sum -> [exact]; min/max -> [value or None];
    mean -> [n, exact]; stddev -> [n, exact, exact squares];
    count_distinct -> [set]; approx_distinct -> DistinctSketch;
    percentile -> QuantileSketch.

    ``integer_fields`` names the ``int`` fields: their ``sum``, ``min`` and
    ``max`` are Python ints, exact at any size (also above 2**53), as
    :meth:`Aggregation.output_type_for` declares; other fields' are floats.
    """

    def __init__(self, aggregations: Iterable[Aggregation], integer_fields: Iterable[str] = ()):
        self.aggregations = tuple(aggregations)
        integer_fields = frozenset(integer_fields)
        self._ints = tuple(a.fn in _KEEPS_INT and a.field in integer_fields for a in self.aggregations)
        #: names of the aggregations whose result is an exact int of an int field
        self.integers = frozenset(a.name for a, i in zip(self.aggregations, self._ints) if i)

    def create(self) -> list:
        acc: list = []
        for agg in self.aggregations:
            if agg.fn in ("count", "sum"):
                acc.append(0)
            elif agg.fn in ("min", "max"):
                acc.append(None)
            elif agg.fn == "mean":
                acc.append([0, 0])
            elif agg.fn == "stddev":
                acc.append([0, 0, 0])
            elif agg.fn == "approx_distinct":
                acc.append(DistinctSketch())
            elif agg.fn == "percentile":
                acc.append(QuantileSketch())
            else:
                acc.append(set())
        return acc

    def add(self, acc: list, record: Any) -> list:
        for i, agg in enumerate(self.aggregations):
            fn = agg.fn
            if fn == "count" and agg.field is None:
                acc[i] += 1
                continue
            value = getattr(record, agg.field)
            if value is None:
                continue
            if fn == "count":
                acc[i] += 1
            elif fn == "sum":
                acc[i] += value if self._ints[i] else _exact(value)
            elif fn == "min":
                acc[i] = value if acc[i] is None or value < acc[i] else acc[i]
            elif fn == "max":
                acc[i] = value if acc[i] is None or value > acc[i] else acc[i]
            elif fn == "mean":
                slot = acc[i]
                slot[0] += 1
                slot[1] += _exact(value)
            elif fn == "stddev":
                slot = acc[i]
                e = _exact(value)
                slot[0] += 1
                slot[1] += e
                slot[2] += e * e
            else:  # count_distinct (set), approx_distinct, percentile (sketches)
                acc[i].add(value)
        return acc

    def merge(self, accs: Iterable[list]) -> list:
        accs = iter(accs)
        result = next(accs, None)
        if result is None:
            return self.create()
        result = [_copy_slot(v) for v in result]
        for other in accs:
            for i, agg in enumerate(self.aggregations):
                fn, mine, theirs = agg.fn, result[i], other[i]
                if fn in ("count", "sum"):
                    result[i] = mine + theirs
                elif fn in ("min", "max"):
                    if theirs is not None and (
                        mine is None or (theirs < mine if fn == "min" else theirs > mine)
                    ):
                        result[i] = theirs
                elif fn in ("mean", "stddev"):
                    result[i] = [a + b for a, b in zip(mine, theirs)]
                elif fn == "count_distinct":
                    mine |= theirs
                else:
                    mine.merge(theirs)
        return result

    def extract(self, acc: list) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for agg, slot, integer in zip(self.aggregations, acc, self._ints):
            fn = agg.fn
            if fn == "count" or (integer and fn == "sum"):
                out[agg.name] = slot
            elif fn == "sum":
                out[agg.name] = _quotient(slot, _ONE)
            elif fn in ("min", "max"):
                out[agg.name] = None if slot is None else (int(slot) if integer else float(slot))
            elif fn == "mean":
                n, total = slot
                out[agg.name] = None if n == 0 else _quotient(total, n * _ONE)
            elif fn == "stddev":
                n, total, squares = slot
                if n < 2:
                    out[agg.name] = None
                else:
                    # sample variance, exact until the final rounding
                    numerator = n * squares - total * total
                    out[agg.name] = _sqrt_quotient(numerator, n * (n - 1) * _ONE * _ONE)
            elif fn == "count_distinct":
                out[agg.name] = len(slot)
            elif fn == "approx_distinct":
                out[agg.name] = slot.estimate()
            else:
                out[agg.name] = slot.quantile(agg.q, agg.method)
        return out


def _copy_slot(value):
    if isinstance(value, list):
        return list(value)
    if isinstance(value, set):
        return set(value)
    if isinstance(value, (DistinctSketch, QuantileSketch)):
        return value.copy()
    return value
