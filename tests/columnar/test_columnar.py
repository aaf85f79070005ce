"""The columnar (Arrow-table) batch path gives the per-element path's results.

Random, partly malformed JSON lines and Parquet rows go through ParseRecords
both ways; random records go through WindowedAggregate both ways (every
aggregation, fixed / sliding / session windows, timestamps on window edges,
ties); the fraud pipeline runs with ``--columnar auto`` and ``never``. Every
output (records, dead letters with reason, message and payload, aggregate
rows, alerts, profiles) must be identical.
"""

import glob
import json
import random
from typing import NamedTuple, Optional

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridflow import OneOf, ParseRecords, Range, Transaction, WindowedAggregate, get_pipeline
from hybridflow.columnar import ToRecords, ToTables, arrow_tables
from hybridflow.io import ReadFrom, generate_records
from hybridflow.pipelines.fraud import SyntheticTransactions
from hybridflow.pipelines.run import run_pipeline
from hybridflow.schemas import register
from hybridflow.testing import START, Collect, CreateEvents, batch_pipeline, collected
from tests.conftest import examples


def _good(rng, i):
    seconds = START.micros / 1e6 + rng.choice([0, 59.999, 60, 60.000001, 119, 300, 299.999999]) + rng.randint(0, 5) * 60
    return {
        "txn_id": f"t{i}",
        "card_id": rng.choice(["c1", "c2", "c3", "ç4"]),
        "customer_id": "u",
        "merchant_id": rng.choice(["m1", "m 2", "m\t3", "m\\4"]),
        "category": "food",
        "amount": rng.choice([12.5, 0.1, 0.2, 0.3, 1e6, 0.0, 999999.99, 3, 1e-7]),
        "currency": "EUR",
        "country": rng.choice(["FR", "DE", "US"]),
        "event_time": Timestamp.of(seconds).to_rfc3339(),
    }


def _line(rng, i):
    d = _good(rng, i)
    kind = rng.randrange(30)
    if kind == 0:
        return json.dumps(d)[:-5]
    if kind == 1:
        del d[rng.choice(list(d))]
    elif kind == 2:
        d["amount"] = rng.choice(["12.50", "12,50", "NaN", -1, True, None, "1e400", 1e400 if False else "inf"])
    elif kind == 3:
        d["currency"] = rng.choice(["EURO", "eur", "", 7])
    elif kind == 4:
        d["event_time"] = rng.choice(
            ["yesterday", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", "0000-01-01T00:00:00Z", "1767225605",
             "2026-01-01 00:00:05Z", "2026-01-01T01:00:05+01:00", "2026-01-01T00:00:05.1234567Z", 1767225605,
             "2026-01-01T00:00:05z", " 2026-01-01T00:00:05Z"]
        )
    elif kind == 5:
        d["txn_id"] = rng.choice(["", "a b", "x" * 129, "\u00a0x", "tab\there", 42])
    elif kind == 6:
        return rng.choice(["", "   ", "[1, 2]", "null", "{}", json.dumps(d) + " " + json.dumps(d), json.dumps(d) + "\r",
                           '{"txn_id": "a", "txn_id": "b"}', "\u00a0", json.dumps(d, separators=(",", ":"))])
    elif kind == 7:
        d["extra"] = {"amount": "not mine"}
    elif kind == 8:
        return json.dumps(d, ensure_ascii=False)
    elif kind == 9:  # not UTF-8: a decode_error dead letter both ways, never a crash
        return rng.choice([json.dumps(d).encode().replace(b'"u"', b'"u\xff"'), b"\xff\xfe", b"\xc3",
                           json.dumps(dict(d, merchant_id="x\ud800"))])  # a lone surrogate: invalid_value
    return json.dumps(d)


