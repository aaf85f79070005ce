"""Vectorized WindowedAggregate for Arrow tables of records (bounded input).

Per input table: windows are assigned with numpy (the integer-microsecond
arithmetic of :meth:`WindowSpec.assign`), the rows that one key and window
need are kept (key, window start, the aggregated fields), and the table is
cut into hash partitions of the key; one GroupByKey per partition (not per
key) brings each partition's rows together, and the aggregates of all its
(key, window) groups are computed at once: counts with ``bincount``, min/max
with Arrow's hash aggregation, exact sums with :mod:`.exact`, distinct counts
from distinct (group, value) pairs. Sketch aggregations (``approx_distinct``,
``percentile``) feed the same sketches as the per-element path, group by
group. The output rows are those of the per-element path, as Arrow tables.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.typehints import typehints

from hybridflow.columnar import arrow_tables, one_array
from hybridflow.columnar.read import line_offsets
from hybridflow.columnar.exact import exact_integers, exactly_representable, group_limbs, rounded_sums, square_terms
from hybridflow.metrics import counter
from hybridflow.transforms.aggregations import Accumulator, Aggregation

__all__ = ["AggregateTables", "DEFAULT_PARTITIONS", "key_partitions"]

DEFAULT_PARTITIONS = 8
_MICROS = 1_000_000
_START = "__window_start"
_TS = "__event_micros"


def _micros(seconds: float) -> int:
    return round(seconds * _MICROS)


def key_partitions(column, partitions: int, distinct: bool = False):
    """A stable partition number (0..partitions-1) per value of ``column``
    (the same in every process: FNV-1a over the last 16 bytes of text, a
    64-bit mix of integers)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    column = one_array(column)
    if not distinct and len(column) > 1024:
        # hash each distinct value once (keys repeat: cards, sensors ...)
        encoded = pc.dictionary_encode(column)
        per_value = key_partitions(encoded.dictionary, partitions, distinct=True)
        indices = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False)
        result = per_value[indices] if len(per_value) else np.zeros(len(column), dtype=np.int64)
        if encoded.indices.null_count:
            result = np.where(encoded.indices.is_null().to_numpy(zero_copy_only=False), 0, result)
        return result
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        array = column.cast(pa.large_binary()).fill_null(b"")
        offsets = line_offsets(array)
        data = array.buffers()[2]
        data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, dtype=np.uint8)
        starts, ends = offsets[:-1], offsets[1:]
        h = np.full(len(array), 0xCBF29CE484222325, dtype=np.uint64)
        prime = np.uint64(0x100000001B3)
        for j in range(1, 17):
            pos = ends - j
            present = pos >= starts
            byte = data[np.where(present, pos, 0)].astype(np.uint64)
            h = np.where(present, (h ^ byte) * prime, h)
        h ^= (ends - starts).astype(np.uint64)
    else:
        if pa.types.is_floating(t):
            values = pc.add(column, 0.0).fill_null(0.0).to_numpy(zero_copy_only=False).view(np.uint64)
        elif pa.types.is_boolean(t):
            values = column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint64)
        else:
            values = column.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False).view(np.uint64)
        h = values + np.uint64(0x9E3779B97F4A7C15)
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h % np.uint64(partitions)).astype(np.int64)


def event_micros(column):
    """A timestamp column as int64 microseconds (an Arrow array)."""
    import pyarrow as pa

    return one_array(column).cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())


