import pickle

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import BigtableLookup, CardProfile, Enrich, InMemoryLookup, MissingKeyPolicy, RecordError, SchemaError
from hybridflow.testing import (
    START,
    Collect,
    CreateEvents,
    EventStream,
    Watermark,
    batch_pipeline,
    collected,
    streaming_pipeline,
    transactions,
)
from hybridflow.transforms.lookups.bigtable import cells_to_values

PROFILES = [CardProfile("c1", 10, 50.0, 5.0, ["US"], START)]
TXNS = transactions([("c1", 10.0, 1), ("c2", 20.0, 2)])


def run(policy, p):
    profiles = p | "Profiles" >> beam.Create(PROFILES)
    return p | CreateEvents(TXNS) | Enrich(profiles, key="card_id", prefix="profile_", on_missing=policy)


def test_nulls_policy_passes_everything_through():
    with batch_pipeline() as p:
        out = run(MissingKeyPolicy.NULLS, p)
        assert_that(
            out.records | beam.Map(lambda r: (r.card_id, r.amount, r.profile_amount_mean, r.profile_usual_countries)),
            equal_to([("c1", 10.0, 50.0, ["US"]), ("c2", 20.0, None, None)]),
        )
        assert_that(out.dead_letters, equal_to([]), label="no dead letters")


def test_dead_letter_policy_routes_missing_keys():
    with batch_pipeline() as p:
        out = run("dead_letter", p)
        assert_that(out.records | beam.Map(lambda r: r.card_id), equal_to(["c1"]))
        assert_that(
            out.dead_letters | beam.Map(lambda d: (d.error_type, "c2" in d.message, '"t1"' in d.payload)),
            equal_to([("missing_key", True, True)]),
            label="dead letters",
        )


def test_fail_policy_fails_the_pipeline():
    with pytest.raises(Exception, match="missing_key|no reference row"):
        with batch_pipeline() as p:
            run(MissingKeyPolicy.FAIL, p)


def test_output_schema_and_construction_errors():
    p = batch_pipeline()
    profiles = p | "Profiles" >> beam.Create(PROFILES)
    txns = p | CreateEvents(TXNS)
    out = txns | Enrich(profiles, key="card_id", prefix="p_", fields=["amount_mean"])
    names = [n for n, _ in out.records.element_type._fields]
    assert names[-1] == "p_amount_mean" and "p_txn_count" not in names
    with pytest.raises(SchemaError, match="clash"):
        _ = txns | "Clash" >> Enrich(profiles, key="card_id", fields=["card_id"], table_key="txn_count")
    with pytest.raises(SchemaError, match="on_missing"):
        Enrich(profiles, key="card_id", on_missing="skip")
    with pytest.raises(SchemaError, match="key 'nope'"):
        _ = txns | "BadKey" >> Enrich(profiles, key="nope")


# --------------------------------------------------------------------------
# Lookup handlers (Beam's Enrichment) with the TTL cache


