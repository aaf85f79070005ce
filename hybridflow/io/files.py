"""Files as sources and sinks: JSON lines, CSV, Avro, Parquet and ORC (and ECS, a sink format).

Local paths, ``gs://`` and ``s3://`` all go through Beam's FileSystems, so
the same URI forms work everywhere Beam's file IO works. Readers are thin over
``ReadFromText`` / ``ReadFromAvro`` / ``ReadFromParquet``; writers over
``WriteToText`` / ``WriteToAvro`` / ``WriteToParquet``. Beam has no ORC IO: ORC
files are read stripe by stripe and written whole with pyarrow's ORC module
(through ``fileio``). ``ecs`` writes JSON lines in the Elastic Common Schema
shape (:mod:`hybridflow.io.ecs`).

Readers emit raw payloads: text lines for JSON lines, dicts for CSV (keyed by
the header), Avro and Parquet. Type them with
:class:`~hybridflow.transforms.ParseRecords`.

Writers take schema'd records (NamedTuple or ``beam.Row``); the Parquet and
Avro schemas are derived from the record type. A bounded input is written by
Beam's ``WriteToText`` / ``WriteToAvro`` / ``WriteToParquet`` as
``<prefix>-SSSSS-of-NNNNN<suffix>``. An empty JSON-lines output on ``s3://``
writes no file: Beam's S3 writer cannot complete a zero-byte object.

An unbounded input is written in **event-time windows** of ``every`` seconds,
one set of files per window and pane::

    out/alerts-20260101T000000-20260101T000100-000-00000-of-00001.jsonl
    out/alerts-20260101T000000-20260101T000100-001-00000-of-00001.jsonl   (a late pane)

A window's files appear once the watermark passes its end (pane ``000``);
records that arrive behind the watermark are written as further panes
(``001``, ``002`` ...) of their window, never dropped. Each file is written
under a hidden temporary name beside its final name and renamed when complete,
so a reader never sees a partial file. See docs/guarantees.md, "Streaming file
sinks".

Why not Beam's own unbounded file writes (2.70): ``WriteToText`` /
``WriteToParquet`` with ``triggering_frequency`` window into
``FixedWindows(triggering_frequency)`` with allowed lateness 0, so anything
behind the watermark, such as the panes that fire when the watermark reaches
+inf at the end of a job, is dropped with no counter; their Parquet sink keeps
one file handle per sink object, so a bundle that writes several windows
closes the wrong file and renames a file without its footer;
``_RowDictionariesToArrowTable`` stamps its tables at ``window.end``, outside
their window, which makes Prism panic at +inf; and ``fileio.WriteToFiles``
passes its file naming no pane (``pane=None``), so with late firings a late
pane's file would take the on-time file's name. The
writer here keys records by partition, window and shard in the global window,
and a stateful DoFn writes each pane from an event-time timer through the same
``fileio.FileSink`` classes as the bounded partitioned writes.

``partition_by="event_time"`` (a Timestamp field) lays the output out
Hive-style by that field's UTC date and hour, the batch layer's layout::

    out/dt=2026-01-01/hour=00/alerts-00000-of-00002.jsonl
    out/dt=2026-01-01/hour=01/alerts-00000-of-00001.jsonl

Bounded partitioned writes go through Beam's dynamic-destination
``fileio.WriteToFiles`` with a small ``FileSink`` per format; unbounded
partitioned files carry their window and pane in the name too.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import random
import typing
import uuid
from typing import Any, Optional

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.io import fileio
from apache_beam.io.avroio import ReadFromAvro, WriteToAvro
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.fileio import EmptyMatchTreatment
from apache_beam.io.parquetio import ReadFromParquet, WriteToParquet
from apache_beam.io.textio import ReadFromText, WriteToText
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import CorruptInputError, InvalidLocationError, InvalidUriError
from hybridflow.io._sink import require_timestamp_field, resolve_record_type
from hybridflow.io.buckets import check_bucket
from hybridflow.io.ecs import ecs_json
from hybridflow.io.uri import FILE_FORMATS
from hybridflow.metrics import CountElements
from hybridflow.schemas import FieldInfo, fields_of, to_json, to_plain
from hybridflow.transforms.dead_letters import Unreadable

__all__ = [
    "ReadFromFiles",
    "WriteToFiles",
    "arrow_schema",
    "avro_schema",
    "file_name",
    "partition_path",
    "check_input",
    "decompressed_chunks",
]

DEFAULT_EVERY = 60  # seconds: the event-time window of unbounded writes


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


def csv_rows(lines: typing.Iterable[str]) -> typing.Iterator[Any]:
    """The rows of CSV text as dicts keyed by its header row (as
    ``csv.DictReader`` gives them: blank rows skipped, extra cells under the
    key ``None``, missing ones ``None``). ``lines`` are decoded with
    ``errors="surrogateescape"``: a row holding bytes that are not UTF-8 is
    given as those bytes (ParseRecords makes it a ``decode_error`` dead
    letter), a row ``csv`` cannot read (a field over its size limit) as an
    :class:`~hybridflow.transforms.dead_letters.Unreadable` (``invalid_csv``);
    neither stops the file."""
    consumed: list[str] = []

    def feed():
        for line in lines:
            consumed.append(line)
            yield line

    reader = csv.reader(feed())
    header: Optional[list] = None
    while True:
        consumed.clear()
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            text = "".join(consumed).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            yield Unreadable("invalid_csv", f"bad CSV row: {exc}", text)
            continue
        if header is None:  # a header cell that is not UTF-8 matches no field: every row lacks it
            header = [cell.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for cell in row]
            continue
        if not row:
            continue
        raw = "".join(consumed)
        if not raw.isascii():
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:
                yield raw.rstrip("\r\n").encode("utf-8", "surrogateescape")
                continue
        record: dict = dict(zip(header, row))
        if len(row) > len(header):
            record[None] = row[len(header):]
        for name in header[len(row):]:
            record[name] = None
        yield record


class _ReadCsvFile(beam.DoFn):
    """Reads one CSV file into dicts keyed by its header row (see :func:`csv_rows`);
    a UTF-8 byte-order mark before the header is skipped."""

    def process(self, readable_file):
        with readable_file.open() as raw:
            yield from csv_rows(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline=""))


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
      format: one of ``jsonl``, ``csv``, ``avro``, ``parquet``, ``orc``.
      validate: check an ``s3://`` / ``gs://`` bucket exists at construction.
      columnar: emit Arrow tables of many payloads each (``jsonl``: a
        ``line`` column; ``parquet``, ``orc``: the file's columns) instead of one
        element per payload; see :mod:`hybridflow.columnar`.
      allow_empty: read nothing, without error, when no file matches.

    Example::

        lines = p | ReadFromFiles("data/history/*.jsonl", format="jsonl")
    """

    COLUMNAR_FORMATS = ("jsonl", "parquet", "orc")

    def __init__(
        self, pattern: str, format: str, validate: bool = True, columnar: bool = False, allow_empty: bool = False
    ):
        super().__init__()
        if format == "ecs":
            raise InvalidUriError(f"{pattern!r}: ECS is an output format; read these files with ?format=jsonl")
        if format not in FILE_FORMATS:
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
            from hybridflow.columnar.read import ReadJsonLinesAsTables, ReadOrcAsTables, ReadParquetAsTables

            reader = {"jsonl": ReadJsonLinesAsTables, "parquet": ReadParquetAsTables, "orc": ReadOrcAsTables}
            return pbegin | "ReadTables" >> reader[self._format](self._pattern)
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
        elif self._format == "orc":  # Beam has no ORC source: the columnar reader's stripes, as rows
            from hybridflow.columnar.read import ReadOrcAsTables

            return pbegin | "ReadOrc" >> ReadOrcAsTables(self._pattern) | "Rows" >> beam.FlatMap(
                lambda table: table.to_pylist())
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


