"""Vectorized ParseRecords: Arrow tables of raw payloads -> Arrow tables of records.

Rows are decoded and validated column-wise (``pyarrow.json`` for JSON lines,
``pyarrow.compute`` / numpy for coercions and constraints). Every row the
vectorized checks cannot vouch for -- malformed JSON, a value of another
JSON type, a null, a constraint failure, text outside printable ASCII, a
timestamp not in the strict ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` form -- goes
through the per-element parser of :class:`~hybridflow.transforms.ParseRecords`
itself, which gives the record or the dead letter (reason, message, payload)
exactly as the per-element path does. The vectorized checks only accept rows
on which they agree with the per-element parser; the tests compare both on
random, partly malformed input.
"""

from __future__ import annotations

import re
from typing import Optional

import apache_beam as beam


from hybridflow.columnar import arrow_tables, records_to_table
from hybridflow.columnar.read import LINE, blank_lines, line_offsets
from hybridflow.metrics import counter
from hybridflow.schemas import OneOf, Pattern, Range, fields_of

__all__ = ["ParseTables"]

_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_ISO = _YEAR + r"-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z$"
_BISECT_LEAF = 64
_CONTROL = "[\\x00-\\x1f\\x7f]"
_ASCII_SPACE = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]"
_ISO_PREFIX = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}"
_EPOCH_TEXT = "1970-01-01T00:00:00Z"


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


def _lines_containing(buffer, offsets, literal: bytes):
    """Indices of the lines (by ``offsets`` into ``buffer``) containing ``literal``
    (a literal scan of the whole buffer, without copying it)."""
    import numpy as np

    search = re.compile(re.escape(literal))
    found = [m.start() for m in search.finditer(memoryview(buffer), int(offsets[0]), int(offsets[-1]))]
    return np.unique(np.searchsorted(offsets, np.array(found, dtype=np.int64), side="right") - 1)


class _Vectorizer:
    """Validates typed columns; returns the record table of the rows it accepts."""

    def __init__(self, schema, constraints):
        from hybridflow.io.files import arrow_schema

        self._fields = fields_of(schema)
        self._constraints = constraints
        self._arrow_schema = arrow_schema(schema)
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
            column = table.column(f.name).combine_chunks()
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
                valid = _pattern(column, constraint.regex)
            elif isinstance(constraint, OneOf):
                valid = pc.is_in(column, value_set=pa.array(sorted(constraint.values, key=repr)))
            elif constraint is None:  # any text is a valid str
                return np.ones(len(column), dtype=bool), column
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
        target = pa.timestamp("us", tz="UTC")
        if pa.types.is_timestamp(t) and t.unit in ("s", "ms", "us"):
            if t.tz is not None and t.tz not in ("UTC", "+00:00", "Z"):
                raise _Unsupported(f.name)
            micros = column.cast(pa.int64()) if t.unit == "us" else column.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
            return np.ones(len(column), dtype=bool), micros.cast(target)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise _Unsupported(f.name)
        return _timestamp_micros(column.cast(pa.string()))


_NON_SPACE = re.compile(r"^\\S\{(\d+),(\d+)\}$")


def _pattern(column, regex: str):
    """Python's ``re.fullmatch(regex, value)`` for ASCII values, False (left to
    the per-element parser) for the others. On ASCII text RE2 agrees with
    Python's ``re`` once control characters are excluded; ``\\S{a,b}`` is a
    length check plus "no ASCII whitespace" (Python's: ``\\t\\n\\v\\f\\r``,
    ``\\x1c``-``\\x1f`` and space)."""
    import pyarrow.compute as pc

    ascii_text = pc.string_is_ascii(column)
    bounds = _NON_SPACE.match(regex)
    if bounds:
        length = pc.binary_length(column)
        return pc.and_(
            pc.and_(ascii_text, pc.invert(pc.match_substring_regex(column, _ASCII_SPACE))),
            pc.and_(pc.greater_equal(length, int(bounds.group(1))), pc.less_equal(length, int(bounds.group(2)))),
        )
    return pc.and_(
        pc.and_(ascii_text, pc.invert(pc.match_substring_regex(column, _CONTROL))),
        pc.match_substring_regex(column, "^(?:" + regex + ")$"),
    )


