"""Bigtable: ``bigtable://project/instance/table`` as a sink, and the row-key design lookups rely on.

Thin over Beam's ``WriteToBigTable`` (the native Python write: a DoFn with the
google-cloud-bigtable client's ``MutationsBatcher``); :class:`WriteToBigtable`
turns each record into one ``DirectRow``.

Row keys (UTF-8):

- **reference rows** (no ``time_field``): the entity key alone, ``card-000042``.
  One row per entity, overwritten by each write; this is what a point lookup
  (Beam's ``BigTableEnrichmentHandler`` behind ``Enrich``) reads.
- **time series** (``time_field`` set): ``<entity key>#<reversed time bucket>``,
  where the bucket is the start of the ``bucket_seconds`` period holding the
  record's time and *reversed* means ``9999999999999 - bucket start in
  milliseconds``, zero-padded to 13 digits: ``card-000042#8232774399999``.
  All rows of one entity are adjacent (no hot-spotting on time: the entity
  leads), newest first, so "the latest N buckets of card X" is one short
  prefix scan of ``card-000042#``, and a bucket can be rewritten (later panes
  replace earlier ones).

Cells: one column per record field (qualifier = field name) in
``column_family``, or in the family ``families`` assigns to that field.
Values are UTF-8 text: strings as they are, numbers and booleans as JSON
(``12``, ``0.30000000000000004``, ``true``), timestamps as RFC 3339 with
microseconds, lists as JSON arrays, bytes raw; a null deletes the cell. With a
``time_field`` every cell's version is that time (milliseconds), so rewriting a
bucket replaces its cells. :func:`row_to_dict` decodes a row read back, and
:class:`~hybridflow.transforms.ParseRecords` types it again.

The emulator: the client honours ``BIGTABLE_EMULATOR_HOST``.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.uri import EndpointUri, accepts
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of

__all__ = ["WriteToBigtable", "row_key", "encode_value", "row_to_dict", "REVERSED_MAX_MILLIS"]

REVERSED_MAX_MILLIS = 9_999_999_999_999  # 13 digits: bucket starts up to the year 2286


def row_key(key: Any, time: Optional[Timestamp] = None, bucket_seconds: int = 3600) -> bytes:
    """The row key of an entity (and time bucket), see the module doc.

    >>> row_key("card-1")
    b'card-1'
    >>> row_key("card-1", Timestamp.of(1767225600), 3600)
    b'card-1#8232774399999'
    """
    if time is None:
        return str(key).encode("utf-8")
    bucket_millis = (time.micros // 1_000_000 // bucket_seconds) * bucket_seconds * 1000
    return f"{key}#{REVERSED_MAX_MILLIS - bucket_millis:013d}".encode()


def _plain(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return value.to_rfc3339()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode_value(value: Any) -> Optional[bytes]:
    """A field value as cell bytes (``None`` for a null), see the module doc."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, Timestamp):
        return value.to_rfc3339().encode("utf-8")
    return json.dumps(_plain(value), ensure_ascii=False, allow_nan=False).encode("utf-8")


def row_to_dict(row) -> dict[str, str]:
    """Latest cell of every column of a read ``PartialRowData``, as ``{qualifier: text}``."""
    out = {}
    for columns in row.cells.values():
        for qualifier, cells in columns.items():
            out[qualifier.decode("utf-8")] = cells[0].value.decode("utf-8")
    return out


class _ToDirectRow(beam.DoFn):
    def __init__(self, key_field, time_field, bucket_seconds, families):
        self._key_field = key_field
        self._time_field = time_field
        self._bucket_seconds = bucket_seconds
        self._families = families  # field -> family

    def process(self, record):
        from google.cloud.bigtable.row import DirectRow

        time = getattr(record, self._time_field) if self._time_field else None
        row = DirectRow(row_key=row_key(getattr(record, self._key_field), time, self._bucket_seconds))
        version = time.to_utc_datetime() if time else None  # the client keeps milliseconds
        for field, family in self._families.items():
            value = encode_value(getattr(record, field))
            if value is None:
                row.delete_cell(family, field.encode("utf-8"))
            else:
                row.set_cell(family, field.encode("utf-8"), value, timestamp=version)
        yield row


