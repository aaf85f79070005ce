"""Vectorized ParseRecords: Arrow tables of raw payloads -> Arrow tables of records.

Rows are decoded and validated column-wise (``pyarrow.json`` for JSON lines,
``pyarrow.compute`` / numpy for coercions and constraints). Every row the
vectorized checks cannot vouch for -- malformed JSON, JSON nested deeper
than ``MAX_JSON_DEPTH``, a value of another JSON type, a null, a constraint
failure, text outside printable ASCII, a timestamp in another form than
``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|z|+HH:MM|+HHMM|+HH]`` or an epoch number
(JSON numbers, Parquet integer, float and timestamp columns) -- goes through
the per-element parser of :class:`~hybridflow.transforms.ParseRecords`
itself, which gives the record or the dead letter (reason, message, payload)
exactly as the per-element path does. The vectorized checks only accept rows
on which they agree with the per-element parser; the tests compare both on
random, partly malformed input.

Timestamps are computed in integer microseconds with the per-element
parser's rules (:func:`hybridflow.schemas.to_timestamp`): ISO text by
calendar arithmetic, integers exactly, floats as ``rint(value * unit)`` in
double precision. The JSON type of a timestamp column (text or number) is
read off the first lines of each block; lines of the other form go to the
per-element parser (text in a number column: found with the conflicts up
front; a number in a text column: looked for when pyarrow rejects a chunk).
"""

from __future__ import annotations

import concurrent.futures
import re
from typing import Optional

import apache_beam as beam


from apache_beam.utils.timestamp import Timestamp

from hybridflow.columnar import arrow_tables, one_array, records_to_table
from hybridflow.columnar.read import LINE, blank_lines, line_offsets
from hybridflow.io.files import text_or_bytes
from hybridflow.metrics import counter
from hybridflow.schemas import MAX_EVENT_MICROS, MIN_EVENT_MICROS, TIMESTAMP_UNITS, OneOf, Pattern, Range, fields_of
from hybridflow.transforms.parse import MAX_JSON_DEPTH

__all__ = ["ParseTables"]

_BISECT_LEAF = 64
# bytes that make a value leave the vectorized checks (inclusive ranges, compared
# with numpy over the values' bytes): non-ASCII, plus ASCII control characters for regexes, plus
# ASCII whitespace as Python's ``re`` sees it (\t\n\v\f\r, \x1c-\x1f, space) for \S
_NON_ASCII = ((128, 255),)  # inclusive byte ranges
_CONTROL = ((0, 31), (127, 255))
_SPACE = ((9, 13), (28, 32), (128, 255))
_ISO_WIDTH = 32  # the longest vouched ISO form: 19 + ".ffffff" + "+HH:MM"
_EXACT_DOUBLE = float(1 << 53)  # a float64 of a JSON integer below this is the integer itself
_SNIFF = 16  # lines looked at for the JSON type of a timestamp column
_SAMPLE = 4096  # rows sampled to decide whether a column repeats enough to check distinct values only
_CHUNK_BYTES = 2 << 20  # JSON text parsed per background read_json call


class _Unsupported(Exception):
    """A column whose Arrow type the vectorized path does not handle."""


def _json_type(field):
    import pyarrow as pa

    return {str: pa.string(), float: pa.float64(), int: pa.int64(), bool: pa.bool_()}.get(field.type, pa.string())


def _conflict_literals(fields) -> list:
    """Texts marking lines where a number or boolean field holds a JSON string
    (``"amount": "12,50"``), which would make pyarrow.json reject the block;
    other type conflicts are rarer and found by bisecting the block."""
    return [
        template % f.name
        for f in fields
        if f.type in (int, float, bool)
        for template in ('"%s": "', '"%s":"')
    ]


