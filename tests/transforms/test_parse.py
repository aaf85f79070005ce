import json
from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from hybridflow import ParseRecords, Range, RecordError, SchemaError, Transaction
from hybridflow.schemas import OneOf, register
from hybridflow.testing import START, batch_pipeline
from hybridflow.transforms.parse import record_parser


@register
class Reading(NamedTuple):
    sensor: str
    value: float
    status: str
    tags: list[str]
    note: Optional[str]
    event_time: Timestamp

    constraints = {"value": Range(min=-50, max=150), "status": OneOf(["ok", "fault"])}


GOOD = {"sensor": "s1", "value": 21.5, "status": "ok", "tags": ["a"], "note": None,
        "event_time": "2026-01-01T00:00:10Z"}


def line(**changes):
    data = dict(GOOD, **changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...})


class TestRecordParser:
    parse = staticmethod(record_parser(Reading))

    def test_coerces_types(self):
        r = self.parse({**GOOD, "value": "21.5", "event_time": 1767225610})
        assert r == Reading("s1", 21.5, "ok", ["a"], None, START + 10)

    @pytest.mark.parametrize(
        "changes, reason",
        [
            ({"sensor": None}, "missing_field"),
            ({"value": "21,5"}, "invalid_type"),
            ({"value": True}, "invalid_type"),
            ({"value": float("nan")}, "invalid_value"),
            ({"value": 151}, "invalid_value"),
            ({"status": "broken"}, "invalid_value"),
            ({"event_time": "yesterday"}, "invalid_timestamp"),
            ({"tags": "x"}, "invalid_type"),
        ],
    )
    def test_rejects_with_a_countable_reason(self, changes, reason):
        with pytest.raises(RecordError) as info:
            self.parse({**GOOD, **changes})
        assert info.value.reason == reason
        field = next(iter(changes))
        assert repr(field) in str(info.value)

    def test_optional_empty_string_is_none(self):
        assert self.parse({**GOOD, "note": ""}).note is None

    def test_iso_with_offset_and_epoch_agree(self):
        a = self.parse({**GOOD, "event_time": "2026-01-01T01:00:10+01:00"})
        b = self.parse({**GOOD, "event_time": "1767225610"})
        assert a.event_time == b.event_time == START + 10

    def test_constraints_on_unknown_fields_fail_at_construction(self):
        with pytest.raises(SchemaError, match="nosuch"):
            record_parser(Reading, {"nosuch": Range(min=0)})


def test_construction_checks_timestamp_field():
    with pytest.raises(SchemaError, match="timestamp_field"):
        ParseRecords(Reading, timestamp_field="note")
    with pytest.raises(SchemaError, match="not a field"):
        ParseRecords(Reading, timestamp_field="nosuch")


def test_batch_records_and_dead_letters_partition_the_input():
    inputs = [
        line(),
        line(sensor="s2", value=30),
        "{not json",
        "[1, 2]",
        line(status="broken"),
        line(sensor=...),
        b"\xff\xfe",
    ]
    with batch_pipeline() as p:
        parsed = p | beam.Create(inputs) | ParseRecords(Reading)
        stamped = parsed.records | beam.Map(
            lambda r, ts=beam.DoFn.TimestampParam: (r.sensor, r.value, ts)
        )
        assert_that(
            stamped,
            equal_to([("s1", 21.5, START + 10), ("s2", 30.0, START + 10)]),
            label="records",
        )
        reasons = parsed.dead_letters | beam.Map(lambda d: (d.stage, d.error_type))
        assert_that(
            reasons,
            equal_to(
                [
                    ("ParseRecords", "invalid_json"),
                    ("ParseRecords", "not_an_object"),
                    ("ParseRecords", "invalid_value"),
                    ("ParseRecords", "missing_field"),
                    ("ParseRecords", "decode_error"),
                ]
            ),
            label="dead letters",
        )
        payloads = parsed.dead_letters | "Payloads" >> beam.Map(lambda d: d.payload)
        assert_that(
            payloads | beam.Filter(lambda s: s.startswith("{not")), equal_to(["{not json"]), label="payload kept"
        )


