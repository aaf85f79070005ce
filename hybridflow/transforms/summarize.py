"""Summarize: one row of aggregates per key over a whole bounded input.

The batch layer of a hybrid pipeline: per-machine baselines, per-patient
norms, per-product demand profiles computed from history, then joined to the
live stream with :class:`~hybridflow.transforms.Enrich`. It uses the same
aggregation specs and exact accumulator as
:class:`~hybridflow.transforms.WindowedAggregate`
(:mod:`hybridflow.transforms.aggregations`): the mean of a key is the same
number whatever order a runner delivers its records in.
"""

from __future__ import annotations

import typing
from typing import Optional

import apache_beam as beam
from apache_beam.typehints.row_type import RowTypeConstraint

from hybridflow.errors import SchemaError
from hybridflow.metrics import counter
from hybridflow.schemas import fields_of
from hybridflow.transforms.aggregate import Keys, KeyLike, _AggregateCombineFn, key_fields
from hybridflow.transforms.aggregations import Accumulator, AggregationsLike, parse_aggregations

__all__ = ["Summarize"]


class _ToRows(beam.DoFn):
    def __init__(self, keys: Keys, accumulator: Accumulator):
        self._keys = keys
        self._acc = accumulator

    def setup(self):
        self._out = counter("records_out")

    def process(self, element):
        key, acc = element
        self._out.inc()
        yield beam.Row(**self._keys.values(key), **self._acc.extract(acc))


class Summarize(beam.PTransform):
    """Aggregates a bounded input per key, over all of it: one row per key.

    Output rows (``beam.Row`` with a schema) carry the key field and one field
    per aggregation, e.g. a baseline to :class:`~hybridflow.transforms.Enrich`
    a stream with.

    Args:
      key: the key field of the input records; a list of fields for a
        composite key (``["product_id", "hour"]``: one row per combination,
        each key field an output field).
      aggregations: ``{"n": "count", "mean": "mean(amount)"}`` or a list of
        :class:`~hybridflow.transforms.aggregations.Aggregation` (the
        functions of :class:`~hybridflow.transforms.WindowedAggregate`).

    Example::

        >>> import apache_beam as beam
        >>> from hybridflow.transforms import Summarize
        >>> from hybridflow.testing import CreateEvents, batch_pipeline, transactions
        >>> with batch_pipeline() as p:
        ...     rows = (p | CreateEvents(transactions([("c1", 10.0, 5), ("c1", 20.0, 70), ("c2", 7.5, 9)]))
        ...               | Summarize(key="card_id", aggregations={"n": "count", "mean": "mean(amount)"}))
        ...     _ = (rows | beam.Map(lambda r: (r.card_id, r.n, r.mean))
        ...               | beam.combiners.ToList() | beam.FlatMap(sorted) | beam.Map(print))
        ('c1', 2, 15.0)
        ('c2', 1, 7.5)
    """

    def __init__(self, key: KeyLike, aggregations: AggregationsLike):
        super().__init__()
        self._keys = Keys(key_fields(key, "Summarize"))
        if not self._keys.names:
            raise SchemaError("Summarize: key=None; give the key field (or a list of fields) to summarize per")
        self._aggregations = parse_aggregations(aggregations)
        clash = sorted(set(self._keys.names) & {a.name for a in self._aggregations})
        if clash:
            raise SchemaError(f"Summarize: aggregation names {clash} clash with the key fields; choose other names")

    def _row_type(self, input_fields) -> RowTypeConstraint:
        by_name = {f.name: f for f in input_fields}
        for name in list(self._keys.names) + [a.field for a in self._aggregations if a.field is not None]:
            if name not in by_name:
                raise SchemaError(f"Summarize: {name!r} is not a field of the input ({', '.join(by_name)})")
        for agg in self._aggregations:
            if agg.fn not in ("count", "count_distinct", "approx_distinct") and by_name[agg.field].type not in (int, float):
                raise SchemaError(f"Summarize: {agg.fn}({agg.field}) needs a numeric field")
        key_types = [(n, Optional[by_name[n].type] if by_name[n].optional else by_name[n].type) for n in self._keys.names]
        return RowTypeConstraint.from_fields(key_types + [(a.name, a.output_type) for a in self._aggregations])

    def expand(self, pcoll):
        from hybridflow.columnar import ToRecords, is_columnar

        if not pcoll.is_bounded:
            raise SchemaError("Summarize: the input must be bounded (history); window an unbounded one with WindowedAggregate")
        if is_columnar(pcoll):
            pcoll = pcoll | "ToRecords" >> ToRecords()
        row_type = self._row_type(fields_of(pcoll.element_type))
        accumulator = Accumulator(self._aggregations)
        keys = self._keys
        return (
            pcoll
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "KeyBy" >> beam.Map(lambda r: (keys.of(r), r)).with_output_types(
                typing.Tuple[keys.type(row_type), pcoll.element_type]
            )
            | "Aggregate" >> beam.CombinePerKey(_AggregateCombineFn(accumulator))
            | "ToRows" >> beam.ParDo(_ToRows(keys, accumulator)).with_output_types(row_type)
        )
