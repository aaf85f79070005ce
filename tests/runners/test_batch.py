"""Batch on every runner: the fraud pipeline and WindowedAggregate give the
same results on the FnApiRunner, Prism and a Flink mini-cluster, and the run
summary (read from each runner's Beam metrics) is right on each."""

import glob
import json

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import ParseRecords, ReadFrom, Transaction, WindowedAggregate
from hybridflow.pipelines import get_pipeline
from hybridflow.pipelines.run import run_pipeline
from hybridflow.testing import Collect, collected
from tests.runners.conftest import runner_params

FRAUD_INPUT = "synthetic://transactions?count=3000&seed=42&population=42&cards=300&fraud=0.01"
ENGINE = {"fnapi": "FnApiRunner", "prism": "PrismRunner (Prism)", "flink": "FlinkRunner (Flink 1.19, local mini-cluster)"}


def _read_outputs(directory):
    """Every output of a fraud run, as sorted lists (JSON lines; Parquet rows)."""
    out = {}
    for name in ("alerts", "aggregates", "dead_letters", "late"):
        lines = [line for path in glob.glob(f"{directory}/{name}*.jsonl") for line in open(path, encoding="utf-8")]
        if name == "dead_letters":  # all but the processing time of the failure
            lines = [json.dumps({k: v for k, v in json.loads(line).items() if k != "failed_at"}) for line in lines]
        out[name] = sorted(lines)
    rows = [row for path in glob.glob(f"{directory}/profiles*.parquet") for row in pq.read_table(path).to_pylist()]
    out["profiles"] = sorted(rows, key=lambda r: r["card_id"])
    return out


def _run_fraud(flags, directory):
    spec = get_pipeline("fraud")
    summary = run_pipeline(spec, spec.options(["--mode=batch", f"--input={FRAUD_INPUT}", f"--output={directory}", *flags]))
    return summary, _read_outputs(directory)


@pytest.fixture(scope="module")
def fraud_reference(tmp_path_factory):
    return _run_fraud(["--runner=FnApiRunner"], tmp_path_factory.mktemp("fraud-fnapi"))


@pytest.mark.parametrize("runner", runner_params("fnapi", "prism", "flink"), indirect=True)
def test_fraud_batch_is_the_same_on_every_runner(runner, fraud_reference, tmp_path):
    summary, outputs = _run_fraud(runner.flags(), tmp_path)
    _, reference = fraud_reference

    assert summary.state.endswith("DONE")
    assert summary.runner == ENGINE[runner.name]
    assert outputs == reference
    assert len(outputs["alerts"]) > 10 and len(outputs["aggregates"]) > 1000
    # the summary comes from the runner's metrics and accounts for every record
    assert summary.records_read == 3000
    assert summary.dead_letters == len(outputs["dead_letters"]) > 0
    assert summary.records_written == sum(len(rows) for rows in outputs.values())
    assert summary.metrics.get("alerts") - summary.metrics.get("alerts_suppressed") == len(outputs["alerts"])
    by_reason = summary.metrics.prefixed("dead_letters.")
    assert by_reason == _reasons(outputs["dead_letters"]) and sum(by_reason.values()) == summary.dead_letters


def _reasons(dead_letter_lines):
    counts = {}
    for line in dead_letter_lines:
        reason = json.loads(line)["error_type"]
        counts[reason] = counts.get(reason, 0) + 1
    return counts


# ---------------------------------------------------------------------------
# WindowedAggregate: fixed, sliding and session windows, exact and sketch aggregations

WINDOWS = {"fixed": "fixed:60s", "sliding": "sliding:5m/1m", "session": "session:5s"}
AGGREGATIONS = {
    "n": "count",
    "total": "sum(amount)",
    "mean": "mean(amount)",
    "sd": "stddev(amount)",
    "top": "max(amount)",
    "countries": "count_distinct(country)",
    "merchants": "approx_distinct(merchant_id)",
    "p95": "p95(amount)",
}
WA_SOURCE = "synthetic://transactions?count=4000&rate=20&seed=3&population=3&cards=60&late=0"


def _windowed_aggregates(p, source, directory, bounded):
    records = (p | "Read" >> ReadFrom(source, bounded=bounded) | "Parse" >> ParseRecords(Transaction)).records
    for name, window in WINDOWS.items():
        result = records | f"Aggregate{name}" >> WindowedAggregate(
            key="card_id", window=window, aggregations=AGGREGATIONS, allowed_lateness="10m"
        )
        result.aggregates | f"Collect{name}" >> Collect(f"{directory}/{name}")


def _sorted_rows(directory):
    return sorted((tuple(sorted(row._asdict().items())) for row in collected(directory)), key=repr)


@pytest.fixture(scope="module")
def aggregate_reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wa-fnapi")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _windowed_aggregates(p, WA_SOURCE, directory, bounded=True)
    return {name: _sorted_rows(directory / name) for name in WINDOWS}


@pytest.mark.parametrize("runner", runner_params("prism", "flink"), indirect=True)
def test_windowed_aggregate_batch_is_the_same_on_every_runner(runner, aggregate_reference, tmp_path):
    with beam.Pipeline(options=PipelineOptions(runner.flags())) as p:
        _windowed_aggregates(p, WA_SOURCE, tmp_path, bounded=True)
    for name in WINDOWS:
        rows = _sorted_rows(tmp_path / name)
        assert rows == aggregate_reference[name], name
        assert len(rows) > 100
