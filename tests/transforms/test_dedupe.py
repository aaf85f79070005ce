"""Dedupe: exact batch rule, streaming with watermark-driven decisions and expiry, parity."""

import random
import typing

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp

from hybridflow import Dedupe, SchemaError
from hybridflow.schemas import register
from hybridflow.metrics import query_counters
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


def txn(txn_id, seconds, amount=1.0, card="c1"):
    return transactions([(card, amount, seconds)])[0]._replace(txn_id=txn_id)


def offsets(rows):
    return sorted((r.txn_id, (r.event_time.micros - START.micros) / 1e6, r.amount) for r in rows)


def oracle(records, within):
    """The rule in plain Python: per id in (time, JSON) order, keep the first,
    drop those less than `within` after the last kept."""
    from hybridflow.schemas import to_json

    kept, last = [], {}
    for r in sorted(records, key=lambda r: (r.event_time.micros, to_json(r))):
        t = r.event_time.micros
        if r.txn_id in last and t - last[r.txn_id] < within * 1e6:
            continue
        last[r.txn_id] = t
        kept.append(r)
    return kept


EVENTS = [
    txn("a", 10, 1.0),
    txn("a", 20, 2.0),  # duplicate of a@10
    txn("b", 15),
    txn("a", 80, 3.0),  # 70 s after a@10: kept again (within=60)
    txn("a", 5, 4.0),  # earlier than a@10: it wins, a@10 becomes a duplicate
    txn("c", 30),
]


