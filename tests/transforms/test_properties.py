"""Property-based tests: ParseRecords and WindowedAggregate against plain-Python oracles.

Each hypothesis example is one list of inputs run through one Beam pipeline
(FnApiRunner in batch, TestStream on the bundle-based DirectRunner in
streaming), so the example counts stay small; every list mixes valid and
malformed inputs, and every input must be accounted for: records + dead
letters = inputs.

``make test`` runs the hypothesis profile ``ci`` (fixed seed: the same examples
every run); ``make test-deep`` runs the profile ``deep`` (random, ten times the
examples). See tests/conftest.py.
"""

import json
import math
from fractions import Fraction
from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridflow import OneOf, ParseRecords, Range, WindowedAggregate
from hybridflow.schemas import register
from hybridflow.testing import START, EventStream, Watermark, batch_pipeline, streaming_pipeline
from tests.conftest import examples


@register
class Obs(NamedTuple):
    station: str
    value: float
    level: Optional[int]
    kind: str
    event_time: Timestamp

    constraints = {"value": Range(min=-1000, max=1000), "kind": OneOf(["a", "b"])}


STATIONS = st.sampled_from(["s1", "s2", "s3"])
VALUES = st.floats(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False)
MILLIS = st.integers(min_value=0, max_value=3600 * 1000)  # event time: START + up to an hour, in ms


@st.composite
def valid(draw):
    """(payload, expected Obs) for a record ParseRecords must accept."""
    event_time = Timestamp(micros=START.micros + draw(MILLIS) * 1000)
    value = draw(VALUES)
    data = {
        "station": draw(STATIONS),
        "value": draw(st.sampled_from([value, repr(value)])),  # a number or numeric text
        "level": draw(st.one_of(st.none(), st.integers(-5, 5))),
        "kind": draw(st.sampled_from(["a", "b"])),
        "event_time": draw(st.sampled_from([event_time.micros / 1e6, event_time.to_rfc3339()])),
    }
    return json.dumps(data), Obs(data["station"], value, data["level"], data["kind"], event_time)


@st.composite
def malformed(draw):
    """(payload, reason) for an input ParseRecords must dead-letter with that reason."""
    payload, expected = draw(valid())
    data = json.loads(payload)
    kind = draw(st.sampled_from(
        ["not_json", "not_object", "missing", "range", "enum", "type", "timestamp", "bytes"]))
    if kind == "not_json":
        text = draw(st.text(min_size=1, max_size=20))
        try:
            json.loads(text)
            return "{" + text, "invalid_json"
        except ValueError:
            return text, "invalid_json"
    if kind == "not_object":
        return json.dumps(draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), st.text()))), \
            "not_an_object"
    if kind == "missing":
        del data[draw(st.sampled_from(["station", "value", "kind", "event_time"]))]
        return json.dumps(data), "missing_field"
    if kind == "range":
        data["value"] = draw(st.one_of(st.floats(min_value=1000.5, max_value=1e9), st.floats(max_value=-1000.5,
                                                                                               min_value=-1e9)))
        return json.dumps(data), "invalid_value"
    if kind == "enum":
        data["kind"] = draw(st.text(max_size=3).filter(lambda k: k not in ("a", "b", "")))
        return json.dumps(data), "invalid_value"
    if kind == "type":
        data["value"] = draw(st.sampled_from(["1,5", "abc", True, [1]]))
        return json.dumps(data), "invalid_type"
    if kind == "timestamp":
        data["event_time"] = draw(st.sampled_from(["yesterday", "2026-13-01", "nan"]))
        return json.dumps(data), "invalid_timestamp"
    return b"\xff" + payload.encode(), "decode_error"


INPUTS = st.lists(st.one_of(valid().map(lambda x: ("ok", x)), malformed().map(lambda x: ("bad", x))),
                  min_size=1, max_size=60)


@settings(max_examples=examples(25))
@given(INPUTS)
def test_parse_records_matches_the_oracle(inputs):
    payloads = [x[1][0] for x in inputs]
    expected = [x[1][1] for x in inputs if x[0] == "ok"]
    reasons = [x[1][1] for x in inputs if x[0] == "bad"]
    with batch_pipeline() as p:
        parsed = p | beam.Create(payloads, reshuffle=False) | ParseRecords(Obs)
        assert_that(
            parsed.records | beam.Map(lambda r, ts=beam.DoFn.TimestampParam: (r, ts == r.event_time)),
            equal_to([(e, True) for e in expected]),
            label="records",
        )
        assert_that(parsed.dead_letters | beam.Map(lambda d: d.error_type), equal_to(reasons), label="reasons")
        total = (parsed.records, parsed.dead_letters) | beam.Flatten() | beam.combiners.Count.Globally()
        assert_that(total, equal_to([len(payloads)]), label="records + dead letters = inputs")


# --------------------------------------------------------------------------
# WindowedAggregate

AGGREGATIONS = {
    "n": "count",
    "levels": "count(level)",
    "total": "sum(value)",
    "low": "min(value)",
    "high": "max(value)",
    "avg": "mean(value)",
    "sd": "stddev(value)",
    "kinds": "count_distinct(kind)",
    "values": "approx_distinct(value)",
    "median": "p50(value)",
    "p90": "percentile(value, 0.9)",
}
WINDOWS = st.sampled_from(["fixed:10m", "fixed:7s", "sliding:20m/5m", "session:3m"])


