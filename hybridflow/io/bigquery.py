"""BigQuery: ``bigquery://project.dataset.table``, thin over Beam's ``WriteToBigQuery`` / ``ReadFromBigQuery``.

Writing: the table schema is derived from the record type (``str`` STRING,
``int`` INT64, ``float`` FLOAT64, ``bool`` BOOL, ``bytes`` BYTES, ``Timestamp``
TIMESTAMP; ``Optional`` NULLABLE, ``list[...]`` REPEATED, anything else
REQUIRED) and the table is created if needed, day-partitioned on
``partition_by`` (a Timestamp field) when given. The method follows the
input: **streaming inserts** for an unbounded input, **file loads** (JSON files
under ``--temp_location``, then a load job) for a bounded one; ``method=``
overrides. Rows BigQuery rejects (streaming inserts) are not retried forever:
they come out of the transform as :class:`~hybridflow.schemas.DeadLetter`
rows and are counted (``dead_letters.bigquery_rejected``).

Reading: ``DIRECT_READ`` (the Storage Read API) of a table by default;
``method="export"`` and ``query=`` are Beam's other paths. Readers emit dicts
(TIMESTAMP as ``datetime``), typed by :class:`~hybridflow.transforms.ParseRecords`.

The dataset must exist (a write to a missing dataset is a one-line
:class:`~hybridflow.errors.ConnectorError` at construction). Against the local
BigQuery emulator, see :mod:`hybridflow.testing.services.bigquery` for what it
can and cannot do.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Optional

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.uri import EndpointUri
from hybridflow.metrics import CountElements
from hybridflow.redaction import FieldRedactor
from hybridflow.schemas import DeadLetter, fields_of

__all__ = ["WriteToBigQuery", "ReadFromBigQuery", "table_schema", "to_bigquery_row"]

_TABLE = re.compile(r"^([A-Za-z0-9_.:-]+)[.:]([A-Za-z0-9_]+)\.([A-Za-z0-9_$-]+)$")
_TYPES = {str: "STRING", int: "INT64", float: "FLOAT64", bool: "BOOL", bytes: "BYTES", Timestamp: "TIMESTAMP"}
METHODS = ("streaming_inserts", "file_loads")
READ_METHODS = ("direct_read", "export")


def _parse_table(uri: str, table: str) -> tuple[str, str, str]:
    match = _TABLE.match(table)
    if not match:
        raise InvalidUriError(f"{uri!r}: expected bigquery://PROJECT.DATASET.TABLE")
    return match.group(1), match.group(2), match.group(3)


def table_schema(record_type: Any) -> dict:
    """The BigQuery table schema (``{"fields": [...]}``) of a record type."""
    fields = []
    for f in fields_of(record_type):
        mode = "REPEATED" if f.is_list else "NULLABLE" if f.optional else "REQUIRED"
        fields.append({"name": f.name, "type": _TYPES[f.type], "mode": mode})
    return {"fields": fields}


def _json_value(value: Any) -> Any:
    if isinstance(value, Timestamp):
        return value.to_rfc3339()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def to_bigquery_row(record: Any) -> dict:
    """A record as a BigQuery JSON row (TIMESTAMP as RFC 3339, BYTES as base64)."""
    items = record._asdict().items() if hasattr(record, "_asdict") else dict(record).items()
    return {name: _json_value(value) for name, value in items}


def _bigquery_client(project: str):
    """The google-cloud-bigquery client the way Beam builds the one it inserts with."""
    require("google.cloud.bigquery", "bigquery:// (BigQuery)", "gcp")
    from apache_beam.io.gcp import bigquery_tools

    return bigquery_tools.gcp_bigquery.Client(project=project)


def _check_dataset(uri: str, project: str, dataset: str) -> None:
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError

    try:
        client = _bigquery_client(project)
    except DefaultCredentialsError:
        return  # cannot ask without credentials; Beam will say more
    try:
        client.get_dataset(f"{project}.{dataset}", retry=None, timeout=15)
    except exceptions.NotFound:
        raise ConnectorError(
            f"{uri}: dataset {project}.{dataset} does not exist; create it (bq mk {project}:{dataset}) "
            "or fix the URI"
        ) from None
    except (exceptions.GoogleAPICallError, OSError) as exc:
        raise ConnectorError(
            f"{uri}: cannot reach BigQuery at {client._connection.API_BASE_URL} ({type(exc).__name__}); check the "
            "network, the credentials or BIGQUERY_EMULATOR_HOST"
        ) from exc


class _RejectedRow(beam.DoFn):
    """Beam's failed rows ``(destination, row, errors)`` -> counted DeadLetters
    (the record type's sensitive fields masked by ``redactor``)."""

    def __init__(self, stage: str, redactor=None):
        self._stage = stage
        self._redactor = redactor

    def setup(self):
        from hybridflow.metrics import counter
        from hybridflow.transforms.dead_letters import DeadLetterCounter

        self._dead = DeadLetterCounter(self._redactor)
        self._written = counter("records_written")

    def process(self, failed):
        self._written.dec()  # counted on its way in ("CountWritten"); it was not written
        destination, row, errors = failed[0], failed[1], failed[2] if len(failed) > 2 else []
        message = f"BigQuery rejected the row for {destination}: {json.dumps(errors, default=str)[:500]}"
        yield self._dead.dead_letter(self._stage, "bigquery_rejected", message, json.dumps(row, default=str)).value


class WriteToBigQuery(beam.PTransform):
    """Writes schema'd records to a BigQuery table (schema from the record type).

    Args:
      table: ``project.dataset.table``.
      partition_by: a required Timestamp field: the table is day-partitioned
        on it (``timePartitioning`` DAY) when created.
      method: ``streaming_inserts`` or ``file_loads``; by default streaming
        inserts for an unbounded input and file loads for a bounded one.
      truncate: replace the table's rows (file loads) instead of appending.
      record_type: the record type if the input's element type is not one.
      validate: check at construction that the dataset exists.

    Output: the :class:`~hybridflow.schemas.DeadLetter` rows of records
    BigQuery rejected (streaming inserts), which are not counted in
    ``records_written``. File loads write every row or fail the job.

    Example::

        aggregates | WriteToBigQuery("my-proj.fraud.card_windows", partition_by="window_end")
    """

    FAILS_PER_RECORD = True

    def __init__(
        self,
        table: str,
        partition_by: Optional[str] = None,
        method: Optional[str] = None,
        truncate: bool = False,
        record_type: Any = None,
        validate: bool = True,
    ):
        super().__init__()
        self._uri = f"bigquery://{table}"
        self._project, self._dataset, self._table = _parse_table(self._uri, table)
        if method is not None and method not in METHODS:
            raise InvalidUriError(f"{self._uri}: method={method!r}; use one of {', '.join(METHODS)}")
        self._partition_by = partition_by
        self._method = method
        self._truncate = truncate
        self._record_type = record_type
        self._validate = validate

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        schema = table_schema(record_type)
        parameters = {}
        if self._partition_by:
            field = next((f for f in schema["fields"] if f["name"] == self._partition_by), None)
            if field is None or field["type"] != "TIMESTAMP" or field["mode"] != "REQUIRED":
                raise InvalidUriError(
                    f"{self._uri}: partition_by={self._partition_by!r} must name a required Timestamp field "
                    f"({', '.join(f['name'] for f in schema['fields'])})"
                )
            parameters["timePartitioning"] = {"type": "DAY", "field": self._partition_by}
        if self._validate:
            _check_dataset(self._uri, self._project, self._dataset)
        from apache_beam.io.gcp import bigquery as beam_bigquery
        from apache_beam.io.gcp.bigquery_tools import RetryStrategy

        method = self._method or ("file_loads" if pcoll.is_bounded else "streaming_inserts")
        disposition = beam_bigquery.BigQueryDisposition
        result = (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "ToRow" >> beam.Map(to_bigquery_row)
            | "Write" >> beam_bigquery.WriteToBigQuery(
                f"{self._project}:{self._dataset}.{self._table}",
                schema=schema,
                method=method.upper(),
                create_disposition=disposition.CREATE_IF_NEEDED,
                write_disposition=disposition.WRITE_TRUNCATE if self._truncate else disposition.WRITE_APPEND,
                additional_bq_parameters=parameters,
                insert_retry_strategy=RetryStrategy.RETRY_ON_TRANSIENT_ERROR,
            )
        )
        if method != "streaming_inserts":
            return pcoll.pipeline | "NoRejects" >> beam.Create([]).with_output_types(DeadLetter)
        rejected = _RejectedRow(self.label, FieldRedactor.of(record_type))
        return result.failed_rows_with_errors | "Rejected" >> beam.ParDo(rejected).with_output_types(
            DeadLetter
        )


class ReadFromBigQuery(beam.PTransform):
    """Reads rows (dicts) of a BigQuery table, or of a query.

    Args:
      table: ``project.dataset.table``, or
      query: a standard-SQL query (Beam runs it into a temporary table).
      method: ``direct_read`` (default, the Storage Read API) or ``export``
        (an extract job to ``--temp_location``).
      validate: check at construction that the table's dataset exists.
    """

    def __init__(self, table: Optional[str] = None, query: Optional[str] = None, method: str = "direct_read",
                 validate: bool = True):
        super().__init__()
        if (table is None) == (query is None):
            raise InvalidUriError("ReadFromBigQuery: give exactly one of table= or query=")
        self._uri = f"bigquery://{table}" if table else "bigquery (query)"
        if method not in READ_METHODS:
            raise InvalidUriError(f"{self._uri}: method={method!r}; use one of {', '.join(READ_METHODS)}")
        self._table = _parse_table(self._uri, table) if table else None
        self._query = query
        self._method = method
        self._validate = validate

    def expand(self, pbegin):
        require("google.cloud.bigquery", f"{self._uri} (BigQuery)", "gcp")
        from apache_beam.io.gcp import bigquery as beam_bigquery

        method = beam_bigquery.ReadFromBigQuery.Method.DIRECT_READ if self._method == "direct_read" else (
            beam_bigquery.ReadFromBigQuery.Method.EXPORT)
        if self._table:
            project, dataset, table = self._table
            if self._validate:
                _check_dataset(self._uri, project, dataset)
            read = beam_bigquery.ReadFromBigQuery(table=f"{project}:{dataset}.{table}", method=method)
        else:
            read = beam_bigquery.ReadFromBigQuery(query=self._query, use_standard_sql=True, method=method)
        return pbegin | "Read" >> read | "CountRead" >> CountElements("records_read")


# --------------------------------------------------------------------------
# URIs


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    endpoint.check_params(("method", "validate"), "bigquery:// sources")
    return ReadFromBigQuery(
        table=endpoint.location.split("://", 1)[1],
        method=endpoint.param("method", "direct_read"),
        validate=endpoint.bool_param("validate", True),
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    endpoint.check_params(("partition_by", "method", "write", "validate"), "bigquery:// sinks")
    write = endpoint.param("write", "append")
    if write not in ("append", "truncate"):
        raise InvalidUriError(f"{endpoint.redacted!r}: write={write!r}; use append or truncate")
    return WriteToBigQuery(
        endpoint.location.split("://", 1)[1],
        partition_by=endpoint.param("partition_by"),
        method=endpoint.param("method"),
        truncate=write == "truncate",
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
    )