def _parse_both(path, tmp_path):
    outputs = {}
    for name, columnar in (("columnar", True), ("records", False)):
        with batch_pipeline() as p:
            parsed = p | ReadFrom(path, columnar=columnar) | ParseRecords(Transaction)
            records = parsed.records | ToRecords() if columnar else parsed.records
            _ = records | "R" >> Collect(tmp_path / name / "records")
            _ = parsed.dead_letters | beam.Map(lambda d: (d.stage.split("/")[0], d.error_type, d.message, d.payload)) | "D" >> Collect(
                tmp_path / name / "dead"
            )
        outputs[name] = (sorted(collected(tmp_path / name / "records")), sorted(collected(tmp_path / name / "dead")))
    return outputs


@pytest.mark.parametrize("n, chunk_bytes", [(3000, None), (12000, 64 << 10)], ids=["one-chunk", "many-chunks"])
def test_json_lines_parse_like_the_per_element_path(tmp_path, monkeypatch, n, chunk_bytes):
    # many-chunks: ~40 background read_json chunks, and columns long enough
    # (> 4096 rows) that repetitive ones are checked value by distinct value
    if chunk_bytes:
        monkeypatch.setattr("hybridflow.columnar.parse._CHUNK_BYTES", chunk_bytes)
    rng = random.Random(11 + n)
    lines = [_line(rng, i) for i in range(n)]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8") for x in lines) + b"\n")
    out = _parse_both(str(path), tmp_path)
    records, dead = out["columnar"]
    assert (records, dead) == out["records"]
    assert len(records) > 2 * n // 3 and len(dead) > n // 10
    reasons = {d[1] for d in dead}
    assert {"invalid_json", "missing_field", "invalid_type", "invalid_value", "invalid_timestamp", "decode_error"} <= reasons
    assert any(d[1] == "invalid_value" and "not valid Unicode" in d[2] for d in dead)


def test_synthetic_history_with_small_read_ranges_parses_identically(tmp_path):
    from hybridflow.columnar.read import ReadJsonLinesAsTables

    config = SyntheticTransactions(seed=5, malformed=0.05, cards=50)
    path = tmp_path / "h.jsonl"
    path.write_text("\n".join(generate_records(config, 0, 4000)) + "\n")
    with batch_pipeline() as p:
        tables = p | ReadJsonLinesAsTables(str(path), block_bytes=4096)  # many ranges, lines cut at edges
        parsed = tables | ParseRecords(Transaction)
        _ = parsed.records | ToRecords() | "R" >> Collect(tmp_path / "small" / "records")
        _ = parsed.dead_letters | beam.Map(lambda d: (d.error_type, d.message, d.payload)) | "D" >> Collect(tmp_path / "small" / "dead")
    with batch_pipeline() as p:
        parsed = p | ReadFrom(str(path)) | ParseRecords(Transaction)
        _ = parsed.records | "R" >> Collect(tmp_path / "el" / "records")
        _ = parsed.dead_letters | beam.Map(lambda d: (d.error_type, d.message, d.payload)) | "D" >> Collect(tmp_path / "el" / "dead")
    assert sorted(collected(tmp_path / "small" / "records")) == sorted(collected(tmp_path / "el" / "records"))
    assert sorted(collected(tmp_path / "small" / "dead")) == sorted(collected(tmp_path / "el" / "dead"))
    assert len(collected(tmp_path / "el" / "records")) + len(collected(tmp_path / "el" / "dead")) == 4000


@pytest.mark.parametrize("fmt", ["parquet", "orc"])
def test_columnar_file_rows_parse_like_the_per_element_path(tmp_path, fmt):
    from pyarrow import orc

    write = {"parquet": pq.write_table, "orc": orc.write_table}[fmt]
    rng = random.Random(5)
    rows = [_good(rng, i) for i in range(500)]
    for i, row in enumerate(rows):
        if i % 7 == 0:
            row["amount"] = -row["amount"] - 1
        if i % 11 == 0:
            row["currency"] = None
        if i % 13 == 0:
            row["event_time"] = "not a time"
    table = pa.Table.from_pylist(rows)
    write(table, tmp_path / f"typed.{fmt}")
    untyped = table.set_column(5, "amount", pa.array([str(r["amount"]) for r in rows]))  # numbers as text
    write(untyped, tmp_path / f"text.{fmt}")
    for name in ("typed", "text"):
        out = _parse_both(str(tmp_path / f"{name}.{fmt}"), tmp_path / name)
        assert out["columnar"] == out["records"]


