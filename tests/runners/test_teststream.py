"""TestStream on the portable runners: watermark-driven panes (and, on Prism,
processing-time triggers) give the batch windows, as on Beam's bundle-based
runner (tests/transforms)."""

import random

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import WindowedAggregate
from hybridflow.testing import START, Collect, CreateEvents, EventStream, Watermark, collected, transactions
from tests.runners.conftest import final_panes, runner_params

pytestmark = pytest.mark.streaming

_rng = random.Random(7)
EVENTS = transactions(
    [(f"c{_rng.randrange(4)}", round(_rng.uniform(0, 500), 2), round(_rng.uniform(0, 600), 3)) for _ in range(120)]
)
_rng.shuffle(EVENTS)
SPEC = dict(key="card_id", window="fixed:60s", aggregations={"n": "count", "total": "sum(amount)", "p95": "p95(amount)"})


@pytest.fixture(scope="module")
def batch_windows(tmp_path_factory):
    directory = tmp_path_factory.mktemp("batch")
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        (p | CreateEvents(EVENTS) | WindowedAggregate(**SPEC)).aggregates | Collect(directory)
    return final_panes(collected(directory), "card_id")


def _stream(runner, directory, trigger, processing_time_step=None):
    with beam.Pipeline(options=PipelineOptions(runner.flags("--streaming"))) as p:
        items = EVENTS[:60] + [Watermark(START + 1)] + EVENTS[60:]
        stream = p | EventStream(items, processing_time_step=processing_time_step)
        (stream | WindowedAggregate(**SPEC, trigger=trigger)).aggregates | Collect(directory)
    return collected(directory)


@pytest.mark.parametrize("runner", runner_params("prism", "flink"), indirect=True)
def test_teststream_with_early_panes_settles_on_the_batch_windows(runner, batch_windows, tmp_path):
    rows = _stream(runner, tmp_path, {"early_count": 7})
    assert final_panes(rows, "card_id") == batch_windows
    assert {r.pane for r in rows} == {"EARLY", "ON_TIME"}


@pytest.mark.parametrize("runner", runner_params("prism"), indirect=True)
def test_processing_time_triggers_on_prism(runner, batch_windows, tmp_path):
    rows = _stream(runner, tmp_path, {"early_every": "5s"}, processing_time_step=1.0)
    assert final_panes(rows, "card_id") == batch_windows
    assert {r.pane for r in rows} == {"EARLY", "ON_TIME"}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the failed job's data threads
@pytest.mark.parametrize("runner", runner_params("flink"), indirect=True)
def test_flink_refuses_teststream_processing_time(runner, tmp_path):
    """What docs/runners.md's table says: Beam's Flink runner cannot advance a
    TestStream's processing time (and does not fire our processing-time
    timers on a real stream either; the fraud pipeline refuses --early_every
    on Flink)."""
    with pytest.raises(Exception, match="Advancing Processing time is not supported by the Flink Runner"):
        _stream(runner, tmp_path, {"early_every": "5s"}, processing_time_step=1.0)
