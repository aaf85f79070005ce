"""The fraud pipeline: exact batch outputs on a hand-made input, and its
streaming path on a TestStream (early and on-time panes, late data)."""

import glob
import json

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import CardProfile, get_pipeline
from hybridflow.pipelines.fraud import BuildCardProfiles, ScoreTransactions
from hybridflow.pipelines.run import run_pipeline
from hybridflow.testing import (
    START,
    CreateEvents,
    EventStream,
    Watermark,
    batch_pipeline,
    streaming_pipeline,
    transactions,
)

# Card A: six transactions of 10, 12, 14 (twice) in the US -> mean 12, sample sd sqrt(3.2).
# Card B: six transactions of 5 in FR.
HISTORY = transactions(
    [("A", a, i) for i, a in enumerate([10, 12, 14, 10, 12, 14])] + [("B", 5, 10 + i, "FR") for i in range(6)]
)
SCORED = transactions(
    [("A", 100, 100), ("A", 11, 200, "DE"), ("C", 1000, 250)] + [("B", 5, 300 + i, "FR") for i in range(10)]
)


def jsonl(records):
    from hybridflow.schemas import to_json

    return "\n".join(to_json(r) for r in records) + "\n"


def read_jsonl(pattern):
    rows = []
    for path in sorted(glob.glob(pattern)):
        with open(path, encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


@pytest.fixture
def batch_run(tmp_path):
    (tmp_path / "history.jsonl").write_text(jsonl(HISTORY))
    (tmp_path / "input.jsonl").write_text(jsonl(SCORED) + "{broken json\n")
    spec = get_pipeline("fraud")
    options = spec.options(
        [
            "--runner=FnApiRunner",
            "--mode=batch",
            f"--input={tmp_path / 'input.jsonl'}",
            f"--history={tmp_path / 'history.jsonl'}",
            f"--output={tmp_path / 'out'}",
        ]
    )
    summary = run_pipeline(spec, options)
    return tmp_path / "out", summary


def test_batch_alerts_are_exact(batch_run):
    out, summary = batch_run
    alerts = sorted((a["rule"], a["key"], a["event_time"]) for a in read_jsonl(str(out / "alerts*.jsonl")))
    assert alerts == [
        ("amount_zscore", "A", "2026-01-01T00:01:40Z"),
        ("new_country", "A", "2026-01-01T00:03:20Z"),
        # the burst at 300..309 s fills the 5-minute windows ending 360 .. 600;
        # the 10-minute cooldown keeps the earliest of each period
        ("velocity", "B", "2026-01-01T00:06:00Z"),
        ("velocity", "B", "2026-01-01T00:10:00Z"),
    ]
    z = next(a for a in read_jsonl(str(out / "alerts*.jsonl")) if a["rule"] == "amount_zscore")
    assert z["value"] == pytest.approx((100 - 12) / 3.2**0.5)
    assert summary.state.endswith("DONE")
    assert summary.records_read == 12 + 13 + 1  # history + scored + one broken line
    assert summary.dead_letters == 1


def test_batch_profiles_and_dead_letters(batch_run):
    out, _ = batch_run
    table = pq.read_table(glob.glob(str(out / "profiles*.parquet"))).to_pylist()
    profiles = {r["card_id"]: r for r in table}
    assert set(profiles) == {"A", "B"}
    assert profiles["A"]["txn_count"] == 6
    assert profiles["A"]["amount_mean"] == 12.0
    assert profiles["A"]["amount_stddev"] == pytest.approx(3.2**0.5, abs=0, rel=1e-15)
    assert profiles["A"]["usual_countries"] == ["US"]
    assert profiles["B"]["usual_countries"] == ["FR"]
    dead = read_jsonl(str(out / "dead_letters*.jsonl"))
    assert [(d["stage"], d["error_type"], d["payload"]) for d in dead] == [
        ("ParseTransactions", "invalid_json", "{broken json")
    ]


def test_batch_aggregates_cover_every_window(batch_run):
    out, _ = batch_run
    rows = read_jsonl(str(out / "aggregates*.jsonl"))
    b = [r for r in rows if r["card_id"] == "B" and r["txn_count"] == 10]
    assert sorted(r["window_end"] for r in b) == [
        "2026-01-01T00:06:00Z", "2026-01-01T00:07:00Z", "2026-01-01T00:08:00Z",
        "2026-01-01T00:09:00Z", "2026-01-01T00:10:00Z",
    ]
    assert {r["pane"] for r in rows} == {"ON_TIME"}


@pytest.mark.streaming
def test_streaming_scoring_panes_and_late_data():
    """Early panes every 5 records, on-time panes as the watermark passes, and a
    record past the allowed lateness on the late output."""
    items = (
        SCORED[:2]  # A at 100 s and 200 s
        + [Watermark(START + 250)]
        + SCORED[3:]  # the B burst at 300..309 s
        + [Watermark(START + 700)]  # windows of A end by 500 s, + 5 min lateness < 700 + 300
        + [Watermark(START + 1200)]
        + transactions([("A", 13, 50)])  # window ends <= 300 s; + 300 s lateness < 1200: too late
    )
    with streaming_pipeline() as p:
        # Beam's bundle-based DirectRunner cannot run a CombinePerKey in a
        # streaming pipeline, so the profiles BuildCardProfiles computes from
        # HISTORY (see test_profiles_transform_exact) are given directly.
        profiles = p | "Profiles" >> beam.Create(
            [
                CardProfile("A", 6, 12.0, 3.2**0.5, ["US"], START + 5),
                CardProfile("B", 6, 5.0, 0.0, ["FR"], START + 15),
            ]
        )
        scored = p | EventStream(items) | ScoreTransactions(profiles, early_count=5)
        assert_that(
            scored["alerts"] | beam.Map(lambda a: (a.rule, a.key, (a.event_time - START).micros // 10**6)),
            equal_to([("amount_zscore", "A", 100), ("new_country", "A", 200),
                      ("velocity", "B", 360), ("velocity", "B", 600)]),
            label="alerts",
        )
        b360 = (
            scored["aggregates"]
            | beam.Filter(lambda r: r.card_id == "B" and (r.window_end - START).micros == 360 * 10**6)
            | beam.Map(lambda r: (r.pane, r.pane_index, r.txn_count))
        )
        assert_that(b360, equal_to([("EARLY", 0, 5), ("EARLY", 1, 10), ("ON_TIME", 2, 10)]), label="panes")
        assert_that(
            scored["late"] | beam.Map(lambda r: (r.key, (r.window_end - START).micros // 10**6)),
            equal_to([("A", 60), ("A", 120), ("A", 180), ("A", 240), ("A", 300)]),
            label="late",
        )


def test_profiles_transform_exact():
    with batch_pipeline() as p:
        profiles = p | CreateEvents(HISTORY) | BuildCardProfiles()
        assert_that(
            profiles | beam.Map(lambda c: (c.card_id, c.txn_count, c.amount_mean, c.usual_countries,
                                           (c.last_seen - START).micros // 10**6)),
            equal_to([("A", 6, 12.0, ["US"], 5), ("B", 6, 5.0, ["FR"], 15)]),
        )
