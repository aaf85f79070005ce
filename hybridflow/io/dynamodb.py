"""DynamoDB: ``dynamodb://TABLE?region=R&endpoint=URL`` as a sink, the real-time store next to Bigtable.

Beam has no DynamoDB IO in Python (its ``DynamoDBIO`` is Java and not
cross-language), so :class:`WriteToDynamoDB` is a DoFn over boto3:

- **one item per record**, every non-null field an attribute (strings ``S``,
  numbers ``N``, booleans ``BOOL``, bytes ``B``, lists ``L``, timestamps ``S``
  as RFC 3339 with six fraction digits, ``2026-01-01T00:01:00.000000Z``, so
  text order is time order); the table's key attributes must be record fields;
- **idempotent by key**: an item with the key of an earlier one replaces it,
  so a retried bundle or a replayed stream writes the same table. Within one
  batch only the last record of a key is sent (DynamoDB rejects a batch that
  names a key twice);
- **batched**: ``BatchWriteItem`` with up to 25 items, flushed when full and at
  the end of every bundle (so a bundle is durable before Beam commits it);
  items DynamoDB returns as ``UnprocessedItems`` (throttling) are sent again
  with exponential backoff, up to ``max_attempts`` times, then the bundle
  fails (and the runner retries it: idempotent by key).

HBase has no Beam Python IO; its role (wide rows by key, random reads) is
served by Bigtable (HBase API compatible) and DynamoDB.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), never from the URI.
``endpoint=`` points at DynamoDB Local or moto (``http://127.0.0.1:PORT``).
Reads are lookups: :class:`~hybridflow.transforms.lookups.DynamoDBLookup`
behind ``Enrich``.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Optional

import apache_beam as beam
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import ConnectorError, InvalidUriError, require
from hybridflow.io._batches import send_with_retries
from hybridflow.io._sink import resolve_record_type
from hybridflow.io.uri import EndpointUri
from hybridflow.metrics import CountElements
from hybridflow.schemas import fields_of

__all__ = ["WriteToDynamoDB", "BatchWriter", "to_item", "from_item", "dynamodb_client", "table_keys"]

MAX_BATCH = 25  # BatchWriteItem's limit


# --------------------------------------------------------------------------
# Item encoding (DynamoDB's attribute-value JSON)


def _attribute(value: Any) -> dict:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= 1e126 or 0 < abs(value) < 1e-130:
            raise ValueError(f"{value!r} is outside DynamoDB's number range (1e-130 to 9.99e125 in magnitude)")
        return {"N": repr(value)}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes):
        return {"B": value}
    if isinstance(value, Timestamp):
        return {"S": value.to_utc_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    if isinstance(value, (list, tuple)):
        return {"L": [_attribute(v) for v in value]}
    raise ValueError(f"{type(value).__name__} value {value!r} has no DynamoDB type")


def to_item(record: Any) -> dict:
    """The DynamoDB item of a record: its non-null fields as attribute values.

    >>> to_item({"card_id": "c1", "n": 3, "mean": 2.5, "seen": Timestamp.of(60), "note": None})
    {'card_id': {'S': 'c1'}, 'n': {'N': '3'}, 'mean': {'N': '2.5'}, 'seen': {'S': '1970-01-01T00:01:00.000000Z'}}
    """
    values = record._asdict() if hasattr(record, "_asdict") else dict(record)
    return {name: _attribute(value) for name, value in values.items() if value is not None}


def _plain(attribute: Mapping[str, Any]) -> Any:
    (kind, value), = attribute.items()
    if kind == "N":  # DynamoDB answers numbers as text: "3", "2.5", "1E+2"
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind in ("S", "B", "BOOL"):
        return value
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(v) for v in value]
    if kind in ("SS", "BS"):
        return list(value)
    if kind == "NS":
        return [_plain({"N": v}) for v in value]
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def from_item(item: Mapping[str, Any]) -> dict:
    """An item's attributes as plain Python values (numbers as int or float,
    timestamps as their text), ready for ``ParseRecords``' coercion.

    >>> from_item({"card_id": {"S": "c1"}, "n": {"N": "3"}, "mean": {"N": "2.5"}})
    {'card_id': 'c1', 'n': 3, 'mean': 2.5}
    """
    return {name: _plain(attribute) for name, attribute in item.items()}


# --------------------------------------------------------------------------
# Client, table check, batched writer (Beam-free)


def dynamodb_client(region: Optional[str], endpoint: Optional[str]):
    """A boto3 DynamoDB client for ``region`` (default: boto3's) and ``endpoint`` (default: AWS)."""
    boto3 = require("boto3", "dynamodb:// (DynamoDB)", "aws")
    return boto3.client("dynamodb", region_name=region or None, endpoint_url=endpoint or None)


def table_keys(client, table: str, uri: str) -> list[str]:
    """The key attribute names of ``table`` (partition key first); one-line ConnectorError if it is missing."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        description = client.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise ConnectorError(
                f"{uri}: table {table!r} does not exist at {client.meta.endpoint_url}; create it "
                f"(aws dynamodb create-table --table-name {table} ...) or fix the URI"
            ) from None
        raise ConnectorError(f"{uri}: DynamoDB at {client.meta.endpoint_url} refused DescribeTable ({code}); "
                             "check the credentials and region") from exc
    except BotoCoreError as exc:
        raise ConnectorError(f"{uri}: cannot reach DynamoDB at {client.meta.endpoint_url} "
                             f"({type(exc).__name__}); check endpoint= and region=") from exc
    ordered = sorted(description["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
    return [k["AttributeName"] for k in ordered]


class BatchWriter:
    """Writes items to one table in ``BatchWriteItem`` calls of up to 25.

    ``add`` buffers an item (replacing a buffered item with the same key:
    the last write of a key wins), ``flush`` sends the buffer and re-sends
    what DynamoDB returns unprocessed (:func:`~hybridflow.io._batches.send_with_retries`:
    exponential backoff, at most ``max_attempts`` calls per batch, then
    :class:`ConnectorError`). ``sleep`` is injectable for tests.
    """

    def __init__(self, client, table: str, keys: list[str], max_attempts: int = 8,
                 sleep: Callable[[float], None] = time.sleep):
        self._client = client
        self._table = table
        self._keys = keys
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._buffer: dict = {}
        self.batches = 0
        self.retried_items = 0

    def _key(self, item: Mapping[str, Any]) -> tuple:
        return tuple(tuple(item[k].items()) for k in self._keys)

    def add(self, item: dict) -> None:
        self._buffer[self._key(item)] = item
        if len(self._buffer) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        items, self._buffer = list(self._buffer.values()), {}
        for start in range(0, len(items), MAX_BATCH):
            self._write([{"PutRequest": {"Item": item}} for item in items[start:start + MAX_BATCH]])

    def _send(self, requests: list) -> list:
        response = self._client.batch_write_item(RequestItems={self._table: requests})
        self.batches += 1
        return response.get("UnprocessedItems", {}).get(self._table, [])

    def _write(self, requests: list) -> None:
        self.retried_items += send_with_retries(
            self._send, requests, f"dynamodb://{self._table}",
            "DynamoDB throttled the writes: raise the table's write capacity or use on-demand mode",
            max_attempts=self._max_attempts, sleep=self._sleep,
        )


# --------------------------------------------------------------------------
# The Beam sink


class _WriteItemsFn(beam.DoFn):
    def __init__(self, uri, table, region, endpoint):
        self._uri = uri
        self._table = table
        self._region = region
        self._endpoint = endpoint
        self._writer: Optional[BatchWriter] = None

    def setup(self):
        client = dynamodb_client(self._region, self._endpoint)
        self._writer = BatchWriter(client, self._table, table_keys(client, self._table, self._uri))

    def process(self, record):
        self._writer.add(to_item(record))

    def finish_bundle(self):
        self._writer.flush()

    def teardown(self):
        if self._writer is not None:
            self._writer._client.close()
            self._writer = None


class WriteToDynamoDB(beam.PTransform):
    """Writes each record as one DynamoDB item, idempotent by the table's key (see the module doc).

    Args:
      table: the table; it must exist, and its key attributes must be fields of the records.
      region: the AWS region (default: boto3's configuration).
      endpoint: another endpoint URL (DynamoDB Local, moto) instead of AWS's.
      record_type: the record type if the input's element type is not one.
      validate: check at construction that the table exists and its keys are record fields.

    Example::

        profiles | WriteToDynamoDB("card_profiles", region="eu-west-1")
    """

    def __init__(self, table: str, region: Optional[str] = None, endpoint: Optional[str] = None,
                 record_type: Any = None, validate: bool = True):
        super().__init__()
        self._uri = f"dynamodb://{table}"
        if not table:
            raise InvalidUriError("dynamodb://: name a table: dynamodb://TABLE?region=...")
        self._table = table
        self._region = region
        self._endpoint = endpoint
        self._record_type = record_type
        self._validate = validate

    def expand(self, pcoll):
        record_type = resolve_record_type(pcoll, self._record_type, self._uri)
        names = [f.name for f in fields_of(record_type)]
        if self._validate:
            client = dynamodb_client(self._region, self._endpoint)
            try:
                keys = table_keys(client, self._table, self._uri)
            finally:
                client.close()
            missing = [k for k in keys if k not in names]
            if missing:
                raise InvalidUriError(
                    f"{self._uri}: the table's key {missing[0]!r} is not a field of the records ({', '.join(names)}); "
                    "write to a table keyed by record fields"
                )
        return (
            pcoll
            | "CountWritten" >> CountElements("records_written")
            | "Write" >> beam.ParDo(_WriteItemsFn(self._uri, self._table, self._region, self._endpoint))
        )


# --------------------------------------------------------------------------
# URIs: dynamodb://TABLE?region=R&endpoint=URL


def _table(endpoint: EndpointUri) -> str:
    if endpoint.path:
        raise InvalidUriError(f"{endpoint.redacted!r}: expected dynamodb://TABLE?region=REGION[&endpoint=URL]")
    return endpoint.netloc


def reader(endpoint: EndpointUri, bounded: Optional[bool]) -> beam.PTransform:
    raise InvalidUriError(
        f"{endpoint.redacted!r}: DynamoDB is a lookup target, not a source; enrich records from it with "
        "Enrich(handler=DynamoDBLookup(table, key=..., schema=...))"
    )


def writer(endpoint: EndpointUri, record_type: Any) -> beam.PTransform:
    endpoint.check_params(("region", "endpoint", "validate"), "dynamodb:// sinks")
    return WriteToDynamoDB(
        _table(endpoint),
        region=endpoint.param("region"),
        endpoint=endpoint.param("endpoint"),
        record_type=record_type,
        validate=endpoint.bool_param("validate", True),
    )
