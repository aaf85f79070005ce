"""dynamodb:// against moto's DynamoDB: exact items, idempotent by key, retried unprocessed items, lookups."""

import apache_beam as beam
import pytest

from hybridflow import CardProfile, ConnectorError, Enrich, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.io.dynamodb import BatchWriter, from_item, to_item
from hybridflow.testing import START, Collect, CreateEvents, batch_pipeline, collected, transactions
from tests.io.edge_records import EDGES, Edge

# e3 holds doubles beyond DynamoDB's number range (1e-130 .. 9.99e125): see test_out_of_range_numbers_fail
STORABLE = [e for e in EDGES if e.id != "e3"]


def _items(s3_server, table):
    return s3_server.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]


def test_records_round_trip_exactly_and_rewrites_are_idempotent(tmp_path, s3_server, dynamodb_table):
    table = dynamodb_table("id")
    uri = f"dynamodb://{table}?{s3_server.uri_params()}"
    for run in range(2):  # the second run writes the same keys again: same table
        with batch_pipeline() as p:
            _ = p | f"Edges{run}" >> beam.Create(STORABLE).with_output_types(Edge) | WriteTo(uri)
    items = _items(s3_server, table)
    assert len(items) == len(STORABLE)
    assert "text" not in next(i for i in items if i["id"]["S"] == "e2")  # a null is no attribute
    with batch_pipeline() as p:
        parsed = p | beam.Create([from_item(i) for i in items]) | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    expected = [r._replace(text=r.text or None) for r in STORABLE]
    assert sorted(collected(tmp_path / "records")) == sorted(expected) and collected(tmp_path / "dead") == []


def test_out_of_range_numbers_fail_with_the_value():
    (e3,) = [e for e in EDGES if e.id == "e3"]
    with pytest.raises(ValueError, match="1.7976931348623157e\\+308 is outside DynamoDB's number range"):
        to_item(e3)


class _Throttling:
    """The real moto client, but the first BatchWriteItem processes only its first item and returns
    the rest as UnprocessedItems, as DynamoDB does when throttled."""

    def __init__(self, client):
        self._client = client
        self.calls = 0

    def batch_write_item(self, RequestItems):
        self.calls += 1
        if self.calls > 1:
            return self._client.batch_write_item(RequestItems=RequestItems)
        (table, requests), = RequestItems.items()
        self._client.batch_write_item(RequestItems={table: requests[:1]})
        return {"UnprocessedItems": {table: requests[1:]}}


def test_batch_writer_resends_unprocessed_items_and_keeps_the_last_write_of_a_key(s3_server, dynamodb_table):
    table = dynamodb_table("card_id")
    client = _Throttling(s3_server.client("dynamodb"))
    waits = []
    writer = BatchWriter(client, table, ["card_id"], sleep=waits.append)
    for i in range(30):  # 30 items: one full batch of 25 is sent by add(), the rest by flush()
        writer.add(to_item({"card_id": f"c{i % 28}", "n": i}))
    writer.add(to_item({"card_id": "c0", "n": 99}))  # c0 twice in one batch: only the last is sent
    writer.flush()
    items = {i["card_id"]["S"]: int(i["n"]["N"]) for i in _items(s3_server, table)}
    assert items == {"c0": 99, "c1": 29, **{f"c{k}": k for k in range(2, 28)}}
    assert writer.retried_items == 24 and waits == [0.05] and client.calls == 3


def test_batch_writer_gives_up_with_the_fix(s3_server, dynamodb_table):
    table = dynamodb_table("card_id")

    class Refusing:
        def batch_write_item(self, RequestItems):
            return {"UnprocessedItems": RequestItems}

    writer = BatchWriter(Refusing(), table, ["card_id"], max_attempts=3, sleep=lambda s: None)
    writer.add(to_item({"card_id": "c1"}))
    with pytest.raises(ConnectorError, match=rf"dynamodb://{table}: 1 records still unprocessed after 3 attempts; "
                                             "DynamoDB throttled"):
        writer.flush()


def test_dynamodb_lookup_enriches_from_items_written_by_the_sink(tmp_path, s3_server, dynamodb_table):
    """DynamoDBLookup through Enrich reads what WriteTo("dynamodb://...") wrote, exact values, a
    missing key per policy, with the TTL cache (one GetItem per key)."""
    from hybridflow.transforms.lookups import DynamoDBLookup

    table = dynamodb_table("card_id")
    profiles = [CardProfile("c1", 12, 40.5, 3.25, ["US", "CA"], START), CardProfile("c2", 1, 9.99, 0.0, [], START + 60)]
    with batch_pipeline() as p:
        _ = p | beam.Create(profiles) | WriteTo(f"dynamodb://{table}?{s3_server.uri_params()}")
    handler = DynamoDBLookup(table, key="card_id", schema=CardProfile, region="us-east-1",
                             endpoint=s3_server.endpoint, cache_ttl="10m")
    with handler:
        assert handler.cached_lookup("c1") == profiles[0]._asdict()
        assert handler.cached_lookup("c1") == profiles[0]._asdict() and handler.cached_lookup("c9") is None
        assert handler.cache_stats == {"hits": 1, "misses": 2}
    txns = transactions([("c1", 10.0, 0), ("c2", 20.0, 1), ("c3", 30.0, 70)])
    with batch_pipeline() as p:
        out = p | CreateEvents(txns) | Enrich(key="card_id", handler=handler, prefix="p_", on_missing="dead_letter")
        out.records | beam.Map(lambda r: (r.card_id, r.p_txn_count, r.p_amount_mean, r.p_usual_countries,
                                          r.p_last_seen)) | "Records" >> Collect(tmp_path / "records")
        out.dead_letters | beam.Map(lambda d: d.error_type) | "Dead" >> Collect(tmp_path / "dead")
    assert sorted(collected(tmp_path / "records")) == [("c1", 12, 40.5, ["US", "CA"], START),
                                                       ("c2", 1, 9.99, [], START + 60)]
    assert collected(tmp_path / "dead") == ["missing_key"]


def test_missing_table_is_one_line_naming_the_endpoint(s3_server):
    uri = f"dynamodb://nope?{s3_server.uri_params()}"
    with pytest.raises(ConnectorError, match=rf"^dynamodb://nope: table 'nope' does not exist at {s3_server.endpoint}; "
                                             "create it"):
        _ = batch_pipeline() | beam.Create(STORABLE).with_output_types(Edge) | WriteTo(uri)


def test_table_keys_must_be_record_fields(s3_server, dynamodb_table):
    table = dynamodb_table("card_id")
    with pytest.raises(InvalidUriError, match="the table's key 'card_id' is not a field of the records"):
        _ = batch_pipeline() | beam.Create(STORABLE).with_output_types(Edge) | WriteTo(
            f"dynamodb://{table}?{s3_server.uri_params()}")


@pytest.mark.parametrize("uri, message", [
    ("dynamodb://t/x", "expected dynamodb://TABLE"),
    ("dynamodb://t?regio=x", "unknown parameter 'regio'"),
])
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        WriteTo(uri)


def test_dynamodb_is_not_a_source():
    with pytest.raises(InvalidUriError, match="lookup target, not a source; .*DynamoDBLookup"):
        ReadFrom("dynamodb://t")
