"""No single record kills a job: poison records through both ParseRecords paths.

Generated JSON lines -- valid records with every timestamp form and unit,
and poison: deep nesting, huge numbers, NaN and infinities, event times
outside the years 1-9999, bytes that are not UTF-8, lone surrogates, BOMs,
duplicate keys, blank lines, non-object JSON -- are written to a file and
read by the per-element path (``ReadFrom(path)``) and the columnar path
(``ReadFrom(path, columnar=True)``) in one pipeline. No exception escapes;
records + dead letters = the non-blank lines; the records are the expected
ones (microsecond timestamps) and the dead letters have the expected
reasons; the two paths agree on every record and every dead letter
(reason, message, payload).
"""

import datetime
import io
import json
from typing import NamedTuple
from unittest import mock

import apache_beam as beam
import pytest
from apache_beam.utils.timestamp import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridflow import ParseRecords, WindowedAggregate, WriteTo
from hybridflow.columnar import ToRecords
from hybridflow.errors import RecordError, SchemaError
from hybridflow.io import ReadFrom
from hybridflow.io.files import csv_rows
from hybridflow.schemas import TIMESTAMP_UNITS, format_timestamp, register, to_timestamp
from hybridflow.testing import Collect, batch_pipeline, collected
from hybridflow.transforms.dead_letters import Unreadable
from hybridflow.transforms.parse import MAX_JSON_DEPTH, json_depth, record_parser
from tests._docs import example
from tests.conftest import examples
from tests.transforms.test_properties import Obs as Reading  # value in [-1000, 1000], kind a or b

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)


@register
class Unbounded(NamedTuple):
    """A reading without a Range on its value."""

    station: str
    value: float
    kind: str
    event_time: Timestamp


# --------------------------------------------------------------------------
# Generated lines: (bytes, expected) with expected a Reading, a dead-letter reason, or None (a blank line)

MICROS = st.integers(0, 4102444800 * 10**6 - 1)  # 1970 .. 2099, where a double holds epoch seconds to the microsecond