@register
class Reading(NamedTuple):
    station: str
    value: float
    level: Optional[int]
    kind: str
    event_time: Timestamp

    constraints = {"value": Range(min=-1e9, max=1e9), "kind": OneOf(["a", "b"])}


AGGREGATIONS = {
    "n": "count", "n_level": "count(level)", "total": "sum(value)", "lo": "min(value)", "hi": "max(value)",
    "avg": "mean(value)", "sd": "stddev(value)", "kinds": "count_distinct(kind)", "levels": "sum(level)",
    "approx": "approx_distinct(station)", "p90": "p90(value)",
}


def _readings(seed, n=1500):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        edge = rng.choice([0, 1, 59_999_999, 60_000_000, 119_999_999, 299_999_999, rng.randrange(600_000_000)])
        value = rng.choice([0.1, 0.2, 0.3, 1e16, 1.0, -0.5, 2.0**-30, rng.uniform(-1e6, 1e6), round(rng.uniform(0, 100), 2)])
        out.append(
            Reading(
                station=rng.choice(["s1", "s2", "s3", "s4"]),
                value=value,
                level=rng.choice([None, 1, 2, 10**6]),
                kind=rng.choice(["a", "b"]),
                event_time=Timestamp(micros=START.micros + edge),
            )
        )
    return out


@pytest.mark.parametrize("window", ["fixed:60s", "sliding:5m/1m", "sliding:90s/40s", "session:45s"])
def test_windowed_aggregate_on_tables_equals_the_per_element_path(tmp_path, window):
    events = _readings(sum(map(ord, window)))
    for name, columnar in (("columnar", True), ("records", False)):
        with batch_pipeline() as p:
            records = p | CreateEvents(events)
            if columnar:
                tables = records | ToTables("event_time", batch_size=400)
                assert tables.element_type == arrow_tables(Reading, "event_time")
                result = tables | WindowedAggregate(key="station", window=window, aggregations=AGGREGATIONS)
                rows = result.aggregates | ToRecords()
            else:
                rows = (records | WindowedAggregate(key="station", window=window, aggregations=AGGREGATIONS)).aggregates
            _ = rows | beam.Map(lambda r: tuple(r)) | Collect(tmp_path / name)
    columnar, records = sorted(collected(tmp_path / "columnar")), sorted(collected(tmp_path / "records"))
    assert len(columnar) >= 4
    assert columnar == records  # bit-identical floats


