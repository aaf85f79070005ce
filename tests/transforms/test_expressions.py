"""Filter, Select and Derive: per-record and columnar, batch and streaming give
the same records (values, event timestamps, windows) and dead letters."""

from typing import NamedTuple, Optional

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows
from apache_beam.utils.timestamp import Timestamp

from hybridflow import Derive, Filter, SchemaError, Select, WindowedAggregate
from hybridflow.columnar import ToRecords, ToTables, arrow_tables
from hybridflow.schemas import fields_of, register
from hybridflow.testing import START, Collect, CreateEvents, EventStream, Watermark, batch_pipeline, collected
from hybridflow.testing import streaming_pipeline


@register
class Bid(NamedTuple):
    auction: int
    bidder: Optional[int]
    price: float
    channel: str
    event_time: Timestamp


BIDS = [
    Bid(123, 7, 150.0, "web", START + 5),
    Bid(246, None, 101.0, "App", START + 61),
    Bid(5, 0, 99.5, "web", START + 62),
    Bid(0, 3, 1e6, "app", START + 130),
    Bid(2**62, 2, 200.0, "web", START + 131),  # auction * 4 overflows 64 bits: a dead letter
]

CASES = {
    "filter": lambda: Filter("price > 100 and auction % 123 == 0"),
    "select": lambda: Select("auction", "event_time", euro="round(price * 0.89, 2)", who="coalesce(bidder, -1)"),
    "derive": lambda: Derive(channel="lower(channel)", share="price / bidder", big="auction * 4 > 900"),
}


