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


def test_enrichment_lookups_from_rows_written_by_the_sink(tmp_path, bigtable_emulator, bigtable_table):
    # TODO(issue-3): once hybridflow's handler-based Enrich with its Bigtable handler is merged,
    # run this lookup through Enrich; until then it checks Beam's Enrichment + BigTableEnrichmentHandler,
    # the pieces that handler wraps, against rows written by WriteTo("bigtable://...").
    from apache_beam.transforms.enrichment import Enrichment
    from apache_beam.transforms.enrichment_handlers.bigtable import BigTableEnrichmentHandler

    from hybridflow import CardProfile

    table = bigtable_table(["profile"])
    profiles = [
        CardProfile("c1", 12, 40.5, 3.25, ["US", "CA"], START),
        CardProfile("c2", 1, 9.99, 0.0, [], START + 60),
    ]
    with batch_pipeline() as p:
        _ = p | beam.Create(profiles) | WriteTo(f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=card_id&family=profile")
    txns = transactions([("c1", 10.0, 0), ("c2", 20.0, 1), ("c3", 30.0, 2)])
    handler = BigTableEnrichmentHandler(PROJECT, INSTANCE, table, row_key="card_id")
    with batch_pipeline() as p:
        _ = (p
             | beam.Create([beam.Row(card_id=t.card_id, amount=t.amount) for t in txns])
             | Enrichment(handler)
             | beam.Map(lambda r: r._asdict())
             | Collect(tmp_path / "out"))
    got = {r["card_id"]: r for r in collected(tmp_path / "out")}
    assert got["c1"]["profile"] == {"card_id": "c1", "txn_count": "12", "amount_mean": "40.5",
                                    "amount_stddev": "3.25", "usual_countries": '["US", "CA"]',
                                    "last_seen": "2026-01-01T00:00:00Z"}
    assert got["c2"]["profile"]["usual_countries"] == "[]"
    assert "profile" not in got["c3"]  # a missing key passes through unchanged


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
