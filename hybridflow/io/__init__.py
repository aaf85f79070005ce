"""Sources and sinks: one URI per endpoint.

``ReadFrom(uri)`` and ``WriteTo(uri)`` pick the connector by the URI's scheme:

==================================================  =========  ====================  =====
URI                                                 bounded?   read                  write
==================================================  =========  ====================  =====
local path / ``gs://`` / ``s3://`` / ``hdfs://`` glob  yes      yes                   yes
``pubsub://projects/P/topics/T`` / ``.../subscriptions/S``  no  yes                  yes
``kafka://host:port/topic``                          no [#]_    yes                   yes
``kinesis://stream?region=R``                        no [#]_    yes                   yes
``bigquery://project.dataset.table``                 yes        yes                   yes
``bigtable://project/instance/table``                --         lookup (``Enrich``)   yes
``dynamodb://table?region=R``                        --         lookup (``Enrich``)   yes
``iceberg://catalog/namespace.table``                yes        yes (a snapshot)      yes
``postgresql://user@host:port/db?table=T``           yes        yes (partitioned)     --
``synthetic://STREAM?...`` (a pipeline's generator)   either     yes                   --
``https://...``, ``webhook+http(s)://...``           either     --                    yes (alerts: POST
                                                                                       per record,
                                                                                       :mod:`hybridflow.monitoring.webhook`)
==================================================  =========  ====================  =====

.. [#] bounded with ``max_records=`` / ``max_seconds=``.
.. [#] likewise.

:class:`~hybridflow.io.hybrid.HybridRead` reads a bounded history, then a
``kafka://`` topic from a boundary time, as one unbounded PCollection of
records (docs/hybrid.md).

File formats: JSON lines, CSV, Avro, Parquet, ORC, and ECS (a sink format).
See ``docs/connectors.md`` for every URI's parameters and guarantees.

Each connector is a public ``ReadFromX`` / ``WriteToX`` PTransform in its own
module, thin over Beam's own IO; ``ReadFrom`` / ``WriteTo`` only dispatch.
Connectors import their client libraries only when a pipeline uses them, so
a missing optional dependency is reported then, as
``pip install hybridflow[extra]`` (:class:`~hybridflow.errors.MissingExtraError`).
"""

from __future__ import annotations

import importlib
from typing import Any, Optional

import apache_beam as beam

from hybridflow.errors import InvalidUriError
from hybridflow.io.bigquery import ReadFromBigQuery, WriteToBigQuery
from hybridflow.io.bigtable import WriteToBigtable
from hybridflow.io.dynamodb import WriteToDynamoDB
from hybridflow.io.files import ReadFromFiles, WriteToFiles
from hybridflow.io.hybrid import HybridRead
from hybridflow.io.iceberg import ReadFromIceberg, WriteToIceberg
from hybridflow.io.kafka import ReadFromKafka, WriteToKafka
from hybridflow.io.kinesis import ReadFromKinesis, WriteToKinesis
from hybridflow.io.options import ConnectorOptions
from hybridflow.io.postgres import ReadFromPostgres
from hybridflow.io.pubsub import ReadFromPubSub, WriteToPubSub
from hybridflow.io.synthetic import ReadSynthetic, SyntheticStream, generate_records, synthetic_stream
from hybridflow.io.synthetic import generate_records as generate_transactions  # the name before pipelines had streams
from hybridflow.io.uri import EndpointUri, file_format, parse_uri
from hybridflow.redaction import redact

__all__ = [
    "ReadFrom",
    "WriteTo",
    "HybridRead",
    "ReadFromFiles",
    "WriteToFiles",
    "ReadFromPubSub",
    "WriteToPubSub",
    "ReadFromKafka",
    "WriteToKafka",
    "ReadFromKinesis",
    "WriteToKinesis",
    "WriteToDynamoDB",
    "ReadFromIceberg",
    "WriteToIceberg",
    "ReadFromBigQuery",
    "WriteToBigQuery",
    "WriteToBigtable",
    "ReadFromPostgres",
    "ReadSynthetic",
    "SyntheticStream",
    "generate_records",
    # the fraud pipeline's stream (hybridflow.pipelines.fraud.generator), under the names it had here
    "ReadSyntheticTransactions",
    "SyntheticTransactions",
    "generate_transactions",
    "EndpointUri",
    "parse_uri",
    "ConnectorOptions",
    "supports_columnar",
]

