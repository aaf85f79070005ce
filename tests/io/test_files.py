"""Round trips through every file format: write records, read them back, compare exactly."""

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import Alert, ParseRecords, ReadFrom, SchemaError, Transaction, WriteTo
from hybridflow.testing import START, batch_pipeline, transactions

EDGE = transactions([("c1", 999999.99, 0), ("c2", 0.0, 59.999999), ("c3", 12.5, 60)]) + [
    Transaction("t-ü", "卡-1", "cust", "m", "café", 3.25, "EUR", "FR", START + 3600)
]
ALERTS = [
    Alert("a1", "velocity", "c1", 12.0, 10.0, START + 60, START, START + 60, "many\nlines, \"quoted\""),
    Alert("a2", "new_country", "c2", 1.0, 1.0, START + 61, None, None, "ünïcode"),
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "avro"])
def test_round_trip(tmp_path, fmt):
    for name, records, schema in (("txns", EDGE, Transaction), ("alerts", ALERTS, Alert)):
        with batch_pipeline() as p:
            _ = p | beam.Create(records).with_output_types(schema) | WriteTo(f"{tmp_path}/{name}.{fmt}")
        with batch_pipeline() as p:
            parsed = p | ReadFrom(f"{tmp_path}/{name}*.{fmt}") | ParseRecords(schema, timestamp_field=None)
            assert_that(parsed.records, equal_to(records), label="records")
            assert_that(parsed.dead_letters, equal_to([]), label="no dead letters")


def test_shards_and_locations(tmp_path):
    sink = WriteTo(f"{tmp_path}/out/alerts.jsonl?shards=2")
    assert sink.location == f"{tmp_path}/out/alerts*.jsonl"
    with batch_pipeline() as p:
        _ = p | beam.Create(ALERTS).with_output_types(Alert) | sink
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == [
        "alerts-00000-of-00002.jsonl", "alerts-00001-of-00002.jsonl"]


def test_unschemad_input_is_rejected_at_construction(tmp_path):
    p = batch_pipeline()
    with pytest.raises(SchemaError, match="schema'd records"):
        _ = p | beam.Create([1, 2]) | WriteTo(f"{tmp_path}/x.parquet")