class TestBatch:
    def test_keeps_the_earliest_per_period_and_counts_duplicates(self):
        p = batch_pipeline()
        unique = p | CreateEvents(EVENTS) | Dedupe("txn_id", within="60s")
        assert_that(
            unique | beam.Map(lambda r: (r.txn_id, (r.event_time.micros - START.micros) // 10**6)),
            equal_to([("a", 5), ("a", 80), ("b", 15), ("c", 30)]),
        )
        result = p.run()
        result.wait_until_finish()
        counts = query_counters(result)
        assert counts.get("records_in") == 6
        assert counts.get("records_out") == 4
        assert counts.get("duplicates") == counts.get("filtered") == 2

    def test_ties_are_broken_stably(self):
        # same id and time, different content: the smaller JSON text wins, in any input order
        twins = [txn("x", 10, 9.0), txn("x", 10, 1.0)]
        for order in (twins, twins[::-1]):
            with batch_pipeline() as p:
                out = p | CreateEvents(order) | Dedupe("txn_id", within="1m")
                assert_that(out | beam.Map(lambda r: r.amount), equal_to([1.0]))

    def test_keeps_input_windowing_and_type(self):
        with batch_pipeline() as p:
            windowed = p | CreateEvents(EVENTS) | beam.WindowInto(beam.window.FixedWindows(60))
            unique = windowed | Dedupe("txn_id", within="60s")
            assert unique.element_type is type(EVENTS[0])
            counts = unique | beam.Map(lambda r: ("n", 1)) | beam.CombinePerKey(sum)
            assert_that(
                counts | beam.Map(lambda kv, w=beam.DoFn.WindowParam: (kv[1], (w.start.micros - START.micros) // 10**6)),
                equal_to([(3, 0), (1, 60)]),
            )

    def test_construction_errors(self):
        with pytest.raises(SchemaError, match="within"):
            Dedupe("txn_id", within="soon")
        with pytest.raises(SchemaError, match="> 0"):
            Dedupe("txn_id", within=0)
        p = batch_pipeline()
        with pytest.raises(SchemaError, match="nosuch"):
            _ = p | CreateEvents(EVENTS) | Dedupe("nosuch")


@pytest.mark.streaming
class TestStreaming:
    def test_first_arrival_is_emitted_and_duplicates_dropped(self):
        items = [txn("a", 10, 1.0), txn("b", 15), txn("a", 10, 1.0), Watermark(START + 12),
                 txn("a", 20, 2.0), txn("a", 80, 3.0), txn("c", 30)]
        with streaming_pipeline() as p:
            out = p | EventStream(items) | Dedupe("txn_id", within="60s")
            assert_that(
                out | beam.Map(lambda r: (r.txn_id, (r.event_time.micros - START.micros) // 10**6, r.amount)),
                equal_to([("a", 10, 1.0), ("a", 80, 3.0), ("b", 15, 1.0), ("c", 30, 1.0)]),
            )

    def test_a_copy_arriving_before_an_earlier_one_is_where_streaming_differs(self):
        """Documented: streaming keeps the first to arrive (a@10), batch the earliest (a@5)."""
        items = [txn("a", 10, 1.0), txn("a", 5, 4.0)]
        with streaming_pipeline() as p:
            out = p | EventStream(items) | Dedupe("txn_id", within="60s")
            assert_that(out | beam.Map(lambda r: r.amount), equal_to([1.0]))

    def test_state_expires_after_within(self):
        """After the watermark passes last kept + within, the id is forgotten:
        a late record of it is new again; a late record while remembered is a duplicate."""
        items = [
            txn("a", 10, 1.0),
            Watermark(START + 30),
            txn("a", 12, 2.0),  # late (behind the watermark) but a@10 is remembered: duplicate
            Watermark(START + 200),  # a@10 + 60 s passed: a is forgotten
            txn("a", 40, 3.0),  # late, and a is new again: kept
        ]
        with streaming_pipeline() as p:
            out = p | EventStream(items) | Dedupe("txn_id", within="60s")
            assert_that(out | beam.Map(lambda r: r.amount), equal_to([1.0, 3.0]))


@pytest.mark.streaming
def test_parity_batch_equals_streaming(tmp_path):
    """Ids interleaved out of event-time order, re-deliveries, watermark moves:
    each id's records arrive in event-time order, and both give the same records."""
    rng = random.Random(11)
    events = [txn(f"id{rng.randrange(15)}", round(rng.uniform(0, 600), 3), float(i)) for i in range(150)]
    events += [rng.choice(events) for _ in range(30)]  # re-deliveries of the same record
    per_id = {}
    for r in sorted(events, key=lambda r: r.event_time):
        per_id.setdefault(r.txn_id, []).append(r)
    arrival = []
    while per_id:  # a random interleaving of the ids, each id in event-time order
        key = rng.choice(sorted(per_id))
        arrival.append(per_id[key].pop(0))
        if not per_id[key]:
            del per_id[key]
    items, watermark = [], START
    for i in range(0, len(arrival), 25):
        items += arrival[i:i + 25]
        rest = arrival[i + 25:]
        if rest and min(r.event_time for r in rest) > watermark:
            watermark = min(r.event_time for r in rest)
            items.append(Watermark(watermark))
    with batch_pipeline() as p:
        p | CreateEvents(events) | Dedupe("txn_id", within="90s") | Collect(tmp_path / "batch")
    with streaming_pipeline() as p:
        p | EventStream(items) | Dedupe("txn_id", within="90s") | Collect(tmp_path / "stream")
    batch, stream = collected(tmp_path / "batch"), collected(tmp_path / "stream")
    assert offsets(batch) == offsets(stream) == offsets(oracle(events, 90))
    assert len(batch) < len(events) - 30, "the data has duplicates beyond the re-deliveries"


class Reading(typing.NamedTuple):
    machine: str
    sensor: str
    ts: Timestamp
    value: float


register(Reading)


def reading(machine, sensor, seconds, value):
    return Reading(machine, sensor, START + seconds, value)


# (m1, s1, 10) is sent twice with different values: a tie; the others differ in one key field each
READINGS = [reading("m1", "s1", 10, 2.0), reading("m1", "s2", 10, 5.0), reading("m2", "s1", 10, 6.0),
            reading("m1", "s1", 10, 1.0), reading("m1", "s1", 20, 7.0)]
COMPOSITE = ("machine", "sensor", "ts")


def keyed(r):
    return r.machine, r.sensor, (r.ts.micros - START.micros) // 10**6, r.value


class TestCompositeKey:
    @pytest.mark.parametrize("id_field", [COMPOSITE, list(COMPOSITE)])
    def test_batch_keeps_one_record_per_composite_id_and_the_tie_goes_to_the_smaller_json(self, id_field):
        for order in (READINGS, READINGS[::-1]):
            with batch_pipeline() as p:
                out = p | CreateEvents(order, timestamp_field="ts") | Dedupe(id_field=id_field, within="1h")
                assert_that(out | beam.Map(keyed), equal_to([
                    ("m1", "s1", 10, 1.0),  # {"value": 1.0} sorts before {"value": 2.0}, in either input order
                    ("m1", "s2", 10, 5.0), ("m2", "s1", 10, 6.0), ("m1", "s1", 20, 7.0),
                ]))

    @pytest.mark.streaming
    def test_streaming_keeps_the_first_copy_to_arrive(self):
        for order, winner in ((READINGS, 2.0), (READINGS[::-1], 1.0)):
            with streaming_pipeline() as p:
                out = p | EventStream(order, timestamp_field="ts") | Dedupe(COMPOSITE, within="1h")
                assert_that(out | beam.Map(keyed), equal_to([
                    ("m1", "s1", 10, winner), ("m1", "s2", 10, 5.0), ("m2", "s1", 10, 6.0), ("m1", "s1", 20, 7.0),
                ]))

    def test_bad_id_fields_are_schema_errors(self):
        with pytest.raises(SchemaError, match=r"'nosuch' is not a field of the input \(machine, sensor, ts, value\)"):
            _ = batch_pipeline() | CreateEvents(READINGS, timestamp_field="ts") | Dedupe(["machine", "nosuch"])
        for bad in ((), [], ("machine", 3), ("machine", "machine"), None):
            with pytest.raises(SchemaError, match="id_field"):
                Dedupe(bad)


def test_docs_example_runs(tmp_path):
    """docs/transforms.md's composite-key example runs as written."""
    from tests._docs import example

    namespace = {"__name__": "docs_dedupe_composite"}
    exec(compile(example("transforms.md", "dedupe-composite", "python"), "docs/transforms.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def test_columnar_input_gives_the_records_path_result(tmp_path):
    from hybridflow.columnar import ToTables

    for name, columnar in (("tables", True), ("records", False)):
        with batch_pipeline() as p:
            readings = p | CreateEvents(READINGS, timestamp_field="ts")
            if columnar:
                readings = readings | ToTables("ts", batch_size=2)
            readings | Dedupe(COMPOSITE, within="1h") | beam.Map(keyed) | Collect(tmp_path / name)
    assert sorted(collected(tmp_path / "tables")) == sorted(collected(tmp_path / "records")) == sorted(
        [("m1", "s1", 10, 1.0), ("m1", "s2", 10, 5.0), ("m2", "s1", 10, 6.0), ("m1", "s1", 20, 7.0)]
    )
