"""Batch on every runner: the fraud pipeline and WindowedAggregate give the
same results on the FnApiRunner, Prism, a Flink mini-cluster and a local
Spark, and the run summary (read from each runner's Beam metrics) is right on
each. Spark runs the fraud pipeline as a user does (docs/runners.md's
example: `hybridflow run fraud --mode batch --profile spark`), Beam starting
the job server from its cache."""

import time
import uuid

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow.testing import collected
from hybridflow.testing.runners import spark_job_server_jar
from hybridflow.testing.services.pytest_plugin import provisioned
from tests._docs import example, run_sh
from tests.runners._pipelines import (
    ENGINE,
    WINDOWS,
    dead_letter_reasons,
    read_fraud_outputs,
    run_fraud,
    windowed_aggregates,
)
from tests.runners.conftest import runner_params
from tests.runners.test_cli import _processes_with

FRAUD_INPUT = "synthetic://transactions?count=3000&seed=42&population=42&cards=300&fraud=0.01"
WA_SOURCE = "synthetic://transactions?count=4000&rate=20&seed=3&population=3&cards=60&late=0"


@pytest.fixture(scope="module")
def fraud_reference(tmp_path_factory):
    return run_fraud(["--mode=batch", f"--input={FRAUD_INPUT}", "--runner=FnApiRunner"], tmp_path_factory.mktemp("fnapi"))


def _check_fraud_run(summary, outputs, runner_name):
    assert summary.state.endswith("DONE")
    assert summary.runner == ENGINE[runner_name]
    assert len(outputs["alerts"]) > 10 and len(outputs["aggregates"]) > 1000
    # the summary comes from the runner's metrics and accounts for every record
    assert summary.records_read == 3000
    assert summary.dead_letters == len(outputs["dead_letters"]) > 0
    assert summary.records_written == sum(len(rows) for rows in outputs.values())
    assert summary.metrics.get("alerts") - summary.metrics.get("alerts_suppressed") == len(outputs["alerts"])
    assert summary.metrics.prefixed("dead_letters.") == dead_letter_reasons(outputs["dead_letters"])


def test_fraud_batch_reference_run_on_the_fnapi_runner(fraud_reference):
    """The reference the other runners are compared with: its summary accounts for its outputs."""
    _check_fraud_run(*fraud_reference, "fnapi")


@pytest.mark.parametrize("runner", runner_params("prism", "flink"), indirect=True)
def test_fraud_batch_is_the_same_on_every_runner(runner, fraud_reference, tmp_path):
    summary, outputs = run_fraud(runner.flags("--mode=batch", f"--input={FRAUD_INPUT}"), tmp_path)
    _check_fraud_run(summary, outputs, runner.name)
    assert outputs == fraud_reference[1]


@pytest.mark.spark
@pytest.mark.slow
def test_fraud_batch_with_the_spark_profile_is_the_same(fraud_reference, tmp_path):
    """docs/runners.md's Spark example, run as written: the outputs equal the reference."""
    provisioned(spark_job_server_jar)
    code = example("runners.md", "spark-batch")
    assert f"--input '{FRAUD_INPUT}'" in code and "--output out/spark" in code
    marker = uuid.uuid4().hex
    done = run_sh(code, tmp_path, timeout=900, env={"HYBRIDFLOW_TEST_RUN": marker})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\nspark " in "\n" + done.stdout  # `hybridflow profiles` lists it
    assert f"pipeline fraud (batch) on {ENGINE['spark']}: DONE in " in done.stdout, done.stdout
    outputs = read_fraud_outputs(tmp_path / "out" / "spark")
    assert outputs == fraud_reference[1]
    alerts, dead = len(outputs["alerts"]), len(outputs["dead_letters"])
    assert f"alerts           {alerts}\n" in done.stdout and f"dead letters     {dead} (" in done.stdout, done.stdout
    time.sleep(1)  # the job server Beam started is stopped when the command exits
    assert _processes_with(f"HYBRIDFLOW_TEST_RUN={marker}") == []


def _sorted_rows(directory):
    return sorted((tuple(sorted(row._asdict().items())) for row in collected(directory)), key=repr)


@pytest.fixture(scope="module")
def aggregate_reference(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wa-fnapi")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        windowed_aggregates(p, WA_SOURCE, directory, bounded=True)
    return {name: _sorted_rows(directory / name) for name in WINDOWS}


@pytest.mark.parametrize("runner", runner_params("prism", "flink", "spark"), indirect=True)
def test_windowed_aggregate_batch_is_the_same_on_every_runner(runner, aggregate_reference, tmp_path):
    with beam.Pipeline(options=PipelineOptions(runner.flags())) as p:
        windowed_aggregates(p, WA_SOURCE, tmp_path, bounded=True)
    for name in WINDOWS:
        rows = _sorted_rows(tmp_path / name)
        assert rows == aggregate_reference[name], name
        assert len(rows) > 100, name
