"""Enrich: join each record with reference data keyed by one of its fields."""

from __future__ import annotations

import enum
from typing import Any, Optional, Sequence, Union

import apache_beam as beam
from apache_beam.typehints.row_type import RowTypeConstraint

from hybridflow.errors import RecordError, SchemaError
from hybridflow.metrics import counter
from hybridflow.schemas import DeadLetter, fields_of
from hybridflow.transforms.dead_letters import DEAD_LETTERS, DeadLetterCounter

__all__ = ["Enrich", "MissingKeyPolicy"]


class MissingKeyPolicy(str, enum.Enum):
    """What :class:`Enrich` does with a record whose key has no reference row."""

    DEAD_LETTER = "dead_letter"  #: route it to dead letters (reason ``missing_key``)
    NULLS = "nulls"  #: pass it through with the reference fields set to None
    FAIL = "fail"  #: fail the pipeline (for reference data that must be complete)


class _EnrichFn(beam.DoFn):
    def __init__(self, key, table_key, input_names, table_names, prefix, policy, stage):
        self._key = key
        self._table_key = table_key
        self._input_names = input_names
        self._table_names = table_names
        self._prefix = prefix
        self._policy = policy
        self._stage = stage

    def setup(self):
        self._dead = DeadLetterCounter()
        self._hits = counter("enrich_hits")
        self._misses = counter("enrich_misses")
        self._out = counter("records_out")
        self._none = {self._prefix + n: None for n in self._table_names}

    def process(self, record, table):
        key = getattr(record, self._key)
        ref = table.get(key)
        values = {n: getattr(record, n) for n in self._input_names}
        if ref is None:
            self._misses.inc()
            if self._policy is MissingKeyPolicy.DEAD_LETTER:
                yield self._dead.dead_letter(
                    self._stage, "missing_key", f"no reference row for {self._key}={key!r}", record
                )
                return
            if self._policy is MissingKeyPolicy.FAIL:
                raise RecordError(
                    "missing_key",
                    f"{self._stage}: no reference row for {self._key}={key!r} "
                    "(on_missing=fail); complete the reference table or use on_missing=nulls",
                )
            values.update(self._none)
        else:
            self._hits.inc()
            for n in self._table_names:
                values[self._prefix + n] = getattr(ref, n)
        self._out.inc()
        yield beam.Row(**values)


class Enrich(beam.PTransform):
    """Joins each record with the reference row of the same key (side input).

    The reference table is a bounded PCollection of schema'd rows (for
    example card profiles computed by the batch layer); it is broadcast to
    every worker as a side input, so it must fit in memory. The output rows
    have every input field plus every reference field except its key,
    prefixed with ``prefix``; reference fields are ``Optional`` because of
    :attr:`MissingKeyPolicy.NULLS`.

    Args:
      table: the reference PCollection (NamedTuple or ``beam.Row`` elements).
      key: the input field to join on.
      table_key: the reference field to join on; defaults to ``key``.
      fields: reference fields to add; defaults to all but the key.
      prefix: prefix of the added fields.
      on_missing: a :class:`MissingKeyPolicy` (or its value).

    Returns a tuple-like result ``(records, dead_letters)`` with attributes
    ``.records`` and ``.dead_letters``.

    Example::

        enriched = txns | Enrich(profiles, key="card_id", prefix="profile_")
        enriched.records  # rows with profile_amount_mean, profile_txn_count, ...
    """

    def __init__(
        self,
        table: beam.PCollection,
        key: str,
        table_key: Optional[str] = None,
        fields: Optional[Sequence[str]] = None,
        prefix: str = "",
        on_missing: Union[MissingKeyPolicy, str] = MissingKeyPolicy.NULLS,
    ):
        super().__init__()
        self._table = table
        self._key = key
        self._table_key = table_key or key
        self._fields = list(fields) if fields is not None else None
        self._prefix = prefix
        try:
            self._policy = MissingKeyPolicy(on_missing)
        except ValueError:
            raise SchemaError(
                f"Enrich.on_missing={on_missing!r}; use one of "
                f"{', '.join(p.value for p in MissingKeyPolicy)}"
            ) from None

    def expand(self, pcoll):
        input_fields = fields_of(pcoll.element_type)
        table_fields = fields_of(self._table.element_type)
        input_names = [f.name for f in input_fields]
        table_by_name = {f.name: f for f in table_fields}
        if self._key not in input_names:
            raise SchemaError(f"Enrich: key {self._key!r} is not an input field ({', '.join(input_names)})")
        if self._table_key not in table_by_name:
            raise SchemaError(
                f"Enrich: table_key {self._table_key!r} is not a field of the table ({', '.join(table_by_name)})"
            )
        names = self._fields if self._fields is not None else [n for n in table_by_name if n != self._table_key]
        missing = [n for n in names if n not in table_by_name]
        if missing:
            raise SchemaError(f"Enrich: fields {missing} are not in the table ({', '.join(table_by_name)})")
        clash = {self._prefix + n for n in names} & set(input_names)
        if clash:
            raise SchemaError(f"Enrich: output fields {sorted(clash)} clash with input fields; set prefix=...")

        def typed(field, optional):
            tp = list[field.type] if field.is_list else field.type
            return Optional[tp] if optional else tp

        row_type = RowTypeConstraint.from_fields(
            [(f.name, typed(f, f.optional)) for f in input_fields]
            + [(self._prefix + n, typed(table_by_name[n], True)) for n in names]
        )
        table_key = self._table_key
        lookup = beam.pvalue.AsDict(
            self._table | "KeyTable" >> beam.Map(lambda row: (getattr(row, table_key), row))
        )
        fn = _EnrichFn(self._key, table_key, input_names, names, self._prefix, self._policy, self.label)
        result = pcoll | "Join" >> beam.ParDo(fn, lookup).with_output_types(row_type).with_outputs(
            DEAD_LETTERS, main="records"
        )
        result[DEAD_LETTERS].element_type = DeadLetter
        return result
