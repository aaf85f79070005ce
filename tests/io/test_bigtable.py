"""bigtable:// against the Bigtable emulator: row keys, families, exact values, and lookups."""

import apache_beam as beam
import pytest

from hybridflow import ConnectorError, InvalidUriError, ParseRecords, ReadFrom, WriteTo
from hybridflow.io.bigtable import row_key, row_to_dict
from hybridflow.testing import START, Collect, batch_pipeline, collected, transactions
from hybridflow.testing.services.bigtable import INSTANCE, PROJECT
from tests.io.edge_records import EDGES, Edge

PARSED = [r._replace(text=r.text or None) for r in EDGES]


def _rows(bigtable_emulator, table_id, prefix=None):
    table = bigtable_emulator.admin_table(table_id)
    kwargs = {}
    if prefix is not None:
        from google.cloud.bigtable.row_set import RowSet

        row_set = RowSet()
        row_set.add_row_range_with_prefix(prefix)
        kwargs["row_set"] = row_set
    return list(table.read_rows(**kwargs))


def _typed(rows, tmp_path):
    with batch_pipeline() as p:
        parsed = p | beam.Create([row_to_dict(r) for r in rows]) | ParseRecords(Edge, timestamp_field=None)
        parsed.records | "Records" >> Collect(tmp_path / "records")
        parsed.dead_letters | "Dead" >> Collect(tmp_path / "dead")
    return sorted(collected(tmp_path / "records")), collected(tmp_path / "dead")


def test_reference_rows_round_trip_exactly(tmp_path, bigtable_emulator, bigtable_table):
    table = bigtable_table(["d"])
    with batch_pipeline() as p:
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=id")
    rows = _rows(bigtable_emulator, table)
    assert sorted(r.row_key for r in rows) == [e.id.encode() for e in EDGES]
    assert b"text" not in rows[2].cells["d"]  # e2: a null is no cell
    records, dead = _typed(rows, tmp_path)
    assert records == sorted(PARSED) and dead == []


def test_time_series_rows_entity_then_reversed_hour_and_families(tmp_path, bigtable_emulator, bigtable_table):
    table = bigtable_table(["agg", "meta"])
    series = [e._replace(id="card-7") for e in EDGES]  # one entity, five times across two hours
    uri = f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=id&time=event_time&bucket=1h&family=agg&family_meta=id,event_time"
    with batch_pipeline() as p:
        _ = p | beam.Create(series).with_output_types(Edge) | WriteTo(uri)
    rows = _rows(bigtable_emulator, table, prefix="card-7#")
    hour0, hour1 = row_key("card-7", START), row_key("card-7", START + 3600)
    assert hour0 == b"card-7#8232774399999" and hour1 == b"card-7#8232770799999"
    assert [r.row_key for r in rows] == [hour1, hour0]  # newest bucket first
    for row in rows:
        assert set(row.cells) == {"agg", "meta"}
        assert set(row.cells["meta"]) == {b"id", b"event_time"}
    # the hour-00 row holds the last write of that bucket (e3, the latest event of the hour)
    latest = {q.decode(): c[0].value.decode() for q, c in rows[1].cells["agg"].items()}
    assert latest["count"] == str(-(2**63))
    assert rows[1].cells["agg"][b"count"][0].timestamp.timestamp() == pytest.approx(float(START + 3599.999))


@pytest.mark.streaming
def test_bigtable_lookup_enriches_from_rows_written_by_the_sink(tmp_path, bigtable_emulator, bigtable_table):
    """hybridflow's BigtableLookup, through Enrich, reads the rows WriteTo("bigtable://...") wrote:
    exact values of every type, a missing key per policy, the same rows bounded and streaming."""
    from hybridflow import BigtableLookup, CardProfile, Enrich
    from hybridflow.testing import CreateEvents, EventStream, Watermark, streaming_pipeline

    table = bigtable_table(["profile"])
    profiles = [
        CardProfile("c1", 12, 40.5, 3.25, ["US", "CA"], START),
        CardProfile("c2", 1, 9.99, 0.0, [], START + 60),
    ]
    with batch_pipeline() as p:
        _ = p | beam.Create(profiles) | WriteTo(f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=card_id&family=profile")
    txns = transactions([("c1", 10.0, 0), ("c2", 20.0, 1), ("c3", 30.0, 70), ("c1", 5.0, 130)])
    items = txns[:2] + [Watermark(START + 60)] + txns[2:3] + [Watermark(START + 120)] + txns[3:]

    def enriched(rows):
        return sorted((r.card_id, r.amount, r.profile_txn_count, r.profile_amount_mean, r.profile_amount_stddev,
                       r.profile_usual_countries, r.profile_last_seen) for r in rows)

    for name, make, source in (("batch", batch_pipeline, CreateEvents(txns)),
                               ("stream", streaming_pipeline, EventStream(items))):
        handler = BigtableLookup(project=PROJECT, instance=INSTANCE, table=table, key="card_id", schema=CardProfile,
                                 column_family="profile", cache_ttl="10m")
        with make() as p:
            out = p | source | Enrich(key="card_id", handler=handler, prefix="profile_", on_missing="dead_letter")
            out.records | "Records" >> Collect(tmp_path / name)
            out.dead_letters | "Reasons" >> beam.Map(lambda d: (d.error_type, '"c3"' in d.payload)) | (
                "Dead" >> Collect(tmp_path / f"{name}-dead"))
    expected = [("c1", 5.0, 12, 40.5, 3.25, ["US", "CA"], START), ("c1", 10.0, 12, 40.5, 3.25, ["US", "CA"], START),
                ("c2", 20.0, 1, 9.99, 0.0, [], START + 60)]
    assert enriched(collected(tmp_path / "batch")) == enriched(collected(tmp_path / "stream")) == expected
    assert collected(tmp_path / "batch-dead") == collected(tmp_path / "stream-dead") == [("missing_key", True)]


def test_missing_table_and_family_are_one_line_errors(bigtable_emulator, bigtable_table):
    uri = f"bigtable://{PROJECT}/{INSTANCE}/nope?key=id"
    p = batch_pipeline()
    with pytest.raises(ConnectorError, match=r"^bigtable://hybridflow-test/test-instance/nope: the table does not exist; "
                                             r"create it with column families d"):
        _ = p | beam.Create(EDGES).with_output_types(Edge) | WriteTo(uri)
    table = bigtable_table(["other"])
    with pytest.raises(ConnectorError, match=rf"/{table}: the table has no column family d; add it"):
        _ = batch_pipeline() | beam.Create(EDGES).with_output_types(Edge) | WriteTo(
            f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=id")


@pytest.mark.parametrize(
    "uri, message",
    [
        ("bigtable://p/i?key=id", "expected bigtable://PROJECT/INSTANCE/TABLE"),
        ("bigtable://p/i/t", r"add \?key=FIELD"),
        ("bigtable://p/i/t?key=id&bucket=soon", "bucket='soon'"),
        ("bigtable://p/i/t?key=id&colum_family=x", "unknown parameter 'colum_family'"),
    ],
)
def test_bad_uris_are_usage_errors(uri, message):
    with pytest.raises(InvalidUriError, match=message):
        WriteTo(uri)


def test_bigtable_is_not_a_source():
    with pytest.raises(InvalidUriError, match="lookup target, not a source"):
        ReadFrom("bigtable://p/i/t")
