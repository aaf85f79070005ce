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
reaches the sink. Event time stays in the record's fields. An empty JSON-lines
output on ``s3://`` writes no file: Beam's S3 writer cannot complete a
zero-byte object.

``partition_by="event_time"`` (a Timestamp field) lays the output out
Hive-style by that field's UTC date and hour, the batch layer's layout::

    out/dt=2026-01-01/hour=00/alerts-00000-of-00002.jsonl
    out/dt=2026-01-01/hour=01/alerts-00000-of-00001.jsonl

Partitioned (and unbounded Avro) writes go through Beam's dynamic-destination
``fileio.WriteToFiles`` with a small ``FileSink`` per format; unbounded
partitioned files also carry their window in the name.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import typing
from typing import Any, Optional

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.avroio import ReadFromAvro, WriteToAvro
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.io.parquetio import ReadFromParquet, WriteToParquet
from apache_beam.io.textio import ReadFromText, WriteToText
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import CorruptInputError, InvalidLocationError, InvalidUriError, SchemaError
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.buckets import check_bucket
from hybridflow.metrics import CountElements
from hybridflow.schemas import FieldInfo, fields_of, to_json, to_plain

__all__ = [
    "ReadFromFiles",
    "WriteToFiles",
    "arrow_schema",
    "avro_schema",
    "partition_path",
    "check_input",
    "decompressed_chunks",
]

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


def text_or_bytes(line: bytes):
    """A line as text, or as the bytes it is when they are not UTF-8."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line


def check_input(pattern: str, allow_empty: bool = False) -> list[str]:
    """The files ``pattern`` matches; raises :class:`InvalidLocationError`
    (one line, before the job) when it matches none (unless ``allow_empty``),
    or names a local directory or file that cannot be read."""
    try:
        matched = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception as exc:  # noqa: BLE001 - BeamIOError and the stores' own errors
        raise InvalidLocationError(f"cannot list the input {pattern!r}: {str(exc).splitlines()[0][:200]}") from exc
    if FileSystems.get_scheme(pattern) in (None, "file"):
        local = pattern[len("file://"):] if pattern.startswith("file://") else pattern
        fixed = local[: min((local.find(c) for c in "*?[" if c in local), default=len(local))]
        directory = fixed if fixed.endswith("/") else os.path.dirname(fixed)
        if directory and os.path.isdir(directory) and not os.access(directory, os.R_OK | os.X_OK):
            raise InvalidLocationError(
                f"cannot read the input directory {directory!r} (permission denied): fix its permissions, "
                "or copy the input somewhere readable"
            )
        unreadable = [path for path in matched if not os.access(path, os.R_OK)]
        if unreadable:
            raise InvalidLocationError(
                f"cannot read the input file {unreadable[0]!r} (permission denied"
                + (f"; {len(unreadable) - 1} more like it" if len(unreadable) > 1 else "")
                + "): fix its permissions"
            )
    if not matched and not allow_empty:
        raise InvalidLocationError(
            f"no file matches the input {pattern!r}: check the path, or pass --allow_empty to run on no input"
        )
    return matched


def _new_decompressor(compression: str):
    """The streaming decompressor Beam's own ``CompressedFile`` uses for ``compression``."""
    import bz2
    import lzma
    import zlib

    if compression == CompressionTypes.BZIP2:
        return bz2.BZ2Decompressor()
    if compression == CompressionTypes.DEFLATE:
        return zlib.decompressobj()
    if compression == CompressionTypes.ZSTD:
        import zstandard

        return zstandard.ZstdDecompressor(max_window_size=2**31).decompressobj()
    if compression == CompressionTypes.LZMA:
        return lzma.LZMADecompressor()
    return zlib.decompressobj(zlib.MAX_WBITS | 16)


def _compressed(path: str) -> bool:
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