@st.composite
def event_times(draw, unit):
    """(JSON value of an event time, its epoch micros): ISO text in several forms, or an epoch number in ``unit``."""
    form = draw(st.sampled_from(["iso_z", "iso_naive", "iso_offset", "iso_space", "int", "float", "numeric_text"]))
    factor = TIMESTAMP_UNITS[unit]
    if form == "int":
        micros = draw(MICROS) // factor * factor
        return micros // factor, micros
    if form == "numeric_text":
        micros = draw(MICROS) // factor * factor
        return str(micros // factor), micros
    micros = draw(MICROS)
    if form == "float":
        return micros / factor, micros
    moment = EPOCH + datetime.timedelta(microseconds=micros)
    if form == "iso_offset":
        offset = datetime.timezone(datetime.timedelta(minutes=draw(st.integers(-23 * 60 - 59, 23 * 60 + 59))))
        return moment.astimezone(offset).isoformat(), micros
    text = moment.replace(tzinfo=None).isoformat(sep=" " if form == "iso_space" else "T")
    return (text + "Z" if form == "iso_z" else text), micros


@st.composite
def valid(draw, unit):
    """(fields of a valid record, the Reading)."""
    value = draw(st.floats(min_value=-1000, max_value=1000, allow_nan=False))
    when, micros = draw(event_times(unit))
    level = draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
    fields = {"station": draw(st.sampled_from(["s1", "s2", "ç3"])), "value": value, "level": level,
              "kind": draw(st.sampled_from(["a", "b"])), "event_time": when}
    return fields, Reading(fields["station"], value, level, fields["kind"], Timestamp(micros=micros))


def _without(fields, name):
    return {k: v for k, v in fields.items() if k != name}


def _line(fields, compact=False) -> bytes:
    return json.dumps(fields, separators=(",", ":") if compact else None, ensure_ascii=False).encode()


POISON = [
    # (name, change to the fields of a valid record or a whole line, reason)
    ("deep_array", lambda f, d: ("[" * d.draw(st.integers(MAX_JSON_DEPTH + 1, 3000))).encode(), "invalid_json"),
    ("deep_field", lambda f, d: _line(dict(f, extra=json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))))
     .replace(b"[]", b"[[]]", 1), "invalid_json"),  # 1 + 512 levels
    ("huge_float", lambda f, d: _line(f).replace(b'"value": ' + json.dumps(f["value"]).encode(), b'"value": 1e400'),
     "invalid_value"),
    ("huge_int_float", lambda f, d: _line(dict(f, value=10**400)), "invalid_value"),
    ("nan", lambda f, d: _line(dict(f, value=d.draw(st.sampled_from([float("nan"), float("inf"), float("-inf")])))),
     "invalid_value"),
    ("nan_text", lambda f, d: _line(dict(f, value=d.draw(st.sampled_from(["NaN", "inf", "-Infinity"])))), "invalid_value"),
    ("int64_overflow", lambda f, d: _line(dict(f, level=d.draw(st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e20])))),
     "invalid_value"),
    ("time_far", lambda f, d: _line(dict(f, event_time=d.draw(st.sampled_from(
        [10**20, -(10**20), 1e300, 253402300800 * 10**6, "10000-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00",
         "0001-01-01T00:00:00+01:00", "0000-12-31T23:59:59Z"])))), "invalid_timestamp"),
    ("time_bad", lambda f, d: _line(dict(f, event_time=d.draw(st.sampled_from(
        [True, "yesterday", "", "nan", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z", [1], {"t": 1}])))),
     "invalid_timestamp"),
    ("latin1", lambda f, d: _line(f).replace(b'"station": "', b'"station": "\xe9', 1), "decode_error"),
    ("overlong", lambda f, d: b"\xc0\xaf" + _line(f), "decode_error"),
    ("surrogate", lambda f, d: json.dumps(dict(f, station="x\ud800")).encode(), "invalid_value"),
    ("not_object", lambda f, d: d.draw(st.sampled_from([b"[1, 2]", b"3", b'"text"', b"null", b"true", b"[]"])),
     "not_an_object"),
    ("truncated", lambda f, d: _line(f)[:-d.draw(st.integers(1, 8))], "invalid_json"),
    ("bom_only", lambda f, d: "\ufeff".encode(), "invalid_json"),
    ("missing", lambda f, d: _line(_without(f, d.draw(st.sampled_from(["station", "event_time"])))), "missing_field"),
]


@st.composite
def lines(draw, unit):
    """(line bytes, expected): a Reading, a dead-letter reason, or None for a blank line."""
    fields, record = draw(valid(unit))
    kind = draw(st.sampled_from(["valid", "valid", "bom", "compact", "duplicate", "deep_ok", "blank", "poison"]))
    if kind == "valid":
        return _line(fields), record
    if kind == "bom":  # a byte-order mark before the object is ignored
        return "\ufeff".encode() + _line(fields), record
    if kind == "compact":
        return _line(fields, compact=True), record
    if kind == "duplicate":  # the last value of a repeated key counts, as in Python's json
        return _line(fields)[:-1] + b', "kind": "' + ("b" if fields["kind"] == "a" else "a").encode() + b'"}', \
            record._replace(kind="b" if fields["kind"] == "a" else "a")
    if kind == "deep_ok":  # nested exactly as deep as allowed: 1 + 511 levels
        return _line(dict(fields, extra=json.loads("[" * 511 + "]" * 511))), record
    if kind == "blank":
        return draw(st.sampled_from([b"", b"   ", b"\t", b" \r"])), None
    return draw(poison(unit, draw(st.sampled_from(POISON))))


@st.composite
def poison(draw, unit, kind):
    """(line bytes, reason) of one POISON ``kind`` applied to a valid record."""
    fields, _ = draw(valid(unit))
    _, change, reason = kind
    return change(fields, _Draw(draw)), reason


class _Draw:
    def __init__(self, draw):
        self.draw = draw


def _run_both(path, unit, tmp_path):
    with batch_pipeline() as p:
        for name, columnar in (("columnar", True), ("element", False)):
            parsed = p | f"Read{name}" >> ReadFrom(str(path), columnar=columnar) | f"Parse{name}" >> ParseRecords(
                Reading, timestamp_unit=unit)
            records = parsed.records | f"ToRecords{name}" >> ToRecords() if columnar else parsed.records
            _ = records | f"Records{name}" >> Collect(tmp_path / name / "records")
            _ = (parsed.dead_letters
                 | f"Dead{name}" >> beam.Map(lambda d: (d.error_type, d.message, d.payload))
                 | f"CollectDead{name}" >> Collect(tmp_path / name / "dead"))
    return {name: (sorted(collected(tmp_path / name / "records"), key=repr), sorted(collected(tmp_path / name / "dead")))
            for name in ("columnar", "element")}


@settings(max_examples=examples(6))
@given(unit=st.sampled_from(sorted(TIMESTAMP_UNITS)), data=st.data())
def test_poison_records_become_dead_letters_on_both_paths(tmp_path_factory, unit, data):
    # every kind of poison in every example, among random lines, in a random order
    every_poison = [data.draw(poison(unit, kind), label=kind[0]) for kind in POISON]
    generated = data.draw(st.permutations(every_poison + data.draw(st.lists(lines(unit), min_size=10, max_size=60))),
                          label="lines")
    tmp_path = tmp_path_factory.mktemp("poison")
    path = tmp_path / "in.jsonl"
    ending = data.draw(st.sampled_from([b"\n", b"\r\n"]), label="line ending")
    path.write_bytes(b"".join(line + ending for line, _ in generated))
    # blocks that pyarrow rejects are bisected down to single lines (not 64), so
    # that the valid lines around each poison one still take the vectorized path
    with mock.patch("hybridflow.columnar.parse._BISECT_LEAF", 1):
        out = _run_both(path, unit, tmp_path)
    records, dead = out["element"]
    assert out["columnar"] == out["element"]
    expected = [e for _, e in generated if e is not None]
    assert len(records) + len(dead) == len(expected)  # nothing lost, nothing invented
    assert records == sorted((e for e in expected if isinstance(e, Reading)), key=repr)
    assert sorted(d[0] for d in dead) == sorted(e for e in expected if isinstance(e, str))


def test_the_poison_of_the_issue_is_dead_lettered_on_both_paths(tmp_path):
    """The reproductions of issue 15: nested arrays, epoch ms and us read as seconds, a Latin-1 byte."""
    good = {"station": "s1", "value": 1.5, "level": None, "kind": "a", "event_time": 1767225600}
    poison = [b"[" * 1000, _line(dict(good, event_time=1767225600000)), _line(dict(good, event_time=1767225600000000)),
              _line(good).replace(b"s1", b"s\xe91")]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\n".join([_line(good), *poison]) + b"\n")
    out = _run_both(path, "s", tmp_path)
    assert out["columnar"] == out["element"]
    records, dead = out["element"]
    assert [r.event_time for r in records] == [Timestamp(1767225600)]
    assert [d[0] for d in dead] == ["decode_error", "invalid_json", "invalid_timestamp", "invalid_timestamp"]
    messages = sorted(d[1] for d in dead)
    assert any("timestamp_unit='ms'" in m for m in messages) and any("timestamp_unit='us'" in m for m in messages)


def test_epoch_milliseconds_and_microseconds_with_the_unit(tmp_path):
    lines_ = [_line({"station": "s", "value": 1.0, "kind": "a", "event_time": t})
              for t in (1767225600123, 1767225600123.5, "1767225600124")]
    path = tmp_path / "ms.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    out = _run_both(path, "ms", tmp_path)
    assert out["columnar"] == out["element"]
    assert [r.event_time.micros for r in out["element"][0]] == [1767225600123000, 1767225600123500, 1767225600124000]


def test_a_window_ending_after_9999_is_written_not_a_crash(tmp_path):
    """The last valid second has a window that ends in the year 10000: its
    bound is written in ISO 8601's expanded form, the job does not fail."""
    path = tmp_path / "in.jsonl"
    path.write_bytes(_line({"station": "s", "value": 2.0, "kind": "a", "event_time": "9999-12-31T23:59:59Z"}) + b"\n")
    for columnar in (True, False):
        out = tmp_path / f"out-{columnar}"
        with batch_pipeline() as p:
            parsed = p | ReadFrom(str(path), columnar=columnar) | ParseRecords(Reading)
            windows = parsed.records | WindowedAggregate(key="station", window="sliding:2m/1m", aggregations={"n": "count"})
            windows.aggregates | WriteTo(f"{out}/aggregates.jsonl")
        rows = [json.loads(line) for f in out.glob("aggregates*.jsonl") for line in open(f)]
        assert sorted((r["window_start"], r["window_end"], r["n"]) for r in rows) == [
            ("9999-12-31T23:58:00Z", "+10000-01-01T00:00:00Z", 1), ("9999-12-31T23:59:00Z", "+10000-01-01T00:01:00Z", 1)]


# --------------------------------------------------------------------------
# The rules, one by one


@pytest.mark.parametrize("value, unit, micros", [
    (1767225600.123456, "s", 1767225600123456),  # Beam's Timestamp.of truncates this to ...455
    (1767225600, "s", 1767225600000000),
    ("1767225600.5", "s", 1767225600500000),
    (1767225600123, "ms", 1767225600123000),
    (1767225600123.4, "ms", 1767225600123400),
    (1767225600123456, "us", 1767225600123456),
    (0.0000005, "s", 0),  # half a microsecond: to even
    (0.0000015, "s", 2),
    ("2004-10-16T08:19:17.069331Z", "s", 1097914757069331),  # timedelta.total_seconds() loses the last digit
    ("2026-01-01T01:00:05+01:00", "ms", 1767225605000000),  # the unit is for numbers only
    ("0001-01-01T00:00:00Z", "s", -62135596800000000),
    ("9999-12-31T23:59:59.999999Z", "s", 253402300799999999),
    (datetime.datetime(2026, 1, 1), "s", 1767225600000000),
])
def test_to_timestamp_is_exact(value, unit, micros):
    assert to_timestamp(value, unit).micros == micros


@pytest.mark.parametrize("value, message", [
    (1767225600000, "if it is in epoch ms, parse with timestamp_unit='ms'"),
    (1767225600000000, "if it is in epoch us, parse with timestamp_unit='us'"),
    ("10000-01-01T00:00:00Z", "neither ISO-8601 text nor an epoch number"),
    ("0001-01-01T00:00:00+01:00", "outside the years 1-9999"),
    (float("nan"), "not a finite timestamp"),
    (Timestamp(micros=253402300800000000), "outside the years 1-9999"),
])
def test_to_timestamp_names_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        to_timestamp(value)


def test_times_outside_the_years_1_to_9999_are_written_in_expanded_form():
    assert format_timestamp(Timestamp(micros=253402300800000000)) == "+10000-01-01T00:00:00Z"
    assert format_timestamp(Timestamp(micros=-62135596800000000 - 60 * 10**6)) == "0000-12-31T23:59:00Z"
    assert format_timestamp(Timestamp(micros=1767225605123456)) == "2026-01-01T00:00:05.123456Z"


class Tagged(NamedTuple):
    tags: list[int]


def test_json_depth_limit():
    assert json_depth('{"a": "[[[", "b": [[1], {"c": []}]}') == 4
    assert json_depth('["\\\\", "\\"[[", [[]]]') == 3
    parse = record_parser(Tagged)
    assert parse({"tags": "[1, 2]"}).tags == [1, 2]
    with pytest.raises(RecordError) as caught:  # a list field given as JSON text (CSV) nested too deeply
        parse({"tags": "[" * 2000 + "]" * 2000})
    assert caught.value.reason == "invalid_type"


def test_numbers_that_do_not_fit_the_field():
    parse = record_parser(Reading)
    good = {"station": "s", "value": 1.0, "kind": "a", "event_time": 0}
    assert parse(dict(good, level=2**63 - 1)).level == 2**63 - 1
    for field, value in [("level", 2**63), ("level", 1e19), ("level", str(-(2**63) - 1)), ("value", 10**400)]:
        with pytest.raises(RecordError) as caught:
            parse(dict(good, **{field: value}))
        assert caught.value.reason == "invalid_value", (field, value)


def test_timestamp_unit_is_checked_at_construction():
    with pytest.raises(SchemaError, match="timestamp_unit='ns'"):
        ParseRecords(Reading, timestamp_unit="ns")


def test_csv_rows_that_are_not_utf8_or_too_long_are_dead_letters(tmp_path):
    data = b"\xef\xbb\xbfstation,value,level,kind,event_time\r\n" + b"s1,1.5,,a,1767225600\r\n" \
        + b"s\xe92,1.5,,a,1767225600\r\n" + b"s3,1.5,,a," + b"9" * 200_000 + b"\r\n" + b"s4,2.5,,b,1767225601\r\n"
    rows = list(csv_rows(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape", newline="")))
    assert rows[0] == {"station": "s1", "value": "1.5", "level": "", "kind": "a", "event_time": "1767225600"}
    assert rows[1] == b"s\xe92,1.5,,a,1767225600"
    assert isinstance(rows[2], Unreadable) and rows[2].reason == "invalid_csv" and rows[2].payload.startswith("s3,1.5")
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    with batch_pipeline() as p:
        parsed = p | ReadFrom(str(path)) | ParseRecords(Reading)
        _ = parsed.records | "R" >> Collect(tmp_path / "records")
        _ = parsed.dead_letters | beam.Map(lambda d: (d.error_type, d.payload[:6])) | "D" >> Collect(tmp_path / "dead")
    assert sorted(r.station for r in collected(tmp_path / "records")) == ["s1", "s4"]
    assert sorted(collected(tmp_path / "dead")) == [("decode_error", "s\\xe92"), ("invalid_csv", "s3,1.5")]


def test_docs_example_runs(tmp_path):
    """docs/transforms.md's ParseRecords example runs as written."""
    namespace = {"__name__": "docs_parse_poison"}
    exec(compile(example("transforms.md", "parse-poison"), "docs/transforms.md", "exec"), namespace)
    namespace["run"](str(tmp_path))


def test_sums_beyond_the_float_range_do_not_fail_the_job(tmp_path):
    """Two amounts near the largest float: their sum rounds to infinity (written as
    "Infinity" in JSON), their mean and standard deviation are finite; both paths."""
    lines_ = [_line({"station": "s", "value": v, "kind": "a", "event_time": 60}) for v in (1e308, 1e308, 1e-300)]
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(lines_) + b"\n")
    aggregations = {"total": "sum(value)", "avg": "mean(value)", "sd": "stddev(value)"}
    for columnar in (True, False):
        out = tmp_path / f"out-{columnar}"
        with batch_pipeline() as p:
            parsed = p | ReadFrom(str(path), columnar=columnar) | ParseRecords(Unbounded)
            windows = parsed.records | WindowedAggregate(key="station", window="fixed:60s", aggregations=aggregations)
            windows.aggregates | WriteTo(f"{out}/aggregates.jsonl")
        (row,) = [json.loads(line) for f in out.glob("aggregates*.jsonl") for line in open(f)]
        assert (row["total"], row["avg"], row["sd"]) == ("Infinity", 6.666666666666666e307,
                                                         5.773502691896257e307), columnar

