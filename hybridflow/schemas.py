"""Record types of hybridflow and the schema helpers every stage shares.

Records are ``typing.NamedTuple`` classes registered with Beam's ``RowCoder``
(:func:`register`), so they carry Beam schemas on every runner and work in
Beam SQL, YAML and DataFrames. Event time is a field of the record
(``event_time``, a :class:`apache_beam.utils.timestamp.Timestamp`); parsing
assigns the element timestamp from it.

Validation rules beyond types live next to the record in a class attribute
``constraints`` mapping a field name to :class:`Range`, :class:`OneOf` or
:class:`Pattern`; :class:`~hybridflow.transforms.ParseRecords` enforces them.

Fields holding personal data (names, record numbers, dates of birth) are
named in a class attribute ``sensitive`` (a tuple of field names,
:func:`sensitive_fields`): their values are masked wherever a record leaves
as text that is not one of the pipeline's outputs, that is dead-letter
payloads and messages (:class:`hybridflow.redaction.FieldRedactor`), unless
the user keeps them (``ParseRecords(keep_sensitive=True)``, ``hybridflow run
--keep_sensitive``).

Every stage that can fail on data emits :class:`DeadLetter` rows: one schema
for the whole package.
"""

# No `from __future__ import annotations` here: Beam reads the NamedTuple
# annotations as real types to derive schemas.

import dataclasses
import datetime
import json
import math
import re
import typing
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow._lazy import lazy_exports
from hybridflow.errors import SchemaError

__all__ = [
    "DeadLetter",
    "Alert",
    "LateRecord",
    "Range",
    "OneOf",
    "Pattern",
    "FieldInfo",
    "register",
    "sensitive_fields",
    "fields_of",
    "to_timestamp",
    "epoch_micros",
    "format_timestamp",
    "TIMESTAMP_UNITS",
    "to_plain",
]

# --------------------------------------------------------------------------
# Constraints


@dataclasses.dataclass(frozen=True)
class Range:
    """Inclusive numeric bounds; ``None`` leaves a side open."""

    min: Optional[float] = None
    max: Optional[float] = None

    def check(self, value: Any) -> Optional[str]:
        if self.min is not None and value < self.min:
            return f"{value!r} is below the minimum {self.min}"
        if self.max is not None and value > self.max:
            return f"{value!r} is above the maximum {self.max}"
        return None


@dataclasses.dataclass(frozen=True)
class OneOf:
    """The value must be one of ``values``."""

    values: frozenset

    def __init__(self, values: Sequence[Any]):
        object.__setattr__(self, "values", frozenset(values))

    def check(self, value: Any) -> Optional[str]:
        if value not in self.values:
            try:
                allowed = sorted(self.values)
            except TypeError:  # values of several types
                allowed = sorted(self.values, key=repr)
            return f"{value!r} is not one of {allowed}"
        return None


@dataclasses.dataclass(frozen=True)
class Pattern:
    """A string value must fully match ``regex``."""

    regex: str

    def check(self, value: Any) -> Optional[str]:
        if re.fullmatch(self.regex, value) is None:
            return f"{value!r} does not match {self.regex!r}"
        return None


# --------------------------------------------------------------------------
# Field introspection


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One field of a record type, with ``Optional`` and ``list`` unwrapped."""

    name: str
    type: Any  # the base type: str, int, float, bool, bytes, Timestamp
    optional: bool
    is_list: bool

    @property
    def hint(self) -> Any:
        """The field's type hint, ``list[...]`` and ``Optional[...]`` wrapped again."""
        tp = list[self.type] if self.is_list else self.type
        return Optional[tp] if self.optional else tp


_BASE_TYPES = (str, int, float, bool, bytes, Timestamp)


def _unwrap(name: str, tp: Any) -> FieldInfo:
    optional = False
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            raise SchemaError(f"field {name!r}: unions other than Optional[X] are not supported")
        optional, tp = True, args[0]
        origin = typing.get_origin(tp)
    is_list = False
    if origin in (list, Sequence, typing.List):
        (tp,) = typing.get_args(tp)
        is_list = True
    if tp not in _BASE_TYPES:
        raise SchemaError(
            f"field {name!r} has type {tp!r}; use one of str, int, float, bool, bytes, "
            "Timestamp, Optional[...] or list[...] of them"
        )
    return FieldInfo(name, tp, optional, is_list)