def window_starts(spec, t):
    """[(start, end)] in micros, the textbook way."""
    kind, _, args = spec.partition(":")
    unit = {"s": 10**6, "m": 60 * 10**6}
    if kind == "fixed":
        size = int(args[:-1]) * unit[args[-1]]
        return [(t - t % size, t - t % size + size)]
    size_text, period_text = args.split("/")
    size, period = int(size_text[:-1]) * unit[size_text[-1]], int(period_text[:-1]) * unit[period_text[-1]]
    last = t - t % period
    return [(s, s + size) for s in range(last, t - size, -period)]


def sessions(times, gap):
    """Beam's session merging: windows [t, t + gap) that overlap are one."""
    out = []
    for t in sorted(times):
        if out and t < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], t + gap))
        else:
            out.append((t, t + gap))
    return out


def oracle(records, spec):
    groups = {}
    for r in records:
        t = r.event_time.micros
        if spec.startswith("session"):
            continue
        for w in window_starts(spec, t):
            groups.setdefault((r.station, w), []).append(r)
    if spec.startswith("session"):
        gap = int(spec.split(":")[1][:-1]) * 60 * 10**6
        for station in {r.station for r in records}:
            mine = [r for r in records if r.station == station]
            for w in sessions([r.event_time.micros for r in mine], gap):
                groups[(station, w)] = [r for r in mine if w[0] <= r.event_time.micros < w[1]]
    rows = {}
    for (station, (start, end)), rs in groups.items():
        values = [r.value for r in rs]
        n = len(values)
        mean = sum(map(Fraction, values)) / n
        variance = (sum(Fraction(v) ** 2 for v in values) * n - sum(map(Fraction, values)) ** 2) / (n * (n - 1)) \
            if n > 1 else None
        rows[(station, start, end)] = {
            "n": n,
            "levels": sum(r.level is not None for r in rs),
            "total": math.fsum(values),
            "low": min(values),
            "high": max(values),
            "avg": float(mean),
            "sd": math.sqrt(float(variance)) if variance is not None else None,
            "kinds": len({r.kind for r in rs}),
            "values": len(set(values)),  # exact below 1024 distinct values
            "median": sorted(values)[int(0.5 * (n - 1))],
            "p90": sorted(values)[int(0.9 * (n - 1))],
        }
    return rows


def check_against(expected):
    def check(rows):
        got = {(r.station, r.window_start.micros, r.window_end.micros): r for r in rows}
        assert set(got) == set(expected), (sorted(got), sorted(expected))
        for key, want in expected.items():
            row = got[key]
            assert row.pane == "ON_TIME" and row.pane_index == 0
            for name, value in want.items():
                actual = getattr(row, name)
                if name in ("median", "p90"):  # DDSketch: 1 % relative error at that rank
                    assert abs(actual - value) <= 0.01 * abs(value) + 1e-12, (key, name, actual, value)
                else:
                    assert actual == value, (key, name, actual, value)

    return check


@settings(max_examples=examples(25))
@given(INPUTS, WINDOWS)
def test_windowed_aggregate_matches_the_oracle(inputs, window):
    payloads = [x[1][0] for x in inputs]
    records = [x[1][1] for x in inputs if x[0] == "ok"]
    with batch_pipeline() as p:
        parsed = p | beam.Create(payloads, reshuffle=False) | ParseRecords(Obs)
        out = parsed.records | WindowedAggregate(key="station", window=window, aggregations=AGGREGATIONS)
        assert_that(out.aggregates, check_against(oracle(records, window)))
        assert_that(parsed.dead_letters | beam.combiners.Count.Globally(),
                    equal_to([len(payloads) - len(records)]), label="dead letters")


@st.composite
def in_watermark_steps(draw, records):
    """The records as a stream: in chunks of random size, shuffled within each chunk, the watermark
    advanced after each chunk to the earliest event time still to come (so nothing is late)."""
    ordered = sorted(records, key=lambda r: r.event_time)
    items, i = [], 0
    while i < len(ordered):
        size = draw(st.integers(min_value=1, max_value=max(1, len(ordered) - i)))
        chunk = draw(st.permutations(ordered[i:i + size]))
        items.extend(chunk)
        i += size
        if i < len(ordered):
            items.append(Watermark(ordered[i].event_time))
    return items


@pytest.mark.streaming
@settings(max_examples=examples(12))
@given(st.lists(valid().map(lambda x: x[1]), min_size=1, max_size=40).flatmap(
    lambda records: st.tuples(st.just(records), in_watermark_steps(records))), WINDOWS)
def test_windowed_aggregate_matches_the_oracle_in_streaming(stream, window):
    """The same oracle, the records arriving as a stream (TestStream): the panes that fire as the
    watermark passes each window are the batch answer."""
    records, items = stream
    with streaming_pipeline() as p:
        out = p | EventStream(items, record_type=Obs) | WindowedAggregate(
            key="station", window=window, aggregations=AGGREGATIONS)
        assert_that(out.aggregates, check_against(oracle(records, window)))
