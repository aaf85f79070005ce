"""iceberg:// with pyiceberg's SQL catalog on SQLite: schema from the record type, day partitions,
one snapshot per bounded write, snapshot reads."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, SchemaError, WriteTo
from hybridflow.testing import START, Collect, batch_pipeline, collected
from tests.io.edge_records import EDGES, Edge

pytest.importorskip("pyiceberg", reason="pip install 'hybridflow[iceberg]'")

PARSED = sorted(r._replace(text=r.text or None) for r in EDGES)


@pytest.fixture
def catalog(tmp_path):
    """``(uri prefix, query)`` of a fresh local SQL catalog: iceberg://local/NS.T?QUERY."""
    (tmp_path / "warehouse").mkdir()
    return f"catalog_uri=sqlite:///{tmp_path}/catalog.db&warehouse=file://{tmp_path}/warehouse"


def _read(uri, out):
    with batch_pipeline() as p:
        parsed = p | ReadFrom(uri) | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(out / "records")
        parsed.dead_letters | "Dead" >> Collect(out / "dead")
    return sorted(collected(out / "records")), collected(out / "dead")


def test_append_partitioned_by_event_date_and_read_snapshots(tmp_path, catalog):
    from hybridflow.io.iceberg import load_table

    uri = f"iceberg://local/fraud.edges?{catalog}"
    with batch_pipeline() as p:
        _ = p | "First" >> beam.Create(EDGES[:3]).with_output_types(Edge) | WriteTo(f"{uri}&partition_by=event_time")
    table = load_table("local", "fraud.edges", {"uri": f"sqlite:///{tmp_path}/catalog.db",
                                                "warehouse": f"file://{tmp_path}/warehouse"})
    first = table.current_snapshot().snapshot_id
    assert [f.name for f in table.schema().fields] == list(Edge._fields)
    assert {f.name: f.required for f in table.schema().fields}["text"] is False
    assert str(table.spec().fields[0].transform) == "day" and table.spec().fields[0].name == "event_time_day"
    with batch_pipeline() as p:
        _ = p | "Second" >> beam.Create(EDGES[3:]).with_output_types(Edge) | WriteTo(uri)
    table = table.refresh()
    assert len(table.snapshots()) == 2  # one snapshot per bounded write
    days = {f.file.partition[0] for f in table.scan().plan_files()}
    assert days == {(START.micros // 1_000_000) // 86400}  # every edge is on 2026-01-01 (days since the epoch)
    everything, dead = _read(uri, tmp_path / "all")
    assert everything == PARSED and dead == []
    reading = ReadFrom(f"{uri}&snapshot_id={first}")
    assert reading._source.snapshot_id == first
    old, dead = _read(f"{uri}&snapshot_id={first}", tmp_path / "first")
    assert old == sorted(PARSED[:3]) and dead == []
    current = ReadFrom(uri)._source.snapshot_id
    assert current == table.current_snapshot().snapshot_id != first


def test_missing_table_and_snapshot_are_one_line_errors(tmp_path, catalog):
    with pytest.raises(ConnectorError, match=r"^iceberg://local/fraud.nope: the table does not exist in catalog "
                                             r"'local'; write to it first"):
        ReadFrom(f"iceberg://local/fraud.nope?{catalog}")
    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES[:1]).with_output_types(Edge) | WriteTo(f"iceberg://local/fraud.t?{catalog}")
    with pytest.raises(ConnectorError, match=r"no snapshot 42; list them"):
        ReadFrom(f"iceberg://local/fraud.t?{catalog}&snapshot_id=42")


def test_records_of_another_type_are_refused_by_an_existing_table(catalog):
    from hybridflow import Transaction
    from hybridflow.testing import transactions

    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES[:1]).with_output_types(Edge) | WriteTo(f"iceberg://local/fraud.t?{catalog}")
    with pytest.raises(ConnectorError, match=r"the table's columns \(id, text, .*\) are not the records' fields "
                                             r"\(txn_id, .*write records of the table's type"):
        _ = batch_pipeline() | beam.Create(transactions([("c1", 1.0, 0)])).with_output_types(Transaction) | WriteTo(
            f"iceberg://local/fraud.t?{catalog}")


def test_unconfigured_catalog_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.pyiceberg.yaml
    with pytest.raises(ConnectorError, match=r"catalog 'nowhere' is not configured .*PYICEBERG_CATALOG__NOWHERE__URI"):
        ReadFrom("iceberg://nowhere/ns.t")


def test_partition_by_must_be_a_timestamp_field(catalog):
    with pytest.raises(SchemaError, match="partition_by='count' for iceberg://local/fraud.t: it must name a required "
                                          "Timestamp field"):
        _ = batch_pipeline() | beam.Create(EDGES).with_output_types(Edge) | WriteTo(
            f"iceberg://local/fraud.t?{catalog}&partition_by=count")


@pytest.mark.parametrize("uri, message", [
    ("iceberg://local/table", "expected iceberg://CATALOG/NAMESPACE.TABLE"),
    ("iceberg://local/ns.t?snapshot=1", "unknown parameter 'snapshot'"),
])
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        ReadFrom(uri)


def test_iceberg_reads_are_bounded(catalog):
    with pytest.raises(InvalidUriError, match="read bounded"):
        ReadFrom(f"iceberg://local/ns.t?{catalog}", bounded=False)


@pytest.mark.streaming
def test_unbounded_input_commits_snapshots_of_everything(tmp_path, catalog):
    from hybridflow.io.iceberg import load_table
    from hybridflow.testing import EventStream, Watermark, streaming_pipeline

    with streaming_pipeline() as p:
        _ = p | EventStream(EDGES[:3] + [Watermark(START + 120)] + EDGES[3:]) | WriteTo(
            f"iceberg://local/fraud.live?{catalog}&partition_by=event_time&every=5")
    table = load_table("local", "fraud.live", {"uri": f"sqlite:///{tmp_path}/catalog.db",
                                               "warehouse": f"file://{tmp_path}/warehouse"})
    assert len(table.snapshots()) >= 1
    everything, dead = _read(f"iceberg://local/fraud.live?{catalog}", tmp_path / "live")
    assert everything == PARSED and dead == []