def _lines_containing(data: bytes, offsets, literal: bytes):
    """Indices of the lines (by ``offsets`` into ``data``) containing ``literal``
    (``bytes.find`` over the whole buffer: a few ms for 16 MiB)."""
    import numpy as np

    found = []
    stop = int(offsets[-1])
    at = data.find(literal, int(offsets[0]), stop)
    while at >= 0:
        found.append(at)
        at = data.find(literal, at + 1, stop)
    return np.unique(np.searchsorted(offsets, np.array(found, dtype=np.int64), side="right") - 1)


def _numbers_in(sample: list, name: str) -> bool:
    """Whether the first value of field ``name`` found in the ``sample`` lines is a JSON number."""
    key = f'"{name}":'.encode()
    for line in sample:
        at = line.find(key)
        if at >= 0:
            first = line[at + len(key):].lstrip()[:1]
            if first == b'"':
                return False
            if first and first in b"-0123456789":
                return True
    return False


def _too_deep(data, offsets):
    """numpy bool per line (by ``offsets`` into ``data``): it holds more than
    ``MAX_JSON_DEPTH`` opening brackets, so it may nest deeper than the
    per-element parser accepts (only lines that long can)."""
    import numpy as np

    n = len(offsets) - 1
    if not (np.diff(offsets) > MAX_JSON_DEPTH).any():
        return np.zeros(n, dtype=bool)
    span = data[offsets[0]: offsets[-1]]
    at = np.flatnonzero((span == ord("[")) | (span == ord("{"))) + offsets[0]
    return np.bincount(np.searchsorted(offsets, at, side="right") - 1, minlength=n)[:n] > MAX_JSON_DEPTH