# scheme -> module with reader(endpoint, bounded) and/or writer(endpoint, record_type)
_CONNECTORS = {
    "pubsub": "hybridflow.io.pubsub",
    "kafka": "hybridflow.io.kafka",
    "bigquery": "hybridflow.io.bigquery",
    "bigtable": "hybridflow.io.bigtable",
    "postgresql": "hybridflow.io.postgres",
    "postgres": "hybridflow.io.postgres",
    "kinesis": "hybridflow.io.kinesis",
    "dynamodb": "hybridflow.io.dynamodb",
    "iceberg": "hybridflow.io.iceberg",
}
_READ_SCHEMES = ("local path", "gs://", "s3://", "hdfs://", "pubsub://", "kafka://", "kinesis://", "bigquery://", "postgresql://",
                 "iceberg://", "synthetic://")
_WRITE_SCHEMES = (
    "local path", "gs://", "s3://", "hdfs://", "pubsub://", "kafka://", "kinesis://", "bigquery://", "bigtable://",
    "dynamodb://", "iceberg://", "http(s)://", "webhook+http(s)://",
)
_FILE_READ_PARAMS = ("format", "validate", "allow_empty")
_FILE_WRITE_PARAMS = ("format", "shards", "every", "partition_by", "validate")


def _connector(endpoint: EndpointUri, role: str):
    """The reader/writer factory of ``endpoint``'s scheme, or None."""
    module = _CONNECTORS.get(endpoint.scheme)
    if module is None:
        return None
    return getattr(importlib.import_module(module), role, None)


def _file_prefix(endpoint: EndpointUri, fmt: str) -> tuple[str, str]:
    """Splits a sink location into (prefix, suffix)."""
    location = endpoint.location
    if location.endswith("/"):
        return location + "part", f".{fmt}"
    for ext in (f".{fmt}", ".json", ".ndjson", ".pq"):
        if location.endswith(ext):
            return location[: -len(ext)], ext
    return location, f".{fmt}"


def _reader(endpoint: EndpointUri, bounded: Optional[bool], columnar: bool = False) -> beam.PTransform:
    if columnar and not supports_columnar(endpoint.raw):
        raise InvalidUriError(
            f"{endpoint.redacted!r}: columnar reads need JSON-lines, Parquet or ORC files "
            f"({', '.join(ReadFromFiles.COLUMNAR_FORMATS)})"
        )
    if endpoint.is_file:
        endpoint.check_params(_FILE_READ_PARAMS, "file sources")
        return ReadFromFiles(
            endpoint.location,
            format=file_format(endpoint),
            validate=endpoint.bool_param("validate", True),
            columnar=columnar,
            allow_empty=endpoint.bool_param("allow_empty", False),
        )
    make = _connector(endpoint, "reader")
    if make is not None:
        return make(endpoint, bounded)
    if endpoint.scheme == "synthetic":
        config = synthetic_stream(endpoint.netloc).from_params(endpoint.params)
        if bounded is not None and config.bounded is None:
            import dataclasses

            config = dataclasses.replace(config, bounded=bounded)
        return ReadSynthetic(config)
    raise InvalidUriError(
        f"{endpoint.redacted!r}: no source for scheme {endpoint.scheme!r}; "
        f"readable: {', '.join(_READ_SCHEMES)}"
    )


def _writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    if endpoint.is_file:
        endpoint.check_params(_FILE_WRITE_PARAMS, "file sinks")
        fmt = file_format(endpoint)
        prefix, suffix = _file_prefix(endpoint, fmt)
        return WriteToFiles(
            prefix,
            format=fmt,
            suffix=suffix,
            num_shards=endpoint.int_param("shards", 0),
            every=endpoint.int_param("every", 60),
            record_type=record_type,
            partition_by=endpoint.param("partition_by"),
            validate=endpoint.bool_param("validate", True),
        )
    if endpoint.scheme in ("http", "https", "webhook+http", "webhook+https"):
        from hybridflow.monitoring.webhook import WriteToWebhook

        return WriteToWebhook.from_uri(endpoint.raw)
    make = _connector(endpoint, "writer")
    if make is not None:
        return make(endpoint, record_type)
    raise InvalidUriError(
        f"{endpoint.redacted!r}: no sink for scheme {endpoint.scheme!r}; "
        f"writable: {', '.join(_WRITE_SCHEMES)}"
    )