def decompressed_chunks(path: str, read_size: int = 1 << 20):
    """The bytes of a file, decompressed by its extension, chunk by chunk,
    concatenated streams included.

    Beam's ``CompressedFile`` ends quietly where a cut-off stream ends; this
    raises :class:`~hybridflow.errors.CorruptInputError` naming the file
    when the last stream has no end, or the data is not what its extension says.
    """
    compression = CompressionTypes.detect_compression_type(path)
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if compression == CompressionTypes.UNCOMPRESSED:
            yield from iter(lambda: raw.read(read_size), b"")
            return
        decompressor = _new_decompressor(compression)
        started = False
        try:
            while True:
                pending = getattr(decompressor, "unused_data", b"")
                if pending:  # another stream follows (concatenated gzip or bzip2 files)
                    decompressor = _new_decompressor(compression)
                    buf = pending
                else:
                    buf = raw.read(read_size)
                if not buf:
                    break
                started = True
                data = decompressor.decompress(buf)
                if data:
                    yield data
        except Exception as exc:  # noqa: BLE001 - zlib.error, OSError, LZMAError, ZstdError ...
            raise CorruptInputError(
                f"{path}: cannot decompress it as {compression} ({exc}); check the file, or its extension"
            ) from exc
    if started and not decompressor.eof:
        raise CorruptInputError(
            f"{path}: the {compression} data ends before its end marker: the file is truncated (an interrupted "
            "copy or write?); copy or compress it again"
        )


class _ReadWholeLines(beam.DoFn):
    """A file's lines, decompressed whole and checked (text, or bytes when not
    UTF-8), as ``ReadFromText`` splits them."""

    def process(self, metadata):
        rest = b""
        for chunk in decompressed_chunks(metadata.path):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield text_or_bytes(line[:-1] if line.endswith(b"\r") else line)
        if rest:
            yield text_or_bytes(rest[:-1] if rest.endswith(b"\r") else rest)


class ReadFromFiles(beam.PTransform):
    """Reads files matching ``pattern`` in ``format`` as raw payloads.

    The pattern must match at least one file when the pipeline is built
    (:func:`check_input`), unless ``allow_empty`` or ``--allow_empty``.
    Compressed files (``.gz``, ``.bz2``, ``.zst``, ``.deflate``, ``.xz``)
    must be complete: a truncated one fails the job with an error naming it.

    Args:
      pattern: a local path, ``gs://`` or ``s3://`` glob.
      format: one of ``jsonl``, ``csv``, ``avro``, ``parquet``.
      validate: check an ``s3://`` / ``gs://`` bucket exists at construction.
      columnar: emit Arrow tables of many payloads each (``jsonl``: a
        ``line`` column; ``parquet``: the file's columns) instead of one
        element per payload; see :mod:`hybridflow.columnar`.
      allow_empty: read nothing, without error, when no file matches.

    Example::

        lines = p | ReadFromFiles("data/history/*.jsonl", format="jsonl")
    """

    COLUMNAR_FORMATS = ("jsonl", "parquet")

    def __init__(
        self, pattern: str, format: str, validate: bool = True, columnar: bool = False, allow_empty: bool = False
    ):
        super().__init__()
        if format not in ("jsonl", "csv", "avro", "parquet"):
            raise InvalidUriError(f"{pattern!r}: unknown file format {format!r}")
        if columnar and format not in self.COLUMNAR_FORMATS:
            raise InvalidUriError(
                f"{pattern!r}: columnar reads support {' and '.join(self.COLUMNAR_FORMATS)}, not {format}"
            )
        self._pattern = pattern
        self._format = format
        self._validate = validate
        self._columnar = columnar
        self._allow_empty = allow_empty

    def expand(self, pbegin):
        from hybridflow.io.options import ConnectorOptions

        if self._validate:
            check_bucket(self._pattern, pbegin.pipeline.options)
        allow_empty = self._allow_empty or pbegin.pipeline.options.view_as(ConnectorOptions).allow_empty
        matched = check_input(self._pattern, allow_empty)
        if self._columnar:
            from hybridflow.columnar.read import ReadJsonLinesAsTables, ReadParquetAsTables

            if self._format == "jsonl":
                return pbegin | "ReadTables" >> ReadJsonLinesAsTables(self._pattern)
            return pbegin | "ReadTables" >> ReadParquetAsTables(self._pattern)
        if self._format == "jsonl" and any(map(_compressed, matched)):
            # compressed files cannot be split anyway: whole, checked to the end of their stream
            raw = (
                pbegin
                | "Match" >> fileio.MatchFiles(self._pattern, EmptyMatchTreatment.ALLOW)
                | "ReadWhole" >> beam.ParDo(_ReadWholeLines()).with_output_types(typing.Union[str, bytes])
                | "SkipBlank" >> beam.Filter(lambda line: bool(line.strip()))
            )
        elif self._format == "jsonl":
            # lines as bytes, decoded here: a line that is not UTF-8 stays bytes
            # and becomes a decode_error dead letter in ParseRecords
            raw = (
                pbegin
                | "ReadText" >> ReadFromText(self._pattern, coder=beam.coders.BytesCoder(), validate=False)
                | "Decode" >> beam.Map(text_or_bytes).with_output_types(typing.Union[str, bytes])
                | "SkipBlank" >> beam.Filter(lambda line: bool(line.strip()))
            )
        elif self._format == "csv":
            raw = (
                pbegin
                | "Match" >> fileio.MatchFiles(self._pattern, EmptyMatchTreatment.ALLOW)
                | "Open" >> fileio.ReadMatches()
                | "ReadCsv" >> beam.ParDo(_ReadCsvFile())
            )
        elif self._format == "avro":
            raw = pbegin | "ReadAvro" >> ReadFromAvro(self._pattern, validate=False)
        else:
            raw = pbegin | "ReadParquet" >> ReadFromParquet(self._pattern, validate=False)
        return raw | "CountRead" >> CountElements("records_read")