class FakeClock:
    """A clock the test moves by hand (module level: handlers pickle their clock)."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def lookup_rows(out):
    return out.records | "Rows" >> beam.Map(
        lambda r: (r.card_id, r.amount, r.profile_amount_mean, r.profile_usual_countries)
    )


class TestLookupHandler:
    def test_ttl_cache_serves_the_old_row_until_it_expires(self):
        clock = FakeClock()
        handler = InMemoryLookup(PROFILES, key="card_id", cache_ttl="60s", clock=clock)
        with handler:
            assert handler.cached_lookup("c1")["amount_mean"] == 50.0
            handler.put(PROFILES[0]._replace(amount_mean=70.0))
            clock.now += 59
            assert handler.cached_lookup("c1")["amount_mean"] == 50.0  # cached
            assert handler.cached_lookup("c9") is None  # a miss is cached too
            handler.put(CardProfile("c9", 1, 5.0, 0.0, [], START))
            clock.now += 2
            assert handler.cached_lookup("c1")["amount_mean"] == 70.0  # expired: read again
            assert handler.cached_lookup("c9") is None  # cached at +59 s, fresh until +119 s
            clock.now += 60
            assert handler.cached_lookup("c9")["amount_mean"] == 5.0
            assert handler.cache_stats == {"hits": 2, "misses": 4}

    def test_no_cache_reads_every_time_and_cache_is_bounded(self):
        handler = InMemoryLookup(PROFILES, key="card_id")
        with handler:
            handler.put(PROFILES[0]._replace(txn_count=11))
            assert handler.cached_lookup("c1")["txn_count"] == 11
            assert handler.cache_stats == {"hits": 0, "misses": 0}
        small = InMemoryLookup(PROFILES, key="card_id", cache_ttl=60, cache_size=2)
        with small:
            for key in ("a", "b", "c1", "a"):
                small.cached_lookup(key)
            assert len(small._cache) == 2 and small.cache_stats["hits"] == 0  # "a" was evicted

    def test_only_config_is_pickled(self):
        handler = InMemoryLookup(PROFILES, key="card_id", cache_ttl=60)
        with handler:
            handler.cached_lookup("c1")
            copy = pickle.loads(pickle.dumps(handler))
        assert copy._cache is None and copy.cached_lookup("c1")["txn_count"] == 10

    def test_handler_works_in_beams_own_enrichment(self):
        from apache_beam.transforms.enrichment import Enrichment

        with batch_pipeline() as p:
            rows = p | beam.Create([beam.Row(card_id="c1", amount=1.0), beam.Row(card_id="c2", amount=2.0)])
            out = rows | Enrichment(InMemoryLookup(PROFILES, key="card_id"))
            assert_that(
                out | beam.Map(lambda r: (r.card_id, getattr(r, "amount_mean", None))),
                equal_to([("c1", 50.0), ("c2", None)]),
            )

    def test_construction_errors(self):
        with pytest.raises(SchemaError, match="schema"):
            InMemoryLookup([{"card_id": "c1"}], key="card_id")
        with pytest.raises(SchemaError, match="not a field"):
            InMemoryLookup(PROFILES, key="nosuch")
        with pytest.raises(SchemaError, match="cache_ttl"):
            InMemoryLookup(PROFILES, key="card_id", cache_ttl="a while")
        p = batch_pipeline()
        profiles = p | "Profiles" >> beam.Create(PROFILES)
        with pytest.raises(SchemaError, match="exactly one"):
            Enrich(profiles, key="card_id", handler=InMemoryLookup(PROFILES, key="card_id"))
        with pytest.raises(SchemaError, match="exactly one"):
            Enrich(key="card_id")
        with pytest.raises(SchemaError, match="LookupHandler"):
            Enrich(key="card_id", handler=object())


class TestBigtableLookup:
    """The Bigtable round trip (batch and streaming, through Enrich) runs against the emulator in
    tests/io/test_bigtable.py; here: construction, pickling and the cell decoding."""

    def test_constructor_stores_config_only(self):
        handler = BigtableLookup(project="p", instance="i", table="profiles", key="card_id",
                                 schema=CardProfile, column_family="cf", cache_ttl="10m")
        copy = pickle.loads(pickle.dumps(handler))
        assert copy.key == "card_id" and copy.schema is CardProfile and copy._inner is None
        assert [f.name for f in copy.fields()][0] == "card_id"
        with pytest.raises(SchemaError, match="table is required"):
            BigtableLookup(project="p", instance="i", table="", key="card_id", schema=CardProfile)
        with pytest.raises(SchemaError, match="not a field"):
            BigtableLookup(project="p", instance="i", table="t", key="card", schema=CardProfile)

    def test_cells_to_values(self):
        cells = {"profile": {"txn_count": "3", "amount_mean": "2.5"}, "meta": {"source": "batch"}}
        assert cells_to_values(cells, "profile") == {"txn_count": "3", "amount_mean": "2.5"}
        assert cells_to_values(cells, None)["source"] == "batch"
        with pytest.raises(RecordError, match="more than one column family"):
            cells_to_values({"a": {"x": "1"}, "b": {"x": "2"}}, None)


def test_lookup_batch_with_each_policy():
    handler = InMemoryLookup(PROFILES, key="card_id", cache_ttl="5m")
    with batch_pipeline() as p:
        txns = p | CreateEvents(TXNS)
        nulls = txns | "Nulls" >> Enrich(key="card_id", handler=handler, prefix="profile_")
        dead = txns | "Dead" >> Enrich(key="card_id", handler=handler, prefix="profile_", on_missing="dead_letter")
        assert_that(lookup_rows(nulls), equal_to([("c1", 10.0, 50.0, ["US"]), ("c2", 20.0, None, None)]))
        assert_that(
            dead.records | "DeadRows" >> beam.Map(lambda r: r.card_id), equal_to(["c1"]), label="dead_letter records"
        )
        assert_that(
            dead.dead_letters | beam.Map(lambda d: (d.stage, d.error_type, '"t1"' in d.payload)),
            equal_to([("Dead", "missing_key", True)]),
            label="dead letters",
        )


def test_lookup_fail_policy_fails_the_pipeline():
    with pytest.raises(Exception, match="missing_key|no reference row"):
        with batch_pipeline() as p:
            _ = p | CreateEvents(TXNS) | Enrich(
                key="card_id", handler=InMemoryLookup(PROFILES, key="card_id"), on_missing="fail"
            )


def test_lookup_output_is_typed_like_the_side_input_join():
    p = batch_pipeline()
    txns = p | CreateEvents(TXNS)
    by_table = txns | "Table" >> Enrich(p | beam.Create(PROFILES), key="card_id", prefix="p_")
    by_lookup = txns | "Lookup" >> Enrich(key="card_id", handler=InMemoryLookup(PROFILES, key="card_id"), prefix="p_")
    assert by_lookup.records.element_type == by_table.records.element_type
    assert by_lookup.dead_letters.element_type is by_table.dead_letters.element_type


@pytest.mark.streaming
@pytest.mark.parametrize("source", ["table", "lookup"])
def test_parity_batch_equals_streaming(source, tmp_path):
    """Both reference sources give the same rows bounded and via TestStream."""
    txns = transactions([("c1", 10.0, 1), ("c2", 20.0, 2), ("c1", 30.0, 70), ("c3", 5.0, 130)])
    items = txns[:2] + [Watermark(START + 60)] + txns[2:3] + [Watermark(START + 120)] + txns[3:]

    def enrich(p, pcoll):
        if source == "table":
            return pcoll | Enrich(p | "Profiles" >> beam.Create(PROFILES), key="card_id", prefix="profile_",
                                  on_missing="dead_letter")
        return pcoll | Enrich(key="card_id", handler=InMemoryLookup(PROFILES, key="card_id", cache_ttl=60),
                              prefix="profile_", on_missing="dead_letter")

    for name, make in (("batch", batch_pipeline), ("stream", streaming_pipeline)):
        with make() as p:
            events = p | (CreateEvents(txns) if name == "batch" else EventStream(items))
            out = enrich(p, events)
            lookup_rows(out) | Collect(tmp_path / name)
            out.dead_letters | "Reasons" >> beam.Map(lambda d: d.error_type) | "Dead" >> Collect(tmp_path / f"{name}-dead")
    assert sorted(collected(tmp_path / "batch")) == sorted(collected(tmp_path / "stream")) == [
        ("c1", 10.0, 50.0, ["US"]), ("c1", 30.0, 50.0, ["US"])]
    assert collected(tmp_path / "batch-dead") == collected(tmp_path / "stream-dead") == ["missing_key"] * 2


# -- joining on the window of aggregated rows --------------------------------------------

WINDOWED = transactions(
    [("c1", 10.0, 1), ("c1", 30.0, 20), ("c2", 5.0, 30), ("c1", 7.0, 61), ("c2", 1.0, 125), ("c3", 2.0, 10)]
)


@pytest.mark.parametrize("columnar", [False, True])
def test_join_on_key_and_window_of_aggregated_rows(columnar, tmp_path):
    """Each transaction gets its card's mean over its own minute (from WindowedAggregate's rows);
    a (card, minute) the table lacks is a dead letter naming the window; keyless: the minute's max."""
    from hybridflow import WindowedAggregate
    from hybridflow.columnar import ToRecords, ToTables

    with batch_pipeline() as p:
        txns = p | CreateEvents(WINDOWED)
        history = txns | "NotC3" >> beam.Filter(lambda t: t.card_id != "c3")
        if columnar:
            txns = txns | ToTables("event_time", batch_size=4)
            history = history | "HistoryTables" >> ToTables("event_time")
        means = history | "Means" >> WindowedAggregate(
            key="card_id", window="fixed:60s", aggregations={"avg": "mean(amount)"})
        peaks = txns | "Peaks" >> WindowedAggregate(key=None, window="fixed:60s", aggregations={"peak": "max(amount)"})
        by_card = txns | "ByCard" >> Enrich(
            means.aggregates, key="card_id", window="fixed:60s", fields=["avg"], on_missing="dead_letter")
        by_minute = txns | "ByMinute" >> Enrich(peaks.aggregates, window="fixed:60s", prefix="minute_")
        records = by_card.records | "R1" >> ToRecords() if columnar else by_card.records
        minute = by_minute.records | "R2" >> ToRecords() if columnar else by_minute.records
        records | beam.Map(lambda r: (r.card_id, r.amount, r.avg)) | "Out" >> Collect(tmp_path / "out")
        minute | beam.Map(lambda r: (r.amount, r.minute_peak)) | "Minute" >> Collect(tmp_path / "minute")
        by_card.dead_letters | beam.Map(lambda d: d.message) | "Dead" >> Collect(tmp_path / "dead")
    assert collected(tmp_path / "dead") == [
        "no reference row for card_id='c3' in the window starting at 2026-01-01T00:00:00Z"]
    assert sorted(collected(tmp_path / "out")) == [
        ("c1", 7.0, 7.0), ("c1", 10.0, 20.0), ("c1", 30.0, 20.0), ("c2", 1.0, 1.0), ("c2", 5.0, 5.0)]
    assert sorted(collected(tmp_path / "minute")) == [
        (1.0, 1.0), (2.0, 30.0), (5.0, 30.0), (7.0, 7.0), (10.0, 30.0), (30.0, 30.0)]


