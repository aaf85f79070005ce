"""Columnar batch execution: PCollections whose elements are Arrow tables.

Per-element Python overhead dominates Beam Python batch pipelines (a million
small records cost minutes in ``DoFn`` calls, coders and shuffles). For
bounded input read from files of a known format, hybridflow can instead carry
*Arrow tables of records* as the elements of its PCollections: each element
is a ``pyarrow.Table`` of many records of one record type, and the transforms
(:class:`~hybridflow.transforms.ParseRecords`,
:class:`~hybridflow.transforms.Filter`, ``Select``, ``Derive``,
:class:`~hybridflow.transforms.WindowedAggregate`,
:class:`~hybridflow.transforms.Enrich`,
:class:`~hybridflow.transforms.ThresholdAlerts`,
:class:`~hybridflow.pipelines.fraud.BuildCardProfiles`, ``WriteTo``) see from
the PCollection's element type (:func:`arrow_tables`) that they got tables and
switch to a vectorized implementation (pyarrow.compute / numpy) in
``expand()``. Results are the same records, values and dead letters as the
per-element path; the tests compare the two on random data.

``ReadFrom(uri, columnar=True)`` produces such a PCollection from JSON-lines
or Parquet files; :class:`ToRecords` turns one back into ordinary records and
:class:`ToTables` batches ordinary records into tables.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import apache_beam as beam
from apache_beam import coders
from apache_beam.typehints import typehints
from apache_beam.utils.timestamp import Timestamp

from hybridflow.schemas import fields_of

__all__ = [
    "ArrowTableType",
    "arrow_tables",
    "is_columnar",
    "ToRecords",
    "ToTables",
    "records_to_table",
    "table_to_records",
    "empty_table",
]


class ArrowTableType(typehints.TypeConstraint):
    """Element type of a PCollection of ``pyarrow.Table`` s of records.

    ``record_type`` is the type of each row (a NamedTuple class or a Beam
    ``RowTypeConstraint``), or ``None`` for raw payloads (a ``line`` column
    of JSON text, or the untyped columns of a Parquet file).
    ``timestamp_field`` names the event-time column, the columnar form of
    the element timestamps the per-element path carries.
    """

    def __init__(self, record_type: Any = None, timestamp_field: Optional[str] = None):
        self.record_type = record_type
        self.timestamp_field = timestamp_field

    def __eq__(self, other):
        return (
            isinstance(other, ArrowTableType)
            and self.record_type == other.record_type
            and self.timestamp_field == other.timestamp_field
        )

    def __hash__(self):
        return hash((ArrowTableType, self.record_type, self.timestamp_field))

    def __repr__(self):
        name = getattr(self.record_type, "__name__", None) or repr(self.record_type)
        return f"ArrowTable[{name}]"

    def _consistent_with_check_(self, sub):
        return self == sub

    def type_check(self, instance):
        import pyarrow as pa

        if not isinstance(instance, pa.Table):
            raise TypeError(f"expected a pyarrow.Table, got {type(instance).__name__}")

    @property
    def fields(self):
        return fields_of(self.record_type)

    @property
    def arrow_schema(self):
        from hybridflow.io.files import arrow_schema

        return arrow_schema(self.record_type)


def arrow_tables(record_type: Any = None, timestamp_field: Optional[str] = None) -> ArrowTableType:
    """The element type of a PCollection of Arrow tables of ``record_type`` rows."""
    return ArrowTableType(record_type, timestamp_field)


def is_columnar(pcoll) -> bool:
    """Whether ``pcoll``'s elements are Arrow tables (see :func:`arrow_tables`)."""
    return isinstance(pcoll.element_type, ArrowTableType)


def one_array(column):
    """A ChunkedArray as one Array: its only chunk as is (``combine_chunks``
    copies even a single chunk), else the chunks concatenated."""
    import pyarrow as pa

    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


