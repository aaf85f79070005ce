"""Vectorized TopPerWindow for Arrow tables of records (bounded input).

Per input table: windows are assigned (the event-time arithmetic of
:func:`~hybridflow.columnar.aggregate.window_starts`, or the rows' own
``window_start``/``window_end``), and only the rows that rank within the
table's part of their group are kept (a row outside the top ``k`` of part of a
group is outside the top ``k`` of the whole group). The survivors are cut
into hash partitions of the first key field, brought together by one
GroupByKey per partition, and ranked again, every group at once, by the same
:class:`~hybridflow.transforms.top.TopRows` the per-element path uses.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.typehints import typehints

from hybridflow.columnar import arrow_tables
from hybridflow.columnar.aggregate import (
    DEFAULT_PARTITIONS,
    event_micros,
    group_codes,
    partition_table,
    window_starts,
)
from hybridflow.metrics import counter

__all__ = ["TopTables"]

_WINDOW = ("window_start", "window_end")


class _SelectFn(beam.DoFn):
    """Ranks the rows of each table per group; ``first`` (before the
    shuffle) also assigns windows and yields (partition, survivors)."""

    def __init__(self, top, keys, window, timestamp_field, row_type, first, partitions):
        self._top = top
        self._keys = tuple(keys)
        self._window = window
        self._ts = timestamp_field
        self._row_type = row_type
        self._first = first
        self._partitions = partitions

    def setup(self):
        from hybridflow.io.files import arrow_schema

        self._in = counter("records_in" if self._first else "records_out")
        self._skipped = counter("top_not_ranked")
        self._schema = arrow_schema(self._row_type)

    def _with_windows(self, table):
        import pyarrow as pa

        size = round(self._window.size * 1_000_000)
        rows, starts = window_starts(self._window, event_micros(table.column(self._ts)).to_numpy(zero_copy_only=False))
        table = table.take(pa.array(rows))
        ts = pa.timestamp("us", tz="UTC")
        return table.append_column("window_start", pa.array(starts, pa.int64()).cast(ts)).append_column(
            "window_end", pa.array(starts + size, pa.int64()).cast(ts)
        )

    def _ranked(self, table):
        import pyarrow as pa

        gid, _ = group_codes(table, self._keys + _WINDOW)
        return table.take(pa.array(self._top.select(table, gid)))

    def process(self, element):
        if self._first:
            yield from self._survivors(element)
        else:
            yield self._output(element)

    def _survivors(self, table):
        self._in.inc(table.num_rows)
        self._skipped.inc(int((~self._top.ranked_mask(table)).sum()))
        if self._window is not None:
            table = self._with_windows(table)
        ranked = self._ranked(table)
        if not ranked.num_rows:
            return []
        if not self._keys:
            return [(0, ranked)]
        return partition_table(ranked, self._keys[0], self._partitions)

    def _output(self, element):
        import pyarrow as pa

        _, tables = element
        ranked = self._ranked(pa.concat_tables(list(tables)))
        self._in.inc(ranked.num_rows)
        return pa.table([ranked.column(f.name).cast(f.type) for f in self._schema], schema=self._schema)


class TopTables(beam.PTransform):
    """The columnar implementation behind ``TopPerWindow`` on Arrow tables."""

    def __init__(self, top, keys, window, timestamp_field, row_type, partitions=DEFAULT_PARTITIONS):
        super().__init__()
        self._args = (top, keys, window, timestamp_field, row_type)
        self._ts = timestamp_field
        self._row_type = row_type
        self._partitions = partitions

    def expand(self, pcoll):
        return (
            pcoll
            | "RankTables" >> beam.ParDo(_SelectFn(*self._args, True, self._partitions)).with_output_types(
                typehints.Tuple[int, arrow_tables()]
            )
            | "Shuffle" >> beam.GroupByKey()
            | "RankGroups" >> beam.ParDo(_SelectFn(*self._args, False, self._partitions)).with_output_types(
                arrow_tables(self._row_type, self._ts)
            )
        )
