"""WindowedAggregate: exact batch results, streaming panes and late data, parity."""

from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from hybridflow import SchemaError, WindowedAggregate
from hybridflow.schemas import register
from hybridflow.testing import (
    START,
    Collect,
    collected,
    CreateEvents,
    EventStream,
    Watermark,
    batch_pipeline,
    streaming_pipeline,
    transactions,
)

AGGS = {"n": "count", "total": "sum(amount)", "top": "max(amount)", "avg": "mean(amount)"}


def secs(t):
    """Whole seconds from START to ``t``."""
    return (t.micros - START.micros) // 1_000_000


def summary(row):
    """(card, window start offset s, window end offset s, pane, index, n, total)."""
    return (
        row.card_id,
        secs(row.window_start),
        secs(row.window_end),
        row.pane,
        row.pane_index,
        row.n,
        row.total,
    )


def final(rows):
    """The last pane of each (key, window) that fired on time: what parity compares.

    Windows with only EARLY panes are speculative: with sessions they may have
    been merged into a larger window before the watermark reached them."""
    last = {}
    for r in rows:
        if r.pane == "EARLY":
            continue
        k = (r.card_id, r.window_start, r.window_end)
        if k not in last or r.pane_index > last[k].pane_index:
            last[k] = r
    return sorted(
        (k[0], secs(k[1]), secs(k[2]), r.n, r.total, r.top, r.avg) for k, r in last.items()
    )


EVENTS = transactions(
    [("c1", 10.0, 5), ("c1", 5.0, 20), ("c2", 1.5, 70), ("c1", 2.0, 65), ("c1", 0.1, 59.999), ("c2", 0.2, 119)]
)


class TestBatch:
    def test_fixed_windows_exact(self):
        with batch_pipeline() as p:
            out = p | CreateEvents(EVENTS) | WindowedAggregate(key="card_id", window="fixed:60s", aggregations=AGGS)
            assert_that(
                out.aggregates | beam.Map(summary),
                equal_to(
                    [
                        ("c1", 0, 60, "ON_TIME", 0, 3, 15.1),
                        ("c1", 60, 120, "ON_TIME", 0, 1, 2.0),
                        ("c2", 60, 120, "ON_TIME", 0, 2, 1.7),
                    ]
                ),
            )
            assert_that(out.late, equal_to([]), label="no late output in batch")

    def test_sliding_windows_match_beam_boundaries(self):
        with batch_pipeline() as p:
            events = transactions([("c1", 10.0, 5), ("c1", 5.0, 40)])
            out = p | CreateEvents(events) | WindowedAggregate(
                key="card_id", window="sliding:60s/30s", aggregations={"n": "count", "total": "sum(amount)",
                                                                       "top": "max(amount)", "avg": "mean(amount)"}
            )
            assert_that(
                out.aggregates | beam.Map(lambda r: (secs(r.window_start), r.n)),
                equal_to([(-30, 1), (0, 2), (30, 1)]),
            )

    def test_session_windows(self):
        events = transactions([("c1", 1, 0), ("c1", 2, 50), ("c1", 4, 200), ("c2", 8, 10)])
        with batch_pipeline() as p:
            out = p | CreateEvents(events) | WindowedAggregate(key="card_id", window="session:60s", aggregations=AGGS)
            assert_that(
                out.aggregates | beam.Map(summary),
                equal_to(
                    [
                        ("c1", 0, 110, "ON_TIME", 0, 2, 3.0),
                        ("c1", 200, 260, "ON_TIME", 0, 1, 4.0),
                        ("c2", 10, 70, "ON_TIME", 0, 1, 8.0),
                    ]
                ),
            )

    def test_approximate_aggregations(self):
        """approx_distinct is exact below 1024 values; percentiles are within 1 %,
        p0/p100 are the exact min/max."""
        events = transactions([("c1", a, i) for i, a in enumerate([5, 1, 9, 3, 7, 1, 5, 100, 2, 4])])
        events = [e._replace(merchant_id=f"m{i % 4}") for i, e in enumerate(events)]
        spec = {"merchants": "approx_distinct(merchant_id)", "amounts": "approx_distinct(amount)",
                "p0": "p0(amount)", "med": "percentile(amount, 0.5)", "p90": "p90(amount)", "p100": "p100(amount)"}
        with batch_pipeline() as p:
            out = p | CreateEvents(events) | WindowedAggregate(key="card_id", window="fixed:60s", aggregations=spec)
            rows = out.aggregates | beam.Map(lambda r: (r.merchants, r.amounts, r.p0, r.med, r.p90, r.p100))
            exact = sorted(e.amount for e in events)

            def check(got):
                (merchants, amounts, p0, med, p90, p100), = got
                assert (merchants, amounts, p0, p100) == (4, 8, 1.0, 100.0)
                assert med == pytest.approx(exact[int(0.5 * 9)], rel=0.01)
                assert p90 == pytest.approx(exact[int(0.9 * 9)], rel=0.01)

            assert_that(rows, check)
        assert [f for f, _ in out.aggregates.element_type._fields][-6:] == list(spec)

    def test_wrong_input_fails_at_construction(self):
        p = batch_pipeline()
        pcoll = p | CreateEvents(EVENTS)
        with pytest.raises(SchemaError, match="nosuch"):
            _ = pcoll | WindowedAggregate(key="nosuch", window="fixed:60s", aggregations={"n": "count"})
        with pytest.raises(SchemaError, match="numeric"):
            _ = pcoll | "2" >> WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"s": "sum(country)"})

    def test_unknown_function_fails_at_construction(self):
        with pytest.raises(SchemaError, match="median"):
            WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"m": "median(amount)"})