def _timestamp_micros(column):
    """ISO-8601 text -> (valid mask, timestamp[us, UTC]): Arrow's ISO parser where it
    reads the whole column (it agrees with Python's fromisoformat wherever both
    accept a text, year 0 aside), else the strict form only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shaped = pc.match_substring_regex(column, _ISO_PREFIX).fill_null(False)
    try:
        stamps = pc.cast(pc.if_else(shaped, column, pa.scalar(_EPOCH_TEXT)), pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _iso_micros(column)
    valid = shaped.to_numpy(zero_copy_only=False) & ~pc.starts_with(column, "0000").fill_null(True).to_numpy(
        zero_copy_only=False
    )
    return valid, stamps


def _iso_micros(column):
    """Strict ISO-8601 UTC text -> (valid mask, timestamp[us, UTC]); other text invalid."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = pc.match_substring_regex(column, "^" + _ISO).fill_null(False).to_numpy(zero_copy_only=False)
    text = pc.if_else(pa.array(valid), column, pa.scalar("1970-01-01T00:00:00Z"))
    head = pc.utf8_slice_codeunits(text, 0, 19)
    seconds = pc.strptime(head, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    # strptime rolls over impossible dates (Feb 30) and leap seconds; Python rejects them
    again = pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    valid &= pc.equal(again, head).fill_null(False).to_numpy(zero_copy_only=False)
    fraction = pc.utf8_slice_codeunits(text, 20, 26)
    digits = pc.replace_substring_regex(fraction, "Z$", "")
    padded = pc.utf8_rpad(digits, 6, "0")
    frac = pc.if_else(pc.equal(digits, ""), pa.scalar("0"), padded).cast(pa.int64()).to_numpy()
    secs = seconds.cast(pa.int64()).fill_null(0).to_numpy()
    micros = secs * 1_000_000 + frac
    micros = np.where(valid, micros, 0)
    return valid, pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))


