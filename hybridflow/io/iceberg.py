"""Apache Iceberg: ``iceberg://CATALOG/NAMESPACE.TABLE``, append and snapshot reads, on pyiceberg.

Beam's managed Iceberg IO is Java (cross-language, Beam's shaded expansion
service: not served here, see :mod:`hybridflow.io.kinesis`); pyiceberg
(``pip install 'hybridflow[iceberg]'``) is Iceberg's own Python library and
does the catalog and metadata work, so the table format is never hand-written.

The catalog is pyiceberg's: ``CATALOG`` names one configured in
``~/.pyiceberg.yaml`` or ``PYICEBERG_CATALOG__<NAME>__*`` environment
variables (REST, Glue, Hive, SQL ... with their credentials: never put them
in the URI), or, for a local SQL catalog, ``?catalog_uri=sqlite:////abs/catalog.db
&warehouse=file:///abs/warehouse``.

Writing (:class:`WriteToIceberg`):

- the table is created on first write if missing, with the schema of the
  record type (:func:`~hybridflow.io.files.arrow_schema`: timestamps as
  ``timestamptz``) and, with ``partition_by=FIELD`` (a required Timestamp
  field), partitioned by that field's UTC day (``day(FIELD)``);
- workers write Parquet data files (one per day partition and bundle) under
  the table's location; one step then commits them all in **one snapshot**
  (``add_files``): a bounded write is one snapshot, so a retried bundle's
  files are never committed twice and readers see all of the run or none
  of it. An unbounded input commits one snapshot per ``every`` seconds
  (processing time, like file sinks); a commit conflict (another writer) is
  retried on the refreshed table.

Reading (:class:`ReadFromIceberg`) is bounded: the snapshot is fixed when the
pipeline is built (``snapshot_id=`` or the table's current one, logged and in
:attr:`ReadFromIceberg.snapshot_id`), so a re-run with the same
``snapshot_id`` reads exactly the same rows; each planned data file is read
in parallel, and rows come out as dicts for ``ParseRecords``.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any, Mapping, Optional

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io._sink import require_timestamp_field, resolve_record_type
from hybridflow.io.uri import EndpointUri
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of

__all__ = ["ReadFromIceberg", "WriteToIceberg", "load_table"]

_LOG = logging.getLogger(__name__)
COMMIT_ATTEMPTS = 5


def _catalog(name: str, properties: Mapping[str, str]):
    require("pyiceberg", "iceberg:// (Apache Iceberg)", "iceberg")
    from pyiceberg.catalog import load_catalog

    try:
        return load_catalog(name, **dict(properties))
    except ValueError as exc:
        raise ConnectorError(
            f"iceberg://{name}: catalog {name!r} is not configured ({exc}); configure it in ~/.pyiceberg.yaml or "
            f"PYICEBERG_CATALOG__{name.upper()}__URI, or add ?catalog_uri=sqlite:////ABS/PATH/catalog.db"
            "&warehouse=file:///ABS/PATH"
        ) from exc


def load_table(catalog: str, identifier: str, properties: Mapping[str, str]):
    """The pyiceberg table ``identifier`` of ``catalog``; one-line ConnectorError if it is missing."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        return _catalog(catalog, properties).load_table(identifier)
    except (NoSuchTableError, NoSuchNamespaceError):
        raise ConnectorError(
            f"iceberg://{catalog}/{identifier}: the table does not exist in catalog {catalog!r}; write to it "
            "first (WriteTo creates it) or fix the namespace.table"
        ) from None


@dataclasses.dataclass(frozen=True)
class _TableRef:
    """A table as DoFns carry it (configuration only; the table is loaded on the worker)."""

    catalog: str
    identifier: str
    properties: tuple  # sorted (name, value) pairs

    def load(self):
        return load_table(self.catalog, self.identifier, dict(self.properties))


def _create_table(ref: _TableRef, record_type, partition_by: Optional[str]):
    """Loads the table, creating it (and its namespace) from the record type if missing."""
    from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, TableAlreadyExistsError
    from pyiceberg.transforms import DayTransform

    from hybridflow.io.files import arrow_schema

    identifier = ref.identifier
    cat = _catalog(ref.catalog, dict(ref.properties))
    try:
        return cat.load_table(identifier)
    except NoSuchTableError:
        pass
    namespace = identifier.rsplit(".", 1)[0]
    try:
        cat.create_namespace(namespace)
    except NamespaceAlreadyExistsError:
        pass
    try:
        table = cat.create_table(identifier, schema=arrow_schema(record_type))
    except TableAlreadyExistsError:  # another writer was first
        return cat.load_table(identifier)
    if partition_by:
        with table.update_spec() as spec:
            spec.add_field(partition_by, DayTransform(), f"{partition_by}_day")
    return cat.load_table(identifier)