@pytest.mark.streaming
class TestStreaming:
    def test_on_time_late_and_too_late(self):
        """Watermark moves; a record within the allowed lateness fires a LATE pane;
        a record past it reaches the late output with its window."""
        items = (
            transactions([("c1", 10.0, 5), ("c1", 5.0, 20)])
            + [Watermark(START + 61)]  # window [0, 60) fires on time
            + transactions([("c1", 1.0, 30)])  # late but within 30 s of lateness
            + [Watermark(START + 100)]  # window [0, 60) is now past 60 + 30
            + transactions([("c1", 7.0, 40), ("c2", 3.0, 90)])  # c1 too late; c2 on time
        )
        with streaming_pipeline() as p:
            out = p | EventStream(items) | WindowedAggregate(
                key="card_id", window="fixed:60s", aggregations=AGGS, allowed_lateness="30s"
            )
            assert_that(
                out.aggregates | beam.Map(summary),
                equal_to(
                    [
                        ("c1", 0, 60, "ON_TIME", 0, 2, 15.0),
                        ("c1", 0, 60, "LATE", 1, 3, 16.0),
                        ("c2", 60, 120, "ON_TIME", 0, 1, 3.0),
                    ]
                ),
            )
            assert_that(
                out.late | beam.Map(lambda r: (r.key, secs(r.window_start), secs(r.window_end),
                                               secs(r.event_time), '"amount": 7.0' in r.record)),
                equal_to([("c1", 0, 60, 40, True)]),
                label="late output",
            )

    def test_early_panes_by_count_accumulating_and_discarding(self):
        items = transactions([("c1", 1.0, 1), ("c1", 2.0, 2), ("c1", 3.0, 3), ("c1", 4.0, 4), ("c1", 5.0, 5)])
        for mode, expected in (
            ("accumulating", [("EARLY", 0, 2, 3.0), ("EARLY", 1, 4, 10.0), ("ON_TIME", 2, 5, 15.0)]),
            ("discarding", [("EARLY", 0, 2, 3.0), ("EARLY", 1, 2, 7.0), ("ON_TIME", 2, 1, 5.0)]),
        ):
            with streaming_pipeline() as p:
                out = p | EventStream(items) | WindowedAggregate(
                    key="card_id",
                    window="fixed:60s",
                    aggregations=AGGS,
                    trigger={"early_count": 2, "accumulation": mode},
                )
                assert_that(
                    out.aggregates | beam.Map(lambda r: (r.pane, r.pane_index, r.n, r.total)),
                    equal_to(expected),
                    label=mode,
                )

    def test_session_windows_merge_in_streaming(self):
        items = transactions([("c1", 1, 0), ("c1", 4, 200), ("c1", 2, 50), ("c2", 8, 10)])
        with streaming_pipeline() as p:
            out = p | EventStream(items) | WindowedAggregate(key="card_id", window="session:60s", aggregations=AGGS)
            assert_that(
                out.aggregates | beam.Map(summary),
                equal_to(
                    [
                        ("c1", 0, 110, "ON_TIME", 0, 2, 3.0),
                        ("c1", 200, 260, "ON_TIME", 0, 1, 4.0),
                        ("c2", 10, 70, "ON_TIME", 0, 1, 8.0),
                    ]
                ),
            )


