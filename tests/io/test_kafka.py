"""kafka:// through Beam's cross-language Kafka IO, against a real KRaft broker and the provisioned
Java expansion service (Java worker pool, no Docker). Batch on the FnApiRunner here; the unbounded
read on Prism is in tests/pipelines/test_fraud_services.py."""

import json

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.schemas import to_json
from hybridflow.testing import Collect, batch_pipeline, collected
from hybridflow.testing.services.kafka import consume, produce
from tests.io.edge_records import EDGES, Edge

PARSED = [r._replace(text=r.text or None) for r in EDGES]

# Kafka pipelines take 10-15 s here; a hung Java worker should fail the test in minutes, not 15.
pytestmark = pytest.mark.timeout(300)


def kafka_pipeline(*flags):
    """A batch TestPipeline that skips TestPipeline's runner-API round trip, which cannot
    rebuild the expanded Java transforms in Python (``Unexpected DoFn type: beam:dofn:javasdk``)."""
    p = batch_pipeline(*flags)
    p.not_use_test_runner_api = True
    return p


def test_write_sets_key_value_and_event_timestamp(kafka_broker, kafka_expansion_service, kafka_topic):
    topic = kafka_topic()
    with kafka_pipeline(f"--kafka_expansion_service={kafka_expansion_service.address}") as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(
            f"kafka://{kafka_broker.bootstrap}/{topic}?key_field=id")
    messages = consume(kafka_broker.bootstrap, topic, len(EDGES))
    assert sorted((m.key, m.timestamp) for m in messages) == sorted(
        (e.id.encode(), e.event_time.micros // 1000) for e in EDGES)
    assert sorted(json.loads(m.value)["id"] for m in messages) == [e.id for e in EDGES]
    assert {m.key: m.value for m in messages}[b"e1"] == to_json(EDGES[1]).encode()


def test_bounded_read_round_trip_kafka_time_and_dead_letters(tmp_path, kafka_broker, kafka_expansion_service,
                                                            kafka_topic):
    topic = kafka_topic(partitions=2)
    payloads = [(e.id.encode(), to_json(e).encode(), e.event_time.micros // 1000) for e in EDGES]
    payloads += [(None, b'{"id": "trunc', 1767225600000), (None, b"\xff\xfe not utf-8", 1767225600000)]
    produce(kafka_broker.bootstrap, topic, payloads)
    with kafka_pipeline(f"--kafka_expansion_service={kafka_expansion_service.address}") as p:
        # max_seconds too: if a message went missing the read ends and the comparison says which
        uri = f"kafka://{kafka_broker.bootstrap}/{topic}?max_records={len(payloads)}&max_seconds=120"
        parsed = p | ReadFrom(uri) | ParseRecords(Edge, timestamp_field=None)
        (parsed.records
         | beam.Map(lambda r, ts=beam.DoFn.TimestampParam: (r, ts.micros))
         | "Records" >> Collect(tmp_path / "records"))
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    # element timestamps are the Kafka record timestamps (event_time=kafka, milliseconds)
    assert sorted(collected(tmp_path / "records")) == sorted((r, r.event_time.micros // 1000 * 1000) for r in PARSED)
    assert sorted(d.error_type for d in collected(tmp_path / "dead")) == ["decode_error", "invalid_json"]


def test_missing_topic_and_unreachable_broker_are_one_line_errors(kafka_broker):
    from hybridflow.testing.services import free_port

    p = batch_pipeline("--kafka_expansion_service=127.0.0.1:1")
    with pytest.raises(ConnectorError, match=rf"^kafka://{kafka_broker.bootstrap}/nope: topic 'nope' does not exist"):
        _ = p | "A" >> ReadFrom(f"kafka://{kafka_broker.bootstrap}/nope?max_records=1")
    port = free_port()
    with pytest.raises(ConnectorError, match=rf"^kafka://127.0.0.1:{port}/t: cannot reach a Kafka broker at 127.0.0.1:{port}; check"):
        _ = p | "B" >> ReadFrom(f"kafka://127.0.0.1:{port}/t?max_records=1")


def test_unreachable_expansion_service_is_one_line(kafka_broker, kafka_topic):
    from hybridflow.testing.services import free_port

    topic = kafka_topic()
    port = free_port()
    p = batch_pipeline(f"--kafka_expansion_service=127.0.0.1:{port}")
    with pytest.raises(ConnectorError, match=rf"could not be expanded by 127.0.0.1:{port} .*--kafka_expansion_service"):
        _ = p | ReadFrom(f"kafka://{kafka_broker.bootstrap}/{topic}?max_records=1")


@pytest.mark.parametrize("uri, message", [
    ("kafka://127.0.0.1:9092", "expected kafka://HOST:PORT"),
    ("kafka://127.0.0.1:9092/t?event_time=ingest", "event_time='ingest'"),
    ("kafka://127.0.0.1:9092/t?offset=0", "unknown parameter 'offset'"),
])
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        ReadFrom(uri)


def test_bounded_read_needs_a_bound():
    with pytest.raises(InvalidUriError, match="Kafka is unbounded; add max_records=N or max_seconds=S"):
        ReadFrom("kafka://127.0.0.1:9092/t", bounded=True)
