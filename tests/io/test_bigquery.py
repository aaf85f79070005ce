"""bigquery:// against bqemulator: schema from the record type, day partitioning, file loads
(batch), streaming inserts (unbounded), DIRECT_READ back. What the emulator cannot do (EXPORT and
query reads, per-row insert errors, partitioning from a load job) is listed in
hybridflow.testing.services.bigquery."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.io.bigquery import table_schema
from hybridflow.testing import Collect, EventStream, batch_pipeline, collected, streaming_pipeline
from tests.io.edge_records import EDGES, Edge

PARSED = [r._replace(text=r.text or None) for r in EDGES]


def _flags(bigquery_emulator, gcs_emulator):
    return [f"--project={bigquery_emulator.project}", f"--temp_location=gs://{gcs_emulator.default_bucket}/tmp"]


def _read_back(tmp_path, table, flags):
    with batch_pipeline(*flags) as p:
        parsed = p | ReadFrom(f"bigquery://{table}") | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    return sorted(collected(tmp_path / "records")), collected(tmp_path / "dead")


def test_schema_from_the_record_type():
    assert table_schema(Edge)["fields"] == [
        {"name": "id", "type": "STRING", "mode": "REQUIRED"},
        {"name": "text", "type": "STRING", "mode": "NULLABLE"},
        {"name": "count", "type": "INT64", "mode": "REQUIRED"},
        {"name": "amount", "type": "FLOAT64", "mode": "NULLABLE"},
        {"name": "flag", "type": "BOOL", "mode": "REQUIRED"},
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
        {"name": "scores", "type": "FLOAT64", "mode": "REPEATED"},
        {"name": "event_time", "type": "TIMESTAMP", "mode": "REQUIRED"},
    ]


def test_batch_file_loads_day_partitioned_and_direct_read(tmp_path, bigquery_emulator, gcs_emulator, bigquery_dataset):
    table = f"{bigquery_dataset}.edges"
    flags = _flags(bigquery_emulator, gcs_emulator)
    with batch_pipeline(*flags) as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"bigquery://{table}?partition_by=event_time")
    client = bigquery_emulator.client()
    # The load job asks for DAY partitioning on event_time; bqemulator creates the table from a
    # load job unpartitioned (it ignores load.timePartitioning; real BigQuery applies it), so the
    # table itself is checked for partitioning in the streaming-inserts test.
    (load,) = [j for j in client.list_jobs() if j.job_type == "load" and j.destination.table_id == "edges"]
    assert (load.time_partitioning.type_, load.time_partitioning.field) == ("DAY", "event_time")
    assert [f.name for f in client.get_table(table).schema] == list(Edge._fields)
    records, dead = _read_back(tmp_path, table, flags)
    assert records == sorted(PARSED) and dead == []


@pytest.mark.streaming
def test_unbounded_input_uses_streaming_inserts(tmp_path, bigquery_emulator, gcs_emulator, bigquery_dataset):
    table = f"{bigquery_dataset}.stream"
    flags = _flags(bigquery_emulator, gcs_emulator)
    with streaming_pipeline(*flags) as p:
        dead = p | EventStream(EDGES) | WriteTo(f"bigquery://{table}?partition_by=event_time")
        dead | Collect(tmp_path / "rejected")
    assert collected(tmp_path / "rejected") == []
    info = bigquery_emulator.client().get_table(table)
    assert (info.time_partitioning.type_, info.time_partitioning.field) == ("DAY", "event_time")
    records, dead = _read_back(tmp_path, table, flags)
    assert records == sorted(PARSED) and dead == []


def test_missing_dataset_is_one_line_naming_the_uri(bigquery_emulator):
    uri = f"bigquery://{bigquery_emulator.project}.nope.t"
    with pytest.raises(ConnectorError, match=rf"^{uri}: dataset {bigquery_emulator.project}.nope does not exist; create it"):
        _ = batch_pipeline() | beam.Create(EDGES).with_output_types(Edge) | WriteTo(uri)


@pytest.mark.parametrize("uri, message", [
    ("bigquery://just-a-table", "expected bigquery://PROJECT.DATASET.TABLE"),
    ("bigquery://p.d.t?method=storage_write_api", "method='storage_write_api'"),
    ("bigquery://p.d.t?write=overwrite", "write='overwrite'"),
])
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        WriteTo(uri)