class _Vectorizer:
    """Validates typed columns; returns the record table of the rows it accepts."""

    def __init__(self, schema, constraints, timestamp_unit: str = "s"):
        from hybridflow.io.files import arrow_schema

        self._fields = fields_of(schema)
        self._constraints = constraints
        self._unit = TIMESTAMP_UNITS[timestamp_unit]
        self._arrow_schema = arrow_schema(schema)
        self._repeats: dict = {f.name: {} for f in self._fields}  # see _pattern's cache
        for f in self._fields:
            if f.is_list or f.type is bytes:
                raise _Unsupported(f.name)

    def columns(self, table):
        """(accepted mask as numpy bool, {name: pyarrow array}) for ``table``."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        n = table.num_rows
        ok = np.ones(n, dtype=bool)
        out = {}
        names = set(table.column_names)
        for f in self._fields:
            if f.name not in names:
                if not f.optional:
                    return np.zeros(n, dtype=bool), {}
                out[f.name] = pa.nulls(n, self._arrow_schema.field(f.name).type)
                continue
            column = one_array(table.column(f.name))
            valid, values = self._field(f, column)
            null = column.is_null().to_numpy(zero_copy_only=False)
            if f.type is str and f.optional:
                null |= pc.equal(column, "").fill_null(False).to_numpy(zero_copy_only=False)
            if f.optional:
                values = pc.if_else(pa.array(null), pa.nulls(n, values.type), values)
                ok &= valid | null
            else:
                ok &= valid & ~null
            out[f.name] = values
        return ok, out

    def _field(self, f, column):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        constraint = self._constraints.get(f.name)
        t = column.type
        if f.type is str:
            if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                raise _Unsupported(f.name)
            column = column.cast(pa.string())
            if isinstance(constraint, Pattern):
                valid = _pattern(column, constraint.regex, self._repeats[f.name])
            elif isinstance(constraint, OneOf):
                valid = pc.is_in(column, value_set=pa.array(sorted(constraint.values, key=repr)))
            elif constraint is None:  # any text is a valid str, if it is UTF-8
                return _utf8_valid(column), column
            else:
                raise _Unsupported(f.name)
            return valid.fill_null(False).to_numpy(zero_copy_only=False), column
        if f.type in (float, int):
            if f.type is float and (pa.types.is_floating(t) or pa.types.is_integer(t)):
                column = column.cast(pa.float64(), safe=False)
                if pa.types.is_integer(t):
                    raise _Unsupported(f.name)  # float(int) of huge ints: leave to Python
                valid = np.isfinite(column.to_numpy(zero_copy_only=False))
            elif f.type is int and pa.types.is_integer(t):
                column = column.cast(pa.int64())
                valid = np.ones(len(column), dtype=bool)
            else:
                raise _Unsupported(f.name)
            if isinstance(constraint, Range):
                values = column.to_numpy(zero_copy_only=False)
                with np.errstate(invalid="ignore"):
                    if constraint.min is not None:
                        valid &= ~(values < constraint.min)
                    if constraint.max is not None:
                        valid &= ~(values > constraint.max)
            elif isinstance(constraint, OneOf):
                valid &= pc.is_in(column, value_set=pa.array(sorted(constraint.values), column.type)).fill_null(
                    False
                ).to_numpy(zero_copy_only=False)
            elif constraint is not None:
                raise _Unsupported(f.name)
            return valid & ~column.is_null().to_numpy(zero_copy_only=False), column
        if f.type is bool:
            if not pa.types.is_boolean(t) or constraint is not None:
                raise _Unsupported(f.name)
            return np.ones(len(column), dtype=bool), column
        # Timestamp
        if constraint is not None:
            raise _Unsupported(f.name)
        if pa.types.is_timestamp(t):  # Parquet: the column's own unit
            if t.unit not in TIMESTAMP_UNITS or (t.tz is not None and t.tz not in ("UTC", "+00:00", "Z")):
                raise _Unsupported(f.name)
            valid, micros = _integer_micros(column.cast(pa.int64()), TIMESTAMP_UNITS[t.unit])
        elif pa.types.is_integer(t):
            try:
                integers = column.cast(pa.int64())
            except pa.ArrowInvalid:  # uint64 beyond int64
                raise _Unsupported(f.name) from None
            valid, micros = _integer_micros(integers, self._unit)
        elif pa.types.is_floating(t):
            valid, micros = _float_micros(column.cast(pa.float64()), self._unit)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            valid, micros = _iso_micros(column)
        else:
            raise _Unsupported(f.name)
        return valid, pa.array(micros, pa.int64()).cast(pa.timestamp("us", tz="UTC"))


def _containing(column, flagged):
    """numpy bool per value of a string array: it holds a byte in one of the
    ``flagged`` inclusive ranges (comparisons over the values' bytes, no
    per-value work)."""
    import numpy as np

    n = len(column)
    hit = np.zeros(n, dtype=bool)
    raw = column.buffers()[2]
    if n == 0 or raw is None:
        return hit
    offsets = line_offsets(column)
    data = np.frombuffer(raw, dtype=np.uint8)[offsets[0]: offsets[-1]]
    flags = None
    for lo, hi in flagged:
        if lo == hi:
            f = data == lo
        elif hi == 255:
            f = data >= lo
        elif lo == 0:
            f = data <= hi
        else:
            f = (data - np.uint8(lo)) <= np.uint8(hi - lo)  # lo <= b <= hi, one wrapping subtraction
        flags = f if flags is None else flags | f
    positions = np.flatnonzero(flags) + offsets[0]
    if len(positions):
        hit[np.searchsorted(offsets, positions, side="right") - 1] = True
    return hit


def _utf8_valid(column):
    """numpy bool per value: valid UTF-8 (pyarrow.json copies string bytes
    without checking them); nulls count as valid here."""
    import numpy as np
    import pyarrow as pa

    ok = ~_containing(column, _NON_ASCII)
    if not ok.all():
        raw = column.cast(pa.binary())
        for i in np.flatnonzero(~ok):
            value = raw[int(i)].as_py()
            try:
                if value is not None:
                    value.decode("utf-8")
                ok[i] = True
            except UnicodeDecodeError:
                pass
    return ok


_NON_SPACE = re.compile(r"^\\S\{(\d+),(\d+)\}$")


def _pattern(column, regex: str, cache: Optional[dict] = None):
    """Python's ``re.fullmatch(regex, value)`` for ASCII values, False (left to
    the per-element parser) for the others and for nulls. On ASCII text RE2
    agrees with Python's ``re`` once control characters are excluded;
    ``\\S{a,b}`` is a length check plus "no ASCII whitespace" (Python's:
    ``\\t\\n\\v\\f\\r``, ``\\x1c``-``\\x1f`` and space). ``cache`` remembers, per
    column, whether its values repeat enough to check distinct values only
    (decided on the first long column; either way gives the same result)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(column)
    if n > _SAMPLE:
        repetitive = None if cache is None else cache.get("repetitive")
        if repetitive is None:
            repetitive = pc.count_distinct(column.slice(0, _SAMPLE)).as_py() <= _SAMPLE // 8
            if cache is not None:
                cache["repetitive"] = repetitive
        if repetitive:  # cards, currencies, countries: check each distinct value once
            encoded = pc.dictionary_encode(column)
            per_value = _pattern(encoded.dictionary, regex)
            return per_value.take(encoded.indices).fill_null(False)
    valid = column.is_valid().to_numpy(zero_copy_only=False) if column.null_count else np.ones(n, dtype=bool)
    bounds = _NON_SPACE.match(regex)
    if bounds:
        length = np.diff(line_offsets(column))
        ok = valid & ~_containing(column, _SPACE) & (length >= int(bounds.group(1))) & (length <= int(bounds.group(2)))
        return pa.array(ok)
    ok = valid & ~_containing(column, _CONTROL)
    matched = pc.match_substring_regex(column, "^(?:" + regex + ")$").fill_null(False).to_numpy(zero_copy_only=False)
    return pa.array(ok & matched)


