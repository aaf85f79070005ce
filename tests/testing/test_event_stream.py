"""EventStream of raw payloads: text and bytes off the wire, parsed by ParseRecords in streaming."""

import typing

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from hybridflow import ParseRecords, SchemaError
from hybridflow.schemas import register
from hybridflow.testing import START, EventStream, Watermark, streaming_pipeline


class Reading(typing.NamedTuple):
    machine: str
    temp: float
    event_time: Timestamp


register(Reading)


def line(machine, temp, seconds):
    return f'{{"machine": "{machine}", "temp": {temp}, "event_time": "{(START + seconds).to_rfc3339()}"}}'


@pytest.mark.streaming
def test_raw_payloads_are_parsed_in_streaming_and_bad_ones_reach_dead_letters():
    wire = [
        (line("m1", 71.5, 5), START + 6),  # arrival (source) time one second after the event
        (line("m2", 80.0, 7).encode(), START + 8),  # bytes, as Kafka and Pub/Sub deliver them
        ('{"machine": "m1", "temp": ', START + 9),  # truncated JSON
        (b"\xff\xfe", START + 10),  # not UTF-8
        Watermark(START + 10),
        ('{"machine": "m3", "event_time": "2026-01-01T00:00:11Z"}', START + 12),  # no temp
        (line("m1", 72.0, 14), "2026-01-01T00:00:15Z"),  # event time as ISO-8601 text
    ]
    with streaming_pipeline() as p:
        stream = p | EventStream(wire)
        assert stream.element_type == typing.Union[str, bytes]
        parsed = stream | ParseRecords(Reading)
        assert_that(
            parsed.records | beam.Map(lambda r, t=beam.DoFn.TimestampParam: (r.machine, r.temp, t - START)),
            equal_to([("m1", 71.5, 5), ("m2", 80.0, 7), ("m1", 72.0, 14)]),
            label="Records",
        )
        assert_that(
            parsed.dead_letters | beam.Map(lambda d: d.error_type),
            equal_to(["invalid_json", "decode_error", "missing_field"]),
            label="DeadLetters",
        )


def test_payload_types_and_what_is_refused():
    p = streaming_pipeline()
    assert (p | "Text" >> EventStream([("a", START)])).element_type is str
    assert (p | "Bytes" >> EventStream([(b"a", START)])).element_type is bytes
    with pytest.raises(SchemaError, match=r"raw payload 'a' has no event time; give \(payload, event_time\) pairs"):
        EventStream(["a"])
    with pytest.raises(SchemaError, match="event time of payload 'a'"):
        EventStream([("a", "yesterday")])


@pytest.mark.streaming
def test_docs_example_runs(tmp_path):
    """docs/transforms.md's raw-payload example runs as written."""
    from tests._docs import example

    namespace = {"__name__": "docs_event_stream_raw"}
    exec(compile(example("transforms.md", "event-stream-raw", "python"), "docs/transforms.md", "exec"), namespace)
    namespace["run"](str(tmp_path))
