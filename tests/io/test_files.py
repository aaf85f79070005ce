"""Round trips through every file format: write records, read them back, compare exactly.
(Unbounded writes: test_streaming_files.py.)"""

import glob
import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import Alert, InvalidUriError, ParseRecords, ReadFrom, SchemaError, Transaction, WriteTo
from hybridflow.testing import START, batch_pipeline, transactions

EDGE = transactions([("c1", 999999.99, 0), ("c2", 0.0, 59.999999), ("c3", 12.5, 60)]) + [
    Transaction("t-ü", "卡-1", "cust", "m", "café", 3.25, "EUR", "FR", START + 3600)
]
ALERTS = [
    Alert("a1", "velocity", "c1", 12.0, 10.0, START + 60, START, START + 60, "many\nlines, \"quoted\""),
    Alert("a2", "new_country", "c2", 1.0, 1.0, START + 61, None, None, "ünïcode"),
]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "avro", "orc"])
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
    assert sink.location == f"{tmp_path}/out/alerts-?????-of-?????.jsonl"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "alerts-old.jsonl").write_text("{}\n")  # not this sink's: the location must not match it
    with batch_pipeline() as p:
        _ = p | beam.Create(ALERTS).with_output_types(Alert) | sink
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == [
        "alerts-00000-of-00002.jsonl", "alerts-00001-of-00002.jsonl", "alerts-old.jsonl"]
    assert sorted(os.path.basename(f) for f in glob.glob(sink.location)) == [
        "alerts-00000-of-00002.jsonl", "alerts-00001-of-00002.jsonl"]


def test_unschemad_input_is_rejected_at_construction(tmp_path):
    p = batch_pipeline()
    with pytest.raises(SchemaError, match="schema'd records"):
        _ = p | beam.Create([1, 2]) | WriteTo(f"{tmp_path}/x.parquet")


# --------------------------------------------------------------------------
# Hive-style partitions by event date and hour, and unbounded writes

from hybridflow.testing import Collect, collected  # noqa: E402
from tests.io.edge_records import EDGES, Edge  # noqa: E402


def _as_parsed(records):
    """ParseRecords reads an empty string in an Optional field as null (and CSV
    could not tell them apart anyway)."""
    return [r._replace(text=r.text or None) for r in records]


def _read_back(pattern, out, schema=Edge):
    """The parsed records (sorted) and dead letters of the files matching ``pattern``."""
    with batch_pipeline() as p:
        parsed = p | ReadFrom(pattern) | ParseRecords(schema, timestamp_field=None)
        parsed.records | "Records" >> Collect(out / "records")
        parsed.dead_letters | "Dead" >> Collect(out / "dead")
    return sorted(collected(out / "records")), collected(out / "dead")


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "avro", "orc"])
def test_partitioned_by_event_date_and_hour(tmp_path, fmt):
    sink = WriteTo(f"{tmp_path}/edges.{fmt}?partition_by=event_time")
    assert sink.location == f"{tmp_path}/dt=*/hour=*/edges-?????-of-?????.{fmt}"
    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | sink
    written = sorted(str(f.relative_to(tmp_path)) for f in tmp_path.rglob(f"*.{fmt}"))
    assert {w.rsplit("/", 1)[0] for w in written} == {"dt=2026-01-01/hour=00", "dt=2026-01-01/hour=01"}, written
    assert all(w.rsplit("/", 1)[1].startswith("edges-") for w in written), written
    expected = _as_parsed(EDGES)
    hour0, dead = _read_back(f"{tmp_path}/dt=2026-01-01/hour=00/*.{fmt}", tmp_path / "hour0")
    assert hour0 == sorted(expected[:4]) and dead == []
    everything, dead = _read_back(sink.location, tmp_path / "all")
    assert everything == sorted(expected) and dead == []


def test_partition_by_must_name_a_timestamp_field(tmp_path):
    p = batch_pipeline()
    with pytest.raises(SchemaError, match="partition_by='amount'.*required Timestamp field"):
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"{tmp_path}/x.jsonl?partition_by=amount")


def test_unknown_file_parameter_is_a_usage_error(tmp_path):
    from hybridflow import InvalidUriError

    with pytest.raises(InvalidUriError, match="unknown parameter 'partition' for file sinks; known: every, format"):
        WriteTo(f"{tmp_path}/x.jsonl?partition=event_time")


# --------------------------------------------------------------------------
# Readable by other engines: Hive-style Parquet partitions through DuckDB; ECS documents


def test_hive_partitioned_parquet_reads_back_in_duckdb(tmp_path):
    import datetime

    duckdb = pytest.importorskip("duckdb", reason="the bench extra")
    sink = WriteTo(f"{tmp_path}/edges.parquet?partition_by=event_time")
    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | sink
    rows = duckdb.sql(
        f"SELECT id, count, dt, hour, epoch_us(event_time) AS micros FROM read_parquet('{sink.location}', "
        "hive_partitioning = true) ORDER BY id"
    ).fetchall()
    day = datetime.date(2026, 1, 1)  # DuckDB types dt=2026-01-01 as a DATE
    assert rows == [(e.id, e.count, day, "00" if e.event_time < START + 3600 else "01", e.event_time.micros)
                    for e in EDGES]
    per_day = duckdb.sql(f"SELECT dt, count(*) FROM read_parquet('{sink.location}', hive_partitioning = true) "
                         "WHERE dt = '2026-01-01' GROUP BY dt").fetchall()  # partition pruning by directory
    assert per_day == [(day, len(EDGES))]


def test_ecs_documents_for_filebeat(tmp_path):
    import json

    from hybridflow.io.ecs import ECS_VERSION

    with batch_pipeline() as p:
        _ = p | beam.Create(ALERTS).with_output_types(Alert) | WriteTo(f"{tmp_path}/alerts.ecs?shards=1")
    (path,) = tmp_path.glob("alerts*.ecs")
    docs = sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda d: d["hybridflow"]["alert_id"])
    assert [d["@timestamp"] for d in docs] == ["2026-01-01T00:01:00Z", "2026-01-01T00:01:01Z"]
    assert docs[0]["ecs"] == {"version": ECS_VERSION}
    assert docs[0]["event"] == {"kind": "alert", "module": "hybridflow", "dataset": "hybridflow.alerts"}
    assert docs[0]["rule"] == {"name": "velocity"} and docs[0]["message"] == 'many\nlines, "quoted"'
    assert docs[1]["hybridflow"] == {**ALERTS[1]._asdict(), "event_time": "2026-01-01T00:01:01Z"}
    with pytest.raises(InvalidUriError, match="ECS is an output format; read these files with"):
        ReadFrom(str(path))


def test_ecs_event_kinds():
    from hybridflow.io.ecs import to_ecs
    from hybridflow.schemas import DeadLetter

    dead = to_ecs(DeadLetter("Parse", "invalid_json", "bad", "{", START), "dead_letters")
    assert dead["event"]["kind"] == "pipeline_error" and dead["@timestamp"] == "2026-01-01T00:00:00Z"
    window = to_ecs({"key": "c1", "window_start": START, "window_end": START + 60, "n": 3}, "aggregates")
    assert window["event"]["kind"] == "metric" and window["@timestamp"] == "2026-01-01T00:01:00Z"
    assert "message" not in window and "rule" not in window
