"""TopPerWindow and a keyless WindowedAggregate on Prism's streaming engine
(TestStream): the rows the batch run gives (tests/transforms has the
bundle-based runner's)."""

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from hybridflow import TopPerWindow, WindowedAggregate
from hybridflow.testing import START, Collect, CreateEvents, EventStream, Watermark, collected, transactions
from tests.runners.conftest import runner_params

pytestmark = pytest.mark.streaming

EVENTS = transactions([("c1", 10.0, 5), ("c2", 30.0, 20), ("c3", 30.0, 40), ("c1", 7.0, 70), ("c2", 2.0, 130)])


def _build(records, directory):
    top = (records | TopPerWindow(by="amount", window="fixed:60s")).rows
    peaks = (records | WindowedAggregate(key=None, window="fixed:60s", aggregations={"n": "count"})).aggregates
    top | beam.Map(lambda r: ("top", int(r.window_start.micros - START.micros) // 10**6, r.card_id)) | "Top" >> Collect(
        f"{directory}/top")
    peaks | beam.Map(lambda r: ("n", int(r.window_start.micros - START.micros) // 10**6, r.n)) | "N" >> Collect(
        f"{directory}/n")


@pytest.mark.parametrize("runner", runner_params("prism"), indirect=True)
def test_top_and_keyless_windows_stream_like_batch(runner, tmp_path):
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _build(p | CreateEvents(EVENTS), tmp_path / "batch")
    with beam.Pipeline(options=PipelineOptions(runner.flags("--streaming"))) as p:
        _build(p | EventStream(EVENTS[:3] + [Watermark(START + 61)] + EVENTS[3:]), tmp_path / "stream")
    batch = sorted(collected(tmp_path / "batch/top") + collected(tmp_path / "batch/n"))
    assert batch == [("n", 0, 3), ("n", 60, 1), ("n", 120, 1),
                     ("top", 0, "c2"), ("top", 0, "c3"), ("top", 60, "c1"), ("top", 120, "c2")]
    assert sorted(collected(tmp_path / "stream/top") + collected(tmp_path / "stream/n")) == batch
