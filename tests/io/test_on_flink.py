"""Issue 15 item 15: connectors on Flink, through the session's Flink job server (``flink_server``,
the ``[local]`` mini-cluster, LOOPBACK Python workers).

Two Flink jobs in all, to keep the cost of a job submission low: the first writes the edge records to
local files, s3:// (moto), gs:// (GCS emulator), Kafka and BigQuery (emulator); the second reads each
of them back, and a PostgreSQL table, and every connector must give back exactly the records.
"""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import ParseRecords, ReadFrom, WriteTo
from hybridflow.testing import Collect, collected
from tests.io.edge_records import EDGES, Edge
from tests.io.test_postgres import edges_table  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.flink, pytest.mark.slow, pytest.mark.timeout(600)]

PARSED = sorted(r._replace(text=r.text or None) for r in EDGES)  # ParseRecords: "" in an Optional field is null


def test_connectors_round_trip_on_flink(tmp_path, flink_server, s3_server, s3_bucket, gcs_emulator, gcs_bucket,
                                        kafka_broker, kafka_expansion_service, kafka_topic, bigquery_emulator,
                                        bigquery_dataset, postgres_server, edges_table):  # noqa: F811
    topic = kafka_topic()
    flags = flink_server.flags(
        *s3_server.pipeline_flags, f"--kafka_expansion_service={kafka_expansion_service.address}",
        f"--project={bigquery_emulator.project}", f"--temp_location=gs://{gcs_emulator.default_bucket}/tmp")
    sinks = {
        "local": WriteTo(f"{tmp_path}/out/edges.jsonl"),
        "s3": WriteTo(f"s3://{s3_bucket}/edges/part.avro"),
        "gcs": WriteTo(f"gs://{gcs_bucket}/edges/part.parquet"),
        "bigquery": WriteTo(f"bigquery://{bigquery_dataset}.edges"),
        "kafka": WriteTo(f"kafka://{kafka_broker.bootstrap}/{topic}?key_field=id"),
    }
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        edges = p | beam.Create(EDGES).with_output_types(Edge)
        for name, sink in sinks.items():
            _ = edges | name >> sink

    sources = {name: sinks[name].location for name in ("local", "s3", "gcs")}
    sources.update({
        "bigquery": f"bigquery://{bigquery_dataset}.edges",
        "kafka": f"kafka://{kafka_broker.bootstrap}/{topic}?max_records={len(EDGES)}&max_seconds=120",
        "postgres": f"{postgres_server.url}?table={edges_table}&partition_column=count&partitions=2",
    })
    with beam.Pipeline(options=PipelineOptions(flags)) as p:
        for name, uri in sources.items():
            parsed = p | f"Read {name}" >> ReadFrom(uri) | f"Parse {name}" >> ParseRecords(Edge, timestamp_field=None)
            parsed.records | f"Records {name}" >> Collect(tmp_path / name)
            parsed.dead_letters | f"Dead {name}" >> Collect(tmp_path / f"dead-{name}")

    assert set(sources) == {"local", "s3", "gcs", "bigquery", "kafka", "postgres"}
    for name in sources:
        assert (sorted(collected(tmp_path / name)), collected(tmp_path / f"dead-{name}")) == (PARSED, []), name
