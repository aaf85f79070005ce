"""Vectorized Enrich with a side-input table: Arrow tables in, Arrow tables out.

The reference rows (Arrow tables or records) become one Arrow table per
worker; each input table is joined by looking its keys up in the reference
key column (``pyarrow.compute.index_in``; the last row of a repeated key
wins, as in the per-element path's ``AsDict``) and taking the reference
columns at those positions. A missing key follows the same
:class:`~hybridflow.transforms.MissingKeyPolicy`, with the same dead letters.
"""

from __future__ import annotations

import apache_beam as beam

from hybridflow.columnar import arrow_tables, one_array, records_to_table, table_to_records
from hybridflow.errors import RecordError
from hybridflow.metrics import counter
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter
from hybridflow.transforms.enrich import missing_key_text

__all__ = ["EnrichTables"]


def _joint_codes(mine, theirs):
    """Integer codes of two columns, equal where the values are equal (a null
    is a value of its own), and how many codes there can be."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    mine, theirs = one_array(mine), one_array(theirs)
    encoded = pc.dictionary_encode(pa.concat_arrays([mine, theirs.cast(mine.type)]))
    n = len(encoded.dictionary)
    codes = encoded.indices.fill_null(n).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes[: len(mine)], codes[len(mine):], n + 1


def _window_join_keys(table, reference, key, table_key, window, timestamp_field):
    """One int64 per input row and per reference row, equal where (key, window start) are."""
    import pyarrow as pa

    from hybridflow.columnar.aggregate import event_micros, window_starts

    _, starts = window_starts(window, event_micros(table.column(timestamp_field)).to_numpy(zero_copy_only=False))
    start_codes, ref_start_codes, n_starts = _joint_codes(
        pa.array(starts, pa.int64()), event_micros(reference.column("window_start"))
    )
    if key is None:
        return pa.array(start_codes), pa.array(ref_start_codes)
    key_codes, ref_key_codes, _ = _joint_codes(table.column(key), reference.column(table_key))
    return pa.array(key_codes * n_starts + start_codes), pa.array(ref_key_codes * n_starts + ref_start_codes)


class _JoinTablesFn(beam.DoFn):
    def __init__(self, key, table_key, names, prefix, policy, stage, input_type, table_type, row_type,
                 window=None, timestamp_field=None):
        self._key = key
        self._table_key = table_key
        self._names = names
        self._prefix = prefix
        self._policy = policy
        self._stage = stage
        self._input_type = input_type
        self._table_type = table_type
        self._row_type = row_type
        self._window = window
        self._ts = timestamp_field

    def setup(self):
        from hybridflow.io.files import arrow_schema

        self._dead = DeadLetterCounter()
        self._hits = counter("enrich_hits")
        self._misses = counter("enrich_misses")
        self._in = counter("records_in")
        self._out = counter("records_out")
        self._schema = arrow_schema(self._row_type)
        self._reference = None
        self._reference_of = None

    def _reference_table(self, rows):
        import pyarrow as pa

        if self._reference_of is rows:
            return self._reference
        rows = list(rows)
        tables = [r for r in rows if isinstance(r, pa.Table)]
        records = [r for r in rows if not isinstance(r, pa.Table)]
        if records:
            tables.append(records_to_table(records, self._table_type))
        from hybridflow.io.files import arrow_schema

        schema = arrow_schema(self._table_type)
        table = pa.concat_tables([t.select(schema.names).cast(schema) for t in tables]) if tables else schema.empty_table()
        # the last row of a key wins (AsDict); index_in finds the first, so reverse
        table = table.take(pa.array(range(table.num_rows - 1, -1, -1)))
        self._reference, self._reference_of = table, rows
        return table

    def process(self, table, reference_rows):
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        reference = self._reference_table(reference_rows)
        self._in.inc(table.num_rows)
        if self._window is None:
            index = pc.index_in(table.column(self._key), value_set=reference.column(self._table_key))
        else:
            mine, theirs = _window_join_keys(table, reference, self._key, self._table_key, self._window, self._ts)
            index = pc.index_in(mine, value_set=theirs)
        found = index.is_valid().to_numpy(zero_copy_only=False)
        misses = int((~found).sum())
        self._hits.inc(table.num_rows - misses)
        self._misses.inc(misses)
        if misses and self._policy.value != "nulls":
            missing = table.filter(pa.array(~found))
            for record in table_to_records(missing, self._input_type):
                start = None
                if self._window is not None:
                    ((start, _),) = self._window.assign(getattr(record, self._ts).micros)
                text = missing_key_text(self._key, record, start)
                if self._policy.value == "fail":
                    raise RecordError(
                        "missing_key",
                        f"{self._stage}: no reference row for {text} "
                        "(on_missing=fail); complete the reference table or use on_missing=nulls",
                    )
                yield self._dead.dead_letter(self._stage, "missing_key", f"no reference row for {text}", record)
            table = table.filter(pa.array(found))
            index = index.filter(pa.array(found))
        columns = {name: table.column(name) for name in table.column_names}
        for name in self._names:
            columns[self._prefix + name] = reference.column(name).take(index)
        out = pa.table([columns[f.name].cast(f.type) for f in self._schema], schema=self._schema)
        self._out.inc(out.num_rows)
        yield out
        _ = np


class EnrichTables(beam.PTransform):
    """The columnar implementation behind ``Enrich(table=...)`` on Arrow tables."""

    def __init__(self, reference, key, table_key, names, prefix, policy, stage, input_type, table_type, row_type, ts,
                 window=None):
        super().__init__()
        self._reference = reference
        self._fn = _JoinTablesFn(
            key, table_key, names, prefix, policy, stage, input_type, table_type, row_type, window, ts
        )
        self._row_type = row_type
        self._ts = ts

    def expand(self, pcoll):
        from hybridflow.schemas import DeadLetter

        result = pcoll | "Join" >> beam.ParDo(self._fn, beam.pvalue.AsList(self._reference)).with_output_types(
            arrow_tables(self._row_type, self._ts)
        ).with_outputs(DEAD_LETTERS, main="records")
        result[DEAD_LETTERS].element_type = DeadLetter
        return result
