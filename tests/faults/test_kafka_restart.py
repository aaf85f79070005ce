"""Issue 15 item 12: the Kafka broker crashes (SIGKILL) and comes back mid-stream, on Prism.

A streaming job reads transactions from Kafka, drops re-deliveries (``Dedupe`` on ``txn_id``) and
writes every record to Kafka (not idempotent: at least once) and to Bigtable keyed by ``txn_id``
(idempotent: a re-delivery rewrites the same row). The broker is killed after the first half has
gone through and restarted on its port and data directory; the second half is produced after the
restart. The job must keep running; every record must reach both sinks, Bigtable exactly once.
The broker is the session's: the test restarts it before it ends, whatever happens.
"""

import json
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import Dedupe, ParseRecords, ReadFrom, WriteTo
from hybridflow.schemas import Transaction, to_json
from hybridflow.testing import transactions
from hybridflow.testing.services.bigtable import INSTANCE, PROJECT
from hybridflow.testing.services.kafka import consume, produce

pytestmark = [pytest.mark.faults, pytest.mark.streaming, pytest.mark.prism, pytest.mark.slow, pytest.mark.timeout(600)]

HALF = 40


def _messages(records):
    return [(r.txn_id.encode(), to_json(r).encode(), r.event_time.micros // 1000) for r in records]


def _wait(what, condition, result, timeout=240.0):
    """Polls ``condition()`` while the job runs; fails if the job stops or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        state = str(result.state)
        assert not state.endswith(("FAILED", "DONE", "CANCELLED")), f"the job stopped ({state}) waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout:.0f}s (job {state})"
        time.sleep(1)


def test_kafka_broker_killed_and_restarted_mid_stream_on_prism(prism_server, kafka_broker, kafka_expansion_service,
                                                              kafka_topic, bigtable_emulator, bigtable_table):
    source, sink = kafka_topic(), kafka_topic()
    table = bigtable_table(["d"])
    records = transactions([(f"c{i % 7}", 1.0 + i, i) for i in range(2 * HALF)])
    produce(kafka_broker.bootstrap, source, _messages(records[:HALF]))

    p = beam.Pipeline(options=PipelineOptions(prism_server.flags(
        "--streaming", f"--kafka_expansion_service={kafka_expansion_service.address}")))
    parsed = p | ReadFrom(f"kafka://{kafka_broker.bootstrap}/{source}") | ParseRecords(Transaction)
    unique = parsed.records | Dedupe("txn_id", within="1h")
    _ = unique | "Kafka" >> WriteTo(f"kafka://{kafka_broker.bootstrap}/{sink}?key_field=txn_id")
    _ = unique | "Bigtable" >> WriteTo(f"bigtable://{PROJECT}/{INSTANCE}/{table}?key=txn_id&family=d")

    def written():
        return {m.key.decode() for m in consume(kafka_broker.bootstrap, sink, timeout=1)}

    def rows():
        return {r.row_key.decode() for r in bigtable_emulator.admin_table(table).read_rows()}

    result = p.run()
    try:
        _wait("first half", lambda: len(written()) >= HALF and len(rows()) >= HALF, result)
        kafka_broker.halt(kill=True)
        try:
            time.sleep(5)  # the outage: the job's consumer and producer see connections refused
            assert not str(result.state).endswith(("FAILED", "DONE", "CANCELLED")), result.state
        finally:
            kafka_broker.restart()
        produce(kafka_broker.bootstrap, source, _messages(records[HALF:]))
        _wait("second half", lambda: len(written()) >= 2 * HALF and len(rows()) >= 2 * HALF, result)
    finally:
        result.cancel()

    ids = {r.txn_id for r in records}
    messages = consume(kafka_broker.bootstrap, sink, 2 * HALF)
    # Kafka sink, at least once: every record, duplicates counted
    assert {m.key.decode() for m in messages} == ids
    assert {json.loads(m.value)["txn_id"] for m in messages} == ids
    duplicates = len(messages) - len(ids)
    print(f"kafka sink: {len(messages)} messages for {len(ids)} records ({duplicates} duplicates)")
    # Bigtable keyed by txn_id, idempotent: exactly once
    assert rows() == ids
