"""Reading JSON-lines, Parquet and ORC files as Arrow tables (bounded, columnar).

JSON lines are read in byte ranges (``block_bytes``, split at line starts
exactly as Beam's ``ReadFromText`` splits lines: ``\\n`` or ``\\r\\n``), each
range becoming one table with a single binary column ``line`` whose values
keep their trailing newline, so that the whole range can be handed to
``pyarrow.json`` as one buffer without copying line by line. Parquet files go
through Beam's own ``ReadFromParquetBatched`` (one table per row group); ORC
files through pyarrow's ORC reader (one table per stripe; Beam has no ORC IO).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from hybridflow.columnar import arrow_tables, one_array
from hybridflow.metrics import counter

__all__ = ["ReadJsonLinesAsTables", "ReadParquetAsTables", "ReadOrcAsTables", "orc_stripes", "LINE", "lines_table", "blank_lines", "line_offsets"]

LINE = "line"
DEFAULT_BLOCK_BYTES = 16 << 20


def lines_table(data: bytes):
    """A table with one binary ``line`` column: the lines of ``data`` (each
    with its trailing newline; a final line without one gets one)."""
    import numpy as np
    import pyarrow as pa

    if data and not data.endswith(b"\n"):
        data += b"\n"
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    offsets = np.empty(len(ends) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends
    array = pa.Array.from_buffers(
        pa.large_binary(), len(ends), [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    return pa.table({LINE: array})


def line_offsets(array):
    """The value offsets of a binary or string array, large (int64) or not
    (int32), as a slice-aware numpy view."""
    import numpy as np
    import pyarrow as pa

    t = array.type
    wide = pa.types.is_large_binary(t) or pa.types.is_large_string(t)
    return np.frombuffer(array.buffers()[1], dtype=np.int64 if wide else np.int32)[
        array.offset: array.offset + len(array) + 1]


def blank_lines(table) -> list:
    """Indices of the lines that ``ReadFromFiles`` skips (whitespace only)."""
    import numpy as np

    array = one_array(table.column(LINE))
    offsets = line_offsets(array)
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8)
    first = data[np.minimum(offsets[:-1], max(len(data) - 1, 0))] if len(data) else np.zeros(0, dtype=np.uint8)
    # a blank line starts with whitespace: ASCII (\t-\r, \x1c-\x1f, space) or a non-ASCII byte
    candidates = np.flatnonzero((first <= 32) | (first >= 128))
    return [int(i) for i in candidates if not array[int(i)].as_py().decode("utf-8", "replace").strip()]


class _SplitFile(beam.DoFn):
    """File metadata -> (path, start, end) byte ranges (whole file if compressed)."""

    def __init__(self, block_bytes: int):
        self._block = block_bytes

    def process(self, metadata):
        path, size = metadata.path, metadata.size_in_bytes
        if CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
            yield path, 0, -1
        else:
            for start in range(0, size, self._block):
                yield path, start, min(start + self._block, size)


def _read_range(path: str, start: int, end: int) -> bytes:
    """The bytes of the lines that start in [start, end) (end < 0: the whole file)."""
    if end < 0:  # compressed: read it whole, to the end of its compressed stream
        from hybridflow.io.files import decompressed_chunks

        return b"".join(decompressed_chunks(path))
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()  # the line holding byte start-1 belongs to the range before
        position = f.tell()
        if position >= end:
            return b""
        data = f.read(end - position)
        if not data.endswith(b"\n"):
            data += f.readline()
        return data


class _ReadRange(beam.DoFn):
    """(path, start, end) -> one table of the lines that start in [start, end)."""

    def setup(self):
        self._read = counter("records_read")

    def process(self, byte_range):
        path, start, end = byte_range
        data = _read_range(path, start, end)
        if data:
            table = lines_table(data)
            self._read.inc(table.num_rows - len(blank_lines(table)))
            yield table


class ReadJsonLinesAsTables(beam.PTransform):
    """JSON-lines files -> Arrow tables of raw lines (``ArrowTable[None]``)."""

    def __init__(self, pattern: str, block_bytes: int = DEFAULT_BLOCK_BYTES):
        super().__init__()
        self._pattern = pattern
        self._block = block_bytes

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self._pattern, fileio.EmptyMatchTreatment.ALLOW)  # checked when built
            | "Split" >> beam.ParDo(_SplitFile(self._block))
            | "Distribute" >> beam.Reshuffle()
            | "ReadRanges" >> beam.ParDo(_ReadRange()).with_output_types(arrow_tables())
        )


class ReadParquetAsTables(beam.PTransform):
    """Parquet files -> Arrow tables of their (untyped) columns, via Beam's
    ``ReadFromParquetBatched``."""

    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = pattern

    def expand(self, pbegin):
        from apache_beam.io.parquetio import ReadFromParquetBatched

        return (
            pbegin
            | "ReadParquet" >> ReadFromParquetBatched(self._pattern, validate=False)  # checked when built
            | "Count" >> beam.ParDo(_CountRows()).with_output_types(arrow_tables())
        )


def orc_stripes(readable_file):
    """The stripes of an ORC file (a ``fileio.ReadableFile``) as Arrow tables."""
    import pyarrow as pa
    from pyarrow import orc

    with readable_file.open() as raw:
        reader = orc.ORCFile(raw)
        for index in range(reader.nstripes):
            yield pa.Table.from_batches([reader.read_stripe(index)])


class ReadOrcAsTables(beam.PTransform):
    """ORC files -> Arrow tables of their (untyped) columns, one per stripe."""

    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = pattern

    def expand(self, pbegin):
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self._pattern)
            | "Open" >> fileio.ReadMatches()
            | "ReadOrc" >> beam.FlatMap(orc_stripes)
            | "Count" >> beam.ParDo(_CountRows()).with_output_types(arrow_tables())
        )


class _CountRows(beam.DoFn):
    def setup(self):
        self._read = counter("records_read")

    def process(self, table):
        self._read.inc(table.num_rows)
        yield table