def fields_of(record_type: Any) -> list[FieldInfo]:
    """The fields of a NamedTuple class or a Beam ``RowTypeConstraint``, in order."""
    from apache_beam.typehints.row_type import RowTypeConstraint

    if isinstance(record_type, RowTypeConstraint):
        pairs = list(record_type._fields)
    elif isinstance(record_type, type) and issubclass(record_type, tuple) and hasattr(
        record_type, "_fields"
    ):
        hints = typing.get_type_hints(record_type)
        pairs = [(name, hints[name]) for name in record_type._fields]
    else:
        raise SchemaError(
            f"{record_type!r} is not a record type: use a typing.NamedTuple class "
            "(or a PCollection with a Beam schema); a step of your own that returns Arrow "
            "tables declares them with .with_output_types(hybridflow.columnar.arrow_tables("
            "RecordType, 'event_time_field'))"
        )
    return [_unwrap(name, tp) for name, tp in pairs]


def sensitive_fields(record_type: Any) -> tuple[str, ...]:
    """The fields of ``record_type`` its class attribute ``sensitive`` names
    (personal data to mask in dead letters and messages); ``()`` for a type
    without one (or that is not a record type).

    Raises :class:`~hybridflow.errors.SchemaError` when ``sensitive`` is not a
    tuple of field names of the type.
    """
    names = getattr(record_type, "sensitive", None) if isinstance(record_type, type) else None
    if not names:
        return ()
    where = getattr(record_type, "__name__", repr(record_type))
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise SchemaError(
            f"{where}.sensitive = {names!r}: use a tuple of field names, e.g. sensitive = ('name', 'mrn')"
        )
    known = getattr(record_type, "_fields", ())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SchemaError(
            f"{where}.sensitive names {unknown}, not fields of {where} ({', '.join(known)}); "
            "name only its own fields"
        )
    return tuple(names)


def register(record_type: type) -> type:
    """Registers ``record_type`` with Beam's RowCoder; usable as a decorator."""
    fields_of(record_type)  # validates field types early
    sensitive_fields(record_type)  # and the sensitive fields it names
    beam.coders.registry.register_coder(record_type, beam.coders.RowCoder)
    return record_type


# --------------------------------------------------------------------------
# Conversions


#: Epoch units of numeric timestamps: microseconds per unit.
TIMESTAMP_UNITS: Mapping[str, int] = {"s": 1_000_000, "ms": 1_000, "us": 1}

_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)
#: The event times hybridflow accepts: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z
#: (what RFC 3339 text, Python's datetime and BigQuery can all hold), in epoch microseconds.
MIN_EVENT_MICROS = (datetime.datetime(1, 1, 1, tzinfo=_UTC) - _EPOCH) // _MICROSECOND
MAX_EVENT_MICROS = (datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=_UTC) - _EPOCH) // _MICROSECOND


def epoch_micros(value: Any, unit: str = "s") -> int:
    """Epoch microseconds of a number of ``unit`` s (``s``, ``ms`` or ``us``).

    Integers convert exactly; a float is multiplied by the unit's microseconds
    in double precision and rounded half to even (so ``1767225600.123456`` s
    is ``1767225600123456`` us, as written). Raises ValueError for NaN and
    infinities; the result is not range-checked (see :func:`to_timestamp`).
    """
    factor = TIMESTAMP_UNITS[unit]
    if isinstance(value, int) and not isinstance(value, bool):
        return value * factor
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite timestamp")
        scaled = value * factor
        # a double that overflows once scaled is far outside the years 1-9999 either way
        return round(scaled) if math.isfinite(scaled) else int(math.copysign(1 << 64, scaled))
    raise ValueError(f"{value!r} is not a number")


def _in_range(micros: int, value: Any) -> Timestamp:
    if MIN_EVENT_MICROS <= micros <= MAX_EVENT_MICROS:
        return Timestamp(micros=micros)
    raise ValueError(f"{value!r} is outside the years 1-9999 (UTC)")


def _epoch(number: Any, value: Any, unit: str) -> Timestamp:
    """The Timestamp of an epoch ``number`` in ``unit`` (read from ``value``);
    out of range, the error names a smaller unit it would fit."""
    try:
        return _in_range(epoch_micros(number, unit), value)
    except ValueError as exc:
        smaller = [u for u, factor in TIMESTAMP_UNITS.items() if factor < TIMESTAMP_UNITS[unit]]
        fits = [u for u in smaller if MIN_EVENT_MICROS <= epoch_micros(number, u) <= MAX_EVENT_MICROS]
        if not math.isfinite(number) or not fits:
            raise
        raise ValueError(f"{exc}; if it is in epoch {fits[0]}, parse with timestamp_unit={fits[0]!r}") from None


