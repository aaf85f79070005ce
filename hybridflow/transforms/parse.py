"""ParseRecords: raw payloads -> typed records + dead letters."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any, Callable, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import RecordError, SchemaError
from hybridflow.metrics import EventTimeLag, counter
from hybridflow.schemas import TIMESTAMP_UNITS, DeadLetter, FieldInfo, fields_of, to_timestamp
from hybridflow.redaction import FieldRedactor
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter, Unreadable

__all__ = ["ParseRecords", "record_parser", "FORMATS", "MAX_JSON_DEPTH", "INT64_RANGE"]

FORMATS = ("auto", "json", "csv", "avro", "dict")
#: JSON nested deeper than this is invalid input (``invalid_json``): Python's
#: parser recurses per level and would otherwise fail with a RecursionError
#: at a depth that depends on the caller's stack.
MAX_JSON_DEPTH = 512
#: The values an ``int`` field holds: a 64-bit signed integer, as Beam's
#: RowCoder, Arrow and Parquet store it.
INT64_RANGE = (-(1 << 63), (1 << 63) - 1)
_BOM = "\ufeff"
_JSON_SPECIAL = re.compile(r'[\[\]{}"\\]')


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest (brackets in
    strings ignored); one pass over its brackets, quotes and backslashes."""
    depth = deepest = 0
    in_string = False
    escaped = -1
    for match in _JSON_SPECIAL.finditer(text):
        at, c = match.start(), match.group()
        if at == escaped:
            continue
        if in_string:
            if c == "\\":
                escaped = at + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _json_loads(text: str) -> Any:
    """``json.loads`` that raises ValueError, never RecursionError, for JSON
    nested deeper than :data:`MAX_JSON_DEPTH`."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except RecursionError:  # only with a stack already deep or a low recursion limit
        raise ValueError("nested too deeply for this Python's recursion limit") from None


def _coerce_str(value: Any) -> str:
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape such as "\ud800"
                raise RecordError("invalid_value", f"text is not valid Unicode: {exc.reason} at {exc.start}") from None
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise RecordError("invalid_type", f"expected text, got {type(value).__name__} {value!r}")


def _coerce_int(value: Any) -> int:
    if isinstance(value, bool):
        raise RecordError("invalid_type", f"expected an integer, got {value!r}")
    result = None
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str):
        try:
            result = int(value.strip())
        except ValueError:
            pass
    if result is None:
        raise RecordError("invalid_type", f"expected an integer, got {value!r}")
    if not INT64_RANGE[0] <= result <= INT64_RANGE[1]:
        raise RecordError("invalid_value", f"{value!r} does not fit a 64-bit integer")
    return result


def _coerce_float(value: Any) -> float:
    if isinstance(value, bool):
        raise RecordError("invalid_type", f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        try:
            result = float(value)
        except OverflowError:  # an int beyond a double's range
            raise RecordError("invalid_value", f"{value!r} is not a finite number") from None
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise RecordError("invalid_type", f"expected a number, got {value!r}") from None
    else:
        raise RecordError("invalid_type", f"expected a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(result):
        raise RecordError("invalid_value", f"{value!r} is not a finite number")
    return result


def _coerce_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise RecordError("invalid_type", f"expected true/false, got {value!r}")


def _coerce_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return _coerce_str(value).encode("utf-8")
    raise RecordError("invalid_type", f"expected bytes, got {type(value).__name__}")


def _timestamp_coercion(unit: str) -> Callable[[Any], Timestamp]:
    def coerce(value: Any) -> Timestamp:
        try:
            return to_timestamp(value, unit)
        except (ValueError, TypeError, OverflowError) as exc:
            raise RecordError("invalid_timestamp", str(exc)) from None

    return coerce


_COERCE: Mapping[Any, Callable[[Any], Any]] = {
    str: _coerce_str,
    int: _coerce_int,
    float: _coerce_float,
    bool: _coerce_bool,
    bytes: _coerce_bytes,
}


def _field_parser(field: FieldInfo, constraint, timestamp_unit: str) -> Callable[[Any], Any]:
    coerce = _timestamp_coercion(timestamp_unit) if field.type is Timestamp else _COERCE[field.type]
    check = constraint.check if constraint is not None else None

    def one(value):
        result = coerce(value)
        if check is not None:
            problem = check(result)
            if problem is not None:
                raise RecordError("invalid_value", problem)
        return result

    if field.is_list:

        def parse(value):
            if isinstance(value, str):
                try:
                    value = _json_loads(value)
                except ValueError:
                    raise RecordError("invalid_type", f"expected a list, got {value!r}") from None
            if not isinstance(value, (list, tuple)):
                raise RecordError("invalid_type", f"expected a list, got {type(value).__name__}")
            return [one(v) for v in value]

        return parse
    return one


def record_parser(
    schema: type, constraints: Optional[Mapping[str, Any]] = None, timestamp_unit: str = "s"
) -> Callable[[Mapping[str, Any]], Any]:
    """A function dict -> ``schema`` instance that raises :class:`RecordError`.

    Required fields are the non-``Optional`` ones; ``None`` or an empty string
    in an optional field gives ``None``. ``constraints`` defaults to the
    schema's ``constraints`` class attribute. Numbers in ``Timestamp`` fields
    are epoch ``timestamp_unit`` s (``s``, ``ms`` or ``us``).
    """
    if timestamp_unit not in TIMESTAMP_UNITS:
        raise SchemaError(f"timestamp_unit={timestamp_unit!r}: use one of {', '.join(TIMESTAMP_UNITS)}")
    fields = fields_of(schema)
    if constraints is None:
        constraints = getattr(schema, "constraints", None) or {}
    unknown = set(constraints) - {f.name for f in fields}
    if unknown:
        raise SchemaError(f"constraints name fields {sorted(unknown)} that {schema.__name__} does not have")
    parsers = [(f.name, f.optional, _field_parser(f, constraints.get(f.name), timestamp_unit)) for f in fields]

    def parse(data: Mapping[str, Any]):
        values = {}
        for name, optional, parse_field in parsers:
            value = data.get(name)
            if value is None or (optional and value == ""):
                if not optional:
                    raise RecordError("missing_field", f"required field {name!r} is missing", name)
                values[name] = None
                continue
            try:
                values[name] = parse_field(value)
            except RecordError as exc:
                raise RecordError(exc.reason, f"field {name!r}: {exc}", name) from None
        return schema(**values)

    return parse


class _ParseFn(beam.DoFn):
    def __init__(self, schema, timestamp_field, fmt, columns, constraints, stage, avro_schema, timestamp_unit,
                 redactor=None):
        self._redactor = redactor
        self._schema = schema
        self._timestamp_field = timestamp_field
        self._format = fmt
        self._columns = columns
        self._constraints = constraints
        self._stage = stage
        self._avro_schema = avro_schema
        self._timestamp_unit = timestamp_unit

    def setup(self):
        self._parse = record_parser(self._schema, self._constraints, self._timestamp_unit)
        self._dead = DeadLetterCounter(self._redactor)
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._lag = EventTimeLag()
        self._parsed_avro_schema = None
        if self._avro_schema is not None:
            import fastavro

            self._parsed_avro_schema = fastavro.parse_schema(self._avro_schema)

    def _decode(self, element) -> Mapping[str, Any]:
        fmt = self._format
        if isinstance(element, Mapping):
            return element
        if isinstance(element, Unreadable):
            raise RecordError(element.reason, element.message)
        if hasattr(element, "_asdict"):
            return element._asdict()
        if fmt == "avro":
            if not isinstance(element, bytes):
                raise RecordError("invalid_avro", f"expected Avro bytes, got {type(element).__name__}")
            import fastavro

            try:
                return fastavro.schemaless_reader(io.BytesIO(element), self._parsed_avro_schema)
            except Exception as exc:  # noqa: BLE001 - any decoding failure is this record's fault
                raise RecordError("invalid_avro", f"cannot decode Avro: {exc}") from None
        if isinstance(element, bytes):
            try:
                element = element.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RecordError("decode_error", f"not UTF-8: {exc}") from None
        if not isinstance(element, str):
            raise RecordError("invalid_type", f"cannot parse a {type(element).__name__}")
        element = element.removeprefix(_BOM)  # a UTF-8 byte-order mark, as Windows tools write it
        if fmt == "csv":
            try:
                rows = list(csv.reader([element]))
            except csv.Error as exc:
                raise RecordError("invalid_csv", f"bad CSV line: {exc}") from None
            row = rows[0] if rows else []
            if len(row) != len(self._columns):
                raise RecordError(
                    "invalid_csv", f"expected {len(self._columns)} columns, got {len(row)}"
                )
            return dict(zip(self._columns, row))
        try:
            data = _json_loads(element)
        except ValueError as exc:
            raise RecordError("invalid_json", f"invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise RecordError("not_an_object", f"expected a JSON object, got {type(data).__name__}")
        return data

    def process(self, element):
        self._in.inc()
        try:
            record = self._parse(self._decode(element))
        except RecordError as exc:
            record, problem = None, exc
        if record is None:
            yield self._dead.dead_letter(self._stage, problem.reason, str(problem), element)
        elif self._timestamp_field is None:
            self._out.inc()
            yield record
        else:
            self._out.inc()
            event_time = getattr(record, self._timestamp_field)
            self._lag.observe(event_time)
            yield beam.window.TimestampedValue(record, event_time)


class ParseRecords(beam.PTransform):
    """Parses raw payloads into typed records; bad input goes to dead letters.

    Input elements may be JSON text (str or bytes), CSV lines, Avro-encoded
    bytes, dicts (as Avro, Parquet and CSV readers give) or NamedTuples.
    Every field is coerced to the schema's type; required (non-``Optional``)
    fields must be present; ``constraints`` (default: the schema's
    ``constraints`` attribute) check ranges, enums and patterns. With a
    ``timestamp_field`` each record's element timestamp is its event time.

    ``Timestamp`` fields take ISO-8601 text (with or without fraction and
    offset; no offset means UTC) or epoch numbers (or numeric text) in
    ``timestamp_unit``, within the years 1-9999. No input raises: whatever
    cannot become a record is a dead letter with a reason (``invalid_json``,
    ``invalid_timestamp``, ``decode_error`` ...; see docs/transforms.md).

    Args:
      schema: the record type, a ``typing.NamedTuple`` class.
      timestamp_field: the event-time field (a ``Timestamp`` field), or
        ``None`` to keep the input timestamps.
      format: ``auto`` (JSON text, dicts, NamedTuples), ``json``, ``csv``,
        ``avro`` or ``dict``.
      columns: CSV column order; defaults to the schema's field order.
      constraints: field name -> ``Range`` / ``OneOf`` / ``Pattern``.
      avro_schema: writer schema of Avro-encoded input (``format='avro'``).
      stage: the stage name written into dead letters; default: the label.
      timestamp_unit: the unit of epoch numbers in ``Timestamp`` fields:
        ``s`` (default), ``ms`` or ``us``.
      keep_sensitive: keep the values of the schema's sensitive fields
        (its ``sensitive`` attribute) in dead-letter payloads and messages;
        by default they are masked (``[redacted]``, see docs/security.md).

    Returns a tuple-like result ``(records, dead_letters)`` with attributes
    ``.records`` and ``.dead_letters``; every input element is in exactly one.

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow import ParseRecords, Transaction
        >>> from hybridflow.testing import batch_pipeline
        >>> good = ('{"txn_id": "t1", "card_id": "c1", "customer_id": "u1", "merchant_id": "m1", '
        ...         '"category": "food", "amount": "12.50", "currency": "EUR", "country": "FR", '
        ...         '"event_time": "2026-01-01T00:00:05Z"}')
        >>> with batch_pipeline() as p:
        ...     parsed = p | beam.Create([good, '{"bad json']) | ParseRecords(Transaction)
        ...     _ = parsed.records | beam.Map(lambda t: print(t.txn_id, t.amount, t.event_time))
        ...     _ = parsed.dead_letters | beam.Map(lambda d: print(d.error_type))
        t1 12.5 Timestamp(1767225605)
        invalid_json
    """

    def __init__(
        self,
        schema: type,
        timestamp_field: Optional[str] = "event_time",
        format: str = "auto",
        columns: Optional[Sequence[str]] = None,
        constraints: Optional[Mapping[str, Any]] = None,
        avro_schema: Optional[Mapping[str, Any]] = None,
        stage: Optional[str] = None,
        timestamp_unit: str = "s",
        keep_sensitive: bool = False,
    ):
        super().__init__()
        fields = {f.name: f for f in fields_of(schema)}
        self._keep_sensitive = bool(keep_sensitive)
        if format not in FORMATS:
            raise SchemaError(f"ParseRecords: format={format!r}; use one of {', '.join(FORMATS)}")
        if timestamp_field is not None:
            if timestamp_field not in fields:
                raise SchemaError(
                    f"ParseRecords: timestamp_field={timestamp_field!r} is not a field of "
                    f"{schema.__name__} ({', '.join(fields)})"
                )
            if fields[timestamp_field].type is not Timestamp or fields[timestamp_field].optional:
                raise SchemaError(
                    f"ParseRecords: timestamp_field {timestamp_field!r} must be a required "
                    "Timestamp field"
                )
        if format == "avro" and avro_schema is None:
            from hybridflow.io.files import avro_schema as derive

            avro_schema = derive(schema)
        self._schema = schema
        self._timestamp_field = timestamp_field
        self._format = format
        self._columns = list(columns) if columns is not None else list(fields)
        self._constraints = constraints
        self._avro_schema = avro_schema
        self._stage = stage
        self._timestamp_unit = timestamp_unit
        record_parser(schema, constraints, timestamp_unit)  # validates constraints and unit now, not at run time

    def expand(self, pcoll):
        from hybridflow.columnar import is_columnar

        stage = self._stage or self.label
        fn = _ParseFn(
            self._schema,
            self._timestamp_field,
            self._format,
            self._columns,
            self._constraints,
            stage,
            self._avro_schema,
            self._timestamp_unit,
            FieldRedactor.of(self._schema, columns=self._columns if self._format == "csv" else None,
                             keep=self._keep_sensitive),
        )
        if is_columnar(pcoll):
            # Arrow tables of raw lines or columns (ReadFrom(..., columnar=True)):
            # vectorized, with this same per-element parser for the rows it cannot vouch for
            if self._format in ("csv", "avro"):
                raise SchemaError(
                    f"ParseRecords(format={self._format!r}) reads per-element payloads; columnar input "
                    "holds JSON lines or Parquet columns (use format='auto', 'json' or 'dict')"
                )
            from hybridflow.columnar.parse import ParseTables

            return pcoll | ParseTables(
                fn, self._schema, self._constraints, self._timestamp_field, DEAD_LETTERS, self._timestamp_unit
            )
        result = pcoll | "Parse" >> beam.ParDo(fn).with_output_types(self._schema).with_outputs(
            DEAD_LETTERS, main="records"
        )
        result[DEAD_LETTERS].element_type = DeadLetter
        return result
