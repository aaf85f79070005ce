"""kinesis:// against moto's Kinesis: shards, order per shard, event time, bounded reads, writes."""

import json

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, Transaction, WriteTo
from hybridflow.io.kinesis import ShardReader, list_shards
from hybridflow.schemas import to_json
from hybridflow.testing import START, Collect, batch_pipeline, collected, transactions

CARDS = ["c1", "c2", "c3", "c4", "c5", "c6"]
TXNS = transactions([(CARDS[i % len(CARDS)], float(i), i * 7) for i in range(36)])


def _put(s3_server, stream, txns):
    """Puts the transactions in order, partitioned by card, one call each (arrival order = list order)."""
    client = s3_server.client("kinesis")
    for t in txns:
        client.put_record(StreamName=stream, Data=to_json(t).encode(), PartitionKey=t.card_id)


def _shards(s3_server, stream):
    """{shard: [records in sequence order]} read with ShardReader."""
    client = s3_server.client("kinesis")
    out = {}
    for shard in list_shards(client, stream):
        reader, records, caught_up = ShardReader(client, stream, shard), [], False
        while not caught_up:
            batch, caught_up = reader.poll(limit=7)  # several polls per shard
            records += batch
        out[shard] = records
    return out


def test_shards_hold_each_key_in_order_and_a_bounded_read_returns_everything(tmp_path, s3_server, kinesis_stream):
    stream = kinesis_stream(shards=3)
    _put(s3_server, stream, TXNS)
    shards = _shards(s3_server, stream)
    assert len(shards) == 3 and sum(len(r) for r in shards.values()) == len(TXNS)
    for records in shards.values():
        assert [r.sequence for r in records] == sorted(r.sequence for r in records)
        for card in CARDS:  # per key: the order they were put in
            amounts = [json.loads(r.data)["amount"] for r in records if r.partition_key == card]
            assert amounts == sorted(amounts)
    assert sum(1 for records in shards.values() if records) >= 2, "the keys should spread over the shards"

    with batch_pipeline() as p:
        raw = p | ReadFrom(f"kinesis://{stream}?{s3_server.uri_params()}&max_seconds=60")
        parsed = raw | ParseRecords(Transaction)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    assert sorted(collected(tmp_path / "records")) == sorted(TXNS) and collected(tmp_path / "dead") == []


@pytest.mark.parametrize("event_time", ["arrival", "field"])
def test_event_time_from_arrival_or_a_field(tmp_path, s3_server, kinesis_stream, event_time):
    stream = kinesis_stream(shards=2)
    _put(s3_server, stream, TXNS[:10])
    arrivals = {json.loads(r.data)["txn_id"]: r.arrival for rs in _shards(s3_server, stream).values() for r in rs}
    param = "timestamp_field=event_time" if event_time == "field" else "event_time=arrival"
    with batch_pipeline() as p:
        _ = (
            p
            | ReadFrom(f"kinesis://{stream}?{s3_server.uri_params()}&max_seconds=60&{param}")
            | beam.Map(lambda data, t=beam.DoFn.TimestampParam: (json.loads(data)["txn_id"], t.micros))
            | Collect(tmp_path / "times")
        )
    times = dict(collected(tmp_path / "times"))
    if event_time == "field":
        assert times == {t.txn_id: t.event_time.micros for t in TXNS[:10]}
    else:
        assert times == {txn: arrival.micros for txn, arrival in arrivals.items()}
        assert all(t > Timestamp.of(START).micros for t in times.values())


def test_max_records_keeps_the_earliest_arrivals(tmp_path, s3_server, kinesis_stream):
    stream = kinesis_stream(shards=2)
    _put(s3_server, stream, TXNS)
    everything = sorted((r.arrival.micros, shard, r.sequence, json.loads(r.data)["txn_id"])
                        for shard, rs in _shards(s3_server, stream).items() for r in rs)
    with batch_pipeline() as p:
        _ = (
            p
            | ReadFrom(f"kinesis://{stream}?{s3_server.uri_params()}&max_records=5")
            | beam.Map(lambda data: json.loads(data)["txn_id"])
            | Collect(tmp_path / "ids")
        )
    assert sorted(collected(tmp_path / "ids")) == sorted(e[3] for e in everything[:5])


def test_write_puts_json_by_partition_key_and_reads_back(tmp_path, s3_server, kinesis_stream):
    stream = kinesis_stream(shards=2)
    with batch_pipeline() as p:
        _ = p | beam.Create(TXNS).with_output_types(Transaction) | WriteTo(
            f"kinesis://{stream}?{s3_server.uri_params()}&key_field=card_id")
    records = [r for rs in _shards(s3_server, stream).values() for r in rs]
    assert sorted(r.data.decode() for r in records) == sorted(to_json(t) for t in TXNS)
    assert all(json.loads(r.data)["card_id"] == r.partition_key for r in records)


def test_missing_stream_is_one_line_naming_the_endpoint(s3_server):
    with pytest.raises(ConnectorError, match=rf"^kinesis://nope: stream 'nope' does not exist at {s3_server.endpoint}; "
                                             "create it"):
        _ = batch_pipeline() | ReadFrom(f"kinesis://nope?{s3_server.uri_params()}&max_records=1")


def test_unreachable_endpoint_is_one_line():
    with pytest.raises(ConnectorError, match=r"^kinesis://s: cannot reach Kinesis at http://127.0.0.1:9 .*endpoint="):
        _ = batch_pipeline() | ReadFrom("kinesis://s?region=us-east-1&endpoint=http://127.0.0.1:9&max_records=1")


@pytest.mark.parametrize("uri, message", [
    ("kinesis://s", "Kinesis is unbounded; add max_records=N or max_seconds=S"),
    ("kinesis://s/x?max_records=1", "expected kinesis://STREAM"),
    ("kinesis://s?max_records=1&event_time=kafka", "event_time='kafka'; use one of arrival, processing"),
    ("kinesis://s?max_records=0", "max_records=0 must be positive"),
    ("kinesis://s?max_records=1&shard=2", "unknown parameter 'shard'"),
])
def test_bad_source_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        ReadFrom(uri, bounded=True)


def test_a_sink_needs_a_partition_key():
    with pytest.raises(InvalidUriError, match=r"add \?key_field=FIELD"):
        WriteTo("kinesis://s")
