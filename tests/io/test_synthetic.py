import hashlib
import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from hybridflow import InvalidUriError, ReadFrom
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.fraud import SyntheticTransactions
from hybridflow.testing import Collect, batch_pipeline, collected


def parsed(lines):
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append(None)
    return out


def test_deterministic_from_seed():
    a = list(generate_records(SyntheticTransactions(seed=1), 0, 500))
    b = list(generate_records(SyntheticTransactions(seed=1), 0, 500))
    c = list(generate_records(SyntheticTransactions(seed=2), 0, 500))
    assert a == b and a != c
    # any index range reproduces the same records
    assert list(generate_records(SyntheticTransactions(seed=1), 250, 300)) == a[250:300]


def test_shares_of_malformed_disorder_and_late():
    cfg = SyntheticTransactions(seed=5, malformed=0.1, disorder=0.2, late=0.05, rate=10.0)
    lines = list(generate_records(cfg, 0, 20000))
    records = parsed(lines)
    broken = sum(1 for r in records if r is None or "card_id" not in r or not isinstance(r["amount"], float)
                 or r["amount"] < 0 or r["currency"] == "EURO" or r["event_time"] == "yesterday")
    assert 0.08 < broken / len(lines) < 0.12
    from hybridflow.schemas import to_timestamp

    start = to_timestamp("2026-01-01T00:00:00Z")
    delays = []
    for i, r in enumerate(records):
        if r and r.get("event_time") not in (None, "yesterday"):
            delays.append((start + i / 10.0 - to_timestamp(r["event_time"])).micros / 1e6)
    late = sum(1 for d in delays if d >= cfg.late_delay)
    out_of_order = sum(1 for d in delays if 0.01 < d < cfg.late_delay)
    assert 0.04 < late / len(delays) < 0.06
    assert 0.15 < out_of_order / len(delays) < 0.22


def test_population_is_shared_across_seeds():
    home = {}
    for seed in (1, 2):
        for r in parsed(generate_records(SyntheticTransactions(seed=seed, population=9, cards=5,
                                                                    malformed=0, fraud=0), 0, 2000)):
            home.setdefault(seed, {}).setdefault(r["card_id"], set()).add(r["customer_id"])
    assert home[1] == home[2]


def test_bounded_read_counts():
    with batch_pipeline() as p:
        n = p | ReadFrom("synthetic://transactions?count=12345&seed=3") | beam.combiners.Count.Globally()
        assert_that(n, equal_to([12345]))


@pytest.mark.parametrize("uri, message", [
    ("synthetic://transactions?count=-1", "count=-1"),
    ("synthetic://transactions?malformed=2", "malformed=2.0"),
    ("synthetic://transactions?colour=red", "unknown parameter 'colour'"),
    ("synthetic://transactions?rate=fast", "rate='fast'"),
    ("synthetic://sensors", "unknown generator"),
])
def test_bad_parameters(uri, message):
    with pytest.raises(InvalidUriError, match=message.replace("(", r"\(").replace("?", r"\?")):
        ReadFrom(uri)


def test_boundedness():
    assert SyntheticTransactions(count=10).is_bounded
    assert not SyntheticTransactions(rate=5).is_bounded
    assert not SyntheticTransactions(count=10, duration=5).is_bounded


def test_record_count_is_the_records_before_the_end_of_the_duration():
    assert SyntheticTransactions(count=7, duration=60).record_count == 7
    assert SyntheticTransactions(rate=25, duration=15).record_count == 375
    assert SyntheticTransactions(rate=20, duration=0.11).record_count == 3  # at 0, 0.05 and 0.1 s
    assert SyntheticTransactions(rate=5).record_count is None


def test_unbounded_read_stops_after_its_duration(tmp_path):
    # 15 s at 25/s from a start in the past: PeriodicImpulse ticks every 0.08 s with 2 records
    # each, and its last tick (at 14.96 s) would reach record 375, the first at 15 s or later
    uri = "synthetic://transactions?rate=25&duration=15&start=2026-01-01T00:00:00Z&seed=3&malformed=0"
    with batch_pipeline() as p:
        lines = p | ReadFrom(uri, bounded=False)
        assert not lines.is_bounded
        lines | Collect(tmp_path)
    ids = sorted(json.loads(text)["txn_id"] for text in collected(tmp_path))
    assert ids == [f"t3-{i:010d}" for i in range(375)]


def test_any_start_index_gives_the_same_records_bursts_included():
    # many bursts (fraud=0.3): a read that starts inside one must still see it
    cfg = SyntheticTransactions(seed=3, cards=40, fraud=0.3, late=0.05, disorder=0.3, malformed=0.1)
    whole = list(generate_records(cfg, 0, 400))
    for start in range(0, 40):
        assert list(generate_records(cfg, start, start + 30)) == whole[start:start + 30]
    bursts = [r for r in parsed(whole) if r and r["category"] == "online" and isinstance(r["amount"], float)
              and 0 < r["amount"] < 10]
    assert len(bursts) > 40


@pytest.mark.parametrize("params, first, last, sha256", [
    ({}, 0, 4000, "0e0927561d0fff0152a47aacece303276ba314c131f99f3c52b4892879acadfc"),
    (dict(seed=7, population=42, cards=2000, fraud=0.3, disorder=0.2, late=0.05, malformed=0.1), 1234, 5234,
     "34b04a269c506475ae0cfee92dc0f2f6f07649a563ed180fc33b5cf5bcdf4e95"),
])
def test_records_are_byte_identical_to_earlier_versions(params, first, last, sha256):
    # digests of the text of the generator before fraud moved into its package
    # (main at dc4e359): a cheaper generator must keep every earlier run's data
    text = "\n".join(generate_records(SyntheticTransactions(**params), first, last))
    assert hashlib.sha256(text.encode()).hexdigest() == sha256