# --------------------------------------------------------------------------
# Writing


def partition_path(time: Timestamp) -> str:
    """The Hive-style partition of an event time: ``dt=YYYY-MM-DD/hour=HH`` (UTC).

    >>> partition_path(Timestamp.of(1767229199.5))
    'dt=2026-01-01/hour=00'
    """
    moment = datetime.datetime.fromtimestamp(time.micros // 1_000_000, tz=datetime.UTC)
    return moment.strftime("dt=%Y-%m-%d/hour=%H")


class _JsonLinesSink(fileio.FileSink):
    def open(self, fh):
        self._fh = fh

    def write(self, record):
        self._fh.write(to_json(record).encode("utf-8") + b"\n")

    def flush(self):
        self._fh.flush()


class _CsvSink(_JsonLinesSink):
    def __init__(self, header: str):
        self._header = header

    def open(self, fh):
        super().open(fh)
        fh.write(self._header.encode("utf-8") + b"\n")

    def write(self, record):
        self._fh.write(_to_csv_line(record).encode("utf-8") + b"\n")


class _BufferedSink(fileio.FileSink):
    """Columnar formats: rows are buffered and the file is written whole at
    ``flush()``, which fileio calls once, right before closing the file."""

    def __init__(self, record_type: Any):
        self._record_type = record_type

    def open(self, fh):
        self._fh = fh
        self._rows: list = []
        self._written = False

    def write(self, record):
        self._rows.append(_to_columnar_dict(record))

    def flush(self):
        if not self._rows:
            return
        if self._written:
            raise RuntimeError("a columnar file can be written only once; fileio flushed it twice")
        self._write_file(self._rows)
        self._rows, self._written = [], True
        self._fh.flush()

    def _write_file(self, rows):
        raise NotImplementedError


class _ParquetSink(_BufferedSink):
    def _write_file(self, rows):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(self._record_type)), self._fh)


class _AvroSink(_BufferedSink):
    def _write_file(self, rows):
        import fastavro

        fastavro.writer(self._fh, fastavro.parse_schema(avro_schema(self._record_type)), rows)


def _file_sink(fmt: str, record_type: Any) -> fileio.FileSink:
    if fmt == "jsonl":
        return _JsonLinesSink()
    if fmt == "csv":
        return _CsvSink(",".join(f.name for f in fields_of(record_type)))
    if fmt == "parquet":
        return _ParquetSink(record_type)
    return _AvroSink(record_type)


class _ValueSink(fileio.FileSink):
    """Writes the record of a ``(partition, record)`` pair with another sink."""

    def __init__(self, sink: fileio.FileSink):
        self._sink = sink

    def open(self, fh):
        self._sink.open(fh)

    def write(self, keyed):
        self._sink.write(keyed[1])

    def flush(self):
        self._sink.flush()


def _partitioned_naming(name: str, suffix: str):
    """fileio naming: ``<partition>/<name>[-<window>]-SSSSS-of-NNNNN<suffix>``."""

    def naming(window, pane, shard_index, total_shards, compression, destination):
        parts = [name]
        if isinstance(window, beam.window.IntervalWindow):
            parts += [window.start.to_utc_datetime().strftime("%Y%m%dT%H%M%S"),
                      window.end.to_utc_datetime().strftime("%Y%m%dT%H%M%S")]
        parts.append(f"{shard_index:05d}-of-{total_shards:05d}")
        base = "-".join(parts) + suffix
        return f"{destination}/{base}" if destination else base

    return naming


