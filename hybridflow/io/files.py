"""Files as sources and sinks: JSON lines, CSV, Avro and Parquet.

Local paths, ``gs://`` and ``s3://`` all go through Beam's FileSystems, so
the same URI forms work everywhere Beam's file IO works. Readers are thin over
``ReadFromText`` / ``ReadFromAvro`` / ``ReadFromParquet``; writers over
``WriteToText`` / ``WriteToAvro`` / ``WriteToParquet``.

Readers emit raw payloads: text lines for JSON lines, dicts for CSV (keyed by
the header), Avro and Parquet. Type them with
:class:`~hybridflow.transforms.ParseRecords`.

Writers take schema'd records (NamedTuple or ``beam.Row``); the Parquet and
Avro schemas are derived from the record type. On an unbounded input the
writers produce windowed files every ``triggering_frequency`` seconds of
*processing* time: Beam's windowed file sinks drop elements behind the
watermark (allowed lateness 0), and late panes, late records and dead letters
are behind it by nature, so each element is re-stamped with the time it
reaches the sink. Event time stays in the record's fields.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.avroio import ReadFromAvro, WriteToAvro
from apache_beam.io.parquetio import ReadFromParquet, WriteToParquet
from apache_beam.io.textio import ReadFromText, WriteToText
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import InvalidUriError, SchemaError
from hybridflow.metrics import CountElements
from hybridflow.schemas import FieldInfo, fields_of, to_json, to_plain

__all__ = ["ReadFromFiles", "WriteToFiles", "arrow_schema", "avro_schema"]

DEFAULT_TRIGGERING_FREQUENCY = 60


# --------------------------------------------------------------------------
# Schemas derived from record types


def _arrow_type(field: FieldInfo):
    import pyarrow as pa

    base = {
        str: pa.string(),
        int: pa.int64(),
        float: pa.float64(),
        bool: pa.bool_(),
        bytes: pa.binary(),
        Timestamp: pa.timestamp("us", tz="UTC"),
    }[field.type]
    return pa.list_(base) if field.is_list else base


def arrow_schema(record_type: Any):
    """The pyarrow schema of a record type (timestamps as UTC microseconds)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(f.name, _arrow_type(f), nullable=f.optional or f.is_list) for f in fields_of(record_type)]
    )


def _avro_type(field: FieldInfo):
    base: Any = {
        str: "string",
        int: "long",
        float: "double",
        bool: "boolean",
        bytes: "bytes",
        Timestamp: {"type": "long", "logicalType": "timestamp-micros"},
    }[field.type]
    if field.is_list:
        base = {"type": "array", "items": base}
    return ["null", base] if field.optional else base


def avro_schema(record_type: Any, name: Optional[str] = None) -> dict:
    """The Avro schema (fastavro dict) of a record type."""
    record_name = name or getattr(record_type, "__name__", None) or "Record"
    return {
        "type": "record",
        "name": record_name,
        "namespace": "hybridflow",
        "fields": [{"name": f.name, "type": _avro_type(f)} for f in fields_of(record_type)],
    }