def window_starts(window, micros):
    """(row index, window start) for every window each timestamp falls in."""
    import numpy as np

    from hybridflow.transforms.windows import FixedWindow

    if isinstance(window, FixedWindow):
        size = _micros(window.size)
        offset = _micros(window.offset) % size
        return np.arange(len(micros)), micros - np.mod(micros - offset, size)
    size, period = _micros(window.size), _micros(window.period)
    offset = _micros(window.offset) % period
    last = micros - np.mod(micros - offset, period)
    rows, starts = [], []
    for k in range(-(-size // period) + 1):
        s = last - k * period
        keep = s > micros - size
        if not keep.any():
            break
        rows.append(np.flatnonzero(keep))
        starts.append(s[keep])
    return np.concatenate(rows), np.concatenate(starts)


def _names(key) -> tuple:
    """One key field, several (composite) or none, as a tuple."""
    return (key,) if isinstance(key, str) else tuple(key)


class _AssignAndPartition(beam.DoFn):
    """table -> (partition, table of the key fields, the aggregated fields and
    the event time in microseconds); windows are assigned after the shuffle."""

    def __init__(self, key, window, fields, timestamp_field, partitions):
        self._keys = _names(key)
        self._window = window
        self._fields = fields
        self._ts = timestamp_field
        self._partitions = partitions

    def setup(self):
        self._in = counter("records_in")

    def process(self, table):
        self._in.inc(table.num_rows)
        names = list(self._keys) + [f for f in self._fields if f not in self._keys]
        narrow = table.select(names)
        if self._window is not None:  # windows are assigned after the shuffle: 1 row per record travels
            narrow = narrow.append_column(_TS, event_micros(table.column(self._ts)))
        if self._keys:
            yield from partition_table(narrow, self._keys[0], self._partitions)
        elif narrow.num_rows:  # no key: every row is in the one group of its window
            yield 0, narrow


def partition_table(narrow, key, partitions):
    """(partition, rows of ``narrow`` whose ``key`` hashes to it) for each
    non-empty partition (a composite key's rows go by its first field)."""
    import numpy as np
    import pyarrow as pa

    parts = key_partitions(narrow.column(key), partitions)
    order = np.argsort(parts.astype(np.uint16), kind="stable")  # radix sort
    bounds = np.searchsorted(parts[order], np.arange(partitions + 1))
    ordered = narrow.take(pa.array(order))
    for p in range(partitions):
        if bounds[p + 1] > bounds[p]:
            yield p, ordered.slice(bounds[p], bounds[p + 1] - bounds[p])


def group_codes(table, names):
    """(dense group number per row, the first row of each group) for the
    distinct combinations of the columns ``names`` (one group if none)."""
    import numpy as np
    import pyarrow as pa

    composite = np.zeros(table.num_rows, dtype=np.int64)
    for name in names:
        codes, values = _codes(table.column(name))
        composite, _ = _codes(pa.array(composite * (len(values) + 1) + codes))  # dense again: no overflow
    _, first, gid = np.unique(composite, return_index=True, return_inverse=True)
    return gid.reshape(-1).astype(np.int64), first


def _codes(column):
    """Dense integer codes of ``column`` (nulls get their own code) and the distinct values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(column).combine_chunks() if isinstance(column, pa.ChunkedArray) else pc.dictionary_encode(column)
    dictionary = encoded.dictionary
    indices = encoded.indices
    codes = indices.fill_null(len(dictionary)).to_numpy(zero_copy_only=False).astype(np.int64)
    if indices.null_count:
        dictionary = pa.concat_arrays([dictionary, pa.nulls(1, dictionary.type)])
    return codes, dictionary


class _AggregatePartition(beam.DoFn):
    """(partition, tables) -> one table of rows per (key, window)."""

    def __init__(self, key, window, aggregations, row_type, accumulator=None):
        self._keys = _names(key)
        self._window = window
        self._aggregations = aggregations
        self._row_type = row_type
        self._accumulator = accumulator or Accumulator(aggregations)

    def setup(self):
        from hybridflow.io.files import arrow_schema

        self._out = counter("records_out")
        self._schema = arrow_schema(self._row_type)
        self._size = _micros(self._window.size)

    def aggregate(self, agg, table, gid, ngroups, counts):
        return self._aggregate(agg, table, gid, ngroups, counts)

    def process(self, element):
        import pyarrow as pa

        _, tables = element
        table = pa.concat_tables(list(tables))
        if table.num_rows:
            yield self._rows(table)

    def _rows(self, table):
        """One output row per (key, window) of ``table``'s rows."""
        import numpy as np
        import pyarrow as pa

        rows, starts = window_starts(self._window, table.column(_TS).to_numpy())
        table = table.take(pa.array(rows)).append_column(_START, pa.array(starts, type=pa.int64()))
        gid, first = group_codes(table, self._keys + (_START,))
        ngroups = len(first)
        counts = np.bincount(gid, minlength=ngroups)
        first = pa.array(first)
        columns = {name: one_array(table.column(name)).take(first) for name in self._keys}
        window_start = starts[first.to_numpy()]
        columns["window_start"] = pa.array(window_start, pa.int64())
        columns["window_end"] = pa.array(window_start + self._size, pa.int64())
        columns["pane"] = pa.array(["ON_TIME"] * ngroups, pa.string())
        columns["pane_index"] = pa.array(np.zeros(ngroups, dtype=np.int64))
        for agg in self._aggregations:
            columns[agg.name] = self._aggregate(agg, table, gid, ngroups, counts)
        self._out.inc(ngroups)
        arrays = []
        for f in self._schema:
            column = columns[f.name]
            if pa.types.is_timestamp(f.type):
                column = pa.array(column, pa.int64()).cast(f.type)
            arrays.append(pa.array(column, f.type) if not isinstance(column, pa.Array) else column.cast(f.type))
        return pa.table(arrays, schema=self._schema)

    # -- one aggregation over all groups -------------------------------------

    def _aggregate(self, agg: Aggregation, table, gid, ngroups, counts):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if agg.fn == "count" and agg.field is None:
            return pa.array(counts, pa.int64())
        column = one_array(table.column(agg.field))
        present = column.is_valid().to_numpy(zero_copy_only=False)
        g = gid[present]
        values = column.filter(pa.array(present))
        if agg.fn == "count":
            return pa.array(np.bincount(g, minlength=ngroups), pa.int64())
        if agg.fn == "count_distinct":
            if pa.types.is_floating(values.type):
                values = pc.add(values, 0.0)  # -0.0 and 0.0 are one value, as in a Python set
            codes, dictionary = _codes(values)
            pairs = np.unique(g * (len(dictionary) + 1) + codes)
            return pa.array(np.bincount(pairs // (len(dictionary) + 1), minlength=ngroups), pa.int64())
        if agg.fn in ("min", "max"):
            integer = self._integer(agg)
            small = pa.table({"g": pa.array(g, pa.int64()), "v": values.cast(pa.int64() if integer else pa.float64())})
            result = small.group_by("g").aggregate([("v", agg.fn)])
            out = np.zeros(ngroups, dtype=np.int64) if integer else np.full(ngroups, np.nan)
            valid = np.zeros(ngroups, dtype=bool)
            idx = result.column("g").to_numpy()
            out[idx] = result.column(f"v_{agg.fn}").to_numpy(zero_copy_only=False)
            valid[idx] = True
            return pa.array(out, pa.int64() if integer else pa.float64(), mask=~valid)
        if agg.fn in ("sum", "mean", "stddev"):
            return self._moments(agg, values, g, ngroups)
        return self._sketches(agg, values, g, ngroups)

    def _integer(self, agg) -> bool:
        """Whether ``agg``'s result is an exact int (sum/min/max of an int field)."""
        return agg.name in self._accumulator.integers

    def _single(self, agg) -> Accumulator:
        """The per-element accumulator of ``agg`` alone."""
        return Accumulator([agg], [agg.field] if self._integer(agg) else [])

    def _moments(self, agg, values, g, ngroups):
        import numpy as np
        import pyarrow as pa

        accumulator = self._single(agg)
        n = np.bincount(g, minlength=ngroups)
        if pa.types.is_integer(values.type):
            ints = values.to_numpy(zero_copy_only=False).astype(np.int64)
            if agg.fn == "sum" and self._integer(agg):
                # exact while no partial sum can leave int64; else Python ints
                if not len(ints) or max(-int(ints.min()), int(ints.max())) * len(ints) < 2**63:
                    sums = np.zeros(ngroups, dtype=np.int64)
                    np.add.at(sums, g, ints)
                    return pa.array(sums, pa.int64())
                return self._python(agg, values, g, ngroups)
            if len(ints) and np.abs(ints).max() > 2**53:
                return self._python(agg, values, g, ngroups)
        x = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        limbs, unsafe = group_limbs(x, g, ngroups, n)
        if agg.fn == "sum":
            out = rounded_sums(limbs, ngroups)
            for i in np.flatnonzero(unsafe):
                out[i] = self._python_group(agg, accumulator, x[g == i])
            return pa.array(out, pa.float64())
        if agg.fn == "mean":
            sums = rounded_sums(limbs, ngroups)
            with np.errstate(invalid="ignore", divide="ignore"):
                out = np.where(n > 0, sums / np.maximum(n, 1), np.nan)
            slow = (~exactly_representable(limbs, ngroups) & (n > 1)) | unsafe
            result = out.astype(object)
            for i in np.flatnonzero(slow):
                if unsafe[i]:
                    result[i] = self._python_group(agg, accumulator, x[g == i])
                else:
                    result[i] = accumulator.extract([[int(n[i]), exact_integers(limbs, i)]])[agg.name]
            result[n == 0] = None
            return pa.array(list(result), pa.float64())
        # stddev: exact sums of values and of squares, the accumulator's own formula
        hh, hl, ll = square_terms(x)
        magnitude = np.abs(x)
        unsafe |= np.bincount(
            g, weights=((magnitude != 0) & ((magnitude < 2.0**-200) | (magnitude > 2.0**200))), minlength=ngroups
        ) > 0
        sq_limbs, sq_unsafe = group_limbs(np.concatenate([hh, hl, ll]), np.concatenate([g, g, g]), ngroups)
        unsafe |= sq_unsafe
        result = []
        for i in range(ngroups):
            if n[i] < 2:
                result.append(None)
            elif unsafe[i]:
                result.append(self._python_group(agg, accumulator, x[g == i]))
            else:
                squares = exact_integers(sq_limbs, i) << 1074
                slot = [int(n[i]), exact_integers(limbs, i), squares]
                result.append(accumulator.extract([slot])[agg.name])
        return pa.array(result, pa.float64())

    def _python_group(self, agg, accumulator, values):
        acc = accumulator.create()
        record = _Record()
        for v in values:
            setattr(record, agg.field, float(v))
            accumulator.add(acc, record)
        return accumulator.extract(acc)[agg.name]

    def _python(self, agg, values, g, ngroups):
        """Any aggregation, group by group, with the per-element accumulator."""
        import pyarrow as pa

        accumulator = self._single(agg)
        accs = [accumulator.create() for _ in range(ngroups)]
        record = _Record()
        for gi, v in zip(g.tolist(), values.to_pylist()):
            setattr(record, agg.field, v)
            accumulator.add(accs[gi], record)
        integer = agg.output_type is int or self._integer(agg)
        return pa.array([accumulator.extract(a)[agg.name] for a in accs], type=pa.int64() if integer else pa.float64())

    def _sketches(self, agg, values, g, ngroups):
        return self._python(agg, values, g, ngroups)


class _Record:
    """A mutable stand-in for a record: the accumulator reads one attribute."""


class AggregateTables(beam.PTransform):
    """The columnar implementation behind ``WindowedAggregate`` on Arrow tables
    (fixed and sliding windows)."""

    def __init__(self, key, window, aggregations, row_type, timestamp_field, partitions=DEFAULT_PARTITIONS,
                 accumulator=None):
        super().__init__()
        self._key = key
        self._accumulator = accumulator
        self._window = window
        self._aggregations = tuple(aggregations)
        self._row_type = row_type
        self._ts = timestamp_field
        self._partitions = partitions

    def expand(self, pcoll):
        fields = sorted({a.field for a in self._aggregations if a.field is not None})
        keyed = typehints.Tuple[int, arrow_tables()]
        return (
            pcoll
            | "AssignWindows" >> beam.ParDo(
                _AssignAndPartition(self._key, self._window, fields, self._ts, self._partitions)
            ).with_output_types(keyed)
            | "Shuffle" >> beam.GroupByKey()
            | "Aggregate" >> beam.ParDo(
                _AggregatePartition(self._key, self._window, self._aggregations, self._row_type, self._accumulator)
            ).with_output_types(arrow_tables(self._row_type))
        )