def _datetime_micros(moment: datetime.datetime) -> int:
    """Exact epoch microseconds of a datetime (naive: UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return (moment - _EPOCH) // _MICROSECOND


def to_timestamp(value: Any, unit: str = "s") -> Timestamp:
    """Converts ISO-8601 text, an epoch number (or its text) in ``unit``, a
    datetime or a Timestamp to a Timestamp, exactly to the microsecond.

    ``unit`` (``s``, ``ms`` or ``us``) applies to numbers and numeric text
    only; ISO-8601 text without an offset and naive datetimes are UTC. Raises
    ValueError for anything else, for NaN and infinities, and for times
    outside 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z.
    """
    if unit not in TIMESTAMP_UNITS:
        raise ValueError(f"timestamp unit {unit!r}: use one of {', '.join(TIMESTAMP_UNITS)}")
    if isinstance(value, Timestamp):
        return _in_range(value.micros, value)
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, (int, float)):
        return _epoch(value, value, unit)
    if isinstance(value, datetime.datetime):
        return _in_range(_datetime_micros(value), value)
    if isinstance(value, str):
        text = value.strip()
        # no number has a ":", and ISO-8601 times do: skip two failed conversions per record
        for number in (int, float) if ":" not in text else ():
            try:
                parsed = number(text)
            except ValueError:
                continue
            if not math.isfinite(parsed):
                raise ValueError(f"{value!r} is not a finite timestamp")
            return _epoch(parsed, value, unit)
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{value!r} is neither ISO-8601 text nor an epoch number: {exc}") from None
        return _in_range(_datetime_micros(moment), value)
    raise ValueError(f"{value!r} is not a timestamp")


def format_timestamp(value: Timestamp) -> str:
    """RFC 3339 text of a Timestamp (``2026-01-01T00:00:05Z``, microseconds
    when there are any). A time outside the years 1-9999, such as the end of
    a window that starts in the last minute of 9999, has no RFC 3339 form: it
    is written in ISO 8601's expanded form (``+10000-01-01T00:00:00Z``) rather
    than failing the write."""
    if MIN_EVENT_MICROS <= value.micros <= MAX_EVENT_MICROS:
        return value.to_rfc3339()
    # the Gregorian calendar repeats every 400 years: shift into range, format, fix the year
    cycle = 146097 * 86400 * 1_000_000
    cycles = (value.micros - MIN_EVENT_MICROS) // cycle
    text = Timestamp(micros=value.micros - cycles * cycle).to_rfc3339()
    year = int(text[:4]) + 400 * cycles
    sign = "-" if year < 0 else ("+" if year > 9999 else "")
    return f"{sign}{abs(year):04d}{text[4:]}"


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def _plain(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return format_timestamp(value)
    if isinstance(value, float) and not math.isfinite(value):
        # JSON has no infinities (an exact sum beyond the float range rounds to one):
        # text, as the protobuf JSON mapping and BigQuery's JSON export write them
        return _NON_FINITE.get(value, "NaN")
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return value


def to_plain(record: Any) -> dict[str, Any]:
    """A JSON-ready dict of a record (NamedTuple, beam.Row or dict); Timestamps
    as RFC 3339 text (:func:`format_timestamp`), infinities and NaN as the
    text ``Infinity``, ``-Infinity``, ``NaN``."""
    if isinstance(record, Mapping):
        items = record.items()
    elif hasattr(record, "_asdict"):
        items = record._asdict().items()
    else:
        items = vars(record).items()
    return {k: _plain(v) for k, v in items}


def to_json(record: Any) -> str:
    """One JSON line for a record; keys in field order, UTF-8 kept as is."""
    return json.dumps(to_plain(record), ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------
# Record types


@register
class DeadLetter(NamedTuple):
    """A record that a stage could not process, with the reason.

    ``stage`` is the step label, ``error_type`` a short countable reason
    (``invalid_json``, ``missing_field``, ``out_of_range`` ...), ``payload`` the
    original input as text, ``failed_at`` the processing time of the failure.
    """

    stage: str
    error_type: str
    message: str
    payload: str
    failed_at: Timestamp


@register
class Alert(NamedTuple):
    """An alert raised by a rule of :class:`~hybridflow.transforms.ThresholdAlerts`.

    ``alert_id`` is deterministic (rule, key and event time), so re-runs and
    replays give the same ids and downstream sinks can de-duplicate.
    """

    alert_id: str
    rule: str
    key: str
    value: float
    threshold: float
    event_time: Timestamp
    window_start: Optional[Timestamp]
    window_end: Optional[Timestamp]
    message: str


@register
class LateRecord(NamedTuple):
    """A record that arrived after its window closed (past the allowed lateness).

    Emitted by :class:`~hybridflow.transforms.WindowedAggregate` on its
    ``late`` output instead of being dropped; ``record`` is the record as JSON.
    """

    stage: str
    key: str
    window_start: Timestamp
    window_end: Timestamp
    event_time: Timestamp
    record: str


# The fraud pipeline's records, still found here under the names YAML files
# give (schema: hybridflow.schemas.Transaction); imported when first asked for,
# as their module imports this one.
__getattr__, __dir__ = lazy_exports(
    __name__, {"Transaction": "hybridflow.pipelines.fraud.records", "CardProfile": "hybridflow.pipelines.fraud.records"}
)