@pytest.mark.streaming
@pytest.mark.parametrize("window", ["fixed:60s", "sliding:60s/20s", "session:30s"])
def test_parity_batch_equals_streaming(window, tmp_path):
    """The same events, bounded and via TestStream, give identical final panes."""
    import random

    rng = random.Random(7)
    events = transactions(
        [(f"c{rng.randrange(4)}", round(rng.uniform(0, 500), 2), round(rng.uniform(0, 600), 3)) for _ in range(120)]
    )
    rng.shuffle(events)
    spec = dict(key="card_id", window=window, aggregations={
        **AGGS, "sd": "stddev(amount)", "ids": "approx_distinct(txn_id)", "p50": "p50(amount)",
        "p95": "percentile(amount, 0.95)"})

    with batch_pipeline() as p:
        out = p | CreateEvents(events) | WindowedAggregate(**spec)
        out.aggregates | Collect(tmp_path / "batch")
    with streaming_pipeline() as p:
        items = events[:60] + [Watermark(START + 1)] + events[60:]
        out = p | EventStream(items) | WindowedAggregate(**spec, trigger={"early_count": 7})
        out.aggregates | Collect(tmp_path / "stream")
    batch_rows, stream_rows = collected(tmp_path / "batch"), collected(tmp_path / "stream")
    assert batch_rows, "no output"
    assert final(batch_rows) == final(stream_rows)
    # stddev and the approximate aggregations agree to the last bit too
    approx = {(r.card_id, r.window_start): (r.sd, r.ids, r.p50, r.p95) for r in batch_rows}
    assert approx == {(r.card_id, r.window_start): (r.sd, r.ids, r.p50, r.p95)
                      for r in stream_rows if r.pane == "ON_TIME"}


class Reading(NamedTuple):
    machine: str
    sensor: str
    hits: int
    value: float
    event_time: Timestamp


register(Reading)
BIG = 2**53 + 1  # not a float: an int sum through floats would lose it


def readings(rows):
    """(machine, sensor, hits, value, seconds after START) -> Readings."""
    return [Reading(m, s, c, v, START + t) for m, s, c, v, t in rows]


READINGS = readings([
    ("m1", "a", BIG, 1.5, 1), ("m1", "b", 2, 2.5, 2), ("m2", "a", 3, 0.5, 3), ("m1", "a", 4, 1.0, 61),
])
INT_AGGS = {"n": "count", "total": "sum(hits)", "hi": "max(hits)", "lo": "min(hits)", "v": "sum(value)"}


class TestKeysAndTypes:
    def _rows(self, key, tmp_path, name):
        with batch_pipeline() as p:
            out = p | CreateEvents(READINGS) | WindowedAggregate(key=key, window="fixed:60s", aggregations=INT_AGGS)
            out.aggregates | Collect(tmp_path / name)
            element_type = out.aggregates.element_type
        return collected(tmp_path / name), element_type

    def test_keyless_gives_one_row_per_window_with_exact_ints(self, tmp_path):
        rows, element_type = self._rows(None, tmp_path, "keyless")
        assert sorted((secs(r.window_start), r.n, r.total, r.hi, r.lo, r.v) for r in rows) == [
            (0, 3, BIG + 5, BIG, 2, 4.5), (60, 1, 4, 4, 4, 1.0),
        ]
        assert all(type(r.total) is int and type(r.hi) is int for r in rows)
        types = dict(element_type._fields)
        assert "machine" not in types
        assert types["total"] is int and types["hi"] == Optional[int] and types["v"] is float

    def test_composite_key_gives_one_field_per_key_field(self, tmp_path):
        rows, element_type = self._rows(["machine", "sensor"], tmp_path, "composite")
        assert sorted((r.machine, r.sensor, secs(r.window_start), r.n, r.total) for r in rows) == [
            ("m1", "a", 0, 1, BIG), ("m1", "a", 60, 1, 4), ("m1", "b", 0, 1, 2), ("m2", "a", 0, 1, 3),
        ]
        assert [n for n, _ in element_type._fields][:3] == ["machine", "sensor", "window_start"]

    @pytest.mark.streaming
    @pytest.mark.parametrize("key", [None, ("machine", "sensor")])
    def test_keyless_and_composite_streaming_equal_batch(self, key, tmp_path):
        batch, _ = self._rows(key, tmp_path, "batch")
        with streaming_pipeline() as p:
            items = READINGS[:2] + [Watermark(START + 30)] + READINGS[2:]
            out = p | EventStream(items) | WindowedAggregate(key=key, window="fixed:60s", aggregations=INT_AGGS)
            out.aggregates | Collect(tmp_path / "stream")
        assert sorted(map(tuple, collected(tmp_path / "stream"))) == sorted(map(tuple, batch))

    @pytest.mark.parametrize("key, aggregations, named", [
        ("window_start", {"n": "count"}, "window_start"),
        (["machine", "pane"], {"n": "count"}, "pane"),
        ("machine", {"pane_index": "count"}, "pane_index"),
        ("machine", {"machine": "count"}, "machine"),
    ])
    def test_reserved_output_names_are_schema_errors(self, key, aggregations, named):
        with pytest.raises(SchemaError, match=named):
            WindowedAggregate(key=key, window="fixed:60s", aggregations=aggregations)

    def test_bad_keys_are_schema_errors(self):
        with pytest.raises(SchemaError, match="repeated"):
            WindowedAggregate(key=["machine", "machine"], window="fixed:60s", aggregations={"n": "count"})
        with pytest.raises(SchemaError, match="sensorx"):
            with batch_pipeline() as p:
                _ = p | CreateEvents(READINGS) | WindowedAggregate(
                    key=["machine", "sensorx"], window="fixed:60s", aggregations={"n": "count"})