def _day_partition(table, uri: str, fields: list[str]) -> Optional[str]:
    """The field an existing table is partitioned by (its day), checking the records fit the table."""
    columns = [f.name for f in table.schema().fields]
    if columns != fields:
        raise ConnectorError(
            f"{uri}: the table's columns ({', '.join(columns)}) are not the records' fields ({', '.join(fields)}); "
            "write records of the table's type or to another table"
        )
    partitioned = list(table.spec().fields)
    if not partitioned:
        return None
    if len(partitioned) > 1 or str(partitioned[0].transform) != "day":
        raise ConnectorError(f"{uri}: the table is partitioned by {table.spec()}; hybridflow appends to tables "
                             "partitioned by the day of one timestamp, or unpartitioned")
    return table.schema().find_field(partitioned[0].source_id).name


class _StampArrival(beam.DoFn):
    """Re-stamps a record with the processing time it reaches the sink, so
    that `every` groups records by arrival into one commit each."""

    def process(self, element):
        yield beam.window.TimestampedValue(element, Timestamp.now())


class _WriteDataFiles(beam.DoFn):
    """Buffers a bundle's records by window and day; at the bundle's end writes one Parquet file per
    window and day partition under the table's location and emits its path in that window."""

    def __init__(self, table: _TableRef, record_type, partition_by: Optional[str]):
        self._ref = table
        self._record_type = record_type
        self._partition_by = partition_by

    def setup(self):
        from hybridflow.io.files import arrow_schema

        self._table = self._ref.load()
        self._schema = arrow_schema(self._record_type)

    def start_bundle(self):
        self._rows: dict = {}

    def process(self, record, window=beam.DoFn.WindowParam):
        from hybridflow.io.files import _to_columnar_dict

        day = ""
        if self._partition_by:
            day = getattr(record, self._partition_by).to_utc_datetime().strftime("%Y-%m-%d")
        self._rows.setdefault((window, day), []).append(_to_columnar_dict(record))

    def finish_bundle(self):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from apache_beam.utils.windowed_value import WindowedValue

        location = self._table.location().rstrip("/")
        for (window, day), rows in self._rows.items():
            partition = f"{self._partition_by}_day={day}/" if day else ""
            path = f"{location}/data/{partition}{uuid.uuid4().hex}.parquet"
            with self._table.io.new_output(path).create(overwrite=True) as out:
                pq.write_table(pa.Table.from_pylist(rows, schema=self._schema), out)
            yield WindowedValue(path, window.max_timestamp(), [window])
        self._rows = {}


class _Commit(beam.DoFn):
    """Commits a list of data files to the table as one snapshot; emits the snapshot id."""

    def __init__(self, table: _TableRef):
        self._ref = table

    def process(self, paths):
        from pyiceberg.exceptions import CommitFailedException

        if not paths:
            return
        table = self._ref.load()
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                table.add_files(sorted(paths))
                break
            except CommitFailedException:
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                table = table.refresh()
        yield table.current_snapshot().snapshot_id


class _IcebergTransform(beam.PTransform):
    """What reads and writes share: the catalog, the table and the catalog's properties."""

    def __init__(self, catalog: str, identifier: str, catalog_properties: Optional[Mapping[str, str]]):
        super().__init__()
        self._uri = f"iceberg://{catalog}/{identifier}"
        if "." not in identifier.strip("."):
            raise InvalidUriError(f"{self._uri}: name the table as NAMESPACE.TABLE: iceberg://CATALOG/NAMESPACE.TABLE")
        self._ref = _TableRef(catalog, identifier, tuple(sorted((catalog_properties or {}).items())))


class WriteToIceberg(_IcebergTransform):
    """Appends records to an Iceberg table, one snapshot per bounded write (see the module doc).

    Args:
      catalog: the pyiceberg catalog name.
      identifier: ``namespace.table``.
      catalog_properties: pyiceberg catalog properties (``uri``, ``warehouse``)
        for a catalog not configured elsewhere; no secrets (use pyiceberg's
        configuration for those).
      partition_by: a required Timestamp field: partition a new table by its
        UTC day (an existing table keeps its own partitioning).
      every: seconds between commits of an unbounded input.
      record_type: the record type if the input's element type is not one.

    Output: the ids of the snapshots committed.
    """

    def __init__(self, catalog: str, identifier: str, catalog_properties: Optional[Mapping[str, str]] = None,
                 partition_by: Optional[str] = None, every: int = 60, record_type: Any = None):
        super().__init__(catalog, identifier, catalog_properties)
        self._partition_by = partition_by or None
        self._every = every
        self._record_type = record_type

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        if self._partition_by:
            require_timestamp_field(record_type, self._partition_by, f"partition_by={self._partition_by!r}", self._uri)
        table = _create_table(self._ref, record_type, self._partition_by)
        partition_by = _day_partition(table, self._uri, [f.name for f in fields_of(record_type)])
        records = pcoll | "CountWritten" >> CountElements("records_written")
        if not pcoll.is_bounded:  # one commit per `every` seconds of processing time
            records = (
                records
                | "StampArrival" >> beam.ParDo(_StampArrival()).with_output_types(pcoll.element_type)
                | "CommitWindows" >> beam.WindowInto(beam.window.FixedWindows(self._every))
            )
        return (
            records
            | "WriteDataFiles" >> beam.ParDo(_WriteDataFiles(self._ref, record_type, partition_by))
            | "FilesOfWindow" >> beam.CombineGlobally(beam.combiners.ToListCombineFn()).without_defaults()
            | "Commit" >> beam.ParDo(_Commit(self._ref))
        )