class _EcsSink(_JsonLinesSink):
    def __init__(self, dataset: str):
        self._dataset = dataset

    def write(self, record):
        self._fh.write(ecs_json(record, self._dataset).encode("utf-8") + b"\n")


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


class _ArrowSink(_BufferedSink):
    """Parquet and ORC: the rows as one Arrow table of the record type's schema, written by ``module``."""

    module = ""

    def _write_file(self, rows):
        import importlib

        import pyarrow as pa

        table = pa.Table.from_pylist(rows, schema=arrow_schema(self._record_type))
        importlib.import_module(self.module).write_table(table, self._fh)


class _ParquetSink(_ArrowSink):
    module = "pyarrow.parquet"


class _OrcSink(_ArrowSink):
    module = "pyarrow.orc"


class _AvroSink(_BufferedSink):
    def _write_file(self, rows):
        import fastavro

        fastavro.writer(self._fh, fastavro.parse_schema(avro_schema(self._record_type)), rows)


def _file_sink(fmt: str, record_type: Any, name: str) -> fileio.FileSink:
    if fmt == "jsonl":
        return _JsonLinesSink()
    if fmt == "ecs":
        return _EcsSink(name)
    if fmt == "csv":
        return _CsvSink(",".join(f.name for f in fields_of(record_type)))
    if fmt == "parquet":
        return _ParquetSink(record_type)
    if fmt == "orc":
        return _OrcSink(record_type)
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