def supports_columnar(uri: str) -> bool:
    """Whether ``ReadFrom(uri, columnar=True)`` can read ``uri`` (JSON-lines, Parquet or ORC files)."""
    endpoint = parse_uri(uri)
    if not endpoint.is_file:
        return False
    try:
        return file_format(endpoint) in ReadFromFiles.COLUMNAR_FORMATS
    except InvalidUriError:
        return False


class ReadFrom(beam.PTransform):
    """Reads raw payloads from the endpoint named by ``uri``.

    Args:
      uri: the source (see the module table).
      bounded: for sources that can be either (``synthetic://``), force
        bounded (``True``) or unbounded (``False``); by default the URI decides.
      columnar: read JSON-lines or Parquet files as Arrow tables of many
        payloads (see :mod:`hybridflow.columnar`); the hybridflow transforms
        then run vectorized.

    Example::

        lines = p | ReadFrom("synthetic://transactions?count=1000&seed=7")
    """

    def __init__(self, uri: str, bounded: Optional[bool] = None, columnar: bool = False):
        super().__init__()
        self._endpoint = parse_uri(uri)
        self._source = _reader(self._endpoint, bounded, columnar)  # validates eagerly

    @property
    def uri(self) -> str:
        """The URI as given (it may hold a password: print :attr:`EndpointUri.redacted`)."""
        return self._endpoint.raw

    def expand(self, pbegin):
        return pbegin | self._source


class WriteTo(beam.PTransform):
    """Writes schema'd records to the endpoint named by ``uri``.

    The sink contract: a sink that can fail one record at a time
    (:attr:`fails_per_record`: a webhook, BigQuery streaming inserts) returns
    the records it could not write as a PCollection of
    :class:`~hybridflow.schemas.DeadLetter` (``stage`` the sink's label, a
    reason such as ``webhook_unreachable`` or ``bigquery_rejected``, counted
    in ``dead_letters.<reason>``) and counts only the records it did write in
    ``records_written``. Any other sink either writes every record or fails
    the job; what it returns is Beam's (e.g. the written file names).

    Args:
      uri: the sink; file sinks accept ``?shards=N`` (number of files),
        ``?every=SECONDS`` (window length of unbounded writes) and
        ``?partition_by=FIELD`` (``dt=YYYY-MM-DD/hour=HH`` directories by a
        Timestamp field); see each connector for its parameters.
      record_type: the record type if the input's element type is not one.

    Example::

        alerts | WriteTo("out/alerts.jsonl?shards=1")
        undelivered = alerts | WriteTo("webhook+https://hooks.example.com/fraud")  # DeadLetters
    """

    def __init__(self, uri: str, record_type: Any = None):
        super().__init__()
        self._endpoint = parse_uri(uri)
        self._sink = _writer(self._endpoint, record_type)

    @property
    def uri(self) -> str:
        """The URI as given (it may hold a password: print :attr:`EndpointUri.redacted`)."""
        return self._endpoint.raw

    @property
    def location(self) -> str:
        """Where the written data can be found (a glob for file sinks), as it
        may be printed: without a password or token (see :mod:`hybridflow.redaction`)."""
        return redact(getattr(self._sink, "glob", self._endpoint.location))

    @property
    def fails_per_record(self) -> bool:
        """Whether the sink returns the records it could not write as dead letters (see above)."""
        return getattr(self._sink, "FAILS_PER_RECORD", False)

    def expand(self, pcoll):
        return pcoll | self._sink


def __getattr__(name: str) -> Any:
    # imported on first use: the fraud package imports hybridflow.io
    if name in ("SyntheticTransactions", "ReadSyntheticTransactions"):
        from hybridflow.pipelines.fraud import generator

        return getattr(generator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
