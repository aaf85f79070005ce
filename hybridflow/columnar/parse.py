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

import concurrent.futures
import re
from typing import Optional

import apache_beam as beam


from hybridflow.columnar import arrow_tables, one_array, records_to_table
from hybridflow.columnar.read import LINE, blank_lines, line_offsets
from hybridflow.io.files import text_or_bytes
from hybridflow.metrics import counter
from hybridflow.schemas import OneOf, Pattern, Range, fields_of

__all__ = ["ParseTables"]

_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_ISO = _YEAR + r"-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z$"
_BISECT_LEAF = 64
# bytes that make a value leave the vectorized checks (inclusive ranges, compared
# with numpy over the values' bytes): non-ASCII, plus ASCII control characters for regexes, plus
# ASCII whitespace as Python's ``re`` sees it (\t\n\v\f\r, \x1c-\x1f, space) for \S
_NON_ASCII = ((128, 255),)  # inclusive byte ranges
_CONTROL = ((0, 31), (127, 255))
_SPACE = ((9, 13), (28, 32), (128, 255))
_ISO_PREFIX = "^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}"
_EPOCH_TEXT = "1970-01-01T00:00:00Z"
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


class _Vectorizer:
    """Validates typed columns; returns the record table of the rows it accepts."""

    def __init__(self, schema, constraints):
        from hybridflow.io.files import arrow_schema

        self._fields = fields_of(schema)
        self._constraints = constraints
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
        target = pa.timestamp("us", tz="UTC")
        if pa.types.is_timestamp(t) and t.unit in ("s", "ms", "us"):
            if t.tz is not None and t.tz not in ("UTC", "+00:00", "Z"):
                raise _Unsupported(f.name)
            micros = column.cast(pa.int64()) if t.unit == "us" else column.cast(pa.timestamp("us", tz=t.tz)).cast(pa.int64())
            return np.ones(len(column), dtype=bool), micros.cast(target)
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            raise _Unsupported(f.name)
        return _timestamp_micros(column.cast(pa.string()))


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


def _timestamp_micros(column):
    """ISO-8601 text -> (valid mask, timestamp[us, UTC]): Arrow's ISO parser where it
    reads the whole column (it agrees with Python's fromisoformat wherever both
    accept a text, year 0 aside), else the strict form only."""
    import pyarrow as pa
    import pyarrow.compute as pc

    shaped = _iso_shaped(column)
    try:
        stamps = pc.cast(pc.if_else(pa.array(shaped), column, pa.scalar(_EPOCH_TEXT)), pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _iso_micros(column)
    valid = shaped & ~pc.starts_with(column, "0000").fill_null(True).to_numpy(zero_copy_only=False)
    return valid, stamps


def _iso_shaped(column):
    """numpy bool per value: the text starts like ``_ISO_PREFIX``
    (``YYYY-MM-DD[T ]HH``), checked on the bytes at fixed positions (ASCII
    bytes stand only for themselves in UTF-8); False for nulls."""
    import numpy as np

    offsets = line_offsets(column)
    raw = column.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8) if raw is not None and raw.size else np.zeros(1, dtype=np.uint8)
    starts = offsets[:-1].astype(np.int64)
    ok = (offsets[1:] - offsets[:-1]) >= 13
    base = np.where(ok, starts, 0)
    last = len(data) - 1

    def at(j):
        return data[np.minimum(base + j, last)]

    for j in (0, 1, 2, 3, 5, 6, 8, 9, 11, 12):
        b = at(j)
        ok &= (b >= 48) & (b <= 57)
    ok &= (at(4) == 45) & (at(7) == 45)
    sep = at(10)
    ok &= (sep == 84) | (sep == 32)
    if column.null_count:
        ok &= column.is_valid().to_numpy(zero_copy_only=False)
    return ok


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

    def _read_json(self, buffer):
        import pyarrow as pa
        import pyarrow.json as pj

        return pj.read_json(
            pa.BufferReader(buffer),
            # one thread (this runs on the background thread; the main thread keeps the
            # other core) and one block, so one chunk per column
            read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, buffer.size + 1)),
            parse_options=pj.ParseOptions(explicit_schema=self._json_schema, unexpected_field_behavior="ignore"),
        )

    def _try_read_json(self, lines):
        """The typed table of ``lines`` (a binary array of newline-terminated
        values) if pyarrow reads all of them in one go, else None."""
        import pyarrow as pa

        offsets = line_offsets(lines)
        start, stop = int(offsets[0]), int(offsets[-1])
        try:
            table = self._read_json(lines.buffers()[2].slice(start, stop - start))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
        return table if table.num_rows == len(lines) else None

    def _json_tables(self, lines, tables: list, fallback: list, table):
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
            self._json_tables(part, tables, fallback, self._try_read_json(part))

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
        literals = self._conflict_literals(lines, bulk)
        if literals:
            raw = lines.buffers()[2].to_pybytes()
            for literal in literals:
                bulk[_lines_containing(raw, offsets, literal.encode())] = False

        bounds = _chunk_bounds(lines, _CHUNK_BYTES)
        pending = [self._pool.submit(self._read_chunk, lines.slice(a, b - a), bulk[a:b]) for a, b in bounds]
        try:
            # the irregular lines, one by one, while the first chunks parse
            yield from self._emit([], [lines[int(i)] for i in np.flatnonzero(~bulk) if int(i) not in blank])
            for future in pending:
                kept, typed = future.result()
                results = []
                fallback: list = []
                if typed is not None:
                    results = [self._vectorize(typed, kept)]
                elif kept is not None:  # pyarrow could not read the chunk in one go: bisect it here
                    parsed: list = []
                    self._json_tables(kept, parsed, fallback, None)
                    results = [self._vectorize(t, source) for t, source in parsed]
                for _, rejected in results:
                    if rejected is not None:
                        fallback.extend(rejected)
                yield from self._emit([good for good, _ in results if good is not None], fallback)
        finally:
            for future in pending:
                future.cancel()

    def _read_chunk(self, lines, bulk):
        """(the ``bulk`` lines, their typed table or None if pyarrow cannot read
        them in one go); (None, None) without bulk lines. Runs on the background
        thread (pyarrow releases the GIL)."""
        import pyarrow as pa

        if not bulk.any():
            return None, None
        kept = lines if bulk.all() else lines.filter(pa.array(bulk))
        return kept, self._try_read_json(kept)

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

