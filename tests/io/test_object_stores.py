"""Files on s3:// (moto server) and gs:// (GCS emulator): every format round-trips exactly,
partitioned output lands under dt=/hour= keys, and malformed files reach dead letters."""

import apache_beam as beam
import pytest

from hybridflow import ParseRecords, ReadFrom, WriteTo
from hybridflow.testing import Collect, batch_pipeline, collected
from tests.io.edge_records import EDGES, Edge

PARSED = [r._replace(text=r.text or None) for r in EDGES]  # ParseRecords: "" in an Optional field is null


def _round_trip(tmp_path, uri, flags=()):
    sink = WriteTo(uri)
    with batch_pipeline(*flags) as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | sink
    with batch_pipeline(*flags) as p:
        parsed = p | ReadFrom(sink.location) | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    assert sorted(collected(tmp_path / "records")) == sorted(PARSED)
    assert collected(tmp_path / "dead") == []
    return sink


# every format runs locally in test_files.py; here each store gets two formats (all four in total)
@pytest.mark.parametrize("fmt", ["jsonl", "avro"])
def test_s3_round_trip(tmp_path, s3_server, s3_bucket, fmt):
    _round_trip(tmp_path, f"s3://{s3_bucket}/edges/part.{fmt}", s3_server.pipeline_flags)
    keys = [o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys and all(k.startswith("edges/part-") and k.endswith(f".{fmt}") for k in keys), keys


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_gcs_round_trip(tmp_path, gcs_emulator, gcs_bucket, fmt):
    _round_trip(tmp_path, f"gs://{gcs_bucket}/edges/part.{fmt}")
    names = [b.name for b in gcs_emulator.client().list_blobs(gcs_bucket)]
    assert names and all(n.startswith("edges/part-") for n in names), names


def test_s3_partitioned_by_event_hour(tmp_path, s3_server, s3_bucket):
    sink = _round_trip(tmp_path, f"s3://{s3_bucket}/batch/edges.parquet?partition_by=event_time",
                       s3_server.pipeline_flags)
    assert sink.location == f"s3://{s3_bucket}/batch/dt=*/hour=*/edges-?????-of-?????.parquet"
    keys = sorted(o["Key"] for o in s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"])
    partitions = {k.rsplit("/", 1)[0] for k in keys if k.endswith(".parquet")}
    assert partitions == {"batch/dt=2026-01-01/hour=00", "batch/dt=2026-01-01/hour=01"}, keys


def test_gcs_partitioned_by_event_hour(tmp_path, gcs_emulator, gcs_bucket):
    _round_trip(tmp_path, f"gs://{gcs_bucket}/batch/edges.avro?partition_by=event_time")
    names = {b.name.rsplit("/", 1)[0] for b in gcs_emulator.client().list_blobs(gcs_bucket) if b.name.endswith(".avro")}
    assert names == {"batch/dt=2026-01-01/hour=00", "batch/dt=2026-01-01/hour=01"}


def test_empty_output_on_s3_writes_no_object(s3_server, s3_bucket):
    # Beam's S3 writer fails on a zero-byte object (MalformedXML): an empty JSON-lines output writes none
    with batch_pipeline(*s3_server.pipeline_flags) as p:
        _ = p | beam.Create([]).with_output_types(Edge) | WriteTo(f"s3://{s3_bucket}/empty/late.jsonl")
    assert "Contents" not in s3_server.client().list_objects_v2(Bucket=s3_bucket)


def test_malformed_lines_on_s3_reach_dead_letters(tmp_path, s3_server, s3_bucket):
    body = '{"id": "ok", "text": null, "count": 1, "amount": 2.5, "flag": true, "tags": [], "scores": [], ' \
           '"event_time": "2026-01-01T00:00:00Z"}\n{"id": "bad json\n{"id": "x", "count": "many"}\n'
    s3_server.client().put_object(Bucket=s3_bucket, Key="in/mixed.jsonl", Body=body.encode())
    with batch_pipeline(*s3_server.pipeline_flags) as p:
        parsed = p | ReadFrom(f"s3://{s3_bucket}/in/*.jsonl") | ParseRecords(Edge)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    assert [r.id for r in collected(tmp_path / "records")] == ["ok"]
    assert sorted(d.error_type for d in collected(tmp_path / "dead")) == ["invalid_json", "invalid_type"]


@pytest.mark.parametrize("scheme", ["s3", "gs"])
def test_missing_bucket_is_one_line_naming_the_uri(s3_server, gcs_emulator, scheme):
    from hybridflow import ConnectorError

    p = batch_pipeline(*s3_server.pipeline_flags)
    with pytest.raises(ConnectorError, match=rf"^{scheme}://no-such-bucket/x.jsonl: bucket 'no-such-bucket' "
                                             r"does not exist at .*; create it"):
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"{scheme}://no-such-bucket/x.jsonl")
    with pytest.raises(ConnectorError, match=rf"^{scheme}://no-such-bucket/\*.jsonl: bucket"):
        _ = p | ReadFrom(f"{scheme}://no-such-bucket/*.jsonl")


def test_unreachable_s3_is_one_line_naming_the_uri(unique_name):
    from hybridflow import ConnectorError
    from hybridflow.testing.services import free_port

    p = batch_pipeline(f"--s3_endpoint_url=http://127.0.0.1:{free_port()}", "--s3_access_key_id=x",
                       "--s3_secret_access_key=x", "--s3_region_name=us-east-1")
    with pytest.raises(ConnectorError, match=r"^s3://b/x.jsonl: cannot reach http://127.0.0.1:\d+; check --s3_endpoint_url"):
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo("s3://b/x.jsonl")
