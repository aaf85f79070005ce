"""HybridRead: history files, then a live Kafka topic from the boundary, in one job on Prism,
against a real KRaft broker and the provisioned expansion service."""

import collections
import json
import time
import typing

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import InvalidOptionError, InvalidUriError
from hybridflow.io.hybrid import HybridRead, Seam
from hybridflow.schemas import register, to_json
from hybridflow.testing import Collect, collected
from tests._docs import example

pytestmark = pytest.mark.timeout(600)

WINDOW = 10  # seconds
HORIZON = 60


@register
class Event(typing.NamedTuple):
    id: str
    key: str
    event_time: Timestamp


def test_seam_places_records_by_side_and_horizon():
    seam = Seam(boundary_micros=1_000_000, horizon_micros=100)
    assert [seam.place("history", t) for t in (0, 999_900, 999_901, 1_000_000, 1_000_099, 1_000_100)] == [
        "clear", "clear", "seam", "seam", "seam", "history_after_boundary"]
    assert [seam.place("live", t) for t in (2_000_000, 1_000_100, 1_000_099, 999_901, 999_900)] == [
        "clear", "clear", "seam", "seam", "live_before_boundary"]


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(live="pubsub://projects/p/topics/t"), InvalidUriError, "the live source must be kafka://"),
    (dict(live="kafka://127.0.0.1:1/t?start=latest"), InvalidUriError, "remove start="),
    (dict(boundary="yesterday"), InvalidOptionError, "boundary='yesterday' is not a time"),
    (dict(horizon="0s"), InvalidOptionError, "horizon='0s'.*must be > 0"),
    (dict(id_field=""), InvalidOptionError, "id_field=''.*give a field name"),
])
def test_bad_arguments_are_one_line_usage_errors(tmp_path, kwargs, error, message):
    args = dict(history=str(tmp_path / "h.jsonl"), live="kafka://127.0.0.1:1/t", boundary="2026-12-07T00:00:00Z",
                schema=Event, id_field="id", horizon="1m")
    args.update(kwargs)
    with pytest.raises(error, match=message):
        HybridRead(**args)