class ArrowTableCoder(coders.Coder):
    """Arrow IPC stream encoding of a ``pyarrow.Table`` (no per-row work)."""

    def encode(self, table):
        import pyarrow as pa

        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def decode(self, encoded):
        import pyarrow as pa

        return pa.ipc.open_stream(pa.py_buffer(encoded)).read_all()

    def estimate_size(self, table):
        # Beam samples element sizes for its metrics; the buffers' size is
        # that estimate without encoding the table a second time
        return table.nbytes

    def is_deterministic(self):
        return False

    def to_type_hint(self):
        return ArrowTableType()

    @classmethod
    def from_type_hint(cls, typehint, registry):
        return cls()

    def __eq__(self, other):
        return type(self) is type(other)

    def __hash__(self):
        return hash(type(self))


coders.registry.register_coder(ArrowTableType, ArrowTableCoder)


# --------------------------------------------------------------------------
# Records <-> tables


def _record_class(record_type):
    from apache_beam.typehints.row_type import RowTypeConstraint

    if isinstance(record_type, RowTypeConstraint):
        user = getattr(record_type, "user_type", None)
        if user is not None and user is not beam.Row:
            return user
        return lambda **values: beam.Row(**values)
    return record_type


def _plain_column_value(value):
    if isinstance(value, Timestamp):
        return value.micros
    return value


def records_to_table(records: Iterable[Any], record_type: Any):
    """An Arrow table (the record type's schema) holding ``records``."""
    import pyarrow as pa

    from hybridflow.io.files import arrow_schema

    schema = arrow_schema(record_type)
    names = schema.names
    columns: list[list] = [[] for _ in names]
    for record in records:
        for column, name in zip(columns, names):
            column.append(_plain_column_value(getattr(record, name)))
    return pa.table([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema)


def empty_table(record_type: Any):
    from hybridflow.io.files import arrow_schema

    return arrow_schema(record_type).empty_table()


def table_to_records(table, record_type: Any) -> list:
    """The rows of ``table`` as records of ``record_type`` (Timestamps restored)."""
    import pyarrow as pa

    make = _record_class(record_type)
    fields = fields_of(record_type)
    columns = []
    for f in fields:
        column = table.column(f.name)
        if f.type is Timestamp and not f.is_list:
            micros = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist()
            columns.append([None if m is None else Timestamp(micros=m) for m in micros])
        elif f.type is Timestamp:
            lists = column.to_pylist()
            columns.append(
                [None if v is None else [Timestamp.from_utc_datetime(x) for x in v] for v in lists]
            )
        else:
            columns.append(column.to_pylist())
    names = [f.name for f in fields]
    return [make(**dict(zip(names, values))) for values in zip(*columns)]


class _Explode(beam.DoFn):
    def __init__(self, record_type, timestamp_field):
        self._type = record_type
        self._ts = timestamp_field

    def process(self, table):
        for record in table_to_records(table, self._type):
            if self._ts is None:
                yield record
            else:
                yield beam.window.TimestampedValue(record, getattr(record, self._ts))


class ToRecords(beam.PTransform):
    """Arrow tables of records -> the records (timestamped by their event time)."""

    def expand(self, pcoll):
        hint = pcoll.element_type
        if not isinstance(hint, ArrowTableType) or hint.record_type is None:
            raise TypeError(f"ToRecords needs a PCollection of typed Arrow tables, got {hint!r}")
        return pcoll | "Explode" >> beam.ParDo(_Explode(hint.record_type, hint.timestamp_field)).with_output_types(
            hint.record_type
        )


class _Batch(beam.DoFn):
    def __init__(self, record_type):
        self._type = record_type

    def process(self, records):
        yield records_to_table(records, self._type)


class ToTables(beam.PTransform):
    """Records -> Arrow tables of up to ``batch_size`` records (bounded input)."""

    def __init__(self, timestamp_field: Optional[str] = None, batch_size: int = 65536, record_type: Any = None):
        super().__init__()
        self._ts = timestamp_field
        self._batch_size = batch_size
        self._record_type = record_type

    def expand(self, pcoll):
        record_type = self._record_type or pcoll.element_type
        fields_of(record_type)
        return (
            pcoll
            | "Batch" >> beam.BatchElements(min_batch_size=self._batch_size, max_batch_size=self._batch_size)
            | "ToTable" >> beam.ParDo(_Batch(record_type)).with_output_types(arrow_tables(record_type, self._ts))
        )
