"""Streaming on Prism and Flink with a real unbounded source.

The synthetic source over ``PeriodicImpulse`` (not TestStream) with an explicit
start in the past and a count: an unbounded PCollection whose watermark
follows the impulse, ending after the last record. Event-time windows then
settle on the same final panes (the last non-EARLY pane per key and window)
as a batch run over the same events on the FnApiRunner.
"""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import ReadFrom
from hybridflow.testing import collected
from tests.runners._pipelines import (
    ENGINE,
    PAST_START,
    WINDOWS,
    dead_letter_reasons,
    run_fraud,
    windowed_aggregates,
)
from tests.runners.conftest import final_panes, runner_params

pytestmark = pytest.mark.streaming

WA_SOURCE = (
    f"synthetic://transactions?rate=50&count=3000&start={PAST_START}&seed=5&population=5&cards=40&late=0"
)


@pytest.fixture(scope="module")
def aggregate_batch(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wa-batch")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        windowed_aggregates(p, WA_SOURCE, directory, bounded=True)
    return {name: final_panes(collected(directory / name), "card_id") for name in WINDOWS}


@pytest.mark.parametrize("runner", runner_params("prism", "flink"), indirect=True)
def test_windowed_aggregate_streaming_settles_on_the_batch_windows(runner, aggregate_batch, tmp_path):
    p = beam.Pipeline(options=PipelineOptions(runner.flags("--streaming")))
    records = windowed_aggregates(p, WA_SOURCE, tmp_path, bounded=False)
    assert not records.is_bounded
    p.run().wait_until_finish()

    for name in WINDOWS:
        rows = collected(tmp_path / name)
        assert final_panes(rows, "card_id") == aggregate_batch[name], name
        assert len(aggregate_batch[name]) > 40, name  # more windows than cards
        assert {r.pane for r in rows} <= {"ON_TIME", "LATE"}  # no early trigger asked for
        assert collected(tmp_path / f"late-{name}") == []


FRAUD_STREAM = (
    f"synthetic://transactions?rate=20&count=2000&start={PAST_START}"
    "&seed=42&population=42&cards=200&fraud=0.02&late=0"
)
FRAUD_FLAGS = [
    f"--input={FRAUD_STREAM}",
    "--history=synthetic://transactions?count=3000&seed=41&population=42&cards=200",
    "--cooldown=0",  # with a cooldown, streaming keeps the first alert to arrive, batch the earliest
]


@pytest.fixture(scope="module")
def fraud_batch(tmp_path_factory):
    return run_fraud(["--mode=batch", "--runner=FnApiRunner", *FRAUD_FLAGS], tmp_path_factory.mktemp("fraud-batch"))


@pytest.mark.parametrize("runner", runner_params("prism", "flink"), indirect=True)
def test_fraud_streaming_settles_on_the_batch_results(runner, fraud_batch, tmp_path, capfd):
    summary, outputs = run_fraud(runner.flags("--mode=streaming", *FRAUD_FLAGS), tmp_path)
    batch_summary, batch = fraud_batch

    assert summary.state.endswith("DONE") and summary.mode == "streaming"
    assert summary.runner == ENGINE[runner.name]
    assert final_panes(outputs["aggregates"], "card_id") == final_panes(batch["aggregates"], "card_id")
    assert len(batch["aggregates"]) > 1000
    # every alert of the batch run, and no other (a LATE pane repeats its window's alert id)
    assert {a["alert_id"] for a in outputs["alerts"]} == {a["alert_id"] for a in batch["alerts"]}
    assert len(batch["alerts"]) > 20
    for name in ("dead_letters", "profiles", "late"):
        assert outputs[name] == batch[name], name
    # the summary, from the runner's metrics, matches the batch run's and the files
    assert summary.records_read == batch_summary.records_read == 5000
    assert summary.dead_letters == batch_summary.dead_letters == len(outputs["dead_letters"])
    assert summary.metrics.prefixed("dead_letters.") == dead_letter_reasons(outputs["dead_letters"])
    assert summary.records_written == sum(len(rows) for rows in outputs.values())
    # streaming runs print each alert as it is raised (LOOPBACK workers: this process)
    printed = [line for line in capfd.readouterr().out.splitlines() if line.startswith("ALERT ")]
    assert len(printed) == len(outputs["alerts"])


def test_bundle_based_direct_runner_cannot_read_the_unbounded_source():
    """Why real streaming here means Prism or Flink: Beam's bundle-based
    DirectRunner (the TestStream runner) cannot run splittable DoFns such as
    PeriodicImpulse."""
    with pytest.raises(RuntimeError, match="ProcessKeyedElements"):
        with beam.Pipeline(options=PipelineOptions(["--runner=BundleBasedDirectRunner", "--streaming"])) as p:
            p | ReadFrom(WA_SOURCE, bounded=False)