# File names. Window bounds are written as UTC "basic" ISO 8601 times.
_BASIC_TIME = "????????T??????"
_LAST_NAMED = Timestamp.from_utc_datetime(datetime.datetime(9999, 12, 30, tzinfo=datetime.UTC))


def _basic_time(time: Timestamp) -> str:
    t = time.to_utc_datetime()
    return f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}"


def file_name(name: str, suffix: str, shard: int, shards: int, window=None, pane: Optional[int] = None) -> str:
    """A written file's name: ``<name>-SSSSS-of-NNNNN<suffix>``, or with an
    event-time window and pane ``<name>-<start>-<end>-<pane>-SSSSS-of-NNNNN<suffix>``.

    >>> file_name("alerts", ".jsonl", 0, 1)
    'alerts-00000-of-00001.jsonl'
    >>> w = beam.window.IntervalWindow(Timestamp.of(1767225600), Timestamp.of(1767225660))
    >>> file_name("alerts", ".jsonl", 0, 1, w, 1)
    'alerts-20260101T000000-20260101T000100-001-00000-of-00001.jsonl'
    """
    parts = [name]
    if window is not None:
        parts += [_basic_time(window.start), _basic_time(window.end), f"{pane:03d}"]
    parts.append(f"{shard:05d}-of-{shards:05d}")
    return "-".join(parts) + suffix


def _file_glob(name: str, suffix: str, windowed: bool) -> str:
    """The glob of :func:`file_name`'s names (any pane, shard and window)."""
    window = f"-{_BASIC_TIME}-{_BASIC_TIME}-*" if windowed else ""
    return f"{name}{window}-?????-of-?????{suffix}"


def _partitioned_naming(name: str, suffix: str):
    """fileio naming of bounded partitioned files: ``<partition>/<name>-SSSSS-of-NNNNN<suffix>``."""

    def naming(window, pane, shard_index, total_shards, compression, destination):
        base = file_name(name, suffix, shard_index, total_shards)
        return f"{destination}/{base}" if destination else base

    return naming


def _partition_of(record, field: Optional[str]) -> str:
    """The partition directory of ``record`` (``""`` when not partitioned)."""
    return partition_path(getattr(record, field)) if field else ""