class _ParseTablesFn(beam.DoFn):
    """Arrow tables of raw lines or columns -> tables of records + dead letters."""

    def __init__(self, per_element_fn, schema, constraints, timestamp_field):
        self._fallback = per_element_fn
        self._schema = schema
        self._constraints = constraints
        self._timestamp_field = timestamp_field

    def setup(self):
        import pyarrow as pa

        self._fallback.setup()
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._fields = fields_of(self._schema)
        constraints = self._constraints
        if constraints is None:
            constraints = getattr(self._schema, "constraints", None) or {}
        try:
            self._vector: Optional[_Vectorizer] = _Vectorizer(self._schema, constraints)
        except _Unsupported:
            self._vector = None
        self._json_schema = pa.schema([(f.name, _json_type(f)) for f in self._fields])
        self._conflicts = _conflict_literals(self._fields)

    # -- per-element fallback ---------------------------------------------

    def _per_element(self, payloads, records: list, dead: list):
        for payload in payloads:
            for out in self._fallback.process(payload):
                if isinstance(out, beam.pvalue.TaggedOutput):
                    dead.append(out)
                else:
                    records.append(getattr(out, "value", out))

    # -- JSON lines ----------------------------------------------------------

    def _read_json(self, buffer):
        import pyarrow as pa
        import pyarrow.json as pj

        return pj.read_json(
            pa.BufferReader(buffer),
            read_options=pj.ReadOptions(block_size=1 << 20),  # blocks parse in parallel
            parse_options=pj.ParseOptions(explicit_schema=self._json_schema, unexpected_field_behavior="ignore"),
        )

    def _json_tables(self, lines, tables: list, fallback: list):
        """Parses ``lines`` (a binary array, newline-terminated values) into
        typed tables; lines pyarrow cannot read in bulk go to ``fallback``."""
        import pyarrow as pa

        if len(lines) == 0:
            return
        offsets = line_offsets(lines)
        start, stop = int(offsets[0]), int(offsets[-1])
        buffer = lines.buffers()[2].slice(start, stop - start)
        try:
            table = self._read_json(buffer)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is not None and table.num_rows == len(lines):
            tables.append((table, lines))
            return
        if len(lines) <= _BISECT_LEAF:
            fallback.extend(lines)
            return
        half = len(lines) // 2
        self._json_tables(lines.slice(0, half), tables, fallback)
        self._json_tables(lines.slice(half), tables, fallback)

    def _conflict_literals(self, lines, bulk):
        """The literals of the separator style the block's first object uses
        (``"a": "x"`` or ``"a":"x"``); a block mixing styles is bisected."""
        import numpy as np

        first = np.flatnonzero(bulk)
        if not len(first):
            return []
        sample = lines[int(first[0])].as_py()
        compact = b'": ' not in sample
        return [lit for lit in self._conflicts if (lit.endswith('":"') if compact else not lit.endswith('":"'))]

    def _from_lines(self, table, records, dead):
        import numpy as np
        import pyarrow as pa


        lines = table.column(LINE).combine_chunks()
        blank = set(blank_lines(table))
        n = len(lines)
        offsets = line_offsets(lines)
        data = np.frombuffer(lines.buffers()[2], dtype=np.uint8)
        lengths = offsets[1:] - offsets[:-1]
        last = data[np.maximum(offsets[1:] - 2, 0)]
        bulk = (data[offsets[:-1]] == ord("{")) & (last == ord("}")) & (lengths >= 3)
        for literal in self._conflict_literals(lines, bulk):
            bulk[_lines_containing(lines.buffers()[2], offsets, literal.encode())] = False

        fallback_lines = [lines[int(i)] for i in np.flatnonzero(~bulk) if int(i) not in blank]
        parsed: list = []
        if self._vector is None:
            fallback_lines = [lines[int(i)] for i in range(n) if i not in blank]
        else:
            kept = lines.filter(pa.array(bulk))
            self._json_tables(kept, parsed, fallback_lines)
        good = []
        for typed, source in parsed:
            try:
                ok, columns = self._vector.columns(typed)
            except _Unsupported:
                ok, columns = np.zeros(typed.num_rows, dtype=bool), {}
            if not ok.all():
                fallback_lines.extend(source.filter(pa.array(~ok)))
            if ok.any():
                good.append(self._table(columns, ok))
        self._per_element(
            [line.as_py().decode("utf-8").rstrip("\n").removesuffix("\r") for line in fallback_lines],
            records,
            dead,
        )
        return good

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
        mask = pa.array(ok)
        return pa.table([columns[f.name].filter(mask).cast(f.type) for f in schema], schema=schema)

    def process(self, table):
        import pyarrow as pa

        records: list = []
        dead: list = []
        if table.column_names == [LINE] and pa.types.is_large_binary(table.schema.field(LINE).type):
            good = self._from_lines(table, records, dead)
        else:
            good = self._from_columns(table, records, dead)
        vectorized = sum(t.num_rows for t in good)
        self._in.inc(vectorized)
        self._out.inc(vectorized)
        if records:
            good.append(records_to_table(records, self._schema))
        if good:
            yield pa.concat_tables(good) if len(good) > 1 else good[0]
        yield from dead


class ParseTables(beam.PTransform):
    """The columnar implementation behind ``ParseRecords`` on Arrow-table input."""

    def __init__(self, per_element_fn, schema, constraints, timestamp_field, dead_letters_tag):
        super().__init__()
        self._fn = _ParseTablesFn(per_element_fn, schema, constraints, timestamp_field)
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