def test_a_partition_with_nothing_past_the_boundary_is_one_line(tmp_path, kafka_broker, kafka_topic):
    from hybridflow.errors import ConnectorError
    from hybridflow.testing.services.kafka import produce

    topic = kafka_topic()
    boundary = Timestamp(seconds=int(time.time()) - 60)
    produce(kafka_broker.bootstrap, topic, [(b"x", b"{}", (boundary.micros - 1000) // 1000)])  # only before T
    (tmp_path / "h.jsonl").write_text("")
    p = beam.Pipeline()
    with pytest.raises(ConnectorError, match=rf"partition {topic}-0 has no record at or after .*pick an earlier"):
        _ = p | HybridRead(str(tmp_path / "h.jsonl?allow_empty=true"), f"kafka://{kafka_broker.bootstrap}/{topic}",
                           boundary=boundary.to_rfc3339(), schema=Event, id_field="id")


def _windows(events):
    """Count per (key, window start) of ``events``: the batch computation over the union."""
    counts = collections.Counter((e.key, e.event_time.micros // 1_000_000 // WINDOW * WINDOW) for e in events)
    return sorted((k, start, n) for (k, start), n in counts.items())


def test_history_then_live_on_prism_every_record_once_and_seam_windows_complete(
        tmp_path, prism_flags, kafka_broker, kafka_expansion_service, kafka_topic):
    from hybridflow.testing.services.kafka import produce

    # Measured on Prism: once a partition is caught up, the live watermark is the wall clock
    # (records stamped ahead of it do not move it). So the boundary lies two minutes back, and
    # records produced during the run are stamped a little ahead of the clock: they are on time.
    boundary = Timestamp(seconds=(int(time.time()) - 120) // WINDOW * WINDOW)

    def event(id_, offset, key="a"):
        return Event(id_, key, boundary + offset)

    history = [event(f"h{i:02}", -100 + 7 * i, "ab"[i % 2]) for i in range(14)]  # T-100 s .. T-9 s
    seam_dups = [event("s1", -5, "b"), event("s2", -1), event("s3", 1, "b")]  # in both: kept once
    history += seam_dups + [event("h_after", 2)]  # exported past the cut-off, within the horizon: kept
    far_history = event("h_far", HORIZON + 30)  # past the cut-off by more than the horizon: dead letter
    (tmp_path / "history.jsonl").write_text("".join(to_json(e) + "\n" for e in history + [far_history]))

    before_run = [event(f"l{i:02}", 2 * i, "ab"[i % 2]) for i in range(10)]  # T .. T+18 s
    # Kafka also holds the history's last records (before the boundary: not read) and, after
    # records at or past T, copies of the seam records and one far too early (a dead letter).
    far_live = event("l_far", -2 * HORIZON)
    topic_before = history[:3] + before_run[:2] + seam_dups + [far_live] + before_run[2:]

    topic = kafka_topic()

    def send(events):
        produce(kafka_broker.bootstrap, topic, [(e.id.encode(), to_json(e).encode(), e.event_time.micros // 1000)
                                                for e in events])

    send(topic_before)
    p = beam.Pipeline(options=PipelineOptions([*prism_flags, "--streaming",
                                               f"--kafka_expansion_service={kafka_expansion_service.address}"]))
    namespace = dict(p=p, history=str(tmp_path / "history.jsonl"), live=f"kafka://{kafka_broker.bootstrap}/{topic}",
                     boundary=boundary.to_rfc3339(), Event=Event)
    exec(example("hybrid.md", "hybrid-read", "python"), namespace)  # horizon="60s": HORIZON
    read = namespace["read"]
    read.records | "Records" >> Collect(tmp_path / "records")
    read.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    (read.records
     | beam.WindowInto(beam.window.FixedWindows(WINDOW))
     | beam.Map(lambda e: (e.key, 1))
     | beam.CombinePerKey(sum)
     | beam.Map(lambda kv, w=beam.DoFn.WindowParam: (kv[0], int(w.start), kv[1]))
     | "Windows" >> Collect(tmp_path / "windows"))

    result = p.run()
    deadline = time.monotonic() + 420
    try:
        # the job is live end to end once records come out; then the producer sends the rest
        while not collected(tmp_path / "records") and time.monotonic() < deadline:
            time.sleep(1)
        now = Timestamp(micros=Timestamp.now().micros // 1000 * 1000)  # Kafka keeps milliseconds
        during_run = [Event(f"l{i:02}", "ab"[i % 2], now + 2 + (i - 10) / 2) for i in range(10, 20)]
        send(during_run)
        expected_records = history + before_run + during_run
        expected_windows = _windows(expected_records)
        while time.monotonic() < deadline and (
                len(collected(tmp_path / "records")) < len(expected_records)
                or len(collected(tmp_path / "windows")) < len(expected_windows)):
            assert not str(result.state).endswith(("FAILED", "DONE", "CANCELLED")), result.state
            time.sleep(1)
        time.sleep(3)  # anything beyond the expected would show up now
    finally:
        result.cancel()

    records = collected(tmp_path / "records")
    assert sorted(r.id for r in records) == sorted(e.id for e in expected_records)  # each once, none missing
    assert sorted(records) == sorted(expected_records)
    assert sorted((d.error_type, json.loads(d.payload)["id"]) for d in collected(tmp_path / "dead")) == [
        ("history_after_boundary", "h_far"), ("live_before_boundary", "l_far")]
    # windows across the seam fire once, complete: equal to the batch count over the union
    assert sorted(collected(tmp_path / "windows")) == expected_windows


def test_prism_flatten_of_bounded_and_unbounded_fires_windows_once(tmp_path, prism_flags):
    start = int(time.time())
    (tmp_path / "history.txt").write_text("".join(f"{start - 10 + i}\n" for i in range(10)))
    namespace = dict(options=PipelineOptions([*prism_flags, "--streaming"]), history_file=str(tmp_path / "history.txt"),
                     start=start, sink=Collect(tmp_path / "counts"))
    exec(example("hybrid.md", "prism-flatten", "python"), namespace)
    times = [("history", start - 10 + i) for i in range(10)] + [("live", start + i) for i in range(10)]
    expected = collections.Counter((t // 5 * 5, side) for side, t in times)
    assert sorted(collected(tmp_path / "counts")) == sorted((w, side, n) for (w, side), n in expected.items())