class _PlanFiles(beam.DoFn):
    """The data files of the snapshot (pyiceberg's scan planning)."""

    def __init__(self, table: _TableRef, snapshot_id: int):
        self._ref = table
        self._snapshot_id = snapshot_id

    def process(self, _):
        for task in self._ref.load().scan(snapshot_id=self._snapshot_id).plan_files():
            yield task.file.file_path


class _ReadDataFile(_PlanFiles):
    """Reads one planned data file of the snapshot (deletes and schema evolution applied by pyiceberg)."""

    def setup(self):
        self._table = self._ref.load()
        self._scan = self._table.scan(snapshot_id=self._snapshot_id)
        self._tasks = {task.file.file_path: task for task in self._scan.plan_files()}

    def process(self, path):
        from pyiceberg.io.pyarrow import ArrowScan

        scan = ArrowScan(self._table.metadata, self._table.io, self._scan.projection(), self._scan.row_filter)
        yield from scan.to_table([self._tasks[path]]).to_pylist()


class ReadFromIceberg(_IcebergTransform):
    """Reads the rows of one snapshot of an Iceberg table, as dicts (see the module doc).

    Args:
      catalog: the pyiceberg catalog name.
      identifier: ``namespace.table``.
      catalog_properties: see :class:`WriteToIceberg`.
      snapshot_id: the snapshot to read; default: the table's current one
        when the pipeline is built.
      validate: resolve the table and snapshot at construction (otherwise at expansion).
    """

    def __init__(self, catalog: str, identifier: str, catalog_properties: Optional[Mapping[str, str]] = None,
                 snapshot_id: Optional[int] = None, validate: bool = True):
        super().__init__(catalog, identifier, catalog_properties)
        self._snapshot_id = snapshot_id
        if validate:
            self._resolve_snapshot()

    def _resolve_snapshot(self) -> Optional[int]:
        table = self._ref.load()
        if self._snapshot_id is None:
            current = table.current_snapshot()
            self._snapshot_id = current.snapshot_id if current else None
            _LOG.info("%s: reading snapshot %s", self._uri, self._snapshot_id)
        elif table.snapshot_by_id(self._snapshot_id) is None:
            raise ConnectorError(
                f"{self._uri}: no snapshot {self._snapshot_id}; list them with "
                f"pyiceberg describe {self._ref.identifier} or drop snapshot_id= to read the current one"
            )
        return self._snapshot_id

    @property
    def snapshot_id(self) -> Optional[int]:
        """The snapshot this read reads (None: the table has none yet, and the read is empty)."""
        return self._snapshot_id

    def expand(self, pbegin):
        if self._snapshot_id is None:
            self._resolve_snapshot()
        if self._snapshot_id is None:
            rows = pbegin | "Empty" >> beam.Create([])
        else:
            rows = (
                pbegin
                | "Start" >> beam.Create([None])
                | "PlanFiles" >> beam.ParDo(_PlanFiles(self._ref, self._snapshot_id))
                | "Distribute" >> beam.Reshuffle()
                | "ReadFiles" >> beam.ParDo(_ReadDataFile(self._ref, self._snapshot_id))
            )
        return rows | "CountRead" >> CountElements("records_read")


# --------------------------------------------------------------------------
# URIs: iceberg://CATALOG/NAMESPACE.TABLE?catalog_uri=...&warehouse=...


def _parts(endpoint: EndpointUri) -> tuple[str, str, dict]:
    if not endpoint.path or "/" in endpoint.path or "." not in endpoint.path.strip("."):
        raise InvalidUriError(f"{endpoint.redacted!r}: expected iceberg://CATALOG/NAMESPACE.TABLE")
    properties = {}
    if endpoint.param("catalog_uri"):
        properties["uri"] = endpoint.param("catalog_uri")
    if endpoint.param("warehouse"):
        properties["warehouse"] = endpoint.param("warehouse")
    return endpoint.netloc, endpoint.path, properties


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    endpoint.check_params(("catalog_uri", "warehouse", "snapshot_id", "validate"), "iceberg:// sources")
    if bounded is False:
        raise InvalidUriError(f"{endpoint.redacted!r}: Iceberg tables are read bounded (a snapshot); use --mode batch")
    catalog, identifier, properties = _parts(endpoint)
    return ReadFromIceberg(catalog, identifier, properties, snapshot_id=endpoint.int_param("snapshot_id"),
                           validate=endpoint.bool_param("validate", True))


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    endpoint.check_params(("catalog_uri", "warehouse", "partition_by", "every"), "iceberg:// sinks")
    catalog, identifier, properties = _parts(endpoint)
    return WriteToIceberg(catalog, identifier, properties, partition_by=endpoint.param("partition_by"),
                          every=endpoint.int_param("every", 60), record_type=record_type)