class _PartitionOf(beam.DoFn):
    """Keys each record by the partition of its time field; on local file
    systems it creates the partition directories too, because fileio's final
    rename does not (and only logs a failed rename)."""

    def __init__(self, field: Optional[str], base: str):
        self._field = field
        self._base = base

    def setup(self):
        self._local = FileSystems.get_scheme(self._base) in (None, "file")
        self._made: set = set()

    def process(self, record):
        partition = partition_path(getattr(record, self._field)) if self._field else ""
        if self._local and partition not in self._made:
            os.makedirs(os.path.join(self._base, partition), exist_ok=True)
            self._made.add(partition)
        yield partition, record


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
      partition_by: a required Timestamp field: write Hive-style partitions
        ``dt=YYYY-MM-DD/hour=HH`` of its UTC time under the prefix's directory.
      validate: check an ``s3://`` / ``gs://`` bucket exists at construction.

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
        partition_by: Optional[str] = None,
        validate: bool = True,
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
        self._partition_by = partition_by or None
        self._validate = validate

    def _split_prefix(self) -> tuple[str, str]:
        """(directory, file name prefix) of the sink's prefix."""
        cut = self._prefix.rfind("/") + 1
        return self._prefix[:cut] or ".", self._prefix[cut:] or "part"

    @property
    def glob(self) -> str:
        """A glob matching the files this sink writes."""
        if self._partition_by:
            directory, name = self._split_prefix()
            return f"{directory.rstrip('/')}/dt=*/hour=*/{name}*{self._suffix}"
        return f"{self._prefix}*{self._suffix}"

    def _resolve_record_type(self, pcoll):
        return resolve_record_type(pcoll, self._record_type, f"{self._format} files {self._prefix!r}")

    def _check_partition_field(self, record_type) -> None:
        fields = {f.name: f for f in fields_of(record_type)}
        field = fields.get(self._partition_by)
        if field is None or field.type is not Timestamp or field.optional or field.is_list:
            raise SchemaError(
                f"partition_by={self._partition_by!r} for {self._prefix!r}: it must name a required "
                f"Timestamp field of the records ({', '.join(fields)})"
            )

    def _expand_fileio(self, pcoll, record_type):
        """Partitioned and unbounded-Avro writes: Beam's fileio.WriteToFiles."""
        directory, name = self._split_prefix()
        records = pcoll | "CountWritten" >> CountElements("records_written")
        if not pcoll.is_bounded:
            records = (
                records
                | "StampArrival" >> beam.ParDo(_StampArrival()).with_output_types(pcoll.element_type)
                | "ArrivalWindows" >> beam.WindowInto(beam.window.FixedWindows(self._triggering_frequency))
            )
        fmt = self._format
        return (
            records
            | "Partition" >> beam.ParDo(_PartitionOf(self._partition_by, directory))
            | "WriteFiles" >> fileio.WriteToFiles(
                path=directory,
                destination=lambda keyed: keyed[0],
                sink=lambda _: _ValueSink(_file_sink(fmt, record_type)),
                file_naming=_partitioned_naming(name, self._suffix),
                shards=self._num_shards or None,
            )
        )

    def _expand_columnar(self, pcoll):
        """Arrow tables of records: unpartitioned Parquet straight from the
        tables, other formats and partitioned output record by record."""
        from hybridflow.columnar import ToRecords

        hint = pcoll.element_type
        if self._format != "parquet" or self._partition_by:
            return pcoll | "ToRecords" >> ToRecords() | "Write" >> WriteToFiles(
                self._prefix, self._format, self._suffix, self._num_shards, self._triggering_frequency,
                self._record_type, partition_by=self._partition_by, validate=False,
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
        if self._validate:
            check_bucket(self.glob, pcoll.pipeline.options)
        from hybridflow.columnar import is_columnar

        if is_columnar(pcoll):
            return self._expand_columnar(pcoll)
        bounded = pcoll.is_bounded
        if self._partition_by or (not bounded and self._format == "avro"):
            record_type = self._resolve_record_type(pcoll)
            if self._partition_by:
                self._check_partition_field(record_type)
            return self._expand_fileio(pcoll, record_type)
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
                    # Beam's S3 writer cannot finish a zero-byte object (a multipart upload with no
                    # parts: MalformedXML), so an empty output writes no file on s3://
                    skip_if_empty=self._prefix.startswith("s3://"),
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