def _columnar_value(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return value.micros
    if isinstance(value, (list, tuple)):
        return [_columnar_value(v) for v in value]
    return value


def _to_columnar_dict(record: Any) -> dict:
    items = record._asdict().items() if hasattr(record, "_asdict") else dict(record).items()
    return {k: _columnar_value(v) for k, v in items}


def _to_csv_line(record: Any) -> str:
    out = io.StringIO()
    values = []
    for value in to_plain(record).values():
        if isinstance(value, list):
            value = json.dumps(value, ensure_ascii=False)
        values.append("" if value is None else value)
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue()


# --------------------------------------------------------------------------
# Reading


class _ReadCsvFile(beam.DoFn):
    """Reads one CSV file into dicts keyed by its header row."""

    def process(self, readable_file):
        with readable_file.open() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            for row in csv.DictReader(text):
                yield row


class ReadFromFiles(beam.PTransform):
    """Reads files matching ``pattern`` in ``format`` as raw payloads.

    Args:
      pattern: a local path, ``gs://`` or ``s3://`` glob.
      format: one of ``jsonl``, ``csv``, ``avro``, ``parquet``.
      columnar: emit Arrow tables of many payloads each (``jsonl``: a
        ``line`` column; ``parquet``: the file's columns) instead of one
        element per payload; see :mod:`hybridflow.columnar`.

    Example::

        lines = p | ReadFromFiles("data/history/*.jsonl", format="jsonl")
    """

    COLUMNAR_FORMATS = ("jsonl", "parquet")

    def __init__(self, pattern: str, format: str, columnar: bool = False):
        super().__init__()
        if format not in ("jsonl", "csv", "avro", "parquet"):
            raise InvalidUriError(f"{pattern!r}: unknown file format {format!r}")
        if columnar and format not in self.COLUMNAR_FORMATS:
            raise InvalidUriError(
                f"{pattern!r}: columnar reads support {' and '.join(self.COLUMNAR_FORMATS)}, not {format}"
            )
        self._pattern = pattern
        self._format = format
        self._columnar = columnar

    def expand(self, pbegin):
        if self._columnar:
            from hybridflow.columnar.read import ReadJsonLinesAsTables, ReadParquetAsTables

            if self._format == "jsonl":
                return pbegin | "ReadTables" >> ReadJsonLinesAsTables(self._pattern)
            return pbegin | "ReadTables" >> ReadParquetAsTables(self._pattern)
        if self._format == "jsonl":
            raw = pbegin | "ReadText" >> ReadFromText(self._pattern) | "SkipBlank" >> beam.Filter(
                lambda line: bool(line.strip())
            )
        elif self._format == "csv":
            raw = (
                pbegin
                | "Match" >> fileio.MatchFiles(self._pattern)
                | "Open" >> fileio.ReadMatches()
                | "ReadCsv" >> beam.ParDo(_ReadCsvFile())
            )
        elif self._format == "avro":
            raw = pbegin | "ReadAvro" >> ReadFromAvro(self._pattern)
        else:
            raw = pbegin | "ReadParquet" >> ReadFromParquet(self._pattern)
        return raw | "CountRead" >> CountElements("records_read")


# --------------------------------------------------------------------------
# Writing


class _CountRowsWritten(beam.DoFn):
    def setup(self):
        from hybridflow.metrics import counter

        self._written = counter("records_written")

    def process(self, table):
        self._written.inc(table.num_rows)
        yield table


class _StampArrival(beam.DoFn):
    """Re-stamps an element with the processing time it reaches the sink."""

    def process(self, element):
        yield beam.window.TimestampedValue(element, Timestamp.now())


class WriteToFiles(beam.PTransform):
    """Writes schema'd records to files ``<prefix>-SSSSS-of-NNNNN<suffix>``.

    Args:
      prefix: path prefix of the files (local, ``gs://`` or ``s3://``).
      format: one of ``jsonl``, ``csv``, ``avro``, ``parquet``.
      suffix: file name suffix; defaults to ``.<format>``.
      num_shards: number of files; 0 lets the runner decide.
      triggering_frequency: seconds between windowed writes of an unbounded
        input (ignored when bounded).
      record_type: the record type; by default the input's element type.

    Output: the PCollection of written file names (bounded input) as Beam's
    file sinks return it.
    """

    def __init__(
        self,
        prefix: str,
        format: str,
        suffix: Optional[str] = None,
        num_shards: int = 0,
        triggering_frequency: int = DEFAULT_TRIGGERING_FREQUENCY,
        record_type: Any = None,
    ):
        super().__init__()
        if format not in ("jsonl", "csv", "avro", "parquet"):
            raise InvalidUriError(f"{prefix!r}: unknown file format {format!r}")
        self._prefix = prefix
        self._format = format
        self._suffix = f".{format}" if suffix is None else suffix
        self._num_shards = num_shards
        self._triggering_frequency = triggering_frequency
        self._record_type = record_type

    @property
    def glob(self) -> str:
        """A glob matching the files this sink writes."""
        return f"{self._prefix}*{self._suffix}"

    def _resolve_record_type(self, pcoll):
        record_type = self._record_type or pcoll.element_type
        try:
            fields_of(record_type)
        except SchemaError as exc:
            raise SchemaError(
                f"writing {self._format} to {self._prefix!r} needs schema'd records "
                f"(NamedTuple or beam.Row), got elements of type {record_type!r}; "
                "pass record_type=... or map to a NamedTuple first"
            ) from exc
        return record_type

    def _expand_columnar(self, pcoll):
        """Arrow tables of records: Parquet straight from the tables, other
        formats record by record."""
        from hybridflow.columnar import ToRecords

        hint = pcoll.element_type
        if self._format != "parquet":
            return pcoll | "ToRecords" >> ToRecords() | "Write" >> WriteToFiles(
                self._prefix, self._format, self._suffix, self._num_shards, self._triggering_frequency,
                self._record_type,
            )
        from apache_beam.io.parquetio import WriteToParquetBatched

        schema = arrow_schema(self._record_type or hint.record_type)
        return (
            pcoll
            | "CountWritten" >> beam.ParDo(_CountRowsWritten()).with_output_types(hint)
            | "Conform" >> beam.Map(lambda t: t.select(schema.names).cast(schema))
            | "WriteParquet" >> WriteToParquetBatched(
                self._prefix, schema=schema, file_name_suffix=self._suffix, num_shards=self._num_shards
            )
        )

    def expand(self, pcoll):
        from hybridflow.columnar import is_columnar

        if is_columnar(pcoll):
            return self._expand_columnar(pcoll)
        bounded = pcoll.is_bounded
        frequency = None if bounded else self._triggering_frequency
        # unbounded: one set of files per window, named by its start and end
        template = None if bounded else "-V-SSSSS-of-NNNNN"
        counted = pcoll | "CountWritten" >> CountElements("records_written")
        if not bounded:
            counted = (
                counted
                | "StampArrival" >> beam.ParDo(_StampArrival()).with_output_types(pcoll.element_type)
                | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            )
        if self._format == "jsonl":
            return (
                counted
                | "ToJson" >> beam.Map(to_json)
                | "WriteText" >> WriteToText(
                    self._prefix,
                    file_name_suffix=self._suffix,
                    num_shards=self._num_shards,
                    shard_name_template=template,
                    triggering_frequency=frequency,
                )
            )
        record_type = self._resolve_record_type(pcoll)
        if self._format == "csv":
            header = ",".join(f.name for f in fields_of(record_type))
            return (
                counted
                | "ToCsv" >> beam.Map(_to_csv_line)
                | "WriteText" >> WriteToText(
                    self._prefix,
                    file_name_suffix=self._suffix,
                    num_shards=self._num_shards,
                    header=header,
                    shard_name_template=template,
                    triggering_frequency=frequency,
                )
            )
        if self._format == "parquet":
            return (
                counted
                | "ToColumns" >> beam.Map(_to_columnar_dict)
                | "WriteParquet" >> WriteToParquet(
                    self._prefix,
                    schema=arrow_schema(record_type),
                    file_name_suffix=self._suffix,
                    num_shards=self._num_shards,
                    shard_name_template=template,
                    triggering_frequency=frequency,
                )
            )
        if not bounded:
            raise InvalidUriError(
                f"{self._prefix!r}: the Avro sink writes bounded input only; "
                "use format=parquet or jsonl for an unbounded input"
            )
        return (
            counted
            | "ToColumns" >> beam.Map(_to_columnar_dict)
            | "WriteAvro" >> WriteToAvro(
                self._prefix,
                schema=avro_schema(record_type),
                file_name_suffix=self._suffix,
                num_shards=self._num_shards,
            )
        )
