"""Construction-time checks of the columnar path: clear errors, the element types."""

import apache_beam as beam
import pytest

from hybridflow import CardProfile, Enrich, InMemoryLookup, InvalidUriError, ParseRecords, SchemaError, Transaction
from hybridflow import WindowedAggregate
from hybridflow.columnar import ArrowTableType, ToTables, arrow_tables, is_columnar
from hybridflow.io import ReadFrom, supports_columnar
from hybridflow.testing import START, CreateEvents, transactions


def test_columnar_reads_need_json_lines_or_parquet(tmp_path):
    assert supports_columnar(str(tmp_path / "a.jsonl")) and supports_columnar(str(tmp_path / "*.parquet"))
    assert not supports_columnar(str(tmp_path / "a.csv"))
    assert not supports_columnar("synthetic://transactions?count=10")
    assert supports_columnar(str(tmp_path / "*.orc"))
    with pytest.raises(InvalidUriError, match="columnar reads need JSON-lines, Parquet or ORC"):
        ReadFrom(str(tmp_path / "a.csv"), columnar=True)


def test_columnar_pipeline_types(tmp_path):
    (tmp_path / "t.jsonl").write_text("")  # inputs are checked when the pipeline is built: one must match
    p = beam.Pipeline(runner="FnApiRunner")
    raw = p | ReadFrom(str(tmp_path / "*.jsonl"), columnar=True)
    assert is_columnar(raw) and raw.element_type == ArrowTableType()
    parsed = raw | ParseRecords(Transaction)
    assert parsed.records.element_type == arrow_tables(Transaction, "event_time")
    windows = parsed.records | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"n": "count"})
    assert is_columnar(windows.aggregates)
    assert [f.name for f in windows.aggregates.element_type.fields][:5] == [
        "card_id", "window_start", "window_end", "pane", "pane_index"]
    with pytest.raises(SchemaError, match="columnar input holds JSON lines or Parquet"):
        raw | "Csv" >> ParseRecords(Transaction, format="csv")
    with pytest.raises(SchemaError, match="not a field"):
        parsed.records | "Bad" >> WindowedAggregate(key="nope", window="fixed:60s", aggregations={"n": "count"})


def test_columnar_errors_name_the_fix():
    p = beam.Pipeline(runner="FnApiRunner")
    untimed = p | CreateEvents(transactions([("c1", 1.0, 5)])) | ToTables(timestamp_field=None)
    with pytest.raises(SchemaError, match="timestamp_field"):
        untimed | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"n": "count"})
    lookup = InMemoryLookup([CardProfile("c1", 1, 1.0, 0.0, ["US"], START)], key="card_id")
    with pytest.raises(SchemaError, match="ToRecords"):
        untimed | Enrich(key="card_id", handler=lookup)


def test_a_table_step_without_a_declared_type_names_arrow_tables():
    """A step of the user's over tables (beam.Map) yields untyped elements: the
    next hybridflow transform says how to declare them."""
    p = beam.Pipeline(runner="FnApiRunner")
    tables = p | CreateEvents(transactions([("c1", 1.0, 5)])) | ToTables("event_time")
    untyped = tables | beam.Map(lambda table: table.filter(table.column("amount").is_valid()))
    with pytest.raises(SchemaError, match=r"with_output_types\(hybridflow\.columnar\.arrow_tables\("):
        untyped | WindowedAggregate(key="card_id", window="fixed:60s", aggregations={"n": "count"})