def test_window_join_is_checked_at_construction():
    with pytest.raises(SchemaError, match="use fixed:SIZE"):
        Enrich(beam.pvalue.PBegin(None), key="card_id", window="sliding:60s/10s")
    with pytest.raises(SchemaError, match="table_key='card' needs key"):
        Enrich(beam.pvalue.PBegin(None), table_key="card", window="fixed:60s")
    with pytest.raises(SchemaError, match="window_start"):
        with batch_pipeline() as p:
            profiles = p | "Profiles" >> beam.Create(PROFILES)
            _ = p | CreateEvents(TXNS) | Enrich(profiles, key="card_id", window="fixed:60s")


def test_a_composite_key_joins_on_every_field_and_a_missing_pair_names_them():
    """key=[...] matches a table row on all of its fields (a per-product,
    per-hour profile); a pair the table lacks follows the missing-key policy,
    and the dead letter names each field's value."""
    rows = [beam.Row(card=c, country=k, limit=limit)
            for c, k, limit in (("c1", "US", 100.0), ("c1", "FR", 7.0), ("c2", "US", 55.0))]
    txns = transactions([("c1", 10.0, 1), ("c1", 20.0, 2), ("c2", 30.0, 3)])
    txns = [t._replace(country=k) for t, k in zip(txns, ("US", "FR", "FR"))]
    with batch_pipeline() as p:
        table = p | "Table" >> beam.Create(rows)
        out = p | CreateEvents(txns) | Enrich(table, key=["card_id", "country"], table_key=["card", "country"],
                                              fields=["limit"], on_missing="dead_letter")
        assert_that(out.records | beam.Map(lambda r: (r.card_id, r.country, r.limit)),
                    equal_to([("c1", "US", 100.0), ("c1", "FR", 7.0)]))
        assert_that(out.dead_letters | beam.Map(lambda d: (d.error_type, d.message.split(": ", 1)[-1])),
                    equal_to([("missing_key", "no reference row for card_id='c2', country='FR'")]), label="dead")


@pytest.mark.parametrize("kwargs, message", [
    ({"key": ["card_id", "country"], "table_key": ["card_id"]}, "as many table fields"),
    ({"key": ["card_id", "card_id"]}, "distinct field names"),
    ({"key": ["card_id", "country"], "window": "fixed:1h"}, "a window join takes one key field"),
])
def test_bad_composite_keys_fail_at_construction(kwargs, message):
    with batch_pipeline() as p:
        table = p | beam.Create(PROFILES)
        with pytest.raises(SchemaError, match=message):
            Enrich(table, **kwargs)


def test_a_composite_key_with_a_lookup_handler_fails_at_construction():
    with pytest.raises(SchemaError, match="composite key joins a table"):
        Enrich(key=["card_id", "country"], handler=InMemoryLookup(PROFILES, key="card_id"))