def test_dead_letters_are_counted_by_reason():
    p = batch_pipeline()
    _ = p | beam.Create([line(), "{bad", "{bad2", line(status="x")]) | ParseRecords(Reading)
    result = p.run()
    result.wait_until_finish()
    from hybridflow.metrics import query_counters

    counts = query_counters(result)
    assert counts.get("records_in") == 4
    assert counts.get("records_out") == 1
    assert counts.get("dead_letters") == 3
    assert counts.prefixed("dead_letters.") == {"invalid_json": 2, "invalid_value": 1}


def test_csv_dict_and_avro_inputs():
    from hybridflow.io.files import avro_schema
    import fastavro
    import io

    buf = io.BytesIO()
    fastavro.schemaless_writer(
        buf,
        fastavro.parse_schema(avro_schema(Reading)),
        {"sensor": "s3", "value": 1.0, "status": "ok", "tags": [], "note": None, "event_time": (START + 10).micros},
    )
    with batch_pipeline() as p:
        csv_out = (
            p
            | "Csv" >> beam.Create(['s1,21.5,ok,"[""a""]",,2026-01-01T00:00:10Z', "s1,too,few"])
            | "ParseCsv" >> ParseRecords(Reading, format="csv")
        )
        assert_that(csv_out.records | "CsvSensors" >> beam.Map(lambda r: (r.sensor, r.tags, r.note)),
                    equal_to([("s1", ["a"], None)]), label="csv")
        assert_that(csv_out.dead_letters | "CsvReasons" >> beam.Map(lambda d: d.error_type),
                    equal_to(["invalid_csv"]), label="csv dead")
        dict_out = p | "Dicts" >> beam.Create([dict(GOOD)]) | "ParseDicts" >> ParseRecords(Reading)
        assert_that(dict_out.records | "DictSensors" >> beam.Map(lambda r: r.sensor), equal_to(["s1"]), label="dict")
        avro_out = p | "Avro" >> beam.Create([buf.getvalue(), b"\x00"]) | "ParseAvro" >> ParseRecords(
            Reading, format="avro"
        )
        assert_that(avro_out.records | "AvroSensors" >> beam.Map(lambda r: (r.sensor, r.event_time)),
                    equal_to([("s3", START + 10)]), label="avro")
        assert_that(avro_out.dead_letters | "AvroReasons" >> beam.Map(lambda d: d.error_type),
                    equal_to(["invalid_avro"]), label="avro dead")


def test_transaction_constraints():
    parse = record_parser(Transaction)
    base = {"txn_id": "t1", "card_id": "c1", "customer_id": "u", "merchant_id": "m", "category": "x",
            "amount": 10, "currency": "USD", "country": "US", "event_time": "2026-01-01T00:00:00Z"}
    assert parse(base).amount == 10.0
    for bad in ({"amount": -1}, {"currency": "EURO"}, {"country": "usa"}):
        with pytest.raises(RecordError):
            parse({**base, **bad})


@pytest.mark.streaming
def test_parity_batch_equals_streaming(tmp_path):
    """The same payloads, bounded and as a TestStream with watermark moves, give the
    same records (with the same timestamps) and the same dead letters."""
    from apache_beam.testing.test_stream import TestStream

    from hybridflow.testing import Collect, collected, streaming_pipeline

    inputs = [line(), "{bad", line(sensor="s2", value=30, event_time="2026-01-01T00:01:00Z"),
              line(status="x"), line(sensor="s3", event_time=1767225700), b"\xff"]
    stream = (TestStream().add_elements(inputs[:3]).advance_watermark_to(START + 30)
              .add_elements(inputs[3:]).advance_watermark_to_infinity())
    for name, make, source in (("batch", batch_pipeline, beam.Create(inputs)), ("stream", streaming_pipeline, stream)):
        with make() as p:
            parsed = p | source | ParseRecords(Reading)
            (parsed.records | beam.Map(lambda r, ts=beam.DoFn.TimestampParam: (r, ts))
             | Collect(tmp_path / name))
            parsed.dead_letters | "Reasons" >> beam.Map(lambda d: (d.error_type, d.payload)) | "Dead" >> Collect(
                tmp_path / f"{name}-dead")
    assert sorted(collected(tmp_path / "batch")) == sorted(collected(tmp_path / "stream"))
    assert len(collected(tmp_path / "batch")) == 3
    assert sorted(collected(tmp_path / "batch-dead")) == sorted(collected(tmp_path / "stream-dead"))
