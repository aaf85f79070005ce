"""pubsub:// against the Pub/Sub fake (pstest): attributes, event-time attribute, id attribute."""

import json

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidOptionError, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.testing import Collect, batch_pipeline
from hybridflow.testing.services.pubsub import PROJECT
from tests.io.edge_records import EDGES, Edge
from tests.io.streaming_runs import run_until

PARSED = [r._replace(text=r.text or None) for r in EDGES]


def test_write_sets_data_and_attributes(pubsub_emulator, pubsub_topic):
    topic, subscription = pubsub_topic()
    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(
            f"pubsub://{topic}?timestamp_attribute=ts&id_attribute=eid&id_field=id&attributes=flag,count"
        )
    messages = pubsub_emulator.pull(subscription, len(EDGES))
    assert len(messages) == len(EDGES)
    by_id = {m.attributes["eid"]: m for m in messages}
    for record in EDGES:
        message = by_id[record.id]
        assert json.loads(message.data) == json.loads(json.dumps(_plain(record)))
        assert message.attributes["ts"] == record.event_time.to_rfc3339()
        assert message.attributes["flag"] == str(record.flag)
        assert message.attributes["count"] == str(record.count)


def _plain(record):
    from hybridflow.schemas import to_plain

    return to_plain(record)


@pytest.mark.streaming
def test_streaming_read_event_time_dedupe_and_dead_letters(tmp_path, pubsub_emulator, pubsub_topic):
    topic, subscription = pubsub_topic()
    from hybridflow.schemas import to_json

    messages = [(to_json(r).encode(), {"ts": r.event_time.to_rfc3339(), "eid": r.id}) for r in EDGES]
    messages.append(messages[0])  # redelivered: same id
    messages.append((b'{"id": "broken', {"eid": "m1", "ts": "1767225600000"}))
    messages.append((b'{"id": "x", "count": "1", "event_time": "2026-01-01T00:00:00Z"}', {"eid": "m2"}))
    pubsub_emulator.publish(topic, messages)

    def build(p):
        parsed = p | ReadFrom(f"pubsub://{subscription}?timestamp_attribute=ts&id_attribute=eid") | ParseRecords(
            Edge, timestamp_field=None
        )
        (parsed.records
         | beam.Map(lambda r, ts=beam.DoFn.TimestampParam: (r, ts.micros))
         | "Records" >> Collect(tmp_path / "out"))
        parsed.dead_letters | beam.Map(lambda d: d.error_type) | "Dead" >> Collect(tmp_path / "out")

    got = run_until(build, ["--runner=BundleBasedDirectRunner", "--streaming"], tmp_path / "out", len(EDGES) + 2)
    records = sorted(g for g in got if isinstance(g, tuple))
    assert records == sorted((r, r.event_time.micros) for r in PARSED)  # event time from the attribute
    assert sorted(g for g in got if isinstance(g, str)) == ["invalid_json", "missing_field"]


def test_prism_cannot_read_pubsub_one_line_error(pubsub_emulator, pubsub_topic):
    topic, _ = pubsub_topic()
    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=PrismRunner"]))
    with pytest.raises(InvalidOptionError, match=r"^pubsub://projects/.*: Prism cannot read Pub/Sub.*--runner=DirectRunner"):
        _ = p | ReadFrom(f"pubsub://{topic}")


def test_missing_topic_is_one_line_naming_the_uri(pubsub_emulator):
    uri = f"pubsub://projects/{PROJECT}/topics/nope"
    p = batch_pipeline()
    with pytest.raises(ConnectorError, match=rf"^{uri}: the topic does not exist in the Pub/Sub emulator at "):
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(uri)
    sub = f"pubsub://projects/{PROJECT}/subscriptions/nope"
    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"]))
    with pytest.raises(ConnectorError, match=rf"^{sub}: the subscription does not exist"):
        _ = p | ReadFrom(sub)


@pytest.mark.parametrize(
    "uri, message",
    [
        ("pubsub://projects/p1/queues/q", "expected pubsub://projects/PROJECT/topics/TOPIC"),
        ("pubsub://projects/hybridflow-test/topics/t?ts_attribute=x", "unknown parameter 'ts_attribute'"),
        ("pubsub://projects/hybridflow-test/subscriptions/s?id_attribute=x", "publish to a topic"),
    ],
)
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        WriteTo(uri)