class _PartitionOf(beam.DoFn):
    """Keys each record by the partition of its time field; on local file
    systems and HDFS it creates the partition directories too, because
    fileio's final rename does not (and only logs a failed rename)."""

    def __init__(self, field: Optional[str], base: str):
        self._field = field
        self._base = base

    def setup(self):
        self._scheme = FileSystems.get_scheme(self._base) or "file"
        self._made: set = set()

    def _make_directory(self, partition: str) -> None:
        if self._scheme == "file":
            os.makedirs(os.path.join(self._base, partition), exist_ok=True)
        elif self._scheme == "hdfs":
            from apache_beam.io.filesystem import BeamIOError

            path = FileSystems.join(self._base, partition)
            try:
                if not FileSystems.exists(path):
                    FileSystems.mkdirs(path)
            except BeamIOError:  # made by another worker meanwhile
                pass

    def process(self, record):
        partition = _partition_of(record, self._field)
        if partition not in self._made:
            self._make_directory(partition)
            self._made.add(partition)
        yield partition, record


class _CountRowsWritten(beam.DoFn):
    def setup(self):
        from hybridflow.metrics import counter

        self._written = counter("records_written")

    def process(self, table):
        self._written.inc(table.num_rows)
        yield table


# --------------------------------------------------------------------------
# Unbounded writes: a file per event-time window, pane and shard

MAX_EVERY = 24 * 3600
# the event times a window name can carry; element timestamps outside (Beam's
# minimum timestamp, which file and Create sources give records with no event
# time; the end of the global window) are named by the nearest bound
_FIRST_NAMED = Timestamp(0)


def _window_start(time: Timestamp, every_micros: int) -> int:
    """The start (micros) of the ``every``-long event-time window holding ``time``, its time
    first brought into the range file names can carry (1970-01-01 to 9999-12-30)."""
    micros = min(max(time.micros, _FIRST_NAMED.micros), _LAST_NAMED.micros - every_micros)
    return micros - micros % every_micros


class _KeyByPaneFile(beam.DoFn):
    """``record`` -> ``((destination, window start micros, shard), record)``: the
    file key of an unbounded write; shards round robin."""

    def __init__(self, partition_by: Optional[str], every: int, shards: int):
        self._field = partition_by
        self._every_micros = every * 1_000_000
        self._shards = shards

    def start_bundle(self):
        self._next = random.randrange(self._shards)

    def process(self, record, timestamp=beam.DoFn.TimestampParam):
        self._next = (self._next + 1) % self._shards
        yield (_partition_of(record, self._field), _window_start(timestamp, self._every_micros), self._next), record


class _WritePaneFiles(beam.DoFn):
    """Per file key: buffers the records, and when the watermark passes the
    window's end writes them as one file of the key's next pane (000, 001 ...,
    see :func:`file_name`). A record that arrives after its window was written
    sets the timer again, in the past: it fires at the runner's next timer
    firing, and the record becomes a later pane.

    This is a stateful DoFn in the global window rather than a GroupByKey over
    event-time windows: a GroupByKey drops what arrives behind the watermark
    past its allowed lateness, and Beam's bundle-based DirectRunner delivers
    the output of timers that fire at the end of a stream (+inf) after its
    watermark got there, when every window has expired.

    A file is written under a hidden temporary name in its directory
    (``.tmp-<uuid>-<name>``) and renamed when complete, so a file under its
    final name is always whole; a retried pane rewrites the same name.
    """

    RECORDS = BagStateSpec("records", PickleCoder())
    PANE = ReadModifyWriteStateSpec("pane", VarIntCoder())
    WINDOW_END = TimerSpec("window_end", TimeDomain.WATERMARK)

    def __init__(self, directory: str, name: str, suffix: str, shards: int, every: int, fmt: str, record_type: Any):
        self._directory = directory
        self._name = name
        self._suffix = suffix
        self._shards = shards
        self._every_micros = every * 1_000_000
        self._format = fmt
        self._record_type = record_type

    def process(
        self,
        element,
        records=beam.DoFn.StateParam(RECORDS),
        window_end=beam.DoFn.TimerParam(WINDOW_END),
    ):
        (_, start, _), record = element
        records.add(record)
        window_end.set(Timestamp(micros=start + self._every_micros))

    @on_timer(WINDOW_END)
    def on_window_end(
        self,
        key=beam.DoFn.KeyParam,
        records=beam.DoFn.StateParam(RECORDS),
        pane=beam.DoFn.StateParam(PANE),
    ):
        buffered = list(records.read())
        if not buffered:
            return
        index = pane.read() or 0
        yield self._write(key, buffered, index)
        records.clear()
        pane.write(index + 1)

    def _write(self, key, records: list, pane: int) -> str:
        destination, start, shard = key
        window = beam.window.IntervalWindow(Timestamp(micros=start), Timestamp(micros=start + self._every_micros))
        base = file_name(self._name, self._suffix, shard, self._shards, window, pane)
        directory = FileSystems.join(self._directory, destination) if destination else self._directory
        final = FileSystems.join(directory, base)
        temp = FileSystems.join(directory, f".tmp-{uuid.uuid4().hex}-{base}")
        sink = _file_sink(self._format, self._record_type, self._name)
        try:
            with FileSystems.create(temp) as handle:
                sink.open(handle)
                for record in records:
                    sink.write(record)
                sink.flush()
            FileSystems.rename([temp], [final])
        except BaseException:
            if FileSystems.exists(temp):
                FileSystems.delete([temp])
            raise
        return final