class WriteToBigtable(beam.PTransform):
    """Writes each record as one Bigtable row (row key and cells: see the module doc).

    Args:
      project, instance, table: the Bigtable table (it must exist with its
        column families).
      key_field: the record field with the entity key.
      time_field: a Timestamp field: time-series rows keyed by entity and
        reversed time bucket; ``None``: one reference row per entity.
      bucket_seconds: the time bucket of time-series rows (default an hour).
      column_family: the family of every field not in ``families``.
      families: family name -> fields stored in that family instead.
      record_type: the record type if the input's element type is not one.
      validate: check at construction that the table and families exist.

    Example::

        aggregates | WriteToBigtable("my-proj", "my-instance", "card_windows",
                                     key_field="key", time_field="window_end",
                                     column_family="agg", families={"meta": ["window_start"]})
    """

    def __init__(
        self,
        project: str,
        instance: str,
        table: str,
        key_field: str,
        time_field: Optional[str] = None,
        bucket_seconds: int = 3600,
        column_family: str = "d",
        families: Optional[Mapping[str, Sequence[str]]] = None,
        record_type: Any = None,
        validate: bool = True,
    ):
        super().__init__()
        self._uri = f"bigtable://{project}/{instance}/{table}"
        if bucket_seconds < 1:
            raise InvalidUriError(f"{self._uri}: bucket_seconds={bucket_seconds} must be >= 1")
        self._project, self._instance, self._table = project, instance, table
        self._key_field = key_field
        self._time_field = time_field
        self._bucket_seconds = bucket_seconds
        self._column_family = column_family
        self._families = {family: list(names) for family, names in (families or {}).items()}
        self._record_type = record_type
        self._validate = validate

    def _field_families(self, record_type) -> dict[str, str]:
        fields = {f.name: f for f in fields_of(record_type)}
        assigned = {field: family for family, names in self._families.items() for field in names}
        for name in [self._key_field, self._time_field, *assigned]:
            if name is not None and name not in fields:
                raise InvalidUriError(f"{self._uri}: {name!r} is not a field of the records ({', '.join(fields)})")
        if self._time_field is not None and (fields[self._time_field].type is not Timestamp
                                             or fields[self._time_field].optional):
            raise InvalidUriError(f"{self._uri}: time field {self._time_field!r} must be a required Timestamp field")
        return {name: assigned.get(name, self._column_family) for name in fields}

    def _check_table(self, families: set[str]) -> None:
        import warnings

        emulator = os.environ.get("BIGTABLE_EMULATOR_HOST")
        if emulator and not accepts(emulator):
            raise ConnectorError(f"{self._uri}: cannot reach the Bigtable emulator at {emulator}; start it or fix "
                                 "BIGTABLE_EMULATOR_HOST")
        with warnings.catch_warnings():
            # google-api-core's import-time notice about grpcio versions, and "Connecting to Bigtable emulator"
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", RuntimeWarning)
            bigtable = require("google.cloud.bigtable", f"{self._uri} (Bigtable)", "gcp")
            client = bigtable.Client(project=self._project, admin=True)
        from google.api_core import exceptions

        table = client.instance(self._instance).table(self._table)
        try:
            existing = set(table.list_column_families())
        except exceptions.NotFound:
            raise ConnectorError(
                f"{self._uri}: the table does not exist; create it with column families "
                f"{', '.join(sorted(families))} (cbt createtable {self._table} families={','.join(sorted(families))})"
            ) from None
        except (exceptions.GoogleAPICallError, exceptions.RetryError) as exc:
            raise ConnectorError(
                f"{self._uri}: cannot reach {f'the Bigtable emulator at {emulator}' if emulator else 'Bigtable'} "
                f"({type(exc).__name__}); check the network, credentials "
                "or BIGTABLE_EMULATOR_HOST"
            ) from exc
        missing = families - existing
        if missing:
            raise ConnectorError(
                f"{self._uri}: the table has no column family {', '.join(sorted(missing))}; add it "
                f"(cbt createfamily {self._table} {sorted(missing)[0]}) or change column_family/families"
            )

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        field_families = self._field_families(record_type)
        if self._validate:
            self._check_table(set(field_families.values()))
        from apache_beam.io.gcp.bigtableio import WriteToBigTable

        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "ToRow" >> beam.ParDo(
                _ToDirectRow(self._key_field, self._time_field, self._bucket_seconds, field_families)
            )
            | "Write" >> WriteToBigTable(self._project, self._instance, self._table)
        )


# --------------------------------------------------------------------------
# URIs: bigtable://project/instance/table?key=F[&time=F&bucket=1h][&family=d][&family_<name>=f1,f2]


def _parts(endpoint: EndpointUri) -> tuple[str, str, str]:
    parts = [endpoint.netloc, *endpoint.path.split("/")] if endpoint.path else [endpoint.netloc]
    if len(parts) != 3 or not all(parts):
        raise InvalidUriError(f"{endpoint.redacted!r}: expected bigtable://PROJECT/INSTANCE/TABLE?key=FIELD")
    return parts[0], parts[1], parts[2]


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    raise InvalidUriError(
        f"{endpoint.redacted!r}: Bigtable is a lookup target, not a source; enrich records from it with "
        "Beam's Enrichment and BigTableEnrichmentHandler (row_key=the entity key field)"
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    from hybridflow.durations import parse_duration

    project, instance, table = _parts(endpoint)
    families = {name[len("family_"):]: endpoint.list_param(name) for name in endpoint.params if name.startswith("family_")}
    endpoint.check_params(("key", "time", "bucket", "family", "validate", *(f"family_{f}" for f in families)),
                          "bigtable:// sinks")
    if not endpoint.param("key"):
        raise InvalidUriError(f"{endpoint.redacted!r}: add ?key=FIELD (the entity key of the row key)")
    try:
        bucket = int(parse_duration(endpoint.param("bucket", "1h")))
    except ValueError as exc:
        raise InvalidUriError(f"{endpoint.redacted!r}: bucket={endpoint.param('bucket')!r}: {exc}") from None
    return WriteToBigtable(
        project, instance, table,
        key_field=endpoint.param("key"),
        time_field=endpoint.param("time"),
        bucket_seconds=bucket,
        column_family=endpoint.param("family", "d"),
        families=families,
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
    )