def test_fraud_pipeline_columnar_equals_per_element(tmp_path):
    config = SyntheticTransactions(seed=9, population=42, cards=40, malformed=0.02, fraud=0.02)
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(generate_records(config, 0, 6000)) + "\n")
    spec = get_pipeline("fraud")
    outputs = {}
    for mode in ("auto", "never"):
        options = spec.options([
            "--runner=FnApiRunner", "--mode=batch", f"--input={source}", f"--output={tmp_path / mode}",
            "--output_format=parquet", f"--columnar={mode}",
        ])
        summary = run_pipeline(spec, options)
        assert summary.dead_letters > 50
        tables = {}
        for name in ("alerts", "aggregates", "profiles"):
            files = sorted(glob.glob(str(tmp_path / mode / f"{name}*.parquet")))
            rows = pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()
            tables[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
        dead = []
        for f in glob.glob(str(tmp_path / mode / "dead_letters*.jsonl")):
            dead += [(d["error_type"], d["message"], d["payload"]) for d in map(json.loads, open(f))]
        tables["dead_letters"] = sorted(dead)
        outputs[mode] = (tables, summary.metrics.get("dead_letters"), summary.metrics.get("alerts"))
    assert outputs["auto"] == outputs["never"]
    tables = outputs["auto"][0]
    assert len(tables["alerts"]) > 5 and len(tables["aggregates"]) > 500 and len(tables["profiles"]) == 40


def test_pattern_on_distinct_values_equals_the_row_by_row_check():
    import pyarrow as pa

    from hybridflow.columnar.parse import _SAMPLE, _pattern

    values = ["EUR", "eur", "EURO", "", None, "E\u00dcR", "US\n", "GBP"]
    column = pa.array([values[i % len(values)] for i in range(3 * _SAMPLE)], pa.string())
    for regex in ("[A-Z]{3}", "\\S{1,3}"):
        repetitive = _pattern(column, regex, {})
        row_by_row = pa.array([_pattern(pa.array([v], pa.string()), regex)[0].as_py() for v in column.to_pylist()])
        assert repetitive.equals(row_by_row)
    assert _pattern(column, "[A-Z]{3}").to_pylist()[:8] == [True, False, False, False, False, False, False, True]
    assert _pattern(column, "\\S{1,3}").to_pylist()[:8] == [True, True, False, False, False, False, False, True]
    unique = pa.array([f"t{i}" for i in range(2 * _SAMPLE)] + ["a b", "x\x1f", "\u00e9", "", None, "t\x7f"])
    assert _pattern(unique, "\\S{1,128}").to_pylist()[-6:] == [False, False, False, False, False, True]
    assert _pattern(unique, "t[0-9]+").to_pylist()[-6:] == [False, False, False, False, False, False]
    assert _pattern(unique, "\\S{1,128}").to_pylist()[:2] == [True, True]


@register
class Stamped(NamedTuple):
    t: Timestamp


def _iso_texts():
    """ISO-8601-like text: every form the vectorized parser reads, and near misses."""
    from hypothesis import strategies as st

    part = st.integers
    return st.builds(
        lambda y, mo, d, sep, h, mi, s, frac, zone, pad, cut: (
            pad + f"{y:04d}-{mo:02d}-{d:02d}{sep}{h:02d}:{mi:02d}:{s:02d}{frac}{zone}"
        )[: cut or None],
        st.one_of(st.sampled_from([1, 2, 4, 100, 1969, 1970, 2024, 2026, 2100, 9999, 0]), part(1, 9999)),
        st.one_of(st.sampled_from([1, 2, 12, 0, 13]), part(1, 12)),
        st.one_of(st.sampled_from([1, 28, 29, 30, 31, 0, 32]), part(1, 31)),
        st.sampled_from(["T", "T", " ", "t", "x"]),
        st.one_of(st.sampled_from([0, 23, 24]), part(0, 23)),
        st.one_of(st.sampled_from([0, 59, 60]), part(0, 59)),
        st.one_of(st.sampled_from([0, 59, 60]), part(0, 59)),
        st.one_of(st.just(""), st.just("."), st.text("0123456789", min_size=1, max_size=8).map(lambda f: "." + f)),
        st.sampled_from(["", "Z", "z", "+00:00", "-00:00", "+01:00", "-05:30", "+0130", "+01", "+23:59", "+24:00",
                         "+01:60", "+1:00", "+01:00:30", "Z ", " ", "ZZ", "+01:0"]),
        st.sampled_from(["", "", "", " "]),
        st.one_of(st.just(0), part(1, 34)),
    )


def _timestamp_column_cases():
    from hypothesis import strategies as st

    floats = st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=-7e10, max_value=3e11),  # seconds within the years 1-9999, and beyond
        st.integers(0, 2**33).map(lambda s: s + 0.5e-6),  # exactly half a microsecond, as near as a double gets
        st.tuples(st.integers(0, 2**32), st.integers(0, 999_999)).map(lambda p: float(f"{p[0]}.{p[1]:06d}")),
        st.sampled_from([1767225600.123456, 1767225600000.0, 1767225600000000.0, 2.0**53, -0.0, 253402300799.9999995]),
    )
    ints = st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-62135596800, 253402300799),
        st.sampled_from([1767225600, 1767225600000, 1767225600000000, 253402300799, 253402300800, -62135596800,
                         -62135596801, 2**53, 2**53 + 1]),
    )
    return st.one_of(
        st.tuples(st.just("text"), st.lists(st.one_of(_iso_texts(), st.none()), min_size=1, max_size=40)),
        st.tuples(st.just("float"), st.lists(st.one_of(floats, st.none()), min_size=1, max_size=40)),
        st.tuples(st.just("int"), st.lists(st.one_of(ints, st.none()), min_size=1, max_size=40)),
    )


