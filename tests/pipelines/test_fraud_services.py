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
from hybridflow.io.synthetic import generate_records
from hybridflow.pipelines.fraud import SyntheticTransactions
from hybridflow.options import resolve_options
from hybridflow.pipelines.fraud import SPEC
from hybridflow.pipelines.run import construct
from hybridflow.testing import Collect, collected
from hybridflow.testing.services.bigtable import INSTANCE, PROJECT

pytestmark = [pytest.mark.streaming, pytest.mark.slow, pytest.mark.timeout(900)]

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
    return [(line, start_ms + int(i * 1000 / rate)) for i, line in enumerate(generate_records(config, 0, count))]


def batch_expectation(tmp_path, lines, reference=(f"--history={HISTORY}",)):
    """Alerts and aggregates of the fraud pipeline in batch over the same lines (FnApiRunner)."""
    source = tmp_path / "live.jsonl"
    source.write_text("".join(line + "\n" for line in lines))
    options = resolve_options(["--runner=FnApiRunner", "--mode=batch", f"--input={source}", *reference,
                               f"--window={WINDOW}"], defaults=SPEC.defaults, options_class=SPEC.options_class)
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


def run_streaming(flags, done, timeout=480.0, build=None, started=None):
    """Runs the fraud pipeline (or ``build(p, options)``) in streaming with ``flags`` until ``done()``
    or ``timeout`` (generous: on a loaded 2-core machine the job, its Kafka expansion service and the
    last windows' watermark can take minutes; done() ends it as soon as the outputs are complete);
    cancels it. ``started()``, if given, is called once the job runs."""
    options = resolve_options(["--mode=streaming", *flags], defaults=SPEC.defaults, options_class=SPEC.options_class)
    p = beam.Pipeline(options=options)
    (build or (lambda p, options: construct(p, SPEC, options)))(p, options)
    result = p.run()
    deadline = time.monotonic() + timeout
    try:
        if started is not None:
            started()
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


def test_fraud_streaming_from_pubsub_on_the_bundle_runner(tmp_path, pubsub_emulator, pubsub_topic, bigtable_emulator,
                                                          bigtable_table, bigquery_emulator, bigquery_dataset,
                                                          gcs_emulator):
    # Beam's local Pub/Sub read holds the watermark at the wall clock, so the transactions happen in
    # the near future: every window is still open when its records arrive (on-time panes, as in batch).
    # They are published only once the job is live end to end (a probe line has come back as a dead
    # letter), so however long the start-up takes, it cannot make them late.
    # The bundle-based runner (the only local runner with Pub/Sub reads) cannot run a GroupByKey on
    # a bounded branch of a streaming pipeline, which rules out building profiles in the same
    # pipeline and even reading them from files (Beam's text read groups its splits). So the batch
    # layer computes the profiles first and the stream scores with the fraud pipeline's
    # ScoreTransactions over them, from memory; the batch run reads the same profiles with --profiles.
    from hybridflow import ParseRecords, ReadFrom, Transaction, WriteTo
    from hybridflow.pipelines.fraud import BuildCardProfiles, ScoreTransactions

    with beam.Pipeline(options=resolve_options(["--runner=FnApiRunner", "--mode=batch"])) as p:
        built = p | ReadFrom(HISTORY) | ParseRecords(Transaction)
        profile_rows = built.records | BuildCardProfiles()
        profile_rows | WriteTo(f"{tmp_path}/profiles.jsonl")
        profile_rows | Collect(tmp_path / "profiles")
    profile_list = collected(tmp_path / "profiles")
    profiles = f"--profiles={tmp_path}/profiles*.jsonl"
    (txns, txns_sub), (alerts, alerts_sub), (probes, probes_sub) = pubsub_topic(), pubsub_topic(), pubsub_topic()
    table = bigtable_table(["agg"])
    bq_table = f"{bigquery_dataset}.card_windows"
    flags = [
        "--runner=BundleBasedDirectRunner",
        f"--project={bigquery_emulator.project}", f"--temp_location=gs://{gcs_emulator.default_bucket}/tmp",
    ]

    def build(p, options):
        from hybridflow import CardProfile

        txns = p | ReadFrom(f"pubsub://{txns_sub}?timestamp_attribute=ts") | ParseRecords(Transaction)
        txns.dead_letters | "Probes" >> WriteTo(f"pubsub://{probes}")
        reference = p | "Profiles" >> beam.Create(profile_list, reshuffle=False).with_output_types(CardProfile)
        scored = txns.records | ScoreTransactions(reference, window=WINDOW, cooldown=0)
        scored["alerts"] | "Alerts" >> WriteTo(
            f"pubsub://{alerts}?timestamp_attribute=ts&id_attribute=alert_id&id_field=alert_id")
        scored["aggregates"] | "Bigtable" >> WriteTo(
            f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=card_id&time=window_end&bucket=10s&family=agg")
        scored["aggregates"] | "BigQuery" >> WriteTo(f"bigquery://{bq_table}?partition_by=window_end")
    received, row_counts, stream = [], [], {}

    def started():  # probe until the job is live, then publish 20 s of events 10-20 s ahead of the clock
        deadline = time.monotonic() + 180
        while not pubsub_emulator.pull(probes_sub, 10, timeout=1):
            assert time.monotonic() < deadline, "the streaming job never came up"
            pubsub_emulator.publish(txns, [(b"probe: not json", {"ts": str(int(time.time() * 1000))})])
        start = Timestamp.of((int(time.time()) // 10 + 2) * 10)
        stream["lines"] = live_transactions(start, count=200)
        stream["last_window_end"] = float(start) + 30
        pubsub_emulator.publish(txns, [(line.encode(), {"ts": str(ms)}) for line, ms in stream["lines"]])

    def done():  # every window has closed on the wall clock and the sinks stopped growing
        received.extend(pubsub_emulator.pull(alerts_sub, 1000, timeout=0.5))
        row_counts.append(len(list(bigtable_emulator.admin_table(table).read_rows())))
        return time.time() > stream["last_window_end"] + 3 and row_counts[-1] > 0 and row_counts[-3:] == [
            row_counts[-1]] * 3

    run_streaming(flags, done, timeout=330, build=build, started=started)
    received.extend(pubsub_emulator.pull(alerts_sub, 1000, timeout=1))
    # cooldown 0: Pub/Sub does not keep order, and ThresholdAlerts' cooldown in streaming keeps the
    # first alert to *arrive* (batch: the earliest in event time), so with a cooldown the two may differ
    expected_alerts, expected_aggregates = batch_expectation(tmp_path, [line for line, _ in stream["lines"]],
                                                             [profiles, "--cooldown=0"])
    expected_windows = sorted(aggregate_key(a._asdict()) for a in expected_aggregates)
    assert sorted(m.attributes["alert_id"] for m in received) == sorted(a.alert_id for a in expected_alerts)
    by_id = {a.alert_id: a for a in expected_alerts}
    for message in received:
        assert message.attributes["ts"] == by_id[message.attributes["alert_id"]].event_time.to_rfc3339()
        assert json.loads(message.data)["rule"] == by_id[message.attributes["alert_id"]].rule
    assert bigtable_aggregates(bigtable_emulator, table) == expected_windows
    assert bigquery_aggregates(bigquery_emulator, bq_table) == expected_windows