def _in_range(micros):
    return (micros >= MIN_EVENT_MICROS) & (micros <= MAX_EVENT_MICROS)


def _integer_micros(column, factor: int):
    """Epoch numbers of an int64 array in units of ``factor`` microseconds ->
    (valid mask, micros): ``value * factor``, exactly, within the years 1-9999."""
    import numpy as np

    values = column.fill_null(0).to_numpy(zero_copy_only=False)
    valid = (values >= -(-MIN_EVENT_MICROS // factor)) & (values <= MAX_EVENT_MICROS // factor)
    return valid, np.where(valid, values, 0) * factor


def _float_micros(column, factor: int):
    """Epoch numbers of a float64 array -> (valid mask, micros):
    ``rint(value * factor)`` in double precision, as the per-element parser
    rounds a float. Values whose product reaches 2**53 are left to it: the
    array may hold JSON integers, which it multiplies exactly."""
    import numpy as np

    with np.errstate(invalid="ignore", over="ignore"):
        scaled = column.fill_null(0.0).to_numpy(zero_copy_only=False) * factor
        valid = np.abs(scaled) < _EXACT_DOUBLE  # False for NaN and infinities
    micros = np.rint(np.where(valid, scaled, 0.0)).astype(np.int64)
    valid &= _in_range(micros)
    return valid, micros


def _iso_micros(column):
    """ISO-8601 text -> (valid mask, epoch micros) for the forms
    ``YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}][Z|z|+HH:MM|+HHMM|+HH]`` (``-`` offsets
    too; none: UTC) of real dates and times within the years 1-9999 after the
    offset, where Python's ``datetime.fromisoformat`` gives the same time;
    other values (and nulls) are invalid. Calendar arithmetic over the first
    ``_ISO_WIDTH`` bytes of each value, gathered as one byte matrix (a row per
    byte position); no per-value Python."""
    import numpy as np

    n = len(column)
    offsets = line_offsets(column).astype(np.int64)
    starts, lengths = offsets[:-1] - offsets[0], offsets[1:] - offsets[:-1]
    raw = column.buffers()[2]
    padded = np.zeros(offsets[-1] - offsets[0] + _ISO_WIDTH, dtype=np.uint8)
    if raw is not None:
        padded[: len(padded) - _ISO_WIDTH] = np.frombuffer(raw, dtype=np.uint8)[offsets[0]: offsets[-1]]
    positions = np.arange(_ISO_WIDTH)
    b = padded[positions[:, None] + starts]  # b[j] = byte j of every value
    tail = b[19:]  # shorter values are invalid anyway; past the end of the longer ones, the next value's bytes
    tail[positions[19:, None] >= lengths] = 0
    d = b - np.uint8(48)  # digit values; > 9 (wrapped) where the byte is no digit
    digit = d <= 9
    rows = np.arange(n)

    def number(*at):
        """The decimal number in the bytes at ``at`` (a position per value) and whether they all are digits."""
        value = np.zeros(n, dtype=np.int64)
        good = np.ones(n, dtype=bool)
        for position in at:
            good &= digit[position, rows]
            value = value * 10 + d[position, rows]
        return value, good

    def fixed(first, width):
        value = np.zeros(n, dtype=np.int64)
        for position in range(first, first + width):
            value = value * 10 + d[position]
        return value

    ok = (lengths >= 19) & (lengths <= _ISO_WIDTH)
    if column.null_count:
        ok &= column.is_valid().to_numpy(zero_copy_only=False)
    ok &= digit[[0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]].all(axis=0)
    ok &= (b[4] == 45) & (b[7] == 45) & ((b[10] == 84) | (b[10] == 32)) & (b[13] == 58) & (b[16] == 58)
    year, month, day, hour, minute, second = (fixed(*field) for field in ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2)))
    # fraction: "." and 1-6 digits
    dot = b[19] == 46
    digits = np.zeros(n, dtype=np.int64)  # after the dot, counted up to 7
    alive = dot.copy()
    for position in range(20, 27):
        alive &= digit[position]
        digits += alive
    ok &= ~dot | ((digits >= 1) & (digits <= 6))
    fraction = (10 ** np.arange(5, -1, -1)) @ np.where(np.arange(6)[:, None] < digits, d[20:26], 0)
    # zone: nothing, Z/z, or a sign and HH, HHMM or HH:MM
    zone = 19 + np.where(dot, digits + 1, 0)
    rest = lengths - zone
    at = [np.minimum(zone + k, _ISO_WIDTH - 1) for k in range(6)]
    mark = b[at[0], rows]
    sign = np.where(mark == 43, 1, np.where(mark == 45, -1, 0))
    zoned = sign != 0
    zone_minutes = np.zeros(n, dtype=np.int64)
    offset = np.zeros(n, dtype=np.int64)
    if zoned.any():
        zone_hours, good_hours = number(at[1], at[2])
        short_minutes, good_short = number(at[3], at[4])
        long_minutes, good_long = number(at[4], at[5])
        zone_minutes = np.where(rest == 5, short_minutes, np.where(rest == 6, long_minutes, 0))
        zoned &= good_hours & (zone_hours <= 23) & (zone_minutes <= 59) & (
            (rest == 3) | ((rest == 5) & good_short) | ((rest == 6) & (b[at[3], rows] == 58) & good_long))
        offset = sign * (zone_hours * 3600 + zone_minutes * 60)
    ok &= (rest == 0) | ((rest == 1) & ((mark == 90) | (mark == 122))) | zoned
    # a real date and time (proleptic Gregorian), then days since 1970-01-01
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    y = year - (month <= 2)
    era_year = y % 400
    march_based = (month + 9) % 12
    days = (y // 400) * 146097 + era_year * 365 + era_year // 4 - era_year // 100 + (153 * march_based + 2) // 5 + day - 719469
    micros = (days * 86400 + hour * 3600 + minute * 60 + second - offset) * 1_000_000 + fraction
    ok &= _in_range(micros)
    return ok, np.where(ok, micros, 0)


class _ParseTablesFn(beam.DoFn):
    """Arrow tables of raw lines or columns -> tables of records + dead letters."""

    def __init__(self, per_element_fn, schema, constraints, timestamp_field, timestamp_unit):
        self._fallback = per_element_fn
        self._schema = schema
        self._constraints = constraints
        self._timestamp_field = timestamp_field
        self._timestamp_unit = timestamp_unit

    def setup(self):
        self._fallback.setup()
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._fields = fields_of(self._schema)
        constraints = self._constraints
        if constraints is None:
            constraints = getattr(self._schema, "constraints", None) or {}
        try:
            self._vector: Optional[_Vectorizer] = _Vectorizer(self._schema, constraints, self._timestamp_unit)
        except _Unsupported:
            self._vector = None
        self._json_types = [(f.name, _json_type(f)) for f in self._fields]
        self._stamps = {f.name for f in self._fields if f.type is Timestamp and not f.is_list}
        self._conflicts = _conflict_literals(self._fields)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hybridflow-json")

    # -- per-element fallback ---------------------------------------------

    def _per_element(self, payloads, records: list, dead: list):
        for payload in payloads:
            for out in self._fallback.process(payload):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    dead.append(out)
                else:
                    records.append(getattr(out, "value", out))

    # -- JSON lines ----------------------------------------------------------

    def _read_json(self, buffer, schema):
        import pyarrow as pa
        import pyarrow.json as pj

        return pj.read_json(
            pa.BufferReader(buffer),
            # one thread (this runs on the background thread; the main thread keeps the
            # other core) and one block, so one chunk per column
            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, buffer.size + 1)),
            parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )

    def _try_read_json(self, lines, schema):
        """The typed table (``schema``) of ``lines`` (a binary array of
        newline-terminated values) if pyarrow reads all of them in one go, else None."""
        import pyarrow as pa

        offsets = line_offsets(lines)
        start, stop = int(offsets[0]), int(offsets[-1])
        try:
            table = self._read_json(lines.buffers()[2].slice(start, stop - start), schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return table if table.num_rows == len(lines) else None

    def _json_tables(self, lines, schema, tables: list, fallback: list, table):
        """Typed tables of ``lines`` into ``tables``, given ``table``, what
        :meth:`_try_read_json` gave for all of them: a block pyarrow cannot
        read in one go is bisected, lines it cannot read at all go to ``fallback``."""
        if len(lines) == 0:
            return
        if table is not None:
            tables.append((table, lines))
            return
        if len(lines) <= _BISECT_LEAF:
            fallback.extend(lines)
            return
        half = len(lines) // 2
        for part in (lines.slice(0, half), lines.slice(half)):
            self._json_tables(part, schema, tables, fallback, self._try_read_json(part, schema))

    def _block_layout(self, lines, bulk):
        """(pyarrow schema, literals marking a line that would make pyarrow
        reject the block, literals marking a number in a text timestamp column)
        for a block, from its first regular lines: their separator style
        (``"a": "x"`` or ``"a":"x"``; a block mixing styles is bisected) and
        the JSON type of each timestamp field, text or number (float64)."""
        import numpy as np
        import pyarrow as pa

        sample = [lines[int(i)].as_py() for i in np.flatnonzero(bulk)[:_SNIFF]]
        if not sample:
            return None, [], []
        compact = b'": ' not in sample[0]
        separator = '":' if compact else '": '
        conflicts = [lit for lit in self._conflicts if (lit.endswith('":"') if compact else not lit.endswith('":"'))]
        types, other_form = [], []
        for name, json_type in self._json_types:
            if name in self._stamps:
                prefix = f'"{name}{separator}'
                if _numbers_in(sample, name):  # text timestamps: one literal, looked for at once like the conflicts
                    json_type = pa.float64()
                    conflicts.append(prefix + '"')
                else:  # numbers: eleven literals, looked for only in a chunk pyarrow rejects
                    other_form.extend(prefix + c for c in "-0123456789")
            types.append((name, json_type))
        return pa.schema(types), [c.encode() for c in conflicts], [o.encode() for o in other_form]

    def _from_lines(self, table):
        """Typed tables and dead letters for a table of raw lines.

        Lines that look like one JSON object each and hold no literal that
        would make pyarrow reject their block are "regular". The lines are cut
        into chunks of about ``_CHUNK_BYTES``; a background thread keeps each
        chunk's regular lines and hands them to ``pyarrow.json`` (pyarrow
        releases the GIL) while this thread parses the irregular lines one by
        one, validates the chunks parsed so far column-wise and runs the fused
        steps downstream of each yielded table. (Measured on 2 cores: validating
        on the background thread as well was slower, its many short compute
        calls contend for the GIL; so was scanning for the literals there with
        ``pyarrow.compute.match_substring``, 3x slower than ``bytes.find``.)"""
        import numpy as np

        lines = one_array(table.column(LINE))
        blank = set(blank_lines(table))
        offsets = line_offsets(lines)
        data = np.frombuffer(lines.buffers()[2], dtype=np.uint8)
        lengths = offsets[1:] - offsets[:-1]
        last = data[np.maximum(offsets[1:] - 2, 0)]
        bulk = (data[offsets[:-1]] == ord("{")) & (last == ord("}")) & (lengths >= 3)
        if self._vector is None:
            bulk[:] = False
        bulk &= ~_too_deep(data, offsets)
        schema, literals, other_form = self._block_layout(lines, bulk)
        if literals:
            raw = lines.buffers()[2].to_pybytes()
            for literal in literals:
                bulk[_lines_containing(raw, offsets, literal)] = False

        bounds = _chunk_bounds(lines, _CHUNK_BYTES)
        pending = [
            self._pool.submit(self._read_chunk, lines.slice(a, b - a), bulk[a:b], schema, other_form) for a, b in bounds
        ]
        try:
            # the irregular lines, one by one, while the first chunks parse
            yield from self._emit([], [lines[int(i)] for i in np.flatnonzero(~bulk) if int(i) not in blank])
            for future in pending:
                kept, typed, fallback = future.result()
                results = []
                if typed is not None:
                    results = [self._vectorize(typed, kept)]
                elif kept is not None and len(kept):  # pyarrow could not read the chunk in one go: bisect it here
                    parsed: list = []
                    self._json_tables(kept, schema, parsed, fallback, None)
                    results = [self._vectorize(t, source) for t, source in parsed]
                for _, rejected in results:
                    if rejected is not None:
                        fallback.extend(rejected)
                yield from self._emit([good for good, _ in results if good is not None], fallback)
        finally:
            for future in pending:
                future.cancel()

    def _read_chunk(self, lines, bulk, schema, other_form):
        """(the ``bulk`` lines, their typed table or None if pyarrow cannot read
        them in one go, lines set aside for the per-element parser); (None,
        None, []) without bulk lines. When pyarrow rejects the lines, those
        holding a timestamp of the other form (``other_form`` literals) are set
        aside and the rest read again. Runs on the background thread (pyarrow
        releases the GIL)."""
        import numpy as np
        import pyarrow as pa

        if not bulk.any():
            return None, None, []
        kept = lines if bulk.all() else lines.filter(pa.array(bulk))
        typed = self._try_read_json(kept, schema)
        if typed is not None or not other_form:
            return kept, typed, []
        raw, offsets = kept.buffers()[2].to_pybytes(), line_offsets(kept)
        other = np.zeros(len(kept), dtype=bool)
        for literal in other_form:
            other[_lines_containing(raw, offsets, literal)] = True
        if not other.any():
            return kept, None, []
        kept, aside = kept.filter(pa.array(~other)), list(kept.filter(pa.array(other)))
        return kept, (self._try_read_json(kept, schema) if len(kept) else None), aside

    def _vectorize(self, typed, source):
        """(record table or None, rejected source lines or None) for a typed table."""
        import numpy as np
        import pyarrow as pa

        try:
            ok, columns = self._vector.columns(typed)
        except _Unsupported:
            ok, columns = np.zeros(typed.num_rows, dtype=bool), {}
        rejected = None if ok.all() else source.filter(pa.array(~ok))
        return (self._table(columns, ok) if ok.any() else None), rejected

    def _emit(self, good: list, lines: list):
        """Counts the vectorized rows of ``good``, parses ``lines`` one by one,
        and yields one table of records and the dead letters."""
        records: list = []
        dead: list = []
        self._per_element([text_or_bytes(line.as_py().rstrip(b"\n").removesuffix(b"\r")) for line in lines],
                          records, dead)
        yield from self._yield(good, records, dead)

    def _yield(self, good: list, records: list, dead: list):
        import pyarrow as pa

        vectorized = sum(t.num_rows for t in good)
        self._in.inc(vectorized)
        self._out.inc(vectorized)
        if records:
            good.append(records_to_table(records, self._schema))
        if good:
            yield pa.concat_tables(good) if len(good) > 1 else good[0]
        yield from dead

    # -- columns (Parquet) -------------------------------------------------

    def _from_columns(self, table, records, dead):
        import numpy as np
        import pyarrow as pa

        if self._vector is not None:
            try:
                ok, columns = self._vector.columns(table)
            except _Unsupported:
                ok, columns = np.zeros(table.num_rows, dtype=bool), {}
        else:
            ok, columns = np.zeros(table.num_rows, dtype=bool), {}
        if not ok.all():
            self._per_element(table.filter(pa.array(~ok)).to_pylist(), records, dead)
        return [self._table(columns, ok)] if ok.any() else []

    def _table(self, columns, ok):
        import pyarrow as pa

        schema = self._vector._arrow_schema
        if ok.all():
            return pa.table([columns[f.name].cast(f.type) for f in schema], schema=schema)
        mask = pa.array(ok)
        return pa.table([columns[f.name].filter(mask).cast(f.type) for f in schema], schema=schema)

    def process(self, table):
        import pyarrow as pa

        if table.column_names == [LINE] and pa.types.is_large_binary(table.schema.field(LINE).type):
            yield from self._from_lines(table)
        else:
            records: list = []
            dead: list = []
            good = self._from_columns(table, records, dead)
            yield from self._yield(good, records, dead)

    def teardown(self):
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _chunk_bounds(lines, size: int) -> list:
    """(start, stop) line indices cutting ``lines`` into slices of about ``size`` bytes."""
    import numpy as np

    if not len(lines):
        return []
    offsets = line_offsets(lines)
    cuts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], size), side="left")
    bounds = sorted(set(int(c) for c in cuts) | {0, len(lines)})
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


class ParseTables(beam.PTransform):
    """The columnar implementation behind ``ParseRecords`` on Arrow-table input."""

    def __init__(self, per_element_fn, schema, constraints, timestamp_field, dead_letters_tag, timestamp_unit="s"):
        super().__init__()
        self._fn = _ParseTablesFn(per_element_fn, schema, constraints, timestamp_field, timestamp_unit)
        self._schema = schema
        self._ts = timestamp_field
        self._tag = dead_letters_tag

    def expand(self, pcoll):
        from hybridflow.schemas import DeadLetter

        result = pcoll | "Parse" >> beam.ParDo(self._fn).with_output_types(
            arrow_tables(self._schema, self._ts)
        ).with_outputs(self._tag, main="records")
        result[self._tag].element_type = DeadLetter
        return result

