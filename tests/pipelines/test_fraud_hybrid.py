"""`hybridflow run fraud --mode hybrid`: the history in files, then the live
transactions in Kafka, in one streaming job on Prism, compared with a batch
run over history ∪ live. The seam's duplicates (history records also in the
topic) are removed; the boundary defaults to just after the history's latest
event time. HybridRead itself, with records produced while the job runs, is
tested in tests/io/test_hybrid.py."""

import glob
import json

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow.errors import InvalidOptionError
from hybridflow.io.hybrid import history_boundary
from hybridflow.io.synthetic import generate_records
from hybridflow.options import resolve_options
from hybridflow.pipelines.fraud import SPEC, SyntheticTransactions
from hybridflow.testing import Collect, collected
from tests._docs import example, run_sh

START = Timestamp.of(1767225600)  # 2026-01-01T00:00:00Z
WINDOW = "fixed:10s"


def transactions(seed, count, start, malformed=0.0):
    config = SyntheticTransactions(seed=seed, count=count, rate=10.0, start=start.to_rfc3339(), cards=40,
                                   population=42, disorder=0, late=0, malformed=malformed, fraud=0.05)
    return list(generate_records(config, 0, count))


def event_ms(line):
    return Timestamp.from_rfc3339(json.loads(line)["event_time"]).micros // 1000


def read_jsonl(pattern):
    return [json.loads(line) for path in sorted(glob.glob(pattern)) for line in open(path) if line.strip()]


def test_the_default_boundary_is_just_after_the_latest_history_event(tmp_path):
    history = transactions(3, 50, START)
    path = tmp_path / "history.jsonl"
    path.write_text("not json\n" + "\n".join(history) + "\n")
    latest = max(Timestamp.from_rfc3339(json.loads(line)["event_time"]) for line in history)
    assert history_boundary(str(path)) == Timestamp(micros=latest.micros + 1)
    with pytest.raises(InvalidOptionError, match="give --boundary=TIME"):
        history_boundary("synthetic://transactions?count=5")


@pytest.mark.parametrize("flags, message", [
    (["--mode=hybrid", "--live=kafka://127.0.0.1:9092/t"], "needs --history=FILES and --live"),
    (["--mode=hybrid", "--history=h.jsonl"], "needs --history=FILES and --live"),
    (["--mode=hybrid", "--history=h.jsonl", "--live=kafka://127.0.0.1:9092/t", "--input=x.jsonl"],
     "--input is not read in --mode=hybrid"),
    (["--mode=streaming", "--live=kafka://127.0.0.1:9092/t"], "--live is for --mode=hybrid"),
    (["--mode=batch", "--boundary=2026-01-01T00:00:00Z"], "--boundary is for --mode=hybrid"),
])
def test_hybrid_flags_are_checked_before_the_job(flags, message):
    with pytest.raises(InvalidOptionError, match=message):
        options = resolve_options(flags, defaults=SPEC.defaults, modes=SPEC.modes, options_class=SPEC.options_class)
        SPEC.validate(options)


@pytest.mark.streaming
@pytest.mark.prism
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cli_hybrid_on_prism_equals_batch_over_history_and_live(
        tmp_path, kafka_broker, kafka_expansion_service, kafka_topic):
    from hybridflow.testing.runners import prism_binary
    from hybridflow.testing.services.kafka import produce
    from hybridflow.testing.services.pytest_plugin import provisioned

    provisioned(prism_binary)
    history = transactions(3, 1500, START, malformed=0.01)  # 150 s of history
    last = max(event_ms(line) for line in history if _parses(line))
    live = transactions(7, 600, Timestamp(micros=(last + 100) * 1000))  # the next 60 s
    (tmp_path / "history.jsonl").write_text("".join(line + "\n" for line in history))
    seam = [line for line in history if _parses(line)][-5:]  # also in the topic: kept once
    topic = kafka_topic()
    # the topic holds the history's last records before the boundary (not read: the read starts at it),
    # then live records, then copies of the seam records, then the rest of the live records
    records = seam + live[:10] + seam + live[10:]
    produce(kafka_broker.bootstrap, topic, [(None, line.encode(), event_ms(line)) for line in records])
    # Kafka keeps milliseconds: the read starts at the first record stamped at or after the boundary's
    # millisecond, so the history's last record (its millisecond) is read again, and deduplicated
    boundary_ms = history_boundary(str(tmp_path / "history.jsonl")).micros // 1000
    after_boundary = len(records) - next(i for i, line in enumerate(records) if event_ms(line) >= boundary_ms)

    out = tmp_path / "out" / "fraud-hybrid"
    result = run_sh(example("hybrid.md", "cli-hybrid", "sh"), tmp_path, timeout=800, env=dict(
        EXPANSION=kafka_expansion_service.address, BROKER=kafka_broker.bootstrap, TOPIC=topic,
        LIVE_RECORDS=str(after_boundary)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline fraud (hybrid) on PrismRunner (Prism): DONE in " in result.stdout, result.stdout
    assert "--boundary=" in result.stderr  # the computed boundary is logged

    expected_alerts, expected_windows = _batch(tmp_path, history + live)
    alerts = sorted(a["alert_id"] for a in read_jsonl(str(out / "alerts*.jsonl")))
    assert alerts == expected_alerts
    windows = sorted((w["card_id"], w["window_start"], w["txn_count"], round(w["total_amount"], 6))
                     for w in read_jsonl(str(out / "aggregates*.jsonl")))
    assert windows == expected_windows
    # the summary: each side's parsed records, and the seam records read twice (5 copies in the topic,
    # and the history's last record, read again from the boundary's millisecond) removed
    dead = [d["payload"] for d in read_jsonl(str(out / "dead_letters*.jsonl"))]  # the live records are all good
    assert 0 < len(dead) < 0.05 * len(history) and len(set(dead)) == len(dead)  # each bad line once
    bad_history = len(dead)
    history_ok, live_ok, removed = len(history) - bad_history, after_boundary, after_boundary - len(live)
    # (the live side's copies are all stamped before the boundary, within the horizon: counted, kept once)
    assert (f"  hybrid           history {history_ok}, live {live_ok}, duplicates removed {removed}, "
            f"live_before_boundary {removed}\n" in result.stdout), result.stdout
    assert f"  records read     {len(history) + after_boundary}\n" in result.stdout  # the history is read once


def _parses(line):
    try:
        record = json.loads(line)
        Timestamp.from_rfc3339(record["event_time"])
        return isinstance(record.get("amount"), (int, float))
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _batch(tmp_path, lines):
    source = tmp_path / "union.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    options = resolve_options(["--runner=FnApiRunner", "--mode=batch", f"--input={source}",
                               f"--history={tmp_path / 'history.jsonl'}", f"--window={WINDOW}"],
                              defaults=SPEC.defaults, options_class=SPEC.options_class)
    with beam.Pipeline(options=options) as p:
        outputs = SPEC.build(p, options)
        outputs["alerts"] | "Alerts" >> Collect(tmp_path / "expected-alerts")
        outputs["aggregates"] | "Aggregates" >> Collect(tmp_path / "expected-aggregates")
    alerts = sorted(a.alert_id for a in collected(tmp_path / "expected-alerts"))
    windows = sorted((w.card_id, w.window_start.to_rfc3339(), w.txn_count, round(w.total_amount, 6))
                     for w in collected(tmp_path / "expected-aggregates"))
    assert alerts and windows
    return alerts, windows