def _stamped(record, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
    return tuple(record), timestamp.micros, window.start.micros


def _run(case, mode, directory):
    """Runs CASES[case] on BIDS ``mode`` = per_record | columnar | streaming;
    returns (records with their timestamp and window, dead-letter reasons)."""
    transform = CASES[case]()
    if mode == "streaming":
        items = BIDS[:2] + [Watermark(START + 60)] + BIDS[2:]
        p = streaming_pipeline()
        with p:
            source = p | EventStream(items, record_type=Bid)
            windowed = source | beam.WindowInto(FixedWindows(60))
            out = windowed | transform
            _ = out.records | beam.Map(_stamped) | "Records" >> Collect(directory / "records")
            _ = out.dead_letters | beam.Map(lambda d: d.error_type) | "Dead" >> Collect(directory / "dead")
    else:
        with batch_pipeline() as p:
            records = p | CreateEvents(BIDS, record_type=Bid)
            if mode == "columnar":
                tables = records | ToTables("event_time", batch_size=3)
                out = tables | transform
                assert out.records.element_type.record_type is not None
                records_out = out.records | ToRecords()
                stamped = records_out | beam.WindowInto(FixedWindows(60)) | beam.Map(_stamped)
            else:
                out = records | beam.WindowInto(FixedWindows(60)) | transform
                stamped = out.records | beam.Map(_stamped)
            _ = stamped | "Records" >> Collect(directory / "records")
            _ = out.dead_letters | beam.Map(lambda d: d.error_type) | "Dead" >> Collect(directory / "dead")
    return sorted(collected(directory / "records")), sorted(collected(directory / "dead"))


EXPECTED = {
    "filter": (
        [(0, 3, 1e6, "app", START + 130), (123, 7, 150.0, "web", START + 5), (246, None, 101.0, "App", START + 61)],
        [],
    ),
    "select": (
        [(0, START + 130, 890000.0, 3), (5, START + 62, 88.56, 0), (123, START + 5, 133.5, 7),
         (246, START + 61, 89.89, -1), (2**62, START + 131, 178.0, 2)],
        [],
    ),
    "derive": (
        [(0, 3, 1e6, "app", START + 130, 1e6 / 3, False), (5, 0, 99.5, "web", START + 62, None, False),
         (123, 7, 150.0, "web", START + 5, 150.0 / 7, False), (246, None, 101.0, "app", START + 61, None, True)],
        ["expression_error"],
    ),
}


@pytest.mark.parametrize("mode", ["per_record", "columnar", "streaming"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_records_timestamps_windows_and_dead_letters_in_every_mode(case, mode, tmp_path):
    records, dead = _run(case, mode, tmp_path)
    want_records, want_dead = EXPECTED[case]
    assert [r[0] for r in records] == sorted(want_records)
    for values, timestamp, window_start in records:
        event_time = next(v for v in values if isinstance(v, Timestamp)) if case != "derive" else values[4]
        assert timestamp == event_time.micros  # the event time is still the element timestamp
        assert window_start == event_time.micros - event_time.micros % 60_000_000
    assert dead == want_dead


def test_output_types_are_new_record_types_the_next_transform_checks():
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        bids = p | CreateEvents(BIDS, record_type=Bid)
        selected = bids | Select("auction", euro="price * 0.89", who="bidder")
        fields = {f.name: (f.type, f.optional) for f in fields_of(selected.records.element_type)}
        assert fields == {"auction": (int, False), "euro": (float, False), "who": (int, True)}
        derived = bids | "Derive" >> Derive(auction="auction / 2", day="day(event_time)")
        names = [f.name for f in fields_of(derived.records.element_type)]
        assert names == ["auction", "bidder", "price", "channel", "event_time", "day"]
        assert fields_of(derived.records.element_type)[0].type is float
        with pytest.raises(SchemaError, match=r"unknown field 'price' \(fields available: auction, euro, who\)"):
            _ = selected.records | "Again" >> Filter("price > 1")
        with pytest.raises(SchemaError, match="reads 'price', which is not a field of the input"):
            _ = selected.records | WindowedAggregate(key="auction", window="fixed:60s", aggregations={"p": "sum(price)"})
        # the inferred types are what the next transform works with
        _ = selected.records | "Sum" >> WindowedAggregate(key="auction", window="fixed:60s", aggregations={"e": "sum(euro)"})


@pytest.mark.parametrize(
    "transform, says",
    [
        (lambda: Filter("price"), "predicate 'price' is a float, not a boolean"),
        (lambda: Filter("channel + 1 > 2"), "str + int in 'channel + 1'"),
        (lambda: Filter("__import__('os').system('true')"), "is not part of the language|is not a function"),
        (lambda: Select("auction", "nope"), "'nope' is not an input field (fields available: auction, bidder"),
        (lambda: Select("auction", auction="price"), "output fields ['auction'] are named twice"),
        (lambda: Derive(euro="prce * 0.89"), "unknown field 'prce'"),
        (lambda: Derive(**{"no way": "price"}), "must be an identifier"),
    ],
)
def test_construction_errors_name_the_expression_and_the_fields(transform, says):
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    bids = p | CreateEvents(BIDS, record_type=Bid)
    with pytest.raises(SchemaError) as caught:
        _ = bids | transform()
    assert any(part in str(caught.value) for part in says.split("|")), str(caught.value)


def test_columnar_select_keeps_or_renames_the_event_time_column():
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    tables = p | CreateEvents(BIDS, record_type=Bid) | ToTables("event_time")
    renamed = tables | "Rename" >> Select("auction", at="event_time")
    assert renamed.records.element_type == arrow_tables(renamed.records.element_type.record_type, "at")
    with pytest.raises(SchemaError, match="event-time field 'event_time' carries the records' event times"):
        _ = tables | "Drop" >> Select("auction")


@pytest.mark.prism
def test_generated_record_types_cross_a_portable_runner(prism_server, tmp_path):
    with beam.Pipeline(options=PipelineOptions(prism_server.flags())) as p:
        bids = p | CreateEvents(BIDS, record_type=Bid)
        derived = bids | Derive(euro="round(price * 0.89, 2)")
        selected = derived.records | Select("auction", "euro")
        out = selected.records | "Big" >> Filter("euro > 100")
        _ = out.records | beam.Map(tuple) | Collect(tmp_path)
    assert sorted(collected(tmp_path)) == [(0, 890000.0), (123, 133.5), (2**62, 178.0)]


def test_the_docs_example_runs_and_prints_what_the_page_says(tmp_path, capsys):
    from tests._docs import example, printed

    namespace = {"__name__": "docs_example"}
    exec(compile(example("transforms.md", "expressions", "python"), "docs/transforms.md", "exec"), namespace)
    namespace["run"](tmp_path)
    assert capsys.readouterr().out == printed("transforms.md", "expressions")


@pytest.mark.parametrize("columnar", [False, True])
def test_filtered_records_and_dead_letters_are_counted(columnar):
    from apache_beam.metrics.metric import MetricsFilter

    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    bids = p | CreateEvents(BIDS, record_type=Bid)
    source = bids | ToTables("event_time", batch_size=2) if columnar else bids
    _ = source | Filter("auction * 2 > 200")  # 123, 246 kept; 5, 0 filtered; 2**62 overflows
    result = p.run()
    result.wait_until_finish()
    metrics = result.metrics()

    def total(name):
        return sum(r.committed for r in metrics.query(MetricsFilter().with_name(name))["counters"])

    assert (total("records_in"), total("records_out"), total("filtered"), total("dead_letters")) == (5, 2, 2, 1)
    assert total("dead_letters.expression_error") == 1
