"""Percentile rank definitions (lower, nearest, linear): the same on the per-element and columnar backends,
each within the sketch's 1 % of the exact value by its definition."""

import math
import typing
from types import SimpleNamespace

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.utils.timestamp import Timestamp

from hybridflow import SchemaError, WindowedAggregate
from hybridflow.columnar import ToRecords, ToTables
from hybridflow.schemas import register
from hybridflow.testing import START, Collect, CreateEvents, batch_pipeline, collected
from hybridflow.transforms.aggregations import Accumulator, parse_aggregations
from tests._docs import example


class Temp(typing.NamedTuple):
    machine: str
    temp: float
    event_time: Timestamp


register(Temp)

VALUES = [12, 15, 11, 14, 13, 16, 12, 15, 14, 13, 11, 16, 12, 14, 25]  # docs/transforms.md's worked example
NUMPY = {"lower": "lower", "nearest": "inverted_cdf", "linear": "linear"}
AGGREGATIONS = {
    f"{m}_{int(q * 100)}": f"p{int(q * 100)}:{m}(temp)" for m in NUMPY for q in (0.05, 0.5, 0.9, 0.95, 0.99)
}


def _exact(method, q, values=VALUES):
    return float(np.quantile(values, q, method=NUMPY[method]))


@pytest.mark.parametrize("columnar", [False, True], ids=["per-element", "columnar"])
def test_each_method_on_both_backends(tmp_path, columnar):
    events = [Temp("m1", float(v), START + i) for i, v in enumerate(VALUES)]
    with batch_pipeline() as p:
        records = p | CreateEvents(events)
        aggregate = WindowedAggregate(key="machine", window="fixed:1h", aggregations=AGGREGATIONS)
        if columnar:
            rows = (records | ToTables("event_time") | aggregate).aggregates | ToRecords()
        else:
            rows = (records | aggregate).aggregates
        rows | beam.Map(lambda r: {name: getattr(r, name) for name in AGGREGATIONS}) | Collect(tmp_path)
    [row] = collected(tmp_path)
    for name, value in row.items():
        method, percent = name.split("_")
        assert math.isclose(value, _exact(method, int(percent) / 100), rel_tol=0.01), name
    # the worked example: the three definitions differ, nearest-rank is the maximum
    assert row["lower_95"] < 16.01 and row["nearest_95"] == 25.0 and 18.5 < row["linear_95"] < 18.9
    assert row == _per_element(AGGREGATIONS)  # both backends the same to the bit


def _per_element(aggregations, values=VALUES):
    accumulator = Accumulator(parse_aggregations(aggregations))
    acc = accumulator.create()
    for v in values:
        accumulator.add(acc, SimpleNamespace(temp=float(v)))
    return accumulator.extract(acc)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100])
def test_small_and_larger_counts_follow_each_definition(n):
    values = [float((i * 37) % 101 - 20) for i in range(n)]  # negatives and zero too
    got = _per_element(AGGREGATIONS, values)
    for name, value in got.items():
        method, percent = name.split("_")
        assert math.isclose(value, _exact(method, int(percent) / 100, values), rel_tol=0.01, abs_tol=1e-9), name


def test_default_is_lower_and_spelled_forms_agree():
    spellings = {"a": "p95(temp)", "b": "p95:lower(temp)", "c": "percentile(temp, 0.95)",
                 "d": {"fn": "percentile", "field": "temp", "q": 0.95, "method": "lower"}}
    assert len(set(_per_element(spellings).values())) == 1
    nearest = {"a": "p95:nearest(temp)", "b": "percentile:nearest(temp, 0.95)",
               "c": {"fn": "p95", "field": "temp", "method": "nearest"}}
    assert set(_per_element(nearest).values()) == {25.0}


@pytest.mark.parametrize("spec, match", [
    ("p95:median(temp)", "percentile method 'median'; use one of lower, nearest, linear"),
    ("sum:nearest(temp)", "q and method only apply to percentile"),
    ({"fn": "count", "method": "nearest"}, "q and method only apply to percentile"),
    ({"fn": "p95:nearest", "field": "temp", "method": "linear"}, "already names its method"),
])
def test_bad_methods_are_schema_errors(spec, match):
    with pytest.raises(SchemaError, match=match):
        parse_aggregations({"x": spec})


def test_docs_example_prints_what_the_page_says(capsys):
    from tests._docs import printed

    exec(compile(example("transforms.md", "percentile-methods", "python"), "docs/transforms.md", "exec"), {})
    assert capsys.readouterr().out == printed("transforms.md", "percentile-methods")
