"""End to end against real services: the fraud pipeline in streaming reads transactions from Kafka
(on Prism) or Pub/Sub (on the bundle-based DirectRunner), writes alerts back to Kafka / Pub/Sub and
window aggregates to Bigtable and BigQuery; the services are read back and compared with the same
pipeline run in batch over the same transactions."""

import json
import time

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow.io.bigtable import encode_value, row_to_dict
from hybridflow.io.synthetic import SyntheticTransactions, generate_transactions
from hybridflow.options import resolve_options
from hybridflow.pipelines.fraud import SPEC
from hybridflow.pipelines.run import construct
from hybridflow.testing import Collect, collected
from hybridflow.testing.services.bigtable import INSTANCE, PROJECT

pytestmark = [pytest.mark.streaming, pytest.mark.slow]

POPULATION = "population=42&cards=40"
HISTORY = f"synthetic://transactions?count=3000&seed=42&{POPULATION}&malformed=0"
WINDOW = "fixed:10s"
AGGREGATE_FIELDS = ("card_id", "window_start", "window_end", "txn_count", "total_amount", "max_amount", "countries")


def live_transactions(start: Timestamp, count: int = 600, rate: float = 10.0):
    """(json line, event time ms) in event-time order: no disorder, no late records (so a streaming run
    gives exactly the batch run's panes), 1% malformed, 5% fraud."""
    config = SyntheticTransactions(seed=7, count=count, rate=rate, start=start.to_rfc3339(), cards=40, population=42,
                                   disorder=0, late=0, malformed=0.01, fraud=0.05)
    start_ms = start.micros // 1000
    return [(line, start_ms + int(i * 1000 / rate)) for i, line in enumerate(generate_transactions(config, 0, count))]


def batch_expectation(tmp_path, lines):
    """Alerts and aggregates of the fraud pipeline in batch over the same lines (FnApiRunner)."""
    source = tmp_path / "live.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    options = resolve_options(["--runner=FnApiRunner", "--mode=batch", f"--input={source}", f"--history={HISTORY}",
                               f"--window={WINDOW}"], defaults=SPEC.defaults)
    with beam.Pipeline(options=options) as p:
        outputs = SPEC.build(p, options)
        outputs["alerts"] | "Alerts" >> Collect(tmp_path / "expected-alerts")
        outputs["aggregates"] | "Aggregates" >> Collect(tmp_path / "expected-aggregates")
    alerts = collected(tmp_path / "expected-alerts")
    aggregates = collected(tmp_path / "expected-aggregates")
    assert alerts and aggregates, "the scenario must raise alerts and produce windows"
    return alerts, aggregates


def aggregate_key(values) -> tuple:
    """An aggregate as comparable text, whatever it was read back from."""
    return tuple(values[f] if isinstance(values[f], str) else encode_value(values[f]).decode() for f in AGGREGATE_FIELDS)


def bigtable_aggregates(bigtable_emulator, table_id):
    return sorted(aggregate_key(row_to_dict(r)) for r in bigtable_emulator.admin_table(table_id).read_rows())


def bigquery_aggregates(bigquery_emulator, table):
    rows = bigquery_emulator.client().query(f"SELECT * FROM `{table}`").result()
    out = []
    for row in rows:
        values = dict(row)
        for f in ("window_start", "window_end"):
            values[f] = Timestamp.from_utc_datetime(values[f]).to_rfc3339()
        out.append(aggregate_key(values))
    return sorted(out)


def run_streaming(flags, done, timeout=240.0):
    """Runs the fraud pipeline in streaming with ``flags`` until ``done()`` or ``timeout``; cancels it."""
    options = resolve_options(["--mode=streaming", *flags], defaults=SPEC.defaults)
    p = beam.Pipeline(options=options)
    construct(p, SPEC, options)
    result = p.run()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not done():
            if result.state in ("FAILED", "DONE", "CANCELLED") or str(result.state).endswith(("FAILED", "DONE")):
                raise AssertionError(f"the streaming pipeline stopped: {result.state}")
            time.sleep(2)
        time.sleep(3)  # anything beyond the expected would show up now
    finally:
        result.cancel()


def test_fraud_streaming_from_kafka_on_prism(tmp_path, kafka_broker, kafka_expansion_service, kafka_topic,
                                            bigtable_emulator, bigtable_table, bigquery_emulator, bigquery_dataset,
                                            gcs_emulator):
    from hybridflow.testing.services.kafka import consume, produce

    lines = live_transactions(Timestamp.of(1767225600))  # 2026-01-01: the watermark reaches it at once
    expected_alerts, expected_aggregates = batch_expectation(tmp_path, [line for line, _ in lines])
    expected_windows = sorted(aggregate_key(a._asdict()) for a in expected_aggregates)

    txns, alerts_topic = kafka_topic(), kafka_topic()
    produce(kafka_broker.bootstrap, txns, [(None, line.encode(), ms) for line, ms in lines])
    table = bigtable_table(["agg"])
    bq_table = f"{bigquery_dataset}.card_windows"
    flags = [
        "--runner=PrismRunner",
        f"--kafka_expansion_service={kafka_expansion_service.address}",
        f"--project={bigquery_emulator.project}", f"--temp_location=gs://{gcs_emulator.default_bucket}/tmp",
        f"--input=kafka://{kafka_broker.bootstrap}/{txns}",
        f"--history={HISTORY}", f"--window={WINDOW}", f"--output={tmp_path / 'out'}",
        f"--sink=alerts=kafka://{kafka_broker.bootstrap}/{alerts_topic}?key_field=key",
        f"--sink=aggregates=bigtable://{PROJECT}/{INSTANCE}/{table}?key=card_id&time=window_end&bucket=10s&family=agg",
        f"--sink=aggregates=bigquery://{bq_table}?partition_by=window_end",
    ]

    def done():
        rows = list(bigtable_emulator.admin_table(table).read_rows())
        return len(rows) >= len(expected_windows) and len(
            consume(kafka_broker.bootstrap, alerts_topic, len(expected_alerts), timeout=2)) >= len(expected_alerts)

    run_streaming(flags, done)
    alerts = consume(kafka_broker.bootstrap, alerts_topic, len(expected_alerts) + 1, timeout=5)
    assert sorted(json.loads(m.value)["alert_id"] for m in alerts) == sorted(a.alert_id for a in expected_alerts)
    assert {m.key.decode() for m in alerts} == {a.key for a in expected_alerts}
    assert bigtable_aggregates(bigtable_emulator, table) == expected_windows
    assert bigquery_aggregates(bigquery_emulator, bq_table) == expected_windows
