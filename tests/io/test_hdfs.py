"""hdfs:// through Beam's HadoopFileSystem (WebHDFS) against a real HDFS (MiniDFSCluster): every file
format round-trips, partitioned output included; a wrong NameNode is one line."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidOptionError, ParseRecords, ReadFrom, WriteTo
from hybridflow.testing import Collect, batch_pipeline, collected
from tests.io.edge_records import EDGES, Edge

PARSED = sorted(r._replace(text=r.text or None) for r in EDGES)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet", "avro", "orc"])
def test_every_format_round_trips_through_hdfs(tmp_path, hdfs_cluster, unique_name, fmt):
    flags = hdfs_cluster.pipeline_flags
    with batch_pipeline(*flags) as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"hdfs://{unique_name}/edges.{fmt}")
    assert any(name.startswith("edges-") for name in hdfs_cluster.list(f"/{unique_name}"))
    with batch_pipeline(*flags) as p:
        parsed = p | ReadFrom(f"hdfs://{unique_name}/edges*.{fmt}") | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    assert sorted(collected(tmp_path / "records")) == PARSED and collected(tmp_path / "dead") == []


def test_partitioned_output_on_hdfs(tmp_path, hdfs_cluster, unique_name):
    flags = hdfs_cluster.pipeline_flags
    sink = WriteTo(f"hdfs://{unique_name}/edges.parquet?partition_by=event_time")
    with batch_pipeline(*flags) as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | sink
    assert hdfs_cluster.list(f"/{unique_name}/dt=2026-01-01") == ["hour=00", "hour=01"]
    # Beam's HadoopFileSystem expands wildcards in the last path component only: one partition per read
    with batch_pipeline(*flags) as p:
        for hour in ("00", "01"):
            parsed = p | f"Read{hour}" >> ReadFrom(f"hdfs://{unique_name}/dt=2026-01-01/hour={hour}/edges*.parquet") | (
                f"Parse{hour}" >> ParseRecords(Edge, timestamp_field=None))
            parsed.records | f"Records{hour}" >> Collect(tmp_path / hour)
    assert sorted(collected(tmp_path / "00")) == PARSED[:4] and sorted(collected(tmp_path / "01")) == PARSED[4:]


def test_unreachable_namenode_and_missing_flags_are_one_line(hdfs_cluster):
    with pytest.raises(ConnectorError, match=r"^hdfs://x/\*.jsonl: cannot reach WebHDFS on the NameNode at "
                                             r"127.0.0.1:9 .*check --hdfs_host/--hdfs_port"):
        _ = batch_pipeline("--hdfs_host=127.0.0.1", "--hdfs_port=9", "--hdfs_user=u") | ReadFrom("hdfs://x/*.jsonl")
    with pytest.raises(InvalidOptionError, match="hdfs:// needs --hdfs_host=NAMENODE --hdfs_port=WEBHDFS_PORT"):
        _ = batch_pipeline() | ReadFrom("hdfs://x/*.jsonl")
    full = [*hdfs_cluster.pipeline_flags, "--hdfs_full_urls"]
    with pytest.raises(InvalidOptionError, match="names the NameNode 'other:9870' but --hdfs_host/--hdfs_port say"):
        _ = batch_pipeline(*full) | ReadFrom("hdfs://other:9870/x/*.jsonl")