@given(case=_timestamp_column_cases(), unit=st.sampled_from(["s", "ms", "us"]))
@settings(max_examples=examples(400))
def test_vectorized_timestamps_equal_the_per_element_parser(case, unit):
    """Every value the vectorized checks accept (ISO text, int and float epoch
    columns, each unit) has the per-element parser's microsecond."""
    import pyarrow as pa

    from hybridflow.columnar.parse import _Vectorizer
    from hybridflow.errors import RecordError
    from hybridflow.transforms.parse import record_parser

    kind, values = case
    arrow_type = {"text": pa.string(), "float": pa.float64(), "int": pa.int64()}[kind]
    ok, columns = _Vectorizer(Stamped, {}, unit).columns(pa.table({"t": pa.array(values, arrow_type)}))
    parse = record_parser(Stamped, timestamp_unit=unit)
    got = columns["t"].cast(pa.int64()).to_pylist()
    for value, vouched, micros in zip(values, ok, got):
        try:
            expected = parse({"t": value}).t.micros
        except RecordError:
            expected = None
        if vouched:
            assert micros == expected, (value, unit)


def test_common_timestamp_forms_are_vectorized():
    """No cliff: the usual forms never leave the vectorized path."""
    import pyarrow as pa

    from hybridflow.columnar.parse import _Vectorizer

    texts = ["2026-01-01T00:00:05Z", "2026-01-01T00:00:05.123Z", "2026-01-01T00:00:05.123456Z", "2026-01-01T00:00:05",
             "2026-01-01 00:00:05.5", "2026-01-01T01:00:05+01:00", "2026-01-01T00:00:05.25-0530", "2024-02-29T23:59:59+01",
             "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"]
    for unit, column in [("s", pa.array(texts)), ("s", pa.array([1767225605, -5, 0], pa.int64())),
                         ("s", pa.array([1767225605.5, 1767225605.0, 1767225605.123456])),
                         ("ms", pa.array([1767225605123.0, 1767225605123.5])), ("us", pa.array([1767225605123456.0])),
                         ("ms", pa.array([1767225605123], pa.int64()))]:
        ok, _ = _Vectorizer(Stamped, {}, unit).columns(pa.table({"t": column}))
        assert ok.all(), (unit, column)


@pytest.mark.parametrize("key", [None, ["station", "kind"]])
def test_keyless_and_composite_keys_on_tables_equal_the_per_element_path(tmp_path, key):
    """One row per window, or per (station, kind) and window; int sums/min/max exact ints on both."""
    events = _readings(len(str(key)), n=600)
    events += [r._replace(level=2**60 + i) for i, r in enumerate(events[:5])]  # int sums beyond 2**53
    aggregations = {"n": "count", "levels": "sum(level)", "lo": "min(level)", "hi": "max(level)", "avg": "mean(value)"}
    for name, columnar in (("columnar", True), ("records", False)):
        with batch_pipeline() as p:
            records = p | CreateEvents(events)
            if columnar:
                result = records | ToTables("event_time", batch_size=150) | WindowedAggregate(
                    key=key, window="sliding:5m/1m", aggregations=aggregations)
                rows = result.aggregates | ToRecords()
            else:
                rows = (records | WindowedAggregate(key=key, window="sliding:5m/1m", aggregations=aggregations)).aggregates
            _ = rows | beam.Map(lambda r: tuple(r)) | Collect(tmp_path / name)
    columnar, records = sorted(collected(tmp_path / "columnar")), sorted(collected(tmp_path / "records"))
    assert len(columnar) >= 5
    assert columnar == records
    assert any(type(r[-4]) is int and r[-4] > 2**60 for r in records)  # the sum of levels, exact
