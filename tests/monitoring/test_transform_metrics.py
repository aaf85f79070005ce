"""Every transform reports its metrics per step: records in/out, dead letters by
reason, late records, enrichment hits/misses and cache hits/misses, and the
event-time lag distribution; the same counts bounded and as a stream.

The stream runs on Prism: Beam's bundle-based DirectRunner keeps the metrics
of a streaming DoFn's first bundle only (its later bundles count into the
first bundle's container after that was committed), so its numbers are wrong.
"""

import time

import apache_beam as beam
import pytest

from hybridflow import (
    CardProfile,
    Dedupe,
    Enrich,
    InMemoryLookup,
    ParseRecords,
    ThresholdAlerts,
    Transaction,
    WindowedAggregate,
)
from hybridflow.metrics import LAG, query_metrics, step_names
from hybridflow.schemas import to_json
from hybridflow.testing import START, EventStream, Watermark, batch_pipeline, transactions
from tests.monitoring.conftest import prism_pipeline

TXNS = transactions([("c1", 10.0, 5), ("c1", 20.0, 20), ("c2", 5.0, 70), ("c3", 1.0, 80)])
PROFILES = [CardProfile("c1", 12, 40.0, 8.0, ["US"], START)]


def _graph(records):
    """Dedupe -> Enrich (cached lookup) -> WindowedAggregate -> ThresholdAlerts."""
    unique = records | "Dedupe" >> Dedupe("txn_id", within="1h")
    enriched = unique | "Enrich" >> Enrich(
        key="card_id", handler=InMemoryLookup(PROFILES, key="card_id", cache_ttl="5m"), prefix="p_"
    )
    windows = enriched.records | "Window" >> WindowedAggregate(
        key="card_id", window="fixed:60s", aggregations={"n": "count"}
    )
    _ = windows.aggregates | "Alerts" >> ThresholdAlerts(
        [{"name": "busy", "field": "n", "op": ">=", "threshold": 2}], key="card_id"
    )
    return windows


def _run(p):
    result = p.run()
    result.wait_until_finish()
    return query_metrics(result, step_names(p))


def _check_lag(snapshot, step, count):
    lag = snapshot.distributions[step][LAG]
    assert lag.count == count, (step, lag)
    expected_ms = max(0.0, (time.time() - START.micros / 1e6) * 1000)
    # event times are in the past (or clamped to 0): the lag is now - event time
    assert 0 <= lag.min <= lag.max <= expected_ms + 1000
    assert lag.max >= expected_ms - 600_000  # the earliest record is START + 5s .. + 80s


def _check(m, expected, lag_counts):
    """``expected``: {step: {counter: value}}; ``lag_counts``: {step: records measured}."""
    for step, counters in expected.items():
        got = {name: m.by_step.get(step, {}).get(name, 0) for name in counters}
        assert got == counters, step
    for step, count in lag_counts.items():
        _check_lag(m, step, count)


def _expected(records, hits, windows_in):
    """Counts after ParseRecords; ``records`` distinct ids of which ``hits`` are c1."""
    return {
        "Enrich/Join": {"records_in": records, "records_out": records, "enrich_hits": hits,
                        "enrich_misses": records - hits},
        "Alerts/Evaluate": {"records_in": 3, "records_out": 1, "alerts.busy": 1},
    }, {"Dedupe/KeepFirst": records + 1, "Enrich/Join": records, "Alerts/Evaluate": 3, **windows_in}


def test_batch_metrics_per_step():
    lines = [to_json(t) for t in TXNS] + ["not json", '{"txn_id": "x"}', to_json(TXNS[0])]
    p = batch_pipeline()
    parsed = p | beam.Create(lines) | "Parse" >> ParseRecords(Transaction)
    _graph(parsed.records)
    m = _run(p)
    expected, lags = _expected(4, 2, {"Window/AssignWindows": 4})
    expected.update({
        "Parse/Parse": {"records_in": 7, "records_out": 5, "dead_letters": 2,
                        "dead_letters.invalid_json": 1, "dead_letters.missing_field": 1},
        "Dedupe/KeepFirst": {"records_in": 5, "records_out": 4, "duplicates": 1, "filtered": 1},
        "Window/AssignWindows": {"records_in": 4},
        "Window/ToRows": {"records_out": 3},  # windows: c1 [0, 60), c2 and c3 [60, 120)
    })
    _check(m, expected, {**lags, "Parse/Parse": 5})  # dead letters have no event time
    # c1, c2, c3 go to the backend once each; the second c1 is a cache hit
    assert (m.get("enrich_cache_hits"), m.get("enrich_cache_misses")) == (1, 3)


@pytest.mark.streaming
@pytest.mark.prism
def test_streaming_metrics_per_step_and_late_records(prism_flags):
    late = TXNS[0]._replace(txn_id="late", event_time=START + 30)  # its window closed at 60
    p = prism_pipeline(prism_flags, "--streaming")
    _graph(p | EventStream(TXNS + [TXNS[0], Watermark(START + 200), late]))
    m = _run(p)
    expected, lags = _expected(5, 3, {"Window/Aggregate": 5})
    expected.update({
        "Dedupe/KeepFirst": {"records_in": 6, "records_out": 5, "duplicates": 1, "filtered": 1},
        "Window/Aggregate": {"records_in": 5, "records_out": 3, "late_records": 1},
    })
    _check(m, expected, lags)
    assert (m.get("enrich_cache_hits"), m.get("enrich_cache_misses")) == (2, 3)