class WriteToFiles(beam.PTransform):
    """Writes schema'd records to files.

    A bounded input is written as ``<prefix>-SSSSS-of-NNNNN<suffix>``; an
    unbounded one in event-time windows of ``every`` seconds, a file per
    window, pane and shard:
    ``<prefix>-<window start>-<window end>-<pane>-SSSSS-of-NNNNN<suffix>``
    (see the module docstring).

    Args:
      prefix: path prefix of the files (local, ``gs://`` or ``s3://``).
      format: one of ``jsonl``, ``csv``, ``avro``, ``parquet``, ``orc``,
        ``ecs`` (JSON lines in the Elastic Common Schema shape, dataset
        ``hybridflow.<file name prefix>``).
      suffix: file name suffix; defaults to ``.<format>``.
      num_shards: number of files (per window and pane when unbounded); 0
        lets the runner decide (one per window and pane when unbounded).
      every: the event-time window length in seconds of an unbounded input
        (1 to 86400; ignored when bounded).
      record_type: the record type; by default the input's element type.
      partition_by: a required Timestamp field: write Hive-style partitions
        ``dt=YYYY-MM-DD/hour=HH`` of its UTC time under the prefix's directory.
      validate: check an ``s3://`` / ``gs://`` bucket exists at construction.

    Output: the PCollection of written file names.
    """

    def __init__(
        self,
        prefix: str,
        format: str,
        suffix: Optional[str] = None,
        num_shards: int = 0,
        every: int = DEFAULT_EVERY,
        record_type: Any = None,
        partition_by: Optional[str] = None,
        validate: bool = True,
    ):
        super().__init__()
        if format not in FILE_FORMATS:
            raise InvalidUriError(f"{prefix!r}: unknown file format {format!r}")
        if not isinstance(every, int) or not 1 <= every <= MAX_EVERY:
            raise InvalidUriError(
                f"{prefix!r}: every={every!r} is not a window length; use whole seconds from 1 to {MAX_EVERY}"
            )
        self._prefix = prefix
        self._format = format
        self._suffix = f".{format}" if suffix is None else suffix
        self._num_shards = num_shards
        self._every = every
        self._record_type = record_type
        self._partition_by = partition_by or None
        self._validate = validate
        self._bounded: Optional[bool] = None  # known once applied

    def _split_prefix(self) -> tuple[str, str]:
        """(directory, file name prefix) of the sink's prefix."""
        cut = self._prefix.rfind("/") + 1
        return self._prefix[:cut] or ".", self._prefix[cut:] or "part"

    @property
    def glob(self) -> str:
        """A glob matching exactly the files this sink writes: with or without
        windows as its input is bounded or not (once applied; before, the
        bounded names)."""
        directory, name = self._split_prefix()
        names = _file_glob(name, self._suffix, windowed=self._bounded is False)
        if self._partition_by:
            return f"{directory.rstrip('/')}/dt=*/hour=*/{names}"
        return f"{self._prefix[: self._prefix.rfind('/') + 1]}{names}"

    def _resolve_record_type(self, pcoll):
        return resolve_record_type(pcoll, self._record_type, f"{self._format} files {self._prefix!r}")

    def _check_partition_field(self, record_type) -> None:
        require_timestamp_field(record_type, self._partition_by, f"partition_by={self._partition_by!r}",
                                repr(self._prefix))

    def _expand_windowed(self, pcoll, record_type):
        """Unbounded input: a file per event-time window, pane, destination and shard."""
        directory, name = self._split_prefix()
        shards = self._num_shards or 1
        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "KeyByFile" >> beam.ParDo(_KeyByPaneFile(self._partition_by, self._every, shards)).with_output_types(
                typing.Tuple[typing.Tuple[str, int, int], pcoll.element_type])
            | "GlobalWindow" >> beam.WindowInto(beam.window.GlobalWindows())
            | "WritePanes" >> beam.ParDo(
                _WritePaneFiles(directory, name, self._suffix, shards, self._every, self._format, record_type)
            ).with_output_types(str)
        )

    def _expand_partitioned(self, pcoll, record_type):
        """Bounded partitioned writes: Beam's fileio.WriteToFiles."""
        directory, name = self._split_prefix()
        fmt = self._format
        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "Partition" >> beam.ParDo(_PartitionOf(self._partition_by, directory))
            | "WriteFiles" >> fileio.WriteToFiles(
                path=directory,
                destination=lambda keyed: keyed[0],
                sink=lambda _: _ValueSink(_file_sink(fmt, record_type, name)),
                file_naming=_partitioned_naming(name, self._suffix),
                shards=self._num_shards or None,
            )
        )

    def _expand_columnar(self, pcoll):
        """Arrow tables of records: bounded unpartitioned Parquet straight from
        the tables, other formats, partitioned and unbounded output record by record."""
        from hybridflow.columnar import ToRecords

        hint = pcoll.element_type
        if self._format != "parquet" or self._partition_by or not pcoll.is_bounded:
            return pcoll | "ToRecords" >> ToRecords() | "Write" >> WriteToFiles(
                self._prefix, self._format, self._suffix, self._num_shards, self._every,
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
        self._bounded = pcoll.is_bounded
        if self._validate:
            check_bucket(self._prefix + self._suffix, pcoll.pipeline.options)
        from hybridflow.columnar import is_columnar

        if is_columnar(pcoll):
            return self._expand_columnar(pcoll)
        # unbounded: our windowed writer; bounded partitioned or ORC (Beam has no ORC sink): Beam's fileio
        if not pcoll.is_bounded or self._partition_by or self._format == "orc":
            record_type = self._resolve_record_type(pcoll)
            if self._partition_by:
                self._check_partition_field(record_type)
            if not pcoll.is_bounded:
                return self._expand_windowed(pcoll, record_type)
            return self._expand_partitioned(pcoll, record_type)
        counted = pcoll | "CountWritten" >> CountElements("records_written")
        if self._format in ("jsonl", "ecs"):
            dataset = self._split_prefix()[1]
            encode = to_json if self._format == "jsonl" else (lambda record: ecs_json(record, dataset))
            return (
                counted
                | "ToJson" >> beam.Map(encode)
                | "WriteText" >> WriteToText(
                    self._prefix,
                    file_name_suffix=self._suffix,
                    num_shards=self._num_shards,
                    # Beam's S3 writer cannot finish a zero-byte object (a multipart upload with no
                    # parts: MalformedXML), so an empty output writes no file on s3://
                    skip_if_empty=self._prefix.startswith("s3://"),
                )
            )
        record_type = self._resolve_record_type(pcoll)
        if self._format == "csv":
            return (
                counted
                | "ToCsv" >> beam.Map(_to_csv_line)
                | "WriteText" >> WriteToText(
                    self._prefix,
                    file_name_suffix=self._suffix,
                    num_shards=self._num_shards,
                    header=",".join(f.name for f in fields_of(record_type)),
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
