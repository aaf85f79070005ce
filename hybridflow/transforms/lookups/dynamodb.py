"""DynamoDBLookup: reference rows from a DynamoDB table, one ``GetItem`` per key.

Beam has no DynamoDB enrichment handler, so this one calls boto3 itself,
behind the same TTL cache as :class:`~hybridflow.transforms.lookups.BigtableLookup`
(:class:`~hybridflow.transforms.lookups.base.LookupHandler`). Items are
decoded with :func:`hybridflow.io.dynamodb.from_item` (the inverse of what
``dynamodb://`` sinks write) and typed with the same coercion as
:class:`~hybridflow.transforms.ParseRecords`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Union

from hybridflow.errors import ConnectorError, RecordError, SchemaError, require
from hybridflow.transforms.lookups.base import LookupHandler
from hybridflow.transforms.parse import record_parser

__all__ = ["DynamoDBLookup"]


class DynamoDBLookup(LookupHandler):
    """Looks up reference rows in a DynamoDB table by its partition key, with a TTL cache.

    The table's partition key attribute is ``key`` (a field of ``schema``);
    the other attributes are the other fields (numbers as ``N``, timestamps
    as ISO-8601 text or epoch seconds, lists as ``L``). A missing item is a
    missing key (see ``MissingKeyPolicy``); an item that does not fit
    ``schema`` becomes a dead letter (``invalid_reference``). Reads are
    eventually consistent unless ``consistent_read=True``.

    The constructor stores configuration only; the boto3 client is created on
    the worker (``__enter__``) and closed on exit. Credentials come from
    boto3's usual chain (environment, profile, role).

    Args:
      table: the table name.
      key: the reference field that is the table's partition key.
      schema: the reference row type, a ``typing.NamedTuple`` class.
      region: the AWS region (default: boto3's configuration).
      endpoint: another endpoint URL (DynamoDB Local, moto).
      consistent_read: strongly consistent reads (twice the read capacity).
      cache_ttl: seconds (or ``"5m"``) an answer stays cached; 0: no cache.
      cache_size: most keys cached.
      clock: seconds as a float (default ``time.monotonic``), for tests.

    Example (needs DynamoDB or a local endpoint)::

        profiles = DynamoDBLookup("card_profiles", key="card_id", schema=CardProfile,
                                  region="eu-west-1", cache_ttl="10m")
        enriched = txns | Enrich(key="card_id", handler=profiles, prefix="profile_")
    """

    _RUNTIME_ATTRS = LookupHandler._RUNTIME_ATTRS + ("_client", "_parse")

    def __init__(
        self,
        table: str,
        key: str,
        schema: Any,
        region: Optional[str] = None,
        endpoint: Optional[str] = None,
        consistent_read: bool = False,
        cache_ttl: Union[float, str] = 0,
        cache_size: int = 100_000,
        clock: Optional[Callable[[], float]] = None,
    ):
        super().__init__(schema, key, cache_ttl=cache_ttl, cache_size=cache_size, clock=clock)
        if not table:
            raise SchemaError("DynamoDBLookup: table is required")
        self._table = table
        self._region = region
        self._endpoint = endpoint
        self._consistent_read = consistent_read
        self._client = None
        self._parse = None

    def open(self) -> None:
        from hybridflow.io.dynamodb import dynamodb_client, table_keys

        require("botocore", "DynamoDBLookup", "aws")  # lookup() catches its errors
        self._parse = record_parser(self._schema, {})
        self._client = dynamodb_client(self._region, self._endpoint)
        keys = table_keys(self._client, self._table, f"DynamoDBLookup(dynamodb://{self._table})")
        if keys != [self._key]:
            raise SchemaError(
                f"DynamoDBLookup: table {self._table!r} is keyed by {', '.join(keys)}, not {self._key!r}; "
                "look up by the table's partition key (tables with a sort key need a query, not a lookup)"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def lookup(self, key: Any) -> Optional[Mapping[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        from hybridflow.io.dynamodb import from_item, to_item

        try:
            response = self._client.get_item(TableName=self._table, Key=to_item({self._key: key}),
                                             ConsistentRead=self._consistent_read)
        except (ClientError, BotoCoreError) as exc:
            raise ConnectorError(
                f"DynamoDBLookup: GetItem on {self._table!r} at {self._client.meta.endpoint_url} failed "
                f"({type(exc).__name__}: {str(exc)[:200]}); check the table, region and credentials"
            ) from exc
        item = response.get("Item")
        if not item:
            return None
        try:
            return self._parse(from_item(item))._asdict()
        except RecordError as exc:
            raise RecordError(
                "invalid_reference", f"DynamoDB item {key!r} of {self._table}: {exc}", exc.field
            ) from None

    def __repr__(self):
        return f"DynamoDBLookup({self._table}, key={self._key!r})"
